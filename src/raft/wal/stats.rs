//! The WAL's counters (group commit, bytes written), reported by `INFO raft` and `/metrics`.

use std::sync::atomic::AtomicU64;

use crate::metrics::{Histogram, BATCH_BUCKETS, LATENCY_BUCKETS};

/// Counters of the group commit, reported by `INFO` (`raft_log_flushes`, ...) and `/metrics`.
#[derive(Debug)]
pub struct FlushStats {
    /// Syncs that acknowledged at least one append.
    pub flushes: AtomicU64,
    /// Entries acknowledged by those syncs.
    pub entries: AtomicU64,
    /// Append calls acknowledged by those syncs.
    pub appends: AtomicU64,
    /// Every successful sync: those above, and those for a vote or the committed index alone.
    pub syncs: AtomicU64,
    /// Bytes of records written to the log, frames and padding included (the snapshot
    /// trigger's measure of the log: `raft/snapshot_trigger.rs`).
    pub bytes: AtomicU64,
    /// How long each successful group-commit `fdatasync` took
    /// (`redraft_log_flush_duration_seconds`).
    pub flush_seconds: Histogram,
    /// Entries acknowledged per successful sync (`redraft_log_flush_entries`).
    pub entries_per_flush: Histogram,
}

impl Default for FlushStats {
    fn default() -> Self {
        Self {
            flushes: AtomicU64::new(0),
            entries: AtomicU64::new(0),
            appends: AtomicU64::new(0),
            syncs: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            flush_seconds: Histogram::new(LATENCY_BUCKETS),
            entries_per_flush: Histogram::new(BATCH_BUCKETS),
        }
    }
}
