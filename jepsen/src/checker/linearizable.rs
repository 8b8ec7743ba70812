//! Linearizability of the register workload, per key (SEMANTICS.md §3-§5).
//!
//! Owns the register model, the Wing-Gong / Lowe search and the shrinking of a failure to its
//! smallest window. Knows nothing of RESP or processes: it reads [`Op`]s.
//!
//! # The search
//!
//! Lowe's formulation of Wing and Gong's algorithm, with Porcupine's memoization: the history is
//! a doubly linked list of call and return events in time order. The search repeatedly takes the
//! first event; a *call* whose operation the model accepts in the current state is linearized
//! ("lifted": its call and return leave the list) and the search restarts from the head; a
//! *return* means the operation it closes should already have been linearized, so the last
//! choice is undone. A configuration (set of linearized operations, model state) reached once is
//! never explored again. The set is kept as a Zobrist hash (XOR of a random 128-bit word per
//! operation), updated in O(1) per step; two different sets sharing a 128-bit hash would prune a
//! path wrongly, with probability about n²/2¹²⁸ for n configurations.
//!
//! The model may be nondeterministic (a state of "any value", used by the window shrinking, and
//! an indeterminate CAS from it): each stack frame remembers which successor it took, so
//! backtracking tries the next one.
//!
//! Invariants:
//! - **InfoAtInfinity.** An `info` write or CAS has its return at +∞: it may be linearized at any
//!   point after its invocation, and one linearized after every `ok` operation is the same as one
//!   that never happened.
//! - **BoundedSearch.** The search stops after `budget` steps and answers `Unknown`, never hangs.

use std::collections::{HashMap, HashSet};

use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::history::{Call, Op, Outcome};

/// A register state: an interned value, [`NIL`] or [`ANY`].
type State = u32;
/// The key does not exist.
const NIL: State = 0;
/// Any value at all (the unknown initial state of a window).
const ANY: State = u32::MAX;

/// What the search concluded about one (sub)history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    True,
    False,
    Unknown,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::True => "true",
            Verdict::False => "false",
            Verdict::Unknown => "unknown",
        }
    }

    /// `false` beats `unknown` beats `true`.
    pub fn and(self, other: Verdict) -> Verdict {
        match (self, other) {
            (Verdict::False, _) | (_, Verdict::False) => Verdict::False,
            (Verdict::Unknown, _) | (_, Verdict::Unknown) => Verdict::Unknown,
            _ => Verdict::True,
        }
    }
}

/// One key's operation in the model's terms.
#[derive(Clone, Copy, Debug)]
enum KCall {
    Read(State),
    Write(State),
    /// `result`: `Some` when `ok`, `None` when `info`.
    Cas {
        expected: State,
        new: State,
        result: Option<bool>,
    },
}

#[derive(Clone, Copy, Debug)]
struct KOp {
    call: KCall,
    invoke: u64,
    /// `u64::MAX` for an `info` operation (InfoAtInfinity).
    ret: u64,
    /// Index into the caller's op list (for reporting).
    src: usize,
}

/// Successor states of `state` under `call`; empty if the model refuses it.
fn step(state: State, call: KCall, out: &mut Vec<State>) {
    out.clear();
    match call {
        KCall::Read(v) => {
            if state == ANY || state == v {
                out.push(v);
            }
        }
        KCall::Write(v) => out.push(v),
        KCall::Cas {
            expected,
            new,
            result,
        } => match result {
            Some(true) => {
                if state == ANY || state == expected {
                    out.push(new);
                }
            }
            // A failed CAS from ANY leaves "any value but `expected`", approximated by ANY: a
            // weaker model can only accept more histories, so a `false` stays sound.
            Some(false) => {
                if state != expected {
                    out.push(state);
                }
            }
            None => {
                if state == ANY {
                    out.push(new);
                    out.push(ANY);
                } else if state == expected {
                    out.push(new);
                } else {
                    out.push(state);
                }
            }
        },
    }
}

/// The outcome of one search.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchResult {
    pub verdict: Verdict,
    pub steps: u64,
}

/// Wing-Gong / Lowe search with memoization (module doc). `ops` must not be empty-checked by
/// the caller; an empty history is linearizable.
fn search(ops: &[KOp], init: State, budget: u64) -> SearchResult {
    let n = ops.len();
    if n == 0 {
        return SearchResult {
            verdict: Verdict::True,
            steps: 0,
        };
    }
    // Events: 2i = call of op i, 2i+1 = its return. Sorted by time; at equal times calls come
    // first, so operations that touch are treated as concurrent (the weaker order).
    let mut events: Vec<usize> = (0..2 * n).collect();
    let time = |e: usize| {
        let op = &ops[e / 2];
        if e % 2 == 0 {
            (op.invoke, 0u8)
        } else {
            (op.ret, 1u8)
        }
    };
    events.sort_by_key(|&e| (time(e), e));
    // Doubly linked list over positions 1..=2n; position 0 is the head sentinel.
    let m = 2 * n;
    let mut next = vec![0usize; m + 2];
    let mut prev = vec![0usize; m + 2];
    let mut ev_at = vec![0usize; m + 2]; // position -> event
    let mut pos_of = vec![0usize; m]; // event -> position
    for (i, &e) in events.iter().enumerate() {
        ev_at[i + 1] = e;
        pos_of[e] = i + 1;
    }
    const END: usize = usize::MAX;
    for p in 0..=m {
        next[p] = if p == m { END } else { p + 1 };
        prev[p] = p.saturating_sub(1);
    }

    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed_1234);
    let zobrist: Vec<u128> = (0..n).map(|_| rng.gen()).collect();
    let mut lin_hash: u128 = 0;
    let mut seen: HashSet<(u128, State)> = HashSet::new();
    let mut stack: Vec<(usize, State, usize)> = Vec::new(); // (call position, state before, alt)
    let mut state = init;
    let mut cur = next[0];
    let mut cands = Vec::with_capacity(2);
    let mut steps = 0u64;

    // Removes the call at position `p` and its return from the list.
    let unlink = |next: &mut Vec<usize>, prev: &mut Vec<usize>, p: usize| {
        let (a, b) = (prev[p], next[p]);
        next[a] = b;
        if b != END {
            prev[b] = a;
        }
    };
    let relink = |next: &mut Vec<usize>, prev: &mut Vec<usize>, p: usize| {
        let (a, b) = (prev[p], next[p]);
        next[a] = p;
        if b != END {
            prev[b] = p;
        }
    };

    loop {
        steps += 1;
        if steps > budget {
            return SearchResult {
                verdict: Verdict::Unknown,
                steps,
            };
        }
        if next[0] == END {
            return SearchResult {
                verdict: Verdict::True,
                steps,
            };
        }
        // Try to linearize the call at `cur`, starting with alternative `from`.
        let mut attempt: Option<(usize, usize)> = None;
        if cur != END && ev_at[cur] % 2 == 0 {
            attempt = Some((cur, 0));
        }
        if cur == END || ev_at[cur] % 2 == 1 {
            // A return: its operation should already be linearized. Backtrack.
            loop {
                let Some((p, before, alt)) = stack.pop() else {
                    return SearchResult {
                        verdict: Verdict::False,
                        steps,
                    };
                };
                let op = ev_at[p] / 2;
                relink(&mut next, &mut prev, pos_of[2 * op + 1]);
                relink(&mut next, &mut prev, p);
                lin_hash ^= zobrist[op];
                state = before;
                step(state, ops[op].call, &mut cands);
                if alt + 1 < cands.len() {
                    attempt = Some((p, alt + 1));
                    break;
                }
                cur = next[p];
                if cur != END && ev_at[cur] % 2 == 0 {
                    attempt = Some((cur, 0));
                    break;
                }
            }
        }
        let Some((p, from)) = attempt else { continue };
        let op = ev_at[p] / 2;
        step(state, ops[op].call, &mut cands);
        let mut lifted = false;
        for (alt, &s2) in cands.iter().enumerate().skip(from) {
            let h = lin_hash ^ zobrist[op];
            if seen.insert((h, s2)) {
                stack.push((p, state, alt));
                lin_hash = h;
                state = s2;
                unlink(&mut next, &mut prev, p);
                unlink(&mut next, &mut prev, pos_of[2 * op + 1]);
                cur = next[0];
                lifted = true;
                break;
            }
        }
        if !lifted {
            cur = next[p];
        }
    }
}

/// Interns a key's values: nil is [`NIL`], values are 1, 2, ...
#[derive(Default)]
struct Interner(HashMap<String, State>);

impl Interner {
    fn get(&mut self, v: &Option<String>) -> State {
        match v {
            None => NIL,
            Some(s) => {
                let n = self.0.len() as State + 1;
                *self.0.entry(s.clone()).or_insert(n)
            }
        }
    }
}

/// Turns one key's operations into the model's terms (SEMANTICS.md §3): `fail`s and `info`
/// reads are dropped, `info` writes and CASes get their return at +∞.
fn to_kops(ops: &[&Op], interner: &mut Interner) -> Vec<KOp> {
    let mut out = Vec::with_capacity(ops.len());
    for (src, op) in ops.iter().enumerate() {
        if op.outcome == Outcome::Fail {
            continue;
        }
        let info = op.outcome == Outcome::Info;
        let call = match &op.call {
            Call::Read { value } => {
                if info {
                    continue;
                }
                KCall::Read(interner.get(value))
            }
            Call::Write { value, .. } => KCall::Write(interner.get(&Some(value.clone()))),
            Call::Cas {
                expected,
                value,
                result,
                ..
            } => KCall::Cas {
                expected: interner.get(expected),
                new: interner.get(&Some(value.clone())),
                result: if info { None } else { *result },
            },
            // Cached reads are not linearizable (checker::cache).
            Call::Add { .. } | Call::CachedRead { .. } => continue,
        };
        out.push(KOp {
            call,
            invoke: op.invoke_ns,
            ret: if info { u64::MAX } else { op.complete_ns },
            src,
        });
    }
    out
}

/// Drops `info` writes and CASes whose value no read observed and no CAS expected: linearized
/// last they change nothing anyone saw, so if the rest is linearizable, so is the whole
/// (used only to answer `true` faster; a `false` is rechecked on the full history).
fn drop_unobserved_info(ops: &[KOp]) -> Vec<KOp> {
    let mut observed = HashSet::new();
    for op in ops {
        match op.call {
            KCall::Read(v) => {
                observed.insert(v);
            }
            KCall::Cas { expected, .. } => {
                observed.insert(expected);
            }
            KCall::Write(_) => {}
        }
    }
    ops.iter()
        .filter(|op| {
            op.ret != u64::MAX
                || match op.call {
                    KCall::Write(v) | KCall::Cas { new: v, .. } => observed.contains(&v),
                    KCall::Read(_) => true,
                }
        })
        .copied()
        .collect()
}

/// Checks a whole key history from the empty register.
fn check_kops(kops: &[KOp], budget: u64) -> SearchResult {
    let reduced = drop_unobserved_info(kops);
    if reduced.len() < kops.len() {
        let r = search(&reduced, NIL, budget);
        if r.verdict == Verdict::True {
            return r;
        }
    }
    search(kops, NIL, budget)
}

/// The history cut at time `t` (SEMANTICS.md §5): operations invoked after `t` are gone, those
/// still running at `t` become `info` (reads vanish).
/// An operation that straddles a cut, as the cut history sees it: a read is dropped (it
/// constrains nothing it did not finish), a write or CAS becomes indeterminate (`info`: it may
/// take effect at any time after its invocation, or never).
fn straddling(op: &KOp) -> Option<KOp> {
    match op.call {
        KCall::Read(_) => None,
        KCall::Write(_) => Some(KOp {
            ret: u64::MAX,
            ..*op
        }),
        KCall::Cas { expected, new, .. } => Some(KOp {
            call: KCall::Cas {
                expected,
                new,
                result: None,
            },
            ret: u64::MAX,
            ..*op
        }),
    }
}

fn cut_at(kops: &[KOp], t: u64) -> Vec<KOp> {
    let mut out = Vec::new();
    for op in kops {
        if op.invoke > t {
            continue;
        }
        if op.ret <= t {
            out.push(*op);
            continue;
        }
        out.extend(straddling(op));
    }
    out
}

/// The window from `s` of an already cut history: operations done before `s` are gone, those
/// straddling `s` become `info`; the register starts in ANY.
fn window_from(kops: &[KOp], s: u64) -> Vec<KOp> {
    let mut out = Vec::new();
    for op in kops {
        if op.ret < s {
            continue;
        }
        if op.invoke >= s {
            out.push(*op);
            continue;
        }
        out.extend(straddling(op));
    }
    out
}

/// Shrinks a failing key history to its smallest failing window (SEMANTICS.md §5); returns the
/// source indices of the window's operations, or `None` if a search ran out of budget first.
fn smallest_window(kops: &[KOp], budget: u64) -> Option<Vec<usize>> {
    // End: the earliest completion time whose cut already fails (monotone: binary search).
    let mut rets: Vec<u64> = kops
        .iter()
        .map(|o| o.ret)
        .filter(|&r| r != u64::MAX)
        .collect();
    rets.sort_unstable();
    rets.dedup();
    let fails = |v: &[KOp], init| search(v, init, budget).verdict == Verdict::False;
    let (mut lo, mut hi) = (0usize, rets.len()); // rets[hi] fails or hi = len (the whole)
    while lo < hi {
        let mid = (lo + hi) / 2;
        if fails(&cut_at(kops, rets[mid]), NIL) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    let prefix = if hi < rets.len() {
        cut_at(kops, rets[hi])
    } else {
        kops.to_vec()
    };
    // Start: the latest invocation time from which the window still fails from ANY.
    let mut starts: Vec<u64> = prefix.iter().map(|o| o.invoke).collect();
    starts.sort_unstable();
    starts.dedup();
    for &s in starts.iter().rev().take(4000) {
        let w = window_from(&prefix, s);
        let r = search(&w, ANY, budget);
        match r.verdict {
            Verdict::False => return Some(prune(w, budget).iter().map(|o| o.src).collect()),
            Verdict::Unknown => return None,
            Verdict::True => {}
        }
    }
    Some(prefix.iter().map(|o| o.src).collect())
}

/// Makes a failing window (from ANY) easier to read without losing its meaning: drops reads
/// and failed CASes one at a time while it still fails (each removal only drops a constraint,
/// so what is left failing means the window fails), then drops `info` writes whose values
/// nobody in the window observed, which is exact when no CAS in it failed (a failed CAS is
/// the only operation whose legality depends on a value it did not read).
fn prune(mut w: Vec<KOp>, budget: u64) -> Vec<KOp> {
    let fails = |v: &[KOp]| search(v, ANY, budget).verdict == Verdict::False;
    let mut i = 0;
    while i < w.len() {
        let weakening = matches!(
            w[i].call,
            KCall::Read(_)
                | KCall::Cas {
                    result: Some(false),
                    ..
                }
        );
        if weakening {
            let mut t = w.clone();
            t.remove(i);
            if fails(&t) {
                w = t;
                continue;
            }
        }
        i += 1;
    }
    let failed_cas = w.iter().any(|o| {
        matches!(
            o.call,
            KCall::Cas {
                result: Some(false),
                ..
            }
        )
    });
    if !failed_cas {
        let reduced = drop_unobserved_info(&w);
        if fails(&reduced) {
            w = reduced;
        }
    }
    w
}

/// One key's result.
#[derive(Clone, Debug, Serialize)]
pub struct KeyResult {
    pub key: String,
    pub verdict: Verdict,
    pub ops: usize,
    pub steps: u64,
    /// For `false`: the ids of the operations of the smallest failing window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<Vec<u64>>,
}

/// The register check over a whole history.
#[derive(Clone, Debug, Serialize)]
pub struct LinearizabilityReport {
    pub verdict: Verdict,
    pub keys: Vec<KeyResult>,
}

/// Checks every key of the register workload (every op whose call is read, write or cas)
/// independently. `budget` bounds each key's search (BoundedSearch).
pub fn check(ops: &[Op], budget: u64) -> LinearizabilityReport {
    let mut by_key: std::collections::BTreeMap<&str, Vec<&Op>> = Default::default();
    for op in ops {
        if !matches!(op.call, Call::Add { .. }) {
            by_key.entry(op.key.as_str()).or_default().push(op);
        }
    }
    let mut keys = Vec::new();
    let mut verdict = Verdict::True;
    for (key, kops_src) in by_key {
        let mut interner = Interner::default();
        let kops = to_kops(&kops_src, &mut interner);
        let r = check_kops(&kops, budget);
        let window = if r.verdict == Verdict::False {
            smallest_window(&kops, budget)
                .map(|w| w.into_iter().map(|i| kops_src[i].id).collect::<Vec<_>>())
                .or_else(|| Some(kops.iter().map(|k| kops_src[k.src].id).collect()))
        } else {
            None
        };
        verdict = verdict.and(r.verdict);
        keys.push(KeyResult {
            key: key.to_string(),
            verdict: r.verdict,
            ops: kops.len(),
            steps: r.steps,
            window,
        });
    }
    LinearizabilityReport { verdict, keys }
}

#[cfg(test)]
#[path = "linearizable_test.rs"]
mod tests;
