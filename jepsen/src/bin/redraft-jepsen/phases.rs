//! Phases 2 and 3 of a run: the clients and the nemesis on one run clock, then the heal, the
//! restart of every node, the final reads and the watchers' drain.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use jepsen::cache;
use jepsen::db;
use jepsen::history::{Call, Recorder};
use jepsen::nemesis::{self, Log, Schedule};
use jepsen::watch;
use jepsen::workload::{self, Counters, Generator, Unexpected};
use rand::rngs::StdRng;
use rand::SeedableRng;

use crate::cli::Cli;
use crate::setup::{wait_ready, Setup};

/// What the workload phase left (besides the watchers, still running): the history and the
/// nemesis log.
pub(crate) struct Workload {
    pub(crate) rec: Recorder,
    pub(crate) log: Log,
    pub(crate) unexpected: Unexpected,
    pub(crate) workload_end_s: f64,
}

/// Phase 2: the clients and the nemesis, on one run clock, until the time limit.
pub(crate) async fn workload_and_nemesis(
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
pub(crate) struct AfterHeal {
    pub(crate) finals: Option<workload::Finals>,
    pub(crate) liveness: Option<String>,
    pub(crate) watch_logs: Option<(Vec<watch::WatcherLog>, Option<u64>)>,
    /// The cache readers' convergence after the heal (`None`: no readers, or the cluster
    /// never answered).
    pub(crate) cache: Option<cache::Convergence>,
    pub(crate) crashes: usize,
}

/// Phase 3: heal everything, kill -9 (or power-cut) and restart every node, read back, drain
/// the watchers, tear the cluster down.
pub(crate) async fn heal_and_read_back(
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

/// The cluster's current revision (`REVISION`, linearizable), from the first node that answers.
pub(crate) async fn final_revision(addrs: &[(u64, String)]) -> Option<u64> {
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
