//! Raft: openraft `=0.10.0-alpha.37` wired to redraft's storage, network and write path.
//!
//! Owns everything that knows about openraft, so a version bump touches this folder only.
//! Knows nothing of RESP: `commands/` calls [`RaftNode::write`] and [`RaftNode::read_barrier`].
//!
//! - `log_store.rs`: the Raft log and vote in their own sled database (DurableBeforeAck).
//! - `state_machine.rs`: the adapter around `store::Store`, with persisted snapshots.
//! - `network.rs`: outbound peer RPC (openraft's `RaftNetworkV2`) and write forwarding.
//! - `read.rs`: batched ReadIndex behind the linearizable read gate.
//! - `membership.rs`: RAFT.ADDNODE / REMOVENODE / TRANSFER on the leader, and their forwarding.
//! - `health.rs`: the `/health` and `/ready` verdicts and the metrics watcher behind them.
//! - `rpc.rs`: the peer wire format and the inbound RPC server.
//! - `node.rs` (crate root) assembles these into one running node.

pub mod health;
pub mod log_store;
pub mod membership;
pub mod network;
mod read;
pub mod rpc;
pub mod state_machine;
mod write;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use read::ReadBatcher;
pub use write::{RaftNode, WriteError};

use crate::store::{Request, Response};

/// A member's addresses, stored in the replicated membership so every node can reach every
/// other one and tell clients where the leader is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerNode {
    pub raft_addr: String,
    pub redis_addr: String,
}

impl fmt::Display for PeerNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "raft={} redis={}", self.raft_addr, self.redis_addr)
    }
}

openraft::declare_raft_types!(
    /// redraft's openraft type configuration.
    pub TypeConfig:
        D = Request,
        R = Response,
        NodeId = u64,
        Node = PeerNode,
);

/// Short names for openraft's generic types instantiated with [`TypeConfig`].
pub mod typ {
    use openraft::alias;

    use super::TypeConfig;

    pub type Raft = openraft::Raft<TypeConfig, super::state_machine::StateMachineStore>;
    pub type LogId = alias::LogIdOf<TypeConfig>;
    pub type Vote = alias::VoteOf<TypeConfig>;
    pub type Entry = alias::EntryOf<TypeConfig>;
    pub type SnapshotMeta = alias::SnapshotMetaOf<TypeConfig>;
    pub type Snapshot = alias::SnapshotOf<TypeConfig, Vec<u8>>;
    pub type StoredMembership = alias::StoredMembershipOf<TypeConfig>;
    pub type RaftMetrics = openraft::RaftMetrics<TypeConfig>;
}
