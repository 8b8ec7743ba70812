//! The watch check (DESIGN §6, SEMANTICS.md §4): what the watchers saw through the faults.
//!
//! Every state-changing entry makes exactly one revision with changes numbered from sub 0, and
//! the harness's watchers follow every key from revision 0, so each watcher's events must be:
//! - **ordered and unique**: `(revision, sub)` strictly increasing;
//! - **reliable** (no gaps): every revision from 1 to the final one, each with subs 0, 1, ...,
//!   except where the watcher was told `-COMPACTED … oldest available revision is R` when it
//!   resumed: then exactly the revisions after the last one it had seen and below R are
//!   missing, and R comes next (never a silent gap);
//! - **the same for every watcher** (whatever nodes they read from and moved between): equal
//!   events wherever two watchers saw the same `(revision, sub)`;
//! - **faithful**: every acknowledged write (`SET`, a successful `CAS`, a set add) appears as a
//!   `set` of its key to its value in what the watchers saw together (checked when together
//!   they saw every revision), and no register key is ever set to a value nobody tried to
//!   write;
//! - **atomic**: the keys of one `MSET` of set elements, or of one `MULTI`/`EXEC` of register
//!   writes, appear in one revision or not at all, whatever its outcome (an indeterminate one
//!   that took effect must not be split either).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::Verdict;
use crate::history::{Call, Op, Outcome};
use crate::watch::{WatchEvent, WatcherLog};

#[derive(Clone, Debug, Serialize)]
pub struct WatchReport {
    pub verdict: Verdict,
    pub watchers: usize,
    /// Events each watcher saw up to the final revision.
    pub events: Vec<usize>,
    /// Node moves per watcher (reconnections to another node and resumes).
    pub moves: Vec<u64>,
    /// `-COMPACTED` answers per watcher (each followed by a resume at the oldest revision).
    pub compacted: Vec<usize>,
    /// Revisions skipped that way, per watcher.
    pub compacted_revisions: Vec<u64>,
    /// Revisions no watcher saw (all compacted away under them); the faithful check of
    /// acknowledged writes is skipped when this is not 0.
    pub unseen_revisions: u64,
    pub final_revision: Option<u64>,
    /// What is wrong, first problems first (at most 20).
    pub problems: Vec<String>,
}

/// One watcher's events up to `upto`, and the revisions it skipped after `-COMPACTED`.
fn check_one(log: &WatcherLog, upto: u64, problems: &mut Vec<String>) -> (Vec<WatchEvent>, u64) {
    let w = log.watcher;
    let mut skipped = 0;
    let events: Vec<WatchEvent> = log
        .events
        .iter()
        .filter(|e| e.revision <= upto)
        .cloned()
        .collect();
    let mut expect = (1u64, 0u64);
    for e in &events {
        let at = (e.revision, e.sub);
        if at == expect || (e.revision == expect.0 + 1 && e.sub == 0 && expect.1 > 0) {
            // The next sub of this revision, or the first of the next one.
        } else if at < expect {
            problems.push(format!(
                "watcher {w}: {}-{} after {}-{} (out of order or repeated)",
                e.revision,
                e.sub,
                expect.0,
                expect.1.saturating_sub(1)
            ));
        } else {
            // The last revision seen whole, and whether a COMPACTED answered exactly there
            // with this revision as the oldest left.
            let done = if expect.1 > 0 { expect.0 } else { expect.0 - 1 };
            let told = log
                .compactions
                .iter()
                .any(|c| c.seen == done && c.oldest == e.revision);
            if e.sub == 0 && told {
                skipped += e.revision - done - 1;
            } else {
                problems.push(format!(
                    "watcher {w}: gap: {}-{} where {}-{} (or the next revision) was due",
                    e.revision, e.sub, expect.0, expect.1
                ));
            }
        }
        expect = (e.revision, e.sub + 1);
    }
    let last = events.last().map(|e| e.revision).unwrap_or(0);
    if last < upto {
        problems.push(format!(
            "watcher {w}: saw revisions up to {last}, the cluster reached {upto}"
        ));
    }
    (events, skipped)
}

/// Checks the watchers' `logs` against the history `ops` and the cluster's final revision.
pub fn check(ops: &[Op], logs: &[WatcherLog], final_revision: Option<u64>) -> WatchReport {
    let mut problems = Vec::new();
    let mut report = WatchReport {
        verdict: Verdict::Unknown,
        watchers: logs.len(),
        events: Vec::new(),
        moves: logs.iter().map(|l| l.moves).collect(),
        compacted: logs.iter().map(|l| l.compactions.len()).collect(),
        compacted_revisions: Vec::new(),
        unseen_revisions: 0,
        final_revision,
        problems: Vec::new(),
    };
    let Some(upto) = final_revision else {
        report
            .problems
            .push("the final revision could not be read".into());
        return report;
    };
    for l in logs {
        for e in &l.errors {
            problems.push(format!("watcher {}: {e}", l.watcher));
        }
    }
    let (seen, skipped): (Vec<Vec<WatchEvent>>, Vec<u64>) = logs
        .iter()
        .map(|l| check_one(l, upto, &mut problems))
        .unzip();
    report.events = seen.iter().map(Vec::len).collect();
    report.compacted_revisions = skipped;
    if !seen.is_empty() {
        // The same wherever two watchers saw the same (revision, sub); `all` is every event
        // some watcher saw.
        let mut all: BTreeMap<(u64, u64), (usize, &WatchEvent)> = BTreeMap::new();
        for (i, events) in seen.iter().enumerate() {
            for e in events {
                match all.get(&(e.revision, e.sub)) {
                    None => {
                        all.insert((e.revision, e.sub), (i, e));
                    }
                    Some((j, other)) if *other != e => problems.push(format!(
                        "watchers {j} and {i} disagree at {}-{}: {other:?} vs {e:?}",
                        e.revision, e.sub
                    )),
                    Some(_) => {}
                }
            }
        }
        // And whole revisions alike: the gap check cannot tell a revision's missing last sub
        // from its end, so every revision two watchers saw has the same subs in both.
        let subs: Vec<BTreeMap<u64, u64>> = seen
            .iter()
            .map(|events| {
                let mut n = BTreeMap::new();
                for e in events {
                    *n.entry(e.revision).or_insert(0) += 1;
                }
                n
            })
            .collect();
        for (i, mine) in subs.iter().enumerate().skip(1) {
            for (j, theirs) in subs.iter().enumerate().take(i) {
                let differ = mine
                    .iter()
                    .find(|(r, n)| theirs.get(r).is_some_and(|m| m != *n));
                if let Some((r, n)) = differ {
                    problems.push(format!(
                        "watchers {j} and {i} saw revision {r} with {} and {n} changes",
                        theirs[r]
                    ));
                }
            }
        }
        let revisions: BTreeSet<u64> = all.keys().map(|(r, _)| *r).collect();
        report.unseen_revisions = (1..=upto).filter(|r| !revisions.contains(r)).count() as u64;
        let first: Vec<&WatchEvent> = all.values().map(|(_, e)| *e).collect();
        // Faithful: acknowledged writes present; register values all attempted.
        let sets: BTreeSet<(&str, &str)> = first
            .iter()
            .filter(|e| e.kind == "set")
            .filter_map(|e| Some((e.key.as_str(), e.value.as_deref()?)))
            .collect();
        let mut attempted: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for op in ops {
            let (written, acked) = match &op.call {
                Call::Write { value, .. } => (Some(value.as_str()), op.outcome == Outcome::Ok),
                Call::Cas { value, result, .. } => (
                    Some(value.as_str()),
                    op.outcome == Outcome::Ok && *result == Some(true),
                ),
                Call::Add { .. } => (Some("1"), op.outcome == Outcome::Ok),
                Call::Read { .. } | Call::CachedRead { .. } => (None, false),
            };
            let Some(v) = written else { continue };
            attempted.entry(op.key.as_str()).or_default().insert(v);
            if acked && report.unseen_revisions == 0 && !sets.contains(&(op.key.as_str(), v)) {
                problems.push(format!(
                    "acknowledged write of {}={v} (op {}) never appeared in the watch stream",
                    op.key, op.id
                ));
            }
        }
        // Atomic: every key of an MSET or a MULTI/EXEC in the same revision, or none of them.
        let rev_of: BTreeMap<(&str, &str), u64> = first
            .iter()
            .filter(|e| e.kind == "set")
            .filter_map(|e| Some(((e.key.as_str(), e.value.as_deref()?), e.revision)))
            .collect();
        // Each transaction once (its ops share their writes): its first op's id and outcome.
        let mut batches: BTreeMap<Vec<(String, String)>, (u64, Outcome)> = BTreeMap::new();
        for op in ops {
            let (mine, with): ((String, String), Vec<(String, String)>) = match &op.call {
                Call::Add { element, with } if !with.is_empty() => (
                    (op.key.clone(), "1".into()),
                    with.iter()
                        .map(|e| (format!("set:{e}"), "1".into()))
                        .collect(),
                ),
                Call::Write { value, with } if !with.is_empty() => {
                    ((op.key.clone(), value.clone()), with.clone())
                }
                _ => continue,
            };
            let mut writes: Vec<(String, String)> = with;
            writes.push(mine);
            writes.sort();
            batches.entry(writes).or_insert((op.id, op.outcome));
        }
        for (writes, (id, outcome)) in &batches {
            let revs: Vec<Option<u64>> = writes
                .iter()
                .map(|(k, v)| rev_of.get(&(k.as_str(), v.as_str())).copied())
                .collect();
            let whole = revs.iter().all(|r| r.is_some() && *r == revs[0]);
            if !whole && revs.iter().any(Option::is_some) {
                let at: Vec<String> = writes
                    .iter()
                    .zip(&revs)
                    .map(|((k, v), r)| match r {
                        Some(r) => format!("{k}={v} at revision {r}"),
                        None => format!("{k}={v} never"),
                    })
                    .collect();
                problems.push(format!(
                    "a multi-key write (op {id}, {}) split across revisions: {}",
                    outcome.as_str(),
                    at.join(", ")
                ));
            }
        }
        // The preloaded filler keys (`--preload-keys`) are written by the harness, not by an
        // operation of the history.
        let ours = |e: &&&WatchEvent| !crate::workload::is_preload_key(&e.key);
        for e in first.iter().filter(|e| e.kind == "set").filter(ours) {
            let Some(v) = e.value.as_deref() else {
                continue;
            };
            if !attempted.get(e.key.as_str()).is_some_and(|a| a.contains(v)) {
                problems.push(format!(
                    "event {}-{} sets {}={v}, which no operation tried to write",
                    e.revision, e.sub, e.key
                ));
            }
        }
    }
    report.verdict = if problems.is_empty() {
        Verdict::True
    } else if problems
        .iter()
        .all(|p| p.contains("did not reach revision"))
    {
        Verdict::Unknown
    } else {
        Verdict::False
    };
    problems.truncate(20);
    report.problems = problems;
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Call, Op, Outcome};

    /// Fails unless one of `r`'s problems says every one of `needles`.
    fn assert_problem(r: &WatchReport, needles: &[&str]) {
        assert!(
            r.problems
                .iter()
                .any(|p| needles.iter().all(|n| p.contains(n))),
            "no problem says {needles:?}: {:?}",
            r.problems
        );
    }

    fn ev(revision: u64, sub: u64, key: &str, value: &str) -> WatchEvent {
        WatchEvent {
            revision,
            sub,
            kind: "set".into(),
            key: key.into(),
            value: Some(value.into()),
        }
    }

    fn log(watcher: usize, events: Vec<WatchEvent>) -> WatcherLog {
        WatcherLog {
            watcher,
            events,
            ..Default::default()
        }
    }

    fn write(id: u64, key: &str, value: &str, outcome: Outcome) -> Op {
        Op {
            id,
            process: 0,
            node: 1,
            key: key.into(),
            call: Call::Write {
                value: value.into(),
                with: Vec::new(),
            },
            invoke_ns: id,
            complete_ns: id + 1,
            outcome,
            error: None,
        }
    }

    #[test]
    fn agreeing_complete_watchers_pass() {
        let evs = vec![
            ev(1, 0, "r0", "1"),
            ev(2, 0, "r1", "2"),
            ev(2, 1, "r0", "3"),
        ];
        let ops = vec![
            write(1, "r0", "1", Outcome::Ok),
            write(2, "r1", "2", Outcome::Ok),
            write(3, "r0", "3", Outcome::Info),
            write(4, "r0", "9", Outcome::Fail),
        ];
        let r = check(&ops, &[log(0, evs.clone()), log(1, evs)], Some(2));
        assert_eq!(r.verdict, Verdict::True, "{:?}", r.problems);
        assert_eq!(r.events, vec![3, 3]);
    }

    #[test]
    fn gaps_repeats_disagreement_and_lost_or_phantom_writes_fail() {
        let ops = vec![
            write(1, "r0", "1", Outcome::Ok),
            write(2, "r0", "2", Outcome::Ok),
        ];
        let good = vec![ev(1, 0, "r0", "1"), ev(2, 0, "r0", "2")];
        let cases: Vec<(&str, Vec<WatchEvent>, &str)> = vec![
            ("gap", vec![ev(2, 0, "r0", "2")], "gap"),
            (
                "repeat",
                vec![
                    ev(1, 0, "r0", "1"),
                    ev(1, 0, "r0", "1"),
                    ev(2, 0, "r0", "2"),
                ],
                "repeated",
            ),
            ("short", vec![ev(1, 0, "r0", "1")], "reached 2"),
            (
                "phantom",
                vec![ev(1, 0, "r0", "1"), ev(2, 0, "r0", "7")],
                "no operation tried",
            ),
        ];
        for (name, evs, want) in cases {
            let r = check(&ops, &[log(0, evs)], Some(2));
            assert_eq!(r.verdict, Verdict::False, "{name}");
            assert!(
                r.problems.iter().any(|p| p.contains(want)),
                "{name}: {:?}",
                r.problems
            );
        }
        let r = check(
            &ops,
            &[
                log(0, good.clone()),
                log(1, vec![ev(1, 0, "r0", "1"), ev(2, 0, "r0", "1")]),
            ],
            Some(2),
        );
        assert_problem(&r, &["disagree"]);
        let lost = vec![
            write(1, "r0", "1", Outcome::Ok),
            write(5, "r1", "5", Outcome::Ok),
        ];
        let r = check(&lost, &[log(0, vec![ev(1, 0, "r0", "1")])], Some(1));
        assert_problem(&r, &["never appeared"]);
    }

    /// The ops of one `MSET` of `elements`, with `outcome`.
    fn mset(first_id: u64, elements: &[u64], outcome: Outcome) -> Vec<Op> {
        elements
            .iter()
            .enumerate()
            .map(|(i, &element)| Op {
                id: first_id + i as u64,
                process: 0,
                node: 1,
                key: format!("set:{element}"),
                call: Call::Add {
                    element,
                    with: elements.iter().copied().filter(|&e| e != element).collect(),
                },
                invoke_ns: first_id,
                complete_ns: first_id + 1,
                outcome,
                error: None,
            })
            .collect()
    }

    #[test]
    fn an_mset_split_across_revisions_fails_even_when_its_outcome_is_unknown() {
        // Whole: both elements in revision 1 (subs 0 and 1); an indeterminate MSET that never
        // took effect; a failed one that did not either.
        let mut ops = mset(1, &[10, 11], Outcome::Ok);
        ops.extend(mset(3, &[12, 13, 14], Outcome::Info));
        ops.extend(mset(6, &[15, 16], Outcome::Fail));
        let whole = vec![ev(1, 0, "set:10", "1"), ev(1, 1, "set:11", "1")];
        let r = check(&ops, &[log(0, whole)], Some(1));
        assert_eq!(r.verdict, Verdict::True, "{:?}", r.problems);

        // Split across two revisions (acknowledged), or partly present (indeterminate).
        let split = vec![ev(1, 0, "set:10", "1"), ev(2, 0, "set:11", "1")];
        let r = check(&ops, &[log(0, split)], Some(2));
        assert_eq!(r.verdict, Verdict::False);
        assert_problem(&r, &["split", "set:11=1 at revision 2"]);
        let partial = vec![
            ev(1, 0, "set:10", "1"),
            ev(1, 1, "set:11", "1"),
            ev(2, 0, "set:12", "1"),
            ev(2, 1, "set:14", "1"),
        ];
        let r = check(&ops, &[log(0, partial)], Some(2));
        assert_eq!(r.verdict, Verdict::False);
        assert_problem(&r, &["info", "set:13=1 never"]);
    }

    #[test]
    fn a_multi_exec_of_two_registers_split_across_revisions_fails() {
        let txn = |id: u64, pairs: [(&str, &str); 2], outcome: Outcome| {
            pairs.map(|(key, value)| {
                let mut op = write(id, key, value, outcome);
                op.call = Call::Write {
                    value: value.into(),
                    with: pairs
                        .iter()
                        .filter(|(k, _)| *k != key)
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                };
                op
            })
        };
        let ops: Vec<Op> = txn(1, [("r0", "1"), ("r1", "2")], Outcome::Ok).into();
        let whole = vec![ev(1, 0, "r0", "1"), ev(1, 1, "r1", "2")];
        let r = check(&ops, &[log(0, whole)], Some(1));
        assert_eq!(r.verdict, Verdict::True, "{:?}", r.problems);
        let split = vec![ev(1, 0, "r0", "1"), ev(2, 0, "r1", "2")];
        let r = check(&ops, &[log(0, split)], Some(2));
        assert_problem(&r, &["split", "r1=2 at revision 2"]);
    }

    #[test]
    fn a_gap_is_allowed_only_where_compacted_said_so() {
        use crate::watch::Compaction;
        let ops = vec![
            write(1, "r0", "1", Outcome::Ok),
            write(2, "r0", "2", Outcome::Ok),
            write(3, "r0", "3", Outcome::Ok),
            write(4, "r0", "4", Outcome::Ok),
        ];
        let full = vec![
            ev(1, 0, "r0", "1"),
            ev(2, 0, "r0", "2"),
            ev(3, 0, "r0", "3"),
            ev(4, 0, "r0", "4"),
        ];
        let lagging = |compactions: Vec<Compaction>| WatcherLog {
            watcher: 1,
            events: vec![ev(1, 0, "r0", "1"), ev(4, 0, "r0", "4")],
            compactions,
            ..Default::default()
        };
        let told = Compaction {
            seen: 1,
            required: 1,
            oldest: 4,
        };
        // Told after revision 1 that 4 is the oldest left: 2 and 3 may be missing.
        let r = check(
            &ops,
            &[log(0, full.clone()), lagging(vec![told.clone()])],
            Some(4),
        );
        assert_eq!(r.verdict, Verdict::True, "{:?}", r.problems);
        assert_eq!(
            (r.compacted, r.compacted_revisions),
            (vec![0, 1], vec![0, 2])
        );
        // Not told, or told of another revision: a silent gap.
        for wrong in [
            vec![],
            vec![Compaction {
                oldest: 3,
                ..told.clone()
            }],
            vec![Compaction {
                seen: 0,
                ..told.clone()
            }],
        ] {
            let r = check(
                &ops,
                &[log(0, full.clone()), lagging(wrong.clone())],
                Some(4),
            );
            assert_eq!(r.verdict, Verdict::False, "{wrong:?}");
            assert_problem(&r, &["gap"]);
        }
        // A watcher that lost the last change of a revision, next to one that has it.
        let two = vec![
            ev(1, 0, "r0", "1"),
            ev(1, 1, "r1", "2"),
            ev(2, 0, "r0", "3"),
        ];
        let short = vec![ev(1, 0, "r0", "1"), ev(2, 0, "r0", "3")];
        let r = check(&[], &[log(0, two), log(1, short)], Some(2));
        assert_problem(&r, &["revision 1 with 2 and 1"]);
        // Revisions every watcher skipped: the acknowledged write in them cannot be looked
        // for, and is not called lost; the report says how many no one saw.
        let r = check(&ops, &[lagging(vec![told])], Some(4));
        assert_eq!(r.verdict, Verdict::True, "{:?}", r.problems);
        assert_eq!(r.unseen_revisions, 2);
    }
}
