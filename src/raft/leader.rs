//! Leader-side helpers, written once and used by both paths that reach them: a read index on
//! this node when it leads (`read.rs`), and the same request forwarded by a follower
//! (`rpc.rs`), by a quorum round or by the leader's lease (LeaseBound, `read.rs`). Each answers
//! in wire terms ([`ForwardError`]), so the local caller and the forwarding follower read the
//! same outcome. Client writes take the same two paths through the proposal batcher
//! (`batcher.rs`).

use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use openraft::raft::linearizable_read::LinearizerOption;
use openraft::type_config::alias::InstantOf;
use openraft::vote::RaftLeaderId;
use openraft::{Instant as _, ReadPolicy, ServerState, TryAsRef};

use super::health::Liveness;
use super::typ::{Raft, RaftMetrics};
use super::wire::{ForwardError, LeaseIndex};
use super::TypeConfig;

/// This node's read index, as leader, confirmed by a quorum (ReadIndex).
pub(super) async fn read_index(raft: &Raft) -> Result<u64, ForwardError> {
    match raft.get_read_linearizer(ReadPolicy::ReadIndex).await {
        Ok(lin) => Ok(lin.read_log_id().index()),
        Err(e) => Err(forward_error(&e)),
    }
}

/// The read index a follower's lease read waits for (**FollowerLeaseReads**): fixed by this
/// leader's lease when it holds (LeaseBound: no other leader can have been elected since the
/// last quorum acknowledgement, so this node's committed index covers every write acknowledged
/// before the follower asked), else by a ReadIndex round. The lease is checked as for the
/// leader's own lease reads: first on the published metrics, then in the core, never during a
/// transfer (TransferGuard) nor before this term's blank entry applied. The index is the
/// committed one (LeaseReadsCommitted); the follower then waits until it has applied it, so
/// lease reads are served by every node with one message to the leader and no quorum round.
pub(super) async fn lease_read_index(
    raft: &Raft,
    id: u64,
    liveness: &Liveness,
    lease: Duration,
) -> Result<LeaseIndex, ForwardError> {
    if !liveness.transfer_guarded() {
        let (fast, own_term) = {
            let rx = raft.metrics();
            let m = rx.borrow_watched();
            if let Err(e) = &m.running_state {
                return Err(ForwardError::Fatal(e.to_string()));
            }
            let now = InstantOf::<TypeConfig>::now();
            (
                lease_index_on_metrics(&m, id, now, lease),
                leads_with_own_term_applied(&m),
            )
        };
        if let Some(index) = fast {
            return Ok(LeaseIndex {
                index,
                by_lease: true,
            });
        }
        if own_term {
            // `wait_timeout` zero: a lapsed lease fails at once instead of waiting.
            let option =
                LinearizerOption::new(Some(lease), false).with_wait_timeout(Duration::ZERO);
            if let Ok(lin) = raft.get_read_linearizer(option).await {
                return Ok(LeaseIndex {
                    index: lin.read_log_id().index(),
                    by_lease: true,
                });
            }
        }
    }
    read_index(raft).await.map(|index| LeaseIndex {
        index,
        by_lease: false,
    })
}

/// The lease fast path's decision on published metrics `m` of node `id` at `now` (see
/// `RaftNode::lease_from_metrics`, `read.rs`): the index to read at (LeaseReadsCommitted), or `None`.
///
/// **RemovedLeaderNoLease.** Never for a leader that is not a voter of its own membership: once
/// the configuration without it is committed, openraft transfers its leadership on its own
/// (`removed_leader_step_down`), a transfer this node's TransferGuard never hears of, and a
/// transfer is the one way followers give up their lease early; the transferring leader also
/// stops sending heartbeats, so it does not learn of its successor. Such a leader's reads go
/// to the core, which refuses them while it transfers. (Found by the jepsen harness: a removed
/// leader answered a lease read with a value its successor had already overwritten.)
pub(super) fn lease_index_on_metrics(
    m: &RaftMetrics,
    id: u64,
    now: InstantOf<TypeConfig>,
    lease: Duration,
) -> Option<u64> {
    if !leads_with_own_term_applied(m) || m.current_leader != Some(id) {
        return None;
    }
    if !m
        .membership_config
        .membership()
        .voter_ids()
        .any(|v| v == id)
    {
        return None;
    }
    let applied = m.last_applied.as_ref()?.index();
    let committed = m.local_committed.as_ref().map_or(0, |c| c.index());
    let acked: InstantOf<TypeConfig> = **m.last_quorum_acked.as_ref()?;
    (now < acked + lease).then_some(committed.max(applied))
}

/// The guard both lease checks share: this node leads and has applied an entry of its own term
/// (its blank entry), so everything a previous leader committed is applied here.
pub(super) fn leads_with_own_term_applied(m: &RaftMetrics) -> bool {
    m.state == ServerState::Leader
        && m.last_applied
            .as_ref()
            .is_some_and(|l| l.committed_leader_id().term() == m.current_term)
}

/// Turns a raft API error into what a forwarding follower needs to know.
fn forward_error<E>(e: &openraft::errors::RaftError<TypeConfig, E>) -> ForwardError
where
    E: std::error::Error + TryAsRef<openraft::errors::ForwardToLeader<TypeConfig>>,
{
    match e {
        openraft::errors::RaftError::Fatal(f) => ForwardError::Fatal(f.to_string()),
        openraft::errors::RaftError::APIError(api) => match api.try_as_ref() {
            Some(fwd) => ForwardError::NotLeader {
                leader: fwd.leader_id,
            },
            None => ForwardError::NotLeader { leader: None },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Makes `voters` the voters of `m`'s membership.
    fn set_voters(m: &mut RaftMetrics, voters: &[u64]) {
        let nodes: std::collections::BTreeMap<u64, super::super::PeerNode> = [1u64, 2, 3]
            .iter()
            .map(|id| {
                let node = super::super::PeerNode {
                    raft_addr: format!("127.0.0.1:{}", 7000 + id),
                    redis_addr: String::new(),
                };
                (*id, node)
            })
            .collect();
        let config = vec![voters.iter().copied().collect()];
        let membership = openraft::Membership::new(config, nodes).unwrap();
        m.membership_config = std::sync::Arc::new(openraft::StoredMembership::new(
            Some(log_id(3, 1)),
            membership,
        ));
    }

    fn log_id(term: u64, index: u64) -> super::super::typ::LogId {
        use openraft::vote::RaftLeaderIdExt;
        let leader = <TypeConfig as openraft::RaftTypeConfig>::LeaderId::new_committed(term, 1);
        super::super::typ::LogId::new(leader, index)
    }

    /// Metrics of node 1 leading term 3 of voters 1-3, its blank entry applied (index 10),
    /// committed up to `committed`, its last quorum acknowledgement at `now`.
    fn leading(now: InstantOf<TypeConfig>, committed: u64) -> RaftMetrics {
        let mut m = RaftMetrics::new_initial(1);
        m.state = ServerState::Leader;
        m.current_leader = Some(1);
        m.current_term = 3;
        m.last_applied = Some(log_id(3, 10));
        m.local_committed = Some(log_id(3, committed));
        m.last_quorum_acked = Some(now.into());
        set_voters(&mut m, &[1, 2, 3]);
        m
    }

    /// LeaseReadsCommitted: while the leader's apply lags its commit (a snapshot encode holds
    /// the state machine), a lease read must wait for what is committed, which a follower may
    /// already have served; reading at the applied index would answer from before it.
    #[test]
    fn the_lease_fast_path_reads_at_the_committed_index() {
        let now = InstantOf::<TypeConfig>::now();
        let lease = Duration::from_millis(800);
        let mut m = leading(now, 12);
        assert_eq!(lease_index_on_metrics(&m, 1, now, lease), Some(12));

        // Never below what is applied (a snapshot install can put applied ahead).
        m.local_committed = Some(log_id(3, 9));
        assert_eq!(lease_index_on_metrics(&m, 1, now, lease), Some(10));

        // A lapsed lease, another leader, or the blank entry of this term not applied: none.
        assert_eq!(lease_index_on_metrics(&m, 1, now + lease, lease), None);
        assert_eq!(lease_index_on_metrics(&m, 2, now, lease), None);
        m.last_applied = Some(log_id(2, 10));
        assert_eq!(lease_index_on_metrics(&m, 1, now, lease), None);
    }

    /// RemovedLeaderNoLease: a leader whose membership no longer has it as a voter (openraft
    /// will transfer its leadership unasked) has no lease fast path, however fresh its last
    /// quorum acknowledgement.
    #[test]
    fn a_leader_removed_from_its_membership_has_no_lease_fast_path() {
        let now = InstantOf::<TypeConfig>::now();
        let lease = Duration::from_millis(800);
        let mut m = leading(now, 10);
        assert_eq!(lease_index_on_metrics(&m, 1, now, lease), Some(10));
        set_voters(&mut m, &[2, 3]);
        assert_eq!(lease_index_on_metrics(&m, 1, now, lease), None);
    }
}
