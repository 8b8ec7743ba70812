//! Phase 1 of a run: its folder, the nemeses, the cluster started and answering, the preload
//! and the probes of what this redraft supports.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context, Result};
use jepsen::client::Client;
use jepsen::db::{self, Db, DbOpts};
use jepsen::nemesis::{self, Family};
use jepsen::workload::{self, WorkloadCfg};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::cli::{Cli, Toggle, WorkloadName};

/// What the set-up phase decided and started: the run's identity and folder, the nemeses, the
/// running cluster and the workload's configuration (after probing what this redraft knows).
pub(crate) struct Setup {
    pub(crate) seed: u64,
    pub(crate) started: String,
    pub(crate) run_dir: PathBuf,
    pub(crate) families: Vec<Family>,
    pub(crate) netns: bool,
    pub(crate) db: Arc<Mutex<Db>>,
    pub(crate) addrs: Vec<(u64, String)>,
    pub(crate) register: bool,
    pub(crate) set: bool,
    pub(crate) wcfg: WorkloadCfg,
    pub(crate) watchers_n: usize,
    pub(crate) cache_readers_n: usize,
}

/// Phase 1: the run folder, the nemeses, the cluster (started and answering), the preload and
/// the probes for CAS, WATCH and the watch stream.
pub(crate) async fn setup(cli: &Cli) -> Result<Setup> {
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

/// Writes `n` filler keys `fill:<i>` with 200-byte values, 1,000 per MSET, through the leader.
pub(crate) async fn preload_keys(addrs: &[(u64, String)], n: u64) -> Result<()> {
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

/// Waits until a leader is known and every node answers a (linearizable) GET.
pub(crate) async fn wait_ready(addrs: &[(u64, String)], timeout: Duration) -> bool {
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
