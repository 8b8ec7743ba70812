//! A view of this node's Raft state for reports (`INFO`, `ROLE`, `RAFT.INFO`, `/metrics`):
//! plain values copied out of openraft's metrics, so nothing outside `raft/` names an openraft
//! type.
//!
//! Owns the translation from openraft's `RaftMetrics` and nothing else: it takes no lock and
//! sends no message to the Raft core.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use openraft::vote::RaftLeaderId;
use openraft::{Instant as _, ServerState};

use super::typ::{LogId, RaftMetrics};
use super::PeerNode;

/// This node's Raft role. Its `Debug` text is the role's name as `INFO raft` prints it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Leader,
    Follower,
    Candidate,
    Learner,
    Shutdown,
}

/// A position in the Raft log: the term of the leader that proposed the entry, and its index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogPosition {
    pub term: u64,
    pub index: u64,
}

impl LogPosition {
    /// The entry's log index.
    pub fn index(&self) -> u64 {
        self.index
    }
}

/// The membership this node has (the last one in its log, committed or not).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Members {
    nodes: BTreeMap<u64, PeerNode>,
    voters: BTreeSet<u64>,
    joint: bool,
}

impl Members {
    /// The voters' ids, in order.
    pub fn voter_ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.voters.iter().copied()
    }

    /// The learners' ids (members that are not voters), in order.
    pub fn learner_ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.nodes
            .keys()
            .copied()
            .filter(|id| !self.voters.contains(id))
    }

    /// Every member (voters and learners) with its addresses, in id order.
    pub fn nodes(&self) -> impl Iterator<Item = (&u64, &PeerNode)> {
        self.nodes.iter()
    }

    /// The addresses of member `id`.
    pub fn get_node(&self, id: &u64) -> Option<&PeerNode> {
        self.nodes.get(id)
    }

    /// Whether a membership change is half done (joint consensus: two voter sets).
    pub fn is_joint(&self) -> bool {
        self.joint
    }
}

/// This node's Raft state at one moment.
#[derive(Clone, Debug)]
pub struct Status {
    pub id: u64,
    pub state: Role,
    pub current_term: u64,
    pub current_leader: Option<u64>,
    pub last_log_index: Option<u64>,
    pub last_applied: Option<LogPosition>,
    pub local_committed: Option<LogPosition>,
    pub snapshot: Option<LogPosition>,
    pub purged: Option<LogPosition>,
    pub membership: Members,
    /// On the leader: the last entry each member is known to hold.
    pub replication: Option<BTreeMap<u64, Option<LogPosition>>>,
    /// On the leader: how long ago each member last acknowledged a heartbeat.
    pub heartbeat: Option<BTreeMap<u64, Option<Duration>>>,
}

fn position(l: &Option<LogId>) -> Option<LogPosition> {
    l.as_ref().map(|l| LogPosition {
        term: l.committed_leader_id().term(),
        index: l.index(),
    })
}

impl From<&RaftMetrics> for Status {
    fn from(m: &RaftMetrics) -> Self {
        let membership = m.membership_config.membership();
        let state = match m.state {
            ServerState::Leader => Role::Leader,
            ServerState::Follower => Role::Follower,
            ServerState::Candidate => Role::Candidate,
            ServerState::Learner => Role::Learner,
            ServerState::Shutdown => Role::Shutdown,
        };
        Status {
            id: m.id,
            state,
            current_term: m.current_term,
            current_leader: m.current_leader,
            last_log_index: m.last_log_index,
            last_applied: position(&m.last_applied),
            local_committed: position(&m.local_committed),
            snapshot: position(&m.snapshot),
            purged: position(&m.purged),
            membership: Members {
                nodes: membership.nodes().map(|(id, n)| (*id, n.clone())).collect(),
                voters: membership.voter_ids().collect(),
                joint: membership.get_joint_config().len() > 1,
            },
            replication: m
                .replication
                .as_ref()
                .map(|r| r.iter().map(|(id, l)| (*id, position(l))).collect()),
            heartbeat: m.heartbeat.as_ref().map(|h| {
                h.iter()
                    .map(|(id, t)| (*id, t.as_ref().map(|t| t.elapsed())))
                    .collect()
            }),
        }
    }
}
