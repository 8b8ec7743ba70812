//! Fuzzes opening redraft's Raft log (`raft::wal::Wal::open`) over segment files of arbitrary
//! bytes, on the real filesystem (a directory under `/dev/shm`, or the temp dir). The input is
//! split into one to three segment files (its first bytes say where), each given the segment
//! magic unless it already starts with it. The invariants (NoPanicOnDisk): opening never panics or
//! aborts; a log that opens reads its entries back without a panic. The bounded random-damage
//! test is `src/raft/wal/tests/damage.rs`.
//!
//! Run from the repository root: `cargo +nightly fuzz run wal_open` (seeds: segment files of
//! any data dir's `raft-log/wal/`).
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use redraft::raft::wal::disk::RealDisk;
use redraft::raft::wal::{FlushStats, Wal, WalOptions, MAGIC};

fuzz_target!(|data: &[u8]| {
    let base = std::path::Path::new("/dev/shm");
    let dir = tempfile::tempdir_in(if base.is_dir() {
        base
    } else {
        std::path::Path::new("/tmp")
    })
    .expect("temp dir");
    // Byte 0 picks 1-3 segments, then a u16 length for each but the last, then the bytes.
    let Some((&first, mut rest)) = data.split_first() else {
        return;
    };
    let count = 1 + usize::from(first % 3);
    let mut parts = Vec::with_capacity(count);
    for _ in 1..count {
        let Some((len, tail)) = rest.split_first_chunk::<2>() else {
            break;
        };
        let len = usize::from(u16::from_le_bytes(*len)).min(tail.len());
        let (part, tail) = tail.split_at(len);
        parts.push(part);
        rest = tail;
    }
    parts.push(rest);
    for (seq, part) in (1u64..).zip(parts) {
        let mut bytes = Vec::with_capacity(part.len() + MAGIC.len());
        if !part.starts_with(MAGIC) {
            bytes.extend_from_slice(MAGIC);
        }
        bytes.extend_from_slice(part);
        std::fs::write(dir.path().join(format!("{seq:020}.seg")), bytes).expect("write");
    }
    let disk = Arc::new(RealDisk::open(dir.path()).expect("disk"));
    let opts = WalOptions {
        segment_bytes: 4096,
        ..WalOptions::default()
    };
    if let Ok(wal) = Wal::open(disk, opts, Arc::new(FlushStats::default())) {
        let _ = wal.entries(..);
    }
});
