//! The replicated payload: what one Raft entry asks the store to do, and what it answers.
//!
//! These types are stored in the Raft log and in snapshots and sent between peers, so they only
//! grow: new variants go at the end of each enum (postcard encodes the variant index), and a
//! field is never removed or reordered. The log and snapshot encodings prefix a format-version
//! byte ([`FORMAT_VERSION`]).

use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::StoreError;

/// The version byte that prefixes every encoded request, response and snapshot.
pub const FORMAT_VERSION: u8 = 1;

/// Identifies a write for deduplication: a retried or forwarded write carries the same pair and
/// is applied at most once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ClientSeq {
    /// Unique per client session across the cluster (chosen at random by the session).
    pub client_id: u64,
    /// Grows by one for each write of that session; a session has one write in flight at a time.
    pub seq: u64,
}

/// One replicated request: one Raft entry, at most one new revision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// `None` for requests that need no deduplication (e.g. leader-proposed maintenance).
    pub client: Option<ClientSeq>,
    pub op: Op,
}

/// What a request does to the keyspace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Op {
    /// Sets `key` to `value` (always a new revision, as etcd's put).
    Put { key: Bytes, value: Bytes },
    /// Deletes each existing key, one sub-revision each; no revision if none existed.
    Delete { keys: Vec<Bytes> },
    /// Drops history older than `revision` (keeps each key's newest version at or below it).
    /// Does not bump the revision (as etcd's compaction).
    Compact { revision: u64 },
}

/// What applying a request answered. Sent back to the client's node, so it is serialisable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// A put was applied at `revision`.
    Put { revision: u64 },
    /// `deleted` keys were deleted; `revision` is the store's revision afterwards.
    Deleted { deleted: u64, revision: u64 },
    /// History below `compact_revision` is gone.
    Compacted { compact_revision: u64 },
    /// The request was refused; nothing changed.
    Error(StoreError),
    /// An entry that changes no key (a leader's blank entry, a membership change); `revision`
    /// is the store's revision, unchanged.
    Noop { revision: u64 },
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.op {
            Op::Put { key, value } => {
                write!(
                    f,
                    "Put({:?}, {} bytes)",
                    String::from_utf8_lossy(key),
                    value.len()
                )
            }
            Op::Delete { keys } => write!(f, "Delete({} keys)", keys.len()),
            Op::Compact { revision } => write!(f, "Compact({revision})"),
        }
    }
}
