//! The linearizable read gate's engine: batched ReadIndex.
//!
//! Owns how read barriers are shared between concurrent readers on one node; knows nothing of
//! RESP or of the keyspace.
//!
//! # Batching without losing linearizability
//!
//! At most one ReadIndex round is in flight per node. A reader that arrives while a round is
//! in flight does not join it (that round may have fixed its read index before the reader's
//! invocation, i.e. before a write the reader must see); it joins the *next* round, which
//! starts only after the current one ends. So every round starts after the invocation of every
//! reader it serves (ReadAfterInvocation), and N concurrent readers cost about two rounds, not
//! N.
//!
//! ```text
//! reader A ──┐ round 1 (started by A) ────────┐
//! reader B ────── waits ──────────────────────┴─ round 2 (B, C) ──┐
//! reader C ────── waits ─────────────────────────────────────────┴─ done
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::write::{RaftNode, WriteError};

type Waiter = oneshot::Sender<Result<u64, WriteError>>;

/// Shares ReadIndex rounds between concurrent readers (see the module doc).
#[derive(Default)]
pub struct ReadBatcher {
    /// Readers waiting for the next round, and whether a round is running. A plain mutex:
    /// held only to push or take the list, never across an await.
    state: Mutex<BatchState>,
    /// ReadIndex rounds run (INFO `raft_read_index_rounds`).
    pub rounds: AtomicU64,
    /// Reads served by those rounds (INFO `raft_read_index_reads`).
    pub reads: AtomicU64,
}

#[derive(Default)]
struct BatchState {
    running: bool,
    next: Vec<Waiter>,
}

impl ReadBatcher {
    /// Returns a read index obtained by a round that started after this call.
    pub async fn read_index(&self, node: &Arc<RaftNode>) -> Result<u64, WriteError> {
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            st.next.push(tx);
            !std::mem::replace(&mut st.running, true)
        };
        if start {
            let node = node.clone();
            tokio::spawn(async move { node.reads.run_rounds(&node).await });
        }
        rx.await
            .unwrap_or_else(|_| Err(WriteError::Fatal("read batcher stopped".into())))
    }

    /// Runs rounds until nobody waits. Only one instance runs at a time (`running`).
    async fn run_rounds(&self, node: &RaftNode) {
        loop {
            let waiters = {
                let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
                if st.next.is_empty() {
                    st.running = false;
                    return;
                }
                std::mem::take(&mut st.next)
            };
            // ReadAfterInvocation: every waiter taken here arrived before this round starts.
            let result = node.fetch_read_index().await;
            self.rounds.fetch_add(1, Ordering::Relaxed);
            self.reads
                .fetch_add(waiters.len() as u64, Ordering::Relaxed);
            for w in waiters {
                let _ = w.send(result.clone());
            }
        }
    }
}
