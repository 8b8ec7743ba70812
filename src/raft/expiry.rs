//! The leader's expiry timer: proposes the deletion of keys whose deadline has passed.
//!
//! Only the leader decides that a key has expired (DeterministicApply: the store reads no
//! clock). Every node runs this task; it works only while its node leads. It reads the earliest
//! deadline from the state machine's deadline order (`store::Store::next_deadline`, no scan of
//! the keys), sleeps until then, and proposes `Op::ExpireDue` entries for the keys that are
//! due, earliest first. A new leader has every pending deadline in its state machine (applied
//! entries or the snapshot), so it takes over where the old one stopped.
//!
//! ```text
//! sleep until min(next deadline, IDLE_RECHECK) ─▶ leader? ─▶ due keys (≤ MAX_EXPIRE_KEYS,
//!   ≤ MAX_EXPIRE_BYTES) ─▶ RaftNode::write(ExpireDue{keys, now_ms}) ─▶ applied: one revision,
//!   an `Expired` event per key ─▶ next batch (client writes interleave between batches)
//! ```
//!
//! Invariants:
//! - **ExpiryBounded.** One entry deletes at most [`MAX_EXPIRE_KEYS`] keys and names at most
//!   [`MAX_EXPIRE_BYTES`] of key bytes (at least one key), and one entry is in flight at a
//!   time, so a mass expiry holds the apply lock for one bounded batch at a time and never
//!   holds up client writes behind one huge entry.
//! - **ExpiryIdempotent.** The store deletes a listed key only if it is still live with a
//!   deadline at or before the entry's `now_ms`; a duplicate or late entry (from an old leader,
//!   or a retry) deletes nothing it should not.
//! - **QuietWatchers** (as in `health.rs`). The timer learns of leadership from openraft's
//!   server metrics (vote, leader, membership), never from the full metrics, which change
//!   several times per write: writes alone never wake it. `INFO raft` `raft_expiry_wakeups`
//!   counts its wake-ups.
//!
//! Until its expiry entry is applied, a key whose deadline passed is still present on every
//! node (reads do not hide it). The lag, deadline to deletion, is this task's wake-up plus one
//! Raft commit, plus the follower's apply for a read on a follower; README reports it.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use tokio::sync::watch;

use super::{unix_ms, RaftNode};
use crate::store::{Op, Request};

/// The most keys one expiry entry deletes (ExpiryBounded).
pub const MAX_EXPIRE_KEYS: usize = 1000;
/// The most key bytes one expiry entry names, unless it names a single key (ExpiryBounded).
pub const MAX_EXPIRE_BYTES: usize = 1 << 20;
/// The longest the timer sleeps without looking again (a safety net against a wall clock
/// that jumps; deadlines and new leadership wake it earlier).
const IDLE_RECHECK: Duration = Duration::from_secs(1);
/// How long to wait before trying again after a failed expiry write.
const RETRY_AFTER: Duration = Duration::from_millis(50);

/// Starts the expiry timer of `node`; it ends when `shutdown` turns true.
pub fn spawn_expiry(
    node: Arc<RaftNode>,
    shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run(node, shutdown))
}

async fn run(node: Arc<RaftNode>, mut shutdown: watch::Receiver<bool>) {
    // QuietWatchers: each change of the full metrics would wake this task (and, on the
    // leader, read the deadline order under the state machine's lock) several times per write.
    let mut metrics = node.raft.server_metrics();
    let wake = node.sm.deadline_wake();
    loop {
        if *shutdown.borrow() {
            return;
        }
        node.node_metrics
            .expiry_wakeups
            .fetch_add(1, Ordering::Relaxed);
        // Leadership from the server metrics themselves: openraft publishes them before the
        // full metrics, so the full metrics could still show the old leader when this wakes
        // (and the task would then wait for the next change of leader).
        let leads = metrics.borrow_watched().current_leader == Some(node.id);
        if !leads {
            tokio::select! {
                r = metrics.changed() => if r.is_err() { return },
                _ = shutdown.changed() => return,
            }
            continue;
        }
        let now_ms = unix_ms();
        let (due, next) = {
            let st = node.sm.read();
            (
                st.store.due(now_ms, MAX_EXPIRE_KEYS),
                st.store.next_deadline(),
            )
        };
        if due.is_empty() {
            let sleep = next.map_or(IDLE_RECHECK, |at| {
                let ms = u64::try_from(at.saturating_sub(now_ms)).unwrap_or(0);
                Duration::from_millis(ms).min(IDLE_RECHECK)
            });
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = wake.notified() => {}
                r = metrics.changed() => if r.is_err() { return },
                _ = shutdown.changed() => return,
            }
            continue;
        }
        let keys = bounded(due);
        let n = keys.len();
        let req = Request {
            client: None,
            op: Op::ExpireDue { keys, now_ms },
            at_ms: 0,
        };
        match node.write(req).await {
            Ok(response) => tracing::debug!(keys = n, ?response, "expired keys"),
            Err(e) => {
                tracing::debug!(error = %e, keys = n, "expiry entry failed; retrying");
                tokio::time::sleep(RETRY_AFTER).await;
            }
        }
    }
}

/// Keeps the first keys of `due` within [`MAX_EXPIRE_BYTES`] (at least one).
fn bounded(mut due: Vec<bytes::Bytes>) -> Vec<bytes::Bytes> {
    let mut bytes = 0usize;
    let keep = due
        .iter()
        .take_while(|key| {
            bytes = bytes.saturating_add(key.len());
            bytes <= MAX_EXPIRE_BYTES
        })
        .count()
        .max(1);
    due.truncate(keep);
    due
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    #[test]
    fn batches_are_bounded_by_bytes_but_never_empty() {
        let small: Vec<Bytes> = (0..10).map(|i| Bytes::from(format!("k{i}"))).collect();
        assert_eq!(bounded(small.clone()), small);
        let big = Bytes::from(vec![b'x'; MAX_EXPIRE_BYTES / 2 + 1]);
        assert_eq!(
            bounded(vec![big.clone(), big.clone(), big.clone()]).len(),
            1
        );
        let huge = Bytes::from(vec![b'x'; MAX_EXPIRE_BYTES * 2]);
        assert_eq!(bounded(vec![huge.clone(), big]), vec![huge]);
    }
}
