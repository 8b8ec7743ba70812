//! The commit gate: how far the committed log id is durable, and reads waiting for it.
//!
//! Owns one number, the index of the newest committed log id whose WAL record a sync has
//! covered (or that a durable snapshot file covers), shared by the log store (which raises it
//! from the sync worker), the state machine (which raises it when a snapshot is installed)
//! and the read path (whose replies wait on it). Knows nothing of the WAL's files or of the
//! keyspace.
//!
//! # What waits for the committed index's sync (**DurableReads**)
//!
//! DESIGN §2 asks for the committed id fsynced before `save_committed` returns. What that buys
//! is one property: a node that restarts re-applies up to its durable committed id before it
//! serves anything, so it never answers a read with an older state than it answered before a
//! crash, even with no leader to ask. openraft awaits `save_committed` inline on its core task
//! (`run_save_committed_and_apply`), so a sync there stalled every other step of the core; and
//! when apply waited for it instead (the first form of this gate), every write reply and every
//! watch event still waited for a second `fdatasync` on every node: a third of a write's
//! latency at one client and the difference between a watch event above and below 1 ms
//! (`benches/HISTORY.md` "What the committed-index fsync costs").
//!
//! So `save_committed` only records the id (its record goes out with the next WAL write or
//! group commit): the next group commit makes it durable, whoever queued it (an append, a
//! vote, or a waiting reader: [`CommitGate::set_sync_request`]), and
//! the WAL's sync worker raises the gate (CommittedRidesNextSync in `wal/mod.rs`): under write
//! load the committed id costs no sync of its own. Entries are applied as soon as openraft has
//! them committed; and the reply to a **read** (a command that passes the read gate,
//! `commands::read_gate`) leaves only once the gate covers the index this node had applied
//! when the reply was made ([`CommitGate::wait_durable`], called by the session before it
//! flushes). Under no write load the gate is already there and nothing waits. What does not
//! wait:
//! - a write's reply: the entry is committed, fsynced on a majority (DESIGN §4); a node that
//!   loses power before its own committed record is durable learns the entry again from the
//!   leader. That includes what a write returns from the keyspace (`INCR`'s value, `GETDEL`,
//!   an `EXEC`'s queued reads, a writing script's reads, all made at apply): after a power
//!   cut a `stale` read on the node may briefly show less, as on any lagging node;
//! - watch events (`XREAD` on `__watch__:`, keyspace notifications, tracking
//!   invalidations): a watcher names its position by revision and resumes there, so a node
//!   that comes back behind it delivers nothing twice and nothing out of order, only later.
//!
//! Invariants:
//! - **GateMonotonic.** The durable index only grows: the sync worker completes its jobs in
//!   submission order, committed records are written in increasing order, and the snapshot an
//!   install leaves on disk is at least the installed one.
//! - **GateFailStops.** A failed sync closes the gate for good: waiting readers get an error
//!   (their connection closes without the replies), and the WAL refuses every later write, so
//!   openraft stops the node (FailStop in `wal/mod.rs`); nothing waits forever.

use std::io;
use std::sync::Arc;

use tokio::sync::watch;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Durable {
    /// The index of the newest committed log id a sync has covered, `None` before any.
    index: Option<u64>,
    /// A sync failed (GateFailStops).
    failed: bool,
}

impl Durable {
    fn covers(&self, index: u64) -> bool {
        self.index.is_some_and(|d| d >= index)
    }
}

/// Asks the log for a group-commit sync (one that will cover every committed record written
/// so far).
pub type SyncRequest = Box<dyn Fn() + Send + Sync>;

/// The durable committed index and its waiters (the module doc). Cheap to clone.
#[derive(Clone)]
pub struct CommitGate(Arc<Inner>);

struct Inner {
    tx: watch::Sender<Durable>,
    /// Set by the log store: a waiter the durable index does not cover asks for a sync
    /// (CommittedRidesNextSync: no sync is queued for the committed record itself).
    request_sync: std::sync::OnceLock<SyncRequest>,
}

impl std::fmt::Debug for CommitGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("CommitGate")
            .field(&*self.0.tx.borrow())
            .finish()
    }
}

impl CommitGate {
    /// A gate already open up to `index`: the committed id found in the log at open.
    pub fn new(index: Option<u64>) -> Self {
        let (tx, _) = watch::channel(Durable {
            index,
            failed: false,
        });
        Self(Arc::new(Inner {
            tx,
            request_sync: std::sync::OnceLock::new(),
        }))
    }

    /// Sets how a waiter asks the log for a sync; a second call is ignored.
    pub fn set_sync_request(&self, request: SyncRequest) {
        let _ = self.0.request_sync.set(request);
    }

    /// Records that a sync covered the committed id at `index` (GateMonotonic: never lowers).
    pub fn advance(&self, index: Option<u64>) {
        self.0.tx.send_if_modified(|d| {
            if index > d.index {
                d.index = index;
                true
            } else {
                false
            }
        });
    }

    /// Records a failed sync: every waiter, now and later, gets an error (GateFailStops).
    pub fn fail(&self) {
        self.0.tx.send_modify(|d| d.failed = true);
    }

    /// The durable committed index.
    pub fn durable(&self) -> Option<u64> {
        self.0.tx.borrow().index
    }

    /// Returns once a sync has covered a committed id at `index` or above; an error if a sync
    /// failed first.
    pub async fn wait_durable(&self, index: u64) -> io::Result<()> {
        let now = *self.0.tx.borrow();
        if now.covers(index) {
            return Ok(());
        }
        if now.failed {
            return Err(failed());
        }
        let mut rx = self.0.tx.subscribe();
        // The record of a committed id at or past `index` is written (apply follows
        // `save_committed`); a sync now covers it, whether or not writes follow.
        if let Some(request) = self.0.request_sync.get() {
            request();
        }
        let d = *rx
            .wait_for(|d| d.failed || d.covers(index))
            .await
            .map_err(|_| io::Error::other("commit gate dropped"))?;
        if d.covers(index) {
            Ok(())
        } else {
            Err(failed())
        }
    }
}

fn failed() -> io::Error {
    io::Error::other("the raft log failed to sync the committed index; the node stops")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_waiter_waits_until_a_sync_covers_its_index() {
        let gate = CommitGate::new(Some(3));
        gate.wait_durable(3).await.unwrap();
        let waiter = tokio::spawn({
            let gate = gate.clone();
            async move { gate.wait_durable(5).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "passed before the sync covered it");
        gate.advance(Some(4));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "passed at a lower durable index");
        gate.advance(Some(6));
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("still waiting once covered")
            .unwrap()
            .unwrap();
    }

    #[test]
    fn durable_index_never_goes_back() {
        let gate = CommitGate::new(None);
        gate.advance(Some(7));
        gate.advance(Some(5));
        gate.advance(None);
        assert_eq!(gate.durable(), Some(7));
    }

    #[tokio::test]
    async fn a_failed_sync_fails_waiters_instead_of_leaving_them() {
        let gate = CommitGate::new(None);
        let waiter = tokio::spawn({
            let gate = gate.clone();
            async move { gate.wait_durable(1).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        gate.fail();
        let r = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("a waiter hung after the failure")
            .unwrap();
        assert!(r.is_err());
        assert!(gate.wait_durable(1).await.is_err(), "a later waiter passed");
    }
}
