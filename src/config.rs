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
//! Unknown fields anywhere are an error (`deny_unknown_fields`), so a misspelt option is never
//! silently ignored. `[raft]`, `[server]` and `[store]` and each of their fields are optional.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Name of the identity file inside a node's data directory.
pub const IDENTITY_FILE: &str = "IDENTITY";

/// Version of the identity file layout written by this build.
const IDENTITY_FORMAT: u32 = 1;

/// Largest accepted `server.proto_max_bulk_len`: Redis's own ceiling, 512 MiB.
pub const MAX_PROTO_MAX_BULK_LEN: usize = 512 * 1024 * 1024;

/// Largest accepted `server.timeout`, in seconds: Redis's own ceiling (`INT_MAX`).
pub const MAX_IDLE_TIMEOUT: u64 = i32::MAX as u64;

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
}

/// `[raft]`: timing and log retention.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct RaftSection {
    /// Leader heartbeat interval.
    pub heartbeat_ms: u64,
    /// The minimum election timeout; each election waits a random time in `[min, 2 × min)`.
    /// Must exceed `2 × heartbeat_ms` so that one lost heartbeat does not start an election.
    pub election_timeout_ms: u64,
    /// Take a snapshot after this many log entries since the last one.
    pub snapshot_every: u64,
    /// Log entries already in a snapshot that are kept, so a slightly lagging follower catches
    /// up from the log instead of receiving a whole snapshot.
    pub max_in_snapshot_log_to_keep: u64,
    /// How much shorter than `election_timeout_ms` a leader's read lease is, to absorb the
    /// rate drift between the leader's and the followers' monotonic clocks (`read_mode =
    /// "lease"`). Default: a fifth of `election_timeout_ms`. Equal to `election_timeout_ms`:
    /// no lease at all (every lease read falls back to a ReadIndex round).
    pub lease_drift_margin_ms: Option<u64>,
}

impl RaftSection {
    /// The leader's read lease: `election_timeout_ms − lease_drift_margin_ms`
    /// (`raft::read`'s LeaseBound).
    pub fn read_lease(&self) -> std::time::Duration {
        let margin = self
            .lease_drift_margin_ms
            .unwrap_or(self.election_timeout_ms / 5);
        std::time::Duration::from_millis(self.election_timeout_ms.saturating_sub(margin))
    }
}

impl Default for RaftSection {
    fn default() -> Self {
        Self {
            heartbeat_ms: 100,
            election_timeout_ms: 1000,
            snapshot_every: 10_000,
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
    /// Largest amount of reply bytes a connection may have pending, in bytes; a client past it is
    /// disconnected (the hard limit of Redis's `client-output-buffer-limit normal` class). 0 is
    /// no limit. The default, 1 GiB, exceeds any single reply, so only a client that pipelines
    /// far more than it reads is cut off.
    pub client_output_buffer_limit: u64,
    /// Keyspace notification classes (Redis's `notify-keyspace-events` letters, e.g. `"KEA"`);
    /// empty disables them.
    pub notify_keyspace_events: String,
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
        }
    }
}

/// Keyspace notification classes, as Redis's `notify-keyspace-events` letters describe them
/// (`src/notify.c`: `keyspaceEventsStringToFlags` / `keyspaceEventsFlagsToString`). Stored now;
/// emitted by the pub/sub issue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NotifyKeyspaceEvents(pub u32);

impl NotifyKeyspaceEvents {
    pub const KEYSPACE: u32 = 1 << 0; // K
    pub const KEYEVENT: u32 = 1 << 1; // E
    pub const GENERIC: u32 = 1 << 2; // g
    pub const STRING: u32 = 1 << 3; // $
    pub const LIST: u32 = 1 << 4; // l
    pub const SET: u32 = 1 << 5; // s
    pub const HASH: u32 = 1 << 6; // h
    pub const ZSET: u32 = 1 << 7; // z
    pub const EXPIRED: u32 = 1 << 8; // x
    pub const EVICTED: u32 = 1 << 9; // e
    pub const STREAM: u32 = 1 << 10; // t
    pub const KEY_MISS: u32 = 1 << 11; // m
    pub const MODULE: u32 = 1 << 13; // d
    pub const NEW: u32 = 1 << 14; // n
    /// `A`: every type class (not `m` and not `n`, as in Redis).
    pub const ALL: u32 = Self::GENERIC
        | Self::STRING
        | Self::LIST
        | Self::SET
        | Self::HASH
        | Self::ZSET
        | Self::EXPIRED
        | Self::EVICTED
        | Self::STREAM
        | Self::MODULE;
    /// The accepted letters, in the order Redis's error message lists them.
    pub const LETTERS: &'static str = "Ag$lshzxeKEtmdn";

    /// Parses a class string; `None` if a letter is not a class.
    pub fn parse(classes: &str) -> Option<Self> {
        let mut flags = 0;
        for c in classes.chars() {
            flags |= match c {
                'A' => Self::ALL,
                'g' => Self::GENERIC,
                '$' => Self::STRING,
                'l' => Self::LIST,
                's' => Self::SET,
                'h' => Self::HASH,
                'z' => Self::ZSET,
                'x' => Self::EXPIRED,
                'e' => Self::EVICTED,
                'K' => Self::KEYSPACE,
                'E' => Self::KEYEVENT,
                't' => Self::STREAM,
                'm' => Self::KEY_MISS,
                'd' => Self::MODULE,
                'n' => Self::NEW,
                _ => return None,
            };
        }
        Some(NotifyKeyspaceEvents(flags))
    }

    /// Returns the canonical class string, exactly as Redis's `CONFIG GET` shows it (`KEA` is
    /// shown as `AKE`; with `A`, the `n` class is not shown, a quirk kept for compatibility).
    pub fn render(self) -> String {
        let f = self.0;
        let mut out = String::new();
        if f & Self::ALL == Self::ALL {
            out.push('A');
        } else {
            for (bit, c) in [
                (Self::GENERIC, 'g'),
                (Self::STRING, '$'),
                (Self::LIST, 'l'),
                (Self::SET, 's'),
                (Self::HASH, 'h'),
                (Self::ZSET, 'z'),
                (Self::EXPIRED, 'x'),
                (Self::EVICTED, 'e'),
                (Self::STREAM, 't'),
                (Self::MODULE, 'd'),
                (Self::NEW, 'n'),
            ] {
                if f & bit != 0 {
                    out.push(c);
                }
            }
        }
        for (bit, c) in [
            (Self::KEYSPACE, 'K'),
            (Self::KEYEVENT, 'E'),
            (Self::KEY_MISS, 'm'),
        ] {
            if f & bit != 0 {
                out.push(c);
            }
        }
        out
    }
}

/// How reads are served (DESIGN §4).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum ReadMode {
    /// ReadIndex through the leader; a follower waits until it has applied that far.
    #[default]
    Linearizable,
    /// The leader answers locally while its lease holds, else falls back to ReadIndex.
    Lease,
    /// Any node answers from what it has applied.
    Stale,
}

impl ReadMode {
    /// A small number for an atomic setting; [`ReadMode::from_index`] reverses it.
    pub fn index(self) -> u8 {
        match self {
            ReadMode::Linearizable => 0,
            ReadMode::Lease => 1,
            ReadMode::Stale => 2,
        }
    }

    /// The mode of [`ReadMode::index`]; anything unknown is the default.
    pub fn from_index(i: u8) -> ReadMode {
        match i {
            1 => ReadMode::Lease,
            2 => ReadMode::Stale,
            _ => ReadMode::Linearizable,
        }
    }

    /// Returns the mode's name as written in config and in `READMODE`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReadMode::Linearizable => "linearizable",
            ReadMode::Lease => "lease",
            ReadMode::Stale => "stale",
        }
    }
}

impl fmt::Display for ReadMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of [`ReadMode::from_str`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown read mode `{0}` (expected linearizable, lease or stale)")]
pub struct ParseReadModeError(pub String);

impl FromStr for ReadMode {
    type Err = ParseReadModeError;

    /// Parses `linearizable`, `lease` or `stale`, ignoring ASCII case as Redis does for
    /// command arguments (`READMODE LEASE`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [ReadMode::Linearizable, ReadMode::Lease, ReadMode::Stale]
            .into_iter()
            .find(|mode| mode.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| ParseReadModeError(s.to_owned()))
    }
}

/// `[store]`: the automatic compaction policy, as written in `cluster.toml`. What runs is
/// [`StoreSection::effective`]: with neither rule written, history is bounded by default
/// ([`DEFAULT_HISTORY_MINUTES`] and at least [`DEFAULT_HISTORY_REVISIONS`]); written rules
/// replace the defaults; `auto_compaction = false` keeps history forever (until a `COMPACT`).
/// When both rules are in force, a revision is kept while either still wants it.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSection {
    /// Keep the last N revisions.
    pub history_revisions: Option<u64>,
    /// Keep revisions from the last T minutes.
    pub history_minutes: Option<u64>,
    /// `false` turns automatic compaction off (history grows until a `COMPACT`).
    pub auto_compaction: Option<bool>,
}

/// The time rule of the default compaction policy: keep the last hour of revisions.
pub const DEFAULT_HISTORY_MINUTES: u64 = 60;
/// The count rule of the default compaction policy: keep at least the last 10,000 revisions.
pub const DEFAULT_HISTORY_REVISIONS: u64 = 10_000;

impl StoreSection {
    /// The policy that runs. **BoundedByDefault**: history is bounded unless the operator
    /// writes `auto_compaction = false`, so a long-running cluster's snapshots stop growing.
    pub fn effective(&self) -> StoreSection {
        if self.auto_compaction == Some(false) {
            return StoreSection {
                history_revisions: None,
                history_minutes: None,
                auto_compaction: Some(false),
            };
        }
        if self.history_revisions.is_none() && self.history_minutes.is_none() {
            return StoreSection {
                history_revisions: Some(DEFAULT_HISTORY_REVISIONS),
                history_minutes: Some(DEFAULT_HISTORY_MINUTES),
                auto_compaction: Some(true),
            };
        }
        StoreSection {
            auto_compaction: Some(true),
            ..self.clone()
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

impl ClusterConfig {
    /// Reads, parses and validates the file at `path`.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses and validates `text`; `path` is only used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let config: ClusterConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: describe_toml_error(&e, text),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks everything serde cannot, and names the first offending field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_cluster()?;
        self.validate_nodes()?;
        self.validate_secret_required()?;
        self.validate_raft()?;
        self.validate_server()?;
        self.validate_store()
    }

    /// Returns the node with id `id`.
    pub fn node(&self, id: u64) -> Result<&NodeConfig, ConfigError> {
        self.nodes.iter().find(|n| n.id == id).ok_or_else(|| {
            let mut ids: Vec<u64> = self.nodes.iter().map(|n| n.id).collect();
            ids.sort_unstable();
            let known = ids
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            ConfigError::UnknownNode { id, known }
        })
    }

    /// The embedded default used by `redraft` with no arguments: cluster "redraft", one node
    /// id 1, redis 127.0.0.1:6379, raft 127.0.0.1:7379, data_dir "./data".
    pub fn single_node() -> Self {
        ClusterConfig {
            cluster: ClusterSection {
                name: "redraft".to_owned(),
                secret: None,
            },
            nodes: vec![NodeConfig {
                id: 1,
                raft_addr: "127.0.0.1:7379".to_owned(),
                redis_addr: "127.0.0.1:6379".to_owned(),
                data_dir: PathBuf::from("./data"),
                metrics_addr: None,
            }],
            raft: RaftSection::default(),
            server: ServerSection::default(),
            store: StoreSection::default(),
        }
    }

    fn validate_cluster(&self) -> Result<(), ConfigError> {
        let name = &self.cluster.name;
        if name.is_empty() {
            return Err(invalid("cluster.name", "must not be empty"));
        }
        if name.len() > MAX_CLUSTER_NAME_LEN {
            return Err(invalid(
                "cluster.name",
                format!("must be at most {MAX_CLUSTER_NAME_LEN} characters"),
            ));
        }
        if let Some(c) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            return Err(invalid(
                "cluster.name",
                format!("{c:?} is not allowed; use only letters, digits, '.', '_' and '-'"),
            ));
        }
        if self.cluster.secret.as_deref() == Some("") {
            return Err(invalid(
                "cluster.secret",
                "must not be empty; remove the line to run without a secret",
            ));
        }
        Ok(())
    }

    /// **SecretOffLoopback.** A node whose peer port is reachable from another host must have
    /// a cluster secret: that port accepts client writes (bypassing `requirepass`), membership
    /// changes and snapshots from whoever passes the handshake. Only clusters whose every
    /// `raft_addr` is a loopback address may run without one.
    fn validate_secret_required(&self) -> Result<(), ConfigError> {
        if self.cluster.secret.is_some() {
            return Ok(());
        }
        for (i, node) in self.nodes.iter().enumerate() {
            let loopback = node
                .raft_addr
                .parse::<SocketAddr>()
                .is_ok_and(|a| a.ip().is_loopback());
            if !loopback {
                return Err(invalid(
                    "cluster.secret",
                    format!(
                        "is required because node[{i}].raft_addr {} is not a loopback address: \
                         without it anyone who reaches the peer port can write, remove nodes \
                         or install a snapshot; generate one with `redraft gen-secret`",
                        node.raft_addr
                    ),
                ));
            }
        }
        Ok(())
    }

    fn validate_nodes(&self) -> Result<(), ConfigError> {
        if self.nodes.is_empty() {
            return Err(invalid("node", "at least one [[node]] is required"));
        }
        let multi = self.nodes.len() > 1;
        let mut ids: HashMap<u64, usize> = HashMap::new();
        // Every address of every node, with the field that declared it.
        let mut addrs: Vec<(SocketAddr, String)> = Vec::new();
        for (i, node) in self.nodes.iter().enumerate() {
            let at = |name: &str| format!("node[{i}].{name}");
            if node.id == 0 {
                return Err(invalid(at("id"), "must be at least 1"));
            }
            if let Some(first) = ids.insert(node.id, i) {
                return Err(invalid(
                    at("id"),
                    format!("duplicate node id {} (also node[{first}].id)", node.id),
                ));
            }

            let raft = parse_addr(&at("raft_addr"), &node.raft_addr)?;
            if multi && raft.ip().is_unspecified() {
                return Err(invalid(
                    at("raft_addr"),
                    format!("{raft}: peers dial this address, so it needs a concrete IP"),
                ));
            }
            if multi && raft.port() == 0 {
                return Err(invalid(
                    at("raft_addr"),
                    format!("{raft}: peers dial this address, so it needs a fixed port"),
                ));
            }
            let mut own = vec![(raft, at("raft_addr"))];
            own.push((
                parse_addr(&at("redis_addr"), &node.redis_addr)?,
                at("redis_addr"),
            ));
            if let Some(metrics) = &node.metrics_addr {
                own.push((
                    parse_addr(&at("metrics_addr"), metrics)?,
                    at("metrics_addr"),
                ));
            }
            let start = addrs.len();
            for (addr, field) in own {
                // Port 0 asks the OS for a free port, so two of them never collide.
                if addr.port() != 0 {
                    if let Some((_, other)) = addrs.iter().find(|(a, _)| a == &addr) {
                        return Err(invalid(field, format!("{addr} is already used by {other}")));
                    }
                }
                addrs.push((addr, field));
            }
            // The same port on 0.0.0.0 and on another IP of the same node cannot both bind.
            let mine = &addrs[start..];
            for (j, (a, fa)) in mine.iter().enumerate() {
                for (b, fb) in &mine[j + 1..] {
                    if a.port() != 0
                        && a.port() == b.port()
                        && (a.ip().is_unspecified() || b.ip().is_unspecified())
                    {
                        return Err(invalid(
                            fb.clone(),
                            format!("{b} overlaps {fa} ({a}) on port {}", a.port()),
                        ));
                    }
                }
            }

            if node.data_dir.as_os_str().is_empty() {
                return Err(invalid(at("data_dir"), "must not be empty"));
            }
        }

        // Only nodes on one machine can trip over each other's data_dir; on separate hosts
        // the same path (say /var/lib/redraft) is the normal layout.
        for (i, node) in self.nodes.iter().enumerate() {
            for (j, other) in self.nodes.iter().enumerate().take(i) {
                if normalize(&node.data_dir) == normalize(&other.data_dir)
                    && same_host(&node.raft_addr, &other.raft_addr)
                {
                    return Err(invalid(
                        format!("node[{i}].data_dir"),
                        format!(
                            "{} is already node[{j}].data_dir (node {}), on the same host",
                            node.data_dir.display(),
                            other.id
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    fn validate_raft(&self) -> Result<(), ConfigError> {
        let raft = &self.raft;
        if raft.heartbeat_ms == 0 {
            return Err(invalid("raft.heartbeat_ms", "must be at least 1"));
        }
        if raft.election_timeout_ms > MAX_ELECTION_TIMEOUT_MS {
            return Err(invalid(
                "raft.election_timeout_ms",
                format!("must be at most {MAX_ELECTION_TIMEOUT_MS} (one hour)"),
            ));
        }
        if raft.election_timeout_ms <= raft.heartbeat_ms.saturating_mul(2) {
            return Err(invalid(
                "raft.election_timeout_ms",
                format!(
                    "must exceed 2 × heartbeat_ms ({} ≤ 2 × {})",
                    raft.election_timeout_ms, raft.heartbeat_ms
                ),
            ));
        }
        if raft.snapshot_every == 0 {
            return Err(invalid("raft.snapshot_every", "must be at least 1"));
        }
        if let Some(m) = raft.lease_drift_margin_ms {
            if m > raft.election_timeout_ms {
                return Err(invalid(
                    "raft.lease_drift_margin_ms",
                    format!(
                        "must be at most election_timeout_ms ({m} > {})",
                        raft.election_timeout_ms
                    ),
                ));
            }
        }
        Ok(())
    }

    fn validate_server(&self) -> Result<(), ConfigError> {
        let server = &self.server;
        if server.requirepass.as_deref() == Some("") {
            return Err(invalid(
                "server.requirepass",
                "must not be empty; remove the line to run without AUTH",
            ));
        }
        if server.max_clients == 0 {
            return Err(invalid("server.max_clients", "must be at least 1"));
        }
        if server.proto_max_bulk_len == 0 || server.proto_max_bulk_len > MAX_PROTO_MAX_BULK_LEN {
            return Err(invalid(
                "server.proto_max_bulk_len",
                format!("must be between 1 and {MAX_PROTO_MAX_BULK_LEN} (512 MiB)"),
            ));
        }
        if server.write_timeout_ms == 0 {
            return Err(invalid("server.write_timeout_ms", "must be at least 1"));
        }
        if server.timeout > MAX_IDLE_TIMEOUT {
            return Err(invalid(
                "server.timeout",
                format!("must be between 0 and {MAX_IDLE_TIMEOUT} seconds"),
            ));
        }
        if NotifyKeyspaceEvents::parse(&server.notify_keyspace_events).is_none() {
            return Err(invalid(
                "server.notify_keyspace_events",
                format!(
                    "{:?} has a letter that is not an event class; use {}",
                    server.notify_keyspace_events,
                    NotifyKeyspaceEvents::LETTERS
                ),
            ));
        }
        Ok(())
    }

    fn validate_store(&self) -> Result<(), ConfigError> {
        if self.store.history_revisions == Some(0) {
            return Err(invalid(
                "store.history_revisions",
                "must be at least 1; set `auto_compaction = false` to keep all history",
            ));
        }
        if self.store.history_minutes == Some(0) {
            return Err(invalid(
                "store.history_minutes",
                "must be at least 1; set `auto_compaction = false` to keep all history",
            ));
        }
        if self.store.auto_compaction == Some(false)
            && (self.store.history_revisions.is_some() || self.store.history_minutes.is_some())
        {
            return Err(invalid(
                "store.auto_compaction",
                "is false, but history_revisions or history_minutes asks for compaction; \
                 remove one or the other",
            ));
        }
        Ok(())
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
            .finish()
    }
}

fn parse_addr(field: &str, value: &str) -> Result<SocketAddr, ConfigError> {
    value.parse().map_err(|_| {
        invalid(
            field,
            format!("{value:?} is not an ip:port address (e.g. \"127.0.0.1:6379\")"),
        )
    })
}

/// Whether two validated raft addresses may be the same machine: equal IPs, both loopback, or
/// either unspecified.
fn same_host(a: &str, b: &str) -> bool {
    match (a.parse::<SocketAddr>(), b.parse::<SocketAddr>()) {
        (Ok(a), Ok(b)) => {
            let (a, b) = (a.ip(), b.ip());
            a == b
                || (a.is_loopback() && b.is_loopback())
                || a.is_unspecified()
                || b.is_unspecified()
        }
        _ => true,
    }
}

/// Drops `.` components, so `./data/n1/` and `data/n1` compare equal.
fn normalize(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| *c != Component::CurDir)
        .collect()
}

/// Renders a toml error on one line: `line L, column C: <message> (in `<source line>`)`. The
/// source line names the key when toml's message does not (a wrong type, a bad value).
fn describe_toml_error(e: &toml::de::Error, text: &str) -> String {
    let message = e.message().trim_end().replace('\n', "; ");
    let Some(span) = e.span() else {
        return message;
    };
    let start = span.start.min(text.len());
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let line = text[..start].matches('\n').count() + 1;
    let column = text[line_start..start].chars().count() + 1;
    let source = text[line_start..line_end].trim();
    // A missing field's span is the table that lacks it; its first line adds nothing.
    if source.is_empty() || message.starts_with("missing field") {
        format!("line {line}, column {column}: {message}")
    } else {
        format!("line {line}, column {column}: {message} (in `{source}`)")
    }
}

/// The contents of `dir/IDENTITY`.
#[derive(Debug, Deserialize, Serialize)]
struct Identity {
    cluster: String,
    node_id: u64,
    format: u32,
}

/// Makes sure `dir` belongs to (`cluster_name`, `node_id`) and returns whether it was pristine
/// (true = first start).
///
/// Creates `dir` if missing. If it holds an identity file it must name this cluster and node,
/// else [`ConfigError::ForeignDataDir`] names both owners. If the dir is new or empty, the
/// identity file is written (temp file, fsync, rename, fsync dir) and the dir is claimed. A
/// non-empty dir without an identity file is refused as belonging to an unknown owner;
/// `lost+found` (a fresh filesystem's mount point) and a temp file left by an interrupted claim
/// do not count as content.
///
/// "Pristine" is reported once: a node that crashes after the claim but before initialising
/// Raft must learn from its log store, not from this function, that it has no state.
pub fn ensure_data_dir_identity(
    dir: &Path,
    cluster_name: &str,
    node_id: u64,
) -> Result<bool, ConfigError> {
    let io_err = |source: io::Error| ConfigError::DataDirIo {
        dir: dir.to_owned(),
        source,
    };
    let expected = format!("cluster {cluster_name:?} node {node_id}");
    let identity_path = dir.join(IDENTITY_FILE);
    let tmp_name = format!("{IDENTITY_FILE}.tmp");

    crate::fsutil::create_dir_all_durable(dir).map_err(io_err)?;

    match fs::read_to_string(&identity_path) {
        Ok(text) => {
            let id: Identity = toml::from_str(&text).map_err(|e| {
                io_err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{IDENTITY_FILE} is unreadable ({}); it is not safe to guess its owner",
                        e.message().trim_end()
                    ),
                ))
            })?;
            if id.format != IDENTITY_FORMAT {
                return Err(io_err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{IDENTITY_FILE} has format {}, this build understands {IDENTITY_FORMAT}",
                        id.format
                    ),
                )));
            }
            if id.cluster == cluster_name && id.node_id == node_id {
                return Ok(false);
            }
            let found = format!("cluster {:?} node {}", id.cluster, id.node_id);
            return Err(ConfigError::ForeignDataDir {
                dir: dir.to_owned(),
                found,
                expected,
            });
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(e)),
    }

    let mut others: Vec<String> = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err)? {
        let name = entry
            .map_err(io_err)?
            .file_name()
            .to_string_lossy()
            .into_owned();
        if name != "lost+found" && name != tmp_name {
            others.push(name);
        }
    }
    if !others.is_empty() {
        others.sort();
        let shown = others
            .iter()
            .take(3)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        let more = if others.len() > 3 { ", ..." } else { "" };
        let found =
            format!("an unknown owner (no {IDENTITY_FILE} file, but it holds {shown}{more})");
        return Err(ConfigError::ForeignDataDir {
            dir: dir.to_owned(),
            found,
            expected,
        });
    }

    let identity = Identity {
        cluster: cluster_name.to_owned(),
        node_id,
        format: IDENTITY_FORMAT,
    };
    let body = toml::to_string(&identity)
        .map_err(|e| io_err(io::Error::new(io::ErrorKind::InvalidInput, e.to_string())))?;
    let tmp_path = dir.join(&tmp_name);
    {
        let mut file = fs::File::create(&tmp_path).map_err(io_err)?;
        file.write_all(b"# Written by redraft when this node first started. Do not edit.\n")
            .and_then(|()| file.write_all(body.as_bytes()))
            .and_then(|()| file.sync_all())
            .map_err(io_err)?;
    }
    fs::rename(&tmp_path, &identity_path).map_err(io_err)?;
    sync_dir(dir).map_err(io_err)?;
    Ok(true)
}

/// Makes a directory's entries (a create or a rename inside it) durable.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// Directories cannot be opened for fsync here; the rename is as durable as the OS makes it.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLUSTER_TOML: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/cluster.toml");

    /// A valid three-node config; tests append to or edit it.
    const BASE: &str = r#"
[cluster]
name = "demo"

[[node]]
id = 1
raft_addr = "127.0.0.1:7101"
redis_addr = "127.0.0.1:6381"
data_dir = "data/node1"

[[node]]
id = 2
raft_addr = "127.0.0.1:7102"
redis_addr = "127.0.0.1:6382"
data_dir = "data/node2"

[[node]]
id = 3
raft_addr = "127.0.0.1:7103"
redis_addr = "127.0.0.1:6383"
data_dir = "data/node3"
"#;

    fn parse(text: &str) -> Result<ClusterConfig, ConfigError> {
        ClusterConfig::parse(text, Path::new("test.toml"))
    }

    fn must_parse(text: &str) -> ClusterConfig {
        parse(text).unwrap_or_else(|e| panic!("config should be valid: {e}\n{text}"))
    }

    /// Asserts that `text` fails validation at `want_field` with a reason containing
    /// `want_reason`.
    fn must_be_invalid(text: &str, want_field: &str, want_reason: &str) {
        match parse(text) {
            Err(ConfigError::Invalid { field, reason }) => {
                assert_eq!(field, want_field, "reason: {reason}");
                assert!(
                    reason.contains(want_reason),
                    "{field}: {reason:?} lacks {want_reason:?}"
                );
            }
            other => panic!("want Invalid {want_field}, got {other:?}"),
        }
    }

    /// Asserts that `text` fails to parse with a message containing every one of `want`.
    fn must_not_parse(text: &str, want: &[&str]) {
        match parse(text) {
            Err(e @ ConfigError::Parse { .. }) => {
                let msg = e.to_string();
                assert!(msg.starts_with("invalid config test.toml: "), "{msg}");
                for w in want {
                    assert!(msg.contains(w), "{msg:?} lacks {w:?}");
                }
            }
            other => panic!("want Parse error, got {other:?}"),
        }
    }

    #[test]
    fn base_parses_with_defaults_for_missing_sections() {
        let c = must_parse(BASE);
        assert_eq!(c.cluster.name, "demo");
        assert_eq!(c.cluster.secret, None);
        assert_eq!(c.nodes.len(), 3);
        assert_eq!(c.nodes[1].data_dir, PathBuf::from("data/node2"));
        assert_eq!(c.nodes[0].metrics_addr, None);
        assert_eq!(c.raft, RaftSection::default());
        assert_eq!(c.raft.heartbeat_ms, 100);
        assert_eq!(c.raft.election_timeout_ms, 1000);
        assert_eq!(c.raft.snapshot_every, 10_000);
        assert_eq!(c.raft.max_in_snapshot_log_to_keep, 1000);
        assert_eq!(c.server, ServerSection::default());
        assert_eq!(c.server.requirepass, None);
        assert_eq!(c.server.read_mode, ReadMode::Linearizable);
        assert_eq!(c.server.max_clients, 10_000);
        assert_eq!(c.server.proto_max_bulk_len, 512 * 1024 * 1024);
        assert_eq!(c.server.write_timeout_ms, 5000);
        assert_eq!(c.server.timeout, 0);
        assert_eq!(c.server.client_output_buffer_limit, 1 << 30);
        assert_eq!(c.server.notify_keyspace_events, "");
        assert_eq!(c.store, StoreSection::default());
        assert_eq!(c.store.history_revisions, None);
    }

    #[test]
    fn partial_sections_keep_other_defaults() {
        let c = must_parse(&format!(
            "{BASE}\n[raft]\nheartbeat_ms = 50\n[server]\nread_mode = \"lease\"\n\
             [store]\nhistory_minutes = 60\n"
        ));
        assert_eq!(c.raft.heartbeat_ms, 50);
        assert_eq!(c.raft.election_timeout_ms, 1000);
        assert_eq!(c.server.read_mode, ReadMode::Lease);
        assert_eq!(c.server.max_clients, 10_000);
        assert_eq!(c.store.history_minutes, Some(60));
        assert_eq!(c.store.history_revisions, None);
    }

    #[test]
    fn node_order_does_not_matter() {
        let c = must_parse(
            r#"
[cluster]
name = "demo"
[[node]]
id = 3
raft_addr = "127.0.0.1:7103"
redis_addr = "127.0.0.1:6383"
data_dir = "d3"
[[node]]
id = 1
raft_addr = "127.0.0.1:7101"
redis_addr = "127.0.0.1:6381"
data_dir = "d1"
"#,
        );
        assert_eq!(c.node(1).unwrap().data_dir, PathBuf::from("d1"));
        assert_eq!(c.node(3).unwrap().redis_addr, "127.0.0.1:6383");
    }

    #[test]
    fn shipped_cluster_toml_parses() {
        let c = ClusterConfig::from_file(Path::new(CLUSTER_TOML)).unwrap();
        assert_eq!(c.cluster.name, "demo");
        assert_eq!(c.cluster.secret, None);
        let ids: Vec<u64> = c.nodes.iter().map(|n| n.id).collect();
        assert_eq!(ids, [1, 2, 3]);
        for (i, n) in c.nodes.iter().enumerate() {
            assert_eq!(n.raft_addr, format!("127.0.0.1:{}", 7101 + i));
            assert_eq!(n.redis_addr, format!("127.0.0.1:{}", 6381 + i));
            assert_eq!(n.data_dir, PathBuf::from(format!("data/node{}", i + 1)));
            assert_eq!(n.metrics_addr, None);
        }
        // The file spells out the defaults; they must agree with the code.
        assert_eq!(c.raft, RaftSection::default());
        assert_eq!(c.server, ServerSection::default());
        assert_eq!(c.store, StoreSection::default());
    }

    #[test]
    fn single_node_validates() {
        let c = ClusterConfig::single_node();
        c.validate().unwrap();
        assert_eq!(c.cluster.name, "redraft");
        let n = c.node(1).unwrap();
        assert_eq!(n.redis_addr, "127.0.0.1:6379");
        assert_eq!(n.raft_addr, "127.0.0.1:7379");
        assert_eq!(n.data_dir, PathBuf::from("./data"));
    }

    #[test]
    fn missing_file_is_a_read_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope.toml");
        let e = ClusterConfig::from_file(&path).unwrap_err();
        assert!(matches!(e, ConfigError::Read { .. }), "{e:?}");
        assert!(e.to_string().contains("nope.toml"), "{e}");
    }

    #[test]
    fn refuses_malformed_toml() {
        must_not_parse(
            "[cluster\nname = \"demo\"\n",
            &["line 1", "invalid table header; expected"],
        );
        must_not_parse(
            &BASE.replace("id = 2", "id = \"two\""),
            &["line 12", "invalid type"],
        );
    }

    #[test]
    fn refuses_missing_required_fields() {
        must_not_parse("[cluster]\nname = \"demo\"\n", &["missing field `node`"]);
        must_not_parse(
            &BASE.replace("data_dir = \"data/node2\"", ""),
            &["`data_dir`"],
        );
    }

    #[test]
    fn refuses_unknown_field_at_top_level() {
        must_not_parse(
            &format!("verbose = true\n{BASE}"),
            &["line 1", "unknown field `verbose`"],
        );
        must_not_parse(
            &format!("{BASE}\n[raftt]\nheartbeat_ms = 1\n"),
            &["`raftt`"],
        );
    }

    #[test]
    fn refuses_unknown_field_in_cluster() {
        must_not_parse(
            &BASE.replace("name = \"demo\"", "name = \"demo\"\nsecrett = \"x\""),
            &["line 4", "unknown field `secrett`"],
        );
    }

    #[test]
    fn refuses_unknown_field_in_node() {
        let text = BASE.replace("id = 2\n", "id = 2\nredis_port = 6382\n");
        must_not_parse(&text, &["line 13", "unknown field `redis_port`"]);
    }

    #[test]
    fn refuses_unknown_field_in_raft_server_store() {
        let raft = format!("{BASE}\n[raft]\nheartbeat = 100\n");
        must_not_parse(&raft, &["unknown field `heartbeat`", "heartbeat_ms"]);
        must_not_parse(
            &format!("{BASE}\n[server]\nport = 1\n"),
            &["unknown field `port`"],
        );
        must_not_parse(
            &format!("{BASE}\n[store]\nkeep = 1\n"),
            &["unknown field `keep`"],
        );
    }

    #[test]
    fn read_lease_is_the_election_timeout_minus_the_drift_margin() {
        let c = must_parse(BASE);
        assert_eq!(c.raft.read_lease(), std::time::Duration::from_millis(800));
        let c = must_parse(&format!(
            "{BASE}\n[raft]\nelection_timeout_ms = 500\nlease_drift_margin_ms = 150\n"
        ));
        assert_eq!(c.raft.read_lease(), std::time::Duration::from_millis(350));
        must_be_invalid(
            &format!("{BASE}\n[raft]\nelection_timeout_ms = 500\nlease_drift_margin_ms = 501\n"),
            "raft.lease_drift_margin_ms",
            "must be at most election_timeout_ms",
        );
    }

    #[test]
    fn refuses_unknown_read_mode() {
        let text = format!("{BASE}\n[server]\nread_mode = \"eventual\"\n");
        must_not_parse(&text, &["unknown variant `eventual`", "lease"]);
    }

    #[test]
    fn refuses_bad_cluster_name() {
        must_be_invalid(
            &BASE.replace("\"demo\"", "\"\""),
            "cluster.name",
            "must not be empty",
        );
        must_be_invalid(
            &BASE.replace("\"demo\"", "\"my demo\""),
            "cluster.name",
            "' '",
        );
        must_be_invalid(&BASE.replace("\"demo\"", "\"démo\""), "cluster.name", "'é'");
        let long = format!("\"{}\"", "a".repeat(65));
        must_be_invalid(
            &BASE.replace("\"demo\"", &long),
            "cluster.name",
            "at most 64",
        );
        must_parse(&BASE.replace("\"demo\"", "\"prod-eu.1_a\""));
    }

    #[test]
    fn refuses_empty_secret() {
        let text = BASE.replace("name = \"demo\"", "name = \"demo\"\nsecret = \"\"");
        must_be_invalid(&text, "cluster.secret", "must not be empty");
    }

    #[test]
    fn refuses_no_nodes() {
        must_be_invalid(
            "node = []\n[cluster]\nname = \"demo\"\n",
            "node",
            "at least one",
        );
    }

    #[test]
    fn refuses_node_id_zero() {
        must_be_invalid(
            &BASE.replace("id = 3", "id = 0"),
            "node[2].id",
            "at least 1",
        );
    }

    #[test]
    fn refuses_duplicate_node_id() {
        must_be_invalid(
            &BASE.replace("id = 3", "id = 1"),
            "node[2].id",
            "duplicate node id 1 (also node[0].id)",
        );
    }

    #[test]
    fn refuses_unparseable_addresses() {
        must_be_invalid(
            &BASE.replace("127.0.0.1:7102", "127.0.0.1"),
            "node[1].raft_addr",
            "\"127.0.0.1\" is not an ip:port address",
        );
        must_be_invalid(
            &BASE.replace("127.0.0.1:6383", "localhost:6383"),
            "node[2].redis_addr",
            "not an ip:port",
        );
        let text = BASE.replace(
            "data_dir = \"data/node1\"",
            "data_dir = \"data/node1\"\nmetrics_addr = \"127.0.0.1:99999\"",
        );
        must_be_invalid(&text, "node[0].metrics_addr", "not an ip:port");
        // IPv6 is fine.
        must_parse(&BASE.replace("127.0.0.1:6383", "[::1]:6383"));
    }

    #[test]
    fn refuses_undialable_raft_addr_in_a_cluster() {
        let text = with_secret(&BASE.replace("127.0.0.1:7102", "0.0.0.0:7102"));
        must_be_invalid(&text, "node[1].raft_addr", "concrete IP");
        let text = BASE.replace("127.0.0.1:7102", "127.0.0.1:0");
        must_be_invalid(&text, "node[1].raft_addr", "fixed port");
        // A lone node is never dialled; ephemeral ports are fine for it (tests use them).
        let mut c = ClusterConfig::single_node();
        c.cluster.secret = Some("s".into());
        c.nodes[0].raft_addr = "0.0.0.0:0".into();
        c.nodes[0].redis_addr = "127.0.0.1:0".into();
        c.nodes[0].metrics_addr = Some("127.0.0.1:0".into());
        c.validate().unwrap();
    }

    fn with_secret(text: &str) -> String {
        text.replace("name = \"demo\"", "name = \"demo\"\nsecret = \"s3cret\"")
    }

    #[test]
    fn refuses_a_cluster_off_loopback_without_a_secret() {
        let off = BASE
            .replace("127.0.0.1:7101", "10.0.0.1:7100")
            .replace("127.0.0.1:7102", "10.0.0.2:7100")
            .replace("127.0.0.1:7103", "10.0.0.3:7100");
        must_be_invalid(&off, "cluster.secret", "node[0].raft_addr 10.0.0.1:7100");
        must_parse(&with_secret(&off));
        // One node off loopback is enough; 0.0.0.0 listens on every interface.
        let one = BASE.replace("127.0.0.1:7103", "192.168.1.3:7103");
        must_be_invalid(&one, "cluster.secret", "node[2].raft_addr");
        let mut lone = ClusterConfig::single_node();
        lone.nodes[0].raft_addr = "0.0.0.0:7100".into();
        let e = lone.validate().unwrap_err().to_string();
        assert!(
            e.contains("cluster.secret") && e.contains("redraft gen-secret"),
            "{e}"
        );
        // All loopback (the embedded default, tests, the example): no secret needed.
        must_parse(BASE);
        ClusterConfig::single_node().validate().unwrap();
    }

    #[test]
    fn refuses_duplicate_addresses() {
        // Across nodes, across kinds.
        must_be_invalid(
            &BASE.replace("127.0.0.1:6383", "127.0.0.1:7101"),
            "node[2].redis_addr",
            "127.0.0.1:7101 is already used by node[0].raft_addr",
        );
        // Within one node.
        must_be_invalid(
            &BASE.replace("127.0.0.1:6382", "127.0.0.1:7102"),
            "node[1].redis_addr",
            "already used by node[1].raft_addr",
        );
        // Metrics too.
        let text = BASE.replace(
            "data_dir = \"data/node3\"",
            "data_dir = \"data/node3\"\nmetrics_addr = \"127.0.0.1:6381\"",
        );
        must_be_invalid(
            &text,
            "node[2].metrics_addr",
            "already used by node[0].redis_addr",
        );
        // 0.0.0.0 and a concrete IP on one port of one node cannot both bind.
        let text = BASE.replace("127.0.0.1:6381", "0.0.0.0:7101");
        must_be_invalid(&text, "node[0].redis_addr", "overlaps node[0].raft_addr");
        // The same port on different hosts is the normal layout.
        must_parse(
            &with_secret(BASE)
                .replace("127.0.0.1:7101", "10.0.0.1:7100")
                .replace("127.0.0.1:7102", "10.0.0.2:7100")
                .replace("127.0.0.1:7103", "10.0.0.3:7100"),
        );
    }

    #[test]
    fn refuses_duplicate_data_dir_on_one_host() {
        must_be_invalid(
            &BASE.replace("data/node3", "./data/node1/"),
            "node[2].data_dir",
            "already node[0].data_dir (node 1)",
        );
        must_be_invalid(
            &BASE.replace("data/node2", ""),
            "node[1].data_dir",
            "must not be empty",
        );
        // On separate hosts every node may use the same path.
        must_parse(
            &with_secret(BASE)
                .replace("127.0.0.1:7101", "10.0.0.1:7100")
                .replace("127.0.0.1:7102", "10.0.0.2:7100")
                .replace("127.0.0.1:7103", "10.0.0.3:7100")
                .replace("data/node1", "/var/lib/redraft")
                .replace("data/node2", "/var/lib/redraft")
                .replace("data/node3", "/var/lib/redraft"),
        );
    }

    #[test]
    fn refuses_bad_raft_timing() {
        let raft = |body: &str| format!("{BASE}\n[raft]\n{body}\n");
        must_be_invalid(&raft("heartbeat_ms = 0"), "raft.heartbeat_ms", "at least 1");
        must_be_invalid(
            &raft("heartbeat_ms = 500"),
            "raft.election_timeout_ms",
            "must exceed 2 × heartbeat_ms",
        );
        must_be_invalid(
            &raft("election_timeout_ms = 200"),
            "raft.election_timeout_ms",
            "must exceed 2 × heartbeat_ms (200 ≤ 2 × 100)",
        );
        must_parse(&raft("election_timeout_ms = 201"));
        must_be_invalid(
            &raft("election_timeout_ms = 3600001"),
            "raft.election_timeout_ms",
            "at most",
        );
        must_be_invalid(
            &raft("snapshot_every = 0"),
            "raft.snapshot_every",
            "at least 1",
        );
        must_parse(&raft("max_in_snapshot_log_to_keep = 0"));
    }

    #[test]
    fn refuses_bad_server_limits() {
        let server = |body: &str| format!("{BASE}\n[server]\n{body}\n");
        must_be_invalid(
            &server("max_clients = 0"),
            "server.max_clients",
            "at least 1",
        );
        must_be_invalid(
            &server("proto_max_bulk_len = 0"),
            "server.proto_max_bulk_len",
            "between 1 and",
        );
        must_be_invalid(
            &server("proto_max_bulk_len = 536870913"),
            "server.proto_max_bulk_len",
            "512 MiB",
        );
        must_parse(&server("proto_max_bulk_len = 536870912"));
        must_be_invalid(
            &server("write_timeout_ms = 0"),
            "server.write_timeout_ms",
            "at least 1",
        );
        must_be_invalid(
            &server("requirepass = \"\""),
            "server.requirepass",
            "must not be empty",
        );
        must_not_parse(&server("max_clients = -1"), &["max_clients"]);
        must_be_invalid(
            &server("timeout = 2147483648"),
            "server.timeout",
            "between 0 and 2147483647",
        );
        must_parse(&server("timeout = 2147483647"));
        must_be_invalid(
            &server("notify_keyspace_events = \"KEQ\""),
            "server.notify_keyspace_events",
            "Ag$lshzxeKEtmdn",
        );
        let c = must_parse(&server(
            "timeout = 30\nclient_output_buffer_limit = 0\nnotify_keyspace_events = \"KEA\"",
        ));
        assert_eq!(c.server.timeout, 30);
        assert_eq!(c.server.client_output_buffer_limit, 0);
        assert_eq!(c.server.notify_keyspace_events, "KEA");
    }

    #[test]
    fn notify_keyspace_events_render_like_redis() {
        // want: what Redis 7's CONFIG GET shows after CONFIG SET <input>.
        let cases = [
            ("", ""),
            ("KEA", "AKE"),
            ("Kg", "gK"),
            ("A", "A"),
            ("KEA$nm", "AKEm"),
            ("En$x", "$xnE"),
            ("g$lshzxetd", "A"),
        ];
        for (input, want) in cases {
            let flags = NotifyKeyspaceEvents::parse(input).expect(input);
            assert_eq!(flags.render(), want, "input {input:?}");
        }
        assert_eq!(NotifyKeyspaceEvents::parse("KEQ"), None);
        assert_eq!(NotifyKeyspaceEvents::parse("k"), None);
    }

    #[test]
    fn refuses_zero_history() {
        let store = |body: &str| format!("{BASE}\n[store]\n{body}\n");
        must_be_invalid(
            &store("history_revisions = 0"),
            "store.history_revisions",
            "at least 1",
        );
        must_be_invalid(
            &store("history_minutes = 0"),
            "store.history_minutes",
            "at least 1",
        );
        must_be_invalid(
            &store("auto_compaction = false\nhistory_revisions = 5"),
            "store.auto_compaction",
            "remove one or the other",
        );
    }

    /// BoundedByDefault: no `[store]` section means the last hour and at least the last
    /// 10,000 revisions; written rules replace the defaults; `auto_compaction = false` keeps
    /// everything.
    #[test]
    fn history_is_bounded_by_default() {
        let store = |body: &str| must_parse(&format!("{BASE}\n[store]\n{body}\n")).store;
        let default = must_parse(BASE).store.effective();
        assert_eq!(default.history_revisions, Some(DEFAULT_HISTORY_REVISIONS));
        assert_eq!(default.history_minutes, Some(DEFAULT_HISTORY_MINUTES));
        assert_eq!(
            (DEFAULT_HISTORY_REVISIONS, DEFAULT_HISTORY_MINUTES),
            (10_000, 60)
        );

        let only_count = store("history_revisions = 500").effective();
        assert_eq!(only_count.history_revisions, Some(500));
        assert_eq!(only_count.history_minutes, None);

        let only_time = store("history_minutes = 5").effective();
        assert_eq!(only_time.history_revisions, None);
        assert_eq!(only_time.history_minutes, Some(5));

        let off = store("auto_compaction = false").effective();
        assert_eq!((off.history_revisions, off.history_minutes), (None, None));
    }

    #[test]
    fn unknown_node_id_lists_the_known_ones() {
        let c = must_parse(BASE);
        let e = c.node(7).unwrap_err();
        assert!(matches!(e, ConfigError::UnknownNode { id: 7, .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            "node id 7 is not in the config (ids: 1, 2, 3)"
        );
    }

    #[test]
    fn debug_redacts_secrets() {
        let text = format!(
            "{}\n[server]\nrequirepass = \"hunter2\"\n",
            BASE.replace("name = \"demo\"", "name = \"demo\"\nsecret = \"s3cret\"")
        );
        let c = must_parse(&text);
        assert_eq!(c.cluster.secret.as_deref(), Some("s3cret"));
        let debug = format!("{c:?}");
        assert!(
            !debug.contains("s3cret") && !debug.contains("hunter2"),
            "{debug}"
        );
        assert!(debug.contains("<redacted>"), "{debug}");
    }

    #[test]
    fn read_mode_round_trips() {
        for mode in [ReadMode::Linearizable, ReadMode::Lease, ReadMode::Stale] {
            assert_eq!(mode.to_string().parse::<ReadMode>(), Ok(mode));
        }
        assert_eq!("LEASE".parse::<ReadMode>(), Ok(ReadMode::Lease));
        for mode in [ReadMode::Linearizable, ReadMode::Lease, ReadMode::Stale] {
            assert_eq!(ReadMode::from_index(mode.index()), mode);
        }
        let e = "fast".parse::<ReadMode>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown read mode `fast` (expected linearizable, lease or stale)"
        );
    }

    #[test]
    fn pristine_data_dir_is_claimed_once() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/node1");
        assert!(
            ensure_data_dir_identity(&dir, "demo", 1).unwrap(),
            "new dir is pristine"
        );
        let text = fs::read_to_string(dir.join(IDENTITY_FILE)).unwrap();
        assert!(
            text.contains("cluster = \"demo\"") && text.contains("node_id = 1"),
            "{text}"
        );
        assert!(!dir.join("IDENTITY.tmp").exists());
        assert!(
            !ensure_data_dir_identity(&dir, "demo", 1).unwrap(),
            "second start"
        );
        // Later state next to the identity does not matter to the owner.
        fs::write(dir.join("log"), b"x").unwrap();
        assert!(!ensure_data_dir_identity(&dir, "demo", 1).unwrap());
    }

    #[test]
    fn existing_empty_dir_is_pristine() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir(tmp.path().join("lost+found")).unwrap();
        fs::write(tmp.path().join("IDENTITY.tmp"), b"half written").unwrap();
        assert!(ensure_data_dir_identity(tmp.path(), "demo", 2).unwrap());
        assert!(!ensure_data_dir_identity(tmp.path(), "demo", 2).unwrap());
    }

    #[test]
    fn refuses_data_dir_of_another_cluster() {
        let tmp = tempfile::tempdir().unwrap();
        ensure_data_dir_identity(tmp.path(), "prod", 1).unwrap();
        let e = ensure_data_dir_identity(tmp.path(), "demo", 1).unwrap_err();
        match &e {
            ConfigError::ForeignDataDir {
                found, expected, ..
            } => {
                assert_eq!(found, "cluster \"prod\" node 1");
                assert_eq!(expected, "cluster \"demo\" node 1");
            }
            other => panic!("want ForeignDataDir, got {other:?}"),
        }
        let msg = e.to_string();
        assert!(
            msg.contains("belongs to cluster \"prod\" node 1, not to cluster \"demo\""),
            "{msg}"
        );
        assert!(msg.contains("refusing to start"), "{msg}");
    }

    #[test]
    fn refuses_data_dir_of_another_node() {
        let tmp = tempfile::tempdir().unwrap();
        ensure_data_dir_identity(tmp.path(), "demo", 1).unwrap();
        let e = ensure_data_dir_identity(tmp.path(), "demo", 2).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, ConfigError::ForeignDataDir { .. }), "{e:?}");
        assert!(msg.contains("belongs to cluster \"demo\" node 1, not to cluster \"demo\" node 2"));
    }

    #[test]
    fn refuses_non_empty_dir_without_identity() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("conf"), b"db").unwrap();
        let e = ensure_data_dir_identity(tmp.path(), "demo", 1).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, ConfigError::ForeignDataDir { .. }), "{e:?}");
        assert!(msg.contains("an unknown owner"), "{msg}");
        assert!(msg.contains("conf"), "{msg}");
        assert!(
            !tmp.path().join(IDENTITY_FILE).exists(),
            "must not claim it"
        );
    }

    #[test]
    fn refuses_unreadable_identity() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join(IDENTITY_FILE), b"garbage").unwrap();
        let e = ensure_data_dir_identity(tmp.path(), "demo", 1).unwrap_err();
        assert!(matches!(e, ConfigError::DataDirIo { .. }), "{e:?}");
        assert!(e.to_string().contains("IDENTITY is unreadable"), "{e}");
        let newer = "cluster = \"demo\"\nnode_id = 1\nformat = 2\n";
        fs::write(tmp.path().join(IDENTITY_FILE), newer).unwrap();
        let e = ensure_data_dir_identity(tmp.path(), "demo", 1).unwrap_err();
        assert!(e.to_string().contains("format 2"), "{e}");
    }

    #[test]
    fn data_dir_that_is_a_file_is_an_io_error() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("f");
        fs::write(&file, b"").unwrap();
        let e = ensure_data_dir_identity(&file, "demo", 1).unwrap_err();
        assert!(matches!(e, ConfigError::DataDirIo { .. }), "{e:?}");
    }
}
