//! The replicated payload: what one Raft entry asks the store to do, and what it answers.
//!
//! These types are stored in the Raft log and in snapshots and sent between peers, so they only
//! grow: new variants go at the end of each enum (postcard encodes the variant index), and a
//! field is never removed or reordered. The log and snapshot encodings prefix a format-version
//! byte ([`FORMAT_VERSION`]).
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::script::ScriptValue;
use super::{KeyValue, StoreError, Stored};

/// The version byte that prefixes every encoded request, response and snapshot. 2: requests
/// carry the proposing leader's clock ([`Request::at_ms`]) and the first-send time and retry
/// flag of a client write ([`ClientSeq`]), and the dedup table its entries' stamps; version 1
/// bytes are refused with an error naming both versions.
pub const FORMAT_VERSION: u8 = 2;

/// Identifies a write for deduplication: a retried or forwarded write carries the same
/// `(client_id, seq)` pair and is applied at most once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ClientSeq {
    /// Unique per client session across the cluster (chosen at random by the session).
    pub client_id: u64,
    /// Grows by one for each write of that session, in command order; a session has one write,
    /// or one ordered run of pipelined writes, in flight at a time.
    pub seq: u64,
    /// The session node's clock (unix ms) when the write was made, before its first send;
    /// retries keep it. Only a retry's is read (NoDoubleApplyAfterEviction, `dedup.rs`).
    pub sent_ms: i64,
    /// Whether this may be a second (or later) proposal of the write: set by the forwarder on
    /// every send after the first. A first attempt reaches the log at most once.
    pub retry: bool,
}

/// One replicated request: one Raft entry, at most one new revision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// `None` for requests that need no deduplication (e.g. leader-proposed maintenance).
    pub client: Option<ClientSeq>,
    pub op: Op,
    /// The proposing leader's clock (unix ms), stamped by [`Request::stamp`] right before it
    /// proposes; 0 until then. The dedup window is measured on it (DedupWindow, `dedup.rs`).
    pub at_ms: i64,
}

impl Request {
    /// An unstamped request.
    pub fn new(client: Option<ClientSeq>, op: Op) -> Self {
        Request {
            client,
            op,
            at_ms: 0,
        }
    }

    /// Stamps the proposing leader's clock `now_ms` (unix ms) into the request and its op
    /// ([`Op::stamp`]). The leader calls this right before proposing; a retry is stamped again.
    pub fn stamp(&mut self, now_ms: i64) {
        self.at_ms = now_ms;
        self.op.stamp(now_ms);
    }
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
    /// A transaction (EXEC): if every compare holds, applies `ops` in order under one main
    /// revision, their changes numbered by `sub` across all of them; else changes nothing.
    /// Each op answers as it would alone (an error answers that op only; the others still
    /// apply, as in Redis). Reads ([`Op::Read`]) see the changes of the ops before them.
    /// Answers [`Response::Txn`].
    Txn {
        compares: Vec<Compare>,
        #[serde(deserialize_with = "super::decode_depth::nested_request")]
        ops: Vec<Op>,
        /// The proposing leader's clock (unix ms), stamped by [`Op::stamp`].
        now_ms: i64,
    },
    /// Reads the keyspace and changes nothing: a read queued inside a transaction.
    Read(ReadOp),
    /// SET with KEEPTTL or an expiry (EX PX EXAT PXAT), SETEX, PSETEX: as [`Op::Set`], and the
    /// put leaves the TTL `ttl` says. A deadline at or before `now_ms` deletes the key instead
    /// (Redis sets it already expired: no read can see it). Answers [`Response::Set`].
    SetEx {
        key: Bytes,
        value: Bytes,
        when: SetWhen,
        get: bool,
        ttl: PutTtl,
        now_ms: i64,
    },
    /// EXPIRE PEXPIRE EXPIREAT PEXPIREAT: gives a live key the deadline `expiry` if `cond`
    /// holds; a deadline at or before `now_ms` deletes the key. Setting a deadline is a put of
    /// the same value (as etcd attaches a lease with a put), so it bumps `mod_revision` and
    /// WATCH sees it, as Redis's `signalModifiedKey`. Answers [`Response::Applied`].
    Expire {
        key: Bytes,
        expiry: Expiry,
        cond: ExpireCond,
        now_ms: i64,
    },
    /// PERSIST: removes a live key's deadline (a put of the same value); answers
    /// [`Response::Applied`], `false` if the key is absent or has none.
    Persist { key: Bytes },
    /// GETEX: answers the key's value ([`Response::Value`]) and then does `action` to its TTL.
    GetEx {
        key: Bytes,
        action: GetExAction,
        now_ms: i64,
    },
    /// CAS with EX: as [`Op::Cas`], and the put gives the key the deadline `expiry`.
    CasEx {
        key: Bytes,
        expected_mod_revision: u64,
        value: Bytes,
        expiry: Expiry,
        now_ms: i64,
    },
    /// The leader's expiry: deletes each listed key that is still live with a deadline at or
    /// before `now_ms` (a key whose TTL changed since the leader looked is left alone), one
    /// `sub` each, as [`EventKind::Expired`](super::EventKind::Expired) events. Answers
    /// [`Response::Deleted`].
    ExpireDue { keys: Vec<Bytes>, now_ms: i64 },
    /// ROLLBACK: puts the value `key` had at `revision` as a new revision (clearing its TTL, as
    /// SET does), or deletes the key if it did not exist then. Decided at apply, so it is
    /// atomic against concurrent writes. Refused below the compact revision and above the
    /// current one. Answers [`Response::Integer`]: the store's revision afterwards.
    Rollback { key: Bytes, revision: u64 },
    /// Several clients' requests carried by one Raft entry (proposal batching, `raft::batcher`):
    /// applied in this order, each exactly as if it were its own entry (its own revision, its own
    /// dedup check and record, its own events and notifications), answered by
    /// [`Response::Batch`] with one response per request. Only the state machine unpacks it;
    /// the store refuses it anywhere else ([`StoreError::NestedBatch`]). Last in the enum, so an
    /// older log still decodes (postcard numbers variants in order).
    Batch(#[serde(deserialize_with = "super::decode_depth::nested_request")] Vec<Request>),
    /// EVAL and EVALSHA: runs the script `body` at apply on every node, its calls under one
    /// main revision (ScriptAtomic, `script.rs`), `now_ms` its only clock. Answers
    /// [`Response::Script`].
    Script {
        body: Bytes,
        keys: Vec<Bytes>,
        args: Vec<Bytes>,
        now_ms: i64,
    },
    /// SCRIPT LOAD: every node remembers `body` for EVALSHA. Answers [`Response::Noop`].
    ScriptLoad { body: Bytes },
    /// SCRIPT FLUSH: every node forgets its scripts. Answers [`Response::Noop`].
    ScriptFlush,
    /// HSET and HMSET (`if_absent` false), HSETNX (`if_absent`, one pair): writes fields of the
    /// hash at `key`, creating it. Answers [`Response::Integer`], the number of new fields.
    HSet {
        key: Bytes,
        pairs: Vec<(Bytes, Bytes)>,
        if_absent: bool,
    },
    /// HDEL: answers [`Response::Integer`], the number of fields removed.
    HDel { key: Bytes, fields: Vec<Bytes> },
    /// HINCRBY: answers [`Response::Integer`], the new value.
    HIncrBy {
        key: Bytes,
        field: Bytes,
        delta: i64,
    },
    /// HINCRBYFLOAT: answers [`Response::Value`], the new text.
    HIncrByFloat {
        key: Bytes,
        field: Bytes,
        increment: Bytes,
    },
    /// ACL SETUSER: applies `rules` to the user `name`, or to a new user made by `create`
    /// when there is none (`acl.rs`; passwords only as hashes). Answers [`Response::Noop`].
    AclSetUser {
        name: Bytes,
        rules: Vec<Bytes>,
        create: Vec<Bytes>,
    },
    /// ACL DELUSER: removes the users named. Answers [`Response::Integer`] (how many existed).
    AclDelUser { names: Vec<Bytes> },
    /// `op` (a script, alone or in EXEC) run for the ACL user `user`: each of its
    /// `redis.call`s is checked against that user's permissions as they are at apply
    /// (ScriptCallsChecked, `acl.rs`). Answers as `op`.
    AsUser {
        user: Bytes,
        #[serde(deserialize_with = "super::decode_depth::nested_request")]
        op: Box<Op>,
    },
    /// `op`, made by the user `author` (AuthorPerRevision, `audit.rs`): a session wraps each
    /// write it proposes; apply records the author for the revision `op` makes. Only at a
    /// request's top level.
    Authored {
        author: Bytes,
        #[serde(deserialize_with = "super::decode_depth::nested_request")]
        op: Box<Op>,
    },
}

/// A read, answered from the state at apply when queued in a transaction
/// ([`crate::store::Store::read`] answers it outside one).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ReadOp {
    /// The values of `keys` ([`Response::Values`]): GET MGET STRLEN GETRANGE EXISTS TYPE.
    Get { keys: Vec<Bytes> },
    /// A key's state and deadline ([`Response::Meta`]): TTL PTTL EXPIRETIME PEXPIRETIME
    /// GETMETA.
    Meta { key: Bytes },
    /// The number of live keys ([`Response::Integer`]): DBSIZE.
    Len,
    /// What `keys` hold, strings and hashes ([`Response::Stored`]): GET STRLEN GETRANGE
    /// EXISTS TYPE and the hash reads, which tell the types apart (WRONGTYPE).
    Typed { keys: Vec<Bytes> },
}

/// One WATCHed key, compared when the transaction applies (etcd's Txn compare on
/// `mod_revision`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compare {
    pub key: Bytes,
    /// The main revision of the key's last change when it was watched, a delete or an expiry
    /// included (0: never written, or its history compacted away). Any change since makes it
    /// differ, as any write makes Redis's `touchWatchedKey`.
    pub mod_revision: u64,
    /// The store's revision when the key was watched: with `mod_revision` 0, a compaction past
    /// it may have dropped a change, so the compare fails (a spurious abort, never a missed one).
    pub watched_at: u64,
}

/// A deadline as a command gives it.
///
/// `After` exists only until the leader stamps the entry it proposes ([`Op::stamp`]): apply
/// never reads a clock (DeterministicApply), and refuses an unstamped `After`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Expiry {
    /// Milliseconds after the proposing leader's clock (EX PX EXPIRE PEXPIRE), maybe negative.
    After(i64),
    /// Unix time in milliseconds (EXAT PXAT EXPIREAT PEXPIREAT, and `After` once stamped).
    At(i64),
}

impl Expiry {
    /// Turns `After` into `At` from the proposer's clock `now_ms` (saturating).
    fn stamp(&mut self, now_ms: i64) {
        if let Expiry::After(ms) = *self {
            *self = Expiry::At(now_ms.saturating_add(ms));
        }
    }
}

/// The TTL a put leaves on its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PutTtl {
    /// No deadline (SET without options, MSET, GETSET).
    Clear,
    /// The key keeps the deadline it had (KEEPTTL; INCR and APPEND always do).
    Keep,
    /// This deadline.
    Expire(Expiry),
}

/// EXPIRE's conditions (Redis 7's NX XX GT LT; XX combines with GT or LT). A key without a
/// deadline counts as an infinite TTL for GT and LT.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpireCond {
    /// Only if the key has no deadline.
    pub nx: bool,
    /// Only if the key has a deadline.
    pub xx: bool,
    /// Only if the new deadline is later than the current one.
    pub gt: bool,
    /// Only if the new deadline is earlier than the current one.
    pub lt: bool,
}

/// What GETEX does to the key's TTL after reading it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum GetExAction {
    /// Nothing (GETEX without options).
    Keep,
    /// PERSIST.
    Persist,
    /// EX PX EXAT PXAT.
    Expire(Expiry),
    /// An expiry argument Redis refuses only once it has found the key (GETEX checks the
    /// time after the lookup): answered if the key exists, nil otherwise.
    Refuse(StoreError),
}

impl Op {
    /// Stamps the proposing leader's clock `now_ms` (unix ms) into the op: every relative
    /// deadline becomes absolute, and `now_ms` fields are set (recursively in a transaction).
    /// The leader calls this right before proposing; a retry is stamped again.
    pub fn stamp(&mut self, now_ms: i64) {
        match self {
            Op::Batch(reqs) => {
                for req in reqs {
                    req.stamp(now_ms);
                }
            }
            Op::Txn {
                ops, now_ms: at, ..
            } => {
                *at = now_ms;
                for op in ops {
                    op.stamp(now_ms);
                }
            }
            Op::SetEx {
                ttl, now_ms: at, ..
            } => {
                if let PutTtl::Expire(e) = ttl {
                    e.stamp(now_ms);
                }
                *at = now_ms;
            }
            Op::Expire {
                expiry, now_ms: at, ..
            }
            | Op::CasEx {
                expiry, now_ms: at, ..
            } => {
                expiry.stamp(now_ms);
                *at = now_ms;
            }
            Op::GetEx {
                action, now_ms: at, ..
            } => {
                if let GetExAction::Expire(e) = action {
                    e.stamp(now_ms);
                }
                *at = now_ms;
            }
            Op::ExpireDue { now_ms: at, .. } | Op::Script { now_ms: at, .. } => *at = now_ms,
            Op::AsUser { op, .. } => op.stamp(now_ms),
            Op::Authored { op, .. } => op.stamp(now_ms),
            _ => {}
        }
    }

    /// The author of an [`Op::Authored`] and the op it wraps; any other op, without author.
    pub fn authored(&self) -> (Option<&Bytes>, &Op) {
        match self {
            Op::Authored { author, op } => (Some(author), op),
            op => (None, op),
        }
    }
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
    /// [`Op::Txn`]: one response per op, or `None` if a compare failed (EXEC's nil array).
    Txn {
        #[serde(deserialize_with = "super::decode_depth::nested")]
        responses: Option<Vec<Response>>,
        revision: u64,
    },
    /// [`ReadOp::Get`]: each key's value, `None` where absent.
    Values {
        values: Vec<Option<Bytes>>,
        revision: u64,
    },
    /// [`ReadOp::Meta`]: the key's state (`None` if absent) and its deadline (unix ms).
    Meta {
        kv: Option<KeyValue>,
        deadline: Option<i64>,
        revision: u64,
    },
    /// [`Op::Batch`]: one response per request, in order. Never reaches a client: the batcher
    /// hands each request its own.
    Batch(#[serde(deserialize_with = "super::decode_depth::nested")] Vec<Response>),
    /// [`Op::Script`]: the script's reply; `revision` is the store's afterwards.
    Script { value: ScriptValue, revision: u64 },
    /// [`ReadOp::Typed`]: what each key holds, `None` where absent.
    Stored {
        values: Vec<Option<Stored>>,
        revision: u64,
    },
}
