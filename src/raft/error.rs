//! The errors `raft/` hands the rest of the crate: [`RaftError`] for reads and writes,
//! [`AdminError`] for membership changes and leadership transfers, [`SnapshotError`] for a
//! snapshot asked for by hand.
//!
//! Knows nothing of RESP: the messages say what happened, and `commands/raft_errors.rs` chooses
//! the RESP error prefix a client sees for each variant. [`AdminError`] also travels between
//! peers (a forwarded administration request's answer): its variants are wire format.

use serde::{Deserialize, Serialize};

/// Why a write or a read barrier failed.
///
/// **UncertainIsNotRetryable.** Every failure after which the request may have reached a
/// leader (and so may still commit, through it or a later leader) is [`RaftError::Unknown`],
/// whose RESP prefix `UNCERTAIN` no common client library retries by default: go-redis's
/// `shouldRetry` retries `TRYAGAIN`, `LOADING`, `READONLY`, `CLUSTERDOWN`, `MASTERDOWN`,
/// `NOREPLICAS`; redis-py's `Retry` retries connection errors and timeouts only (and its cluster
/// client `TRYAGAIN`); ioredis's cluster client retries `TRYAGAIN` and `CLUSTERDOWN`, its
/// `reconnectOnError` is off; Jedis and Lettuce retry no error reply. A retry with a new
/// sequence number could apply an `INCR` twice, so only [`RaftError::NoLeader`], "never sent",
/// is answered with the retryable `TRYAGAIN`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RaftError {
    /// No leader could be reached in time; the request was never accepted by one.
    #[error("no raft leader available (election in progress or quorum lost); not applied, retry")]
    NoLeader,
    /// The request may have reached a leader but its outcome is unknown: the leader was lost,
    /// or this node's Raft stopped, after the request may have gone out (UncertainIsNotRetryable).
    #[error(
        "the leader was lost or stopped before answering; the write may or may not have been \
         applied"
    )]
    Unknown,
    /// The request would not fit one Raft entry on the peer wire (EntryBytesBound, `limit` is
    /// `MAX_ENTRY_BYTES`); it was never proposed.
    #[error("request too large to replicate: {len} bytes encoded, the limit is {limit}")]
    TooLarge { len: usize, limit: usize },
    /// This node's log disk is full (the next log segment cannot be preallocated: SpareAhead
    /// in `wal/mod.rs`): client writes are refused until space returns; reads go on. Never
    /// proposed, so never applied.
    #[error("disk full on node {node}: {reason}; writes are refused until space is freed (reads still work); not applied")]
    DiskFull { node: u64, reason: String },
    /// This node's Raft has stopped (e.g. a failed disk flush); it serves nothing more.
    #[error("raft stopped on this node: {0}")]
    Fatal(String),
    /// This node, the leader, proposed the write but had no answer for it when the write
    /// timeout ran out: a long write being applied ahead of it, a slow disk, or leadership lost
    /// meanwhile. It may yet be applied, or not (UncertainIsNotRetryable).
    #[error(
        "the write was proposed but not answered within {waited_ms} ms (a long write applied \
         ahead of it, a slow disk, or the leader lost); it may or may not have been applied"
    )]
    TimedOut { waited_ms: u64 },
    /// A read's index was known but this node had not applied up to it when the wait (the
    /// write timeout) ran out: a long write is being applied ahead of it. The read was not
    /// served; nothing was written.
    #[error(
        "this node has not applied up to the read's index {index} within {waited_ms} ms (a long \
         write is being applied ahead of it); not served, retry"
    )]
    ApplyBehind { index: u64, waited_ms: u64 },
}

/// What an administration request answers: a number (the new leader's id for a transfer, the
/// membership's log index for a change), or why it failed.
pub type AdminResult = Result<u64, AdminError>;

/// Why an administration request failed. Sent between peers as the answer to a forwarded
/// request: the variants and their fields are wire format.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AdminError {
    /// This node is not the leader (the request may be forwarded).
    #[error("this node is not the raft leader (leader: {leader:?}); retry")]
    NotLeader { leader: Option<u64> },
    /// The request cannot succeed as asked.
    #[error("{0}")]
    Refused(String),
    /// The request started but its end is unknown or it timed out.
    #[error("{0}")]
    Incomplete(String),
    /// Another membership change is still committing (openraft allows one at a time): nothing
    /// was changed; `RaftNode::admin` retries until its deadline (two nodes joining at once).
    #[error("{0}")]
    Busy(String),
}

/// Why a snapshot asked for by hand (`RaftNode::snapshot_now`) did not complete.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// This node's Raft has stopped.
    #[error("raft stopped: {0}")]
    Stopped(String),
    /// No snapshot covered the applied index in time.
    #[error("snapshot not done: {0}")]
    NotDone(String),
}
