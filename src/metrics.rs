//! Metric handles every layer records into, and the Prometheus text exposition they render to.
//!
//! Owns the counters and histograms that no other structure already keeps (a histogram per
//! measured duration, leader changes, proposals, commands per type). Gauges that the node
//! already tracks (term, indexes, keys, connected clients) are read at scrape time by
//! `server/http.rs` and are not copied here. Imports nothing from the rest of the crate, so any
//! layer may record into it.
//!
//! Names follow `redraft_<subsystem>_<name>_<unit>` (STYLE.md; etcd's
//! `server/storage/mvcc/metrics.go`): `_total` for counters, `_seconds` for durations, no unit
//! for a dimensionless gauge.
//!
//! Recording is a relaxed atomic add: never a lock on a hot path.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A fixed-bucket histogram (Prometheus `histogram`): cumulative counts are computed at render
/// time from per-bucket counts.
#[derive(Debug)]
pub struct Histogram {
    /// Upper bounds, ascending; `+Inf` is implied after the last.
    bounds: &'static [f64],
    /// One count per bound plus one for `+Inf`.
    counts: Vec<AtomicU64>,
    /// The sum of observed values, in millionths of the unit (so an atomic integer holds it).
    sum_micros: AtomicU64,
}

/// Bucket bounds for disk flushes and other sub-second latencies, in seconds.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Bucket bounds for snapshot builds, in seconds.
pub const SNAPSHOT_BUCKETS: &[f64] = &[0.001, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0];

/// Bucket bounds for a count per batch (entries per log flush).
pub const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        debug_assert!(bounds.windows(2).all(|w| w[0] < w[1]), "ascending bounds");
        Self {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
        }
    }

    /// Records one observation of `value` (in the histogram's unit).
    pub fn observe(&self, value: f64) {
        let i = self
            .bounds
            .iter()
            .position(|b| value <= *b)
            .unwrap_or(self.bounds.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        let micros = (value.max(0.0) * 1e6).round() as u64;
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// Records a duration in seconds.
    pub fn observe_duration(&self, d: Duration) {
        self.observe(d.as_secs_f64());
    }

    /// How many observations were recorded.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// Appends this histogram's exposition lines (`_bucket`, `_sum`, `_count`) to `out`.
    pub fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0u64;
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            cumulative += count.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        cumulative += self.counts[self.bounds.len()].load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {cumulative}");
    }
}

/// Appends a single-sample counter or gauge.
pub fn render_one(out: &mut String, kind: &str, name: &str, help: &str, value: impl SampleValue) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    let _ = writeln!(out, "{name} {}", value.text());
}

/// Appends a metric family with one sample per `(label value, value)`.
pub fn render_labelled<V: SampleValue>(
    out: &mut String,
    kind: &str,
    name: &str,
    help: &str,
    label: &str,
    samples: impl IntoIterator<Item = (String, V)>,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (l, v) in samples {
        let _ = writeln!(
            out,
            "{name}{{{label}=\"{}\"}} {}",
            escape_label(&l),
            v.text()
        );
    }
}

/// A label value escaped as the text format requires (backslash, quote, newline).
fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A sample value in the text format.
pub trait SampleValue {
    fn text(&self) -> String;
}

impl SampleValue for u64 {
    fn text(&self) -> String {
        self.to_string()
    }
}

impl SampleValue for i64 {
    fn text(&self) -> String {
        self.to_string()
    }
}

impl SampleValue for f64 {
    fn text(&self) -> String {
        if self.is_finite() {
            self.to_string()
        } else if self.is_nan() {
            "NaN".into()
        } else if *self > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    }
}

/// Counters of one node that no other structure keeps.
#[derive(Debug)]
pub struct NodeMetrics {
    /// Times this node saw the leader change to a new, known leader.
    pub leader_changes: AtomicU64,
    /// Client writes proposed through this node that came back applied.
    pub proposals_committed: AtomicU64,
    /// Client writes proposed through this node that failed (no leader, outcome unknown, fatal).
    pub proposals_failed: AtomicU64,
    /// Snapshots built by this node.
    pub snapshot_builds: AtomicU64,
    /// Of those, deltas appended to the current snapshot file (DeltaAppend).
    pub snapshot_deltas: AtomicU64,
    /// Snapshots received from a leader and installed.
    pub snapshot_installs: AtomicU64,
    /// The store revision of the newest snapshot this node built, installed or restored
    /// (`raft::snapshot_trigger`).
    pub snapshot_revision: AtomicU64,
    /// The size in bytes of the current snapshot file.
    pub snapshot_bytes: AtomicU64,
    /// The size in bytes of the current snapshot's full dump, without the deltas appended
    /// after it: what the next full snapshot costs (`raft::snapshot_trigger`).
    pub snapshot_base_bytes: AtomicU64,
    /// How long building (and persisting) a snapshot took.
    pub snapshot_build_seconds: Histogram,
    /// Leadership transfers this node started (RAFT.TRANSFER, SHUTDOWN).
    pub leader_transfers: AtomicU64,
    /// Log entries the proposal batcher proposed as leader (`raft::batcher`).
    pub batched_entries: AtomicU64,
    /// Client requests those entries carried.
    pub batched_requests: AtomicU64,
    /// As leader: flushes announced to a follower (`raft::early_commit`).
    pub flush_announcements: AtomicU64,
    /// As follower: commits this node made from a leader's announced flush and its own.
    pub early_commits: AtomicU64,
    /// As leader: commit-only AppendEntries not sent because the follower was told of the
    /// commit by an announcement (ProbeSkippedWhenTold, `raft::pipeline`).
    pub commit_probes_skipped: AtomicU64,
    /// Times the expiry timer woke: deadlines, leadership changes, its idle recheck
    /// (`raft::expiry`; QuietWatchers: writes alone do not wake it).
    pub expiry_wakeups: AtomicU64,
}

impl Default for NodeMetrics {
    fn default() -> Self {
        Self {
            leader_changes: AtomicU64::new(0),
            proposals_committed: AtomicU64::new(0),
            proposals_failed: AtomicU64::new(0),
            snapshot_builds: AtomicU64::new(0),
            snapshot_deltas: AtomicU64::new(0),
            snapshot_installs: AtomicU64::new(0),
            snapshot_revision: AtomicU64::new(0),
            snapshot_bytes: AtomicU64::new(0),
            snapshot_base_bytes: AtomicU64::new(0),
            snapshot_build_seconds: Histogram::new(SNAPSHOT_BUCKETS),
            leader_transfers: AtomicU64::new(0),
            batched_entries: AtomicU64::new(0),
            flush_announcements: AtomicU64::new(0),
            early_commits: AtomicU64::new(0),
            commit_probes_skipped: AtomicU64::new(0),
            expiry_wakeups: AtomicU64::new(0),
            batched_requests: AtomicU64::new(0),
        }
    }
}

/// One counter per slot (commands per type: one slot per top-level command of the table).
#[derive(Debug)]
pub struct CounterVec {
    counts: Vec<AtomicU64>,
}

impl CounterVec {
    pub fn new(slots: usize) -> Self {
        Self {
            counts: (0..slots).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Adds one to `slot`; a slot out of range is ignored.
    pub fn inc(&self, slot: usize) {
        if let Some(c) = self.counts.get(slot) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn get(&self, slot: usize) -> u64 {
        self.counts
            .get(slot)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_renders_cumulative_buckets_sum_and_count() {
        let h = Histogram::new(&[1.0, 2.0]);
        h.observe(0.5);
        h.observe(1.5);
        h.observe(1.5);
        h.observe(9.0);
        let mut out = String::new();
        h.render(&mut out, "redraft_x_seconds", "help text");
        let want = "# HELP redraft_x_seconds help text\n# TYPE redraft_x_seconds histogram\n\
                    redraft_x_seconds_bucket{le=\"1\"} 1\nredraft_x_seconds_bucket{le=\"2\"} 3\n\
                    redraft_x_seconds_bucket{le=\"+Inf\"} 4\nredraft_x_seconds_sum 12.5\n\
                    redraft_x_seconds_count 4\n";
        assert_eq!(out, want);
        assert_eq!(h.count(), 4);
    }

    #[test]
    fn labels_are_escaped() {
        let mut out = String::new();
        render_labelled(
            &mut out,
            "counter",
            "redraft_y_total",
            "h",
            "command",
            [("a\"b\\c\n".to_string(), 3u64)],
        );
        assert!(
            out.ends_with("redraft_y_total{command=\"a\\\"b\\\\c\\n\"} 3\n"),
            "{out}"
        );
    }

    #[test]
    fn counter_vec_ignores_out_of_range_slots() {
        let v = CounterVec::new(2);
        v.inc(1);
        v.inc(7);
        assert_eq!((v.get(0), v.get(1), v.get(7)), (0, 1, 0));
    }
}
