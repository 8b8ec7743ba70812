//! The read gate's engine: the three read modes (DESIGN §4), batched ReadIndex rounds (asked
//! of the leader from a follower) and batched leader-lease checks. The rounds' state and the
//! counters `INFO reads` reports are in `read_gate.rs`.
//!
//! Owns how a read is made safe on one node; knows nothing of RESP or of the keyspace.
//!
//! | mode           | leader                                     | follower                        |
//! |----------------|--------------------------------------------|---------------------------------|
//! | `linearizable` | ReadIndex round (quorum heartbeat)         | read index asked of the leader  |
//! | `lease`        | lease check, no quorum round; if the lease | read index asked of the leader, |
//! |                | is too old, a ReadIndex round (fallback)   | fixed by its lease (no quorum   |
//! |                |                                            | round) or else by a ReadIndex   |
//! | `stale`        | what this node has applied                 | what this node has applied      |
//!
//! In every mode but `stale` the read then waits until this node has applied up to the index
//! obtained, and reads its own state machine: a follower never has the leader serve the data.
//!
//! # Batching without losing linearizability
//!
//! At most one round of each kind (ReadIndex, lease check) is in flight per node. A reader that
//! arrives while a round is in flight does not join it (that round may have fixed its read
//! index before the reader's invocation, i.e. before a write the reader must see); it joins the
//! *next* round, which starts only after the current one ends. So every round starts after the
//! invocation of every reader it serves (**ReadAfterInvocation**), and N concurrent readers cost
//! about two rounds, not N.
//!
//! ```text
//! reader A ──┐ round 1 (started by A) ────────┐
//! reader B ────── waits ──────────────────────┴─ round 2 (B, C) ──┐
//! reader C ────── waits ─────────────────────────────────────────┴─ done
//! ```
//!
//! # The lease (**LeaseBound**)
//!
//! A follower that has accepted an AppendEntries from the leader refuses to vote for anyone
//! else for openraft's leader lease, the vote-refusal window (`election_timeout_max` = 3/5 ×
//! `election_timeout_ms`: `config::ElectionTiming`) after it received it. The leader may
//! therefore answer from its own state machine, with no quorum round, while the last
//! quorum-acknowledged RPC was *sent* less than `lease = window − lease_drift_margin_ms` ago
//! (`LinearizerOption`'s `max_quorum_ack_age`; 150 − 50 = 100 ms with the defaults): no
//! other leader can have been elected since. Both ends use monotonic
//! clocks (`Instant`); the margin absorbs their rate drift. The check runs first on the metrics
//! openraft publishes (no message to the Raft core: [`RaftNode::lease_from_metrics`]), then,
//! when those cannot show a live lease, in the core (batched). When the last acknowledgement
//! is older, the lease check fails at once (no waiting) and the readers fall back to a
//! ReadIndex round (`lease_fallbacks`).
//!
//! **FollowerLeaseReads.** A follower in lease mode asks the leader for a read index fixed by
//! the leader's lease (`leader::lease_read_index`, one peer message, batched in rounds as
//! ReadIndex rounds are); the leader answers its committed index when its lease holds, so no
//! other leader can have committed anything since, or runs a ReadIndex round when it cannot
//! show that. The follower then waits until it has applied that index and reads its own
//! state: lease reads scale over every node, each costing one message to the leader and none
//! to a quorum. The lease is only ever the leader's. No lease read is served:
//! - by a leader that has not yet applied an entry of its own term (its blank entry): until
//!   then entries committed by the previous leader may be missing here;
//! - by a leader transferring leadership (openraft refuses: followers drop their lease for the
//!   transfer target; the fast path is off from before the transfer starts: TransferGuard in
//!   `health.rs`, called by `membership.rs` before each transfer request);
//! - by a leader that is not a voter of its own membership (RemovedLeaderNoLease,
//!   `leader.rs`): openraft transfers such a leader's leadership unasked, so TransferGuard
//!   cannot cover it; the fast path is off and the core refuses during the transfer.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::async_runtime::WatchReceiver;
use openraft::metrics::WaitError;
use openraft::raft::linearizable_read::LinearizerOption;
use openraft::type_config::alias::InstantOf;
use openraft::Instant as _;
use tokio::sync::oneshot;

use super::error::RaftError;
use super::leader;
use super::raft_node::RaftNode;
use super::read_gate::Lease;
use super::wire::{ForwardError, LeaseIndex, RpcRequest, RpcResponse};
use super::TypeConfig;
use crate::config::ReadMode;

impl RaftNode {
    /// The read barrier of `mode`: returns once this node may answer a read from its own
    /// state machine (see the module doc). Concurrent callers share rounds.
    pub async fn read_barrier(self: &Arc<Self>, mode: ReadMode) -> Result<(), RaftError> {
        let index = match mode {
            ReadMode::Stale => {
                if !self.in_touch() {
                    let s = &self.reads.stats;
                    s.stale_unsynced.fetch_add(1, Ordering::Relaxed);
                }
                return Ok(());
            }
            ReadMode::Linearizable => self.read_index().await?,
            ReadMode::Lease => {
                let held = if let Some(index) = self.lease_from_metrics() {
                    self.reads
                        .stats
                        .lease_fast_hits
                        .fetch_add(1, Ordering::Relaxed);
                    Lease::Held(index)
                } else if self.is_leader() {
                    let (tx, rx) = oneshot::channel();
                    if self.reads.lease_checks.join(tx) {
                        let node = self.clone();
                        self.tasks
                            .spawn(async move { node.run_lease_rounds().await });
                    }
                    rx.await.unwrap_or_else(|_| Err(stopped()))?
                } else {
                    // FollowerLeaseReads: the leader's lease fixes the index (`leader.rs`).
                    let (tx, rx) = oneshot::channel();
                    if self.reads.leader_leases.join(tx) {
                        let node = self.clone();
                        self.tasks
                            .spawn(async move { node.run_leader_lease_rounds().await });
                    }
                    let got = rx.await.unwrap_or_else(|_| Err(stopped()))?;
                    if got.by_lease {
                        Lease::Held(got.index)
                    } else {
                        Lease::Confirmed(got.index)
                    }
                };
                let s = &self.reads.stats;
                match held {
                    Lease::Held(index) => {
                        s.lease_hits.fetch_add(1, Ordering::Relaxed);
                        index
                    }
                    Lease::Confirmed(index) => {
                        s.lease_fallbacks.fetch_add(1, Ordering::Relaxed);
                        index
                    }
                    Lease::Lapsed => {
                        s.lease_fallbacks.fetch_add(1, Ordering::Relaxed);
                        self.read_index().await?
                    }
                }
            }
        };
        // ReadFloor (`early_commit.rs`): as leader, at least what this node announced.
        let index = index.max(self.early.read_floor(&self.raft.metrics().borrow_watched()));
        self.wait_applied(index).await
    }

    /// Whether this node is the leader or has heard from one within `unsynced_after`.
    pub fn in_touch(&self) -> bool {
        self.is_leader()
            || self
                .reads
                .liveness
                .since_leader_contact()
                .is_some_and(|d| d < self.reads.unsynced_after)
    }

    /// Waits until this node has applied `index` (or `write_timeout` passes).
    async fn wait_applied(&self, index: u64) -> Result<(), RaftError> {
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
            // There is a leader (it gave the index): apply is behind, e.g. a long FLUSHALL.
            Err(WaitError::Timeout(waited, _)) => Err(RaftError::ApplyBehind {
                index,
                waited_ms: waited.as_millis() as u64,
            }),
            Err(WaitError::ShuttingDown) => Err(RaftError::Fatal("raft is shutting down".into())),
        }
    }

    /// A read index obtained by a ReadIndex round that started after this call.
    async fn read_index(self: &Arc<Self>) -> Result<u64, RaftError> {
        let (tx, rx) = oneshot::channel();
        if self.reads.index.join(tx) {
            let node = self.clone();
            self.tasks
                .spawn(async move { node.run_index_rounds().await });
        }
        rx.await.unwrap_or_else(|_| Err(stopped()))
    }

    /// Runs ReadIndex rounds until nobody waits. One instance at a time (`running`).
    async fn run_index_rounds(&self) {
        while let Some(waiters) = self.reads.index.take() {
            // ReadAfterInvocation: every waiter taken here arrived before this round starts.
            let result = self.fetch_read_index().await;
            let s = &self.reads.stats;
            s.index_rounds.fetch_add(1, Ordering::Relaxed);
            s.index_reads
                .fetch_add(waiters.len() as u64, Ordering::Relaxed);
            for w in waiters {
                let _ = w.send(result.clone());
            }
        }
    }

    /// Runs lease checks until nobody waits. One instance at a time (`running`).
    async fn run_lease_rounds(&self) {
        while let Some(waiters) = self.reads.lease_checks.take() {
            // ReadAfterInvocation, as for ReadIndex rounds.
            let result = self.check_lease().await;
            self.reads
                .stats
                .lease_rounds
                .fetch_add(1, Ordering::Relaxed);
            for w in waiters {
                let _ = w.send(result.clone());
            }
        }
    }

    /// Runs rounds of read indexes fixed by the leader's lease (FollowerLeaseReads) until
    /// nobody waits. One instance at a time (`running`); ReadAfterInvocation as for ReadIndex
    /// rounds: every reader a round serves arrived before the request was sent.
    async fn run_leader_lease_rounds(&self) {
        while let Some(waiters) = self.reads.leader_leases.take() {
            let result = self.fetch_index(IndexKind::Lease).await;
            let s = &self.reads.stats;
            s.leader_lease_rounds.fetch_add(1, Ordering::Relaxed);
            for w in waiters {
                let _ = w.send(result.clone());
            }
        }
    }

    /// One ReadIndex round: the leader's read index, confirmed by a quorum (on the leader
    /// itself, or asked of the leader over the peer connection). Retries across leader changes
    /// until `write_timeout`.
    pub(super) async fn fetch_read_index(&self) -> Result<u64, RaftError> {
        self.fetch_index(IndexKind::Quorum).await.map(|l| l.index)
    }

    /// The leader's read index of `kind`, on the leader itself or asked of it over the peer
    /// connection. Retries across leader changes until `write_timeout`.
    async fn fetch_index(&self, kind: IndexKind) -> Result<LeaseIndex, RaftError> {
        let deadline = Instant::now() + self.write_timeout;
        let quorum = |index| LeaseIndex {
            index,
            by_lease: false,
        };
        loop {
            let (leader, addr) = self.wait_for_leader(deadline).await?;
            let left = deadline.saturating_duration_since(Instant::now());
            let index = if leader == self.id {
                let got = match kind {
                    IndexKind::Quorum => leader::read_index(&self.raft).await.map(quorum),
                    IndexKind::Lease => {
                        let r = &self.reads;
                        leader::lease_read_index(&self.raft, self.id, &r.liveness, r.lease).await
                    }
                };
                match got {
                    Ok(i) => Some(i),
                    Err(e) => match e {
                        ForwardError::Fatal(m) => return Err(RaftError::Fatal(m)),
                        ForwardError::NotLeader { .. } => None,
                    },
                }
            } else if !addr.is_empty() {
                let slot = self.peers.slot(leader, &addr);
                let asked = match kind {
                    IndexKind::Quorum => RpcRequest::ReadIndex,
                    IndexKind::Lease => RpcRequest::LeaseReadIndex,
                };
                match slot.call(asked, left).await {
                    Ok(RpcResponse::ReadIndex(Ok(i))) => Some(quorum(i)),
                    Ok(RpcResponse::LeaseReadIndex(Ok(l))) => Some(l),
                    // AppendedRequestsFallBack: a leader of an older version.
                    Ok(RpcResponse::Refused(_)) if kind == IndexKind::Lease => {
                        let left = deadline.saturating_duration_since(Instant::now());
                        match slot.call(RpcRequest::ReadIndex, left).await {
                            Ok(RpcResponse::ReadIndex(Ok(i))) => Some(quorum(i)),
                            _ => None,
                        }
                    }
                    _ => None,
                }
            } else {
                None
            };
            if let Some(index) = index {
                return Ok(index);
            }
            if Instant::now() >= deadline {
                return Err(RaftError::NoLeader);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The lease fast path: openraft's own lease condition, `now < last_quorum_acked +
    /// max_quorum_ack_age` (LeaseBound), evaluated on the metrics openraft publishes instead
    /// of in a message to the Raft core, plus the same guards as [`RaftNode::check_lease`].
    /// Returns the index to read at, or `None` when the metrics cannot show the lease holds
    /// (then the core decides).
    ///
    /// **LeaseReadsCommitted.** The index is this node's *committed* index (at least its
    /// applied one), as openraft's own read index is max(blank entry, committed); the caller
    /// then waits until it is applied. The applied index would not do: a write is acknowledged
    /// by the node that applies it, which may be a follower, so while the leader's apply is
    /// stalled (a snapshot encode holds the state machine) a follower can already have served
    /// an entry that the leader would still read from before.
    ///
    /// Metrics lag the core; every lag is conservative here: the published
    /// `last_quorum_acked` is never later than the core's, and a node deposed since the
    /// metrics were published is still the only leader the cluster can have had until the
    /// lease (anchored at that acknowledgement) runs out. A transfer is the one way followers
    /// give up their lease early, hence TransferGuard (`Liveness::transfer_starting`).
    fn lease_from_metrics(&self) -> Option<u64> {
        if self.reads.liveness.transfer_guarded() {
            return None;
        }
        let rx = self.raft.metrics();
        let m = rx.borrow_watched();
        leader::lease_index_on_metrics(
            &m,
            self.id,
            InstantOf::<TypeConfig>::now(),
            self.reads.lease,
        )
    }

    /// One lease check (LeaseBound): the read index if the lease holds now.
    async fn check_lease(&self) -> Result<Lease, RaftError> {
        {
            let rx = self.raft.metrics();
            let m = rx.borrow_watched();
            if let Err(e) = &m.running_state {
                return Err(RaftError::Fatal(e.to_string()));
            }
            if !leader::leads_with_own_term_applied(&m) {
                return Ok(Lease::Lapsed);
            }
        }
        // `wait_timeout` zero: a lapsed lease fails at once instead of waiting for a heartbeat.
        let option =
            LinearizerOption::new(Some(self.reads.lease), false).with_wait_timeout(Duration::ZERO);
        match self.raft.get_read_linearizer(option).await {
            Ok(lin) => Ok(Lease::Held(lin.read_log_id().index())),
            Err(openraft::errors::RaftError::Fatal(f)) => Err(RaftError::Fatal(f.to_string())),
            // QuorumNotEnough (lease too old) or ForwardToLeader (deposed, transferring).
            Err(openraft::errors::RaftError::APIError(_)) => Ok(Lease::Lapsed),
        }
    }
}

/// How a read index is fixed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum IndexKind {
    /// A ReadIndex round: the leader confirms its leadership with a quorum.
    Quorum,
    /// The leader's lease if it holds, else a ReadIndex round (FollowerLeaseReads).
    Lease,
}

fn stopped() -> RaftError {
    RaftError::Fatal("read gate stopped".into())
}
