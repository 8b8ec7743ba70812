//! Workloads: what each client does (generators), the client loop that runs and records the
//! operations, and the final reads after the cluster is healed.
//!
//! - `register`: per key of a small set (`r0`…), read (`GET`), write (`SET`, unique values), and,
//!   when the server has them, compare-and-set (`GETMETA` then `CAS` on its `mod_revision`),
//!   Redis's compare-and-set (`WATCH`, `GET`, `MULTI`, `SET`, `EXEC`), and a Lua
//!   compare-and-set (`GET`, then `EVAL` of a script that sets the key only if it still holds
//!   the value read: one Raft entry run at apply on every node).
//! - `set`: unique elements added as one key each (`SET set:<e> 1`); checked at the end.
//!
//! Every choice comes from a per-client rng seeded from the run's seed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::checker::set::FinalSet;
use crate::client::{Client, OpError};
use crate::history::{Call, Op, Outcome, Recorder};

/// Process number of the harness's final reads.
pub const FINAL_PROCESS: u64 = u64::MAX;

/// What the clients do.
#[derive(Clone, Debug)]
pub struct WorkloadCfg {
    pub register: bool,
    pub set: bool,
    /// Register keys `r0..r{keys}`.
    pub keys: usize,
    /// Whether `GETMETA`/`CAS` are available (probed at start).
    pub cas: bool,
    /// Whether `WATCH`/`MULTI`/`EXEC` are available (probed at start): half the
    /// compare-and-sets are then done Redis's way.
    pub watch: bool,
    /// Whether `EVAL` is available (probed at start): some compare-and-sets are then Lua.
    pub script: bool,
    /// Filler keys written before the run (`--preload-keys`, [`PRELOAD_PREFIX`]): the final
    /// `DBSIZE` counts them, and no operation accounts for them.
    pub preloaded: u64,
}

impl WorkloadCfg {
    pub fn key_names(&self) -> Vec<String> {
        (0..self.keys).map(|i| format!("r{i}")).collect()
    }
}

/// One generated operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Gen {
    Read {
        key: String,
    },
    Write {
        key: String,
        value: String,
    },
    Cas {
        key: String,
        value: String,
    },
    WatchCas {
        key: String,
        value: String,
    },
    ScriptCas {
        key: String,
        value: String,
    },
    Add {
        element: u64,
    },
    /// One `MSET` adding every element in one revision.
    AddMany {
        elements: Vec<u64>,
    },
    /// `MULTI`, a `SET` of each key, `EXEC`: several registers in one revision.
    MultiWrite {
        writes: Vec<(String, String)>,
    },
}

/// Unique values and elements, shared by all clients.
#[derive(Clone, Default)]
pub struct Counters {
    values: Arc<AtomicU64>,
    elements: Arc<AtomicU64>,
}

/// A client's generator.
pub struct Generator {
    cfg: WorkloadCfg,
    counters: Counters,
}

impl Generator {
    pub fn new(cfg: WorkloadCfg, counters: Counters) -> Self {
        Self { cfg, counters }
    }

    pub fn next(&mut self, rng: &mut StdRng) -> Gen {
        let use_set = match (self.cfg.register, self.cfg.set) {
            (true, true) => rng.gen_bool(0.3),
            (false, true) => true,
            _ => false,
        };
        if use_set {
            let element = || self.counters.elements.fetch_add(1, Ordering::Relaxed);
            // A quarter of the adds are an `MSET` of two or three elements, for the watch
            // check's atomicity (one revision never split).
            if rng.gen_bool(0.25) {
                let n = rng.gen_range(2..=3);
                return Gen::AddMany {
                    elements: (0..n).map(|_| element()).collect(),
                };
            }
            return Gen::Add { element: element() };
        }
        let key = format!("r{}", rng.gen_range(0..self.cfg.keys));
        let value = || (self.counters.values.fetch_add(1, Ordering::Relaxed) + 1).to_string();
        let roll = rng.gen_range(0..100);
        if roll < 50 {
            Gen::Read { key }
        } else if (70..75).contains(&roll) && self.cfg.watch && self.cfg.keys > 1 {
            // Two registers in one transaction (MULTI/EXEC, probed with `watch`).
            let other = loop {
                let k = format!("r{}", rng.gen_range(0..self.cfg.keys));
                if k != key {
                    break k;
                }
            };
            Gen::MultiWrite {
                writes: vec![(key, value()), (other, value())],
            }
        } else if roll < 75 || !self.cfg.cas {
            Gen::Write {
                key,
                value: value(),
            }
        } else if roll < 88 || !self.cfg.watch {
            Gen::Cas {
                key,
                value: value(),
            }
        } else if roll < 94 || !self.cfg.script {
            Gen::WatchCas {
                key,
                value: value(),
            }
        } else {
            Gen::ScriptCas {
                key,
                value: value(),
            }
        }
    }
}

/// Counts replies of a shape no command documents.
#[derive(Clone, Default)]
pub struct Unexpected(pub Arc<AtomicU64>);

fn outcome_of<T>(r: &Result<T, OpError>, unexpected: &Unexpected) -> (Outcome, Option<String>) {
    match r {
        Ok(_) => (Outcome::Ok, None),
        Err(e) => {
            if e.unexpected {
                unexpected.0.fetch_add(1, Ordering::Relaxed);
            }
            (e.outcome, Some(e.message.clone()))
        }
    }
}

/// Runs one generated operation (a CAS is a `GETMETA` read, then the `CAS`) and records it.
pub async fn execute(
    client: &mut Client,
    rng: &mut StdRng,
    rec: &Recorder,
    process: u64,
    gen: Gen,
    unexpected: &Unexpected,
) {
    let record = |key: String, call: Call, node, invoke, outcome, error| {
        rec.record(Op {
            id: rec.next_id(),
            process,
            node,
            key,
            call,
            invoke_ns: invoke,
            complete_ns: rec.now(),
            outcome,
            error,
        })
    };
    match gen {
        Gen::Read { key } => {
            let t = rec.now();
            let d = client.get(rng, &key).await;
            let (outcome, error) = outcome_of(&d.result, unexpected);
            let value = d.result.unwrap_or(None);
            record(key, Call::Read { value }, d.node, t, outcome, error);
        }
        Gen::Write { key, value } => {
            let t = rec.now();
            let d = client.set(rng, &key, &value).await;
            let (outcome, error) = outcome_of(&d.result, unexpected);
            let call = Call::Write {
                value,
                with: Vec::new(),
            };
            record(key, call, d.node, t, outcome, error);
        }
        Gen::Cas { key, value } => {
            let t = rec.now();
            let d = client.getmeta(rng, &key).await;
            let (outcome, error) = outcome_of(&d.result, unexpected);
            let meta = d.result.clone().ok().flatten();
            let seen = meta.as_ref().map(|m| m.value.clone());
            record(
                key.clone(),
                Call::Read {
                    value: seen.clone(),
                },
                d.node,
                t,
                outcome,
                error,
            );
            if outcome != Outcome::Ok {
                return;
            }
            let rev = meta.map(|m| m.mod_revision).unwrap_or(0);
            let t = rec.now();
            let d = client.cas(rng, &key, rev, &value).await;
            let (outcome, error) = outcome_of(&d.result, unexpected);
            let call = Call::Cas {
                expected: seen,
                expected_rev: rev,
                value,
                result: d.result.ok(),
                watch: false,
            };
            record(key, call, d.node, t, outcome, error);
        }
        Gen::WatchCas { key, value } => {
            let t = rec.now();
            let read = client.watch_get(rng, &key).await;
            let read_done = rec.now();
            let (outcome, error) = outcome_of(&read.result, unexpected);
            let seen = read.result.clone().ok().flatten();
            record(
                key.clone(),
                Call::Read {
                    value: seen.clone(),
                },
                read.node,
                t,
                outcome,
                error,
            );
            if outcome != Outcome::Ok {
                return;
            }
            let exec = client.multi_set_exec(rng, &key, &value).await;
            let (mut outcome, mut error) = outcome_of(&exec.result, unexpected);
            if outcome == Outcome::Ok && exec.result == Ok(false) {
                // An aborted EXEC had no effect. What it says (the key changed at some point
                // after WATCH, maybe before the GET) is no compare on the value read, so it is
                // recorded as a `fail`, which the checker drops.
                outcome = Outcome::Fail;
                error = Some("EXEC aborted: the watched key changed".into());
            }
            let call = Call::Cas {
                expected: seen,
                expected_rev: 0,
                value,
                result: exec.result.ok(),
                watch: true,
            };
            // Applied, it took effect after the GET's reply and before EXEC's.
            record(key, call, exec.node, read_done, outcome, error);
        }
        Gen::ScriptCas { key, value } => {
            let t = rec.now();
            let d = client.get(rng, &key).await;
            let (outcome, error) = outcome_of(&d.result, unexpected);
            let seen = d.result.clone().ok().flatten();
            let call = Call::Read {
                value: seen.clone(),
            };
            record(key.clone(), call, d.node, t, outcome, error);
            if outcome != Outcome::Ok {
                return;
            }
            let t = rec.now();
            let d = client.script_cas(rng, &key, seen.as_deref(), &value).await;
            let (outcome, error) = outcome_of(&d.result, unexpected);
            let call = Call::Cas {
                expected: seen,
                expected_rev: 0,
                value,
                result: d.result.ok(),
                watch: false,
            };
            record(key, call, d.node, t, outcome, error);
        }
        Gen::Add { element } => {
            let t = rec.now();
            let d = client.set(rng, &format!("set:{element}"), "1").await;
            let (outcome, error) = outcome_of(&d.result, unexpected);
            record(
                format!("set:{element}"),
                Call::Add {
                    element,
                    with: Vec::new(),
                },
                d.node,
                t,
                outcome,
                error,
            );
        }
        Gen::MultiWrite { writes } => {
            let t = rec.now();
            let pairs: Vec<(&str, &str)> = writes
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let d = client.multi_exec(rng, &pairs).await;
            let (mut outcome, mut error) = outcome_of(&d.result, unexpected);
            if d.result == Ok(false) {
                // EXEC without WATCH is never aborted: an aborted one is a reply no command
                // documents here, and its effect unknown.
                unexpected.0.fetch_add(1, Ordering::Relaxed);
                (outcome, error) = (Outcome::Info, Some("EXEC aborted without WATCH".into()));
            }
            for (key, value) in &writes {
                let with = writes.iter().filter(|(k, _)| k != key).cloned().collect();
                let call = Call::Write {
                    value: value.clone(),
                    with,
                };
                record(key.clone(), call, d.node, t, outcome, error.clone());
            }
        }
        Gen::AddMany { elements } => {
            let t = rec.now();
            let keys: Vec<String> = elements.iter().map(|e| format!("set:{e}")).collect();
            let pairs: Vec<(&str, &str)> = keys.iter().map(|k| (k.as_str(), "1")).collect();
            let d = client.mset(rng, &pairs).await;
            let (outcome, error) = outcome_of(&d.result, unexpected);
            for (&element, key) in elements.iter().zip(keys) {
                let with = elements.iter().copied().filter(|&e| e != element).collect();
                record(
                    key,
                    Call::Add { element, with },
                    d.node,
                    t,
                    outcome,
                    error.clone(),
                );
            }
        }
    }
}

/// One client's loop until `until` (run clock, ns), at `rate` operations per second. `pinned`:
/// the client stays on node `process % nodes` ([`Client::pinned`]), else it moves at random.
#[allow(clippy::too_many_arguments)]
pub async fn client_loop(
    process: u64,
    addrs: Vec<(u64, String)>,
    pinned: bool,
    op_timeout: Duration,
    mut gen: Generator,
    seed: u64,
    rate: f64,
    rec: Recorder,
    until: u64,
    unexpected: Unexpected,
    read_mode: Option<String>,
) {
    let mut rng = StdRng::seed_from_u64(seed ^ (process.wrapping_mul(0x9e37_79b9_7f4a_7c15)));
    let mut client = if pinned {
        Client::pinned(addrs, process as usize, op_timeout)
    } else {
        Client::new(addrs, op_timeout)
    }
    .with_read_mode(read_mode);
    let period = Duration::from_secs_f64(1.0 / rate.max(0.001));
    // Start at a random phase so the clients do not move in lockstep.
    tokio::time::sleep(period.mul_f64(rng.gen_range(0.0..1.0))).await;
    while rec.now() < until {
        let started = tokio::time::Instant::now();
        let g = gen.next(&mut rng);
        execute(&mut client, &mut rng, &rec, process, g, &unexpected).await;
        // Exponential-ish spacing around the mean period.
        let wait = period.mul_f64(rng.gen_range(0.5..1.5));
        let since = started.elapsed();
        if since < wait {
            tokio::time::sleep(wait - since).await;
        }
    }
}

/// What the final reads found.
pub struct Finals {
    pub registers: BTreeMap<String, Option<String>>,
    pub set: FinalSet,
}

/// After the final heal: reads every register key (recorded in the history) and every attempted
/// set element, retrying each step until `deadline` (run clock, ns). `None` if the cluster never
/// answered.
pub async fn final_reads(
    addrs: Vec<(u64, String)>,
    cfg: &WorkloadCfg,
    elements: &BTreeSet<u64>,
    rec: &Recorder,
    deadline: u64,
    seed: u64,
) -> Option<Finals> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xf1a1);
    let mut client = Client::new(addrs, Duration::from_secs(2));
    let mut registers = BTreeMap::new();
    let keys = if cfg.register {
        cfg.key_names()
    } else {
        Vec::new()
    };
    for key in keys {
        loop {
            if rec.now() > deadline {
                return None;
            }
            let t = rec.now();
            let d = client.get(&mut rng, &key).await;
            if let Ok(value) = d.result {
                rec.record(Op {
                    id: rec.next_id(),
                    process: FINAL_PROCESS,
                    node: d.node,
                    key: key.clone(),
                    call: Call::Read {
                        value: value.clone(),
                    },
                    invoke_ns: t,
                    complete_ns: rec.now(),
                    outcome: Outcome::Ok,
                    error: None,
                });
                registers.insert(key.clone(), value);
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let names: Vec<String> = elements.iter().map(|e| format!("set:{e}")).collect();
    let set = loop {
        if rec.now() > deadline {
            return None;
        }
        let before = client.dbsize(&mut rng).await;
        let got = client.get_many(&mut rng, &names).await;
        let after = client.dbsize(&mut rng).await;
        match (before.result, got, after.result) {
            // DBSIZE before and after agree: nothing was written in between.
            (Ok(a), Ok(values), Ok(b)) if a == b => {
                let present: BTreeSet<u64> = elements
                    .iter()
                    .zip(values)
                    .filter(|(_, v)| v.is_some())
                    .map(|(e, _)| *e)
                    .collect();
                let registers_present = registers.values().filter(|v| v.is_some()).count();
                let accounted = registers_present + present.len();
                break FinalSet {
                    unaccounted_keys: unaccounted_keys(a, accounted, cfg.preloaded),
                    present,
                };
            }
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    };
    Some(Finals { registers, set })
}

/// How many of the `dbsize` keys a final read found neither as a present register or set
/// element (`accounted`) nor among the `preloaded` filler keys: a key no operation wrote.
fn unaccounted_keys(dbsize: i64, accounted: usize, preloaded: u64) -> i64 {
    dbsize - accounted as i64 - preloaded as i64
}

/// The prefix of the filler keys written before a run (`--preload-keys`); no operation of the
/// history touches them.
pub const PRELOAD_PREFIX: &str = "fill:";

/// Whether `key` is one of the preloaded filler keys.
pub fn is_preload_key(key: &str) -> bool {
    key.starts_with(PRELOAD_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(register: bool, set: bool, cas: bool) -> WorkloadCfg {
        WorkloadCfg {
            register,
            set,
            keys: 3,
            cas,
            watch: cas,
            script: cas,
            preloaded: 0,
        }
    }

    /// The set check with the snapshot nemesis (which preloads 50,000 filler keys) failed every
    /// run: the final `DBSIZE` counted the filler keys as keys no operation wrote.
    #[test]
    fn preloaded_filler_keys_are_accounted_for() {
        assert_eq!(unaccounted_keys(50_012, 12, 50_000), 0);
        assert_eq!(
            unaccounted_keys(50_013, 12, 50_000),
            1,
            "a stray key still shows"
        );
        assert_eq!(unaccounted_keys(12, 12, 0), 0);
    }

    #[test]
    fn values_and_elements_are_unique_across_clients() {
        let counters = Counters::default();
        let mut a = Generator::new(cfg(true, true, true), counters.clone());
        let mut b = Generator::new(cfg(true, true, true), counters);
        let mut rng = StdRng::seed_from_u64(1);
        let mut values = BTreeSet::new();
        let mut elements = BTreeSet::new();
        for i in 0..2000 {
            let g = if i % 2 == 0 {
                a.next(&mut rng)
            } else {
                b.next(&mut rng)
            };
            match g {
                Gen::Write { value, key }
                | Gen::Cas { value, key }
                | Gen::WatchCas { value, key }
                | Gen::ScriptCas { value, key } => {
                    assert!(["r0", "r1", "r2"].contains(&key.as_str()));
                    assert!(values.insert(value));
                }
                Gen::MultiWrite { writes } => {
                    assert_eq!(writes.len(), 2);
                    assert_ne!(writes[0].0, writes[1].0);
                    for (key, value) in writes {
                        assert!(["r0", "r1", "r2"].contains(&key.as_str()));
                        assert!(values.insert(value));
                    }
                }
                Gen::Add { element } => assert!(elements.insert(element)),
                Gen::AddMany { elements: many } => {
                    assert!((2..=3).contains(&many.len()));
                    for e in many {
                        assert!(elements.insert(e));
                    }
                }
                Gen::Read { key } => assert!(["r0", "r1", "r2"].contains(&key.as_str())),
            }
        }
        assert!(values.len() > 500 && elements.len() > 300);
    }

    #[test]
    fn the_mix_follows_the_config() {
        let mut rng = StdRng::seed_from_u64(2);
        let mut g = Generator::new(cfg(true, false, false), Counters::default());
        let ops: Vec<Gen> = (0..1000).map(|_| g.next(&mut rng)).collect();
        assert!(ops.iter().all(|o| !matches!(
            o,
            Gen::Cas { .. }
                | Gen::WatchCas { .. }
                | Gen::ScriptCas { .. }
                | Gen::Add { .. }
                | Gen::AddMany { .. }
                | Gen::MultiWrite { .. }
        )));
        assert!(ops.iter().any(|o| matches!(o, Gen::Read { .. })));
        let mut g = Generator::new(cfg(true, false, true), Counters::default());
        assert!((0..1000).any(|_| matches!(g.next(&mut rng), Gen::Cas { .. })));
        assert!((0..1000).any(|_| matches!(g.next(&mut rng), Gen::WatchCas { .. })));
        assert!((0..1000).any(|_| matches!(g.next(&mut rng), Gen::ScriptCas { .. })));
        assert!((0..1000).any(|_| matches!(g.next(&mut rng), Gen::MultiWrite { .. })));
        let mut g = Generator::new(cfg(false, true, false), Counters::default());
        let adds: Vec<Gen> = (0..200).map(|_| g.next(&mut rng)).collect();
        assert!(adds
            .iter()
            .all(|o| matches!(o, Gen::Add { .. } | Gen::AddMany { .. })));
        assert!(adds.iter().any(|o| matches!(o, Gen::AddMany { .. })));
    }

    #[test]
    fn the_same_seed_gives_the_same_choices() {
        let run = || {
            let mut rng = StdRng::seed_from_u64(5);
            let mut g = Generator::new(cfg(true, true, true), Counters::default());
            (0..100).map(|_| g.next(&mut rng)).collect::<Vec<_>>()
        };
        assert_eq!(run(), run());
    }
}
