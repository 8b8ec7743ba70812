//! The `run` subcommand's arguments: which system, which workload, which parameters, and the
//! checks that reject a combination that makes no sense (a read mode etcd has not, pipelining
//! over gRPC) before anything connects.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;

/// How the load generator speaks to a system.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// RESP: redraft and Redis.
    Resp,
    /// The etcd v3 gRPC API.
    Etcd,
}

/// The system under test; its label (e.g. `redis-aof`) is free, its kind decides the protocol
/// and what "leader", "read mode" and "watch" mean.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum System {
    Redraft,
    Redis,
    Etcd,
}

impl System {
    pub fn protocol(self) -> Protocol {
        match self {
            System::Redraft | System::Redis => Protocol::Resp,
            System::Etcd => Protocol::Etcd,
        }
    }
}

impl FromStr for System {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        Ok(match s {
            "redraft" => System::Redraft,
            "redis" => System::Redis,
            "etcd" => System::Etcd,
            _ => bail!("unknown system {s:?}: redraft, redis or etcd"),
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    Set,
    Get,
    /// 50 % SET, 50 % GET, chosen at random per operation.
    Mixed,
    /// Put on one node, time until the event arrives on another.
    WatchLatency,
    /// Steady writes, kill -9 the leader, restart it.
    Failover,
    /// Writes keys `0..keys` once each, in order, then (with `--total-ops`) overwrites keys
    /// chosen uniformly until that many writes are acknowledged: the load of `scale.sh`.
    Fill,
    /// `EVALSHA` of redis-py's lock release script (compare-and-delete) on a random lock key
    /// (RESP only): on redraft every call is a Raft entry run at apply on every node.
    Evalsha,
    /// `HSET` of one random field of one hash (RESP only).
    Hset,
    /// `HGET` of one random field of that hash, every field written first (RESP only).
    Hget,
}

impl FromStr for Workload {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        Ok(match s {
            "set" => Workload::Set,
            "get" => Workload::Get,
            "mixed" => Workload::Mixed,
            "watch-latency" => Workload::WatchLatency,
            "failover" => Workload::Failover,
            "fill" => Workload::Fill,
            "evalsha" => Workload::Evalsha,
            "hset" => Workload::Hset,
            "hget" => Workload::Hget,
            _ => bail!(
                "unknown workload {s:?}: set, get, mixed, watch-latency, failover, fill, \
                 evalsha, hset or hget"
            ),
        })
    }
}

impl Workload {
    /// Workloads with no etcd counterpart (scripts, hashes).
    pub fn resp_only(self) -> bool {
        matches!(self, Workload::Evalsha | Workload::Hset | Workload::Hget)
    }

    /// Workloads whose operations are writes (on redraft: Raft entries).
    pub fn writes(self) -> bool {
        matches!(
            self,
            Workload::Set | Workload::Mixed | Workload::Fill | Workload::Evalsha | Workload::Hset
        )
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Workload::Set => "set",
            Workload::Get => "get",
            Workload::Mixed => "mixed",
            Workload::WatchLatency => "watch-latency",
            Workload::Failover => "failover",
            Workload::Fill => "fill",
            Workload::Evalsha => "evalsha",
            Workload::Hset => "hset",
            Workload::Hget => "hget",
        })
    }
}

/// Parses `5`, `5s`, `1.5s` or `500ms`.
pub fn parse_duration(s: &str) -> anyhow::Result<Duration> {
    let (num, scale) = if let Some(ms) = s.strip_suffix("ms") {
        (ms, 1e-3)
    } else if let Some(secs) = s.strip_suffix('s') {
        (secs, 1.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num
        .parse()
        .with_context(|| format!("bad duration {s:?}: e.g. 5s or 500ms"))?;
    if !(v >= 0.0 && v.is_finite()) {
        bail!("bad duration {s:?}");
    }
    Ok(Duration::from_secs_f64(v * scale))
}

#[derive(Args, Clone, Debug)]
pub struct RunArgs {
    /// redraft, redis or etcd.
    #[arg(long)]
    pub system: System,
    /// The name written in the results (default: the system), e.g. `redis-aof`.
    #[arg(long)]
    pub label: Option<String>,
    /// Comma-separated host:port of every node (etcd: client URLs or host:port).
    #[arg(long, value_delimiter = ',', required = true)]
    pub endpoints: Vec<String>,
    /// set, get, mixed, watch-latency, failover or fill.
    #[arg(long)]
    pub workload: Workload,
    /// Reads: redraft linearizable|lease|stale, etcd linearizable|serializable. Watch:
    /// redraft xread|keyspace, etcd watch, redis keyspace.
    #[arg(long, default_value = "")]
    pub mode: String,
    #[arg(long, default_value_t = 256)]
    pub value_size: usize,
    /// Connections (RESP) or concurrent requests (etcd).
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Commands per round trip on each RESP connection.
    #[arg(long, default_value_t = 1)]
    pub pipeline: usize,
    /// Measured time.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Time run before measuring (not for failover).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Keys the set/get/mixed workloads choose from, uniformly (fill: the keys written in
    /// order first).
    #[arg(long, default_value_t = 1000)]
    pub keys: u64,
    /// set and fill: stop once this many writes are acknowledged instead of after
    /// `--duration` (no warm-up; a failed write is retried until acknowledged). fill: at least
    /// `--keys`, which is also the default.
    #[arg(long)]
    pub total_ops: Option<u64>,
    /// redraft writes: send `RAFT.SNAPSHOT` to the leader this often during the measured time
    /// (each waits for its snapshot), to measure what snapshots cost the writes.
    #[arg(long, value_parser = parse_duration)]
    pub force_snapshots: Option<Duration>,
    /// Comma-separated PIDs of the server processes (every node): their CPU time (user +
    /// system, all threads) over the measured time is reported per operation (`server_cpu`).
    #[arg(long, value_delimiter = ',')]
    pub server_pids: Vec<u32>,
    /// Repetition number, recorded in the result.
    #[arg(long, default_value_t = 1)]
    pub rep: u32,
    /// Append the result to this JSON-lines file (it is always printed on stdout too).
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
    /// watch-latency: time between two puts.
    #[arg(long, default_value = "10ms", value_parser = parse_duration)]
    pub watch_interval: Duration,
    /// failover: shell command that kill -9s node `{node}` (1-based index in --endpoints).
    #[arg(long, default_value = "")]
    pub kill_cmd: String,
    /// failover: shell command that restarts node `{node}` in the background.
    #[arg(long, default_value = "")]
    pub restart_cmd: String,
    /// failover: when the leader is killed, after the start.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub kill_after: Duration,
    /// failover: how long the killed node stays down.
    #[arg(long, default_value = "4s", value_parser = parse_duration)]
    pub restart_after: Duration,
    /// failover: width of the timeline's buckets.
    #[arg(long, default_value = "100ms", value_parser = parse_duration)]
    pub bucket: Duration,
}

impl RunArgs {
    pub fn label(&self) -> String {
        self.label.clone().unwrap_or_else(|| {
            match self.system {
                System::Redraft => "redraft",
                System::Redis => "redis",
                System::Etcd => "etcd",
            }
            .to_string()
        })
    }

    /// Rejects combinations that make no sense, naming the flag.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.concurrency == 0 || self.pipeline == 0 || self.keys == 0 {
            bail!("--concurrency, --pipeline and --keys must be at least 1");
        }
        if self.system.protocol() == Protocol::Etcd && self.workload.resp_only() {
            bail!("--workload {}: RESP only (redraft or redis)", self.workload);
        }
        if self.system.protocol() == Protocol::Etcd && self.pipeline != 1 {
            bail!("--pipeline: etcd's gRPC API has no pipelining; use --concurrency");
        }
        let modes: &[&str] = match (self.workload, self.system) {
            (Workload::Get | Workload::Mixed, System::Redraft) => {
                &["", "linearizable", "lease", "stale"]
            }
            (Workload::Get | Workload::Mixed, System::Etcd) => {
                &["", "linearizable", "serializable"]
            }
            (Workload::WatchLatency, System::Redraft) => &["xread", "keyspace"],
            (Workload::WatchLatency, System::Etcd) => &["watch"],
            (Workload::WatchLatency, System::Redis) => &["keyspace"],
            _ => &[""],
        };
        if !modes.contains(&self.mode.as_str()) {
            bail!(
                "--mode {:?} does not apply to {} on {}: one of {:?}",
                self.mode,
                self.workload,
                self.label(),
                modes
            );
        }
        if let Some(n) = self.total_ops {
            if !matches!(self.workload, Workload::Set | Workload::Fill) {
                bail!("--total-ops applies to the set and fill workloads only");
            }
            if n == 0 {
                bail!("--total-ops must be at least 1");
            }
            if self.workload == Workload::Fill && n < self.keys {
                bail!(
                    "--total-ops {n} is below --keys {}: fill writes every key once",
                    self.keys
                );
            }
        }
        if let Some(every) = self.force_snapshots {
            if self.system != System::Redraft {
                bail!("--force-snapshots: RAFT.SNAPSHOT is redraft's");
            }
            if !self.workload.writes() {
                bail!(
                    "--force-snapshots applies to the write workloads (set, mixed, fill, \
                     evalsha, hset)"
                );
            }
            if every.is_zero() {
                bail!("--force-snapshots must be above zero");
            }
        }
        if self.workload == Workload::WatchLatency && self.watch_interval.is_zero() {
            bail!("--watch-interval must be above zero");
        }
        if self.workload == Workload::Failover {
            if self.system == System::Redis {
                bail!("--workload failover needs a replicated system (redraft or etcd)");
            }
            if self.kill_cmd.is_empty() || self.restart_cmd.is_empty() {
                bail!("--workload failover needs --kill-cmd and --restart-cmd");
            }
            if self.endpoints.len() < 3 {
                bail!("--workload failover needs the endpoints of at least three nodes");
            }
        }
        Ok(())
    }

    /// A run that stops after a number of acknowledged writes rather than after a time.
    pub fn counted(&self) -> bool {
        self.workload == Workload::Fill || self.total_ops.is_some()
    }

    /// The writes a counted run makes (fill: `--keys` unless `--total-ops` says more).
    pub fn target_ops(&self) -> u64 {
        self.total_ops.unwrap_or(self.keys)
    }

    /// The read mode actually used (the system's default when none was given).
    pub fn effective_mode(&self) -> String {
        match (self.workload, self.mode.as_str()) {
            (Workload::Get | Workload::Mixed, "") if self.system != System::Redis => {
                "linearizable".to_string()
            }
            (_, m) => m.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    fn parse(args: &str) -> anyhow::Result<RunArgs> {
        let argv = std::iter::once("loadgen").chain(args.split_whitespace());
        let cli = Cli::try_parse_from(argv)?;
        cli.run.validate()?;
        Ok(cli.run)
    }

    #[test]
    fn parses_a_read_run() {
        let a = parse(
            "--system redraft --endpoints 127.0.0.1:1,127.0.0.1:2 --workload get --mode lease \
             --value-size 1024 --concurrency 64 --pipeline 4 --duration 1.5s --warmup 500ms",
        )
        .unwrap();
        assert_eq!(a.system, System::Redraft);
        assert_eq!(a.endpoints, vec!["127.0.0.1:1", "127.0.0.1:2"]);
        assert_eq!(a.workload, Workload::Get);
        assert_eq!((a.value_size, a.concurrency, a.pipeline), (1024, 64, 4));
        assert_eq!(a.duration, Duration::from_millis(1500));
        assert_eq!(a.warmup, Duration::from_millis(500));
        assert_eq!(a.label(), "redraft");
        assert_eq!(a.effective_mode(), "lease");
    }

    #[test]
    fn defaults_and_labels() {
        let a = parse("--system etcd --endpoints h:1 --workload get --label etcd3").unwrap();
        assert_eq!(a.effective_mode(), "linearizable");
        assert_eq!(a.label(), "etcd3");
        let r = parse("--system redis --endpoints h:1 --workload get").unwrap();
        assert_eq!(r.effective_mode(), "");
        assert_eq!(r.duration, Duration::from_secs(5));
    }

    #[test]
    fn rejects_what_makes_no_sense() {
        for bad in [
            "--system etcd --endpoints h:1 --workload get --mode lease",
            "--system etcd --endpoints h:1 --workload set --pipeline 16",
            "--system redis --endpoints h:1 --workload get --mode stale",
            "--system redraft --endpoints h:1 --workload set --mode lease",
            "--system redraft --endpoints h:1 --workload watch-latency",
            "--system redis --endpoints h:1,h:2,h:3 --workload failover --kill-cmd k \
             --restart-cmd r",
            "--system etcd --endpoints h:1,h:2,h:3 --workload failover",
            "--system redraft --endpoints h:1 --workload set --concurrency 0",
            "--system redraft --endpoints h:1 --workload fly",
            "--system redraft --endpoints h:1 --workload set --duration 5min",
            "--system redraft --endpoints h:1 --workload get --total-ops 10",
            "--system redraft --endpoints h:1 --workload set --total-ops 0",
            "--system redraft --endpoints h:1 --workload fill --keys 100 --total-ops 99",
            "--system etcd --endpoints h:1 --workload set --force-snapshots 1s",
            "--system redraft --endpoints h:1 --workload get --force-snapshots 1s",
            "--system redraft --endpoints h:1 --workload set --force-snapshots 0s",
            "--system etcd --endpoints h:1 --workload evalsha",
            "--system etcd --endpoints h:1 --workload hget",
            "--system redraft --endpoints h:1 --workload hget --force-snapshots 1s",
        ] {
            assert!(parse(bad).is_err(), "accepted: {bad}");
        }
    }

    #[test]
    fn script_and_hash_workloads() {
        for (w, writes) in [("evalsha", true), ("hset", true), ("hget", false)] {
            let a = parse(&format!("--system redis --endpoints h:1 --workload {w}")).unwrap();
            assert_eq!(a.workload.to_string(), w);
            assert_eq!(a.workload.writes(), writes, "{w}");
        }
        parse("--system redraft --endpoints h:1 --workload hset --force-snapshots 1s").unwrap();
    }

    #[test]
    fn counted_runs() {
        let f = parse("--system etcd --endpoints h:1 --workload fill --keys 100").unwrap();
        assert!(f.counted());
        assert_eq!(f.target_ops(), 100);
        let f =
            parse("--system redraft --endpoints h:1 --workload fill --keys 100 --total-ops 1000")
                .unwrap();
        assert_eq!(f.target_ops(), 1000);
        let s = parse("--system redraft --endpoints h:1 --workload set --total-ops 7").unwrap();
        assert!(s.counted());
        assert_eq!(s.target_ops(), 7);
        let s =
            parse("--system redraft --endpoints h:1 --workload set --force-snapshots 1s").unwrap();
        assert!(!s.counted());
        assert_eq!(s.force_snapshots, Some(Duration::from_secs(1)));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("0.5s").unwrap(), Duration::from_millis(500));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("fast").is_err());
    }
}
