//! Harness for the cluster tests: runs real `redraft` processes, one per node, from a generated
//! `cluster.toml` in a temp dir, and talks to them with the sync `redis` client.
//!
//! Owns process lifecycle (spawn, kill -9, restart, kill -9 on drop) and bounded polling. It
//! must not sleep for correctness: every wait polls a condition against a deadline, and every
//! `must_*` helper panics saying what it waited for, with the tail of each node's log. On a
//! panic the temp dir (config, data dirs, logs) is kept and its path printed.
#![allow(dead_code)]

pub mod client_libs;
pub mod framer_check;
pub mod raw;
pub mod single;
pub mod webdriver;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The binary under test, built by cargo for this test target.
pub const BIN: &str = env!("CARGO_BIN_EXE_redraft");

/// Lines of each node's log shown in a panic message.
const TAIL_LINES: usize = 40;

/// How long a client waits for one reply. Longer than the default `write_timeout_ms` (5 s), so
/// a write waiting for a leader answers `-TRYAGAIN` before the client gives up.
const CLIENT_IO_TIMEOUT: Duration = Duration::from_secs(15);

/// Starts the line the harness writes into a node's log before each (re)start.
const START_MARKER: &str = "===== harness: starting node";

/// Poll interval of every wait.
const POLL: Duration = Duration::from_millis(50);

/// Prints why the next phase of a test runs, with the time since the first phase.
pub fn phase(why: &str) {
    static START: OnceLock<Instant> = OnceLock::new();
    let t = START.get_or_init(Instant::now).elapsed();
    eprintln!("[{:7.2}s] == {why}", t.as_secs_f64());
}

/// Returns `n` distinct ports that were free a moment ago, below the kernel's ephemeral range.
///
/// Ports handed out by `bind(0)` come from the ephemeral range (32768-60999 on Linux), where
/// any process's next outgoing connection or `bind(0)` may take one between our check and the
/// node's bind (seen: a node exiting "Address already in use" while tests ran in parallel).
/// Ports in 20000-32767 are never handed out by the kernel, so only another harness picking the
/// same port at the same moment could collide: each process starts at its own offset (from its
/// pid) and never hands out a port twice; each candidate is checked by binding it.
pub fn free_ports(n: usize) -> Vec<u16> {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_768;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(7919) % SPAN,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    let mut held = Vec::with_capacity(n);
    let mut tries = 0;
    while held.len() < n {
        tries += 1;
        assert!(tries < SPAN, "no free port in {LOW}..{}", LOW + SPAN);
        let port = (LOW + NEXT.fetch_add(1, Ordering::SeqCst) % SPAN) as u16;
        if let Ok(l) = TcpListener::bind(("127.0.0.1", port)) {
            held.push(l);
        }
    }
    held.iter()
        .map(|l| l.local_addr().expect("local_addr").port())
        .collect()
}

/// Starts `redraft --config <config> --node <id> --log info`, appending stdout and stderr to
/// `log` after a marker line.
pub fn spawn_node(config: &Path, id: u64, log: &Path) -> Child {
    spawn_node_with(config, id, log, &[])
}

/// Like [`spawn_node`], with `extra` arguments after `--node <id>`.
pub fn spawn_node_with(config: &Path, id: u64, log: &Path, extra: &[String]) -> Child {
    spawn_node_env(config, id, log, extra, &[])
}

/// Like [`spawn_node_with`], with `env` added to the process's environment (e.g. a failpoint).
pub fn spawn_node_env(
    config: &Path,
    id: u64,
    log: &Path,
    extra: &[String],
    env: &[(String, String)],
) -> Child {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap_or_else(|e| panic!("open log {}: {e}", log.display()));
    writeln!(file, "{START_MARKER} {id} =====").expect("write log marker");
    let stdout = file.try_clone().expect("clone log handle");
    Command::new(BIN)
        .arg("--config")
        .arg(config)
        .arg("--node")
        .arg(id.to_string())
        .args(extra)
        .arg("--log")
        .arg("info")
        .env("NO_COLOR", "1")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(file)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {BIN} for node {id}: {e}"))
}

/// `GET path` over HTTP/1.1 on `addr`: the status code and body.
pub fn http_get(addr: &str, path: &str) -> Result<(u16, String), String> {
    use std::io::Read as _;
    let mut s = std::net::TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    // Connection: close, so the server ends the response with the connection.
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut resp = String::new();
    s.read_to_string(&mut resp)
        .map_err(|e| format!("read {addr}{path}: {e}"))?;
    let status = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("bad HTTP response from {addr}{path}: {resp:?}"))?;
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// `RAFT.INFO`, parsed.
#[derive(Debug, Clone)]
pub struct RaftInfo {
    pub fields: BTreeMap<String, String>,
    pub members: Vec<BTreeMap<String, String>>,
}

impl RaftInfo {
    fn parse(v: redis::Value) -> Result<Self, String> {
        fn text(v: &redis::Value) -> String {
            match v {
                redis::Value::Nil => String::new(),
                redis::Value::Int(i) => i.to_string(),
                other => redis::from_redis_value::<String>(other).unwrap_or_default(),
            }
        }
        fn pairs(v: redis::Value) -> Result<Vec<(String, redis::Value)>, String> {
            match v {
                redis::Value::Array(items) => Ok(items
                    .chunks(2)
                    .filter(|c| c.len() == 2)
                    .map(|c| (text(&c[0]), c[1].clone()))
                    .collect()),
                other => Err(format!("RAFT.INFO answered {other:?}")),
            }
        }
        let mut fields = BTreeMap::new();
        let mut members = Vec::new();
        for (k, v) in pairs(v)? {
            if k == "members" {
                let redis::Value::Array(list) = v else {
                    return Err("members is not an array".into());
                };
                for m in list {
                    members.push(pairs(m)?.into_iter().map(|(k, v)| (k, text(&v))).collect());
                }
            } else {
                fields.insert(k, text(&v));
            }
        }
        Ok(Self { fields, members })
    }

    pub fn get(&self, k: &str) -> &str {
        self.fields.get(k).map_or("", String::as_str)
    }

    /// The ids of the voters.
    pub fn voters(&self) -> Vec<u64> {
        self.members
            .iter()
            .filter(|m| m.get("suffrage").map(String::as_str) == Some("voter"))
            .filter_map(|m| m.get("id")?.parse().ok())
            .collect()
    }
}

/// Returns the last `lines` lines of the file at `path` without ANSI colours (or why it cannot
/// be read).
pub fn file_tail(path: &Path, lines: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let text = strip_ansi(&String::from_utf8_lossy(&bytes));
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("<cannot read {}: {e}>", path.display()),
    }
}

/// Removes ANSI colour sequences (`ESC [ ... m`) from `text`.
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(ch) = chars.next() {
        if ch == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(ch);
        }
    }
    out
}

/// Opens a client connection to `addr` ("ip:port") and checks it with PING.
pub fn connect(addr: &str, timeout: Duration) -> Result<redis::Connection, String> {
    connect_with_password(addr, None, timeout)
}

/// Opens a client connection to `addr`, authenticating with `password` when one is given, and
/// checks it with PING.
pub fn connect_with_password(
    addr: &str,
    password: Option<&str>,
    timeout: Duration,
) -> Result<redis::Connection, String> {
    let url = match password {
        Some(pw) => format!("redis://:{pw}@{addr}/"),
        None => format!("redis://{addr}/"),
    };
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let mut con = client
        .get_connection_with_timeout(timeout)
        .map_err(|e| format!("connect {addr}: {e}"))?;
    con.set_read_timeout(Some(CLIENT_IO_TIMEOUT))
        .and_then(|()| con.set_write_timeout(Some(CLIENT_IO_TIMEOUT)))
        .map_err(|e| e.to_string())?;
    let pong: String = redis::cmd("PING")
        .query(&mut con)
        .map_err(|e| format!("PING {addr}: {e}"))?;
    if pong != "PONG" {
        return Err(format!("PING {addr} answered {pong:?}"));
    }
    Ok(con)
}

/// `SET key value`; Ok only for `+OK`.
pub fn try_set(con: &mut redis::Connection, key: &str, value: &str) -> Result<(), String> {
    let reply: redis::Value = redis::cmd("SET")
        .arg(key)
        .arg(value)
        .query(con)
        .map_err(|e| format!("SET {key}: {e}"))?;
    match reply {
        redis::Value::Okay => Ok(()),
        other => Err(format!("SET {key} answered {other:?}")),
    }
}

/// `GET key`.
pub fn try_get(con: &mut redis::Connection, key: &str) -> Result<Option<String>, String> {
    redis::cmd("GET")
        .arg(key)
        .query(con)
        .map_err(|e| format!("GET {key}: {e}"))
}

/// `ROLE`, returning its first element (`master` or `slave`).
pub fn try_role(con: &mut redis::Connection) -> Result<String, String> {
    let reply: Vec<redis::Value> = redis::cmd("ROLE")
        .query(con)
        .map_err(|e| format!("ROLE: {e}"))?;
    let first = reply.first().ok_or("ROLE answered an empty array")?;
    redis::from_redis_value::<String>(first).map_err(|e| format!("ROLE first element: {e}"))
}

/// `INFO section`, parsed into its `key:value` lines.
pub fn try_info(
    con: &mut redis::Connection,
    section: &str,
) -> Result<BTreeMap<String, String>, String> {
    let text: String = redis::cmd("INFO")
        .arg(section)
        .query(con)
        .map_err(|e| format!("INFO {section}: {e}"))?;
    Ok(text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect())
}

/// Builds a [`Cluster`]: three nodes, fast timings, everything else at its default.
pub struct ClusterBuilder {
    name: String,
    nodes: u64,
    heartbeat_ms: u64,
    election_timeout_ms: u64,
    snapshot_every: Option<u64>,
    max_in_snapshot_log_to_keep: Option<u64>,
    secret: Option<String>,
    write_timeout_ms: Option<u64>,
    requirepass: Option<String>,
    metrics: bool,
    /// TLS everywhere ([`ClusterBuilder::tls`]).
    tls: bool,
    /// Extra environment per node id (e.g. `REDRAFT_FAILPOINTS` on one node only).
    env: BTreeMap<u64, Vec<(String, String)>>,
}

impl ClusterBuilder {
    /// Gives every node a `metrics_addr` (HTTP `/metrics`, `/health`, `/ready`).
    pub fn metrics(mut self) -> Self {
        self.metrics = true;
        self
    }

    /// TLS: every node gets a `tls_addr` (clients must present a certificate), peers speak
    /// mutual TLS, and `/metrics` is HTTPS when [`ClusterBuilder::metrics`] is on. The
    /// certificates are `redraft cert`'s, in `<dir>/certs` ([`Cluster::certs`]).
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    pub fn name(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }

    pub fn snapshot_every(mut self, n: u64) -> Self {
        self.snapshot_every = Some(n);
        self
    }

    pub fn max_in_snapshot_log_to_keep(mut self, n: u64) -> Self {
        self.max_in_snapshot_log_to_keep = Some(n);
        self
    }

    pub fn secret(mut self, secret: &str) -> Self {
        self.secret = Some(secret.to_string());
        self
    }

    /// Sets `[server] requirepass`; the harness's connections (`try_connect`, `must_leader`,
    /// ...) authenticate with it.
    pub fn requirepass(mut self, password: &str) -> Self {
        self.requirepass = Some(password.to_string());
        self
    }

    /// `[raft] heartbeat_ms` (default 50): also how long openraft waits for a peer's answer.
    pub fn heartbeat_ms(mut self, ms: u64) -> Self {
        self.heartbeat_ms = ms;
        self
    }

    /// `[raft] election_timeout_ms` (default 300).
    pub fn election_timeout_ms(mut self, ms: u64) -> Self {
        self.election_timeout_ms = ms;
        self
    }

    pub fn write_timeout_ms(mut self, ms: u64) -> Self {
        self.write_timeout_ms = Some(ms);
        self
    }

    /// Sets `key=value` in node `id`'s environment, every time it is spawned.
    pub fn node_env(mut self, id: u64, key: &str, value: &str) -> Self {
        self.env
            .entry(id)
            .or_default()
            .push((key.to_string(), value.to_string()));
        self
    }

    /// Writes `cluster.toml` and spawns every node. Does not wait for a leader.
    pub fn start(self) -> Cluster {
        let mut cluster = self.create();
        cluster.spawn_all();
        cluster
    }

    /// Writes `cluster.toml` and starts nothing (e.g. to restore data dirs first).
    pub fn create(self) -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("redraft-cluster-")
            .tempdir()
            .expect("create temp dir");
        let ports = free_ports(4 * self.nodes as usize);
        let mut nodes = BTreeMap::new();
        for id in 1..=self.nodes {
            let i = (id - 1) as usize;
            nodes.insert(
                id,
                NodeSpec {
                    raft_addr: format!("127.0.0.1:{}", ports[4 * i]),
                    redis_addr: format!("127.0.0.1:{}", ports[4 * i + 1]),
                    metrics_addr: self
                        .metrics
                        .then(|| format!("127.0.0.1:{}", ports[4 * i + 2])),
                    tls_addr: self.tls.then(|| format!("127.0.0.1:{}", ports[4 * i + 3])),
                    data_dir: dir.path().join(format!("node{id}")),
                    log: dir.path().join(format!("node{id}.log")),
                    join: None,
                    env: self.env.get(&id).cloned().unwrap_or_default(),
                },
            );
        }

        let mut toml = String::new();
        let _ = writeln!(toml, "[cluster]\nname = {:?}", self.name);
        if let Some(secret) = &self.secret {
            let _ = writeln!(toml, "secret = {secret:?}");
        }
        for (id, n) in &nodes {
            let _ = writeln!(
                toml,
                "\n[[node]]\nid = {id}\nraft_addr = {:?}\nredis_addr = {:?}\ndata_dir = {:?}",
                n.raft_addr,
                n.redis_addr,
                n.data_dir.display().to_string()
            );
            if let Some(m) = &n.metrics_addr {
                let _ = writeln!(toml, "metrics_addr = {m:?}");
            }
            if let Some(t) = &n.tls_addr {
                let certs = dir.path().join("certs");
                let _ = writeln!(
                    toml,
                    "tls_addr = {t:?}\ntls_cert_file = {:?}\ntls_key_file = {:?}",
                    certs.join(format!("node{id}.crt")).display().to_string(),
                    certs.join(format!("node{id}.key")).display().to_string(),
                );
            }
        }
        if self.tls {
            let ca = dir.path().join("certs").join("ca.crt");
            let _ = writeln!(
                toml,
                "\n[tls]\nca_cert_file = {:?}\npeers = true\nmetrics = {}",
                ca.display().to_string(),
                self.metrics
            );
        }
        let _ = writeln!(
            toml,
            "\n[raft]\nheartbeat_ms = {}\nelection_timeout_ms = {}",
            self.heartbeat_ms, self.election_timeout_ms
        );
        if let Some(n) = self.snapshot_every {
            let _ = writeln!(toml, "snapshot_every = {n}");
        }
        if let Some(n) = self.max_in_snapshot_log_to_keep {
            let _ = writeln!(toml, "max_in_snapshot_log_to_keep = {n}");
        }
        let _ = writeln!(toml, "\n[server]");
        if let Some(ms) = self.write_timeout_ms {
            let _ = writeln!(toml, "write_timeout_ms = {ms}");
        }
        if let Some(pw) = &self.requirepass {
            let _ = writeln!(toml, "requirepass = {pw:?}");
        }
        let config = dir.path().join("cluster.toml");
        fs::write(&config, &toml).expect("write cluster.toml");
        if self.tls {
            let cfg = redraft::config::ClusterConfig::from_file(&config).expect("cluster.toml");
            redraft::tls::cert::write_cluster_certs(&cfg, &dir.path().join("certs"), 30)
                .expect("redraft cert");
        }

        Cluster {
            dir: Some(dir),
            config,
            nodes,
            children: BTreeMap::new(),
            password: self.requirepass,
        }
    }
}

struct NodeSpec {
    raft_addr: String,
    redis_addr: String,
    metrics_addr: Option<String>,
    tls_addr: Option<String>,
    data_dir: PathBuf,
    log: PathBuf,
    /// `--join` target for a node added by [`Cluster::spawn_join`] (not in `cluster.toml`).
    join: Option<String>,
    /// Extra environment ([`ClusterBuilder::node_env`]).
    env: Vec<(String, String)>,
}

/// A running cluster of `redraft` processes. Dropping it kills every node with SIGKILL.
pub struct Cluster {
    /// `None` only during drop.
    dir: Option<TempDir>,
    config: PathBuf,
    nodes: BTreeMap<u64, NodeSpec>,
    /// The running process of each node that was started and not killed by the test.
    children: BTreeMap<u64, Child>,
    /// `[server] requirepass` ([`ClusterBuilder::requirepass`]): the harness's own
    /// connections authenticate with it.
    password: Option<String>,
}

impl Cluster {
    pub fn builder() -> ClusterBuilder {
        ClusterBuilder {
            name: "test".to_string(),
            nodes: 3,
            heartbeat_ms: 50,
            election_timeout_ms: 300,
            snapshot_every: None,
            max_in_snapshot_log_to_keep: None,
            secret: None,
            write_timeout_ms: None,
            requirepass: None,
            metrics: false,
            tls: false,
            env: BTreeMap::new(),
        }
    }

    /// A default three-node cluster, started.
    pub fn start() -> Cluster {
        Cluster::builder().start()
    }

    /// Spawns every node that is not running.
    pub fn spawn_all(&mut self) {
        let ids: Vec<u64> = self.nodes.keys().copied().collect();
        for id in ids {
            if !self.children.contains_key(&id) {
                self.spawn(id);
            }
        }
    }

    pub fn ids(&self) -> Vec<u64> {
        self.nodes.keys().copied().collect()
    }

    pub fn dir(&self) -> &Path {
        self.dir.as_ref().expect("temp dir").path()
    }

    pub fn config_path(&self) -> &Path {
        &self.config
    }

    fn spec(&self, id: u64) -> &NodeSpec {
        self.nodes
            .get(&id)
            .unwrap_or_else(|| panic!("no node {id} in this cluster"))
    }

    pub fn redis_addr(&self, id: u64) -> String {
        self.spec(id).redis_addr.clone()
    }

    pub fn redis_port(&self, id: u64) -> u16 {
        let addr = &self.spec(id).redis_addr;
        addr.rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .unwrap_or_else(|| panic!("bad redis_addr {addr}"))
    }

    /// Node `id`'s TLS client address ([`ClusterBuilder::tls`]).
    pub fn tls_addr(&self, id: u64) -> String {
        self.spec(id)
            .tls_addr
            .clone()
            .unwrap_or_else(|| panic!("node {id} has no tls_addr"))
    }

    /// The certificates of a [`ClusterBuilder::tls`] cluster: `ca.crt`, `node<ID>.crt/.key`,
    /// `client.crt/.key`.
    pub fn certs(&self) -> PathBuf {
        self.dir().join("certs")
    }

    pub fn raft_addr(&self, id: u64) -> String {
        self.spec(id).raft_addr.clone()
    }

    pub fn log_path(&self, id: u64) -> PathBuf {
        self.spec(id).log.clone()
    }

    fn spawn(&mut self, id: u64) {
        let spec = self.spec(id);
        let log = spec.log.clone();
        let child = match &spec.join {
            None => spawn_node_env(&self.config, id, &log, &[], &spec.env),
            Some(member) => {
                let mut args = vec![
                    "--join".to_string(),
                    member.clone(),
                    "--raft-addr".into(),
                    spec.raft_addr.clone(),
                    "--redis-addr".into(),
                    spec.redis_addr.clone(),
                    "--data-dir".into(),
                    spec.data_dir.display().to_string(),
                ];
                if let Some(m) = &spec.metrics_addr {
                    args.extend(["--metrics-addr".to_string(), m.clone()]);
                }
                spawn_node_with(&self.config, id, &log, &args)
            }
        };
        self.children.insert(id, child);
    }

    /// Starts a new node `id` (not in `cluster.toml`) with `redraft --join <member's redis
    /// addr>` on fresh ports and data dir. Returns at once; the node becomes a voter when the
    /// cluster has added it.
    pub fn spawn_join(&mut self, id: u64, member: u64) {
        assert!(!self.nodes.contains_key(&id), "node {id} exists already");
        let ports = free_ports(3);
        let member_addr = self.redis_addr(member);
        let metrics = self.spec(member).metrics_addr.is_some();
        let dir = self.dir().to_path_buf();
        self.nodes.insert(
            id,
            NodeSpec {
                raft_addr: format!("127.0.0.1:{}", ports[0]),
                redis_addr: format!("127.0.0.1:{}", ports[1]),
                metrics_addr: metrics.then(|| format!("127.0.0.1:{}", ports[2])),
                tls_addr: None,
                data_dir: dir.join(format!("node{id}")),
                log: dir.join(format!("node{id}.log")),
                join: Some(member_addr),
                env: Vec::new(),
            },
        );
        self.spawn(id);
    }

    /// Deletes node `id`'s data dir (the node must not be running).
    pub fn wipe(&mut self, id: u64) {
        assert!(
            !self.children.contains_key(&id),
            "wipe({id}): node is running"
        );
        let dir = self.spec(id).data_dir.clone();
        let _ = fs::remove_dir_all(&dir);
    }

    /// Waits up to `timeout` for node `id`'s process to exit on its own (e.g. after SHUTDOWN);
    /// returns its exit code.
    pub fn must_exit(&mut self, id: u64, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            let child = self
                .children
                .get_mut(&id)
                .unwrap_or_else(|| panic!("must_exit({id}): node {id} is not running"));
            if let Ok(Some(status)) = child.try_wait() {
                self.children.remove(&id);
                return status.code();
            }
            if Instant::now() >= deadline {
                self.fail(&format!("node {id} did not exit within {timeout:?}"));
            }
            thread::sleep(POLL);
        }
    }

    /// Node `id`'s HTTP address (`metrics_addr`), if it has one.
    pub fn metrics_addr(&self, id: u64) -> Option<String> {
        self.spec(id).metrics_addr.clone()
    }

    /// `GET path` on node `id`'s HTTP port: the status code and body.
    pub fn try_http_get(&self, id: u64, path: &str) -> Result<(u16, String), String> {
        let addr = self
            .metrics_addr(id)
            .ok_or_else(|| format!("node {id} has no metrics_addr"))?;
        http_get(&addr, path)
    }

    /// `RAFT.INFO` of node `id`, flattened: top-level fields as text, plus `members` as one map
    /// per member.
    pub fn try_raft_info(&self, id: u64) -> Result<RaftInfo, String> {
        let mut con = self.try_connect(id)?;
        let v: redis::Value = redis::cmd("RAFT.INFO")
            .query(&mut con)
            .map_err(|e| format!("RAFT.INFO on node {id}: {e}"))?;
        RaftInfo::parse(v)
    }

    /// Whether node `id` has a process that has not exited.
    pub fn is_running(&mut self, id: u64) -> bool {
        match self.children.get_mut(&id) {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Ids of the nodes the test has not killed.
    pub fn live_ids(&self) -> Vec<u64> {
        self.children.keys().copied().collect()
    }

    /// Kills node `id` with SIGKILL (no graceful shutdown) and reaps it.
    pub fn kill9(&mut self, id: u64) {
        let mut child = self
            .children
            .remove(&id)
            .unwrap_or_else(|| panic!("kill9({id}): node {id} is not running"));
        // An already exited child makes kill fail; wait reports how it ended either way.
        let _ = child.kill();
        let status = child
            .wait()
            .unwrap_or_else(|e| panic!("wait for node {id}: {e}"));
        eprintln!("           killed node {id} ({status})");
    }

    /// Sends SIGKILL to every running node before reaping any, so none outlives the others.
    pub fn kill9_all(&mut self) {
        let mut children = std::mem::take(&mut self.children);
        for child in children.values_mut() {
            let _ = child.kill();
        }
        for (id, mut child) in children {
            let status = child
                .wait()
                .unwrap_or_else(|e| panic!("wait for node {id}: {e}"));
            eprintln!("           killed node {id} ({status})");
        }
    }

    /// Freezes node `id` with SIGSTOP (its sockets stay open; it answers nothing).
    pub fn pause(&mut self, id: u64) {
        self.signal(id, "STOP");
    }

    /// Lets a node frozen by [`Cluster::pause`] run again (SIGCONT).
    pub fn resume(&mut self, id: u64) {
        self.signal(id, "CONT");
    }

    /// Sends SIGHUP to node `id` (it reloads its TLS certificates).
    pub fn hangup(&mut self, id: u64) {
        self.signal(id, "HUP");
    }

    fn signal(&mut self, id: u64, sig: &str) {
        let pid = self
            .children
            .get(&id)
            .unwrap_or_else(|| panic!("signal {sig}: node {id} is not running"))
            .id();
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status()
            .unwrap_or_else(|e| panic!("kill -{sig} {pid}: {e}"));
        assert!(
            status.success(),
            "kill -{sig} {pid} (node {id}) failed: {status}"
        );
        eprintln!("           SIG{sig} node {id} (pid {pid})");
    }

    /// Starts node `id` again on its data dir and ports.
    pub fn restart(&mut self, id: u64) {
        assert!(
            !self.children.contains_key(&id),
            "restart({id}): node {id} is still running; kill9 it first"
        );
        self.spawn(id);
    }

    /// The last lines of node `id`'s log.
    pub fn log_tail(&self, id: u64) -> String {
        file_tail(&self.spec(id).log, TAIL_LINES)
    }

    /// Whether node `id`'s log (across restarts) contains `needle`.
    pub fn log_contains(&self, id: u64, needle: &str) -> bool {
        fs::read(&self.spec(id).log)
            .map(|b| String::from_utf8_lossy(&b).contains(needle))
            .unwrap_or(false)
    }

    /// Whether node `id`'s log comes to contain `needle` within `timeout` (polled): for a line
    /// logged after the state a test waited for, e.g. a join reported once its RAFT.ADDNODE
    /// call returns, which the other nodes' membership can show first.
    pub fn wait_log_contains(&self, id: u64, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.log_contains(id, needle) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Node `id`'s log since its latest (re)start, without ANSI colours.
    pub fn log_since_start(&self, id: u64) -> String {
        let text = fs::read(&self.spec(id).log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let start = text.rfind(START_MARKER).unwrap_or(0);
        strip_ansi(&text[start..])
    }

    /// The log indexes (`index: N` of the snapshot's last log id) on the lines of node `id`'s
    /// log since its latest (re)start that contain `message`, e.g. `snapshot installed`.
    pub fn snapshot_indexes_since_start(&self, id: u64, message: &str) -> Vec<u64> {
        self.log_since_start(id)
            .lines()
            .filter(|l| l.contains(message))
            .filter_map(|l| {
                let rest = &l[l.rfind("index: ")? + "index: ".len()..];
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                digits.parse().ok()
            })
            .collect()
    }

    /// Every node's state and log tail, for panic messages.
    pub fn all_log_tails(&mut self) -> String {
        let mut out = String::new();
        for id in self.ids() {
            let state = match self.children.get_mut(&id).map(|c| c.try_wait()) {
                None => "not running (killed by the test)".to_string(),
                Some(Ok(None)) => "running".to_string(),
                Some(Ok(Some(status))) => format!("EXITED on its own: {status}"),
                Some(Err(e)) => format!("unknown: {e}"),
            };
            let _ = write!(
                out,
                "\n----- node {id} ({state}), last {TAIL_LINES} lines of {} -----\n{}\n",
                self.spec(id).log.display(),
                self.log_tail(id)
            );
        }
        out
    }

    /// Polls `check` every 50 ms until it returns `Ok` or `timeout` passes; then panics naming
    /// `what`, with the last error and every node's log tail.
    pub fn must_wait<T>(
        &mut self,
        timeout: Duration,
        what: &str,
        mut check: impl FnMut(&mut Cluster) -> Result<T, String>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            let last = match check(self) {
                Ok(v) => return v,
                Err(e) => e,
            };
            if Instant::now() >= deadline {
                let tails = self.all_log_tails();
                panic!("timed out after {timeout:?} waiting for {what}; last: {last}\n{tails}");
            }
            thread::sleep(POLL);
        }
    }

    /// Panics with `msg` and every node's log tail.
    pub fn fail(&mut self, msg: &str) -> ! {
        let tails = self.all_log_tails();
        panic!("{msg}\n{tails}")
    }

    /// A connection to node `id`, or why there is none.
    pub fn try_connect(&self, id: u64) -> Result<redis::Connection, String> {
        connect_with_password(
            &self.spec(id).redis_addr,
            self.password.as_deref(),
            Duration::from_millis(500),
        )
    }

    /// A connection to node `id`, retried for up to 10 s (the node may still be starting).
    pub fn must_connect(&mut self, id: u64) -> redis::Connection {
        let what = format!("a client connection to node {id}");
        self.must_wait(Duration::from_secs(10), &what, |c| c.try_connect(id))
    }

    /// `ROLE` of node `id` over a fresh connection.
    pub fn try_role(&self, id: u64) -> Result<String, String> {
        try_role(&mut self.try_connect(id)?)
    }

    /// Polls every live node until all answer, exactly one says ROLE `master`, and all agree
    /// (INFO raft) on that leader and on the term; returns the leader's id. Agreement matters:
    /// right after start-up a late node's first campaign can depose a leader that only some
    /// nodes have heard of.
    pub fn must_leader(&mut self, timeout: Duration) -> u64 {
        self.must_wait(
            timeout,
            "one ROLE master that every live node names as leader, in one term",
            |c| {
                let mut seen = Vec::new();
                let mut masters = Vec::new();
                let mut views = Vec::new();
                for id in c.live_ids() {
                    let view = c.try_connect(id).and_then(|mut con| {
                        let role = try_role(&mut con)?;
                        let info = try_info(&mut con, "raft")?;
                        let field = |k: &str| info.get(k).cloned().unwrap_or_default();
                        Ok((role, field("raft_leader_id"), field("raft_term")))
                    });
                    match view {
                        Ok((role, leader, term)) => {
                            seen.push(format!("node {id}: {role} leader={leader} term={term}"));
                            if role == "master" {
                                masters.push(id);
                            }
                            views.push((leader, term));
                        }
                        Err(e) => seen.push(format!("node {id}: {e}")),
                    }
                }
                let agreed = match (masters.as_slice(), views.first()) {
                    ([m], Some(first)) => {
                        views.len() == c.live_ids().len()
                            && first.0 == m.to_string()
                            && views.iter().all(|v| v == first)
                    }
                    _ => false,
                };
                if agreed {
                    Ok(masters[0])
                } else {
                    Err(seen.join("; "))
                }
            },
        )
    }

    /// INFO `section` of node `id`, retried for up to 10 s.
    pub fn must_info(&mut self, id: u64, section: &str) -> BTreeMap<String, String> {
        let what = format!("INFO {section} from node {id}");
        self.must_wait(Duration::from_secs(10), &what, |c| {
            try_info(&mut c.try_connect(id)?, section)
        })
    }

    /// A numeric field of INFO `raft` on node `id`, e.g. `raft_applied_index`.
    pub fn try_raft_u64(&self, id: u64, field: &str) -> Result<u64, String> {
        let info = try_info(&mut self.try_connect(id)?, "raft")?;
        let value = info
            .get(field)
            .ok_or_else(|| format!("node {id}: INFO raft has no {field}: {info:?}"))?;
        value
            .parse()
            .map_err(|e| format!("node {id}: {field}:{value} is not a number: {e}"))
    }

    pub fn must_raft_u64(&mut self, id: u64, field: &str) -> u64 {
        let what = format!("INFO raft {field} from node {id}");
        self.must_wait(Duration::from_secs(10), &what, |c| {
            c.try_raft_u64(id, field)
        })
    }

    /// `SET key value` through node `id`, retried (on errors only) for up to 15 s.
    pub fn must_set(&mut self, id: u64, key: &str, value: &str) {
        let what = format!("SET {key} through node {id} to be acknowledged");
        self.must_wait(Duration::from_secs(15), &what, |c| {
            try_set(&mut c.try_connect(id)?, key, value)
        });
    }

    /// Checks that GET of every `(key, value)` on node `id` returns the value. Errors (no
    /// leader yet, connection refused) are retried for up to `timeout`; a wrong value is not
    /// retried: a linearizable read must never return stale data.
    pub fn must_read_all(&mut self, id: u64, kvs: &[(String, String)], timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut con: Option<redis::Connection> = None;
        let mut last_err = String::new();
        let mut i = 0;
        while i < kvs.len() {
            let (key, want) = &kvs[i];
            if Instant::now() >= deadline {
                self.fail(&format!(
                    "timed out after {timeout:?} reading {} keys from node {id}: read {i}; \
                     last error: {last_err}",
                    kvs.len()
                ));
            }
            let res = match con.as_mut() {
                Some(con) => try_get(con, key),
                None => match self.try_connect(id) {
                    Ok(c) => {
                        con = Some(c);
                        continue;
                    }
                    Err(e) => Err(e),
                },
            };
            match res {
                Ok(Some(got)) if &got == want => i += 1,
                Ok(got) => self.fail(&format!(
                    "node {id}: GET {key} returned {got:?}, want {want:?} (acknowledged write; \
                     {i} of {} keys read correctly before it)",
                    kvs.len()
                )),
                Err(e) => {
                    last_err = e;
                    con = None;
                    thread::sleep(POLL);
                }
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (_, mut child) in std::mem::take(&mut self.children) {
            let _ = child.kill();
            let _ = child.wait();
        }
        if thread::panicking() {
            if let Some(dir) = self.dir.take() {
                eprintln!(
                    "cluster files kept for inspection: {}",
                    dir.keep().display()
                );
            }
        }
    }
}

/// A background writer: one client that SETs `<prefix>:<n>` = `v<n>` in a loop, through the
/// first reachable of `addrs` (reconnecting to the next on any error), recording what was
/// acknowledged, what failed, and when each acknowledgement came.
pub struct LoadWriter {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: Option<thread::JoinHandle<WriterReport>>,
}

/// What a [`LoadWriter`] saw.
#[derive(Debug, Default)]
pub struct WriterReport {
    /// Keys and values acknowledged with `+OK`.
    pub acked: Vec<(String, String)>,
    /// Writes answered with an error or lost with the connection (outcome unknown).
    pub failed: Vec<String>,
    /// When each acknowledgement arrived.
    pub ack_times: Vec<Instant>,
}

impl WriterReport {
    /// The longest time between two consecutive acknowledgements within `[from, to]` (and from
    /// the last ack before `from`): the write stall of an event in that window.
    pub fn max_gap(&self, from: Instant, to: Instant) -> Duration {
        let mut prev: Option<Instant> = self.ack_times.iter().rev().find(|t| **t <= from).copied();
        let mut worst = Duration::ZERO;
        for t in self.ack_times.iter().filter(|t| **t > from && **t <= to) {
            if let Some(p) = prev {
                worst = worst.max(*t - p);
            }
            prev = Some(*t);
        }
        worst
    }
}

impl LoadWriter {
    /// Starts writing through `addrs` (tried in order, from the one after the last failure).
    pub fn start(prefix: &str, addrs: Vec<String>) -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let prefix = prefix.to_string();
        let handle = thread::spawn(move || {
            let mut report = WriterReport::default();
            let mut con: Option<redis::Connection> = None;
            let mut at = 0usize;
            let mut n = 0u64;
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                let c = match con.as_mut() {
                    Some(c) => c,
                    None => match connect(&addrs[at % addrs.len()], Duration::from_millis(300)) {
                        Ok(c) => con.insert(c),
                        Err(_) => {
                            at += 1;
                            thread::sleep(Duration::from_millis(20));
                            continue;
                        }
                    },
                };
                n += 1;
                let (k, v) = (format!("{prefix}:{n}"), format!("v{n}"));
                match try_set(c, &k, &v) {
                    Ok(()) => {
                        report.ack_times.push(Instant::now());
                        report.acked.push((k, v));
                    }
                    Err(e) => {
                        report.failed.push(format!("{k}: {e}"));
                        con = None;
                        at += 1;
                    }
                }
            }
            report
        });
        Self {
            stop,
            handle: Some(handle),
        }
    }

    /// Stops the writer and returns what it saw.
    pub fn finish(mut self) -> WriterReport {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.handle
            .take()
            .expect("writer running")
            .join()
            .expect("writer thread panicked")
    }
}

impl Drop for LoadWriter {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}
