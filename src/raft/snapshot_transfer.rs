//! Snapshot transfer in chunks: the follower's side (the leader's is `full_snapshot` in
//! `network.rs`).
//!
//! Owns receiving a snapshot's store bytes into a temp file, checking them before openraft
//! sees them, and handing them to openraft to install. The leader sends
//! [`RpcRequest::SnapshotChunk`]s in order on one peer connection, each answered before the
//! next is sent, then one [`RpcRequest::SnapshotEnd`] with the total length, the vote and the
//! meta:
//!
//! ```text
//! leader ── SnapshotChunk { transfer, offset: 0, data } ──▶ follower   new temp file
//! leader ◀── SnapshotChunk(Ok) ─────────────────────────── follower
//! leader ── SnapshotChunk { transfer, offset: n, data } ──▶ follower   appended
//!   …
//! leader ── SnapshotEnd { transfer, len, vote, meta } ────▶ follower   fsync, decode, check,
//! leader ◀── FullSnapshot(Ok(SnapshotResponse)) ────────── follower   install_full_snapshot
//! ```
//!
//! - **ChunkBounded.** A chunk is at most [`chunk_bytes`] (1 MiB) on the leader and one peer
//!   frame on the follower; neither side holds more of the encoded snapshot in memory. The
//!   snapshot itself has no size cap.
//! - **TransferLosesNothing.** A chunk out of order (wrong transfer or offset), a length that
//!   does not match, or bytes that do not decode to a valid store end the transfer with an
//!   error and remove its temp file; openraft is never asked to install them, so the follower
//!   keeps its state and the leader tries again.
//!
//! [`RpcRequest::SnapshotChunk`]: super::wire::RpcRequest::SnapshotChunk
//! [`RpcRequest::SnapshotEnd`]: super::wire::RpcRequest::SnapshotEnd

use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;

use openraft::raft::SnapshotResponse;

use super::state_machine::{decode_mapped, SnapshotFile, StateMachineStore};
use super::typ::{Raft, Snapshot, SnapshotMeta, Vote};
use super::TypeConfig;

/// The default chunk size: 1 MiB.
pub const DEFAULT_CHUNK_BYTES: usize = 1 << 20;

/// The chunk size the leader sends: [`DEFAULT_CHUNK_BYTES`], or `REDRAFT_SNAPSHOT_CHUNK_BYTES`
/// from the environment (tests use small chunks to cross many of them), at most 64 MiB.
pub fn chunk_bytes() -> usize {
    std::env::var("REDRAFT_SNAPSHOT_CHUNK_BYTES")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .map_or(DEFAULT_CHUNK_BYTES, |n| n.min(64 << 20))
}

/// A transfer being received on one peer connection.
pub struct Incoming {
    transfer: u64,
    file: File,
    path: PathBuf,
    written: u64,
}

impl Drop for Incoming {
    fn drop(&mut self) {
        // A finished transfer's file has moved into its `SnapshotFile` (empty path here).
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Takes one chunk into `slot` (the connection's transfer in progress). Offset 0 starts
/// transfer `transfer` (dropping any other); any other chunk must continue the transfer in
/// progress exactly where it stands (TransferLosesNothing).
pub fn take_chunk(
    sm: &StateMachineStore,
    slot: &mut Option<Incoming>,
    transfer: u64,
    offset: u64,
    data: &[u8],
) -> Result<(), String> {
    if offset == 0 {
        // Dropping the old one removes its temp file.
        *slot = None;
        let path = sm.temp_path("transfer");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        *slot = Some(Incoming {
            transfer,
            file,
            path,
            written: 0,
        });
    }
    let Some(incoming) = slot.as_mut() else {
        return Err(format!(
            "snapshot chunk at offset {offset} of transfer {transfer}, which was not started"
        ));
    };
    if incoming.transfer != transfer || incoming.written != offset {
        let why = format!(
            "snapshot chunk of transfer {transfer} at offset {offset}, expected transfer {} at \
             offset {}",
            incoming.transfer, incoming.written
        );
        *slot = None;
        return Err(why);
    }
    if let Err(e) = incoming.file.write_all(data) {
        *slot = None;
        return Err(format!("cannot write snapshot chunk: {e}"));
    }
    incoming.written += data.len() as u64;
    Ok(())
}

/// Ends transfer `transfer` of `len` bytes: checks it is complete, fsyncs it and decodes and
/// checks the store (blocking: call on a blocking thread). On any error the temp file is
/// removed and nothing is installed (TransferLosesNothing).
pub fn finish(mut incoming: Incoming, transfer: u64, len: u64) -> Result<SnapshotFile, String> {
    if incoming.transfer != transfer || incoming.written != len {
        return Err(format!(
            "snapshot transfer {transfer} ended at {len} bytes, but {} bytes of transfer {} \
             arrived",
            incoming.written, incoming.transfer
        ));
    }
    let io = |e: io::Error| format!("snapshot transfer: {e}");
    incoming.file.sync_all().map_err(io)?;
    let store =
        decode_mapped(&incoming.file, 0, len).map_err(|e| format!("snapshot refused: {e}"))?;
    let file = incoming.file.try_clone().map_err(io)?;
    let path = std::mem::take(&mut incoming.path);
    Ok(SnapshotFile::received(file, path, len, store))
}

/// Receives a whole snapshot sent in one frame (a peer of an older build): written to a temp
/// file and checked like a chunked transfer.
pub fn receive_whole(sm: &StateMachineStore, data: &[u8]) -> Result<SnapshotFile, String> {
    let mut slot = None;
    take_chunk(sm, &mut slot, 0, 0, data)?;
    let incoming = slot.take().ok_or("transfer vanished")?;
    finish(incoming, 0, data.len() as u64)
}

/// Ends a chunked snapshot transfer: checks the received bytes (off the runtime) and, only if
/// they are a complete, valid store, hands them to openraft to install (TransferLosesNothing).
pub async fn install_transfer(
    raft: &Raft,
    incoming: Option<Incoming>,
    transfer: u64,
    len: u64,
    vote: Vote,
    meta: SnapshotMeta,
) -> Result<SnapshotResponse<TypeConfig>, String> {
    let incoming =
        incoming.ok_or_else(|| format!("snapshot transfer {transfer} was not started"))?;
    install_checked(raft, vote, meta, move || finish(incoming, transfer, len)).await
}

/// Installs a snapshot sent whole in one frame (a peer of an older build), checked first.
pub async fn install_whole(
    raft: &Raft,
    sm: &StateMachineStore,
    vote: Vote,
    meta: SnapshotMeta,
    data: Vec<u8>,
) -> Result<SnapshotResponse<TypeConfig>, String> {
    let sm = sm.clone();
    install_checked(raft, vote, meta, move || receive_whole(&sm, &data)).await
}

/// Runs `check` off the runtime and installs the file it gives; openraft never sees bytes
/// that `check` refused (TransferLosesNothing).
async fn install_checked(
    raft: &Raft,
    vote: Vote,
    meta: SnapshotMeta,
    check: impl FnOnce() -> Result<SnapshotFile, String> + Send + 'static,
) -> Result<SnapshotResponse<TypeConfig>, String> {
    let file = tokio::task::spawn_blocking(check)
        .await
        .map_err(|e| e.to_string())??;
    let snapshot = Snapshot {
        meta,
        snapshot: file,
    };
    raft.install_full_snapshot(vote, snapshot)
        .await
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    fn must_sm() -> (tempfile::TempDir, StateMachineStore) {
        let dir = tempfile::tempdir().unwrap();
        let sm = StateMachineStore::open(dir.path()).unwrap();
        (dir, sm)
    }

    fn temp_files(sm: &StateMachineStore) -> usize {
        std::fs::read_dir(sm.dir())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "tmp")
            })
            .count()
    }

    fn sample() -> Vec<u8> {
        let mut s = crate::store::Store::new();
        for i in 0..200u32 {
            s.apply(&crate::store::Request {
                client: None,
                op: crate::store::Op::Put {
                    key: bytes::Bytes::from(format!("k{i}")),
                    value: bytes::Bytes::from(vec![b'x'; 50]),
                },
                at_ms: 0,
            });
        }
        s.to_snapshot()
    }

    /// Sends `bytes` in chunks of `n`; returns the result of the end.
    fn send(sm: &StateMachineStore, bytes: &[u8], n: usize) -> Result<SnapshotFile, String> {
        let mut slot = None;
        let mut offset = 0;
        for chunk in bytes.chunks(n) {
            take_chunk(sm, &mut slot, 7, offset, chunk)?;
            offset += chunk.len() as u64;
        }
        finish(slot.take().unwrap(), 7, bytes.len() as u64)
    }

    #[test]
    fn chunks_reassemble_and_the_temp_file_goes_with_the_snapshot() {
        let (_d, sm) = must_sm();
        let bytes = sample();
        assert!(bytes.len() > 10 * 1000);
        let got = send(&sm, &bytes, 1000).unwrap();
        assert_eq!(got.len(), bytes.len() as u64);
        let mut back = Vec::new();
        got.reader().unwrap().read_to_end(&mut back).unwrap();
        assert_eq!(back, bytes);
        assert_eq!(temp_files(&sm), 1);
        drop(got);
        assert_eq!(temp_files(&sm), 0);
    }

    #[test]
    fn a_bad_stream_is_an_error_and_leaves_nothing() {
        let (_d, sm) = must_sm();
        let bytes = sample();
        // A chunk skipped.
        let mut slot = None;
        take_chunk(&sm, &mut slot, 1, 0, &bytes[..100]).unwrap();
        let err = take_chunk(&sm, &mut slot, 1, 200, &bytes[200..300]).unwrap_err();
        assert!(err.contains("expected transfer 1 at offset 100"), "{err}");
        assert!(slot.is_none());
        // A chunk of another transfer.
        take_chunk(&sm, &mut slot, 1, 0, &bytes[..100]).unwrap();
        assert!(take_chunk(&sm, &mut slot, 2, 100, &bytes[100..200]).is_err());
        // A chunk with no transfer started.
        assert!(take_chunk(&sm, &mut slot, 3, 100, &bytes[100..200]).is_err());
        // Truncated: the end names more bytes than arrived.
        take_chunk(&sm, &mut slot, 4, 0, &bytes[..bytes.len() - 1]).unwrap();
        let err = finish(slot.take().unwrap(), 4, bytes.len() as u64)
            .err()
            .unwrap();
        assert!(err.contains("arrived"), "{err}");
        // Truncated consistently: the length matches, the store does not decode.
        let short = &bytes[..bytes.len() - 1];
        assert!(send(&sm, short, 1000).err().unwrap().contains("truncated"));
        // Forged: a flipped byte that breaks the store.
        let mut forged = bytes.clone();
        forged[0] ^= 0xff;
        assert!(send(&sm, &forged, 1000).is_err());
        assert!(receive_whole(&sm, b"").is_err());
        assert_eq!(
            temp_files(&sm),
            0,
            "every refused transfer's temp file is removed"
        );
    }
}
