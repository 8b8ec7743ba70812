//! Turning `cluster.toml` text into a checked [`ClusterConfig`] (ValidBeforeUse): parsing, the
//! per-section checks, and the error texts that name the field to fix.

use std::collections::HashMap;
use std::fs;
use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};

use super::*;

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
        self.validate_store()?;
        self.validate_tls()
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
                tls_addr: None,
                tls_cert_file: None,
                tls_key_file: None,
            }],
            raft: RaftSection::default(),
            server: ServerSection::default(),
            store: StoreSection::default(),
            tls: TlsSection::default(),
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
    /// `raft_addr` is a loopback address may run without one, and clusters whose peers speak
    /// mutual TLS (`tls.peers`: the CA's signature authenticates a peer, the secret is then a
    /// second factor).
    fn validate_secret_required(&self) -> Result<(), ConfigError> {
        if self.cluster.secret.is_some() || self.tls.peers {
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
            if let Some(tls) = &node.tls_addr {
                own.push((parse_addr(&at("tls_addr"), tls)?, at("tls_addr")));
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
        if server.worker_threads > MAX_WORKER_THREADS {
            return Err(invalid(
                "server.worker_threads",
                format!("must be between 0 (one per CPU) and {MAX_WORKER_THREADS}"),
            ));
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
        if self.store.history_minutes > Some(MAX_HISTORY_MINUTES) {
            return Err(invalid(
                "store.history_minutes",
                format!(
                    "must be at most {MAX_HISTORY_MINUTES} (100 years); set \
                     `auto_compaction = false` to keep all history"
                ),
            ));
        }
        if self.store.history_max_revisions == Some(0) {
            return Err(invalid(
                "store.history_max_revisions",
                "must be at least 1; set `auto_compaction = false` to keep all history",
            ));
        }
        if let (Some(max), Some(keep)) = (
            self.store.history_max_revisions,
            self.store.history_revisions,
        ) {
            if max < keep {
                return Err(invalid(
                    "store.history_max_revisions",
                    format!(
                        "is {max}, below history_revisions ({keep}): the cap would drop \
                         revisions that rule keeps"
                    ),
                ));
            }
        }
        if self.store.auto_compaction == Some(false)
            && (self.store.history_revisions.is_some()
                || self.store.history_minutes.is_some()
                || self.store.history_max_revisions.is_some())
        {
            return Err(invalid(
                "store.auto_compaction",
                "is false, but history_revisions, history_minutes or history_max_revisions asks \
                 for compaction; remove one or the other",
            ));
        }
        Ok(())
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

/// The most characters of a source line an error quotes.
const MAX_QUOTED_LINE: usize = 120;

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
    // A line of a megabyte is quoted by its start (QuotedLineCut).
    let cut = source.char_indices().nth(MAX_QUOTED_LINE).map(|(i, _)| i);
    let source = match cut {
        Some(i) => format!("{}…", &source[..i]),
        None => source.to_string(),
    };
    // A missing field's span is the table that lacks it; its first line adds nothing.
    if source.is_empty() || message.starts_with("missing field") {
        format!("line {line}, column {column}: {message}")
    } else {
        format!("line {line}, column {column}: {message} (in `{source}`)")
    }
}
