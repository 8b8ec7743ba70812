//! The harness's command line: every option of a run, also recorded in its summary.

use std::path::PathBuf;

use clap::Parser;
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum WorkloadName {
    Register,
    Set,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Toggle {
    Auto,
    On,
    Off,
}

/// Jepsen-style fault injection against a real redraft cluster.
#[derive(Debug, Parser, Serialize)]
#[command(name = "redraft-jepsen", version)]
pub(crate) struct Cli {
    /// The redraft binary under test (a release build).
    #[arg(long, default_value = "target/release/redraft")]
    pub(crate) bin: PathBuf,
    /// Seconds of workload (faults included); the heal, restart and checks come after.
    #[arg(long, default_value_t = 60)]
    pub(crate) time_limit: u64,
    #[arg(long, default_value_t = 3)]
    pub(crate) nodes: u64,
    /// Concurrent clients, each on its own connection to a random node.
    #[arg(long, default_value_t = 10)]
    pub(crate) clients: u64,
    /// Target operations per second, all clients together.
    #[arg(long, default_value_t = 200.0)]
    pub(crate) rate: f64,
    /// Workloads, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "register,set")]
    pub(crate) workload: Vec<WorkloadName>,
    /// Register keys (a small set keeps keys contended).
    #[arg(long, default_value_t = 5)]
    pub(crate) keys: usize,
    /// GETMETA + CAS operations: `auto` uses them when the server knows them.
    #[arg(long, value_enum, default_value = "auto")]
    pub(crate) cas: Toggle,
    /// Nemesis families, comma-separated; `none` for a fault-free run.
    #[arg(long, value_delimiter = ',', default_value = "kill,pause,partition")]
    pub(crate) nemesis: Vec<String>,
    /// Mean quiet seconds before each fault.
    #[arg(long, default_value_t = 5.0)]
    pub(crate) nemesis_interval: f64,
    /// Mean seconds each fault lasts.
    #[arg(long, default_value_t = 6.0)]
    pub(crate) fault_duration: f64,
    /// The nodes' `[server] read_mode`: linearizable, lease or stale (stale must fail the check).
    #[arg(long, default_value = "linearizable")]
    pub(crate) read_mode: String,
    /// Per-connection read modes: client i sends `READMODE` of the (i mod N)-th mode of the
    /// list on every connection (e.g. `linearizable,lease`: both kinds of reads at once under
    /// the same faults); the cache readers and watchers keep the nodes' `--read-mode`.
    #[arg(long, value_delimiter = ',')]
    pub(crate) client_read_modes: Vec<String>,
    /// Peer traffic over mutual TLS (`[tls] peers`; certificates from `redraft cert`).
    /// Clients still speak plain RESP.
    #[arg(long)]
    pub(crate) peer_tls: bool,
    /// Each client stays on one node (client i on node i mod nodes), reconnecting there after
    /// a failure, instead of moving to a random node: clients of a node a partition cut off
    /// keep reading from it (the stale-read control of CI).
    #[arg(long)]
    pub(crate) pinned_clients: bool,
    /// Client timeout per operation, ms (a timeout is an indeterminate outcome).
    #[arg(long, default_value_t = 1000)]
    pub(crate) op_timeout_ms: u64,
    /// The nodes' `[server] write_timeout_ms`.
    #[arg(long, default_value_t = 2000)]
    pub(crate) write_timeout_ms: u64,
    #[arg(long, default_value_t = 50)]
    pub(crate) heartbeat_ms: u64,
    #[arg(long, default_value_t = 500)]
    pub(crate) election_timeout_ms: u64,
    /// `[raft] snapshot_every` (small, so snapshots and log purges happen during runs).
    #[arg(long, default_value_t = 2000)]
    pub(crate) snapshot_every: u64,
    /// Filler keys (200-byte values) written before the workload starts, so snapshots are
    /// large; 0 with no `snapshot` nemesis, else 0 means 50,000.
    #[arg(long, default_value_t = 0)]
    pub(crate) preload_keys: u64,
    /// Run on 127.0.0.1 without network namespaces (no partitions), even as root.
    #[arg(long)]
    pub(crate) no_netns: bool,
    /// Skip the kill -9 and restart of every node before the final reads.
    #[arg(long)]
    pub(crate) no_final_restart: bool,
    /// Put every node's data dir on its own lossyfs mount (a disk that loses what was not
    /// fsynced at a power cut); implied by `--nemesis power-loss`. The final restart is then a
    /// power cut of every node. Needs root and /dev/fuse.
    #[arg(long)]
    pub(crate) lossyfs: bool,
    /// The lossyfs binary (default: `lossyfs` next to this harness).
    #[arg(long)]
    pub(crate) lossyfs_bin: Option<PathBuf>,
    /// `REDRAFT_FAILPOINTS` for the nodes (test-only faults built into redraft, e.g.
    /// `log_sync_off`: the power-loss control must then fail).
    #[arg(long)]
    pub(crate) failpoints: Option<String>,
    /// Each node's clock rate for the whole run, comma-separated (node 1 first; nodes past the
    /// end run at 1): its monotonic and wall clocks advance that many seconds per real second
    /// (libfaketime; `src/clock.rs`). E.g. `0.1` slows node 1's lease tenfold, beyond the
    /// clock assumption of lease reads.
    #[arg(long, value_delimiter = ',')]
    pub(crate) clock_rates: Vec<f64>,
    /// Every start of every node draws its clock rate in `[1/(1+D), 1+D]` (uniform in its
    /// logarithm) from the seed: two nodes differ by a factor of at most `(1+D)²`. 0: true
    /// clocks. Ignored with --clock-rates.
    #[arg(long, default_value_t = 0.0)]
    pub(crate) clock_drift: f64,
    /// The libfaketime library for clock faults.
    #[arg(long, default_value = jepsen::clock::DEFAULT_LIB)]
    pub(crate) faketime_lib: PathBuf,
    /// `[store] history_revisions` of the nodes: history kept to the last N revisions, so
    /// compaction runs during the run and lagging watchers resume below it (`-COMPACTED`).
    #[arg(long)]
    pub(crate) history_revisions: Option<u64>,
    /// Watchers (besides `--watchers`) that stop reading for 1-4 s now and then during the
    /// workload; default 1 with --history-revisions, else 0.
    #[arg(long)]
    pub(crate) lagging_watchers: Option<usize>,
    /// Watchers following every change with `XREAD … STREAMS __watch__:` (0: none; off when
    /// the server has no watch stream).
    #[arg(long, default_value_t = 3)]
    pub(crate) watchers: usize,
    /// Readers of the register keys with a client-side cache (RESP3, `CLIENT TRACKING ON`,
    /// `src/cache.rs`), besides `--clients` (0: none; off without the register workload or
    /// when the server has no `CLIENT TRACKING`).
    #[arg(long, default_value_t = 2)]
    pub(crate) cache_readers: usize,
    /// Reads per second of each cache reader (most are answered from its cache).
    #[arg(long, default_value_t = 50.0)]
    pub(crate) cache_rate: f64,
    /// Seconds the caches have after the heal to agree with the cluster.
    #[arg(long, default_value_t = 15)]
    pub(crate) cache_converge_timeout: u64,
    /// Seed for the schedule and every client's choices (random if absent; always recorded).
    #[arg(long)]
    pub(crate) seed: Option<u64>,
    /// Where the run's folder goes.
    #[arg(long, default_value = "jepsen/store")]
    pub(crate) out: PathBuf,
    /// Search steps per key before the linearizability check answers `unknown`.
    #[arg(long, default_value_t = 10_000_000)]
    pub(crate) check_budget: u64,
    #[arg(long, default_value_t = 30)]
    pub(crate) startup_timeout: u64,
    /// Seconds the cluster has to answer again after the final heal.
    #[arg(long, default_value_t = 30)]
    pub(crate) recovery_timeout: u64,
    /// Only the plain power-cut check: one node on lossyfs, N acknowledged SETs, a power cut,
    /// a restart, every key read back (`src/powercut.rs`); exit 0 only if all N are there.
    #[arg(long, value_name = "N")]
    pub(crate) power_cut_sets: Option<u64>,
    /// With --power-cut-sets: a torn crash (the last unsynced write of each file half kept).
    #[arg(long)]
    pub(crate) torn: bool,
    /// Only check a saved history.jsonl (register linearizability) and exit.
    #[arg(long, value_name = "HISTORY")]
    pub(crate) check: Option<PathBuf>,
}
