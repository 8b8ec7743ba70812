//! The key-value workloads (`set`, `get`, `mixed`) and the steady writes of `failover`:
//! `concurrency` workers, each with its own connection, spread round-robin over the
//! endpoints; each sends `pipeline` operations per round trip and records every operation's
//! latency (from sending its batch to reading its reply) in its own histogram, merged at the
//! end. A worker whose connection breaks counts the batch as errors and reconnects to the next
//! endpoint, so a dead node's clients move to the live ones.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::args::{RunArgs, System, Workload};
use crate::client::{key, Kv, Op};
use crate::result::{self, cdf, Latency, RunResult};

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
    let mut probe = Kv::connect(args.system, &args.endpoints[0], "").await?;
    if probe.get(&key(args.keys - 1)).await?.map(|v| v.len()) == Some(args.value_size) {
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
                .map(Op::Set)
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

/// Runs the set, get or mixed workload and returns its result.
pub async fn run(args: RunArgs) -> anyhow::Result<RunResult> {
    if matches!(args.workload, Workload::Get | Workload::Mixed) {
        preload(&args).await?;
    }
    let args = Arc::new(args);
    let start = Instant::now();
    let measure_from = start + args.warmup;
    let end = measure_from + args.duration;
    let tasks: Vec<_> = (0..args.concurrency)
        .map(|id| tokio::spawn(worker(args.clone(), id, measure_from, end, None)))
        .collect();
    let mut reports = Vec::new();
    for t in tasks {
        reports.push(t.await?);
    }
    Ok(summarize(&args, &reports, args.duration))
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
