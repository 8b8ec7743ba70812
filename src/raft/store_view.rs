//! The one way the layers above `raft/` read the applied keyspace: [`RaftNode::read_store`]
//! (and [`RaftNode::read_applied`], which also gives the index it was applied to), a short look
//! at `store::Store` under the state machine's read lock, and [`RaftNode::read_store_detached`]
//! for reads whose work grows with the keyspace. None makes a read safe by itself: a caller
//! that answers a client passes its read gate first (`commands::read_gate`).
//!
//! **LongReadsOffRaft.** A read whose work grows with the keyspace (KEYS, a SCAN with a large
//! COUNT, a key's long history) never runs under the state machine's lock nor on the calling
//! thread: apply takes that lock for writing, and apply runs on Raft's thread with the node's
//! heartbeats, so a long read under it (on any thread) stalls them all, and a session beside
//! Raft running it inline stalls that thread itself. Seen: `SCAN 0 COUNT 100000000` over a
//! million keys on the leader, from a session beside Raft and from one on a worker while
//! writes went on, held Raft 0.8 s and cost an election each time
//! (`tests/cluster/long_reads.rs`).

use super::error::RaftError;
use super::RaftNode;
use crate::store::Store;

/// Items (keys to visit, versions to read) above which a read runs detached
/// ([`RaftNode::read_store_detached`]); below it, the hop to another thread would cost more
/// than the read (about a microsecond an item).
pub const DETACH_ABOVE_ITEMS: usize = 10_000;

impl RaftNode {
    /// Runs `f` on the applied keyspace under the state machine's read lock and returns what it
    /// returns. Apply waits while `f` runs, so `f` copies out what it needs and returns.
    pub fn read_store<R>(&self, f: impl FnOnce(&Store) -> R) -> R {
        f(&self.sm.read().store)
    }

    /// As [`RaftNode::read_store`], with the index of the last entry the keyspace reflects (0
    /// before the first).
    pub fn read_applied<R>(&self, f: impl FnOnce(&Store, u64) -> R) -> R {
        let st = self.sm.read();
        f(&st.store, st.last_applied.map_or(0, |l| l.index()))
    }

    /// Runs `f` on the applied keyspace as it is now, on a thread of the runtime's blocking
    /// pool and without the state machine's lock (LongReadsOffRaft): the keyspace is cloned
    /// under the lock, in O(1) since its maps are persistent, and the lock is let go before `f`
    /// starts. Writes applied meanwhile copy the map nodes they touch once, as during a
    /// snapshot's encode. Fails only when the runtime is shutting down.
    pub async fn read_store_detached<R, F>(&self, f: F) -> Result<R, RaftError>
    where
        R: Send + 'static,
        F: FnOnce(&Store) -> R + Send + 'static,
    {
        let store = self.sm.read().store.clone();
        match tokio::task::spawn_blocking(move || f(&store)).await {
            Ok(r) => Ok(r),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(RaftError::Fatal(
                "the node is shutting down: the read was not run".into(),
            )),
        }
    }
}
