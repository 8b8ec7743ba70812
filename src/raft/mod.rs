//! Raft: openraft `=0.10.0-alpha.37` wired to redraft's storage, network and write path.
//!
//! Owns everything that knows about openraft, so a version bump touches this folder only.
//! Knows nothing of RESP: `commands/` calls [`RaftNode::write`] and [`RaftNode::read_barrier`].
//!
//! - `wal/`: the write-ahead log: segmented, checksummed, fdatasynced files holding the Raft
//!   log, vote, committed id and purge point (DurableBeforeAck, FailStop, SpareAhead).
//! - `log_store.rs`: openraft's `RaftLogStorage` over the WAL.
//! - `codec.rs`: the format-version byte + postcard encoding of every stored record.
//! - `state_machine/`: the adapter around `store::Store` (`mod.rs`), the snapshot file
//!   (`file.rs`) and snapshot building (`build.rs`).
//! - `peer_conn.rs`: outbound peer connections (multiplexed, NoStaleConn), shared by Raft's
//!   RPCs and write forwarding; `network.rs`: openraft's `RaftNetworkV2` over them, with
//!   AppendEntries pipelined (`pipeline.rs`).
//! - `raft_node.rs`: [`RaftNode`], the node handle (status, health, leader); `write.rs` adds
//!   client writes to it, `read.rs` read barriers, `membership.rs` administration.
//! - `read.rs`: batched ReadIndex and lease checks behind the read gate; `read_gate.rs`: its
//!   state (rounds, counters).
//! - `expiry.rs`: the leader's expiry timer, which proposes the deletion of keys whose deadline
//!   has passed.
//! - `compaction.rs`: the leader's automatic compaction (`[store] history_*`).
//! - `snapshot_trigger.rs`: a snapshot every `snapshot_every` revisions (SnapshotEveryRevisions).
//! - `publish.rs`: PUBLISH forwarded to every peer (cluster-wide pub/sub).
//! - `membership.rs`: RAFT.ADDNODE / REMOVENODE / TRANSFER on the leader, and their forwarding.
//! - `health.rs`: the `/health` and `/ready` verdicts and the metrics watcher behind them.
//! - `wire.rs`: the peer wire format (messages, framing, protocol version).
//! - `handshake.rs`: the mutual peer handshake (MutualPeerAuth).
//! - `rpc.rs`: the inbound peer RPC server.
//! - `leader.rs`: leader-side helpers (local write, read index, forward errors), shared by the
//!   local and the forwarded path.
//! - `start.rs`: node start-up and safe initialisation ([`start`]).
//! - `status.rs`: a plain view of the Raft metrics for reports.
//! - `error.rs`: the errors handed to the rest of the crate, without RESP.
//! - `snapshot_transfer.rs`: receiving a snapshot sent in chunks, checked before install.
//! - `node.rs` (crate root) calls [`start`] and adds the client-facing listeners.

pub mod append_encoded;
mod batcher;
mod codec;
pub mod commit_gate;
mod compaction;
mod early_commit;
pub mod encoded_request;
mod error;
mod expiry;
mod forward;
pub mod handshake;
pub mod health;
mod leader;
pub mod log_store;
pub mod membership;
pub mod network;
pub mod peer_conn;
mod pipeline;
mod publish;
mod raft_node;
pub mod read;
mod read_gate;
pub mod rpc;
pub mod runtime;
pub mod snapshot_transfer;
mod snapshot_trigger;
mod start;
pub mod state_machine;
pub mod status;
mod store_view;
pub mod wal;
pub mod wire;
mod write;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use compaction::spawn_compaction;
pub use encoded_request::EncodedRequest;
pub use error::{AdminError, AdminResult, RaftError, SnapshotError};
pub use expiry::spawn_expiry;
pub use publish::Forwarders;
pub use raft_node::RaftNode;
pub use read_gate::{ReadStats, Reads};
pub use snapshot_trigger::spawn_snapshot_trigger;
pub use start::{start, Started};
pub use store_view::{run_detached, DETACH_ABOVE_ITEMS};
pub use wire::MAX_ENTRY_BYTES;

use crate::store::{Request, Response};

/// The log filter when neither `--log` nor `RUST_LOG` sets one: openraft's own logging only
/// from `warn` up.
pub const DEFAULT_LOG_FILTER: &str = "info,openraft=warn";

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
        D = EncodedRequest,
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
    pub type Snapshot = alias::SnapshotOf<TypeConfig, super::state_machine::SnapshotFile>;
    pub type StoredMembership = alias::StoredMembershipOf<TypeConfig>;
    pub type RaftMetrics = openraft::RaftMetrics<TypeConfig>;
}

/// Returns this node's wall clock in unix milliseconds: the clock deadlines are measured on.
pub fn unix_ms() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

/// Stamps this node's clock into `req` right before this node, as leader, proposes it: a
/// relative TTL becomes an absolute deadline and the entry carries the time it was proposed
/// at (`Request::at_ms`, which the dedup window is measured on), so apply reads no clock
/// (DeterministicApply; `store::Request::stamp`). Every `client_write` goes through here.
pub(crate) fn stamp(mut req: Request) -> Request {
    req.stamp(unix_ms());
    req
}
