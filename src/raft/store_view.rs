//! The one way the layers above `raft/` read the applied keyspace: [`RaftNode::read_store`]
//! (and [`RaftNode::read_applied`], which also gives the index it was applied to), a short look
//! at `store::Store` under the state machine's read lock, and [`RaftNode::read_store_detached`]
//! for reads whose work grows with the keyspace ([`run_detached`] for such work done after the
//! lock, on a value already copied out). None makes a read safe by itself: a caller
//! that answers a client passes its read gate first (`commands::read_gate`).
//!
//! **LongReadsOffRaft.** A read whose work grows with the keyspace or with one value (KEYS, a
//! SCAN with a large COUNT, a key's long history, the whole of a hash with many fields) never
//! runs under the state machine's lock nor on the calling
//! thread: apply takes that lock for writing, and apply runs on Raft's thread with the node's
//! heartbeats, so a long read under it (on any thread) stalls them all, and a session beside
//! Raft running it inline stalls that thread itself. Seen: `SCAN 0 COUNT 100000000` over a
//! million keys on the leader, from a session beside Raft and from one on a worker while
//! writes went on, held Raft 0.8 s and cost an election each time
//! (`tests/cluster/long_commands.rs`).

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
        run_detached(move || f(&store)).await
    }
}

/// Runs `f` on a thread of the runtime's blocking pool, off the calling thread (which may be
/// Raft's: LongReadsOffRaft): for the long part of a read that needs no lock, such as the reply
/// to `HGETALL` of a hash with millions of fields. A panic in `f` is the caller's; fails only
/// when the runtime is shutting down.
pub async fn run_detached<R, F>(f: F) -> Result<R, RaftError>
where
    R: Send + 'static,
    F: FnOnce() -> R + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => Ok(r),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(RaftError::Fatal(
            "the node is shutting down: the read was not run".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// LongReadsOffRaft: the work runs on another thread than the caller's, whose runtime (a
    /// current-thread one, as Raft's) goes on meanwhile.
    #[tokio::test(flavor = "current_thread")]
    async fn detached_work_leaves_the_calling_thread_free() {
        let caller = std::thread::current().id();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let ticker = tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            tx.send(()).unwrap();
        });
        // The detached work waits for a task of the caller's runtime: it would never finish if
        // it blocked that runtime's only thread.
        let worker = run_detached(move || {
            rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
            std::thread::current().id()
        })
        .await
        .unwrap();
        assert_ne!(worker, caller);
        ticker.await.unwrap();
    }
}
