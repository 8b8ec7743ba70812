//! The key-value workloads (`set`, `get`, `mixed`; over RESP also `evalsha`, `hset`, `hget`)
//! and the steady writes of `failover`:
//! `concurrency` workers, each with its own connection, spread round-robin over the
//! endpoints; each sends `pipeline` operations per round trip and records every operation's
//! latency (from sending its batch to reading its reply) in its own histogram, merged at the
//! end. A worker whose connection breaks counts the batch as errors and reconnects to the next
//! endpoint, so a dead node's clients move to the live ones.
//!
//! Counted runs (`fill`, or `set --total-ops N`) share one op counter instead of a clock: each
//! worker claims `pipeline` op numbers at a time, op `i < keys` of a fill writes key `i` and
//! every other op a uniformly chosen key, and a write that fails is retried by its worker
//! until it is acknowledged, so the run ends with exactly N acknowledged writes (a write whose
//! reply was lost with its connection may be applied twice: one more revision, never one
//! fewer). A run in which no write is acknowledged for [`STALL`] gives up as `failed`.
//!
//! redraft write runs also read every node's group-commit counters before and after the
//! measured time (`raftstats`), and `--force-snapshots` asks the leader for snapshots
//! meanwhile.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::args::{RunArgs, System, Workload};
use crate::client::{key, Kv, Op};
use crate::raftstats;
use crate::result::{self, cdf, Latency, RunResult};

/// A counted run gives up after this long without an acknowledged write.
pub const STALL: Duration = Duration::from_secs(30);

/// The op numbers of a counted run, shared by its workers.
pub struct Plan {
    keys: u64,
    total: u64,
    /// fill: op `i < keys` writes key `i`.
    sequential: bool,
    next: AtomicU64,
}

impl Plan {
    pub fn new(keys: u64, total: u64, sequential: bool) -> Plan {
        Plan {
            keys,
            total,
            sequential,
            next: AtomicU64::new(0),
        }
    }

    /// Claims the next `n` op numbers (fewer at the end; empty when all are claimed).
    pub fn claim(&self, n: u64) -> Range<u64> {
        let start = self.next.fetch_add(n, Ordering::Relaxed);
        start.min(self.total)..start.saturating_add(n).min(self.total)
    }

    /// The key op `i` writes.
    pub fn key(&self, i: u64, rng: &mut Rng) -> u64 {
        if self.sequential && i < self.keys {
            i
        } else {
            (rng.next() >> 1) % self.keys
        }
    }
}

/// Per-run shared state a failover run watches: successful writes per time bucket.
pub struct Timeline {
    pub start: Instant,
    pub bucket: Duration,
    pub buckets: Vec<AtomicU64>,
}

impl Timeline {
    pub fn new(start: Instant, bucket: Duration, total: Duration) -> Timeline {
        let n = (total.as_secs_f64() / bucket.as_secs_f64()).ceil() as usize + 1;
        Timeline {
            start,
            bucket,
            buckets: (0..n).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn ok_at(&self, t: Instant) {
        let i = (t.duration_since(self.start).as_nanos() / self.bucket.as_nanos()) as usize;
        if let Some(b) = self.buckets.get(i) {
            b.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// What one worker measured.
pub struct WorkerReport {
    pub hist: Histogram<u64>,
    pub ok: u64,
    pub errors: u64,
    /// Completion times of successful operations, µs since the timeline's start (failover).
    pub completions_us: Vec<u64>,
    pub last_error: Option<String>,
}

/// A small fast generator (xorshift64*), one per worker: the key and op choice must not cost
/// more than the operation.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// Writes every key once (for reads) unless the last key already holds a value of this size.
pub async fn preload(args: &RunArgs) -> anyhow::Result<()> {
    let value = vec![b'x'; args.value_size];
    let hash = args.workload == Workload::Hget;
    let mut probe = Kv::connect(args.system, &args.endpoints[0], "").await?;
    if !hash && probe.get(&key(args.keys - 1)).await?.map(|v| v.len()) == Some(args.value_size) {
        return Ok(());
    }
    let workers = 16.min(args.keys as usize);
    let mut tasks = Vec::new();
    for w in 0..workers {
        let a = args.clone();
        let value = value.clone();
        tasks.push(tokio::spawn(async move {
            let ep = &a.endpoints[w % a.endpoints.len()];
            let mut kv = Kv::connect(a.system, ep, "").await?;
            let (mut out, mut req) = (Vec::new(), Vec::new());
            let mine: Vec<Op> = (0..a.keys)
                .filter(|k| *k as usize % workers == w)
                .map(if hash { Op::HSet } else { Op::Set })
                .collect();
            let per_trip = if a.system == System::Etcd { 1 } else { 64 };
            for chunk in mine.chunks(per_trip) {
                kv.run(chunk, &value, &mut out, &mut req).await?;
                if let Some(Err(e)) = out.iter().find(|r| r.is_err()) {
                    anyhow::bail!("preload: {e}");
                }
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// Runs one worker until `end`, recording only batches sent at or after `measure_from`.
#[allow(clippy::too_many_arguments)]
pub async fn worker(
    args: Arc<RunArgs>,
    id: usize,
    measure_from: Instant,
    end: Instant,
    timeline: Option<Arc<Timeline>>,
) -> WorkerReport {
    let mut rep = WorkerReport {
        hist: result::histogram(),
        ok: 0,
        errors: 0,
        completions_us: Vec::new(),
        last_error: None,
    };
    let mode = args.effective_mode();
    let value = vec![b'x'; args.value_size];
    let n = args.endpoints.len();
    let mut endpoint = id % n;
    let mut rng = Rng::new(id as u64 + 1);
    let (mut ops, mut out, mut req) = (Vec::new(), Vec::new(), Vec::new());
    let mut conn: Option<Kv> = None;
    while Instant::now() < end {
        let kv = match conn.as_mut() {
            Some(kv) => kv,
            None => match Kv::connect(args.system, &args.endpoints[endpoint], &mode).await {
                Ok(kv) => conn.insert(kv),
                Err(e) => {
                    rep.last_error = Some(format!("{e:#}"));
                    endpoint = (endpoint + 1) % n;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        ops.clear();
        for _ in 0..args.pipeline {
            let r = rng.next();
            let k = (r >> 1) % args.keys;
            ops.push(match args.workload {
                Workload::Get => Op::Get(k),
                Workload::Mixed if r & 1 == 0 => Op::Get(k),
                Workload::Evalsha => Op::Release(k),
                Workload::Hset => Op::HSet(k),
                Workload::Hget => Op::HGet(k),
                _ => Op::Set(k),
            });
        }
        let sent = Instant::now();
        let measured = sent >= measure_from;
        let result = kv.run(&ops, &value, &mut out, &mut req).await;
        let done = Instant::now();
        match result {
            Ok(()) => {
                let us = done.duration_since(sent).as_micros() as u64;
                for o in &out {
                    match o {
                        Ok(()) => {
                            if measured {
                                rep.ok += 1;
                                result::record(&mut rep.hist, us);
                            }
                            if let Some(t) = &timeline {
                                t.ok_at(done);
                                rep.completions_us
                                    .push(done.duration_since(t.start).as_micros() as u64);
                            }
                        }
                        Err(e) => {
                            if measured {
                                rep.errors += 1;
                            }
                            rep.last_error = Some(e.clone());
                        }
                    }
                }
                if out.iter().any(|o| o.is_err()) {
                    // An error reply (e.g. no leader yet): do not spin on it.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            Err(e) => {
                if measured {
                    rep.errors += ops.len() as u64;
                }
                rep.last_error = Some(format!("{e:#}"));
                conn = None;
                endpoint = (endpoint + 1) % n;
            }
        }
    }
    rep
}

/// Runs one counted worker: claims ops from `plan` until none are left, retrying each failed
/// write until it is acknowledged.
pub async fn counted_worker(args: Arc<RunArgs>, id: usize, plan: Arc<Plan>) -> WorkerReport {
    let mut rep = WorkerReport {
        hist: result::histogram(),
        ok: 0,
        errors: 0,
        completions_us: Vec::new(),
        last_error: None,
    };
    let value = vec![b'x'; args.value_size];
    let n = args.endpoints.len();
    let mut endpoint = id % n;
    let mut rng = Rng::new(id as u64 + 1);
    let (mut ops, mut out, mut req) = (Vec::new(), Vec::new(), Vec::new());
    // Keys still to write, acknowledged ones removed.
    let mut pending: Vec<u64> = Vec::new();
    let mut conn: Option<Kv> = None;
    let mut last_ok = Instant::now();
    loop {
        if pending.is_empty() {
            let claimed = plan.claim(args.pipeline as u64);
            if claimed.is_empty() {
                break;
            }
            pending.extend(claimed.map(|i| plan.key(i, &mut rng)));
        }
        if last_ok.elapsed() > STALL {
            rep.last_error = Some(format!(
                "no write acknowledged for {} s; gave up ({})",
                STALL.as_secs(),
                rep.last_error.take().unwrap_or_default()
            ));
            break;
        }
        let kv = match conn.as_mut() {
            Some(kv) => kv,
            None => match Kv::connect(args.system, &args.endpoints[endpoint], "").await {
                Ok(kv) => conn.insert(kv),
                Err(e) => {
                    rep.last_error = Some(format!("{e:#}"));
                    endpoint = (endpoint + 1) % n;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        ops.clear();
        ops.extend(pending.iter().map(|&k| Op::Set(k)));
        let sent = Instant::now();
        match kv.run(&ops, &value, &mut out, &mut req).await {
            Ok(()) => {
                let us = sent.elapsed().as_micros() as u64;
                let mut failed = Vec::new();
                for (k, o) in pending.iter().zip(&out) {
                    match o {
                        Ok(()) => {
                            rep.ok += 1;
                            result::record(&mut rep.hist, us);
                            last_ok = Instant::now();
                        }
                        Err(e) => {
                            rep.errors += 1;
                            rep.last_error = Some(e.clone());
                            failed.push(*k);
                        }
                    }
                }
                pending = failed;
                if !pending.is_empty() {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            Err(e) => {
                rep.errors += pending.len() as u64;
                rep.last_error = Some(format!("{e:#}"));
                conn = None;
                endpoint = (endpoint + 1) % n;
            }
        }
    }
    rep
}

/// Runs the set, get, mixed or fill workload and returns its result.
pub async fn run(args: RunArgs) -> anyhow::Result<RunResult> {
    if matches!(
        args.workload,
        Workload::Get | Workload::Mixed | Workload::Hget
    ) {
        preload(&args).await?;
    }
    let args = Arc::new(args);
    let writes = args.workload.writes();
    let server_side = args.system == System::Redraft && writes;
    // The counters before: read as the measured time starts (a counted run measures from its
    // start; a timed one after the warm-up, while the warm-up load runs).
    let before_start = if server_side && args.counted() {
        Some(raftstats::scrape(&args.endpoints).await)
    } else {
        None
    };
    let snapshot_leader = match args.force_snapshots {
        Some(_) => Some(crate::client::find_leader(args.system, &args.endpoints).await?),
        None => None,
    };
    let start = Instant::now();
    let measure_from = if args.counted() {
        start
    } else {
        start + args.warmup
    };
    let before_later = (server_side && !args.counted()).then(|| {
        let eps = args.endpoints.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(measure_from.into()).await;
            raftstats::scrape(&eps).await
        })
    });
    // The servers' CPU before, read as the measured time starts (as the counters above).
    let cpu_before = (!args.server_pids.is_empty()).then(|| {
        let pids = args.server_pids.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(measure_from.into()).await;
            crate::cpustat::total(&pids)
        })
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let snapshots = match (args.force_snapshots, snapshot_leader) {
        (Some(every), Some(leader)) => Some(tokio::spawn(raftstats::force_snapshots(
            args.endpoints[leader].clone(),
            every,
            measure_from,
            stop_rx,
        ))),
        _ => None,
    };
    let (reports, measured) = if args.counted() {
        let plan = Arc::new(Plan::new(
            args.keys,
            args.target_ops(),
            args.workload == Workload::Fill,
        ));
        let tasks: Vec<_> = (0..args.concurrency)
            .map(|id| tokio::spawn(counted_worker(args.clone(), id, plan.clone())))
            .collect();
        let mut reports = Vec::new();
        for t in tasks {
            reports.push(t.await?);
        }
        (reports, start.elapsed())
    } else {
        let end = measure_from + args.duration;
        let tasks: Vec<_> = (0..args.concurrency)
            .map(|id| tokio::spawn(worker(args.clone(), id, measure_from, end, None)))
            .collect();
        let mut reports = Vec::new();
        for t in tasks {
            reports.push(t.await?);
        }
        (reports, args.duration)
    };
    let _ = stop_tx.send(true);
    let cpu_after = crate::cpustat::total(&args.server_pids);
    let mut res = summarize(&args, &reports, measured);
    if let Some(before) = cpu_before {
        match (before.await?, cpu_after) {
            (Ok(b), Ok(a)) => {
                res.server_cpu = Some(crate::cpustat::per_op(&args.server_pids, b, a, res.ops))
            }
            (Err(e), _) | (_, Err(e)) => {
                res.note = if res.note.is_empty() {
                    e
                } else {
                    format!("{}; {e}", res.note)
                }
            }
        }
    }
    if args.counted() {
        let ok: u64 = reports.iter().map(|r| r.ok).sum();
        if ok < args.target_ops() {
            res.status = "failed".to_string();
            res.note = format!(
                "{ok} of {} writes acknowledged; {}",
                args.target_ops(),
                res.note
            );
        }
    }
    let before = match (before_start, before_later) {
        (Some(b), _) => Some(b),
        (None, Some(task)) => Some(task.await?),
        (None, None) => None,
    };
    if let Some(before) = before {
        let after = raftstats::scrape(&args.endpoints).await;
        match raftstats::delta(&args.endpoints, &before, &after) {
            Ok(f) => res.log_flush = Some(f),
            Err(e) => {
                res.note = if res.note.is_empty() {
                    e
                } else {
                    format!("{}; {e}", res.note)
                }
            }
        }
    }
    if let Some(t) = snapshots {
        res.forced_snapshots = Some(t.await?);
    }
    Ok(res)
}

/// Merges worker reports into a result.
pub fn summarize(args: &RunArgs, reports: &[WorkerReport], measured: Duration) -> RunResult {
    let hist = result::merge(reports.iter().map(|r| &r.hist));
    let ok: u64 = reports.iter().map(|r| r.ok).sum();
    let errors: u64 = reports.iter().map(|r| r.errors).sum();
    let note = reports
        .iter()
        .filter_map(|r| r.last_error.clone())
        .next()
        .map(|e| format!("last error: {e}"))
        .unwrap_or_default();
    RunResult {
        system: args.label(),
        workload: args.workload.to_string(),
        mode: args.effective_mode(),
        value_size: args.value_size,
        concurrency: args.concurrency,
        pipeline: args.pipeline,
        rep: args.rep,
        status: if ok > 0 { "ok" } else { "failed" }.to_string(),
        note,
        duration_s: measured.as_secs_f64(),
        ops: ok,
        errors,
        throughput: ok as f64 / measured.as_secs_f64(),
        latency_ms: Latency::from_histogram(&hist),
        cdf: cdf(&hist),
        failover: None,
        log_flush: None,
        forced_snapshots: None,
        server_cpu: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_spreads_keys() {
        let mut r = Rng::new(7);
        let mut seen = [0u32; 10];
        for _ in 0..10_000 {
            seen[(r.next() % 10) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| (800..1200).contains(&n)), "{seen:?}");
    }

    #[test]
    fn a_fill_plan_writes_every_key_once_then_overwrites() {
        let plan = Plan::new(10, 25, true);
        let mut rng = Rng::new(3);
        let mut ops = Vec::new();
        loop {
            let r = plan.claim(4);
            if r.is_empty() {
                break;
            }
            ops.extend(r);
        }
        // Exactly the 25 op numbers, in claims of 4 and a last one of 1.
        assert_eq!(ops, (0..25).collect::<Vec<u64>>());
        assert!(plan.claim(4).is_empty());
        let keys: Vec<u64> = ops.iter().map(|&i| plan.key(i, &mut rng)).collect();
        assert_eq!(&keys[..10], &(0..10).collect::<Vec<u64>>()[..]);
        assert!(keys[10..].iter().all(|&k| k < 10));
        // The overwrites are spread, not a replay of the fill order.
        assert_ne!(&keys[10..20], &(0..10).collect::<Vec<u64>>()[..]);
    }

    #[test]
    fn a_total_ops_plan_overwrites_from_the_first_op() {
        let plan = Plan::new(1000, 3, false);
        let mut rng = Rng::new(1);
        let r = plan.claim(16);
        assert_eq!(r, 0..3);
        let keys: Vec<u64> = r.map(|i| plan.key(i, &mut rng)).collect();
        assert!(keys.iter().all(|&k| k < 1000));
        assert_ne!(keys, vec![0, 1, 2]);
    }

    #[test]
    fn timeline_counts_per_bucket() {
        let start = Instant::now();
        let t = Timeline::new(start, Duration::from_millis(100), Duration::from_secs(1));
        assert_eq!(t.buckets.len(), 11);
        t.ok_at(start + Duration::from_millis(50));
        t.ok_at(start + Duration::from_millis(99));
        t.ok_at(start + Duration::from_millis(250));
        t.ok_at(start + Duration::from_secs(60)); // past the end: dropped
        let counts: Vec<u64> = t
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        assert_eq!(&counts[..4], &[2, 0, 1, 0]);
        assert_eq!(counts.iter().sum::<u64>(), 3);
    }
}
