//! Whether this node is healthy and ready, from Raft's point of view, and the watcher that
//! keeps what the verdicts need (leader changes, when the applied index last moved).
//!
//! Owns [`Liveness`]; knows nothing of HTTP (`server/http.rs` turns the verdicts into status
//! codes).
//!
//! # Verdicts
//!
//! ```text
//! healthy ⇔ Raft running ∧ a leader is known ∧ the leader is in touch
//!             (as leader: a quorum acknowledged within 2 × election timeout;
//!              otherwise: an AppendEntries from the leader within 2 × election timeout)
//!           ∧ applied recently (applied == committed, or the applied index moved within
//!             2 × election timeout)
//! ready   ⇔ healthy ∧ applied == committed (nothing committed left to apply)
//! ```
//!
//! A follower's openraft metrics keep naming the old leader until it campaigns (with pre-vote,
//! possibly longer), so "a leader is known" alone would stay true for a while after the leader
//! died; the contact time is what flips `/health` within two election timeouts.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::async_runtime::WatchReceiver;

use super::typ::{Raft, RaftMetrics};

/// How often [`watch`] samples the applied index.
pub const APPLIED_SAMPLE: Duration = Duration::from_millis(20);
use crate::metrics::NodeMetrics;

/// Time stamps the verdicts need, in milliseconds since `started` (0 = never).
#[derive(Debug)]
pub struct Liveness {
    started: Instant,
    /// The last AppendEntries (heartbeat or entries) this node accepted from a leader.
    leader_contact_ms: AtomicU64,
    /// The last time the applied index moved.
    applied_moved_ms: AtomicU64,
    /// Two election timeouts: how long the contact and apply stamps stay fresh.
    fresh: Duration,
    /// No lease fast path before this stamp (TransferGuard, `read.rs`): set before this node
    /// asks openraft to transfer leadership.
    no_fast_lease_until_ms: AtomicU64,
    /// No Vote or PreVote granted to a peer before this stamp (VoteAfterRestart).
    no_votes_until_ms: AtomicU64,
}

impl Liveness {
    pub fn new(election_timeout: Duration) -> Self {
        Self {
            started: Instant::now(),
            leader_contact_ms: AtomicU64::new(0),
            applied_moved_ms: AtomicU64::new(0),
            fresh: election_timeout * 2,
            no_fast_lease_until_ms: AtomicU64::new(0),
            no_votes_until_ms: AtomicU64::new(0),
        }
    }

    /// **VoteAfterRestart.** Called at start by a node that already belongs to a cluster:
    /// for `d` (openraft's follower lease, `election_timeout_max`: the vote-refusal window of
    /// `config::ElectionTiming`) it grants no Vote or
    /// PreVote to a peer (`rpc.rs`).
    ///
    /// A follower that accepted a leader's AppendEntries refuses other candidates for that
    /// lease, and the leader's read lease (`read.rs`, LeaseBound) relies on it. openraft keeps
    /// that promise in memory only: it restores the persisted vote with a zero lease
    /// (`storage/helper.rs`), so a node killed and restarted at once would vote for a
    /// candidate while the old leader still serves lease reads. Every acknowledgement the node
    /// sent before it stopped was sent before this process started, so refusing votes for `d`
    /// after start keeps the promise across restarts. A pristine node acknowledged nothing and
    /// needs no window.
    pub fn refuse_votes_for(&self, d: Duration) {
        let until = self.now_ms() + d.as_millis() as u64;
        self.no_votes_until_ms.fetch_max(until, Ordering::SeqCst);
    }

    /// How much longer this node refuses votes after its start (VoteAfterRestart), if at all.
    pub fn votes_refused_for(&self) -> Option<Duration> {
        let until = self.no_votes_until_ms.load(Ordering::SeqCst);
        let now = self.now_ms();
        (now < until).then(|| Duration::from_millis(until - now))
    }

    /// **TransferGuard.** Called before every request to openraft to transfer leadership (the
    /// followers drop their lease for the target at once): the read gate's lease fast path is
    /// off for `d`. Reads still go through openraft's own check, which refuses them while the
    /// transfer runs.
    pub fn transfer_starting(&self, d: Duration) {
        let until = self.now_ms() + d.as_millis() as u64;
        self.no_fast_lease_until_ms
            .fetch_max(until, Ordering::SeqCst);
    }

    /// Whether a transfer started by this node may still be running (TransferGuard).
    pub fn transfer_guarded(&self) -> bool {
        self.now_ms() < self.no_fast_lease_until_ms.load(Ordering::SeqCst)
    }

    fn now_ms(&self) -> u64 {
        // +1 so that a stamp taken in the first millisecond is not "never".
        self.started.elapsed().as_millis() as u64 + 1
    }

    /// Records that an AppendEntries from the leader was accepted now.
    pub fn leader_contact(&self) {
        self.leader_contact_ms
            .store(self.now_ms(), Ordering::Relaxed);
    }

    /// How long ago the last AppendEntries from a leader was accepted, if ever.
    pub fn since_leader_contact(&self) -> Option<Duration> {
        match self.leader_contact_ms.load(Ordering::Relaxed) {
            0 => None,
            stamp => Some(Duration::from_millis(self.now_ms().saturating_sub(stamp))),
        }
    }

    fn applied_moved(&self) {
        self.applied_moved_ms
            .store(self.now_ms(), Ordering::Relaxed);
    }

    /// Whether `stamp` (ms since start, 0 = never) is within the freshness window.
    fn is_fresh(&self, stamp: u64) -> bool {
        stamp != 0 && self.now_ms().saturating_sub(stamp) <= self.fresh.as_millis() as u64
    }

    /// The health verdict for `m` (see the module doc); `Err` says why not.
    pub fn health(&self, m: &RaftMetrics) -> Result<(), String> {
        if let Err(e) = &m.running_state {
            return Err(format!("raft stopped: {e}"));
        }
        let Some(leader) = m.current_leader else {
            return Err("no leader known".into());
        };
        if leader == m.id {
            let acked = m
                .last_quorum_acked
                .as_ref()
                .map(|t| openraft::Instant::elapsed(&**t) <= self.fresh)
                .unwrap_or(false);
            // A single-voter cluster is its own quorum.
            let alone = m.membership_config.membership().voter_ids().count() == 1;
            if !acked && !alone {
                return Err(format!(
                    "leader without a quorum acknowledgement in the last {:?}",
                    self.fresh
                ));
            }
        } else if !self.is_fresh(self.leader_contact_ms.load(Ordering::Relaxed)) {
            return Err(format!(
                "no contact from leader {leader} in the last {:?}",
                self.fresh
            ));
        }
        let applied = m.last_applied.as_ref().map(|l| l.index());
        let committed = m.local_committed.as_ref().map(|l| l.index());
        if applied < committed && !self.is_fresh(self.applied_moved_ms.load(Ordering::Relaxed)) {
            return Err(format!(
                "applied index {} behind committed {} and not moving",
                applied.unwrap_or(0),
                committed.unwrap_or(0)
            ));
        }
        Ok(())
    }

    /// The readiness verdict for `m` (see the module doc); `Err` says why not.
    pub fn ready(&self, m: &RaftMetrics) -> Result<(), String> {
        self.health(m)?;
        let applied = m.last_applied.as_ref().map(|l| l.index());
        let committed = m.local_committed.as_ref().map(|l| l.index());
        if applied < committed {
            return Err(format!(
                "catching up: applied {} of {} committed",
                applied.unwrap_or(0),
                committed.unwrap_or(0)
            ));
        }
        Ok(())
    }
}

/// Follows `raft` until Raft stops: counts leader changes and stamps when the applied index
/// moves.
///
/// QuietWatchers: openraft publishes its full metrics several times per write; a task woken by
/// each costs a thread hand-off per publication on every node. Leader changes come from the
/// server metrics (which change with the vote, the leader or the membership only), and the
/// applied index is sampled every [`APPLIED_SAMPLE`]: the stamp is late by at most that, far
/// below the two election timeouts it is compared with.
pub async fn watch(raft: Raft, liveness: Arc<Liveness>, metrics: Arc<NodeMetrics>) {
    let mut server = raft.server_metrics();
    let mut leader = server.borrow_watched().current_leader;
    let mut applied = raft
        .metrics()
        .borrow_watched()
        .last_applied
        .as_ref()
        .map(|l| l.index());
    let mut tick = tokio::time::interval(APPLIED_SAMPLE);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            changed = server.changed() => {
                if changed.is_err() {
                    return;
                }
                let now = server.borrow_watched().current_leader;
                if now != leader {
                    if now.is_some() {
                        metrics.leader_changes.fetch_add(1, Ordering::Relaxed);
                    }
                    leader = now;
                }
            }
            _ = tick.tick() => {
                let m = raft.metrics();
                let m = m.borrow_watched();
                let now_applied = m.last_applied.as_ref().map(|l| l.index());
                if now_applied != applied {
                    applied = now_applied;
                    liveness.applied_moved();
                }
                if m.running_state.is_err() {
                    return;
                }
            }
        }
    }
}
