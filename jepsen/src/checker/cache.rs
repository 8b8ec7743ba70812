//! The client-side cache check: cached reads (`cached-read` ops of `src/cache.rs`) against the
//! guarantee the README states, which is weaker than linearizability:
//!
//! - **Safety**: a cached read returns a value the key held at some instant between the
//!   invocation of the read that filled the cache and the cached read's completion. With
//!   unique written values, that is violated when the value was never written, when the fill
//!   does not exist or returned something else, or when a write that definitely followed the
//!   value's write (invoked after it completed) definitely completed before the fill was
//!   invoked.
//! - **Liveness**: after the heal every cache comes to agree with the cluster
//!   ([`crate::cache::Convergence`], measured by the harness).
//!
//! It also measures what the guarantee allows: how long before a cached read the value it
//! served had been definitely overwritten (the window a reader can lag a write acknowledged
//! elsewhere: the apply delay of its node and the push's delivery, longer through a fault).

use std::collections::HashMap;

use serde::Serialize;

use super::Verdict;
use crate::cache::Convergence;
use crate::history::{Call, Op, Outcome};

#[derive(Clone, Debug, Serialize)]
pub struct CacheReport {
    pub verdict: Verdict,
    pub cached_reads: usize,
    /// Reads by the cache readers that went to the cluster (hits + fills = all their reads).
    pub fills: usize,
    /// Cached reads that served a value already definitely overwritten when they were invoked.
    pub behind: usize,
    /// How long before the cached read that value had been overwritten: p50, p99, max (ms).
    pub behind_ms_p50_p99_max: [f64; 3],
    pub convergence: Option<Convergence>,
    pub problems: Vec<String>,
}

/// One write's value and its window.
struct Written {
    invoke: u64,
    /// `u64::MAX` when indeterminate (it may take effect at any time).
    complete: u64,
    definite: bool,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

pub fn check(ops: &[Op], convergence: Option<Convergence>) -> CacheReport {
    let by_id: HashMap<u64, &Op> = ops.iter().map(|o| (o.id, o)).collect();
    // Every write of each key, by value (values are unique across the run).
    let mut writes: HashMap<&str, HashMap<&str, Written>> = HashMap::new();
    for op in ops {
        let value = match &op.call {
            Call::Write { value, .. } => value,
            Call::Cas { value, result, .. } => {
                if op.outcome == Outcome::Ok && *result != Some(true) {
                    continue;
                }
                value
            }
            _ => continue,
        };
        if op.outcome == Outcome::Fail {
            continue;
        }
        let definite = op.outcome == Outcome::Ok;
        writes.entry(&op.key).or_default().insert(
            value,
            Written {
                invoke: op.invoke_ns,
                complete: if definite { op.complete_ns } else { u64::MAX },
                definite,
            },
        );
    }
    let mut problems = Vec::new();
    let mut behind_ms = Vec::new();
    let mut cached_reads = 0;
    let mut fills = 0;
    for op in ops {
        let (value, fill_id, fill_invoke) = match &op.call {
            Call::CachedRead {
                value,
                fill_id,
                fill_invoke_ns,
            } => (value, *fill_id, *fill_invoke_ns),
            Call::Read { .. } if crate::cache::is_cache_reader(op.process) => {
                fills += 1;
                continue;
            }
            _ => continue,
        };
        cached_reads += 1;
        let where_ = format!("cached read id {} of {} by p{}", op.id, op.key, op.process);
        match by_id.get(&fill_id) {
            Some(f)
                if f.key == op.key
                    && f.outcome == Outcome::Ok
                    && f.invoke_ns == fill_invoke
                    && f.call
                        == Call::Read {
                            value: value.clone(),
                        } => {}
            other => problems.push(format!(
                "{where_}: served {value:?}, but its fill id {fill_id} is {:?}",
                other.map(|f| (&f.key, &f.call, f.outcome))
            )),
        }
        let key_writes = writes.get(op.key.as_str());
        // When the value served stopped being current at the latest (its write's completion;
        // 0 for the initial nil).
        let since = match value {
            None => 0,
            Some(v) => match key_writes.and_then(|w| w.get(v.as_str())) {
                Some(w) if w.invoke <= op.complete_ns => w.complete,
                Some(_) => {
                    problems.push(format!(
                        "{where_}: served {v:?} before its write was invoked"
                    ));
                    continue;
                }
                None => {
                    problems.push(format!("{where_}: served {v:?}, which nobody wrote"));
                    continue;
                }
            },
        };
        if since == u64::MAX {
            continue;
        }
        // The first definite write after it: from its completion on, the value is gone.
        let overwritten = key_writes
            .into_iter()
            .flat_map(|w| w.iter())
            .filter(|(v, w)| {
                // The initial nil ends with any write; a value, with a write that began after
                // its own had completed.
                w.definite && Some(**v) != value.as_deref() && (value.is_none() || w.invoke > since)
            })
            .map(|(_, w)| w.complete)
            .min();
        let Some(gone) = overwritten else { continue };
        if gone < fill_invoke {
            problems.push(format!(
                "{where_}: served {value:?}, overwritten at {:.3} s, before its fill was \
                 invoked at {:.3} s",
                gone as f64 / 1e9,
                fill_invoke as f64 / 1e9
            ));
        } else if gone < op.invoke_ns {
            behind_ms.push((op.invoke_ns - gone) as f64 / 1e6);
        }
    }
    behind_ms.sort_by(|a, b| a.total_cmp(b));
    let mut verdict = if problems.is_empty() {
        Verdict::True
    } else {
        Verdict::False
    };
    match &convergence {
        None => {
            verdict = verdict.and(Verdict::Unknown);
        }
        Some(c) => {
            if c.seconds.is_none() {
                verdict = Verdict::False;
                problems.extend(c.disagreements.iter().take(10).cloned());
            }
            for (i, r) in c.readers.iter().enumerate() {
                for e in r.protocol_errors.iter().take(5) {
                    verdict = Verdict::False;
                    problems.push(format!("cache reader {i}: {e}"));
                }
            }
        }
    }
    CacheReport {
        verdict,
        cached_reads,
        fills,
        behind: behind_ms.len(),
        behind_ms_p50_p99_max: [
            percentile(&behind_ms, 0.5),
            percentile(&behind_ms, 0.99),
            behind_ms.last().copied().unwrap_or(0.0),
        ],
        convergence,
        problems,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::{ReaderStats, CACHE_PROCESS};

    fn op(id: u64, process: u64, call: Call, invoke: u64, complete: u64) -> Op {
        Op {
            id,
            process,
            node: 1,
            key: "r0".into(),
            call,
            invoke_ns: invoke * 1_000_000,
            complete_ns: complete * 1_000_000,
            outcome: Outcome::Ok,
            error: None,
        }
    }

    fn write(id: u64, v: &str, invoke: u64, complete: u64) -> Op {
        op(
            id,
            1,
            Call::Write {
                value: v.into(),
                with: Vec::new(),
            },
            invoke,
            complete,
        )
    }

    fn fill(id: u64, v: Option<&str>, invoke: u64, complete: u64) -> Op {
        let value = v.map(str::to_string);
        op(id, CACHE_PROCESS, Call::Read { value }, invoke, complete)
    }

    fn cached(id: u64, v: Option<&str>, fill_id: u64, fill_at: u64, at: u64) -> Op {
        let call = Call::CachedRead {
            value: v.map(str::to_string),
            fill_id,
            fill_invoke_ns: fill_at * 1_000_000,
        };
        op(id, CACHE_PROCESS, call, at, at)
    }

    fn converged() -> Option<Convergence> {
        Some(Convergence {
            seconds: Some(0.1),
            disagreements: vec![],
            readers: vec![ReaderStats::default()],
        })
    }

    #[test]
    fn a_cache_that_lags_a_write_passes_and_is_measured() {
        // a written, filled, then b written; the cache serves a 5 ms after b completed.
        let ops = vec![
            write(1, "a", 0, 2),
            fill(2, Some("a"), 3, 4),
            write(3, "b", 5, 10),
            cached(4, Some("a"), 2, 3, 15),
        ];
        let r = check(&ops, converged());
        assert_eq!(r.verdict, Verdict::True, "{:?}", r.problems);
        assert_eq!((r.cached_reads, r.fills, r.behind), (1, 1, 1));
        assert_eq!(r.behind_ms_p50_p99_max[2], 5.0);
    }

    #[test]
    fn a_value_gone_before_the_fill_or_never_written_fails() {
        let ops = vec![
            write(1, "a", 0, 2),
            write(2, "b", 3, 4),
            // The fill claims "a", yet "b" had replaced it before the fill was invoked.
            fill(3, Some("a"), 5, 6),
            cached(4, Some("a"), 3, 5, 7),
            cached(5, Some("zz"), 3, 5, 8),
            // A fill that does not exist.
            cached(6, Some("b"), 99, 5, 9),
        ];
        let r = check(&ops, converged());
        assert_eq!(r.verdict, Verdict::False);
        assert_eq!(r.problems.len(), 4, "{:#?}", r.problems);
        assert!(r.problems[0].contains("before its fill was invoked"));
        assert!(r.problems.iter().any(|p| p.contains("nobody wrote")));
        assert!(r.problems.iter().any(|p| p.contains("fill id 99")));
    }

    #[test]
    fn an_initial_nil_is_gone_once_any_write_completed() {
        let ops = vec![
            fill(1, None, 0, 1),
            write(2, "a", 2, 3),
            cached(3, None, 1, 0, 10),
        ];
        let r = check(&ops, converged());
        assert_eq!(r.verdict, Verdict::True);
        assert_eq!(r.behind, 1);
        let stale_fill = vec![
            write(1, "a", 0, 1),
            fill(2, None, 2, 3),
            cached(3, None, 2, 2, 4),
        ];
        assert_eq!(check(&stale_fill, converged()).verdict, Verdict::False);
    }

    #[test]
    fn an_indeterminate_write_never_proves_staleness() {
        let mut w = write(2, "b", 3, 4);
        w.outcome = Outcome::Info;
        let ops = vec![
            write(1, "a", 0, 1),
            w,
            fill(3, Some("a"), 5, 6),
            cached(4, Some("a"), 3, 5, 20),
        ];
        let r = check(&ops, converged());
        assert_eq!(r.verdict, Verdict::True, "{:?}", r.problems);
        assert_eq!(r.behind, 0);
    }

    #[test]
    fn caches_that_never_agree_with_the_cluster_fail_and_no_check_is_unknown() {
        let stuck = Convergence {
            seconds: None,
            disagreements: vec!["cache reader 0 read r0 = Some(\"a\"); holds Some(\"b\")".into()],
            readers: vec![ReaderStats::default()],
        };
        let r = check(&[], Some(stuck));
        assert_eq!(r.verdict, Verdict::False);
        assert!(r.problems[0].contains("holds"));
        assert_eq!(check(&[], None).verdict, Verdict::Unknown);
        let garbled = Convergence {
            seconds: Some(0.0),
            disagreements: vec![],
            readers: vec![ReaderStats {
                protocol_errors: vec!["reply with no request: Int(1)".into()],
                ..Default::default()
            }],
        };
        assert_eq!(check(&[], Some(garbled)).verdict, Verdict::False);
    }
}
