//! An op's weight: how many keys, fields or history changes applying it visits. What decides
//! whether an entry's apply may hold Raft's thread (LongAppliesOffRaft,
//! `raft/state_machine/long_apply.rs`) and how far the scripts applied there may go
//! (ScriptsBoundedInline, `script.rs`).
//!
//! A weight is a count, not a time: one unit is about one key's change, a field's, or one
//! change compacted away. Every op weighs at least 1, so a script's many cheap calls add up.

use super::{Op, ReadOp, Response, Store, Stored};

impl Op {
    /// The weight of applying this op as far as its arguments tell, or `None` when it depends
    /// on the state (a flush, a compaction, anywhere inside it). A script weighs 1 here: what its
    /// calls visit is counted as they run (ScriptsBoundedInline).
    pub fn weight_by_arguments(&self) -> Option<usize> {
        Some(match self {
            Op::Delete { keys } | Op::ExpireDue { keys, .. } => keys.len().max(1),
            Op::MSet { pairs, .. } | Op::HSet { pairs, .. } => pairs.len().max(1),
            Op::HDel { fields, .. } => fields.len().max(1),
            Op::Read(read) => read.weight(),
            Op::Txn { ops, .. } => ops
                .iter()
                .map(Op::weight_by_arguments)
                .sum::<Option<usize>>()?
                .max(1),
            Op::Authored { op, .. } | Op::AsUser { op, .. } => op.weight_by_arguments()?,
            Op::Flush | Op::Compact { .. } => return None,
            _ => 1,
        })
    }

    /// Whether applying this op runs a script (EVAL, EVALSHA; alone, as a user, in a
    /// transaction).
    pub fn runs_script(&self) -> bool {
        match self {
            Op::Script { .. } => true,
            Op::Txn { ops, .. } => ops.iter().any(Op::runs_script),
            Op::Authored { op, .. } | Op::AsUser { op, .. } => op.runs_script(),
            _ => false,
        }
    }
}

impl ReadOp {
    /// The keys this read visits (at least 1): `MGET` of many keys weighs many.
    pub fn weight(&self) -> usize {
        match self {
            ReadOp::Get { keys } | ReadOp::Typed { keys } => keys.len().max(1),
            ReadOp::Meta { .. } | ReadOp::Len => 1,
        }
    }
}

impl Store {
    /// The weight of applying `op` to this state: its [`Op::weight_by_arguments`], or what the
    /// state says of a flush (its live keys) or a compaction (the changes it drops from the
    /// history, CompactionWeighsChanges).
    pub fn weight(&self, op: &Op) -> usize {
        op.weight_by_arguments()
            .unwrap_or_else(|| match op {
                Op::Flush => self.len(),
                // CompactionWeighsChanges: one revision of `MSET` or a script may hold
                // thousands of changes, each a key compaction visits.
                Op::Compact { revision } => self.keyspace.changes_up_to(*revision),
                Op::Txn { ops, .. } => ops.iter().map(|op| self.weight(op)).sum(),
                Op::Authored { op, .. } | Op::AsUser { op, .. } => self.weight(op),
                _ => 1,
            })
            .max(1)
    }
}

/// The fields of the hashes a read answered: what converting its reply visits (HGETALL of a
/// large hash inside a script).
pub(super) fn reply_weight(response: &Response) -> usize {
    match response {
        Response::Stored { values, .. } => values
            .iter()
            .map(|v| match v {
                Some(Stored::Hash(h)) => h.len(),
                _ => 0,
            })
            .sum(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn put(k: &str) -> Op {
        Op::Put {
            key: Bytes::from(k.to_owned()),
            value: Bytes::from_static(b"v"),
        }
    }

    /// A transaction weighs what its ops weigh; a flush inside it is weighed by the state; a
    /// read, its keys.
    #[test]
    fn a_transaction_weighs_its_ops() {
        let mut store = Store::new();
        for i in 0..5 {
            store.apply(&super::super::Request {
                client: None,
                at_ms: 0,
                op: put(&format!("k{i}")),
            });
        }
        let del = Op::Delete {
            keys: (0..7).map(|i| Bytes::from(format!("k{i}"))).collect(),
        };
        let txn = |ops: Vec<Op>| Op::Txn {
            compares: vec![],
            ops,
            now_ms: 0,
        };
        assert_eq!(
            txn(vec![del.clone(), put("a")]).weight_by_arguments(),
            Some(8)
        );
        assert_eq!(txn(vec![]).weight_by_arguments(), Some(1));
        let flush_in_txn = Op::Authored {
            author: Bytes::from_static(b"alice"),
            op: Box::new(txn(vec![put("a"), Op::Flush])),
        };
        assert_eq!(flush_in_txn.weight_by_arguments(), None);
        assert_eq!(store.weight(&flush_in_txn), 1 + 5);
        assert_eq!(store.weight(&Op::Compact { revision: 4 }), 4);
        // One revision of many changes weighs its changes.
        store.apply(&super::super::Request {
            client: None,
            at_ms: 0,
            op: Op::MSet {
                pairs: (0..50)
                    .map(|i| (Bytes::from(format!("m{i}")), Bytes::from_static(b"v")))
                    .collect(),
                if_none_exist: false,
            },
        });
        assert_eq!(store.revision(), 6);
        assert_eq!(store.weight(&Op::Compact { revision: 6 }), 5 + 50);
        assert!(!flush_in_txn.runs_script());
        let script = Op::Script {
            body: Bytes::from_static(b"return 1"),
            keys: vec![],
            args: vec![],
            now_ms: 0,
        };
        assert!(txn(vec![put("a"), script.clone()]).runs_script());
        assert_eq!(script.weight_by_arguments(), Some(1));
        let mget = ReadOp::Get {
            keys: (0..3).map(|i| Bytes::from(format!("k{i}"))).collect(),
        };
        assert_eq!(mget.weight(), 3);
        assert_eq!(ReadOp::Len.weight(), 1);
        assert_eq!(
            txn(vec![Op::Read(mget), put("a")]).weight_by_arguments(),
            Some(4)
        );
    }
}
