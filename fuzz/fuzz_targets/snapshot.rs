//! Fuzzes redraft's snapshot decoder (`Store::from_snapshot`: the store bytes of a snapshot
//! file, a peer's snapshot transfer, or a backup) with arbitrary bytes. The invariants
//! (NoPanicOnDisk, CautiousPrealloc): decoding never panics or aborts, and a store it accepts
//! encodes, reloads to an equal store and takes a write. A crash found here reproduces as a
//! plain `Store::from_snapshot` call; the bounded property test of damaged snapshots is in
//! `src/store/snapshot_delta_test.rs`.
//!
//! Run from the repository root: `cargo +nightly fuzz run snapshot` (seeds: any
//! `snapshot/current.snap` minus its header, or `Store::to_snapshot` output).
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use redraft::store::{Op, Request, Store};

fuzz_target!(|data: &[u8]| {
    let Ok(mut store) = Store::from_snapshot(data) else {
        return;
    };
    let again = Store::from_snapshot(&store.to_snapshot()).expect("a loaded store reloads");
    assert!(again == store, "a loaded store reloads to itself");
    store.apply(&Request::new(
        None,
        Op::Put {
            key: Bytes::from_static(b"fuzz"),
            value: Bytes::from_static(b"1"),
        },
    ));
});
