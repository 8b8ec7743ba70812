//! Durability capability: what was acknowledged survives (DurableBeforeAck, FailStop): the log
//! seen from outside a real process (fdatasync counts, torn and corrupt records, a full disk), a
//! node that stops when its flush fails, a whole-cluster kill -9, and openraft's storage
//! conformance suite against the log store and the state machine.
//!
//! One test binary; each module below is one area, sharing the harness in `tests/common`.

#[path = "../common/mod.rs"]
mod common;

mod cluster_durability;
mod durable_reads;
mod fail_stop;
mod snapshot_cadence;
mod storage_suite;
mod wal_durability;
