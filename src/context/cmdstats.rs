//! Per-command statistics for `INFO commandstats`, `INFO latencystats` and `INFO errorstats`
//! (Redis 7.0's `cmdstat_<name>`, `latency_percentiles_usec_<name>`, `errorstat_<CODE>`), and
//! the error total `INFO stats` shows. Owns the counters; the session records one sample per
//! command answered (`server::session`), `CONFIG RESETSTAT` clears them.
//!
//! A command's time is wall time: from when the node started on it (the end of the previous
//! reply of its pipeline, or the batch's arrival) until its reply was ready, so it includes
//! waiting for Raft (a write's commit, a read barrier), where Redis's counts only the time in
//! the command's function. A command answered with an error is `rejected` when it was refused
//! before it ran (arity, authentication, an unknown subcommand), `failed` when it ran and
//! answered an error, as in Redis; a command the table does not know has no `cmdstat` line but
//! its error is counted.
//!
//! Recording takes no lock: the counters are atomics in a table built once (one slot per
//! command and subcommand), a command's latency histogram is allocated the first time it
//! runs. Error codes are kept in a map under a lock taken only for an error reply, at most
//! [`MAX_ERROR_CODES`] distinct codes (Redis's limit; later new codes are only counted in the
//! total).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use crate::commands::table::{self, CmdId};

/// The most distinct error codes `INFO errorstats` lists (Redis's `ERROR_STATS_NUMBER`).
pub const MAX_ERROR_CODES: usize = 128;

/// Sub-buckets per power of two in a latency histogram: values are kept to within 1/16
/// (about two significant digits, as Redis's HDR histograms).
const SUB_BUCKETS: usize = 16;
/// Powers of two covered, in nanoseconds: up to 2^42 ns (73 minutes); longer counts there.
const POWERS: usize = 42;

/// The percentiles `INFO latencystats` reports (Redis's `latency-tracking-info-percentiles`
/// default).
const PERCENTILES: [(f64, &str); 3] = [(50.0, "p50"), (99.0, "p99"), (99.9, "p99.9")];

/// The statistics of every command.
pub struct CommandStats {
    /// Dense slot of each command and subcommand id.
    slots: HashMap<u32, usize>,
    per: Vec<PerCommand>,
    errors: Mutex<BTreeMap<String, u64>>,
    total_errors: AtomicU64,
}

#[derive(Default)]
struct PerCommand {
    name: &'static str,
    calls: AtomicU64,
    usec: AtomicU64,
    rejected: AtomicU64,
    failed: AtomicU64,
    latency: OnceLock<Histogram>,
}

/// How a command's reply ended, for its counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    Ok,
    /// Refused before it ran (arity, authentication, unknown subcommand): `rejected_calls`.
    Rejected,
    /// Ran and answered an error: `failed_calls`.
    Failed,
}

impl Ending {
    /// Classifies a reply: `error` is the error text when the reply is an error.
    pub fn of(error: Option<&str>) -> Ending {
        match error {
            None => Ending::Ok,
            Some(e)
                if e.starts_with("ERR wrong number of arguments")
                    || e.starts_with("ERR unknown subcommand")
                    || e.starts_with("NOAUTH")
                    || e.starts_with("NOPERM") =>
            {
                Ending::Rejected
            }
            Some(_) => Ending::Failed,
        }
    }
}

impl Default for CommandStats {
    fn default() -> Self {
        let mut slots = HashMap::new();
        let mut per = Vec::new();
        for (i, cmd) in table::commands().iter().enumerate() {
            let top = i as u32 + 1;
            slots.insert(top, per.len());
            per.push(PerCommand {
                name: cmd.name,
                ..PerCommand::default()
            });
            for (j, sub) in cmd.subcommands.iter().enumerate() {
                slots.insert(top | ((j as u32 + 1) << 16), per.len());
                per.push(PerCommand {
                    name: sub.name,
                    ..PerCommand::default()
                });
            }
        }
        CommandStats {
            slots,
            per,
            errors: Mutex::new(BTreeMap::new()),
            total_errors: AtomicU64::new(0),
        }
    }
}

impl CommandStats {
    /// Records one command answered: `id` the command (NONE: unknown), how long it took, how
    /// it ended, and the error text of an error reply.
    pub fn record(&self, id: CmdId, took: Duration, error: Option<&str>) {
        if let Some(e) = error {
            self.total_errors.fetch_add(1, Ordering::Relaxed);
            let code = e.split(' ').next().unwrap_or("ERR");
            let mut errors = self.errors.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(n) = errors.get_mut(code) {
                *n += 1;
            } else if errors.len() < MAX_ERROR_CODES {
                errors.insert(code.to_owned(), 1);
            }
        }
        let Some(p) = self.slots.get(&id.0).and_then(|&s| self.per.get(s)) else {
            return;
        };
        match Ending::of(error) {
            // A rejected command did not run: Redis counts neither a call nor its time.
            Ending::Rejected => {
                p.rejected.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Ending::Failed => {
                p.failed.fetch_add(1, Ordering::Relaxed);
            }
            Ending::Ok => {}
        }
        p.calls.fetch_add(1, Ordering::Relaxed);
        p.usec.fetch_add(took.as_micros() as u64, Ordering::Relaxed);
        p.latency.get_or_init(Histogram::default).record(took);
    }

    /// Error replies sent since start or the last reset (`total_error_replies`).
    pub fn total_errors(&self) -> u64 {
        self.total_errors.load(Ordering::Relaxed)
    }

    /// `CONFIG RESETSTAT`: every counter back to zero.
    pub fn reset(&self) {
        for p in &self.per {
            for c in [&p.calls, &p.usec, &p.rejected, &p.failed] {
                c.store(0, Ordering::Relaxed);
            }
            if let Some(h) = p.latency.get() {
                h.reset();
            }
        }
        self.errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        self.total_errors.store(0, Ordering::Relaxed);
    }

    /// `INFO commandstats` lines: every command that ran or was rejected, in table order.
    pub fn commandstats(&self, out: &mut String) {
        use std::fmt::Write as _;
        for p in &self.per {
            let calls = p.calls.load(Ordering::Relaxed);
            let rejected = p.rejected.load(Ordering::Relaxed);
            if calls == 0 && rejected == 0 {
                continue;
            }
            let usec = p.usec.load(Ordering::Relaxed);
            let per_call = if calls == 0 {
                0.0
            } else {
                usec as f64 / calls as f64
            };
            let _ = write!(
                out,
                "cmdstat_{}:calls={calls},usec={usec},usec_per_call={per_call:.2},\
                 rejected_calls={rejected},failed_calls={}\r\n",
                p.name,
                p.failed.load(Ordering::Relaxed),
            );
        }
    }

    /// `INFO latencystats` lines: p50, p99 and p99.9 in microseconds of every command that ran.
    pub fn latencystats(&self, out: &mut String) {
        use std::fmt::Write as _;
        for p in &self.per {
            let Some(h) = p.latency.get() else { continue };
            let total = h.count();
            if total == 0 {
                continue;
            }
            let _ = write!(out, "latency_percentiles_usec_{}:", p.name);
            for (k, (pct, label)) in PERCENTILES.iter().enumerate() {
                let sep = if k == 0 { "" } else { "," };
                let usec = h.value_at(*pct, total) as f64 / 1000.0;
                let _ = write!(out, "{sep}{label}={usec:.3}");
            }
            out.push_str("\r\n");
        }
    }

    /// `INFO errorstats` lines: `errorstat_<CODE>:count=N`, codes in byte order.
    pub fn errorstats(&self, out: &mut String) {
        use std::fmt::Write as _;
        let errors = self.errors.lock().unwrap_or_else(|p| p.into_inner());
        for (code, n) in errors.iter() {
            let _ = write!(out, "errorstat_{code}:count={n}\r\n");
        }
    }
}

/// A log-linear histogram of durations in nanoseconds: [`SUB_BUCKETS`] buckets per power of
/// two, each bucket's count an atomic.
struct Histogram {
    buckets: Vec<AtomicU64>,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: (0..POWERS * SUB_BUCKETS)
                .map(|_| AtomicU64::new(0))
                .collect(),
        }
    }
}

impl Histogram {
    fn record(&self, took: Duration) {
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.buckets[bucket_of(ns)].fetch_add(1, Ordering::Relaxed);
    }

    fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    fn reset(&self) {
        for b in &self.buckets {
            b.store(0, Ordering::Relaxed);
        }
    }

    /// The highest value (ns) of the bucket holding the `pct` percentile of `total` samples.
    fn value_at(&self, pct: f64, total: u64) -> u64 {
        let rank = ((pct / 100.0) * total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            seen += b.load(Ordering::Relaxed);
            if seen >= rank {
                return bucket_top(i);
            }
        }
        bucket_top(self.buckets.len() - 1)
    }
}

/// The bucket of `ns`: values below [`SUB_BUCKETS`] each have their own; above, the power of
/// two and the next four bits below the leading one.
fn bucket_of(ns: u64) -> usize {
    if ns < SUB_BUCKETS as u64 {
        return ns as usize;
    }
    let power = 63 - ns.leading_zeros() as usize; // >= 4
    let sub = ((ns >> (power - 4)) & 0xf) as usize;
    ((power - 3) * SUB_BUCKETS + sub).min(POWERS * SUB_BUCKETS - 1)
}

/// The highest value that falls in bucket `i` (the inverse of [`bucket_of`]).
fn bucket_top(i: usize) -> u64 {
    if i < SUB_BUCKETS {
        return i as u64;
    }
    let power = i / SUB_BUCKETS + 3;
    let sub = (i % SUB_BUCKETS) as u64;
    ((SUB_BUCKETS as u64 + sub + 1) << (power - 4)) - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_keep_two_significant_digits_and_invert() {
        for ns in [
            0u64,
            1,
            15,
            16,
            17,
            31,
            32,
            1000,
            1_003,
            99_999,
            10_000_000_000,
        ] {
            let i = bucket_of(ns);
            let top = bucket_top(i);
            assert!(top >= ns, "{ns} in bucket {i} topped at {top}");
            assert!(
                top - ns <= ns / 16,
                "{ns}: bucket top {top} more than 1/16 above"
            );
            if i > 0 {
                assert!(bucket_top(i - 1) < ns, "{ns} belongs to an earlier bucket");
            }
        }
    }

    #[test]
    fn percentiles_come_from_the_samples() {
        let h = Histogram::default();
        for _ in 0..98 {
            h.record(Duration::from_micros(10));
        }
        h.record(Duration::from_micros(1000));
        h.record(Duration::from_micros(5000));
        let total = h.count();
        assert_eq!(total, 100);
        let p50 = h.value_at(50.0, total);
        assert!((10_000..=10_700).contains(&p50), "{p50}");
        let p99 = h.value_at(99.0, total);
        assert!((1_000_000..=1_070_000).contains(&p99), "{p99}");
        let p999 = h.value_at(99.9, total);
        assert!((5_000_000..=5_400_000).contains(&p999), "{p999}");
    }

    #[test]
    fn calls_rejections_failures_and_error_codes() {
        let s = CommandStats::default();
        let get = match table::lookup("get", None) {
            table::Lookup::Found(_, id) => id,
            _ => panic!("get is in the table"),
        };
        s.record(get, Duration::from_micros(7), None);
        s.record(
            get,
            Duration::from_micros(3),
            Some("WRONGTYPE Operation against a key holding the wrong kind of value"),
        );
        s.record(
            get,
            Duration::from_micros(1),
            Some("ERR wrong number of arguments for 'get' command"),
        );
        s.record(CmdId::NONE, Duration::ZERO, Some("ERR unknown command 'x'"));
        let mut out = String::new();
        s.commandstats(&mut out);
        assert_eq!(
            out,
            "cmdstat_get:calls=2,usec=10,usec_per_call=5.00,rejected_calls=1,failed_calls=1\r\n"
        );
        let mut out = String::new();
        s.errorstats(&mut out);
        assert_eq!(
            out,
            "errorstat_ERR:count=2\r\nerrorstat_WRONGTYPE:count=1\r\n"
        );
        assert_eq!(s.total_errors(), 3);
        let mut out = String::new();
        s.latencystats(&mut out);
        assert!(
            out.starts_with("latency_percentiles_usec_get:p50="),
            "{out}"
        );
        s.reset();
        let mut out = String::new();
        s.commandstats(&mut out);
        s.errorstats(&mut out);
        s.latencystats(&mut out);
        assert_eq!(out, "");
        assert_eq!(s.total_errors(), 0);
    }
}
