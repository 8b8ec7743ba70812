//! Applying an entry whose work grows with the keyspace off Raft's thread.
//!
//! **LongAppliesOffRaft.** Apply runs on Raft's thread (`raft/runtime.rs`), with the node's
//! heartbeats and its sessions beside Raft. An entry whose apply visits more than
//! [`DETACH_ABOVE_ITEMS`] keys, fields or changes (its weight, `store/weight.rs`: `FLUSHALL`
//! of a large keyspace, a `COMPACT` dropping many changes (CompactionWeighsChanges), a `DEL`,
//! `MSET`, `HSET` or `HDEL` of many keys, pairs or fields, alone or in a transaction; or
//! scripts whose calls pass that weight as they run, ScriptsBoundedInline in
//! `store/script.rs`) is applied to an O(1) copy of the state (its maps are persistent) on a
//! thread of the blocking pool, and the result replaces the state under one brief hold of the
//! write lock; the copy it replaced is dropped off the thread too. Readers meanwhile see the
//! state before the entry, which is what its applied index says. Nothing else writes the state
//! while it runs: apply is openraft's one state machine task, and it waits for this entry
//! before the next. Seen before: `FLUSHALL` over a million keys held the `raft` thread 2.8 s
//! and the followers elected a new leader (`tests/cluster/long_commands.rs`).

use std::io;

use super::batch::apply_one;
use super::StateMachineStore;
use crate::raft::typ::LogId;
use crate::raft::{run_detached, DETACH_ABOVE_ITEMS};
use crate::store::{Request, Response, Store};

/// Whether applying `req` to `store` visits more than [`DETACH_ABOVE_ITEMS`] keys, fields or
/// changes (its weight, `store/weight.rs`; a transaction's is its ops' sum).
pub(super) fn is_long(store: &Store, req: &Request) -> bool {
    store.weight(&req.op) > DETACH_ABOVE_ITEMS
}

impl StateMachineStore {
    /// [`is_long`] of `req` against the current state; the state's lock is taken only when the
    /// weight depends on it (a flush or a compaction, alone or in a transaction), never per
    /// write. A script is not long here: it is bounded as it runs (ScriptsBoundedInline).
    pub(super) fn is_long_apply(&self, req: &Request) -> bool {
        match req.op.weight_by_arguments() {
            Some(weight) => weight > DETACH_ABOVE_ITEMS,
            None => is_long(&self.read().store, req),
        }
    }

    /// Applies the requests of the entry at `log_id` (one request, or a batch's: `batch`,
    /// answered [`Response::Batch`]): here on Raft's thread, unless one of them is long or a
    /// script among them went past its bound, then off it ([`Self::apply_detached`]).
    pub(super) async fn apply_requests(
        &self,
        log_id: LogId,
        reqs: &[Request],
        batch: bool,
        earlier_deadline: &mut bool,
    ) -> Result<Response, io::Error> {
        if !reqs.iter().any(|r| self.is_long_apply(r)) {
            if let Some(response) = self.apply_inline(log_id, reqs, batch, earlier_deadline) {
                return Ok(response);
            }
            tracing::debug!(%log_id, "a script went past its bound on the raft thread");
        }
        self.apply_detached(log_id, reqs.to_vec(), batch, earlier_deadline)
            .await
    }

    /// Applies the requests of the entry at `log_id` off Raft's thread (LongAppliesOffRaft):
    /// one request, or a batch's (`batch`, answered [`Response::Batch`], BatchAsEntries), and
    /// publishes what they changed as the inline paths do. Sets `earlier_deadline` when a
    /// request gave some key a deadline earlier than every deadline before it.
    pub(super) async fn apply_detached(
        &self,
        log_id: LogId,
        reqs: Vec<Request>,
        batch: bool,
        earlier_deadline: &mut bool,
    ) -> Result<Response, io::Error> {
        tracing::debug!(%log_id, requests = reqs.len(), "applying off the raft thread");
        let copy = self.read().store.clone();
        let (store, results, earlier) = run_detached(move || {
            let mut store = copy;
            let mut earlier = false;
            let mut results = Vec::with_capacity(reqs.len());
            for req in &reqs {
                results.push(apply_one(&mut store, req, &mut earlier));
            }
            (store, results, earlier)
        })
        .await
        .map_err(|e| io::Error::other(format!("raft entry {log_id}: {e}")))?;
        *earlier_deadline |= earlier;
        let replaced = {
            let mut st = self.state.write().unwrap_or_else(|p| p.into_inner());
            st.last_applied = Some(log_id);
            let replaced = std::mem::replace(&mut st.store, store);
            // AppliedHookBeforeReaders: still under the write lock.
            for (_, applied) in &results {
                self.run_apply_hook(applied);
            }
            self.publish_users(st.store.users(), false);
            replaced
        };
        // Freeing what only the replaced copy held can take as long as the apply did; the next
        // entry need not wait for it.
        drop(tokio::task::spawn_blocking(move || drop(replaced)));
        Ok(self.publish_and_answer(results, batch))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Op;
    use bytes::Bytes;

    fn req(op: Op) -> Request {
        Request {
            client: None,
            at_ms: 0,
            op,
        }
    }

    /// LongAppliesOffRaft: only a flush of more keys than the threshold, a delete of more, or a
    /// compaction over more revisions is long.
    #[test]
    fn long_applies_are_those_over_the_threshold() {
        let mut store = Store::new();
        for i in 0..=DETACH_ABOVE_ITEMS {
            store.apply(&req(Op::Put {
                key: Bytes::from(format!("k{i}")),
                value: Bytes::from_static(b"v"),
            }));
        }
        assert!(is_long(&store, &req(Op::Flush)));
        let authored = req(Op::Authored {
            author: Bytes::from_static(b"default"),
            op: Box::new(Op::Flush),
        });
        assert!(
            is_long(&store, &authored),
            "a session's flush, wrapped with its author"
        );
        let revision = store.revision();
        assert!(is_long(&store, &req(Op::Compact { revision })));
        assert!(!is_long(&store, &req(Op::Compact { revision: 10 })));
        let keys: Vec<Bytes> = (0..=DETACH_ABOVE_ITEMS)
            .map(|i| Bytes::from(format!("k{i}")))
            .collect();
        assert!(is_long(&store, &req(Op::Delete { keys: keys.clone() })));
        assert!(!is_long(
            &store,
            &req(Op::Delete {
                keys: keys[..10].to_vec()
            })
        ));
        assert!(!is_long(&Store::new(), &req(Op::Flush)));
    }
}
