//! Cluster administration on the leader: add a node (learner, then voter), remove a node, and
//! transfer leadership; and the forwarding that lets any node accept these requests.
//!
//! Owns the rules of a membership change; knows nothing of RESP (`commands/cluster.rs` parses
//! and answers `RAFT.*`). Errors are texts whose first word is their RESP prefix.
//!
//! # How a node is added
//!
//! ```text
//! RAFT.ADDNODE id raft redis (any node) ─▶ forwarded to the leader (RpcRequest::Admin)
//!   ─▶ add_learner(id, blocking=false)            membership {voters} + learner id, committed
//!   ─▶ wait until the learner's matched index ≥ the leader's last index at that point
//!   ─▶ change_membership(AddVoterIds{id})         joint config, then uniform: id is a voter
//!   ─▶ reply
//! ```
//!
//! The membership (with every node's addresses) lives in the Raft log and snapshots, so it
//! persists across restarts and every node's address book is the membership's
//! (`NetworkFactory::new_client` receives the node from it), never only `cluster.toml`.
//!
//! # Invariants
//!
//! - **UniqueAddresses.** No two members share a `raft_addr` or a `redis_addr`: an ADDNODE that
//!   would is refused before anything is proposed.
//! - **KeepAVoter.** A REMOVENODE that would leave no voter is refused.
//! - **IdempotentAdd.** Adding a node that is already a voter with the same addresses succeeds
//!   without proposing anything, so a joining node may retry its request.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use openraft::async_runtime::WatchReceiver;
use openraft::errors::{ChangeMembershipError, ClientWriteError};
use openraft::ChangeMembers;

use super::error::{AdminError, AdminResult};
use super::health::Liveness;
use super::peer_conn::PeerError;
use super::typ::{Raft, RaftMetrics};
pub use super::wire::AdminRequest;
use super::wire::{RpcRequest, RpcResponse};
use super::{PeerNode, RaftNode, TypeConfig};

/// How long a new learner may take to catch up before RAFT.ADDNODE gives up.
pub const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(120);

/// How far behind the leader's last index a learner may be and still be promoted. The leader
/// keeps appending under load; a few entries of lag are replicated within a heartbeat.
const PROMOTE_LAG: u64 = 64;

/// Timing the administration requests follow (from `[raft]`).
#[derive(Clone, Copy, Debug)]
pub struct AdminTiming {
    pub heartbeat: Duration,
    pub election_timeout: Duration,
}

impl AdminTiming {
    pub fn of(raft: &Raft) -> Self {
        let c = raft.config();
        Self {
            heartbeat: Duration::from_millis(c.heartbeat_interval),
            // `[raft] election_timeout_ms` (`config::ElectionTiming`: min + max).
            election_timeout: Duration::from_millis(
                c.election_timeout_min + c.election_timeout_max,
            ),
        }
    }
}

/// Whether this node may serve an admin request: it leads, and (**RemovedLeaderServesNoChange**)
/// it is still a voter of its own newest membership. A leader that removed itself stays leader
/// until that change commits and it steps down; a change it appended meanwhile would break
/// openraft's rule that only a leader in the membership appends one (a `debug_assert` in
/// `append_membership`, seen as a panic when a second RAFT.REMOVENODE reached it). It answers
/// NotLeader, which the caller retries until the next leader serves it.
fn leader_check(m: &RaftMetrics) -> Result<(), AdminError> {
    if m.current_leader != Some(m.id) {
        return Err(AdminError::NotLeader {
            leader: m.current_leader,
        });
    }
    if !m
        .membership_config
        .membership()
        .voter_ids()
        .any(|v| v == m.id)
    {
        return Err(AdminError::NotLeader { leader: None });
    }
    Ok(())
}

fn metrics(raft: &Raft) -> RaftMetrics {
    raft.metrics().borrow_watched().clone()
}

/// Serves `req` on this node, which must be the leader.
pub async fn serve_local(raft: &Raft, liveness: &Liveness, req: AdminRequest) -> AdminResult {
    match req {
        AdminRequest::AddNode { id, node } => add_node(raft, id, node).await,
        AdminRequest::RemoveNode { id } => remove_node(raft, id).await,
        AdminRequest::Transfer { to } => transfer(raft, liveness, to).await,
    }
}

/// Checks UniqueAddresses and IdempotentAdd. Returns whether `id` is already a voter with these
/// addresses (nothing to do).
fn check_add(m: &RaftMetrics, id: u64, node: &PeerNode) -> Result<bool, AdminError> {
    let membership = m.membership_config.membership();
    if let Some(existing) = membership.get_node(&id) {
        if existing != node {
            return Err(AdminError::Refused(format!(
                "node {id} is already a member ({existing}); RAFT.REMOVENODE {id} first to \
                 change its addresses"
            )));
        }
        if membership.voter_ids().any(|v| v == id) {
            return Ok(true);
        }
    }
    for (other, n) in membership.nodes() {
        if *other == id {
            continue;
        }
        if n.raft_addr == node.raft_addr || n.redis_addr == node.redis_addr {
            return Err(AdminError::Refused(format!(
                "node {other} already uses these addresses ({n})"
            )));
        }
    }
    Ok(false)
}

async fn add_node(raft: &Raft, id: u64, node: PeerNode) -> AdminResult {
    if id == 0 {
        return Err(AdminError::Refused("node id must be non-zero".into()));
    }
    let m = metrics(raft);
    leader_check(&m)?;
    if check_add(&m, id, &node)? {
        return Ok(m.membership_config.log_id().map_or(0, |l| l.index()));
    }
    tracing::info!(id, %node, "adding node as a learner");
    let added = raft
        .add_learner(id, node.clone(), false)
        .await
        .map_err(|e| write_error("RAFT.ADDNODE (add learner)", e))?;
    let target = added.log_id.index();

    // Wait until the learner has caught up with what the leader had when it was added.
    let caught_up = raft
        .wait(Some(CATCH_UP_TIMEOUT))
        .metrics(
            |m| {
                m.current_leader != Some(m.id)
                    || m.replication
                        .as_ref()
                        .and_then(|r| r.get(&id))
                        .and_then(|l| l.as_ref())
                        .is_some_and(|l| {
                            l.index() >= target
                                && m.last_log_index.unwrap_or(0) <= l.index() + PROMOTE_LAG
                        })
            },
            "new learner caught up",
        )
        .await;
    match caught_up {
        Ok(m) if m.current_leader == Some(m.id) => {}
        Ok(_) => {
            return Err(AdminError::Incomplete(format!(
                "leadership changed while node {id} was catching up; it is a learner now, \
                 send RAFT.ADDNODE again"
            )))
        }
        Err(_) => {
            return Err(AdminError::Incomplete(format!(
                "node {id} did not catch up within {CATCH_UP_TIMEOUT:?} (is it running at \
                 {}?); it stays a learner until RAFT.REMOVENODE {id}",
                node.raft_addr
            )))
        }
    }
    tracing::info!(id, "learner caught up; promoting it to voter");
    let promoted = raft
        .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false)
        .await
        .map_err(|e| write_error("RAFT.ADDNODE (promote)", e))?;
    tracing::info!(id, log_id = %promoted.log_id, "node is a voter");
    Ok(promoted.log_id.index())
}

async fn remove_node(raft: &Raft, id: u64) -> AdminResult {
    let m = metrics(raft);
    leader_check(&m)?;
    let membership = m.membership_config.membership();
    if membership.get_node(&id).is_none() {
        return Err(AdminError::Refused(format!("node {id} is not a member")));
    }
    let voters: BTreeSet<u64> = membership.voter_ids().collect();
    let change = if voters.contains(&id) {
        if voters.len() == 1 {
            return Err(AdminError::Refused(format!(
                "node {id} is the only voter; a cluster needs at least one"
            )));
        }
        ChangeMembers::RemoveVoters(BTreeSet::from([id]))
    } else {
        ChangeMembers::RemoveNodes(BTreeSet::from([id]))
    };
    tracing::info!(id, "removing node");
    let removed = raft
        .change_membership(change, false)
        .await
        .map_err(|e| write_error("RAFT.REMOVENODE", e))?;
    tracing::info!(id, log_id = %removed.log_id, "node removed");
    Ok(removed.log_id.index())
}

/// The voter other than this node with the highest matched index, the fastest to take over.
fn best_target(m: &RaftMetrics) -> Option<u64> {
    let voters: Vec<u64> = m.membership_config.membership().voter_ids().collect();
    let repl = m.replication.as_ref()?;
    voters
        .into_iter()
        .filter(|v| *v != m.id)
        .max_by_key(|v| repl.get(v).cloned().flatten().map(|l| l.index()))
}

async fn transfer(raft: &Raft, liveness: &Liveness, to: Option<u64>) -> AdminResult {
    let m = metrics(raft);
    leader_check(&m)?;
    let target = match to {
        Some(t) if t == m.id => return Ok(t),
        Some(t) => {
            if !m.membership_config.membership().voter_ids().any(|v| v == t) {
                return Err(AdminError::Refused(format!(
                    "node {t} is not a voter; leadership goes only to a voter"
                )));
            }
            t
        }
        None => best_target(&m).ok_or_else(|| {
            AdminError::Refused("no other voter to transfer leadership to".into())
        })?,
    };
    let timing = AdminTiming::of(raft);
    let deadline = Instant::now() + timing.election_timeout * 4;
    tracing::info!(target, "transferring leadership");
    // openraft broadcasts the transfer once; the target takes over only if its log already
    // matches the leader's, else ignores it. The leader proposes nothing more meanwhile, so a
    // repeat a heartbeat later finds the target caught up.
    loop {
        // TransferGuard: no lease fast path from before the followers drop their lease.
        liveness.transfer_starting(timing.election_timeout * 4);
        raft.trigger()
            .transfer_leader(target)
            .await
            .map_err(|e| AdminError::Incomplete(format!("raft stopped: {e}")))?;
        let wait = raft
            .wait(Some(timing.heartbeat * 2))
            .metrics(
                |m| m.current_leader.is_some_and(|l| l != m.id),
                "leadership moved",
            )
            .await;
        if let Ok(m) = wait {
            let leader = m.current_leader.unwrap_or(target);
            tracing::info!(leader, "leadership transferred");
            return Ok(leader);
        }
        let m = metrics(raft);
        if m.current_leader != Some(m.id) && m.current_leader.is_some() {
            return Ok(m.current_leader.unwrap_or(target));
        }
        if Instant::now() >= deadline {
            return Err(AdminError::Incomplete(format!(
                "leadership did not move to node {target} within {:?}",
                timing.election_timeout * 4
            )));
        }
        if m.current_leader != Some(m.id) {
            // Stepped down, no new leader yet: wait for the election rather than re-trigger.
            continue;
        }
    }
}

/// Turns a failed `add_learner`/`change_membership` into an [`AdminError`].
fn write_error(
    what: &str,
    e: openraft::errors::RaftError<TypeConfig, ClientWriteError<TypeConfig>>,
) -> AdminError {
    use openraft::errors::RaftError;
    match e {
        RaftError::Fatal(f) => AdminError::Incomplete(format!("{what}: raft stopped: {f}")),
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => AdminError::NotLeader {
            leader: f.leader_id,
        },
        RaftError::APIError(ClientWriteError::LogEntryDiscarded(_)) => AdminError::Incomplete(
            format!("{what}: leadership changed before the change committed; check RAFT.INFO"),
        ),
        RaftError::APIError(ClientWriteError::ChangeMembershipError(
            ChangeMembershipError::InProgress(p),
        )) => AdminError::Busy(format!("{what}: {p}")),
        // openraft's change_membership checks that the membership it read is still the last
        // one when its change reaches the core; another change in between fails that check.
        // redraft attaches no precondition of its own, so this is always that race: retried.
        RaftError::APIError(ClientWriteError::PreconditionFailed(p)) => {
            AdminError::Busy(format!("{what}: {p}"))
        }
        RaftError::APIError(api) => AdminError::Refused(format!("{what}: {api}")),
    }
}

impl RaftNode {
    /// Serves `req` on the leader: here if this node leads, else forwarded to the leader over
    /// the peer connection. Retries across a leader change until `deadline`.
    pub async fn admin(&self, req: AdminRequest, deadline: Duration) -> AdminResult {
        let deadline = Instant::now() + deadline;
        loop {
            let m = self.metrics();
            let result = match m.current_leader {
                Some(l) if l == self.id => {
                    serve_local(&self.raft, &self.liveness, req.clone()).await
                }
                Some(l) => match m.membership_config.membership().get_node(&l).cloned() {
                    Some(node) => {
                        let left = deadline.saturating_duration_since(Instant::now());
                        match self
                            .peers
                            .slot(l, &node.raft_addr)
                            .call(RpcRequest::Admin(req.clone()), left)
                            .await
                        {
                            Ok(RpcResponse::Admin(r)) => r,
                            Ok(other) => Err(AdminError::Incomplete(format!(
                                "leader {l} answered {other:?}"
                            ))),
                            Err(PeerError::Unreachable(_)) => {
                                Err(AdminError::NotLeader { leader: Some(l) })
                            }
                            Err(e) => Err(AdminError::Incomplete(format!(
                                "lost the leader {l} while it served the request: {e}"
                            ))),
                        }
                    }
                    None => Err(AdminError::NotLeader { leader: None }),
                },
                None => Err(AdminError::NotLeader { leader: None }),
            };
            match result {
                Err(AdminError::NotLeader { .. } | AdminError::Busy(_))
                    if Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                other => return other,
            }
        }
    }

    /// The cluster's members as the replicated membership has them: id → (addresses, voter?).
    pub fn members(&self) -> BTreeMap<u64, (PeerNode, bool)> {
        let m = self.metrics();
        let membership = m.membership_config.membership();
        let voters: BTreeSet<u64> = membership.voter_ids().collect();
        membership
            .nodes()
            .map(|(id, n)| (*id, (n.clone(), voters.contains(id))))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (t41 flaked in CI): two nodes joining at once — the second RAFT.ADDNODE met
    /// the first one's change still committing, and was refused for good ("already undergoing
    /// a configuration change"), so `--join` exited. It is a retryable `Busy` now.
    #[test]
    fn a_change_in_progress_is_busy_and_retried_not_refused() {
        let e = openraft::errors::RaftError::APIError(ClientWriteError::ChangeMembershipError(
            ChangeMembershipError::InProgress(openraft::errors::InProgress {
                committed: None,
                membership_log_id: None,
            }),
        ));
        let got = write_error("RAFT.ADDNODE (promote)", e);
        assert!(matches!(got, AdminError::Busy(_)), "{got:?}");
    }

    /// RemovedLeaderServesNoChange: a leader that is no longer a voter of its newest
    /// membership (it removed itself and has not stepped down yet) serves no admin request;
    /// a leader that is a voter does.
    #[test]
    fn a_leader_that_removed_itself_serves_no_membership_change() {
        let metrics = |voters: &[u64]| {
            let mut m = RaftMetrics::new_initial(5);
            m.current_leader = Some(5);
            let nodes: BTreeMap<u64, PeerNode> =
                (1..=5).map(|id| (id, PeerNode::default())).collect();
            let config = vec![voters.iter().copied().collect::<BTreeSet<u64>>()];
            let membership = openraft::Membership::new(config, nodes).unwrap();
            m.membership_config =
                std::sync::Arc::new(openraft::StoredMembership::new(None, membership));
            m
        };
        assert!(leader_check(&metrics(&[1, 2, 3, 4, 5])).is_ok());
        let got = leader_check(&metrics(&[1, 2, 3, 4]));
        assert!(
            matches!(got, Err(AdminError::NotLeader { leader: None })),
            "{got:?}"
        );
        let mut follower = metrics(&[1, 2, 3, 4, 5]);
        follower.current_leader = Some(2);
        assert!(matches!(
            leader_check(&follower),
            Err(AdminError::NotLeader { leader: Some(2) })
        ));
    }

    /// Regression (grow-to-five under load flaked): node 5's promote met node 4's change
    /// committed between openraft reading the membership and checking it ("last membership log
    /// id mismatch"), and was refused, so `--join` exited. It is a retryable `Busy` now.
    #[test]
    fn a_membership_that_moved_under_the_change_is_busy_and_retried() {
        let e = openraft::errors::RaftError::APIError(ClientWriteError::PreconditionFailed(
            openraft::errors::PreconditionFailed::LastMembershipLogIdMismatch {
                expected: None,
                actual: None,
            },
        ));
        let got = write_error("RAFT.ADDNODE (promote)", e);
        assert!(matches!(got, AdminError::Busy(_)), "{got:?}");
    }
}
