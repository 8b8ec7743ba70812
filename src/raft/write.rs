//! The node handle the rest of the crate uses: writes (local or forwarded to the leader) and
//! the linearizable read barrier.
//!
//! # How a write flows
//!
//! ```text
//! RaftNode::write(req{client_id, seq})
//!   ├─ this node leads ──▶ raft.client_write ──▶ committed on a majority ──▶ applied ──▶ Response
//!   ├─ another leads   ──▶ RpcRequest::ClientWrite over the peer connection ──▶ (same, there)
//!   └─ no leader       ──▶ wait for one, up to `write_timeout`, then WriteError::NoLeader
//! ```
//!
//! A retry after a lost connection or a leader change resends the same `(client_id, seq)`;
//! the store applies it at most once (ExactlyOnceApply, see `store::Store::apply`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::async_runtime::WatchReceiver;
use openraft::ReadPolicy;

use super::log_store::FlushStats;
use super::network::{PeerError, Peers};
use super::read::ReadBatcher;
use super::rpc::{forward_error, ForwardError, RpcRequest, RpcResponse};
use super::state_machine::StateMachineStore;
use super::typ::{Raft, RaftMetrics};
use crate::store::{Request, Response};

/// Why a write (or a read barrier) failed. The first word of each message is its RESP error
/// prefix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// No leader could be reached in time; the request was never accepted by one.
    #[error("TRYAGAIN no raft leader available (election in progress or quorum lost); not applied, retry")]
    NoLeader,
    /// The request reached a leader but its outcome is unknown (the leader was lost).
    #[error(
        "TRYAGAIN the leader was lost before answering; the write may or may not have been applied"
    )]
    Unknown,
    /// This node's Raft has stopped (e.g. a failed disk flush); it serves nothing more.
    #[error("ERR raft stopped on this node: {0}")]
    Fatal(String),
}

/// One node's Raft and the ways to reach its peers.
pub struct RaftNode {
    pub id: u64,
    pub raft: Raft,
    pub sm: StateMachineStore,
    pub peers: Arc<Peers>,
    pub flush_stats: Arc<FlushStats>,
    /// How long a write waits for a leader before failing with `TRYAGAIN`.
    pub write_timeout: Duration,
    /// Shares ReadIndex rounds between concurrent readers.
    pub reads: ReadBatcher,
}

impl RaftNode {
    /// The latest Raft metrics.
    pub fn metrics(&self) -> RaftMetrics {
        self.raft.metrics().borrow_watched().clone()
    }

    /// Whether this node is the leader now.
    pub fn is_leader(&self) -> bool {
        self.raft.metrics().borrow_watched().current_leader == Some(self.id)
    }

    /// The current leader's id and client address, if one is known.
    pub fn leader(&self) -> Option<(u64, String)> {
        let rx = self.raft.metrics();
        let m = rx.borrow_watched();
        let id = m.current_leader?;
        let node = m.membership_config.membership().get_node(&id)?.clone();
        Some((id, node.redis_addr))
    }

    /// Waits until a leader is known or `deadline` passes; returns its id and peer address.
    /// Reads the metrics in place: no clone of the whole `RaftMetrics` per request.
    async fn wait_for_leader(&self, deadline: Instant) -> Result<(u64, String), WriteError> {
        let mut rx = self.raft.metrics();
        loop {
            {
                let m = rx.borrow_and_update();
                if let Err(e) = &m.running_state {
                    return Err(WriteError::Fatal(e.to_string()));
                }
                if let Some(id) = m.current_leader {
                    let addr = m
                        .membership_config
                        .membership()
                        .get_node(&id)
                        .map(|n| n.raft_addr.clone())
                        .unwrap_or_default();
                    return Ok((id, addr));
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(WriteError::NoLeader);
            }
            match tokio::time::timeout(left, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(WriteError::Fatal("raft metrics closed".into())),
                Err(_) => return Err(WriteError::NoLeader),
            }
        }
    }

    /// Proposes `req` and returns the store's answer once it is committed on a majority and
    /// applied (on the leader; a forwarded write is answered by the leader).
    pub async fn write(&self, req: Request) -> Result<Response, WriteError> {
        let deadline = Instant::now() + self.write_timeout;
        // Whether a leader may already hold the request: then a failure is "unknown".
        let mut maybe_sent = false;
        loop {
            let (leader, addr) = self.wait_for_leader(deadline).await.map_err(|e| match e {
                WriteError::NoLeader if maybe_sent => WriteError::Unknown,
                e => e,
            })?;
            let left = deadline.saturating_duration_since(Instant::now());
            if leader == self.id {
                maybe_sent = true;
                match tokio::time::timeout(left, self.raft.client_write(req.clone())).await {
                    Ok(Ok(resp)) => return Ok(resp.data),
                    Ok(Err(e)) => match forward_error(&e) {
                        ForwardError::Fatal(m) => return Err(WriteError::Fatal(m)),
                        ForwardError::NotLeader { .. } => {}
                    },
                    Err(_) => return Err(WriteError::Unknown),
                }
            } else if !addr.is_empty() {
                let slot = self.peers.slot(leader, &addr);
                match slot.call(RpcRequest::ClientWrite(req.clone()), left).await {
                    Ok(RpcResponse::ClientWrite(Ok(resp))) => return Ok(resp),
                    Ok(RpcResponse::ClientWrite(Err(ForwardError::NotLeader { .. }))) => {
                        maybe_sent = true;
                    }
                    Ok(_) | Err(PeerError::Lost(_)) | Err(PeerError::Timeout(_)) => {
                        maybe_sent = true;
                    }
                    Err(PeerError::Unreachable(_)) => {}
                }
            }
            if Instant::now() >= deadline {
                return Err(if maybe_sent {
                    WriteError::Unknown
                } else {
                    WriteError::NoLeader
                });
            }
            // The leader we knew is not answering: give the election a moment.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Linearizable read barrier (ReadIndex): returns once this node has applied everything
    /// committed before the call, as confirmed by a quorum-acknowledged leader. On a follower
    /// the read index comes from the leader and the data is then read locally. Concurrent
    /// callers share rounds (`read.rs`).
    pub async fn read_barrier(self: &Arc<Self>) -> Result<(), WriteError> {
        let index = self.reads.read_index(self).await?;
        // Fast path: the state machine is usually already there.
        if self.sm.read().last_applied.map(|l| l.index()) >= Some(index) {
            return Ok(());
        }
        match self
            .raft
            .wait(Some(self.write_timeout))
            .applied_index_at_least(Some(index), "read barrier")
            .await
        {
            Ok(_) => Ok(()),
            Err(_) => Err(WriteError::NoLeader),
        }
    }

    /// One ReadIndex round: the leader's read index, confirmed by a quorum (on the leader
    /// itself, or asked of the leader over the peer connection). Retries across leader changes
    /// until `write_timeout`.
    pub(super) async fn fetch_read_index(&self) -> Result<u64, WriteError> {
        let deadline = Instant::now() + self.write_timeout;
        loop {
            let (leader, addr) = self.wait_for_leader(deadline).await?;
            let left = deadline.saturating_duration_since(Instant::now());
            let index = if leader == self.id {
                match self.raft.get_read_linearizer(ReadPolicy::ReadIndex).await {
                    Ok(lin) => Some(lin.read_log_id().index()),
                    Err(e) => match forward_error(&e) {
                        ForwardError::Fatal(m) => return Err(WriteError::Fatal(m)),
                        ForwardError::NotLeader { .. } => None,
                    },
                }
            } else if !addr.is_empty() {
                match self
                    .peers
                    .slot(leader, &addr)
                    .call(RpcRequest::ReadIndex, left)
                    .await
                {
                    Ok(RpcResponse::ReadIndex(Ok(i))) => Some(i),
                    _ => None,
                }
            } else {
                None
            };
            if let Some(index) = index {
                return Ok(index);
            }
            if Instant::now() >= deadline {
                return Err(WriteError::NoLeader);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
