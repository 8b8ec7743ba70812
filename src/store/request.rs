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
    /// Grows by one for each write of that session, in command order; a session has one write,
    /// or one ordered run of pipelined writes, in flight at a time.
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
    /// Puts `value` at `key` if `when` holds for the key's current state (SET NX/XX, SETNX,
    /// GETSET). With `get`, the response carries the value the key had, whether or not the
    /// put happened. Answers [`Response::Set`].
    Set {
        key: Bytes,
        value: Bytes,
        when: SetWhen,
        get: bool,
    },
    /// Deletes `key` and answers its value ([`Response::Value`]; `None` and no change if absent).
    GetDel { key: Bytes },
    /// Adds `delta` to the integer held at `key` (absent = 0) and answers the sum
    /// ([`Response::Integer`]). Refused if the value is not an integer or the sum overflows.
    IncrBy { key: Bytes, delta: i64 },
    /// Adds `increment` (the client's text, parsed at apply as Redis's `string2ld`) to the
    /// number at `key` in x87 extended precision and stores Redis's text of the sum
    /// ([`Response::Value`]).
    IncrByFloat { key: Bytes, increment: Bytes },
    /// Appends `value` to the string at `key` (creating it, even when `value` is empty) and
    /// answers the new length ([`Response::Length`]).
    Append { key: Bytes, value: Bytes },
    /// Overwrites the string at `key` from byte `offset` with `value`, zero-padding it first,
    /// and answers the new length ([`Response::Length`]). An empty `value` changes nothing and
    /// answers the current length.
    SetRange {
        key: Bytes,
        offset: u64,
        value: Bytes,
    },
    /// Puts every pair in one revision (MSET), or, with `if_none_exist`, only if none of the
    /// keys exists (MSETNX). A pair whose key is set again later in the list is skipped: the
    /// last value wins, one change per key. Answers [`Response::Applied`].
    MSet {
        pairs: Vec<(Bytes, Bytes)>,
        if_none_exist: bool,
    },
    /// Moves the value at `src` to `dst` in one revision: delete `src`, then put `dst` (a put, so
    /// an existing `dst` keeps its generation). With `if_absent`, refused when `dst` exists
    /// (RENAMENX). `src == dst` changes nothing. Answers [`Response::Applied`], or
    /// [`StoreError::NoSuchKey`] when `src` does not exist.
    Rename {
        src: Bytes,
        dst: Bytes,
        if_absent: bool,
    },
    /// Deletes every live key in one revision, in byte order (FLUSHDB, FLUSHALL). Answers
    /// [`Response::Deleted`].
    Flush,
    /// Puts `value` at `key` only if the key's `mod_revision` is `expected_mod_revision` (0: the
    /// key must not exist). Answers [`Response::Applied`].
    Cas {
        key: Bytes,
        expected_mod_revision: u64,
        value: Bytes,
    },
}

/// The condition of an [`Op::Set`] on the key's existence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SetWhen {
    Always,
    /// NX: only if the key does not exist.
    Absent,
    /// XX: only if the key exists.
    Present,
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
    /// An [`Op::Set`]: whether the put happened, and with `get` the value the key had before.
    Set {
        written: bool,
        prev: Option<Bytes>,
        revision: u64,
    },
    /// A value the request answers: the deleted value of GETDEL, the new text of INCRBYFLOAT.
    Value { value: Option<Bytes>, revision: u64 },
    /// The new integer of INCRBY and friends.
    Integer { value: i64, revision: u64 },
    /// The string's length after APPEND or SETRANGE.
    Length { length: u64, revision: u64 },
    /// Whether a conditional request (MSETNX, RENAMENX, CAS) or an unconditional one that may
    /// still change nothing (MSET, RENAME) was carried out.
    Applied { applied: bool, revision: u64 },
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
            Op::Set {
                key,
                value,
                when,
                get,
            } => write!(
                f,
                "Set({:?}, {} bytes, {when:?}, get={get})",
                String::from_utf8_lossy(key),
                value.len()
            ),
            Op::GetDel { key } => write!(f, "GetDel({:?})", String::from_utf8_lossy(key)),
            Op::IncrBy { key, delta } => {
                write!(f, "IncrBy({:?}, {delta})", String::from_utf8_lossy(key))
            }
            Op::IncrByFloat { key, increment } => write!(
                f,
                "IncrByFloat({:?}, {:?})",
                String::from_utf8_lossy(key),
                String::from_utf8_lossy(increment)
            ),
            Op::Append { key, value } => write!(
                f,
                "Append({:?}, {} bytes)",
                String::from_utf8_lossy(key),
                value.len()
            ),
            Op::SetRange { key, offset, value } => write!(
                f,
                "SetRange({:?}, {offset}, {} bytes)",
                String::from_utf8_lossy(key),
                value.len()
            ),
            Op::MSet {
                pairs,
                if_none_exist,
            } => write!(f, "MSet({} pairs, nx={if_none_exist})", pairs.len()),
            Op::Rename {
                src,
                dst,
                if_absent,
            } => write!(
                f,
                "Rename({:?} -> {:?}, nx={if_absent})",
                String::from_utf8_lossy(src),
                String::from_utf8_lossy(dst)
            ),
            Op::Flush => write!(f, "Flush"),
            Op::Cas {
                key,
                expected_mod_revision,
                value,
            } => write!(
                f,
                "Cas({:?}, expect {expected_mod_revision}, {} bytes)",
                String::from_utf8_lossy(key),
                value.len()
            ),
        }
    }
}
