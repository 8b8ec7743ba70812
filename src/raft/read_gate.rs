//! The read gate's state on one node: the rounds shared between concurrent readers, the lease
//! length and the counters `INFO reads` reports. How a read is made safe with them
//! (ReadAfterInvocation, LeaseBound) is in `read.rs`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

use super::error::RaftError;
use super::health::Liveness;
use super::wire::LeaseIndex;
use crate::config::ReadMode;

/// How a lease check ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Lease {
    /// The lease holds: read at this index, no quorum round.
    Held(u64),
    /// No lease now (too old, not leader, transferring, term's first entry not applied).
    Lapsed,
    /// Asked of the leader by a follower: the leader could not show its lease, and a ReadIndex
    /// round it ran fixed this index (counted as a fallback).
    Confirmed(u64),
}

pub(super) type Waiter<T> = oneshot::Sender<Result<T, RaftError>>;

/// One kind of round, shared between concurrent readers (see the module doc).
pub(super) struct Rounds<T> {
    /// Readers waiting for the next round, and whether a round is running. A plain mutex:
    /// held only to push or take the list, never across an await.
    state: Mutex<BatchState<T>>,
}

struct BatchState<T> {
    running: bool,
    next: Vec<Waiter<T>>,
}

impl<T> Default for Rounds<T> {
    fn default() -> Self {
        Self {
            state: Mutex::new(BatchState {
                running: false,
                next: Vec::new(),
            }),
        }
    }
}

impl<T: Clone + Send + 'static> Rounds<T> {
    /// Joins the next round; returns `true` when the caller must start running rounds.
    pub(super) fn join(&self, tx: Waiter<T>) -> bool {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.next.push(tx);
        !std::mem::replace(&mut st.running, true)
    }

    /// The readers for the next round, or `None` (and not running any more) when nobody waits.
    pub(super) fn take(&self) -> Option<Vec<Waiter<T>>> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if st.next.is_empty() {
            st.running = false;
            return None;
        }
        Some(std::mem::take(&mut st.next))
    }
}

/// Counters of the read gate (INFO `# Reads`). Monotonic; relaxed ordering (statistics).
#[derive(Default)]
pub struct ReadStats {
    /// Reads served per mode (one per reading command).
    pub linearizable: AtomicU64,
    pub lease: AtomicU64,
    pub stale: AtomicU64,
    /// Stale reads served while this node was out of touch: not the leader and no
    /// AppendEntries accepted from a leader within one election timeout.
    pub stale_unsynced: AtomicU64,
    /// ReadIndex rounds run, and the barriers they served.
    pub index_rounds: AtomicU64,
    pub index_reads: AtomicU64,
    /// Lease checks run through the Raft core (each one message, no network).
    pub lease_rounds: AtomicU64,
    /// Lease hits decided from the published metrics, without a message to the Raft core.
    pub lease_fast_hits: AtomicU64,
    /// On a follower: read indexes asked of the leader's lease (FollowerLeaseReads), each
    /// round serving every lease read that waited for it.
    pub leader_lease_rounds: AtomicU64,
    /// Barriers served by the lease (this node's as leader, the leader's on a follower), and
    /// barriers that fell back to a ReadIndex round.
    pub lease_hits: AtomicU64,
    pub lease_fallbacks: AtomicU64,
}

/// The read gate's state on one node: the rounds, the lease length and the counters.
pub struct Reads {
    pub(super) index: Rounds<u64>,
    pub(super) lease_checks: Rounds<Lease>,
    /// A follower's rounds of read indexes fixed by the leader's lease (FollowerLeaseReads).
    pub(super) leader_leases: Rounds<LeaseIndex>,
    /// `max_quorum_ack_age` of a lease read (LeaseBound).
    pub lease: Duration,
    /// Beyond this long without AppendEntries a follower counts as out of touch.
    pub unsynced_after: Duration,
    pub stats: ReadStats,
    /// When this node last heard from a leader (shared with `/health`).
    pub liveness: Arc<Liveness>,
}

impl Reads {
    pub fn new(lease: Duration, unsynced_after: Duration, liveness: Arc<Liveness>) -> Self {
        Self {
            index: Rounds::default(),
            lease_checks: Rounds::default(),
            leader_leases: Rounds::default(),
            lease,
            unsynced_after,
            stats: ReadStats::default(),
            liveness,
        }
    }

    /// Counts one read served in `mode` (called once per reading command).
    pub fn count(&self, mode: ReadMode) {
        let c = match mode {
            ReadMode::Linearizable => &self.stats.linearizable,
            ReadMode::Lease => &self.stats.lease,
            ReadMode::Stale => &self.stats.stale,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_is_started_once_and_late_arrivals_wait_for_the_next() {
        let r: Rounds<u64> = Rounds::default();
        let (a, _ra) = oneshot::channel();
        let (b, _rb) = oneshot::channel();
        assert!(r.join(a), "the first reader starts the rounds");
        let first = r.take().expect("A's round");
        assert_eq!(first.len(), 1);
        assert!(
            !r.join(b),
            "B arrives while A's round runs: it must not start another"
        );
        let second = r.take().expect("B waits for the next round");
        assert_eq!(second.len(), 1);
        assert!(r.take().is_none(), "nobody left: rounds stop");
        let (c, _rc) = oneshot::channel();
        assert!(
            r.join(c),
            "after the rounds stopped, the next reader starts them again"
        );
    }
}
