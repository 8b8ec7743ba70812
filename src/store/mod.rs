//! The deterministic MVCC keyspace: [`Store::apply`] turns committed [`Request`]s into revisions,
//! and reads answer at any revision still in the history window. Etcd's data model and words.
//!
//! Layout:
//! - `request.rs`: the replicated payload ([`Request`], [`Op`], [`Response`]), versioned.
//! - `revision.rs`: [`Revision`] `{main, sub}`.
//! - `event.rs`: [`KeyValue`] and [`Event`], what readers and watchers see.
//! - `key_index.rs`: one key's versions and generations; reading and compacting one key.
//! - `kv.rs`: the keyspace, key -> key index, in byte order.
//! - `txn.rs`: transactions (EXEC's compares and ops under one revision).
//! - `acl.rs`: ACL users ([`Users`]) and the rules `ACL SETUSER` applies to one.
//! - `script.rs`: scripts at apply (EVAL), through the interpreter the process installs.
//! - `compaction.rs`: compaction and the readable window.
//! - `read.rs`: the reads of the current state ([`ReadOp`]).
//! - `schema.rs`: schema-checked values (a JSON Schema per key prefix, checked at apply).
//! - `gray.rs`: gray releases (candidates only one label of clients reads).
//! - `strings.rs`: the read-modify-writes of the string commands, decided at apply.
//! - `hash.rs`: [`Stored`] (a string or a [`Hash`]) and the hash commands' writes.
//! - `long_double.rs`: [`LongDouble`], INCRBYFLOAT's x87 extended arithmetic in software.
//! - `dedup.rs`: the client dedup table and its bound.
//! - `snapshot.rs`: the snapshot encoding and the checks on load.
//! - `error.rs`: [`StoreError`], whose texts are RESP errors.
//! - `notify.rs`: [`Notice`], the keyspace notifications (Redis event names) an op emits.
//! - `weight.rs`: how many keys, fields or revisions applying an op visits.
//!
//! Unit tests sit beside the code as `*_test.rs` (`test_util.rs` holds their shared helpers);
//! `store_test.rs` checks [`Store`] against a reference model (proptest).
//!
//! This module reads no clock, no randomness, no configuration and does no I/O, and imports
//! nothing else from the crate, so it can be tested without a cluster.
//!
//! Invariants (named where they bind):
//! - **DeterministicApply.** The same requests in the same order give the same state, responses
//!   and events on every node: ordered maps only, no clock, no randomness.
//! - **RevisionMonotonic.** A state-changing request bumps `main` by exactly one and numbers its
//!   changes `sub` = 0, 1, 2, …. A put always changes state (even to the same value); a delete
//!   changes state only if one of its keys is live; compaction, reads, refused and deduplicated
//!   requests bump nothing.
//! - **HistoryWindow.** Every version with main >= `compact_revision` stays readable by
//!   [`Store::get_at`] and [`Store::history`], and so does each key's value at
//!   `compact_revision`; reads below `compact_revision` fail with [`StoreError::Compacted`].
//! - **ExactlyOnce.** A request with a [`ClientSeq`] is applied at most once: a retry gets the
//!   recorded response, an older one is refused, and a retry whose record may have been evicted
//!   is refused as uncertain (see `dedup.rs`: DedupWindow, DedupBounded,
//!   NoDoubleApplyAfterEviction).
//! - **SnapshotFaithful.** A store restored from [`Store::to_snapshot`] equals the original.
//! - **NoPanicOnInput.** No request and no snapshot bytes make the store panic.

mod acl;
mod audit;
mod cautious;
mod compaction;
mod deadlines;
mod decode_depth;
mod dedup;
mod error;
mod event;
mod expiry;
mod gray;
mod hash;
mod key_index;
mod kv;
mod long_double;
mod notify;
mod read;
mod request;
mod request_display;
mod revision;
mod schema;
mod script;
mod snapshot;
mod snapshot_delta;
mod strings;
mod txn;
mod versions;
mod weight;

#[cfg(test)]
mod compaction_test;
#[cfg(test)]
mod dedup_test;
#[cfg(test)]
mod hash_test;
#[cfg(test)]
mod mvcc_test;
#[cfg(test)]
mod store_test;
#[cfg(test)]
mod strings_test;
#[cfg(test)]
mod test_util;
#[cfg(test)]
mod txn_test;

use bytes::Bytes;
use serde::Serialize;

use deadlines::Deadlines;
use dedup::{Dedup, DedupTable};
use expiry::Ttl;
use key_index::Touched;
use kv::Keyspace;

pub use acl::{hash_password, AclUser, KeyPattern, RuleError, Sanitize, Users};
pub use audit::{Authors, MAX_AUTHOR_LEN};
pub use dedup::{DEDUP_WINDOW_MS, MAX_CLOCK_SKEW_MS, MAX_DEDUP_CLIENTS};
pub use error::StoreError;
pub use event::{Event, EventKind, KeyValue};
pub use gray::{gray_key, gray_parts, GRAY_PREFIX};
pub use hash::{Hash, Stored};
/// SCAN's order (FNV-1a, the same on every node); HSCAN walks fields by it too.
pub use kv::key_hash as scan_hash;
pub use long_double::LongDouble;
pub use notify::{Notice, NoticeClass};
pub use request::{
    ClientSeq, Compare, ExpireCond, Expiry, GetExAction, Op, PutTtl, ReadOp, Request, Response,
    SetWhen, FORMAT_VERSION,
};
pub use revision::Revision;
pub use schema::{compile as compile_schema, SCHEMA_PREFIX};
pub use script::{bounded_inline, install_host, sha1hex, ScriptCalls, ScriptEnd, ScriptHost};
pub use script::{ScriptRun, SCRIPT_CALL_WEIGHT};
pub use script::{ScriptValue, Scripts, MAX_SCRIPTS};
pub use snapshot::SnapshotError;
pub use snapshot_delta::{DELTA_HEADER, DELTA_TAG};
pub use strings::MAX_STRING_LEN;

/// The replicated keyspace with its history window and client dedup table.
///
/// `Deserialize` (in `snapshot.rs`) checks the invariants and rebuilds derived indexes, so every
/// `Store` in memory is consistent however it was obtained.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Store {
    /// The global revision: main revision of the last state-changing request (RevisionMonotonic).
    revision: u64,
    /// Reads below this fail; 0 until the first compaction (HistoryWindow).
    compact_revision: u64,
    keyspace: Keyspace,
    dedup: DedupTable,
    /// The live keys' deadlines (DeadlineLive).
    deadlines: Deadlines,
    /// The script bodies applied (ScriptsReplicated, `script.rs`).
    scripts: Scripts,
    /// ACL users (UsersReplicated, `acl.rs`).
    users: Users,
    /// Who made each revision of the history window (AuthorPerRevision). Serialised last.
    authors: Authors,
}

/// Whether a put passed the schemas in force (SchemaAtApply, `schema.rs`).
type Checked = Result<(), StoreError>;

/// What applying one request did besides its response: its changes in `sub` order, and the
/// keyspace notifications it emits, in Redis's order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    pub events: Vec<Event>,
    pub notices: Vec<Notice>,
    /// The deduplication identity (`ClientSeq::client_id`) of the connection that sent the
    /// request; `None` for the leader's own entries (expiry). Client tracking's `NOLOOP` skips
    /// a connection's own changes by it.
    pub origin: Option<u64>,
    /// The request flushed the keyspace (FLUSHALL/FLUSHDB, alone, in EXEC or in a script), or
    /// the whole state was replaced (a snapshot installed): client-side caches must drop
    /// everything, as Redis's `nil` invalidation says.
    pub flushed: bool,
}

impl Applied {
    /// Whether a listener has anything to learn from it.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.notices.is_empty() && !self.flushed
    }
}

/// The changes of one request, all under main revision `main`; a transaction's ops share one.
struct Changes {
    main: u64,
    events: Vec<Event>,
    /// A flush ran among these changes ([`Applied::flushed`]).
    flushed: bool,
}

impl Changes {
    fn len(&self) -> usize {
        self.events.len()
    }

    fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

impl Store {
    /// Returns an empty store at revision 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one committed request and returns its response and the changes it made, in `sub`
    /// order.
    ///
    /// Deterministic (DeterministicApply). A request with a [`ClientSeq`] is deduplicated
    /// (ExactlyOnce): a retry of the client's last request returns the recorded response and
    /// changes nothing; an older one returns [`StoreError::StaleSequence`] and changes nothing;
    /// a retry whose record may have been evicted returns [`StoreError::RetryExpired`] and
    /// changes nothing. Dedup entries older than the window, by `req.at_ms`, are evicted first.
    pub fn apply(&mut self, req: &Request) -> (Response, Vec<Event>) {
        let (response, applied) = self.apply_notified(req);
        (response, applied.events)
    }

    /// As [`Store::apply`], and also returns the keyspace notifications of the request
    /// ([`Notice`]s, derived from the ops and their changes: deterministic too). A deduplicated
    /// or refused request notifies nothing.
    pub fn apply_notified(&mut self, req: &Request) -> (Response, Applied) {
        // DedupWindow: measured on the stamp of the entry being applied, never a clock here.
        self.dedup.expire(req.at_ms);
        if let Some(client) = req.client {
            match self.dedup.check(client) {
                Dedup::New => {}
                Dedup::Duplicate(response) => {
                    tracing::trace!(
                        ?client,
                        "duplicate request: answering the recorded response"
                    );
                    return (response.clone(), Applied::default());
                }
                Dedup::Stale { last } => {
                    let error = StoreError::StaleSequence {
                        client_id: client.client_id,
                        seq: client.seq,
                        last,
                    };
                    return (Response::Error(error), Applied::default());
                }
                Dedup::Forgotten => {
                    tracing::debug!(
                        ?client,
                        "retry whose dedup record may be gone: refused as uncertain"
                    );
                    let error = StoreError::RetryExpired {
                        age_ms: req.at_ms.saturating_sub(client.sent_ms),
                        window_ms: DEDUP_WINDOW_MS,
                    };
                    return (Response::Error(error), Applied::default());
                }
            }
        }
        let (author, op) = req.op.authored();
        let before = self.revision;
        let (response, mut applied) = self.apply_op(op);
        if let Some(author) = author.filter(|_| self.revision > before) {
            self.authors.record(self.revision, author);
        }
        applied.origin = req.client.map(|c| c.client_id);
        if let Some(client) = req.client {
            self.dedup.record(client, response.clone(), req.at_ms);
        }
        (response, applied)
    }

    fn apply_op(&mut self, op: &Op) -> (Response, Applied) {
        match op {
            // Compaction bumps nothing (RevisionMonotonic), as etcd's.
            Op::Compact { revision } => return (self.compact(*revision), Applied::default()),
            Op::Txn {
                compares,
                ops,
                now_ms,
            } => return self.txn(compares, ops, *now_ms),
            _ => {}
        }
        let mut changes = self.begin();
        let mut notices = Vec::new();
        match self.apply_in_notified(&mut changes, op, &mut notices) {
            Ok(response) => {
                let flushed = changes.flushed;
                let events = self.end(changes);
                let applied = Applied {
                    events,
                    notices,
                    flushed,
                    ..Applied::default()
                };
                (response, applied)
            }
            Err(error) => {
                debug_assert!(changes.is_empty(), "an error changes nothing");
                (Response::Error(error), Applied::default())
            }
        }
    }

    /// Applies one op as [`Store::apply_in`] does, and adds its keyspace notifications to
    /// `notices` (a script's are those of each of its calls).
    fn apply_in_notified(
        &mut self,
        c: &mut Changes,
        op: &Op,
        notices: &mut Vec<Notice>,
    ) -> Result<Response, StoreError> {
        let (user, op) = match op {
            Op::AsUser { user, op } => (self.acl_user_at_apply(user)?, &**op),
            op => (None, op),
        };
        if let Op::Script {
            body,
            keys,
            args,
            now_ms,
        } = op
        {
            let run = ScriptRun {
                body,
                keys,
                args,
                now_ms: *now_ms,
                read_only: false,
                user: user.as_ref(),
            };
            return self.script_in(c, &run, notices);
        }
        let before = c.len();
        let response = self.apply_in(c, op)?;
        notify::notices(op, &response, &c.events[before..], notices);
        Ok(response)
    }

    /// Applies one op, recording its changes in `c` (shared by the ops of a transaction).
    /// Every arm decides from the current state only (DeterministicApply); an error changes
    /// nothing.
    fn apply_in(&mut self, c: &mut Changes, op: &Op) -> Result<Response, StoreError> {
        match op {
            Op::Put { key, value } => {
                // RevisionMonotonic: a put always makes a change.
                self.put_in(c, key, value, Ttl::Clear)?;
                Ok(Response::Put { revision: c.main })
            }
            Op::Delete { keys } => {
                // A key listed twice is live only the first time.
                let before = c.len();
                for key in keys {
                    self.delete_in(c, key);
                }
                let deleted = (c.len() - before) as u64;
                let revision = self.revision_with(c);
                Ok(Response::Deleted { deleted, revision })
            }
            Op::Compact { revision } => Ok(self.compact(*revision)),
            Op::Set {
                key,
                value,
                when,
                get,
            } => self.set(c, key, value, *when, *get, PutTtl::Clear, 0),
            Op::GetDel { key } => self.get_del(c, key),
            Op::IncrBy { key, delta } => self.incr_by(c, key, *delta),
            Op::IncrByFloat { key, increment } => self.incr_by_float(c, key, increment),
            Op::Append { key, value } => self.append(c, key, value),
            Op::SetRange { key, offset, value } => self.set_range(c, key, *offset, value),
            Op::MSet {
                pairs,
                if_none_exist,
            } => self.mset(c, pairs, *if_none_exist),
            Op::Rename {
                src,
                dst,
                if_absent,
            } => self.rename(c, src, dst, *if_absent),
            Op::Flush => {
                c.flushed = true;
                self.flush(c)
            }
            Op::Cas {
                key,
                expected_mod_revision,
                value,
            } => self.cas(c, key, *expected_mod_revision, value, PutTtl::Clear),
            Op::Txn { .. } => Err(StoreError::NestedTxn),
            Op::Batch(_) | Op::Authored { .. } => Err(StoreError::NestedBatch),
            Op::Read(read) => Ok(self.read(read)),
            Op::SetEx {
                key,
                value,
                when,
                get,
                ttl,
                now_ms,
            } => self.set(c, key, value, *when, *get, *ttl, *now_ms),
            Op::Expire {
                key,
                expiry,
                cond,
                now_ms,
            } => self.expire(c, key, *expiry, *cond, *now_ms),
            Op::Persist { key } => self.persist(c, key),
            Op::GetEx {
                key,
                action,
                now_ms,
            } => self.get_ex(c, key, action, *now_ms),
            Op::CasEx {
                key,
                expected_mod_revision,
                value,
                expiry,
                ..
            } => {
                let ttl = PutTtl::Expire(*expiry);
                self.cas(c, key, *expected_mod_revision, value, ttl)
            }
            Op::ExpireDue { keys, now_ms } => self.expire_due(c, keys, *now_ms),
            Op::Rollback { key, revision } => self.rollback(c, key, *revision),
            // Notified per call: only `apply_in_notified` runs a script.
            Op::Script { .. } => Err(StoreError::Script(
                "ERR This Redis command is not allowed from script".into(),
            )),
            Op::ScriptLoad { body } => self.script_load(body),
            Op::ScriptFlush => self.script_flush(),
            Op::AclSetUser {
                name,
                rules,
                create,
            } => self.acl_set_user(name, rules, create),
            Op::AclDelUser { names } => self.acl_del_user(names),
            Op::AsUser { op, .. } => self.apply_in(c, op),
            Op::HSet {
                key,
                pairs,
                if_absent,
            } => self.hset(c, key, pairs, *if_absent),
            Op::HDel { key, fields } => self.hdel(c, key, fields),
            Op::HIncrBy { key, field, delta } => self.hincr_by(c, key, field, *delta),
            Op::HIncrByFloat {
                key,
                field,
                increment,
            } => self.hincr_by_float(c, key, field, increment),
        }
    }

    /// Starts the changes of a request: they will share the next main revision.
    fn begin(&self) -> Changes {
        Changes {
            main: self.revision + 1,
            events: Vec::new(),
            flushed: false,
        }
    }

    /// Puts the string `value` at `key` as the next change, leaving the deadline `ttl` says.
    fn put_in(&mut self, c: &mut Changes, key: &Bytes, value: &Bytes, ttl: Ttl) -> Checked {
        self.put_stored_in(c, key, &Stored::String(value.clone()), ttl)
    }

    /// Puts `value` (a string or a hash) at `key` as the next change, leaving the deadline
    /// `ttl` says, if the schemas in force allow it (SchemaAtApply; refused, nothing changes).
    fn put_stored_in(&mut self, c: &mut Changes, key: &Bytes, value: &Stored, ttl: Ttl) -> Checked {
        self.check_schema(key, value)?;
        self.put_unchecked_in(c, key, value, ttl);
        Ok(())
    }

    /// [`Store::put_stored_in`] without the schema check: for a value written back unchanged
    /// (a deadline set or cleared), or one checked already.
    fn put_unchecked_in(&mut self, c: &mut Changes, key: &Bytes, value: &Stored, ttl: Ttl) {
        self.put_touched_in(c, key, value, ttl, Touched::default());
    }

    /// [`Store::put_unchecked_in`] of a hash write that names its exact change (TouchedFields).
    fn put_touched_in(&mut self, c: &mut Changes, key: &Bytes, v: &Stored, ttl: Ttl, t: Touched) {
        let revision = Revision::new(c.main, c.events.len() as u64);
        c.events.push(self.keyspace.put(key, v, revision, t));
        match ttl {
            Ttl::Clear => {
                self.deadlines.remove(key);
            }
            Ttl::Keep => {}
            Ttl::At(at) => self.deadlines.set(key, at),
        }
    }

    /// Deletes `key` as the next change if it is live; returns whether it was. Its deadline
    /// goes with it (DeadlineLive).
    fn delete_in(&mut self, c: &mut Changes, key: &Bytes) -> bool {
        self.tombstone_in(c, key, false)
    }

    /// Deletes `key` as an expiry (an `Expired` event) if it is live.
    fn expire_in(&mut self, c: &mut Changes, key: &Bytes) -> bool {
        self.tombstone_in(c, key, true)
    }

    fn tombstone_in(&mut self, c: &mut Changes, key: &Bytes, expired: bool) -> bool {
        let revision = Revision::new(c.main, c.events.len() as u64);
        match self.keyspace.delete(key, revision, expired) {
            Some(event) => {
                c.events.push(event);
                self.deadlines.remove(key);
                true
            }
            None => false,
        }
    }

    /// Returns the revision the store will have once `c` ends: its main revision if it
    /// changed anything, else the current one.
    fn revision_with(&self, c: &Changes) -> u64 {
        if c.events.is_empty() {
            self.revision
        } else {
            c.main
        }
    }

    /// Ends the request: its main revision becomes current if it changed anything
    /// (RevisionMonotonic). Returns its events.
    fn end(&mut self, c: Changes) -> Vec<Event> {
        if !c.events.is_empty() {
            self.revision = c.main;
        }
        c.events
    }

    /// Returns the current global revision: 0 for an empty store, and the first write makes 1.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Returns the oldest revision still readable; 0 until a compaction.
    pub fn compact_revision(&self) -> u64 {
        self.compact_revision
    }

    /// Returns the latest live value of `key`, in O(log n).
    pub fn get(&self, key: &[u8]) -> Option<KeyValue> {
        self.keyspace.get(key)
    }

    /// Returns the stored changes with revisions in `range`, as (revision, key), oldest first
    /// (reversible): every change at or above the compact revision, none below (ChangeIndex in
    /// `kv.rs`). [`Store::event_at`] turns one into its [`Event`].
    pub fn changes(
        &self,
        range: (std::ops::Bound<Revision>, std::ops::Bound<Revision>),
    ) -> impl DoubleEndedIterator<Item = (Revision, &Bytes)> + '_ {
        self.keyspace.changes(range)
    }

    /// Returns the event of `key`'s change at exactly `revision`, if it is stored.
    pub fn event_at(&self, key: &[u8], revision: Revision) -> Option<Event> {
        self.keyspace.event_at(key, revision)
    }

    /// Returns `key`'s deadline (unix ms), if it has one.
    pub fn deadline(&self, key: &[u8]) -> Option<i64> {
        self.deadlines.get(key)
    }

    /// Returns the main revision of `key`'s last change, a delete or expiry included (0 if no
    /// change is stored): what WATCH records and EXEC compares ([`Compare`]).
    pub fn last_change(&self, key: &[u8]) -> u64 {
        self.keyspace.last_change(key)
    }

    /// Returns how many clients the dedup table remembers (INFO's `dedup_clients`).
    pub fn dedup_clients(&self) -> usize {
        self.dedup.len()
    }

    /// Returns the number of live (not deleted) keys.
    pub fn len(&self) -> usize {
        self.keyspace.len()
    }

    /// Returns whether no key is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Returns the live keys in byte order.
    pub fn keys(&self) -> impl Iterator<Item = &Bytes> + '_ {
        self.keyspace.keys()
    }

    /// Returns one page of a SCAN from `cursor` (0 starts) and the cursor of the next page (0
    /// when done): live keys in hash order, `count` of them or a few more so that keys of one
    /// hash are never split. A key live for the whole iteration is returned exactly once;
    /// cursors mean the same on every node. See `kv.rs`, "Scan cursors".
    pub fn scan(&self, cursor: u64, count: usize) -> (Vec<Bytes>, u64) {
        self.keyspace.scan(cursor, count)
    }
}
