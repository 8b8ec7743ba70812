//! Backup and restore, like etcd's `snapshot save` / `snapshot restore`.
//!
//! Owns the backup file format and turning a backup into a new cluster's data dirs. `RAFT.BACKUP`
//! (commands/cluster.rs) produces the bytes on a running node; `redraft backup` saves them and
//! `redraft restore` (main.rs) calls [`restore`].
//!
//! # File format
//!
//! ```text
//! MAGIC ("redraft-backup\n") ++ FORMAT (1 byte) ++ u32 big-endian n ++ postcard(BackupHeader)
//!   (n bytes) ++ Store::to_snapshot() (the rest: whole history window, compact revision,
//!   dedup table; its own version byte)
//! ```
//!
//! # Consistency
//!
//! `RAFT.BACKUP` passes a linearizable read barrier, then clones the store under the state
//! machine's read lock (O(1)) and encodes the clone without it: one applied index, one
//! revision, with everything acknowledged before the command was sent.
//!
//! # Restore
//!
//! Each node's data dir gets its `IDENTITY` (the cluster of the given `cluster.toml`: a new
//! identity unless that file names the old cluster), a snapshot file holding the store with
//! log id `((term 1, node 0), 1)` and the membership of every node of `cluster.toml` as voters,
//! and a Raft log whose purged index is that log id. So every node starts initialised with
//! the same state and membership, elects a leader, and serves the backup's keys, revision and
//! history. A data dir that is not pristine is refused.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::{ensure_data_dir_identity, ClusterConfig};
use crate::raft::PeerNode;
use crate::store::Store;

const MAGIC: &[u8] = b"redraft-backup\n";
const FORMAT: u8 = 1;

/// What a backup says about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupHeader {
    /// The cluster it was taken from.
    pub cluster: String,
    /// The node that served it.
    pub node_id: u64,
    /// The Raft applied index it was taken at.
    pub applied_index: u64,
    pub revision: u64,
    pub compact_revision: u64,
    /// Live keys at `revision`.
    pub keys: u64,
}

/// Why a backup could not be read or restored.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("not a redraft backup file: {0}")]
    Format(String),
    #[error("{0}")]
    Restore(String),
}

/// Encodes a backup of `store_bytes` (`Store::to_snapshot`) with `header`.
pub fn encode(header: &BackupHeader, store_bytes: &[u8]) -> Vec<u8> {
    let head = postcard::to_allocvec(header).unwrap_or_default();
    let mut out = Vec::with_capacity(MAGIC.len() + 5 + head.len() + store_bytes.len());
    out.extend_from_slice(MAGIC);
    out.push(FORMAT);
    out.extend_from_slice(&(head.len() as u32).to_be_bytes());
    out.extend_from_slice(&head);
    out.extend_from_slice(store_bytes);
    out
}

/// Splits a backup into its header and the store bytes, checking that the store decodes.
pub fn decode(bytes: &[u8]) -> Result<(BackupHeader, &[u8]), BackupError> {
    let bad = |m: &str| BackupError::Format(m.to_string());
    let rest = bytes.strip_prefix(MAGIC).ok_or_else(|| bad("no magic"))?;
    let (&format, rest) = rest.split_first().ok_or_else(|| bad("truncated"))?;
    if format != FORMAT {
        return Err(BackupError::Format(format!(
            "format {format}, this build reads {FORMAT}"
        )));
    }
    let len: [u8; 4] = rest
        .get(..4)
        .and_then(|l| l.try_into().ok())
        .ok_or_else(|| bad("truncated header length"))?;
    let end = 4 + u32::from_be_bytes(len) as usize;
    let head = rest.get(4..end).ok_or_else(|| bad("truncated header"))?;
    let header: BackupHeader =
        postcard::from_bytes(head).map_err(|e| BackupError::Format(format!("header: {e}")))?;
    let store = &rest[end..];
    Store::from_snapshot(store).map_err(|e| BackupError::Format(format!("store: {e}")))?;
    Ok((header, store))
}

/// Creates the data dir of every node of `cfg` from the backup `bytes`. `progress` is called
/// after each node with its id.
pub async fn restore(
    bytes: &[u8],
    cfg: &ClusterConfig,
    mut progress: impl FnMut(u64),
) -> Result<BackupHeader, BackupError> {
    let (header, store) = decode(bytes)?;
    cfg.validate()
        .map_err(|e| BackupError::Restore(e.to_string()))?;
    let members: BTreeMap<u64, PeerNode> = cfg
        .nodes
        .iter()
        .map(|n| {
            (
                n.id,
                PeerNode {
                    raft_addr: n.raft_addr.clone(),
                    redis_addr: n.redis_addr.clone(),
                },
            )
        })
        .collect();
    for n in &cfg.nodes {
        let pristine = ensure_data_dir_identity(&n.data_dir, &cfg.cluster.name, n.id)
            .map_err(|e| BackupError::Restore(e.to_string()))?;
        if !pristine {
            return Err(BackupError::Restore(format!(
                "data dir {} of node {} is already in use; restore needs empty data dirs",
                n.data_dir.display(),
                n.id
            )));
        }
        crate::raft::state_machine::write_restored(&n.data_dir, &members, store)
            .await
            .map_err(|e| {
                BackupError::Restore(format!("node {} ({}): {e}", n.id, n.data_dir.display()))
            })?;
        progress(n.id);
    }
    Ok(header)
}

/// Reads a backup file.
pub fn read_file(path: &Path) -> Result<Vec<u8>, BackupError> {
    std::fs::read(path).map_err(|e| BackupError::Restore(format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_garbage() {
        let header = BackupHeader {
            cluster: "c".into(),
            node_id: 2,
            applied_index: 9,
            revision: 7,
            compact_revision: 0,
            keys: 0,
        };
        let store = Store::default().to_snapshot();
        let bytes = encode(&header, &store);
        let (h, s) = decode(&bytes).unwrap();
        assert_eq!(h, header);
        assert_eq!(s, &store[..]);
        assert!(decode(b"nope").is_err());
        assert!(decode(&bytes[..bytes.len() - 1]).is_err());
        let mut other = bytes.clone();
        other[MAGIC.len()] = 9;
        assert!(decode(&other).unwrap_err().to_string().contains("format 9"));
    }
}
