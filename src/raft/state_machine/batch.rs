//! Applying a proposal batch ([`Op::Batch`]): several clients' requests that travelled in one
//! Raft entry (`raft::batcher`).
//!
//! **BatchAsEntries.** Each request of a batch is applied exactly as if it were its own entry,
//! in order: its own dedup check and record, its own revision, its own events and keyspace
//! notifications, published as their own [`Applied`] (so a watcher sees the same stream as
//! with one entry per request). Only the entry's log id is shared. The whole batch is applied
//! under one hold of the state's lock, so a reader sees all of it or none of it, and the
//! watch stream's revision is published once.

use super::StateMachineStore;
use crate::raft::typ::LogId;
use crate::store::{Applied, Request, Response, Store};

/// Applies one request to `store` (`Store::apply_notified`) and sets `earlier_deadline` when it
/// gave some key a deadline earlier than every deadline before it (the expiry timer must then
/// be woken). Every apply path, inline or detached, goes through here.
pub(super) fn apply_one(
    store: &mut Store,
    req: &Request,
    earlier_deadline: &mut bool,
) -> (Response, Applied) {
    let before = store.next_deadline();
    let result = store.apply_notified(req);
    let next = store.next_deadline();
    *earlier_deadline |= next.is_some() && before.is_none_or(|b| next < Some(b));
    result
}

impl StateMachineStore {
    /// Applies the requests of the batch entry at `log_id` in order and answers
    /// [`Response::Batch`], one response per request. Sets `earlier_deadline` when a request
    /// gave some key a deadline earlier than every deadline before it.
    pub(super) fn apply_batch(
        &self,
        log_id: LogId,
        reqs: &[Request],
        earlier_deadline: &mut bool,
    ) -> Response {
        let mut responses = Vec::with_capacity(reqs.len());
        let mut published: Vec<Applied> = Vec::new();
        let mut changed = false;
        {
            let mut st = self.state.write().unwrap_or_else(|p| p.into_inner());
            st.last_applied = Some(log_id);
            for req in reqs {
                let (response, applied) = apply_one(&mut st.store, req, earlier_deadline);
                changed |= !applied.events.is_empty();
                // AppliedHookBeforeReaders: still under the write lock.
                self.run_apply_hook(&applied);
                if !applied.is_empty() {
                    published.push(applied);
                }
                responses.push(response);
            }
            self.publish_users(st.store.users(), false);
        }
        if changed {
            self.publish_revision();
        }
        for applied in published {
            self.publish_applied(applied);
        }
        Response::Batch(responses)
    }
}

#[cfg(test)]
#[path = "batch_test.rs"]
mod tests;
