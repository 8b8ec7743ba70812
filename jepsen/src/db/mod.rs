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

mod cleanup;
mod disks;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

use anyhow::{anyhow, bail, Context, Result};

pub use crate::clock::ClockOpts;
use crate::clock::Clocks;
pub use crate::lossyfs::model::CrashMode;

pub use cleanup::{
    cleanup_now, netns_available, owner_pid, sweep_leftovers, CleanupState, CLEANUP, PREFIX,
};
use cleanup::{run, with_cleanup};
use disks::LossyMount;

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
