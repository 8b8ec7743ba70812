//! Acknowledged writes survive (SEMANTICS.md §4): after the final heal and a kill -9 / restart
//! of every node, each register key holds a value some write could have left last.

use std::collections::BTreeMap;

use serde::Serialize;

use super::Verdict;
use crate::history::{Call, Op, Outcome};

#[derive(Clone, Debug, Serialize)]
pub struct KeyDurability {
    pub key: String,
    pub final_value: Option<String>,
    /// The values of the writes no `ok` write followed in real time (the legal final values).
    pub allowed: Vec<Option<String>>,
}

#[derive(Clone, Debug, Serialize)]
pub struct DurabilityReport {
    pub verdict: Verdict,
    /// Keys whose final value is not a legal last write.
    pub violations: Vec<KeyDurability>,
    pub keys_checked: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why_unknown: Option<String>,
}

/// A write's effect: (value, invoke, complete or +inf).
struct Effect {
    value: String,
    invoke: u64,
    complete: u64,
    acknowledged: bool,
}

/// `finals`: each register key's value read after the restart (`None` value = nil); `None`
/// when the final reads could not be made.
pub fn check(ops: &[Op], finals: Option<&BTreeMap<String, Option<String>>>) -> DurabilityReport {
    let Some(finals) = finals else {
        return DurabilityReport {
            verdict: Verdict::Unknown,
            violations: Vec::new(),
            keys_checked: 0,
            why_unknown: Some("the final reads did not complete".into()),
        };
    };
    let mut effects: BTreeMap<&str, Vec<Effect>> = BTreeMap::new();
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
        let acknowledged = op.outcome == Outcome::Ok;
        effects.entry(&op.key).or_default().push(Effect {
            value: value.clone(),
            invoke: op.invoke_ns,
            complete: if acknowledged {
                op.complete_ns
            } else {
                u64::MAX
            },
            acknowledged,
        });
    }
    let mut violations = Vec::new();
    for (key, final_value) in finals {
        let list = effects.get(key.as_str()).map(Vec::as_slice).unwrap_or(&[]);
        // A write is a legal last one unless an acknowledged write began after it completed.
        let mut allowed: Vec<Option<String>> = list
            .iter()
            .filter(|w| !list.iter().any(|o| o.acknowledged && o.invoke > w.complete))
            .map(|w| Some(w.value.clone()))
            .collect();
        if !list.iter().any(|w| w.acknowledged) {
            allowed.push(None);
        }
        if !allowed.contains(final_value) {
            violations.push(KeyDurability {
                key: key.clone(),
                final_value: final_value.clone(),
                allowed,
            });
        }
    }
    DurabilityReport {
        verdict: if violations.is_empty() {
            Verdict::True
        } else {
            Verdict::False
        },
        violations,
        keys_checked: finals.len(),
        why_unknown: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(id: u64, v: &str, a: u64, b: u64, outcome: Outcome) -> Op {
        Op {
            id,
            process: 0,
            node: 1,
            key: "k".into(),
            call: Call::Write {
                value: v.into(),
                with: Vec::new(),
            },
            invoke_ns: a,
            complete_ns: b,
            outcome,
            error: None,
        }
    }

    fn finals(v: Option<&str>) -> BTreeMap<String, Option<String>> {
        [("k".to_string(), v.map(str::to_string))]
            .into_iter()
            .collect()
    }

    #[test]
    fn table() {
        // 1 ok [0,10]; 2 ok [20,30] and 3 ok [25,35] concurrent; 4 info [40,50]; 5 fail.
        let ops = vec![
            w(0, "1", 0, 10, Outcome::Ok),
            w(1, "2", 20, 30, Outcome::Ok),
            w(2, "3", 25, 35, Outcome::Ok),
            w(3, "4", 40, 50, Outcome::Info),
            w(4, "5", 60, 70, Outcome::Fail),
        ];
        for (final_value, want) in [
            (Some("2"), Verdict::True),
            (Some("3"), Verdict::True),
            (Some("4"), Verdict::True),
            (Some("1"), Verdict::False),
            (Some("5"), Verdict::False),
            (None, Verdict::False),
        ] {
            let r = check(&ops, Some(&finals(final_value)));
            assert_eq!(r.verdict, want, "final {final_value:?}");
        }
        // Only info writes: absent is allowed.
        let r = check(&[w(0, "1", 0, 10, Outcome::Info)], Some(&finals(None)));
        assert_eq!(r.verdict, Verdict::True);
        assert_eq!(check(&ops, None).verdict, Verdict::Unknown);
    }
}
