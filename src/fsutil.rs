//! Directory creation that survives a power cut, and bulk file writes that do not starve the
//! Raft log's `fdatasync`.
//!
//! Owns two rules:
//!
//! - **DirEntryDurable**: a directory this process creates is not there after a power cut until
//!   its *parent* directory has been fsynced (the new entry lives in the parent). Creating
//!   `data/node1/raft-log/wal` with `create_dir_all` and fsyncing only the last level loses the
//!   whole log at a power cut even though every record in it was fdatasynced (found by jepsen's
//!   lossyfs power-loss check). Every data-dir path is created through
//!   [`create_dir_all_durable`].
//! - **PacedWrites**: a snapshot file (tens of MiB) written in one go and fsynced at the end
//!   leaves all of it dirty in the page cache, and the fsync then pushes it to the disk at
//!   once, with the log's group-commit `fdatasync`s queued behind it (on ext4 a log sync that
//!   commits the journal also waits for the other files' ordered data). [`PacedFile`] starts
//!   writeback of every [`PACE_BYTES`] as it is written and waits for the chunk before, so at
//!   most two chunks are ever in flight. This is pacing only (RocksDB's `bytes_per_sync`):
//!   `sync_file_range` makes nothing durable, and the file is still fsynced before anyone
//!   relies on it. The Raft log's preallocated segments are zero-filled the same way
//!   ([`write_zeros_paced`]).

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::io::AsRawFd;
use std::path::Path;

/// How many bytes a [`PacedFile`] writes before it starts their writeback.
pub const PACE_BYTES: u64 = 1 << 20;

/// A file written front to back whose dirty bytes are bounded (PacedWrites).
pub struct PacedFile {
    file: File,
    /// Bytes written so far.
    pos: u64,
    pacer: Pacer,
    chunk: u64,
}

impl PacedFile {
    /// Paces writes to `file`, which must be empty and written only through this from offset 0.
    pub fn new(file: File) -> Self {
        Self::with_chunk(file, PACE_BYTES)
    }

    /// Paces writes appended to `file` from offset `at` on (its length; the file's offset must
    /// be there too): the bytes before are not paced.
    pub fn appending(file: File, at: u64) -> Self {
        Self {
            file,
            pos: at,
            pacer: Pacer::at(at),
            chunk: PACE_BYTES,
        }
    }

    fn with_chunk(file: File, chunk: u64) -> Self {
        Self {
            file,
            pos: 0,
            pacer: Pacer::at(0),
            chunk,
        }
    }

    /// The file back (to fsync it).
    pub fn into_inner(self) -> File {
        self.file
    }

    /// Bytes whose writeback was started and waited for (tests).
    #[cfg(test)]
    fn settled(&self) -> u64 {
        self.pacer.waited
    }
}

/// Writes zeros over `from..to` of `file`, [`PACE_BYTES`] at a time, with at most two chunks
/// of writeback in flight (PacedWrites). The caller syncs the file afterwards.
pub fn write_zeros_paced(file: &File, from: u64, to: u64) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let zeros = vec![0u8; PACE_BYTES as usize];
    let mut pacer = Pacer::at(from);
    let mut off = from;
    while off < to {
        let end = (off + PACE_BYTES).min(to);
        file.write_all_at(&zeros[..(end - off) as usize], off)?;
        pacer.pace(file, end)?;
        off = end;
    }
    Ok(())
}

/// The writeback of a file written front to back (PacedWrites): started for `..started`,
/// waited for `..waited`.
struct Pacer {
    started: u64,
    waited: u64,
}

impl Pacer {
    /// Nothing before `pos` is paced (it was there before).
    fn at(pos: u64) -> Self {
        Self {
            started: pos,
            waited: pos,
        }
    }

    /// Waits for the previous chunk's writeback, then starts the one ending at `pos`.
    fn pace(&mut self, file: &File, pos: u64) -> io::Result<()> {
        use libc::{
            SYNC_FILE_RANGE_WAIT_AFTER as AFTER, SYNC_FILE_RANGE_WAIT_BEFORE as BEFORE,
            SYNC_FILE_RANGE_WRITE as WRITE,
        };
        if self.started > self.waited {
            range(file, self.waited, self.started, BEFORE | WRITE | AFTER)?;
            self.waited = self.started;
        }
        range(file, self.started, pos, WRITE)?;
        self.started = pos;
        Ok(())
    }
}

/// `sync_file_range(from..to, flags)` on `file`.
fn range(file: &File, from: u64, to: u64, flags: libc::c_uint) -> io::Result<()> {
    let (Ok(off), Ok(len)) = (
        libc::off64_t::try_from(from),
        libc::off64_t::try_from(to - from),
    ) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "file too large",
        ));
    };
    // SAFETY: a plain syscall on a file descriptor `file` owns; no memory is passed.
    let rc = unsafe { libc::sync_file_range(file.as_raw_fd(), off, len, flags) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

impl Write for PacedFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.pos += n as u64;
        if self.pos - self.pacer.started >= self.chunk {
            self.pacer.pace(&self.file, self.pos)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

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

    /// PacedWrites: the bytes come out whole, and writeback is started and settled chunk by
    /// chunk as they are written (never more than two chunks behind).
    #[test]
    fn paced_file_writes_every_byte_and_settles_chunk_by_chunk() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("paced");
        let mut w = PacedFile::with_chunk(File::create(&path).unwrap(), 4096);
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        for piece in data.chunks(1000) {
            w.write_all(piece).unwrap();
            assert!(
                w.pos - w.settled() < 3 * 4096,
                "{} bytes written, {} settled",
                w.pos,
                w.settled()
            );
        }
        assert!(w.settled() > 90_000, "settled {}", w.settled());
        w.into_inner().sync_all().unwrap();
        assert_eq!(fs::read(&path).unwrap(), data);
    }
}
