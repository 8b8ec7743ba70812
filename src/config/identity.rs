//! The identity check that ties a data directory to one node of one cluster (OwnedDataDir):
//! the `IDENTITY` file, written durably (temp file, fsync, rename, fsync of the directory).

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// Name of the identity file inside a node's data directory.
pub const IDENTITY_FILE: &str = "IDENTITY";

/// Version of the identity file layout written by this build.
const IDENTITY_FORMAT: u32 = 1;

/// The contents of `dir/IDENTITY`.
#[derive(Debug, Deserialize, Serialize)]
struct Identity {
    cluster: String,
    node_id: u64,
    format: u32,
}

/// Makes sure `dir` belongs to (`cluster_name`, `node_id`) and returns whether it was pristine
/// (true = first start).
///
/// Creates `dir` if missing. If it holds an identity file it must name this cluster and node,
/// else [`ConfigError::ForeignDataDir`] names both owners. If the dir is new or empty, the
/// identity file is written (temp file, fsync, rename, fsync dir) and the dir is claimed. A
/// non-empty dir without an identity file is refused as belonging to an unknown owner;
/// `lost+found` (a fresh filesystem's mount point) and a temp file left by an interrupted claim
/// do not count as content.
///
/// "Pristine" is reported once: a node that crashes after the claim but before initialising
/// Raft must learn from its log store, not from this function, that it has no state.
pub fn ensure_data_dir_identity(
    dir: &Path,
    cluster_name: &str,
    node_id: u64,
) -> Result<bool, ConfigError> {
    let io_err = |source: io::Error| ConfigError::DataDirIo {
        dir: dir.to_owned(),
        source,
    };
    let expected = format!("cluster {cluster_name:?} node {node_id}");
    let identity_path = dir.join(IDENTITY_FILE);
    let tmp_name = format!("{IDENTITY_FILE}.tmp");

    crate::fsutil::create_dir_all_durable(dir).map_err(io_err)?;

    match fs::read_to_string(&identity_path) {
        Ok(text) => {
            let id: Identity = toml::from_str(&text).map_err(|e| {
                io_err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{IDENTITY_FILE} is unreadable ({}); it is not safe to guess its owner",
                        e.message().trim_end()
                    ),
                ))
            })?;
            if id.format != IDENTITY_FORMAT {
                return Err(io_err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{IDENTITY_FILE} has format {}, this build understands {IDENTITY_FORMAT}",
                        id.format
                    ),
                )));
            }
            if id.cluster == cluster_name && id.node_id == node_id {
                return Ok(false);
            }
            let found = format!("cluster {:?} node {}", id.cluster, id.node_id);
            return Err(ConfigError::ForeignDataDir {
                dir: dir.to_owned(),
                found,
                expected,
            });
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(e)),
    }

    let mut others: Vec<String> = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err)? {
        let name = entry
            .map_err(io_err)?
            .file_name()
            .to_string_lossy()
            .into_owned();
        if name != "lost+found" && name != tmp_name {
            others.push(name);
        }
    }
    if !others.is_empty() {
        others.sort();
        let shown = others
            .iter()
            .take(3)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        let more = if others.len() > 3 { ", ..." } else { "" };
        let found =
            format!("an unknown owner (no {IDENTITY_FILE} file, but it holds {shown}{more})");
        return Err(ConfigError::ForeignDataDir {
            dir: dir.to_owned(),
            found,
            expected,
        });
    }

    let identity = Identity {
        cluster: cluster_name.to_owned(),
        node_id,
        format: IDENTITY_FORMAT,
    };
    let body = toml::to_string(&identity)
        .map_err(|e| io_err(io::Error::new(io::ErrorKind::InvalidInput, e.to_string())))?;
    let tmp_path = dir.join(&tmp_name);
    {
        let mut file = fs::File::create(&tmp_path).map_err(io_err)?;
        file.write_all(b"# Written by redraft when this node first started. Do not edit.\n")
            .and_then(|()| file.write_all(body.as_bytes()))
            .and_then(|()| file.sync_all())
            .map_err(io_err)?;
    }
    fs::rename(&tmp_path, &identity_path).map_err(io_err)?;
    sync_dir(dir).map_err(io_err)?;
    Ok(true)
}

/// Makes a directory's entries (a create or a rename inside it) durable.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// Directories cannot be opened for fsync here; the rename is as durable as the OS makes it.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
#[path = "identity_test.rs"]
mod tests;
