//! Cluster configuration: the `cluster.toml` schema (DESIGN §7), its validation, and the identity
//! check that ties a data directory to one node of one cluster.
//!
//! This module owns turning a file into a [`ClusterConfig`] that the rest of the crate can trust:
//! [`ClusterConfig::from_file`] reads, parses and validates, and every refusal names the field
//! (`node[1].raft_addr`, `raft.election_timeout_ms`, ...) so the operator knows what to fix.
//! `node[i]` counts the `[[node]]` tables in file order from 0. It must not start anything,
//! open a socket or touch a data directory except through [`ensure_data_dir_identity`], and it
//! imports nothing from the rest of the crate.
//!
//! Invariants:
//! - **ValidBeforeUse.** A `ClusterConfig` obtained from [`ClusterConfig::from_file`] or
//!   [`ClusterConfig::parse`] has passed [`ClusterConfig::validate`]: node ids are unique and
//!   non-zero, every address parses as a `SocketAddr`, and timing and limit fields are in range.
//!   A config built in code must call `validate()` before use.
//! - **OwnedDataDir.** A node writes only to a data directory whose `IDENTITY` file names its own
//!   cluster and node id, or to one that was empty, which it then claims. Pointing node 2 at
//!   node 1's directory, or a node at another cluster's, is refused before anything is opened.
//!
//! Files: this one holds the schema (the sections and their defaults) and [`ConfigError`];
//! `validate.rs` turns text into a checked [`ClusterConfig`]; `identity.rs` ties a data
//! directory to one node ([`ensure_data_dir_identity`]); `notify.rs` and `read_mode.rs` hold
//! the two option types with their own syntax (`notify_keyspace_events`, `read_mode`);
//! `sched_policy.rs` the process's CPU scheduling policy (`sched_policy`).
//!
//! Unknown fields anywhere are an error (`deny_unknown_fields`), so a misspelt option is never
//! silently ignored. `[raft]`, `[server]` and `[store]` and each of their fields are optional.

use std::fmt;
use std::io;
use std::path::PathBuf;

use serde::Deserialize;

mod identity;
mod notify;
mod read_mode;
mod sched_policy;
mod tls;
mod validate;

pub use identity::{ensure_data_dir_identity, IDENTITY_FILE};
pub use notify::NotifyKeyspaceEvents;
pub use read_mode::{ParseReadModeError, ReadMode};
pub use sched_policy::SchedPolicy;
pub use tls::{parse_protocols, TlsAuthClients, TlsSection};

/// Largest accepted `server.proto_max_bulk_len`: Redis's own ceiling, 512 MiB.
pub const MAX_PROTO_MAX_BULK_LEN: usize = 512 * 1024 * 1024;

/// Client sessions that run on the `raft` thread by default (`[server] raft_thread_sessions`,
/// SessionsBesideRaft in `raft/runtime.rs`).
pub const DEFAULT_RAFT_THREAD_SESSIONS: usize = 4;

/// Largest `server.worker_threads` accepted (a typo guard: far beyond any useful count).
pub const MAX_WORKER_THREADS: usize = 1024;

/// Largest accepted `server.timeout`, in seconds: Redis's own ceiling (`INT_MAX`).
pub const MAX_IDLE_TIMEOUT: u64 = i32::MAX as u64;

/// The largest `[store] history_minutes` (100 years): its window in milliseconds stays far
/// inside an `i64`.
pub const MAX_HISTORY_MINUTES: u64 = 100 * 366 * 24 * 60;

/// Default `server.client_output_buffer_limit`: 1 GiB.
pub const DEFAULT_CLIENT_OUTPUT_BUFFER_LIMIT: u64 = 1024 * 1024 * 1024;

/// Largest accepted `raft.election_timeout_ms` (one hour). Anything near it is a typo, and the
/// cap keeps `2 × election_timeout_ms` far from overflow.
const MAX_ELECTION_TIMEOUT_MS: u64 = 3_600_000;

/// Longest accepted `cluster.name`. The name travels with every peer RPC.
const MAX_CLUSTER_NAME_LEN: usize = 64;

/// A whole `cluster.toml`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    pub cluster: ClusterSection,
    /// The `[[node]]` tables, in file order. Order carries no meaning; nodes are found by id.
    #[serde(rename = "node")]
    pub nodes: Vec<NodeConfig>,
    #[serde(default)]
    pub raft: RaftSection,
    #[serde(default)]
    pub server: ServerSection,
    #[serde(default)]
    pub store: StoreSection,
    #[serde(default)]
    pub tls: TlsSection,
}

/// `[cluster]`.
#[derive(Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClusterSection {
    /// Peers refuse RPCs carrying another name, and a data directory remembers it.
    pub name: String,
    /// When set, peers authenticate every RPC with it. Redacted from `Debug` output.
    #[serde(default)]
    pub secret: Option<String>,
}

/// One `[[node]]`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Raft node id; non-zero and unique in the cluster.
    pub id: u64,
    /// Peer traffic: the node listens here and the other nodes dial it.
    pub raft_addr: String,
    /// Redis clients.
    pub redis_addr: String,
    /// Relative paths are relative to the working directory of the process.
    pub data_dir: PathBuf,
    /// `/metrics` and `/health` over HTTP; off when absent.
    #[serde(default)]
    pub metrics_addr: Option<String>,
    /// Redis clients over TLS (Redis's `tls-port`), beside the plain `redis_addr`; off when
    /// absent.
    #[serde(default)]
    pub tls_addr: Option<String>,
    /// This node's certificate chain (PEM), for its TLS clients, its peers (`tls.peers`) and
    /// HTTPS (`tls.metrics`).
    #[serde(default)]
    pub tls_cert_file: Option<PathBuf>,
    /// The private key of `tls_cert_file` (PEM: PKCS#8, PKCS#1 or SEC1).
    #[serde(default)]
    pub tls_key_file: Option<PathBuf>,
}

/// `[raft]`: timing and log retention.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct RaftSection {
    /// Leader heartbeat interval.
    pub heartbeat_ms: u64,
    /// How long a follower hears nothing from the leader before it campaigns: a random time
    /// in `[election_timeout_ms, 1.2 × election_timeout_ms)`, as etcd's `election-timeout`
    /// (which randomises over `[T, 2T)`). Must exceed `2 × heartbeat_ms` so that one lost
    /// heartbeat does not start an election. See [`RaftSection::election_timing`].
    pub election_timeout_ms: u64,
    /// Take a snapshot once this many revisions (writes that changed the keyspace) have been
    /// applied since the last one, as etcd's `--snapshot-count` (also after this many log
    /// entries, for logs that grow without revisions).
    pub snapshot_every: u64,
    /// ... and once the log written since the last snapshot is at least this percentage of
    /// that snapshot's size, as Redis's `auto-aof-rewrite-percentage` (default 25): a snapshot
    /// is a full dump of the keyspace and its history, so with many keys it is taken less
    /// often, and costs at most 100 / this times the disk writes of the log it lets go. 0: by
    /// `snapshot_every` alone. (SnapshotCostsNoMoreThanTheLog, `raft/snapshot_trigger.rs`.)
    pub snapshot_log_percent: u64,
    /// Log entries already in a snapshot that are kept, so a slightly lagging follower catches
    /// up from the log instead of receiving a whole snapshot.
    pub max_in_snapshot_log_to_keep: u64,
    /// How much shorter than the followers' vote-refusal window a leader's read lease is, to
    /// absorb the rate drift between the leader's and the followers' monotonic clocks
    /// (`read_mode = "lease"`). Default: a fifth of `election_timeout_ms`. At least the window
    /// (three fifths of `election_timeout_ms`): no lease at all (every lease read falls back to
    /// a ReadIndex round).
    pub lease_drift_margin_ms: Option<u64>,
}

/// openraft's election timing, derived from `[raft]` by [`RaftSection::election_timing`].
///
/// openraft 0.10 has a follower campaign once it has heard nothing from the leader for its
/// leader lease plus a random election timeout, `max + rand[min, max)`, and the leader lease
/// *is* `max`: for `max` after accepting an AppendEntries a follower refuses every Vote and
/// PreVote (`engine_impl.rs` `handle_vote_req`, `handle_tick_election`; `engine_config.rs`).
/// So a campaign starts after `[min + max, 2 × max)` of silence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ElectionTiming {
    /// openraft `election_timeout_min`.
    pub min_ms: u64,
    /// openraft `election_timeout_max`, which is also openraft's leader lease: the
    /// **vote-refusal window** a follower keeps after each AppendEntries it accepts.
    pub max_ms: u64,
}

impl ElectionTiming {
    /// The vote-refusal window: how long a follower refuses other candidates after it accepted
    /// an AppendEntries (openraft's leader lease), and how long a restarted node refuses votes
    /// (VoteAfterRestart, `raft::health`).
    pub fn vote_refusal_window(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.max_ms)
    }
}

impl RaftSection {
    /// openraft's `election_timeout_min` and `_max` for `election_timeout_ms` = T:
    /// `min = 2T/5`, `max = T − min` (3T/5), so a follower campaigns after `[T, 1.2T)` of silence
    /// (see [`ElectionTiming`]) and refuses votes for `3T/5` after each AppendEntries. (Before,
    /// `min = T` and `max = 2T`: a campaign after `[3T, 4T)` of silence, 750-1,000 ms with the
    /// shipped 250 ms, measured in `benches/results/2026-12-04-failover/`.) openraft needs
    /// `heartbeat_ms < min < max`; when `2T/5` is not above the heartbeat (T within about 2.5
    /// heartbeats), `min` is the heartbeat + 1, `max` at least `min + 1`, and the silence
    /// before a campaign may be a little longer than T.
    pub fn election_timing(&self) -> ElectionTiming {
        let t = self.election_timeout_ms;
        let mut min_ms = t * 2 / 5;
        let mut max_ms = t - min_ms;
        if min_ms <= self.heartbeat_ms {
            min_ms = self.heartbeat_ms + 1;
            max_ms = (t - min_ms).max(min_ms + 1);
        }
        ElectionTiming { min_ms, max_ms }
    }

    /// The leader's read lease: the followers' vote-refusal window (`3/5 ×
    /// election_timeout_ms`) minus `lease_drift_margin_ms` (`raft::read`'s LeaseBound): 100 ms
    /// with the defaults.
    pub fn read_lease(&self) -> std::time::Duration {
        let margin = self
            .lease_drift_margin_ms
            .unwrap_or(self.election_timeout_ms / 5);
        self.election_timing()
            .vote_refusal_window()
            .saturating_sub(std::time::Duration::from_millis(margin))
    }
}

impl Default for RaftSection {
    fn default() -> Self {
        Self {
            // Failover well under a second (kill -9 of the leader under load:
            // `benches/results/2026-12-04-failover/`), and no false election under full write
            // load with snapshots (`benches/elections.sh`); the test harness has run 50/300
            // under parallel test load since the first cluster test.
            heartbeat_ms: 50,
            election_timeout_ms: 250,
            snapshot_every: 100_000,
            snapshot_log_percent: 25,
            max_in_snapshot_log_to_keep: 1000,
            lease_drift_margin_ms: None,
        }
    }
}

/// `[server]`: the client-facing side.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSection {
    /// When set, clients must `AUTH` (or `HELLO 3 AUTH`) first. Redacted from `Debug` output.
    pub requirepass: Option<String>,
    /// The read mode a new connection starts in (`READMODE` changes it per connection).
    pub read_mode: ReadMode,
    /// Connections beyond this are refused with Redis's `-ERR max number of clients reached`.
    pub max_clients: usize,
    /// Longest bulk string accepted from a client, checked before allocating (Redis's
    /// `proto-max-bulk-len`).
    pub proto_max_bulk_len: usize,
    /// How long a write waits for a leader before the client gets `-TRYAGAIN`.
    pub write_timeout_ms: u64,
    /// Seconds a client may stay idle before its connection is closed; 0 keeps idle clients
    /// forever (Redis's `timeout`, settable with `CONFIG SET timeout`).
    pub timeout: u64,
    /// The hard limit of Redis's `client-output-buffer-limit normal` class, in bytes: a client
    /// whose pending replies reach it is disconnected, counted as Redis counts them (what
    /// overflows the reply buffer, `protocol::obuf`). 0 is no limit. The default, 1 GiB,
    /// exceeds any single reply, so only a client that pipelines far more than it reads is cut
    /// off.
    pub client_output_buffer_limit: u64,
    /// Keyspace notification classes (Redis's `notify-keyspace-events` letters, e.g. `"KEA"`);
    /// empty disables them.
    pub notify_keyspace_events: String,
    /// The most keys client-side caching remembers on this node (Redis's
    /// `tracking-table-max-keys`, 0 for no limit); past it, keys are forgotten and their clients
    /// told to drop them.
    pub tracking_table_max_keys: usize,
    /// The process's CPU scheduling policy, set at start (`sched_policy.rs`:
    /// HandOffsWithoutPreemption): `"batch"` (default) or `"other"`.
    pub sched_policy: SchedPolicy,
    /// Threads of the async runtime that run sessions, Raft and the network (tokio's worker
    /// threads); 0 (default) is one per CPU. Blocking work (snapshot files, scripts, log
    /// reads) and the log's sync thread are separate threads either way.
    pub worker_threads: usize,
    /// Runs Raft (openraft's core, replication, apply, the peer connections, the proposal
    /// batcher) on one thread of its own, with the first `raft_thread_sessions` client sessions
    /// beside it and the rest on the worker threads (`raft/runtime.rs`: RaftOnItsOwnThread,
    /// SessionsBesideRaft). Default `true`; `false`: Raft's tasks share the worker threads
    /// with every session.
    pub raft_thread: bool,
    /// With `raft_thread`, how many client sessions run on the `raft` thread beside Raft
    /// (`raft/runtime.rs`: SessionsBesideRaft); the rest run on the worker threads.
    pub raft_thread_sessions: usize,
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            requirepass: None,
            read_mode: ReadMode::default(),
            max_clients: 10_000,
            proto_max_bulk_len: MAX_PROTO_MAX_BULK_LEN,
            write_timeout_ms: 5000,
            timeout: 0,
            client_output_buffer_limit: DEFAULT_CLIENT_OUTPUT_BUFFER_LIMIT,
            notify_keyspace_events: String::new(),
            tracking_table_max_keys: crate::watch::tracking::DEFAULT_MAX_KEYS,
            sched_policy: SchedPolicy::default(),
            worker_threads: 0,
            raft_thread: true,
            raft_thread_sessions: DEFAULT_RAFT_THREAD_SESSIONS,
        }
    }
}

/// `[store]`: the automatic compaction policy, as written in `cluster.toml`. What runs is
/// [`StoreSection::effective`]: with neither rule written, history is bounded by default
/// ([`DEFAULT_HISTORY_MINUTES`] and at least [`DEFAULT_HISTORY_REVISIONS`]); written rules
/// replace the defaults; `auto_compaction = false` keeps history forever (until a `COMPACT`).
/// When both rules are in force, a revision is kept while either still wants it, but never
/// more than `history_max_revisions` of them (HistoryCapped).
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSection {
    /// Keep the last N revisions.
    pub history_revisions: Option<u64>,
    /// Keep revisions from the last T minutes.
    pub history_minutes: Option<u64>,
    /// `false` turns automatic compaction off (history grows until a `COMPACT`).
    pub auto_compaction: Option<bool>,
    /// Never keep more than the last N revisions, whatever the other rules want
    /// (HistoryCapped; default [`DEFAULT_HISTORY_MAX_REVISIONS`], and never below
    /// `history_revisions`).
    pub history_max_revisions: Option<u64>,
}

/// The time rule of the default compaction policy: keep the last hour of revisions.
pub const DEFAULT_HISTORY_MINUTES: u64 = 60;
/// The count rule of the default compaction policy: keep at least the last 10,000 revisions.
pub const DEFAULT_HISTORY_REVISIONS: u64 = 10_000;
/// The cap of every compaction policy (HistoryCapped): at most the last 1,000,000 revisions.
/// The hour of the time rule is unbounded in size: at the 12,800 writes/s of a full-load run
/// here it is 46 million revisions, gigabytes per node and snapshots of many seconds (a
/// 10-minute run reached 7.7 million revisions, snapshots of up to 17 s, two false
/// elections; with this cap: no false election, 1.1-1.2 GiB RSS per node at 256 B values,
/// `benches/results/2026-12-04-elections/`).
pub const DEFAULT_HISTORY_MAX_REVISIONS: u64 = 1_000_000;

impl StoreSection {
    /// The policy that runs. **BoundedByDefault**: history is bounded unless the operator
    /// writes `auto_compaction = false`, so a long-running cluster's snapshots stop growing.
    /// **HistoryCapped**: with compaction on, at most `history_max_revisions` revisions are
    /// kept (default [`DEFAULT_HISTORY_MAX_REVISIONS`], raised to `history_revisions` when
    /// that asks for more), so no write rate makes the time rule's window unbounded in size.
    pub fn effective(&self) -> StoreSection {
        if self.auto_compaction == Some(false) {
            return StoreSection {
                history_revisions: None,
                history_minutes: None,
                auto_compaction: Some(false),
                history_max_revisions: None,
            };
        }
        let (history_revisions, history_minutes) =
            if self.history_revisions.is_none() && self.history_minutes.is_none() {
                (
                    Some(DEFAULT_HISTORY_REVISIONS),
                    Some(DEFAULT_HISTORY_MINUTES),
                )
            } else {
                (self.history_revisions, self.history_minutes)
            };
        let cap = self
            .history_max_revisions
            .unwrap_or_else(|| DEFAULT_HISTORY_MAX_REVISIONS.max(history_revisions.unwrap_or(0)));
        StoreSection {
            history_revisions,
            history_minutes,
            auto_compaction: Some(true),
            history_max_revisions: Some(cap),
        }
    }
}

/// Why a configuration or data directory was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    /// TOML syntax, a wrong type, a missing or an unknown field; `message` gives the line,
    /// column and key as reported by `toml`.
    #[error("invalid config {path}: {message}")]
    Parse { path: PathBuf, message: String },
    /// A value that parsed but is not acceptable; `field` is its path, e.g. `node[2].id`.
    #[error("invalid config: {field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("node id {id} is not in the config (ids: {known})")]
    UnknownNode { id: u64, known: String },
    #[error(
        "data dir {dir} belongs to {found}, not to {expected}; refusing to start \
         (use an empty data_dir for a new node)"
    )]
    ForeignDataDir {
        dir: PathBuf,
        found: String,
        expected: String,
    },
    #[error("data dir {dir}: {source}")]
    DataDirIo { dir: PathBuf, source: io::Error },
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

impl fmt::Debug for ClusterSection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterSection")
            .field("name", &self.name)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl fmt::Debug for ServerSection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerSection")
            .field(
                "requirepass",
                &self.requirepass.as_ref().map(|_| "<redacted>"),
            )
            .field("read_mode", &self.read_mode)
            .field("max_clients", &self.max_clients)
            .field("proto_max_bulk_len", &self.proto_max_bulk_len)
            .field("write_timeout_ms", &self.write_timeout_ms)
            .field("timeout", &self.timeout)
            .field(
                "client_output_buffer_limit",
                &self.client_output_buffer_limit,
            )
            .field("notify_keyspace_events", &self.notify_keyspace_events)
            .field("tracking_table_max_keys", &self.tracking_table_max_keys)
            .field("sched_policy", &self.sched_policy)
            .field("worker_threads", &self.worker_threads)
            .field("raft_thread", &self.raft_thread)
            .field("raft_thread_sessions", &self.raft_thread_sessions)
            .finish()
    }
}

#[cfg(test)]
mod config_test;
