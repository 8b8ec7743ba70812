//! The one way the layers above `raft/` read the applied keyspace: [`RaftNode::read_store`]
//! (and [`RaftNode::read_applied`], which also gives the index it was applied to), a short look at `store::Store` under the state machine's read lock. It makes no read safe by
//! itself: a caller that answers a client passes its read gate first (`commands::read_gate`).

use super::RaftNode;
use crate::store::Store;

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
}
