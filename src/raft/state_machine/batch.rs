//! Applying a proposal batch ([`Op::Batch`]): several clients' requests that travelled in one
//! Raft entry (`raft::batcher`).
//!
//! **BatchAsEntries.** Each request of a batch is applied exactly as if it were its own entry,
//! in order: its own dedup check and record, its own revision, its own events and keyspace
//! notifications, published as their own [`Applied`] (so a watcher sees the same stream as
//! with one entry per request). Only the entry's log id is shared. The whole batch is applied
//! under one hold of the state's lock, so a reader sees all of it or none of it, and the
//! watch stream's revision is published once. A single request's entry takes the same path.

use super::StateMachineStore;
use crate::raft::typ::LogId;
use crate::raft::DETACH_ABOVE_ITEMS;
use crate::store::{bounded_inline, Applied, Request, Response, Store};

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
    /// Applies the requests of the entry at `log_id` in order, here on Raft's thread, and
    /// answers their responses: [`Response::Batch`] for a batch entry (`batch`), else the one
    /// request's. `None` when a script among them went past its bound (ScriptsBoundedInline,
    /// `store/script.rs`): then nothing of the entry is applied, hooked or published, and the
    /// caller applies it off the thread (LongAppliesOffRaft). Sets `earlier_deadline` when a
    /// request gave some key a deadline earlier than every deadline before it.
    pub(super) fn apply_inline(
        &self,
        log_id: LogId,
        reqs: &[Request],
        batch: bool,
        earlier_deadline: &mut bool,
    ) -> Option<Response> {
        let mut earlier = false;
        let results = {
            let mut st = self.state.write().unwrap_or_else(|p| p.into_inner());
            // A script's calls are bounded over the whole entry, not each script on its own:
            // a batch of many scripts just under the bound must not add up to a long apply.
            // The O(1) copy to go back to is taken only then, as a live copy makes every
            // write after it copy what it changes.
            let saved = reqs
                .iter()
                .any(|r| r.op.runs_script())
                .then(|| st.store.clone());
            let store = &mut st.store;
            let mut apply_all = || -> Vec<(Response, Applied)> {
                reqs.iter()
                    .map(|req| apply_one(store, req, &mut earlier))
                    .collect()
            };
            let results = match saved {
                None => apply_all(),
                Some(saved) => {
                    let (results, overran) = bounded_inline(DETACH_ABOVE_ITEMS, apply_all);
                    if overran {
                        st.store = saved;
                        return None;
                    }
                    results
                }
            };
            st.last_applied = Some(log_id);
            for (_, applied) in &results {
                // AppliedHookBeforeReaders: still under the write lock.
                self.run_apply_hook(applied);
            }
            self.publish_users(st.store.users(), false);
            results
        };
        *earlier_deadline |= earlier;
        Some(self.publish_and_answer(results, batch))
    }

    /// After an entry's requests were applied and the state's lock let go: publishes the new
    /// revision if they changed anything and what each applied (a batch's empty ones skipped,
    /// BatchAsEntries), and answers [`Response::Batch`] for a batch entry, else the one
    /// request's response. Shared by the inline and the detached paths.
    pub(super) fn publish_and_answer(
        &self,
        results: Vec<(Response, Applied)>,
        batch: bool,
    ) -> Response {
        if results.iter().any(|(_, a)| !a.events.is_empty()) {
            self.publish_revision();
        }
        let mut responses = Vec::with_capacity(results.len());
        for (response, applied) in results {
            if !batch || !applied.is_empty() {
                self.publish_applied(applied);
            }
            responses.push(response);
        }
        if batch {
            Response::Batch(responses)
        } else {
            // One request: its response (never empty; `Noop` only for form's sake).
            responses.pop().unwrap_or(Response::Noop { revision: 0 })
        }
    }
}

#[cfg(test)]
#[path = "batch_test.rs"]
mod tests;
