//! `StoreError`: why the store refused a request or a read.
//!
//! These errors are API: they travel inside [`Response::Error`](super::Response) through the Raft
//! log, snapshots and peers, so variants only grow (new ones at the end), and the first word of
//! each message is the RESP error prefix the client sees (`COMPACTED`, `ERR`). This file owns the
//! texts; it must not decide anything about when they happen.

use serde::{Deserialize, Serialize};

/// Why the store refused a request or a read. Nothing changed when one is returned.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum StoreError {
    /// The revision asked for is older than the oldest revision compaction kept.
    #[error(
        "COMPACTED required revision {requested} has been compacted; oldest available revision \
         is {compact_revision}"
    )]
    Compacted {
        requested: u64,
        compact_revision: u64,
    },
    /// The revision asked for has not been written yet.
    #[error("ERR revision {requested} is in the future; current revision is {current}")]
    FutureRevision { requested: u64, current: u64 },
    /// A retried write that a later write of the same client already superseded.
    #[error(
        "ERR stale request: sequence {seq} of client {client_id} is older than the last applied \
         {last}"
    )]
    StaleSequence { client_id: u64, seq: u64, last: u64 },
    /// INCR and friends on a value that is not a canonical 64-bit integer.
    #[error("ERR value is not an integer or out of range")]
    NotInteger,
    /// INCR and friends whose result does not fit in 64 bits.
    #[error("ERR increment or decrement would overflow")]
    Overflow,
    /// INCRBYFLOAT on a value (or with an increment) that is not a number.
    #[error("ERR value is not a valid float")]
    NotFloat,
    /// INCRBYFLOAT whose sum is not finite.
    #[error("ERR increment would produce NaN or Infinity")]
    NanOrInfinity,
    /// APPEND or SETRANGE that would make a string longer than 512 MiB (Redis's default
    /// `proto-max-bulk-len`).
    #[error("ERR string exceeds maximum allowed size (proto-max-bulk-len)")]
    StringTooLong,
    /// RENAME or RENAMENX of a key that does not exist.
    #[error("ERR no such key")]
    NoSuchKey,
    /// An expiry time Redis refuses (`addReplyErrorExpireTime`); `command` is the lowercase
    /// command name.
    #[error("ERR invalid expire time in '{command}' command")]
    InvalidExpireTime { command: String },
    /// A relative deadline reached apply without the leader's stamp (a bug, never a client's
    /// doing): refused rather than read against some clock.
    #[error("ERR relative expiry was not stamped by the leader; not applied, retry")]
    Unstamped,
    /// A transaction inside a transaction.
    #[error("ERR MULTI calls can not be nested")]
    NestedTxn,
    /// A proposal batch ([`crate::store::Op::Batch`]) or an [`crate::store::Op::Authored`]
    /// anywhere but a request's top level (a bug, never a client's doing: only the batcher and
    /// the session build them).
    #[error("ERR a batch of requests or an authored op inside a request; not applied")]
    NestedBatch,
    /// The answer to a retry of a write that was applied but whose reply was too large for the
    /// dedup table to keep (DedupEntrySmall): the write happened once, what it answered is lost.
    #[error(
        "UNCERTAIN the write was applied, but its reply ({bytes} bytes) is not kept for retries"
    )]
    ReplyNotKept { bytes: u64 },
    /// A retry of a write whose dedup record may have been evicted, its first attempt applied
    /// or not (NoDoubleApplyAfterEviction, `dedup.rs`): refused rather than risk applying it
    /// twice. `age_ms`: from its first send to the leader stamp of this attempt.
    #[error(
        "UNCERTAIN retry of a write first sent {age_ms} ms before: its dedup record may be gone \
         (kept {window_ms} ms, less when the table is full); not applied now, an earlier attempt \
         may or may not have been"
    )]
    RetryExpired { age_ms: i64, window_ms: i64 },
    /// A script stopped by a limit (its changes undone), or scripting refused: the whole RESP
    /// error text, code first (`ERR ...`).
    #[error("{0}")]
    Script(String),
    /// A string command met a hash, or a hash command a string (Redis's text).
    #[error("WRONGTYPE Operation against a key holding the wrong kind of value")]
    WrongType,
    /// HINCRBY on a field whose value is not an integer.
    #[error("ERR hash value is not an integer")]
    HashNotInteger,
    /// HINCRBYFLOAT on a field whose value is not a number.
    #[error("ERR hash value is not a float")]
    HashNotFloat,
    /// HINCRBYFLOAT with an infinite increment.
    #[error("ERR value is NaN or Infinity")]
    NotFiniteIncrement,
    /// A write refused by the schema of a prefix of its key, or a schema that is not one
    /// (`schema.rs`): the whole RESP error text, code first (`SCHEMA ...`).
    #[error("{0}")]
    Schema(String),
    /// An ACL change refused as a whole (`acl.rs`): the whole RESP error text, code first.
    #[error("{0}")]
    Acl(String),
    /// `ACL SETUSER` rule number `index` (from 0, after the user name) was refused for
    /// `reason`; the commands layer names the rule as the client wrote it (AllOrNothing).
    #[error("ERR Error in ACL SETUSER modifier #{index}: {reason}")]
    AclRule { index: u64, reason: String },
}
