//! [`RaftNode`]: the handle the rest of the crate holds on this node's Raft, with its parts
//! (state machine, peers, read gate, liveness) and what it answers about itself (status,
//! health, leader). Writes are in `write.rs`, read barriers in `read.rs`, administration in
//! `membership.rs`: each adds its own `impl RaftNode`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::async_runtime::WatchReceiver;

use super::error::{RaftError, SnapshotError};
use super::health::Liveness;
use super::log_store::{DiskFullProbe, FlushStats};
use super::peer_conn::Peers;
use super::read_gate::Reads;
use super::state_machine::StateMachineStore;
use super::status::Status;
use super::typ::{Raft, RaftMetrics};
use crate::metrics::NodeMetrics;

/// One node's Raft and the ways to reach its peers.
pub struct RaftNode {
    pub id: u64,
    pub(super) raft: Raft,
    pub sm: StateMachineStore,
    pub peers: Arc<Peers>,
    pub flush_stats: Arc<FlushStats>,
    /// Whether this node's log disk is full; client writes are refused while it is.
    pub log_disk: DiskFullProbe,
    /// How long a write waits for a leader before failing with `TRYAGAIN`.
    pub write_timeout: Duration,
    /// The read gate: rounds shared between concurrent readers, the lease, counters.
    pub reads: Reads,
    /// Counters for `/metrics` (proposals, leader changes, snapshots), shared with the state
    /// machine.
    pub node_metrics: Arc<NodeMetrics>,
    /// Leader contact and apply progress, for `/health` and `/ready` (and the read gate's
    /// `leader_in_touch`).
    pub liveness: Arc<Liveness>,
    /// This node's pub/sub channels; keyspace notifications and PUBLISH (local or forwarded
    /// by a peer) are delivered here.
    pub pubsub: Arc<crate::watch::pubsub::PubSub>,
    /// PUBLISH's per-peer forwarders (`publish.rs`).
    pub forwarders: super::Forwarders,
    /// Proposes client writes as leader, batched (`batcher.rs`).
    pub(super) batcher: super::batcher::Batcher,
    /// Sends client writes to the leader as follower, batched (`forward.rs`).
    pub(super) write_forwarders: super::forward::WriteForwarders,
    /// Early commit and the leader's read floor (`early_commit.rs`).
    pub(super) early: Arc<super::early_commit::EarlyCommit>,
    /// Where the tasks this node starts later are spawned (RaftOnItsOwnThread, `runtime.rs`).
    pub(super) tasks: super::runtime::RaftTasks,
}

impl RaftNode {
    /// The latest Raft metrics.
    pub(super) fn metrics(&self) -> RaftMetrics {
        self.raft.metrics().borrow_watched().clone()
    }

    /// This node's Raft state now, for reports.
    pub fn status(&self) -> Status {
        Status::from(&*self.raft.metrics().borrow_watched())
    }

    /// The `/health` verdict (`health.rs`); `Err` says why not.
    pub fn health(&self) -> Result<(), String> {
        self.liveness.health(&self.raft.metrics().borrow_watched())
    }

    /// The `/ready` verdict (`health.rs`); `Err` says why not.
    pub fn ready(&self) -> Result<(), String> {
        self.liveness.ready(&self.raft.metrics().borrow_watched())
    }

    /// Builds a snapshot now and returns once one covers what was applied at the call, or
    /// `timeout` passed (RAFT.SNAPSHOT).
    pub async fn snapshot_now(&self, timeout: Duration) -> Result<(), SnapshotError> {
        let target = self.metrics().last_applied.map(|l| l.index());
        self.raft
            .trigger()
            .snapshot()
            .await
            .map_err(|e| SnapshotError::Stopped(e.to_string()))?;
        self.raft
            .wait(Some(timeout))
            .metrics(
                |m| m.snapshot.as_ref().map(|l| l.index()) >= target,
                "snapshot covers the applied index",
            )
            .await
            .map_err(|e| SnapshotError::NotDone(e.to_string()))?;
        Ok(())
    }

    /// Resolves when this node's Raft has stopped on its own (a fatal error such as a failed
    /// log flush: FailStop), with the reason.
    ///
    /// QuietWatchers: it follows openraft's server metrics (vote, leader, membership), which
    /// change rarely, not the full metrics, which change several times per write: the core
    /// drops their sender when it exits, and the reason is then in the full metrics.
    pub async fn stopped(&self) -> String {
        let mut server = self.raft.server_metrics();
        loop {
            if let Err(e) = &self.raft.metrics().borrow_watched().running_state {
                return e.to_string();
            }
            if server.changed().await.is_err() {
                return match &self.raft.metrics().borrow_watched().running_state {
                    Err(e) => e.to_string(),
                    Ok(()) => "raft stopped".to_string(),
                };
            }
        }
    }

    /// Stops this node's Raft (the last step of a graceful shutdown).
    pub async fn shutdown(&self) {
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown");
        }
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

    /// Waits until the known leader (id and Redis address, `None` during an election) differs
    /// from `known`, and returns it; `None` once the node is shutting down (metrics closed).
    /// Follows the server metrics only (QuietWatchers, [`Self::stopped`]).
    pub async fn leader_change(
        &self,
        known: &Option<(u64, String)>,
    ) -> Option<Option<(u64, String)>> {
        let mut rx = self.raft.server_metrics();
        loop {
            let now = {
                let m = rx.borrow_and_update();
                m.current_leader.and_then(|id| {
                    let node = m.membership_config.membership().get_node(&id)?;
                    Some((id, node.redis_addr.clone()))
                })
            };
            if &now != known {
                return Some(now);
            }
            rx.changed().await.ok()?;
        }
    }

    /// Waits until a leader is known or `deadline` passes; returns its id and peer address.
    /// Reads the metrics in place: no clone of the whole `RaftMetrics` per request.
    pub(super) async fn wait_for_leader(
        &self,
        deadline: Instant,
    ) -> Result<(u64, String), RaftError> {
        let mut rx = self.raft.metrics();
        loop {
            {
                let m = rx.borrow_and_update();
                if let Err(e) = &m.running_state {
                    return Err(RaftError::Fatal(e.to_string()));
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
                return Err(RaftError::NoLeader);
            }
            match tokio::time::timeout(left, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(RaftError::Fatal("raft metrics closed".into())),
                Err(_) => return Err(RaftError::NoLeader),
            }
        }
    }
}
