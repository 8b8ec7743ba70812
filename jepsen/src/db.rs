//! The cluster under test: a generated `cluster.toml`, one network namespace per node, and the
//! `redraft` processes (spawn, kill -9, SIGSTOP/SIGCONT, restart), plus the `iptables` rules of
//! partitions.
//!
//! # Network
//!
//! With root, each node runs in its own namespace `rdjp<pid>n<id>`, reached through a veth pair
//! (`rdjp<pid>v<id>` on the host side, `eth0` inside) enslaved to the bridge `rdjp<pid>b`. The
//! subnet `10.231.X.0/24` is the harness's own (X is free on this host, chosen per run); node
//! `id` is `10.231.X.id`, the bridge (where clients live) `.254`. Partitions are `iptables DROP`
//! rules inside the nodes' namespaces, so they are real packet loss; clients on the bridge keep
//! reaching every node, as Jepsen's control node does.
//!
//! Without root, nodes run on 127.0.0.1 with free ports and only the kill and pause nemeses are
//! possible.
//!
//! # Disks that lose power
//!
//! With [`DbOpts::lossyfs`], every node's data dir is its own lossyfs mount (`crate::lossyfs`,
//! one `lossyfs` process per node, started before the node and stopped after it), and
//! [`Db::power_cut`] is kill -9 of the node followed by `crash` of its filesystem: everything
//! the node wrote but did not fsync is gone, as after a power cut.
//!
//! Invariants:
//! - **UniqueNames.** Every name carries the harness's pid, so concurrent runs never collide.
//! - **CleanupOnEveryExit.** Everything the run creates (processes, namespaces, veths, bridge;
//!   rules die with their namespace) is registered in [`CLEANUP`] before use and removed by
//!   [`cleanup_now`], which runs on drop, on panic (hook) and on Ctrl-C / SIGTERM (main).
//! - **SweepLeftovers.** [`sweep_leftovers`] removes names with the `rdjp` prefix whose pid is no
//!   longer a running harness (a run killed with SIGKILL), including processes inside.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;

use anyhow::{anyhow, bail, Context, Result};

pub use crate::clock::ClockOpts;
use crate::clock::Clocks;
pub use crate::lossyfs::model::CrashMode;

/// Prefix of every namespace and interface name the harness creates.
pub const PREFIX: &str = "rdjp";

/// What has to go when the run ends, however it ends.
#[derive(Default)]
pub struct CleanupState {
    pids: BTreeSet<u32>,
    /// lossyfs mount points, lazily unmounted after the processes are killed.
    mounts: BTreeSet<PathBuf>,
    namespaces: BTreeSet<String>,
    links: BTreeSet<String>,
}

/// The global cleanup registry (CleanupOnEveryExit). A plain mutex: held only to edit the sets
/// or to clean up, never across an await.
pub static CLEANUP: Mutex<Option<CleanupState>> = Mutex::new(None);

fn with_cleanup(f: impl FnOnce(&mut CleanupState)) {
    let mut g = CLEANUP.lock().unwrap_or_else(|p| p.into_inner());
    f(g.get_or_insert_with(Default::default));
}

/// Kills every registered process and removes every registered namespace and link. Idempotent.
pub fn cleanup_now() {
    let state = CLEANUP
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
        .unwrap_or_default();
    for pid in &state.pids {
        unsafe {
            libc::kill(*pid as i32, libc::SIGKILL);
        }
    }
    for pid in &state.pids {
        // Reap if it is our child; ignore otherwise.
        unsafe {
            libc::waitpid(*pid as i32, std::ptr::null_mut(), libc::WNOHANG);
        }
    }
    for m in &state.mounts {
        if let Ok(c) = std::ffi::CString::new(m.as_os_str().as_encoded_bytes()) {
            unsafe {
                libc::umount2(c.as_ptr(), libc::MNT_DETACH);
            }
        }
    }
    for ns in &state.namespaces {
        kill_ns_pids(ns);
        let _ = quiet(Command::new("ip").args(["netns", "del", ns]));
    }
    for link in &state.links {
        let _ = quiet(Command::new("ip").args(["link", "del", link]));
    }
}

fn kill_ns_pids(ns: &str) {
    if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            if let Ok(pid) = pid.parse::<i32>() {
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
        }
    }
}

/// Runs a command, returning its stdout, or an error with its stderr.
fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("run {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn quiet(cmd: &mut Command) -> Result<()> {
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    run(cmd).map(|_| ())
}

/// The pid encoded in a harness name (`rdjp<pid>…`), if it is one.
pub fn owner_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(PREFIX)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    if digits.is_empty() || digits.len() == rest.len() {
        return None;
    }
    digits.parse().ok()
}

/// Whether `pid`, the owner named in a harness name, is still running (a zombie is not: a
/// harness killed with SIGKILL stays a zombie until its parent reaps it, and its leftovers must
/// still be swept). Any live process counts, whatever its binary: the harness runs as
/// `redraft-jepsen` and also inside test binaries (`jepsen/tests/*`), and sweeping the
/// namespaces of a test running beside another run broke that test. A pid reused by another
/// program only delays the sweep until that program ends (SweepOnlyTheDead).
fn owner_alive(pid: u32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "pid (comm) state ...": comm may contain spaces and parentheses; the state follows the
    // last ')'.
    let Some(close) = stat.rfind(')') else {
        return false;
    };
    let state = stat[close + 1..].split_whitespace().next().unwrap_or("");
    !matches!(state, "Z" | "X")
}

/// Removes namespaces and links left by harness runs that are gone (SweepLeftovers). Returns
/// what it removed.
pub fn sweep_leftovers() -> Vec<String> {
    let mut removed = Vec::new();
    let me = std::process::id();
    if let Ok(list) = run(Command::new("ip").args(["netns", "list"])) {
        for line in list.lines() {
            let name = line.split_whitespace().next().unwrap_or("");
            if let Some(pid) = owner_pid(name) {
                if pid != me && !owner_alive(pid) {
                    kill_ns_pids(name);
                    if quiet(Command::new("ip").args(["netns", "del", name])).is_ok() {
                        removed.push(name.to_string());
                    }
                }
            }
        }
    }
    if let Ok(list) = run(Command::new("ip").args(["-o", "link", "show"])) {
        for line in list.lines() {
            // "12: rdjp123b: <...>" or "13: rdjp123v1@if2: <...>"
            let Some(name) = line.split(": ").nth(1) else {
                continue;
            };
            let name = name.split('@').next().unwrap_or(name);
            if let Some(pid) = owner_pid(name) {
                if pid != me
                    && !owner_alive(pid)
                    && quiet(Command::new("ip").args(["link", "del", name])).is_ok()
                {
                    removed.push(name.to_string());
                }
            }
        }
    }
    removed
}

/// Whether this process can make network namespaces (root and a working `ip netns` and
/// `iptables`).
pub fn netns_available() -> Result<(), String> {
    if unsafe { libc::geteuid() } != 0 {
        return Err("not root".into());
    }
    for tool in ["ip", "iptables"] {
        let ok = Command::new(tool)
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            return Err(format!(
                "`{tool}` not found (apt-get install -y iptables iproute2)"
            ));
        }
    }
    Ok(())
}

/// How to build the cluster.
#[derive(Clone, Debug)]
pub struct DbOpts {
    pub bin: PathBuf,
    pub nodes: u64,
    pub run_dir: PathBuf,
    pub netns: bool,
    pub heartbeat_ms: u64,
    pub election_timeout_ms: u64,
    pub write_timeout_ms: u64,
    pub snapshot_every: u64,
    pub read_mode: String,
    /// The `lossyfs` binary: when set, each node's data dir is a lossyfs mount and
    /// [`Db::power_cut`] works.
    pub lossyfs: Option<PathBuf>,
    /// Extra environment for the nodes (e.g. `REDRAFT_FAILPOINTS`).
    pub env: Vec<(String, String)>,
    /// Peer traffic over mutual TLS (`[tls] peers`), with certificates `redraft cert` makes
    /// in `<run_dir>/certs`.
    pub peer_tls: bool,
    /// Clocks that run fast or slow (`crate::clock`): each start of a node gets a rate.
    pub clock: Option<ClockOpts>,
    /// `[store] history_revisions`: history kept to the last N revisions, so compaction runs
    /// during the run (`None`: redraft's default, which never compacts in a run's length).
    pub history_revisions: Option<u64>,
}

/// One node's lossyfs: its process and control socket.
struct LossyMount {
    child: Child,
    socket: PathBuf,
    mount: PathBuf,
}

/// One node's addresses.
#[derive(Clone, Debug)]
pub struct NodeInfo {
    pub id: u64,
    pub ip: String,
    pub redis_addr: String,
    pub raft_addr: String,
    pub ns: Option<String>,
    pub data_dir: PathBuf,
    pub log: PathBuf,
}

/// A node that exited without the harness killing it.
#[derive(Clone, Debug)]
pub struct Crash {
    pub id: u64,
    pub status: String,
}

/// The running cluster.
pub struct Db {
    pub opts: DbOpts,
    pub nodes: Vec<NodeInfo>,
    config: PathBuf,
    children: BTreeMap<u64, Child>,
    paused: BTreeSet<u64>,
    /// The bridge name when namespaces are in use.
    bridge: Option<String>,
    /// Node pairs currently cut.
    cut: BTreeSet<(u64, u64)>,
    /// Each node's lossyfs, when [`DbOpts::lossyfs`] is set.
    disks: BTreeMap<u64, LossyMount>,
    /// The nodes' clock rates, when [`DbOpts::clock`] is set.
    clocks: Option<Clocks>,
}

/// Picks X for 10.231.X.0/24: starting from the pid, the first not routed on this host.
fn pick_subnet() -> Result<u8> {
    let routes = run(Command::new("ip").args(["-o", "-4", "route", "show", "table", "all"]))
        .unwrap_or_default();
    let addrs = run(Command::new("ip").args(["-o", "-4", "addr", "show"])).unwrap_or_default();
    let start = std::process::id() % 250;
    for i in 0..250 {
        let x = ((start + i) % 250) as u8;
        let net = format!("10.231.{x}.");
        if !routes.contains(&net) && !addrs.contains(&net) {
            return Ok(x);
        }
    }
    bail!("no free 10.231.X.0/24 subnet on this host")
}

/// Renders `cluster.toml` for `nodes`.
pub fn render_config(name: &str, opts: &DbOpts, nodes: &[NodeInfo]) -> String {
    // A secret always: the nodes listen on the harness's bridge, which is not loopback.
    let mut s = format!(
        "# Generated by redraft-jepsen.\n[cluster]\nname = {name:?}\nsecret = \"jepsen-{:016x}\"\n",
        rand::random::<u64>()
    );
    let certs = opts.run_dir.join("certs");
    let cert = |file: String| certs.join(file).display().to_string();
    for n in nodes {
        s += &format!(
            "\n[[node]]\nid = {}\nraft_addr = {:?}\nredis_addr = {:?}\ndata_dir = {:?}\n",
            n.id,
            n.raft_addr,
            n.redis_addr,
            n.data_dir.display().to_string()
        );
        if opts.peer_tls {
            s += &format!(
                "tls_cert_file = {:?}\ntls_key_file = {:?}\n",
                cert(format!("node{}.crt", n.id)),
                cert(format!("node{}.key", n.id))
            );
        }
    }
    if opts.peer_tls {
        s += &format!(
            "\n[tls]\npeers = true\nca_cert_file = {:?}\n",
            cert("ca.crt".into())
        );
    }
    s += &format!(
        "\n[raft]\nheartbeat_ms = {}\nelection_timeout_ms = {}\nsnapshot_every = {}\n\
         max_in_snapshot_log_to_keep = {}\n\n[server]\nread_mode = {:?}\nwrite_timeout_ms = {}\n",
        opts.heartbeat_ms,
        opts.election_timeout_ms,
        opts.snapshot_every,
        opts.snapshot_every / 2,
        opts.read_mode,
        opts.write_timeout_ms
    );
    if let Some(n) = opts.history_revisions {
        s += &format!("\n[store]\nhistory_revisions = {n}\n");
    }
    s
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Db {
    /// Sets up the network (if `opts.netns`) and writes the config; starts nothing.
    pub fn setup(opts: DbOpts) -> Result<Db> {
        fs::create_dir_all(&opts.run_dir)?;
        let pid = std::process::id();
        let mut nodes = Vec::new();
        let mut bridge = None;
        if opts.netns {
            let x = pick_subnet()?;
            let br = format!("{PREFIX}{pid}b");
            with_cleanup(|c| {
                c.links.insert(br.clone());
            });
            run(Command::new("ip").args(["link", "add", &br, "type", "bridge"]))?;
            run(Command::new("ip").args([
                "addr",
                "add",
                &format!("10.231.{x}.254/24"),
                "dev",
                &br,
            ]))?;
            run(Command::new("ip").args(["link", "set", &br, "up"]))?;
            bridge = Some(br.clone());
            for id in 1..=opts.nodes {
                let ns = format!("{PREFIX}{pid}n{id}");
                let veth = format!("{PREFIX}{pid}v{id}");
                let ip = format!("10.231.{x}.{id}");
                with_cleanup(|c| {
                    c.namespaces.insert(ns.clone());
                    c.links.insert(veth.clone());
                });
                run(Command::new("ip").args(["netns", "add", &ns]))?;
                run(Command::new("ip").args([
                    "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
                ]))?;
                run(Command::new("ip").args(["link", "set", &veth, "master", &br]))?;
                run(Command::new("ip").args(["link", "set", &veth, "up"]))?;
                let exec =
                    |args: &[&str]| run(Command::new("ip").args(["netns", "exec", &ns]).args(args));
                exec(&["ip", "addr", "add", &format!("{ip}/24"), "dev", "eth0"])?;
                exec(&["ip", "link", "set", "eth0", "up"])?;
                exec(&["ip", "link", "set", "lo", "up"])?;
                // A clean slate for the rules the partitions add.
                exec(&["iptables", "-w", "-F"])?;
                nodes.push(NodeInfo {
                    id,
                    redis_addr: format!("{ip}:6379"),
                    raft_addr: format!("{ip}:7000"),
                    ip,
                    ns: Some(ns),
                    data_dir: opts.run_dir.join(format!("node{id}")),
                    log: opts.run_dir.join(format!("node{id}.log")),
                });
            }
        } else {
            for id in 1..=opts.nodes {
                nodes.push(NodeInfo {
                    id,
                    ip: "127.0.0.1".into(),
                    redis_addr: format!("127.0.0.1:{}", free_port()?),
                    raft_addr: format!("127.0.0.1:{}", free_port()?),
                    ns: None,
                    data_dir: opts.run_dir.join(format!("node{id}")),
                    log: opts.run_dir.join(format!("node{id}.log")),
                });
            }
        }
        // The nodes run a hard link (or copy) of the binary named `rdjnode`: the run keeps the
        // exact binary it tested, and a neighbour's `pkill redraft` / `killall redraft` on a
        // shared machine does not hit the nodes under test (seen once: every node exited with
        // status 0 after "shutting down", i.e. an outside SIGTERM).
        let mut opts = opts;
        let linked = opts.run_dir.join("rdjnode");
        let _ = fs::remove_file(&linked);
        if fs::hard_link(&opts.bin, &linked).is_err() {
            fs::copy(&opts.bin, &linked)
                .with_context(|| format!("copy {} into the run folder", opts.bin.display()))?;
        }
        opts.bin = linked;
        let config = opts.run_dir.join("cluster.toml");
        fs::write(
            &config,
            render_config(&format!("jepsen{pid}"), &opts, &nodes),
        )?;
        if opts.peer_tls {
            let certs = opts.run_dir.join("certs");
            run(Command::new(&opts.bin)
                .arg("cert")
                .arg("--config")
                .arg(&config)
                .arg("--out")
                .arg(&certs))
            .context("redraft cert")?;
        }
        let mut db = Db {
            opts,
            nodes,
            config,
            children: BTreeMap::new(),
            paused: BTreeSet::new(),
            bridge,
            cut: BTreeSet::new(),
            disks: BTreeMap::new(),
            clocks: None,
        };
        if let Some(c) = db.opts.clock.clone() {
            db.clocks = Some(Clocks::new(c)?);
        }
        if let Some(lossyfs) = db.opts.lossyfs.clone() {
            for n in db.nodes.clone() {
                db.mount_lossyfs(&lossyfs, &n)?;
            }
        }
        Ok(db)
    }

    /// Mounts a fresh lossyfs on node `n`'s data dir and waits until it answers.
    fn mount_lossyfs(&mut self, lossyfs: &Path, n: &NodeInfo) -> Result<()> {
        use std::os::unix::process::CommandExt as _;
        fs::create_dir_all(&n.data_dir)?;
        let socket = self.opts.run_dir.join(format!("node{}.lossyfs.sock", n.id));
        let log = self.opts.run_dir.join(format!("node{}.lossyfs.log", n.id));
        let log = OpenOptions::new().create(true).append(true).open(log)?;
        with_cleanup(|c| {
            c.mounts.insert(n.data_dir.clone());
        });
        let mut cmd = Command::new(lossyfs);
        cmd.arg("--mount")
            .arg(&n.data_dir)
            .arg("--control")
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        // If the harness dies (even by SIGKILL), lossyfs gets SIGTERM and unmounts.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("spawn {}", lossyfs.display()))?;
        with_cleanup(|c| {
            c.pids.insert(child.id());
        });
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while crate::lossyfs::control(&socket, "ping").is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                bail!(
                    "lossyfs for node {} exited ({status}); see node{}.lossyfs.log",
                    n.id,
                    n.id
                );
            }
            if std::time::Instant::now() > deadline {
                bail!("lossyfs for node {} did not answer within 10 s", n.id);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        self.disks.insert(
            n.id,
            LossyMount {
                child,
                socket,
                mount: n.data_dir.clone(),
            },
        );
        Ok(())
    }

    /// Whether the data dirs are lossyfs mounts.
    pub fn has_lossyfs(&self) -> bool {
        !self.disks.is_empty()
    }

    /// Power loss of node `id`: kill -9, then drop everything its disk had not made durable
    /// (`crash`; `crash-torn`: the last unsynced write of each file half kept;
    /// `crash-reordered`: each unsynced 512-byte block kept or not, at random). Returns
    /// lossyfs's account of what was dropped. The node stays down ([`Db::start`] restarts it).
    pub fn power_cut(&mut self, id: u64, mode: CrashMode) -> Result<serde_json::Value> {
        self.kill(id)?;
        let disk = self
            .disks
            .get(&id)
            .ok_or_else(|| anyhow!("node {id} has no lossyfs (power cuts need --lossyfs)"))?;
        let cmd = match mode {
            CrashMode::Clean => "crash".to_owned(),
            CrashMode::Torn => "crash-torn".to_owned(),
            CrashMode::Reordered { seed } => format!("crash-reordered {seed}"),
        };
        let answer = crate::lossyfs::control(&disk.socket, &cmd)?;
        Ok(answer["crash"].clone())
    }

    /// lossyfs counters of node `id` (writes, syncs, bytes dropped so far).
    pub fn disk_stats(&self, id: u64) -> Result<serde_json::Value> {
        let disk = self
            .disks
            .get(&id)
            .ok_or_else(|| anyhow!("node {id} has no lossyfs"))?;
        Ok(crate::lossyfs::control(&disk.socket, "stats")?["stats"].clone())
    }

    /// Unmounts every lossyfs (after the nodes are down).
    fn unmount_disks(&mut self) {
        for (_, mut d) in std::mem::take(&mut self.disks) {
            let _ = crate::lossyfs::control(&d.socket, "unmount");
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            loop {
                match d.child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if std::time::Instant::now() < deadline => {
                        std::thread::sleep(std::time::Duration::from_millis(20))
                    }
                    _ => {
                        let _ = d.child.kill();
                        let _ = d.child.wait();
                        break;
                    }
                }
            }
            with_cleanup(|c| {
                c.pids.remove(&d.child.id());
            });
            if let Ok(c) = std::ffi::CString::new(d.mount.as_os_str().as_encoded_bytes()) {
                // Already unmounted unless lossyfs had to be killed.
                unsafe {
                    libc::umount2(c.as_ptr(), libc::MNT_DETACH);
                }
            }
            with_cleanup(|c| {
                c.mounts.remove(&d.mount);
            });
        }
    }

    /// (id, redis address) of every node.
    pub fn client_addrs(&self) -> Vec<(u64, String)> {
        self.nodes
            .iter()
            .map(|n| (n.id, n.redis_addr.clone()))
            .collect()
    }

    pub fn has_netns(&self) -> bool {
        self.bridge.is_some()
    }

    fn node(&self, id: u64) -> Result<&NodeInfo> {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .ok_or_else(|| anyhow!("no node {id}"))
    }

    /// Starts node `id` (if not running).
    pub fn start(&mut self, id: u64) -> Result<()> {
        if self.children.contains_key(&id) {
            return Ok(());
        }
        let n = self.node(id)?.clone();
        let mut log = OpenOptions::new().create(true).append(true).open(&n.log)?;
        let (clock_note, clock_env) = match self.clocks.as_mut() {
            Some(c) => {
                let rate = c.next_rate(id);
                (format!(", clocks at x{rate:.3}"), c.env(rate))
            }
            None => (String::new(), Vec::new()),
        };
        writeln!(
            log,
            "===== redraft-jepsen: starting node {id}{clock_note} ====="
        )?;
        let mut cmd = match &n.ns {
            Some(ns) => {
                // `ip netns exec` execs the binary: the child's pid is redraft's.
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(&self.opts.bin);
                c
            }
            None => Command::new(&self.opts.bin),
        };
        // `REDRAFT_JEPSEN_LOG` (e.g. "info,openraft=debug") raises the nodes' log level when a
        // run is being diagnosed; the default keeps logs small.
        let filter = std::env::var("REDRAFT_JEPSEN_LOG").unwrap_or_else(|_| "info".into());
        cmd.arg("--config")
            .arg(&self.config)
            .args(["--node", &id.to_string(), "--log", &filter])
            .env("NO_COLOR", "1")
            .envs(self.opts.env.iter().map(|(k, v)| (k, v)))
            .envs(clock_env)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        let child = cmd
            .spawn()
            .with_context(|| format!("spawn {} for node {id}", self.opts.bin.display()))?;
        with_cleanup(|c| {
            c.pids.insert(child.id());
        });
        self.children.insert(id, child);
        self.paused.remove(&id);
        Ok(())
    }

    pub fn start_all(&mut self) -> Result<()> {
        for id in 1..=self.opts.nodes {
            self.start(id)?;
        }
        Ok(())
    }

    /// Sends `sig` to node `id`'s process.
    fn signal(&self, id: u64, sig: i32) -> Result<()> {
        let child = self
            .children
            .get(&id)
            .ok_or_else(|| anyhow!("node {id} is not running"))?;
        if unsafe { libc::kill(child.id() as i32, sig) } != 0 {
            bail!(
                "kill({}, {sig}) for node {id}: {}",
                child.id(),
                std::io::Error::last_os_error()
            );
        }
        Ok(())
    }

    /// kill -9 node `id` and reaps it. Killing a node that is down is a no-op.
    pub fn kill(&mut self, id: u64) -> Result<()> {
        let Some(mut child) = self.children.remove(&id) else {
            return Ok(());
        };
        let _ = child.kill();
        child.wait()?;
        with_cleanup(|c| {
            c.pids.remove(&child.id());
        });
        self.paused.remove(&id);
        Ok(())
    }

    /// SIGSTOP.
    pub fn pause(&mut self, id: u64) -> Result<()> {
        self.signal(id, libc::SIGSTOP)?;
        self.paused.insert(id);
        Ok(())
    }

    /// SIGCONT.
    pub fn resume(&mut self, id: u64) -> Result<()> {
        if self.paused.remove(&id) {
            self.signal(id, libc::SIGCONT)?;
        }
        Ok(())
    }

    /// `(node, clock rate)` of every start so far, when clocks are faulted.
    pub fn clock_starts(&self) -> &[(u64, f64)] {
        self.clocks.as_ref().map_or(&[], |c| &c.starts)
    }

    pub fn running(&self) -> Vec<u64> {
        self.children.keys().copied().collect()
    }

    /// Nodes that exited without being killed (their process is reaped and forgotten).
    pub fn poll_crashes(&mut self) -> Vec<Crash> {
        let mut out = Vec::new();
        let ids: Vec<u64> = self.children.keys().copied().collect();
        for id in ids {
            let exited: Option<ExitStatus> = self
                .children
                .get_mut(&id)
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                // Already reaped by try_wait; wait() returns the cached status.
                let mut child = self.children.remove(&id).expect("present");
                let _ = child.wait();
                with_cleanup(|c| {
                    c.pids.remove(&child.id());
                });
                self.paused.remove(&id);
                out.push(Crash {
                    id,
                    status: status.to_string(),
                });
            }
        }
        out
    }

    /// Cuts every pair in `pairs` both ways with `iptables DROP` in the nodes' namespaces.
    pub fn partition(&mut self, pairs: &[(u64, u64)]) -> Result<()> {
        if self.bridge.is_none() {
            bail!("partitions need network namespaces (run as root)");
        }
        for &(a, b) in pairs {
            for (me, other) in [(a, b), (b, a)] {
                let ns = self.node(me)?.ns.clone().expect("netns");
                let ip = self.node(other)?.ip.clone();
                let ipt = |args: &[&str]| {
                    run(Command::new("ip")
                        .args(["netns", "exec", &ns, "iptables", "-w"])
                        .args(args))
                };
                ipt(&["-A", "INPUT", "-s", &ip, "-j", "DROP"])?;
                ipt(&["-A", "OUTPUT", "-d", &ip, "-j", "DROP"])?;
            }
            self.cut.insert((a.min(b), a.max(b)));
        }
        Ok(())
    }

    /// Removes every partition rule.
    pub fn heal_network(&mut self) -> Result<()> {
        if self.cut.is_empty() {
            return Ok(());
        }
        for n in &self.nodes {
            if let Some(ns) = &n.ns {
                run(Command::new("ip").args(["netns", "exec", ns, "iptables", "-w", "-F"]))?;
            }
        }
        self.cut.clear();
        Ok(())
    }

    /// The pairs currently cut.
    pub fn cut_pairs(&self) -> Vec<(u64, u64)> {
        self.cut.iter().copied().collect()
    }

    /// The iptables rules inside node `id`'s namespace (for tests and debugging).
    pub fn rules(&self, id: u64) -> Result<String> {
        let ns = self
            .node(id)?
            .ns
            .clone()
            .ok_or_else(|| anyhow!("no netns"))?;
        run(Command::new("ip").args(["netns", "exec", &ns, "iptables", "-w", "-S"]))
    }

    /// Stops everything and removes the network.
    pub fn teardown(&mut self) {
        for id in self.running() {
            let _ = self.resume(id);
            let _ = self.kill(id);
        }
        self.unmount_disks();
        cleanup_now();
    }

    /// Path of the generated config.
    pub fn config_path(&self) -> &Path {
        &self.config
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        self.teardown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pid_reads_only_harness_names() {
        assert_eq!(owner_pid("rdjp1234n1"), Some(1234));
        assert_eq!(owner_pid("rdjp99b"), Some(99));
        assert_eq!(owner_pid("rdjp1234"), None);
        assert_eq!(owner_pid("rdjpn1"), None);
        assert_eq!(owner_pid("eth0"), None);
        assert_eq!(owner_pid("docker0"), None);
    }

    /// SweepOnlyTheDead: a live process of any binary owns its names (this test binary is one:
    /// the jepsen tests run the harness in-process); a reaped or zombie process does not.
    #[test]
    fn only_a_dead_owner_is_swept() {
        assert!(owner_alive(std::process::id()));
        assert!(!owner_alive(0));
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id();
        assert!(owner_alive(pid));
        child.kill().unwrap();
        // Killed but not yet reaped: a zombie, whose leftovers must be swept.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while owner_alive(pid) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(!owner_alive(pid), "a killed, unreaped child is a zombie");
        child.wait().unwrap();
        assert!(!owner_alive(pid));
    }

    #[test]
    fn peer_tls_gives_every_node_its_certificate_and_the_ca() {
        let opts = DbOpts {
            bin: "redraft".into(),
            nodes: 2,
            run_dir: "/tmp/x".into(),
            netns: false,
            heartbeat_ms: 50,
            election_timeout_ms: 500,
            write_timeout_ms: 5000,
            snapshot_every: 1000,
            read_mode: "lease".into(),
            peer_tls: true,
            clock: None,
            history_revisions: None,
            lossyfs: None,
            env: Vec::new(),
        };
        let nodes: Vec<NodeInfo> = (1..=2)
            .map(|id| NodeInfo {
                id,
                ip: "127.0.0.1".into(),
                redis_addr: format!("127.0.0.1:{}", 6000 + id),
                raft_addr: format!("127.0.0.1:{}", 7000 + id),
                ns: None,
                data_dir: format!("/tmp/x/n{id}").into(),
                log: format!("/tmp/x/n{id}.log").into(),
            })
            .collect();
        let text = render_config("j2", &opts, &nodes);
        assert!(
            text.contains("tls_cert_file = \"/tmp/x/certs/node2.crt\""),
            "{text}"
        );
        assert!(
            text.contains("tls_key_file = \"/tmp/x/certs/node1.key\""),
            "{text}"
        );
        assert!(
            text.contains("[tls]\npeers = true\nca_cert_file = \"/tmp/x/certs/ca.crt\""),
            "{text}"
        );
    }

    #[test]
    fn config_names_every_node_and_the_read_mode() {
        let opts = DbOpts {
            bin: "redraft".into(),
            nodes: 3,
            run_dir: "/tmp/x".into(),
            netns: false,
            heartbeat_ms: 50,
            election_timeout_ms: 500,
            write_timeout_ms: 1000,
            snapshot_every: 500,
            read_mode: "stale".into(),
            peer_tls: false,
            clock: None,
            history_revisions: None,
            lossyfs: None,
            env: Vec::new(),
        };
        let nodes: Vec<NodeInfo> = (1..=3)
            .map(|id| NodeInfo {
                id,
                ip: format!("10.231.7.{id}"),
                redis_addr: format!("10.231.7.{id}:6379"),
                raft_addr: format!("10.231.7.{id}:7000"),
                ns: None,
                data_dir: format!("/tmp/x/node{id}").into(),
                log: format!("/tmp/x/node{id}.log").into(),
            })
            .collect();
        let text = render_config("j1", &opts, &nodes);
        assert_eq!(text.matches("[[node]]").count(), 3);
        assert!(text.contains("redis_addr = \"10.231.7.2:6379\""), "{text}");
        assert!(text.contains("read_mode = \"stale\""), "{text}");
        assert!(text.contains("election_timeout_ms = 500"), "{text}");
    }

    /// A real namespace round trip when run as root with the tools installed: set up two
    /// "nodes" without starting redraft, cut them, check the rules, heal, tear down, and see
    /// that nothing with our pid is left. Without root it checks that it is refused.
    #[test]
    fn namespaces_partition_heal_and_clean_up() {
        if let Err(why) = netns_available() {
            eprintln!("netns unavailable ({why}); checking the refusal path only");
            return;
        }
        let dir = std::env::temp_dir().join(format!("jepsen-db-test-{}", std::process::id()));
        let opts = DbOpts {
            bin: "/bin/true".into(),
            nodes: 3,
            run_dir: dir.clone(),
            netns: true,
            heartbeat_ms: 50,
            election_timeout_ms: 500,
            write_timeout_ms: 1000,
            snapshot_every: 500,
            read_mode: "linearizable".into(),
            peer_tls: false,
            clock: None,
            history_revisions: None,
            lossyfs: None,
            env: Vec::new(),
        };
        let mut db = Db::setup(opts).expect("setup");
        db.partition(&[(1, 2)]).expect("partition");
        let rules = db.rules(1).unwrap();
        assert!(
            rules.contains(&format!("-A INPUT -s {}/32 -j DROP", db.nodes[1].ip)),
            "{rules}"
        );
        assert!(db.rules(3).unwrap().lines().all(|l| !l.contains("DROP")));
        db.heal_network().unwrap();
        assert!(!db.rules(1).unwrap().contains("DROP"));
        let pid = std::process::id().to_string();
        drop(db);
        let left = run(Command::new("ip").args(["netns", "list"])).unwrap();
        assert!(!left.contains(&format!("{PREFIX}{pid}n")), "left: {left}");
        let links = run(Command::new("ip").args(["-o", "link", "show"])).unwrap();
        assert!(!links.contains(&format!("{PREFIX}{pid}")), "left: {links}");
        let _ = fs::remove_dir_all(dir);
    }
}
