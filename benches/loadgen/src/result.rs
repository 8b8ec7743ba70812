//! What one run measured, as one JSON line: the run's parameters, counts, throughput, latency
//! percentiles and CDF points from an HDR histogram, and for failover runs the client-side
//! timeline. `compare.sh` appends one line per run to `results.jsonl`; `table` and `plot`
//! read them back.

use std::io::BufRead;
use std::path::Path;

use anyhow::Context;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// A latency histogram in microseconds, 1 µs to 100 s at 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000, 3).expect("valid histogram bounds")
}

/// Records `us` microseconds, clamped into the histogram's range.
pub fn record(h: &mut Histogram<u64>, us: u64) {
    h.saturating_record(us.max(1));
}

/// Merges per-connection histograms into one.
pub fn merge<'a>(parts: impl IntoIterator<Item = &'a Histogram<u64>>) -> Histogram<u64> {
    let mut all = histogram();
    for h in parts {
        all.add(h).expect("histograms share bounds");
    }
    all
}

/// Latency percentiles, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

/// The quantiles the CDF keeps (enough points for a smooth curve up to p99.9).
const CDF_QUANTILES: &[f64] = &[
    0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.97, 0.98, 0.99, 0.995,
    0.999, 0.9999, 1.0,
];

impl Latency {
    pub fn from_histogram(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Latency {
            mean: h.mean() / 1000.0,
            p50: ms(h.value_at_quantile(0.5)),
            p90: ms(h.value_at_quantile(0.9)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        }
    }
}

/// CDF points `(quantile, latency ms)` of a histogram.
pub fn cdf(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    CDF_QUANTILES
        .iter()
        .map(|&q| (q, h.value_at_quantile(q) as f64 / 1000.0))
        .collect()
}

/// The failover measurements: what the client saw around a kill -9 of the leader.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Failover {
    /// Width of a timeline bucket.
    pub bucket_ms: u64,
    /// Successful writes per bucket since the start of the run.
    pub ok_per_bucket: Vec<u64>,
    /// When the leader was killed, and restarted, since the start of the run.
    pub kill_at_ms: f64,
    pub restart_at_ms: f64,
    /// Which node (1-based) was the leader and was killed.
    pub killed_node: usize,
    /// The longest gap between two consecutive successful writes (any connection) around the
    /// kill: the unavailability window as clients see it.
    pub unavailable_ms: f64,
    /// From the kill to the first successful write after that gap.
    pub first_ok_after_kill_ms: f64,
    /// From the restart until the restarted node serves a local (stale or serializable) read
    /// of a key written at restart time; `None` if it never did within the run.
    pub catchup_ms: Option<f64>,
}

/// One node's group-commit counters over a run's measured time (redraft's `INFO raft`
/// `raft_log_flushes` and `raft_log_entries_flushed`, after minus before).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeFlush {
    pub endpoint: String,
    /// The node was the leader when the run ended.
    pub leader: bool,
    /// Log flushes (each one fsync of the log) during the run.
    pub flushes: u64,
    /// Log entries those flushes made durable.
    pub entries: u64,
    /// Entries the node's proposal batcher proposed and the client requests they carried
    /// (`INFO raft` `raft_proposal_entries`, `raft_proposal_requests`; not on older builds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposals: Option<(u64, u64)>,
    /// Every sync of the log during the run, committed-index-only ones included (`INFO raft`
    /// `raft_log_syncs`; not on older builds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syncs: Option<u64>,
}

/// Group commit under load: how many log entries each fsync covered, per node.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LogFlush {
    pub nodes: Vec<NodeFlush>,
}

impl LogFlush {
    /// Entries per flush on the leader (`None` without a leader or without a flush).
    pub fn leader_entries_per_flush(&self) -> Option<f64> {
        let l = self.nodes.iter().find(|n| n.leader)?;
        (l.flushes > 0).then(|| l.entries as f64 / l.flushes as f64)
    }

    /// Client requests per proposed entry, over every node's batcher (`None` on builds
    /// without proposal batching or without a proposal).
    pub fn requests_per_entry(&self) -> Option<f64> {
        let (mut e, mut r) = (0u64, 0u64);
        for n in &self.nodes {
            let (ne, nr) = n.proposals?;
            e += ne;
            r += nr;
        }
        (e > 0).then(|| r as f64 / e as f64)
    }

    /// Entries per flush over every node (followers flush what they are sent, too).
    pub fn all_entries_per_flush(&self) -> Option<f64> {
        let f: u64 = self.nodes.iter().map(|n| n.flushes).sum();
        let e: u64 = self.nodes.iter().map(|n| n.entries).sum();
        (f > 0).then(|| e as f64 / f as f64)
    }
}

/// The snapshots a run forced (`--force-snapshots`): `RAFT.SNAPSHOT` sent to the leader every
/// `interval_ms`, each waiting for its snapshot.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ForcedSnapshots {
    pub interval_ms: u64,
    /// Snapshots that completed (`+OK`) during the run.
    pub taken: u64,
    /// Calls that failed (error reply or broken connection).
    pub failed: u64,
    /// Time a `RAFT.SNAPSHOT` call took, mean and max.
    pub mean_ms: f64,
    pub max_ms: f64,
}

/// One run: a workload on one system with one set of parameters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    pub system: String,
    pub workload: String,
    /// The read mode of reads (redraft: linearizable, lease, stale; etcd: linearizable,
    /// serializable), or the watch mechanism of watch-latency runs; empty otherwise.
    pub mode: String,
    pub value_size: usize,
    pub concurrency: usize,
    pub pipeline: usize,
    /// Repetition number, for interleaved repetitions.
    pub rep: u32,
    /// `ok`, `unsupported` (the server refused the workload's commands) or `failed`.
    pub status: String,
    /// Why a run is not `ok`, or anything worth knowing about it.
    pub note: String,
    pub duration_s: f64,
    /// Successful operations (watch: events received).
    pub ops: u64,
    /// Failed operations (error replies, broken connections; watch: events never received).
    pub errors: u64,
    /// Successful operations per second.
    pub throughput: f64,
    pub latency_ms: Latency,
    pub cdf: Vec<(f64, f64)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover: Option<Failover>,
    /// redraft write runs: the group-commit counters of every node over the measured time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_flush: Option<LogFlush>,
    /// Runs with `--force-snapshots`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forced_snapshots: Option<ForcedSnapshots>,
    /// Runs with `--server-pids`: the servers' CPU over the measured time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_cpu: Option<ServerCpu>,
}

/// The server processes' CPU time (user + system, all threads, every node) over a run's
/// measured time.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerCpu {
    /// How many processes were counted.
    pub processes: usize,
    /// Their CPU seconds, summed.
    pub cpu_s: f64,
    /// Microseconds of server CPU per successful operation.
    pub us_per_op: f64,
}

/// Reads every result in a JSON-lines file (blank lines are skipped).
pub fn read_jsonl(path: &Path) -> anyhow::Result<Vec<RunResult>> {
    let file = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(
            serde_json::from_str(&line)
                .with_context(|| format!("{}:{}: not a result", path.display(), i + 1))?,
        );
    }
    Ok(out)
}

/// Appends `result` to `path` as one JSON line.
pub fn append_jsonl(path: &Path, result: &RunResult) -> anyhow::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("open {}", path.display()))?;
    writeln!(f, "{}", serde_json::to_string(result)?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_keeps_every_sample() {
        let mut a = histogram();
        let mut b = histogram();
        for us in 1..=1000 {
            record(&mut a, us);
        }
        for _ in 0..1000 {
            record(&mut b, 100_000);
        }
        record(&mut b, 0); // clamped to 1 µs, not dropped
        let all = merge([&a, &b]);
        assert_eq!(all.len(), 2001);
        let lat = Latency::from_histogram(&all);
        // Half the samples are ≤ 1 ms, the other half 100 ms: p50 sits on the boundary.
        assert!((0.99..=1.01).contains(&lat.p50), "{lat:?}");
        assert!((99.0..=101.0).contains(&lat.p99), "{lat:?}");
        assert!(all.min() == 1);
    }

    #[test]
    fn cdf_is_monotonic_and_ends_at_max() {
        let mut h = histogram();
        for us in [5, 50, 500, 5000, 50_000] {
            record(&mut h, us);
        }
        let points = cdf(&h);
        assert_eq!(points.first().unwrap().0, 0.0);
        assert_eq!(points.last().unwrap().0, 1.0);
        assert!(points.windows(2).all(|w| w[0].1 <= w[1].1), "{points:?}");
        assert!((points.last().unwrap().1 - 50.0).abs() < 0.1);
        assert!(cdf(&histogram()).is_empty());
    }

    #[test]
    fn entries_per_flush() {
        let node = |leader, flushes, entries| NodeFlush {
            endpoint: "h:1".into(),
            leader,
            flushes,
            entries,
            proposals: Some((flushes, entries * 4)),
            syncs: None,
        };
        let f = LogFlush {
            nodes: vec![
                node(false, 10, 100),
                node(true, 20, 300),
                node(false, 10, 0),
            ],
        };
        assert_eq!(f.leader_entries_per_flush(), Some(15.0));
        assert_eq!(f.all_entries_per_flush(), Some(10.0));
        // (10+20+10) entries carried (100+300+0)*4 requests.
        assert_eq!(f.requests_per_entry(), Some(40.0));
        let no_leader = LogFlush {
            nodes: vec![node(false, 10, 100)],
        };
        assert_eq!(no_leader.leader_entries_per_flush(), None);
        let idle = LogFlush {
            nodes: vec![node(true, 0, 0)],
        };
        assert_eq!(idle.leader_entries_per_flush(), None);
        assert_eq!(idle.all_entries_per_flush(), None);
    }

    #[test]
    fn results_round_trip_through_json_lines() {
        let dir = std::env::temp_dir().join(format!("loadgen-result-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("r.jsonl");
        let _ = std::fs::remove_file(&path);
        let mut h = histogram();
        record(&mut h, 1500);
        let a = RunResult {
            system: "redraft".into(),
            workload: "get".into(),
            mode: "lease".into(),
            value_size: 256,
            concurrency: 64,
            pipeline: 1,
            rep: 2,
            status: "ok".into(),
            ops: 10,
            throughput: 5.0,
            latency_ms: Latency::from_histogram(&h),
            cdf: cdf(&h),
            ..RunResult::default()
        };
        let b = RunResult {
            workload: "failover".into(),
            failover: Some(Failover {
                bucket_ms: 100,
                ok_per_bucket: vec![3, 0, 4],
                catchup_ms: None,
                ..Failover::default()
            }),
            log_flush: Some(LogFlush {
                nodes: vec![NodeFlush {
                    endpoint: "h:1".into(),
                    leader: true,
                    flushes: 3,
                    entries: 40,
                    proposals: None,
                    syncs: None,
                }],
            }),
            forced_snapshots: Some(ForcedSnapshots {
                interval_ms: 1000,
                taken: 2,
                ..ForcedSnapshots::default()
            }),
            ..a.clone()
        };
        append_jsonl(&path, &a).unwrap();
        append_jsonl(&path, &b).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(
            text.lines().next().unwrap().contains("\"p99\":1.5"),
            "{text}"
        );
        for absent in ["failover\":", "log_flush", "forced_snapshots"] {
            assert!(!text.lines().next().unwrap().contains(absent), "{text}");
        }
        assert_eq!(read_jsonl(&path).unwrap(), vec![a, b]);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
