//! `redraft-jepsen`: one run of the harness. Sets up the cluster, runs the workloads and the
//! nemesis, heals, restarts, reads back, checks, writes the run's folder and prints the
//! verdicts; the last line is `linearizable: true|false|unknown` (SEMANTICS.md §4, §6, §7).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context, Result};
use clap::Parser;
use jepsen::cache;
use jepsen::checker::{self, Verdict};
use jepsen::client::Client;
use jepsen::db::{self, Db, DbOpts};
use jepsen::history::{self, Call, Recorder};
use jepsen::nemesis::{self, Family, Log, Schedule};
use jepsen::report;
use jepsen::watch;
use jepsen::workload::{self, Counters, Generator, Unexpected, WorkloadCfg};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
enum WorkloadName {
    Register,
    Set,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
enum Toggle {
    Auto,
    On,
    Off,
}

/// Jepsen-style fault injection against a real redraft cluster.
#[derive(Debug, Parser, Serialize)]
#[command(name = "redraft-jepsen", version)]
struct Cli {
    /// The redraft binary under test (a release build).
    #[arg(long, default_value = "target/release/redraft")]
    bin: PathBuf,
    /// Seconds of workload (faults included); the heal, restart and checks come after.
    #[arg(long, default_value_t = 60)]
    time_limit: u64,
    #[arg(long, default_value_t = 3)]
    nodes: u64,
    /// Concurrent clients, each on its own connection to a random node.
    #[arg(long, default_value_t = 10)]
    clients: u64,
    /// Target operations per second, all clients together.
    #[arg(long, default_value_t = 200.0)]
    rate: f64,
    /// Workloads, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "register,set")]
    workload: Vec<WorkloadName>,
    /// Register keys (a small set keeps keys contended).
    #[arg(long, default_value_t = 5)]
    keys: usize,
    /// GETMETA + CAS operations: `auto` uses them when the server knows them.
    #[arg(long, value_enum, default_value = "auto")]
    cas: Toggle,
    /// Nemesis families, comma-separated; `none` for a fault-free run.
    #[arg(long, value_delimiter = ',', default_value = "kill,pause,partition")]
    nemesis: Vec<String>,
    /// Mean quiet seconds before each fault.
    #[arg(long, default_value_t = 5.0)]
    nemesis_interval: f64,
    /// Mean seconds each fault lasts.
    #[arg(long, default_value_t = 6.0)]
    fault_duration: f64,
    /// The nodes' `[server] read_mode`: linearizable, lease or stale (stale must fail the check).
    #[arg(long, default_value = "linearizable")]
    read_mode: String,
    /// Per-connection read modes: client i sends `READMODE` of the (i mod N)-th mode of the
    /// list on every connection (e.g. `linearizable,lease`: both kinds of reads at once under
    /// the same faults); the cache readers and watchers keep the nodes' `--read-mode`.
    #[arg(long, value_delimiter = ',')]
    client_read_modes: Vec<String>,
    /// Peer traffic over mutual TLS (`[tls] peers`; certificates from `redraft cert`).
    /// Clients still speak plain RESP.
    #[arg(long)]
    peer_tls: bool,
    /// Each client stays on one node (client i on node i mod nodes), reconnecting there after
    /// a failure, instead of moving to a random node: clients of a node a partition cut off
    /// keep reading from it (the stale-read control of CI).
    #[arg(long)]
    pinned_clients: bool,
    /// Client timeout per operation, ms (a timeout is an indeterminate outcome).
    #[arg(long, default_value_t = 1000)]
    op_timeout_ms: u64,
    /// The nodes' `[server] write_timeout_ms`.
    #[arg(long, default_value_t = 2000)]
    write_timeout_ms: u64,
    #[arg(long, default_value_t = 50)]
    heartbeat_ms: u64,
    #[arg(long, default_value_t = 500)]
    election_timeout_ms: u64,
    /// `[raft] snapshot_every` (small, so snapshots and log purges happen during runs).
    #[arg(long, default_value_t = 2000)]
    snapshot_every: u64,
    /// Filler keys (200-byte values) written before the workload starts, so snapshots are
    /// large; 0 with no `snapshot` nemesis, else 0 means 50,000.
    #[arg(long, default_value_t = 0)]
    preload_keys: u64,
    /// Run on 127.0.0.1 without network namespaces (no partitions), even as root.
    #[arg(long)]
    no_netns: bool,
    /// Skip the kill -9 and restart of every node before the final reads.
    #[arg(long)]
    no_final_restart: bool,
    /// Put every node's data dir on its own lossyfs mount (a disk that loses what was not
    /// fsynced at a power cut); implied by `--nemesis power-loss`. The final restart is then a
    /// power cut of every node. Needs root and /dev/fuse.
    #[arg(long)]
    lossyfs: bool,
    /// The lossyfs binary (default: `lossyfs` next to this harness).
    #[arg(long)]
    lossyfs_bin: Option<PathBuf>,
    /// `REDRAFT_FAILPOINTS` for the nodes (test-only faults built into redraft, e.g.
    /// `log_sync_off`: the power-loss control must then fail).
    #[arg(long)]
    failpoints: Option<String>,
    /// Each node's clock rate for the whole run, comma-separated (node 1 first; nodes past the
    /// end run at 1): its monotonic and wall clocks advance that many seconds per real second
    /// (libfaketime; `src/clock.rs`). E.g. `0.1` slows node 1's lease tenfold, beyond the
    /// clock assumption of lease reads.
    #[arg(long, value_delimiter = ',')]
    clock_rates: Vec<f64>,
    /// Every start of every node draws its clock rate in `[1/(1+D), 1+D]` (uniform in its
    /// logarithm) from the seed: two nodes differ by a factor of at most `(1+D)²`. 0: true
    /// clocks. Ignored with --clock-rates.
    #[arg(long, default_value_t = 0.0)]
    clock_drift: f64,
    /// The libfaketime library for clock faults.
    #[arg(long, default_value = jepsen::clock::DEFAULT_LIB)]
    faketime_lib: PathBuf,
    /// `[store] history_revisions` of the nodes: history kept to the last N revisions, so
    /// compaction runs during the run and lagging watchers resume below it (`-COMPACTED`).
    #[arg(long)]
    history_revisions: Option<u64>,
    /// Watchers (besides `--watchers`) that stop reading for 1-4 s now and then during the
    /// workload; default 1 with --history-revisions, else 0.
    #[arg(long)]
    lagging_watchers: Option<usize>,
    /// Watchers following every change with `XREAD … STREAMS __watch__:` (0: none; off when
    /// the server has no watch stream).
    #[arg(long, default_value_t = 3)]
    watchers: usize,
    /// Readers of the register keys with a client-side cache (RESP3, `CLIENT TRACKING ON`,
    /// `src/cache.rs`), besides `--clients` (0: none; off without the register workload or
    /// when the server has no `CLIENT TRACKING`).
    #[arg(long, default_value_t = 2)]
    cache_readers: usize,
    /// Reads per second of each cache reader (most are answered from its cache).
    #[arg(long, default_value_t = 50.0)]
    cache_rate: f64,
    /// Seconds the caches have after the heal to agree with the cluster.
    #[arg(long, default_value_t = 15)]
    cache_converge_timeout: u64,
    /// Seed for the schedule and every client's choices (random if absent; always recorded).
    #[arg(long)]
    seed: Option<u64>,
    /// Where the run's folder goes.
    #[arg(long, default_value = "jepsen/store")]
    out: PathBuf,
    /// Search steps per key before the linearizability check answers `unknown`.
    #[arg(long, default_value_t = 10_000_000)]
    check_budget: u64,
    #[arg(long, default_value_t = 30)]
    startup_timeout: u64,
    /// Seconds the cluster has to answer again after the final heal.
    #[arg(long, default_value_t = 30)]
    recovery_timeout: u64,
    /// Only the plain power-cut check: one node on lossyfs, N acknowledged SETs, a power cut,
    /// a restart, every key read back (`src/powercut.rs`); exit 0 only if all N are there.
    #[arg(long, value_name = "N")]
    power_cut_sets: Option<u64>,
    /// With --power-cut-sets: a torn crash (the last unsynced write of each file half kept).
    #[arg(long)]
    torn: bool,
    /// Only check a saved history.jsonl (register linearizability) and exit.
    #[arg(long, value_name = "HISTORY")]
    check: Option<PathBuf>,
}

#[derive(Serialize)]
struct Summary<'a> {
    seed: u64,
    command: Vec<String>,
    started: String,
    options: &'a Cli,
    netns: bool,
    nemeses: Vec<Family>,
    cas: bool,
    duration_s: f64,
    ops: usize,
    counts: std::collections::BTreeMap<String, std::collections::BTreeMap<String, usize>>,
    latency_ms_p50_p99_max: std::collections::BTreeMap<String, [f64; 3]>,
    unexpected_replies: u64,
    crashes: usize,
    windows: Vec<report::Window>,
    linearizable: Option<checker::linearizable::LinearizabilityReport>,
    set: Option<checker::set::SetReport>,
    durable: Option<checker::durability::DurabilityReport>,
    watch: Option<checker::watch::WatchReport>,
    cache: Option<checker::cache::CacheReport>,
    liveness: Option<String>,
    /// `(node, rate)` of every start of a node whose clocks were faulted (`--clock-*`).
    clock_starts: Vec<(u64, f64)>,
    verdict: Verdict,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        db::cleanup_now();
        default_hook(info);
    }));
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("harness failure: tokio runtime: {e}");
            return ExitCode::from(3);
        }
    };
    let result = rt.block_on(async move {
        tokio::spawn(async {
            use tokio::signal::unix::{signal, SignalKind};
            let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            eprintln!("interrupted: removing the cluster, namespaces and rules");
            db::cleanup_now();
            std::process::exit(130);
        });
        if let Some(path) = &cli.check {
            return check_only(path, cli.check_budget);
        }
        if let Some(n) = cli.power_cut_sets {
            return power_cut_only(&cli, n).await;
        }
        run(cli).await
    });
    db::cleanup_now();
    match result {
        Ok(Verdict::True) => ExitCode::SUCCESS,
        Ok(Verdict::False) => ExitCode::from(1),
        Ok(Verdict::Unknown) => ExitCode::from(2),
        Err(e) => {
            eprintln!("harness failure: {e:#}");
            ExitCode::from(3)
        }
    }
}

async fn power_cut_only(cli: &Cli, sets: u64) -> Result<Verdict> {
    if unsafe { libc::geteuid() } != 0 || !std::path::Path::new("/dev/fuse").exists() {
        bail!("the power-cut check (lossyfs) needs root and /dev/fuse");
    }
    let lossyfs = match &cli.lossyfs_bin {
        Some(b) => b.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("the harness's directory")?
            .join("lossyfs"),
    };
    let stamp: String = nemesis::rfc3339(SystemTime::now())
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(15)
        .collect();
    let run_dir = cli.out.join(format!("{stamp}-powercut"));
    std::fs::create_dir_all(&run_dir)?;
    let run_dir = run_dir.canonicalize()?;
    println!("output: {}", run_dir.display());
    if let Some(f) = &cli.failpoints {
        println!("node runs with REDRAFT_FAILPOINTS={f}");
    }
    let report = jepsen::powercut::run(&jepsen::powercut::PowerCutOpts {
        bin: cli
            .bin
            .canonicalize()
            .with_context(|| cli.bin.display().to_string())?,
        lossyfs,
        run_dir: run_dir.clone(),
        sets,
        torn: cli.torn,
        failpoints: cli.failpoints.clone(),
    })
    .await?;
    std::fs::write(
        run_dir.join("summary.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    println!("disk before the cut: {}", report.disk_before);
    println!("the cut dropped: {}", report.dropped);
    if !report.lost.is_empty() {
        println!("lost (first 20): {}", report.lost.join(", "));
    }
    println!(
        "power cut: kept {} of {} acknowledged SETs",
        report.kept, report.acknowledged
    );
    let verdict = if report.passed() {
        Verdict::True
    } else {
        Verdict::False
    };
    println!("durable: {}", verdict.as_str());
    Ok(verdict)
}

fn check_only(path: &std::path::Path, budget: u64) -> Result<Verdict> {
    let ops = history::read_jsonl(path)?;
    let lin = checker::linearizable::check(&ops, budget);
    print_lin(&lin, &ops);
    println!("linearizable: {}", lin.verdict.as_str());
    Ok(lin.verdict)
}

fn print_lin(lin: &checker::linearizable::LinearizabilityReport, ops: &[history::Op]) {
    for k in &lin.keys {
        println!(
            "  key {:<6} {:>6} ops {:>10} steps  {}",
            k.key,
            k.ops,
            k.steps,
            k.verdict.as_str()
        );
        if let Some(w) = &k.window {
            println!(
                "  smallest non-linearizable window of key {} ({} ops):",
                k.key,
                w.len()
            );
            let ids: BTreeSet<u64> = w.iter().copied().collect();
            let t0 = ops
                .iter()
                .filter(|o| ids.contains(&o.id))
                .map(|o| o.invoke_ns)
                .min()
                .unwrap_or(0);
            for o in ops.iter().filter(|o| ids.contains(&o.id)) {
                let what = match &o.call {
                    Call::Read { value } => format!("read  -> {value:?}"),
                    Call::Write { value, with } if with.is_empty() => format!("write {value}"),
                    Call::Write { value, with } => format!("write {value} (EXEC with {with:?})"),
                    Call::Cas {
                        expected,
                        value,
                        result,
                        watch: true,
                        ..
                    } => format!("watch {expected:?} -> {value}: {result:?}"),
                    Call::Cas {
                        expected,
                        expected_rev,
                        value,
                        result,
                        ..
                    } => format!("cas   {expected:?}@{expected_rev} -> {value}: {result:?}"),
                    Call::Add { element, with } if with.is_empty() => format!("add {element}"),
                    Call::Add { element, with } => format!("add {element} (MSET with {with:?})"),
                    Call::CachedRead { value, fill_id, .. } => {
                        format!("cached -> {value:?} (filled by id {fill_id})")
                    }
                };
                println!(
                    "    id {:>7} p{:<3} n{} [{:>9.3} .. {:>9.3}] ms  {:<4} {}{}",
                    o.id,
                    if o.process == workload::FINAL_PROCESS {
                        "fin".to_string()
                    } else {
                        o.process.to_string()
                    },
                    o.node,
                    (o.invoke_ns - t0) as f64 / 1e6,
                    (o.complete_ns - t0) as f64 / 1e6,
                    o.outcome.as_str(),
                    what,
                    o.error
                        .as_ref()
                        .map(|e| format!("  ({e})"))
                        .unwrap_or_default()
                );
            }
            // Context: where each value read in the window came from.
            let read: BTreeSet<&str> = ops
                .iter()
                .filter(|o| ids.contains(&o.id))
                .filter_map(|o| match &o.call {
                    Call::Read { value: Some(v) } => Some(v.as_str()),
                    _ => None,
                })
                .collect();
            for o in ops
                .iter()
                .filter(|o| o.key == k.key && !ids.contains(&o.id))
            {
                let v = match &o.call {
                    Call::Write { value, .. } | Call::Cas { value, .. } => value.as_str(),
                    _ => continue,
                };
                if read.contains(v) {
                    println!(
                        "    (value {v} was written by id {} p{} n{}: {} [{:.3} .. {:.3}] ms)",
                        o.id,
                        o.process,
                        o.node,
                        o.outcome.as_str(),
                        o.invoke_ns as f64 / 1e6 - t0 as f64 / 1e6,
                        o.complete_ns as f64 / 1e6 - t0 as f64 / 1e6,
                    );
                }
            }
        }
    }
}

/// Waits until a leader is known and every node answers a (linearizable) GET.
/// Writes `n` filler keys `fill:<i>` with 200-byte values, 1,000 per MSET, through the leader.
async fn preload_keys(addrs: &[(u64, String)], n: u64) -> Result<()> {
    let io = Duration::from_secs(30);
    let leader = nemesis::find_leader(addrs, Duration::from_millis(500))
        .await
        .context("preload: no leader")?;
    let addr = &addrs.iter().find(|(id, _)| *id == leader).unwrap().1;
    let mut c = jepsen::resp::Conn::connect(addr, io)
        .await
        .map_err(|e| anyhow::anyhow!("preload: connect {addr}: {e}"))?;
    let value = vec![b'v'; 200];
    let mut i = 0;
    while i < n {
        let keys: Vec<Vec<u8>> = (i..(i + 1000).min(n))
            .map(|k| format!("{}{k}", workload::PRELOAD_PREFIX).into_bytes())
            .collect();
        let mut args: Vec<&[u8]> = vec![b"MSET"];
        for k in &keys {
            args.push(k);
            args.push(&value);
        }
        let reply = c
            .call(&args, io)
            .await
            .map_err(|e| anyhow::anyhow!("preload: MSET: {e}"))?;
        match reply {
            jepsen::resp::Reply::Simple(_) => {}
            other => bail!("preload: MSET answered {other:?}"),
        }
        i += keys.len() as u64;
    }
    Ok(())
}

async fn wait_ready(addrs: &[(u64, String)], timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut rng = StdRng::seed_from_u64(0);
    while Instant::now() < deadline {
        let mut all = nemesis::find_leader(addrs, Duration::from_millis(500))
            .await
            .is_some();
        for a in addrs {
            if !all {
                break;
            }
            let mut c = Client::new(vec![a.clone()], Duration::from_secs(2));
            all &= c.get(&mut rng, "__jepsen_probe__").await.result.is_ok();
        }
        if all {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

/// One run in phases: set up the cluster, run the workload under the nemesis, heal and read
/// back, check the history, write and print the report. The last line printed is the verdict.
async fn run(cli: Cli) -> Result<Verdict> {
    let setup = setup(&cli).await?;
    let (workload, watchers, cache_readers) = workload_and_nemesis(&cli, &setup).await?;
    let after = heal_and_read_back(&cli, &setup, &workload, watchers, cache_readers).await?;
    let checks = check(&cli, &setup, &workload, &after);
    report(&cli, &setup, &workload, &after, &checks)?;
    Ok(checks.verdict)
}

/// What the set-up phase decided and started: the run's identity and folder, the nemeses, the
/// running cluster and the workload's configuration (after probing what this redraft knows).
struct Setup {
    seed: u64,
    started: String,
    run_dir: PathBuf,
    families: Vec<Family>,
    netns: bool,
    db: Arc<Mutex<Db>>,
    addrs: Vec<(u64, String)>,
    register: bool,
    set: bool,
    wcfg: WorkloadCfg,
    watchers_n: usize,
    cache_readers_n: usize,
}

/// Phase 1: the run folder, the nemeses, the cluster (started and answering), the preload and
/// the probes for CAS, WATCH and the watch stream.
async fn setup(cli: &Cli) -> Result<Setup> {
    let seed = cli.seed.unwrap_or_else(|| rand::thread_rng().gen());
    let started = nemesis::rfc3339(SystemTime::now());
    let stamp: String = started
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(15)
        .collect();
    let run_dir = cli.out.join(format!("{stamp}-seed{seed}"));
    std::fs::create_dir_all(&run_dir).with_context(|| format!("create {}", run_dir.display()))?;
    let run_dir = run_dir.canonicalize()?;
    println!("seed: {seed}");
    println!("output: {}", run_dir.display());
    if !cli.bin.exists() {
        bail!(
            "{} not found: build it with `cargo build --release --bin redraft`",
            cli.bin.display()
        );
    }
    let bin = cli.bin.canonicalize()?;

    let mut families = Vec::new();
    for n in &cli.nemesis {
        match n.as_str() {
            "none" | "" => {}
            "kill" => families.push(Family::Kill),
            "pause" => families.push(Family::Pause),
            "partition" => families.push(Family::Partition),
            "transfer" => families.push(Family::Transfer),
            "membership" => families.push(Family::Membership),
            "power-loss" => families.push(Family::PowerLoss),
            "snapshot" => families.push(Family::Snapshot),
            other => bail!(
                "unknown nemesis `{other}` (kill, pause, partition, transfer, membership, \
                 power-loss, snapshot, none)"
            ),
        }
    }
    let netns = if cli.no_netns {
        false
    } else {
        match db::netns_available() {
            Ok(()) => true,
            Err(why) => {
                println!(
                    "network namespaces unavailable ({why}): running on 127.0.0.1 with the kill \
                     and pause nemeses only"
                );
                false
            }
        }
    };
    if !netns && families.contains(&Family::Partition) {
        families.retain(|f| *f != Family::Partition);
        println!("nemesis partition dropped: partitions need network namespaces");
    }
    if netns {
        let removed = db::sweep_leftovers();
        if !removed.is_empty() {
            println!("removed leftovers of earlier runs: {}", removed.join(" "));
        }
    }

    let lossyfs = if cli.lossyfs || families.contains(&Family::PowerLoss) {
        if unsafe { libc::geteuid() } != 0 || !std::path::Path::new("/dev/fuse").exists() {
            bail!("power loss (lossyfs) needs root and /dev/fuse");
        }
        let bin = match &cli.lossyfs_bin {
            Some(b) => b.clone(),
            None => std::env::current_exe()?
                .parent()
                .context("the harness's directory")?
                .join("lossyfs"),
        };
        if !bin.exists() {
            bail!(
                "{} not found: build it with `cargo build -p jepsen` (or pass --lossyfs-bin)",
                bin.display()
            );
        }
        println!(
            "data dirs on lossyfs ({}): power cuts drop unsynced data",
            bin.display()
        );
        Some(bin)
    } else {
        None
    };
    let mut env = Vec::new();
    if let Some(f) = &cli.failpoints {
        println!("nodes run with REDRAFT_FAILPOINTS={f}");
        env.push(("REDRAFT_FAILPOINTS".to_string(), f.clone()));
    }
    let clock = (!cli.clock_rates.is_empty() || cli.clock_drift > 0.0).then(|| db::ClockOpts {
        lib: cli.faketime_lib.clone(),
        rates: cli.clock_rates.clone(),
        drift: cli.clock_drift,
        seed,
    });
    let db = Db::setup(DbOpts {
        lossyfs,
        env,
        bin,
        nodes: cli.nodes,
        run_dir: run_dir.clone(),
        netns,
        heartbeat_ms: cli.heartbeat_ms,
        election_timeout_ms: cli.election_timeout_ms,
        write_timeout_ms: cli.write_timeout_ms,
        snapshot_every: cli.snapshot_every,
        read_mode: cli.read_mode.clone(),
        peer_tls: cli.peer_tls,
        clock,
        history_revisions: cli.history_revisions,
    })
    .context("set up the cluster")?;
    let addrs = db.client_addrs();
    let db = Arc::new(Mutex::new(db));
    db.lock().unwrap().start_all().context("start the nodes")?;
    if !wait_ready(&addrs, Duration::from_secs(cli.startup_timeout)).await {
        bail!(
            "the cluster did not elect a leader and answer reads within {} s (node logs in {})",
            cli.startup_timeout,
            run_dir.display()
        );
    }
    // ClockFaultShown: a node that ignored LD_PRELOAD would make the run test nothing.
    let starts = db.lock().unwrap().clock_starts().to_vec();
    if !starts.is_empty() {
        let lines = jepsen::clock::check_rates(&addrs, &starts).await?;
        println!("clocks: {}", lines.join(", "));
    }
    println!(
        "cluster up: {} nodes {} ({}), read_mode {}{}",
        cli.nodes,
        if netns {
            "in network namespaces"
        } else {
            "on 127.0.0.1"
        },
        addrs
            .iter()
            .map(|(_, a)| a.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        cli.read_mode,
        if cli.peer_tls {
            ", peers over mutual TLS"
        } else {
            ""
        }
    );

    let preload = match cli.preload_keys {
        0 if families.contains(&Family::Snapshot) => 50_000,
        n => n,
    };
    if preload > 0 {
        preload_keys(&addrs, preload).await?;
        println!("preloaded {preload} filler keys");
    }

    let register = cli.workload.contains(&WorkloadName::Register);
    let set = cli.workload.contains(&WorkloadName::Set);
    let cas = match cli.cas {
        Toggle::Off => false,
        toggle => {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut c = Client::new(addrs.clone(), Duration::from_secs(2));
            let getmeta = c
                .supports(&mut rng, &[b"GETMETA", b"__jepsen_probe__"])
                .await;
            let casx = c.supports(&mut rng, &[b"CAS"]).await;
            let have = matches!((getmeta, casx), (Ok(true), Ok(true)));
            if !have && toggle == Toggle::On {
                bail!("--cas on, but this redraft does not know GETMETA and CAS");
            }
            if !have {
                println!("cas: off (this redraft does not know GETMETA/CAS)");
            }
            have
        }
    };
    let watch = if cas {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut c = Client::new(addrs.clone(), Duration::from_secs(2));
        let have = matches!(c.supports(&mut rng, &[b"UNWATCH"]).await, Ok(true));
        if !have {
            println!("watch-cas: off (this redraft does not know WATCH/MULTI/EXEC)");
        }
        have
    } else {
        false
    };
    let script = if cas {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut c = Client::new(addrs.clone(), Duration::from_secs(2));
        let probe: [&[u8]; 3] = [b"EVAL", b"return 1", b"0"];
        let have = matches!(c.supports(&mut rng, &probe).await, Ok(true));
        if !have {
            println!("script-cas: off (this redraft does not know EVAL)");
        }
        have
    } else {
        false
    };
    let wcfg = WorkloadCfg {
        register,
        set,
        keys: cli.keys,
        cas: cas && register,
        watch: watch && register,
        script: script && register,
        preloaded: preload,
    };

    let watchers_n = if cli.watchers == 0 {
        0
    } else {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut c = Client::new(addrs.clone(), Duration::from_secs(2));
        let probe: [&[u8]; 6] = [b"XREAD", b"COUNT", b"1", b"STREAMS", b"__watch__:", b"$"];
        if matches!(c.supports(&mut rng, &probe).await, Ok(true)) {
            cli.watchers
        } else {
            println!("watch: off (this redraft has no __watch__ stream)");
            0
        }
    };

    let cache_readers_n = if cli.cache_readers == 0 || !register {
        0
    } else {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut c = Client::new(addrs.clone(), Duration::from_secs(2));
        let probe: [&[u8]; 3] = [b"CLIENT", b"TRACKING", b"OFF"];
        if matches!(c.supports(&mut rng, &probe).await, Ok(true)) {
            cli.cache_readers
        } else {
            println!("cache: off (this redraft has no CLIENT TRACKING)");
            0
        }
    };

    Ok(Setup {
        seed,
        started,
        run_dir,
        families,
        netns,
        db,
        addrs,
        register,
        set,
        wcfg,
        watchers_n,
        cache_readers_n,
    })
}

/// What the workload phase left (besides the watchers, still running): the history and the
/// nemesis log.
struct Workload {
    rec: Recorder,
    log: Log,
    unexpected: Unexpected,
    workload_end_s: f64,
}

/// Phase 2: the clients and the nemesis, on one run clock, until the time limit.
async fn workload_and_nemesis(
    cli: &Cli,
    setup: &Setup,
) -> Result<(Workload, watch::Watchers, Option<cache::CacheReaders>)> {
    let Setup {
        seed,
        ref families,
        ref db,
        ref addrs,
        ref wcfg,
        watchers_n,
        cache_readers_n,
        ..
    } = *setup;
    // The run clock starts with the workload.
    let rec = Recorder::new(Instant::now());
    let lagging = if watchers_n == 0 {
        0
    } else {
        cli.lagging_watchers
            .unwrap_or(usize::from(cli.history_revisions.is_some()))
    };
    let watchers = watch::Watchers::start(watchers_n + lagging, lagging, addrs.clone(), seed);
    let until = cli.time_limit * 1_000_000_000;
    let cache_readers = (cache_readers_n > 0).then(|| {
        cache::CacheReaders::start(
            cache_readers_n,
            addrs.clone(),
            wcfg.key_names(),
            Duration::from_millis(cli.op_timeout_ms),
            cli.cache_rate,
            seed,
            rec.clone(),
            until,
        )
    });
    let log = Log::default();
    log.push(
        &rec,
        "note",
        "",
        vec![],
        format!("workload start: seed {seed}, nemeses {families:?}"),
    );
    let schedule = Schedule {
        families: families.clone(),
        interval: Duration::from_secs_f64(cli.nemesis_interval),
        duration: Duration::from_secs_f64(cli.fault_duration),
    };
    let nem = tokio::spawn(nemesis::run(
        db.clone(),
        rec.clone(),
        log.clone(),
        schedule,
        StdRng::seed_from_u64(seed ^ 0x6e656d),
        until,
    ));
    let counters = Counters::default();
    let unexpected = Unexpected::default();
    let per_client = cli.rate / cli.clients.max(1) as f64;
    let mut clients = Vec::new();
    for p in 0..cli.clients {
        clients.push(tokio::spawn(workload::client_loop(
            p,
            addrs.clone(),
            cli.pinned_clients,
            Duration::from_millis(cli.op_timeout_ms),
            Generator::new(wcfg.clone(), counters.clone()),
            seed,
            per_client,
            rec.clone(),
            until,
            unexpected.clone(),
            (!cli.client_read_modes.is_empty())
                .then(|| cli.client_read_modes[p as usize % cli.client_read_modes.len()].clone()),
        )));
    }
    for c in clients {
        c.await.context("client task")?;
    }
    nem.await.context("nemesis task")??;
    let workload_end_s = rec.now() as f64 / 1e9;

    let workload = Workload {
        rec,
        log,
        unexpected,
        workload_end_s,
    };
    Ok((workload, watchers, cache_readers))
}

/// What the heal phase read back: the final reads (`None` if the cluster did not answer), the
/// watchers' logs and the final revision, and the nodes that crashed on their own.
struct AfterHeal {
    finals: Option<workload::Finals>,
    liveness: Option<String>,
    watch_logs: Option<(Vec<watch::WatcherLog>, Option<u64>)>,
    /// The cache readers' convergence after the heal (`None`: no readers, or the cluster
    /// never answered).
    cache: Option<cache::Convergence>,
    crashes: usize,
}

/// Phase 3: heal everything, kill -9 (or power-cut) and restart every node, read back, drain
/// the watchers, tear the cluster down.
async fn heal_and_read_back(
    cli: &Cli,
    setup: &Setup,
    workload: &Workload,
    watchers: watch::Watchers,
    cache_readers: Option<cache::CacheReaders>,
) -> Result<AfterHeal> {
    let Setup {
        seed,
        ref db,
        ref addrs,
        ref wcfg,
        watchers_n,
        ..
    } = *setup;
    let Workload {
        ref rec, ref log, ..
    } = *workload;
    // Heal everything, then kill -9 and restart every node, then read back.
    let restarted = nemesis::heal_all(db)?;
    log.push(rec, "note", "", restarted, "final heal".into());
    // The caches must come to agree with the healed cluster before the final restart ends
    // every reader's connection (and so its cache).
    let cache = match cache_readers {
        Some(readers) if wait_ready(addrs, Duration::from_secs(cli.recovery_timeout)).await => {
            let keys = wcfg.key_names();
            let c = readers
                .converge(
                    addrs.clone(),
                    &keys,
                    rec,
                    Duration::from_secs(cli.cache_converge_timeout),
                    seed,
                )
                .await;
            match c.seconds {
                Some(s) => {
                    println!("cache readers agreed with the cluster {s:.1} s after the heal")
                }
                None => println!(
                    "cache readers still disagreed with the cluster after {} s",
                    cli.cache_converge_timeout
                ),
            }
            Some(c)
        }
        _ => None,
    };
    if !cli.no_final_restart {
        let what = {
            let mut d = db.lock().unwrap();
            let mut dropped = Vec::new();
            for id in 1..=cli.nodes {
                if d.has_lossyfs() {
                    dropped.push(format!(
                        "node {id}: {}",
                        d.power_cut(id, db::CrashMode::Clean)?
                    ));
                } else {
                    d.kill(id)?;
                }
            }
            d.start_all()?;
            if d.has_lossyfs() {
                format!(
                    "final power cut (kill -9, unsynced data dropped) and restart of every \
                     node; dropped: {}",
                    dropped.join("; ")
                )
            } else {
                "final kill -9 and restart of every node".to_string()
            }
        };
        println!("{what}");
        log.push(rec, "note", "", (1..=cli.nodes).collect(), what);
    }
    let recovery = Duration::from_secs(cli.recovery_timeout);
    let t_heal = Instant::now();
    let ready = wait_ready(addrs, recovery).await;
    let mut liveness = None;
    let finals = if ready {
        println!(
            "cluster answered {:.1} s after the final heal",
            t_heal.elapsed().as_secs_f64()
        );
        let ops = rec.snapshot();
        let elements: BTreeSet<u64> = ops
            .iter()
            .filter_map(|o| match o.call {
                Call::Add { element, .. } => Some(element),
                _ => None,
            })
            .collect();
        let deadline = rec.now() + recovery.as_nanos() as u64;
        workload::final_reads(addrs.clone(), wcfg, &elements, rec, deadline, seed).await
    } else {
        None
    };
    if finals.is_none() {
        let msg = format!(
            "liveness: the cluster did not answer within {} s after the final heal",
            cli.recovery_timeout
        );
        println!("{msg}");
        liveness = Some(msg);
    }
    let watch_logs: Option<(Vec<watch::WatcherLog>, Option<u64>)> = if watchers_n > 0 {
        let final_revision = if finals.is_some() {
            final_revision(addrs).await
        } else {
            None
        };
        let logs = watchers
            .drain(final_revision.unwrap_or(0), Duration::from_secs(30))
            .await;
        Some((logs, final_revision))
    } else {
        None
    };
    let crashes = log.events().iter().filter(|e| e.event == "crashed").count();
    {
        let mut d = db.lock().unwrap();
        d.teardown();
    }

    Ok(AfterHeal {
        finals,
        liveness,
        watch_logs,
        cache,
        crashes,
    })
}

/// The checkers' reports and the run's verdict.
struct Checks {
    ops: Vec<history::Op>,
    lin: Option<checker::linearizable::LinearizabilityReport>,
    set_report: Option<checker::set::SetReport>,
    durable: Option<checker::durability::DurabilityReport>,
    watch_report: Option<checker::watch::WatchReport>,
    cache_report: Option<checker::cache::CacheReport>,
    check_s: f64,
    verdict: Verdict,
}

/// Phase 4: every checker that applies, on the whole history.
fn check(cli: &Cli, setup: &Setup, workload: &Workload, after: &AfterHeal) -> Checks {
    let (register, set) = (setup.register, setup.set);
    let (rec, finals, watch_logs) = (&workload.rec, &after.finals, &after.watch_logs);
    // Checks.
    let ops = rec.snapshot();
    let t = Instant::now();
    let lin = register.then(|| checker::linearizable::check(&ops, cli.check_budget));
    let set_report = set.then(|| checker::set::check(&ops, finals.as_ref().map(|f| &f.set)));
    let durable =
        register.then(|| checker::durability::check(&ops, finals.as_ref().map(|f| &f.registers)));
    let watch_report = watch_logs
        .as_ref()
        .map(|(logs, rev)| checker::watch::check(&ops, logs.as_slice(), *rev));
    let cache_report =
        (setup.cache_readers_n > 0).then(|| checker::cache::check(&ops, after.cache.clone()));
    let check_s = t.elapsed().as_secs_f64();
    let mut verdict = Verdict::True;
    for v in [
        lin.as_ref().map(|r| r.verdict),
        set_report.as_ref().map(|r| r.verdict),
        durable.as_ref().map(|r| r.verdict),
        watch_report.as_ref().map(|r| r.verdict),
        cache_report.as_ref().map(|r| r.verdict),
    ]
    .into_iter()
    .flatten()
    {
        verdict = verdict.and(v);
    }

    Checks {
        ops,
        lin,
        set_report,
        durable,
        watch_report,
        cache_report,
        check_s,
        verdict,
    }
}

/// Phase 5: the run's folder (history, nemesis log, summary, timeline) and the printed report.
fn report(
    cli: &Cli,
    setup: &Setup,
    workload: &Workload,
    after: &AfterHeal,
    checks: &Checks,
) -> Result<()> {
    let Setup {
        seed,
        ref started,
        ref run_dir,
        ref families,
        netns,
        ref wcfg,
        ..
    } = *setup;
    let Workload {
        ref log,
        ref unexpected,
        workload_end_s,
        ..
    } = *workload;
    let AfterHeal {
        ref liveness,
        crashes,
        ..
    } = *after;
    let Checks {
        ref ops,
        ref lin,
        ref set_report,
        ref durable,
        ref watch_report,
        ref cache_report,
        check_s,
        verdict,
    } = *checks;
    // Output.
    let events = log.events();
    history::write_jsonl(&run_dir.join("history.jsonl"), ops)?;
    {
        use std::io::Write as _;
        let mut f = std::io::BufWriter::new(std::fs::File::create(run_dir.join("nemesis.jsonl"))?);
        for e in &events {
            serde_json::to_writer(&mut f, e)?;
            f.write_all(b"\n")?;
        }
    }
    // What each watcher saw, one event per line (`watcher-<i>.jsonl`), to compare them.
    if let Some((logs, _)) = &after.watch_logs {
        use std::io::Write as _;
        for l in logs {
            let path = run_dir.join(format!("watcher-{}.jsonl", l.watcher));
            let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
            for e in &l.events {
                serde_json::to_writer(&mut f, e)?;
                f.write_all(b"\n")?;
            }
            f.flush()?;
        }
    }
    let windows = report::windows(&events, ops, workload_end_s);
    let summary = Summary {
        seed,
        command: std::env::args().collect(),
        started: started.clone(),
        options: cli,
        netns,
        nemeses: families.clone(),
        cas: wcfg.cas,
        duration_s: workload_end_s,
        ops: ops.len(),
        counts: report::counts(ops),
        latency_ms_p50_p99_max: report::latencies(ops),
        unexpected_replies: unexpected.0.load(std::sync::atomic::Ordering::Relaxed),
        crashes,
        windows: windows.clone(),
        linearizable: lin.clone(),
        set: set_report.clone(),
        durable: durable.clone(),
        watch: watch_report.clone(),
        cache: cache_report.clone(),
        liveness: liveness.clone(),
        clock_starts: setup.db.lock().unwrap().clock_starts().to_vec(),
        verdict,
    };
    std::fs::write(
        run_dir.join("summary.json"),
        serde_json::to_string_pretty(&summary)?,
    )?;
    let title = format!(
        "redraft {} nodes, {} clients, nemeses {:?}, read_mode {}, seed {seed}",
        cli.nodes, cli.clients, families, cli.read_mode
    );
    let png = run_dir.join("timeline.png");
    if let Err(e) = report::plot(&png, ops, &windows, &title) {
        println!("timeline: could not draw ({e:#})");
    }

    let mut text = String::new();
    {
        use std::fmt::Write as _;
        let _ = writeln!(
            text,
            "seed {seed}; {:.1} s of workload; {} ops; checks took {check_s:.1} s",
            workload_end_s,
            ops.len()
        );
        text += &report::counts_table(ops);
        let _ = writeln!(
            text,
            "unexpected replies: {}; nodes that crashed on their own: {crashes}",
            summary.unexpected_replies
        );
        if !summary.clock_starts.is_empty() {
            let starts: Vec<String> = summary
                .clock_starts
                .iter()
                .map(|(id, r)| format!("{id}:x{r:.3}"))
                .collect();
            let _ = writeln!(
                text,
                "clock rates, node:rate at each start in order: {}",
                starts.join(" ")
            );
        }
        let _ = writeln!(text, "fault windows (availability = ok / invoked):");
        for w in &windows {
            let _ = writeln!(
                text,
                "  {:>7.1}-{:>7.1} s  {:<15} nodes {:?}: {:>5} ops, {:>5.1}% ok, {:>6.1} ok/s",
                w.start_s,
                w.end_s,
                w.fault,
                w.nodes,
                w.ops,
                w.availability * 100.0,
                w.ok_per_s
            );
        }
    }
    std::fs::write(run_dir.join("summary.txt"), &text)?;
    print!("{text}");
    if let Some(l) = &lin {
        print_lin(l, ops);
    }
    if let Some(s) = &set_report {
        println!(
            "set: {} ({} attempted, {} acknowledged, {} indeterminate of which {} present, lost {:?}, unexpected {:?}, unaccounted keys {}){}",
            s.verdict.as_str(), s.attempted, s.acknowledged, s.indeterminate, s.indeterminate_present,
            &s.lost[..s.lost.len().min(20)], &s.unexpected[..s.unexpected.len().min(20)], s.unaccounted_keys,
            s.why_unknown.as_ref().map(|w| format!(": {w}")).unwrap_or_default()
        );
    }
    if let Some(d) = &durable {
        println!(
            "durable: {} ({} keys){}",
            d.verdict.as_str(),
            d.keys_checked,
            d.why_unknown
                .as_ref()
                .map(|w| format!(": {w}"))
                .unwrap_or_default()
        );
        for v in &d.violations {
            println!(
                "  key {} ended as {:?}; allowed {:?}",
                v.key, v.final_value, v.allowed
            );
        }
    }
    if let Some(w) = &watch_report {
        println!(
            "watch: {} ({} watchers, events seen {:?}, node moves {:?}, final revision {:?})",
            w.verdict.as_str(),
            w.watchers,
            w.events,
            w.moves,
            w.final_revision
        );
        if w.compacted.iter().any(|&c| c > 0) {
            println!(
                "  COMPACTED answers per watcher {:?}, revisions skipped after them {:?}, \
                 revisions no watcher saw {}",
                w.compacted, w.compacted_revisions, w.unseen_revisions
            );
        }
        for p in &w.problems {
            println!("  {p}");
        }
    }
    if let Some(c) = &cache_report {
        let [p50, p99, max] = c.behind_ms_p50_p99_max;
        println!(
            "cache: {} ({} cached reads, {} fills; {} served a value already overwritten: \
             behind by p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms; agreed after the heal \
             in {})",
            c.verdict.as_str(),
            c.cached_reads,
            c.fills,
            c.behind,
            c.convergence
                .as_ref()
                .and_then(|v| v.seconds)
                .map_or("never".to_string(), |s| format!("{s:.1} s"))
        );
        for p in c.problems.iter().take(20) {
            println!("  {p}");
        }
    }
    println!("output: {}", run_dir.display());
    // The last line (SEMANTICS.md §4).
    println!("linearizable: {}", verdict.as_str());
    Ok(())
}

/// The cluster's current revision (`REVISION`, linearizable), from the first node that answers.
async fn final_revision(addrs: &[(u64, String)]) -> Option<u64> {
    use jepsen::resp::{Conn, Reply};
    for _ in 0..50 {
        for (_, addr) in addrs {
            let Ok(mut c) = Conn::connect(addr, Duration::from_millis(500)).await else {
                continue;
            };
            if let Ok(Reply::Array(Some(items))) =
                c.call(&[b"REVISION"], Duration::from_secs(3)).await
            {
                // [revision, N, compact_revision, C, ...] (a RESP3 map arrives flattened).
                let mut it = items.iter();
                while let Some(k) = it.next() {
                    let v = it.next();
                    if k == &Reply::Bulk(Some(b"revision".to_vec())) {
                        if let Some(Reply::Int(n)) = v {
                            return Some(*n as u64);
                        }
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}
