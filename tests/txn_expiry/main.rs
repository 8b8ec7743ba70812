//! Transactions and expiry capability on a three-node cluster of real processes: MULTI/EXEC
//! with WATCH (one Raft entry each) and key expiry (deadlines stamped by the proposing leader,
//! expired by the leader through the log).
//!
//! One test binary; each module below is one area, sharing the harness in `tests/common`.

#[path = "../common/mod.rs"]
mod common;

mod expiry_timer;
mod transactions_expiry;
