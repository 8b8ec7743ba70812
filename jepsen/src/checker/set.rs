//! The set check (SEMANTICS.md §4): every acknowledged add is present at the end, nothing that
//! was never attempted is.

use std::collections::BTreeSet;

use serde::Serialize;

use super::Verdict;
use crate::history::{Call, Op, Outcome};

/// What the final read found, with the cluster healed and restarted.
#[derive(Clone, Debug, Default)]
pub struct FinalSet {
    /// Attempted elements whose key exists.
    pub present: BTreeSet<u64>,
    /// `DBSIZE` minus every key the harness can account for (register keys present, attempted
    /// elements present): keys nobody wrote. Zero when all is well.
    pub unaccounted_keys: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct SetReport {
    pub verdict: Verdict,
    pub attempted: usize,
    pub acknowledged: usize,
    pub indeterminate: usize,
    /// Indeterminate adds found present.
    pub indeterminate_present: usize,
    /// Acknowledged adds missing at the end.
    pub lost: Vec<u64>,
    /// Present elements that were never attempted, or only attempted and failed.
    pub unexpected: Vec<u64>,
    pub unaccounted_keys: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why_unknown: Option<String>,
}

/// Checks the adds of `ops` against `fin` (`None`: the final read could not be made).
pub fn check(ops: &[Op], fin: Option<&FinalSet>) -> SetReport {
    let mut ok = BTreeSet::new();
    let mut info = BTreeSet::new();
    let mut failed = BTreeSet::new();
    for op in ops {
        if let Call::Add { element, .. } = op.call {
            match op.outcome {
                Outcome::Ok => ok.insert(element),
                Outcome::Info => info.insert(element),
                Outcome::Fail => failed.insert(element),
            };
        }
    }
    let attempted = ok.len() + info.len() + failed.len();
    let mut report = SetReport {
        verdict: Verdict::Unknown,
        attempted,
        acknowledged: ok.len(),
        indeterminate: info.len(),
        indeterminate_present: 0,
        lost: Vec::new(),
        unexpected: Vec::new(),
        unaccounted_keys: 0,
        why_unknown: None,
    };
    let Some(fin) = fin else {
        report.why_unknown = Some("the final read of the set did not complete".into());
        return report;
    };
    report.lost = ok.difference(&fin.present).copied().collect();
    report.unexpected = fin
        .present
        .iter()
        .filter(|e| !ok.contains(e) && !info.contains(e))
        .copied()
        .collect();
    report.indeterminate_present = info.intersection(&fin.present).count();
    report.unaccounted_keys = fin.unaccounted_keys;
    report.verdict =
        if report.lost.is_empty() && report.unexpected.is_empty() && fin.unaccounted_keys == 0 {
            Verdict::True
        } else {
            Verdict::False
        };
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(id: u64, element: u64, outcome: Outcome) -> Op {
        Op {
            id,
            process: 0,
            node: 1,
            key: format!("set:{element}"),
            call: Call::Add {
                element,
                with: Vec::new(),
            },
            invoke_ns: id * 10,
            complete_ns: id * 10 + 5,
            outcome,
            error: None,
        }
    }

    fn fin(present: &[u64], unaccounted_keys: i64) -> FinalSet {
        FinalSet {
            present: present.iter().copied().collect(),
            unaccounted_keys,
        }
    }

    #[test]
    fn table() {
        struct Case {
            name: &'static str,
            present: &'static [u64],
            unaccounted: i64,
            want_verdict: Verdict,
            want_lost: &'static [u64],
            want_unexpected: &'static [u64],
        }
        // adds: 1 ok, 2 ok, 3 info, 4 fail
        let ops = vec![
            add(0, 1, Outcome::Ok),
            add(1, 2, Outcome::Ok),
            add(2, 3, Outcome::Info),
            add(3, 4, Outcome::Fail),
        ];
        let cases = [
            Case {
                name: "acked present, info absent",
                present: &[1, 2],
                unaccounted: 0,
                want_verdict: Verdict::True,
                want_lost: &[],
                want_unexpected: &[],
            },
            Case {
                name: "info present too",
                present: &[1, 2, 3],
                unaccounted: 0,
                want_verdict: Verdict::True,
                want_lost: &[],
                want_unexpected: &[],
            },
            Case {
                name: "an acknowledged add lost",
                present: &[1, 3],
                unaccounted: 0,
                want_verdict: Verdict::False,
                want_lost: &[2],
                want_unexpected: &[],
            },
            Case {
                name: "a failed add present",
                present: &[1, 2, 4],
                unaccounted: 0,
                want_verdict: Verdict::False,
                want_lost: &[],
                want_unexpected: &[4],
            },
            Case {
                name: "a key nobody wrote",
                present: &[1, 2],
                unaccounted: 1,
                want_verdict: Verdict::False,
                want_lost: &[],
                want_unexpected: &[],
            },
        ];
        for c in cases {
            let r = check(&ops, Some(&fin(c.present, c.unaccounted)));
            assert_eq!(r.verdict, c.want_verdict, "{}", c.name);
            assert_eq!(r.lost, c.want_lost, "{}", c.name);
            assert_eq!(r.unexpected, c.want_unexpected, "{}", c.name);
            assert_eq!((r.acknowledged, r.indeterminate), (2, 1), "{}", c.name);
        }
        let r = check(&ops, None);
        assert_eq!(r.verdict, Verdict::Unknown);
        assert!(r.why_unknown.is_some());
    }
}
