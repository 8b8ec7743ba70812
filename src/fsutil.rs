//! Directory creation that survives a power cut.
//!
//! Owns one rule, **DirEntryDurable**: a directory this process creates is not there after a
//! power cut until its *parent* directory has been fsynced (the new entry lives in the parent).
//! Creating `data/node1/raft-log/wal` with `create_dir_all` and fsyncing only the last level
//! loses the whole log at a power cut even though every record in it was fdatasynced (found by
//! jepsen's lossyfs power-loss check). Every data-dir path is created through
//! [`create_dir_all_durable`].

use std::fs::{self, File};
use std::io;
use std::path::Path;

/// Creates `dir` and every missing ancestor, fsyncing each created level's parent after it is
/// made, so the whole path is durable when this returns. An existing `dir` costs one `stat`.
pub fn create_dir_all_durable(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    // The missing levels, deepest first.
    let mut missing = Vec::new();
    let mut cur = Some(dir);
    while let Some(p) = cur.filter(|p| !p.as_os_str().is_empty() && !p.is_dir()) {
        missing.push(p);
        cur = p.parent();
    }
    for level in missing.into_iter().rev() {
        match fs::create_dir(level) {
            Ok(()) => {}
            // Made by someone else meanwhile: its entry may not be durable yet, so sync anyway.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && level.is_dir() => {}
            Err(e) => return Err(e),
        }
        let parent = match level.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        File::open(parent)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_every_missing_level_and_accepts_existing_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let deep = tmp.path().join("a/b/c");
        create_dir_all_durable(&deep).unwrap();
        assert!(deep.is_dir());
        create_dir_all_durable(&deep).unwrap();
        let file = tmp.path().join("f");
        fs::write(&file, b"x").unwrap();
        assert!(create_dir_all_durable(&file.join("under-a-file")).is_err());
    }
}
