//! The deterministic MVCC keyspace: [`Store::apply`] turns committed [`Request`]s into revisions,
//! and reads answer at any revision still in the history window. Etcd's data model and words.
//!
//! Layout:
//! - `request.rs`: the replicated payload ([`Request`], [`Op`], [`Response`]), versioned.
//! - `revision.rs`: [`Revision`] `{main, sub}`.
//! - `event.rs`: [`KeyValue`] and [`Event`], what readers and watchers see.
//! - `key_index.rs`: one key's versions and generations; reading and compacting one key.
//! - `kv.rs`: the keyspace, key -> key index, in byte order.
//! - `strings.rs`: the read-modify-writes of the string commands, decided at apply.
//! - `long_double.rs`: [`LongDouble`], INCRBYFLOAT's x87 extended arithmetic in software.
//! - `dedup.rs`: the client dedup table and its bound.
//! - `snapshot.rs`: the snapshot encoding and the checks on load.
//! - `error.rs`: [`StoreError`], whose texts are RESP errors.
//! - `notify.rs`: [`Notice`], the keyspace notifications (Redis event names) an op emits.
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

mod deadlines;
mod dedup;
mod error;
mod event;
mod expiry;
mod key_index;
mod kv;
mod long_double;
mod notify;
mod request;
mod revision;
mod snapshot;
mod strings;

#[cfg(test)]
mod store_test;
#[cfg(test)]
mod strings_test;
#[cfg(test)]
mod txn_test;

use bytes::Bytes;
use serde::Serialize;

use deadlines::Deadlines;
use dedup::{Dedup, DedupTable};
use kv::Keyspace;

pub use dedup::{DEDUP_WINDOW_MS, MAX_CLOCK_SKEW_MS, MAX_DEDUP_CLIENTS};
pub use error::StoreError;
pub use event::{Event, EventKind, KeyValue};
pub use long_double::LongDouble;
pub use notify::{Notice, NoticeClass};
pub use request::{
    ClientSeq, Compare, ExpireCond, Expiry, GetExAction, Op, PutTtl, ReadOp, Request, Response,
    SetWhen, FORMAT_VERSION,
};
pub use revision::Revision;
pub use snapshot::SnapshotError;
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
    /// The live keys' deadlines (DeadlineLive). Serialised last (`snapshot.rs`).
    deadlines: Deadlines,
}

/// What applying one request did besides its response: its changes in `sub` order, and the
/// keyspace notifications it emits, in Redis's order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    pub events: Vec<Event>,
    pub notices: Vec<Notice>,
}

/// The changes of one request, all under main revision `main`; a transaction's ops share one.
struct Changes {
    main: u64,
    events: Vec<Event>,
}

impl Changes {
    fn len(&self) -> usize {
        self.events.len()
    }

    fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

/// The deadline a put leaves on its key, resolved from a [`PutTtl`].
#[derive(Clone, Copy, Debug)]
enum Ttl {
    Clear,
    Keep,
    At(i64),
}

impl Ttl {
    /// Resolves a stamped [`PutTtl`]; refuses an unstamped relative one.
    fn resolve(ttl: PutTtl) -> Result<Ttl, StoreError> {
        Ok(match ttl {
            PutTtl::Clear => Ttl::Clear,
            PutTtl::Keep => Ttl::Keep,
            PutTtl::Expire(expiry) => Ttl::At(expiry::deadline(expiry)?),
        })
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
        let (response, applied) = self.apply_op(&req.op);
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
        match self.apply_in(&mut changes, op) {
            Ok(response) => {
                let events = self.end(changes);
                let mut notices = Vec::new();
                notify::notices(op, &response, &events, &mut notices);
                let applied = Applied { events, notices };
                (response, applied)
            }
            Err(error) => {
                debug_assert!(changes.is_empty(), "an error changes nothing");
                (Response::Error(error), Applied::default())
            }
        }
    }

    /// Applies one op, recording its changes in `c` (shared by the ops of a transaction).
    /// Every arm decides from the current state only (DeterministicApply); an error changes
    /// nothing.
    fn apply_in(&mut self, c: &mut Changes, op: &Op) -> Result<Response, StoreError> {
        match op {
            Op::Put { key, value } => {
                // RevisionMonotonic: a put always makes a change.
                self.put_in(c, key, value, Ttl::Clear);
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
            Op::Flush => self.flush(c),
            Op::Cas {
                key,
                expected_mod_revision,
                value,
            } => self.cas(c, key, *expected_mod_revision, value, PutTtl::Clear),
            Op::Txn { .. } => Err(StoreError::NestedTxn),
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
        }
    }

    /// ROLLBACK: the value `key` had at `revision`, written as the next change (a put that
    /// clears the TTL, or a delete if the key was absent then).
    fn rollback(
        &mut self,
        c: &mut Changes,
        key: &Bytes,
        revision: u64,
    ) -> Result<Response, StoreError> {
        self.check_readable(revision)?;
        match self.keyspace.get_at(key, revision) {
            Some(kv) => self.put_in(c, key, &kv.value, Ttl::Clear),
            None => {
                self.delete_in(c, key);
            }
        }
        let revision = self.revision_with(c);
        Ok(Response::Integer {
            value: revision as i64,
            revision,
        })
    }

    /// EXEC: every compare must hold, then the ops apply in order under one main revision
    /// (RevisionMonotonic: their changes are its subs; none, and the revision stays). An op's
    /// error answers that op and changes nothing; the others still apply, as in Redis.
    fn txn(&mut self, compares: &[Compare], ops: &[Op], now_ms: i64) -> (Response, Applied) {
        if !compares.iter().all(|cmp| self.compare_holds(cmp, now_ms)) {
            let revision = self.revision;
            return (
                Response::Txn {
                    responses: None,
                    revision,
                },
                Applied::default(),
            );
        }
        let mut changes = self.begin();
        let mut responses = Vec::with_capacity(ops.len());
        let mut notices = Vec::new();
        for op in ops {
            let before = changes.len();
            let response = match self.apply_in(&mut changes, op) {
                Ok(response) => response,
                Err(error) => {
                    debug_assert_eq!(changes.len(), before, "an error changes nothing");
                    Response::Error(error)
                }
            };
            notify::notices(op, &response, &changes.events[before..], &mut notices);
            responses.push(response);
        }
        let events = self.end(changes);
        let revision = self.revision;
        let applied = Applied { events, notices };
        (
            Response::Txn {
                responses: Some(responses),
                revision,
            },
            applied,
        )
    }

    /// Whether a WATCHed key is as it was watched: no change since (a delete or an expiry
    /// included), no compaction that may have hidden one, and not due to expire (Redis 7
    /// aborts EXEC when a watched key has expired, `isWatchedKeyExpired`).
    fn compare_holds(&self, cmp: &Compare, now_ms: i64) -> bool {
        let current = self.keyspace.last_change(&cmp.key);
        if current != cmp.mod_revision {
            return false;
        }
        if current == 0 && self.compact_revision > cmp.watched_at {
            return false;
        }
        self.deadlines.get(&cmp.key).is_none_or(|at| at > now_ms)
    }

    /// Answers a read from the current state; changes nothing.
    pub fn read(&self, read: &ReadOp) -> Response {
        let revision = self.revision;
        match read {
            ReadOp::Get { keys } => Response::Values {
                values: keys
                    .iter()
                    .map(|key| self.keyspace.get(key).map(|kv| kv.value))
                    .collect(),
                revision,
            },
            ReadOp::Meta { key } => Response::Meta {
                kv: self.keyspace.get(key),
                deadline: self.deadlines.get(key),
                revision,
            },
            ReadOp::Len => Response::Integer {
                value: self.len() as i64,
                revision,
            },
        }
    }

    /// Starts the changes of a request: they will share the next main revision.
    fn begin(&self) -> Changes {
        Changes {
            main: self.revision + 1,
            events: Vec::new(),
        }
    }

    /// Puts `value` at `key` as the next change, leaving the deadline `ttl` says.
    fn put_in(&mut self, c: &mut Changes, key: &Bytes, value: &Bytes, ttl: Ttl) {
        let revision = Revision::new(c.main, c.events.len() as u64);
        c.events.push(self.keyspace.put(key, value, revision));
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

    fn compact(&mut self, revision: u64) -> Response {
        if revision <= self.compact_revision {
            return Response::Error(StoreError::Compacted {
                requested: revision,
                compact_revision: self.compact_revision,
            });
        }
        if revision > self.revision {
            return Response::Error(StoreError::FutureRevision {
                requested: revision,
                current: self.revision,
            });
        }
        // Does not bump the revision (RevisionMonotonic), as etcd's compaction.
        self.keyspace.compact(revision);
        self.compact_revision = revision;
        tracing::debug!(compact_revision = revision, "compacted history");
        Response::Compacted {
            compact_revision: revision,
        }
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

    /// Returns the value of `key` as of `revision`; 0 means the latest.
    ///
    /// Fails with [`StoreError::Compacted`] below the compact revision (reading at exactly it
    /// works), and with [`StoreError::FutureRevision`] above the current revision.
    pub fn get_at(&self, key: &[u8], revision: u64) -> Result<Option<KeyValue>, StoreError> {
        if revision == 0 {
            return Ok(self.get(key));
        }
        self.check_readable(revision)?;
        Ok(self.keyspace.get_at(key, revision))
    }

    /// Returns `key`'s changes with `from <= main <= to`, oldest first, at most `limit` of them
    /// (`limit` 0 returns none).
    ///
    /// `to` 0 means up to the current revision. `from` 0 means every stored version, which after
    /// a compaction starts with the key's value at the compact revision if that was written
    /// earlier. Fails with [`StoreError::Compacted`] if `from` is below the compact revision,
    /// and with [`StoreError::FutureRevision`] if `to` is above the current revision. An
    /// event's `prev` is `None` when the key did not exist before it, or when that earlier
    /// version has been compacted away.
    pub fn history(
        &self,
        key: &[u8],
        from: u64,
        to: u64,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        if from != 0 && from < self.compact_revision {
            return Err(StoreError::Compacted {
                requested: from,
                compact_revision: self.compact_revision,
            });
        }
        let to = if to == 0 { self.revision } else { to };
        self.check_readable(to)?;
        Ok(self.keyspace.history(key, from, to, limit))
    }

    fn check_readable(&self, revision: u64) -> Result<(), StoreError> {
        if revision < self.compact_revision {
            return Err(StoreError::Compacted {
                requested: revision,
                compact_revision: self.compact_revision,
            });
        }
        if revision > self.revision {
            return Err(StoreError::FutureRevision {
                requested: revision,
                current: self.revision,
            });
        }
        Ok(())
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

    /// Returns the earliest deadline of any key.
    pub fn next_deadline(&self) -> Option<i64> {
        self.deadlines.first()
    }

    /// Returns up to `limit` keys whose deadline is at or before `now_ms`, earliest first: what
    /// the leader's expiry proposes next.
    pub fn due(&self, now_ms: i64, limit: usize) -> Vec<Bytes> {
        self.deadlines.due(now_ms, limit)
    }

    /// Returns how many keys have a deadline.
    pub fn expiring(&self) -> usize {
        self.deadlines.len()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn put(key: &str, value: &str) -> Op {
        Op::Put {
            key: b(key),
            value: b(value),
        }
    }

    fn del(keys: &[&str]) -> Op {
        Op::Delete {
            keys: keys.iter().map(|k| b(k)).collect(),
        }
    }

    fn must_apply(store: &mut Store, op: Op) -> Response {
        store
            .apply(&Request {
                client: None,
                op,
                at_ms: 0,
            })
            .0
    }

    fn must_apply_as(
        store: &mut Store,
        client_id: u64,
        seq: u64,
        op: Op,
    ) -> (Response, Vec<Event>) {
        store.apply(&Request {
            client: Some(ClientSeq {
                client_id,
                seq,
                ..Default::default()
            }),
            op,
            at_ms: 0,
        })
    }

    /// Returns (value, create_revision, mod_revision, version) of `key` at `revision`.
    fn must_read(store: &Store, key: &str, revision: u64) -> Option<(String, u64, u64, u64)> {
        let kv = store
            .get_at(key.as_bytes(), revision)
            .expect("readable revision")?;
        let value = String::from_utf8(kv.value.to_vec()).unwrap();
        Some((value, kv.create_revision, kv.mod_revision, kv.version))
    }

    //   rev:   1        2        3          4          5        6
    //   a:   put(x) - put(x) - put(y) -   del[a,a,b] - .   -  put(z)
    //   b:     .        .        .       (absent)   put(w)     .
    //   a's generations: [c1 v1, c1 v2, c1 v3, tomb@4] then [c6 v1]
    #[test]
    fn revisions_versions_and_generations() {
        struct Step {
            op: Op,
            want_response: Response,
            want_events: usize,
        }
        let steps = [
            Step {
                op: put("a", "x"),
                want_response: Response::Put { revision: 1 },
                want_events: 1,
            },
            Step {
                op: put("a", "x"),
                want_response: Response::Put { revision: 2 },
                want_events: 1,
            },
            Step {
                op: put("a", "y"),
                want_response: Response::Put { revision: 3 },
                want_events: 1,
            },
            Step {
                op: del(&["a", "a", "b"]),
                want_response: Response::Deleted {
                    deleted: 1,
                    revision: 4,
                },
                want_events: 1,
            },
            Step {
                op: del(&["a", "b"]),
                want_response: Response::Deleted {
                    deleted: 0,
                    revision: 4,
                },
                want_events: 0,
            },
            Step {
                op: put("b", "w"),
                want_response: Response::Put { revision: 5 },
                want_events: 1,
            },
            Step {
                op: put("a", "z"),
                want_response: Response::Put { revision: 6 },
                want_events: 1,
            },
        ];
        let mut s = Store::new();
        assert_eq!((s.revision(), s.get_at(b"a", 0)), (0, Ok(None)));
        for (i, step) in steps.into_iter().enumerate() {
            let (response, events) = s.apply(&Request {
                client: None,
                op: step.op,
                at_ms: 0,
            });
            assert_eq!(response, step.want_response, "step {i}");
            assert_eq!(events.len(), step.want_events, "step {i}");
        }
        struct Read {
            key: &'static str,
            revision: u64,
            want: Option<(&'static str, u64, u64, u64)>,
        }
        let reads = [
            Read {
                key: "a",
                revision: 1,
                want: Some(("x", 1, 1, 1)),
            },
            Read {
                key: "a",
                revision: 2,
                want: Some(("x", 1, 2, 2)),
            },
            Read {
                key: "a",
                revision: 3,
                want: Some(("y", 1, 3, 3)),
            },
            Read {
                key: "a",
                revision: 4,
                want: None,
            },
            Read {
                key: "a",
                revision: 5,
                want: None,
            },
            Read {
                key: "a",
                revision: 6,
                want: Some(("z", 6, 6, 1)),
            },
            Read {
                key: "a",
                revision: 0,
                want: Some(("z", 6, 6, 1)),
            },
            Read {
                key: "b",
                revision: 4,
                want: None,
            },
            Read {
                key: "b",
                revision: 5,
                want: Some(("w", 5, 5, 1)),
            },
            Read {
                key: "c",
                revision: 6,
                want: None,
            },
        ];
        for r in reads {
            let want = r.want.map(|(v, c, m, n)| (v.to_owned(), c, m, n));
            assert_eq!(
                must_read(&s, r.key, r.revision),
                want,
                "{}@{}",
                r.key,
                r.revision
            );
        }
        assert_eq!(s.len(), 2);
        assert_eq!(s.keys().cloned().collect::<Vec<_>>(), vec![b("a"), b("b")]);
        assert_eq!(
            s.get_at(b"a", 7),
            Err(StoreError::FutureRevision {
                requested: 7,
                current: 6
            })
        );
    }

    #[test]
    fn delete_events_number_subs_and_carry_prev() {
        let mut s = Store::new();
        must_apply(&mut s, put("a", "1"));
        must_apply(&mut s, put("b", "2"));
        let (response, events) = s.apply(&Request {
            client: None,
            op: del(&["b", "x", "a", "b"]),
            at_ms: 0,
        });
        assert_eq!(
            response,
            Response::Deleted {
                deleted: 2,
                revision: 3
            }
        );
        let got: Vec<(Revision, EventKind, Bytes, u64, Option<u64>)> = events
            .iter()
            .map(|e| {
                let prev = e.prev.as_ref().map(|p| p.mod_revision);
                (
                    e.revision,
                    e.kind,
                    e.kv.key.clone(),
                    e.kv.mod_revision,
                    prev,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (Revision::new(3, 0), EventKind::Delete, b("b"), 3, Some(2)),
                (Revision::new(3, 1), EventKind::Delete, b("a"), 3, Some(1)),
            ]
        );
        assert_eq!((events[0].kv.version, events[0].kv.create_revision), (0, 0));
        assert!(events[0].kv.value.is_empty());
        assert!(s.is_empty());
        // The apply events and history agree.
        assert_eq!(s.history(b"b", 3, 3, 10).unwrap(), vec![events[0].clone()]);
    }

    /// (key, revision, the value read, or `Err(())` for `Compacted`).
    type WantRead = (&'static str, u64, Result<Option<&'static str>, ()>);

    //   rev:  1       2       3       4
    //   a:  put(1) put(2)    .     del
    //   b:    .       .    put(3)    .
    #[test]
    fn compaction_edges() {
        struct Case {
            name: &'static str,
            compacts: &'static [u64],
            want_response: Response,
            want_compact_revision: u64,
            want_reads: &'static [WantRead],
            want_history_a: &'static [u64],
        }
        let compacted = |requested, compact_revision| {
            Response::Error(StoreError::Compacted {
                requested,
                compact_revision,
            })
        };
        let cases = [
            Case {
                name: "zero on a fresh store",
                compacts: &[0],
                want_response: compacted(0, 0),
                want_compact_revision: 0,
                want_reads: &[("a", 1, Ok(Some("1")))],
                want_history_a: &[1, 2, 4],
            },
            Case {
                name: "future",
                compacts: &[5],
                want_response: Response::Error(StoreError::FutureRevision {
                    requested: 5,
                    current: 4,
                }),
                want_compact_revision: 0,
                want_reads: &[("a", 1, Ok(Some("1")))],
                want_history_a: &[1, 2, 4],
            },
            Case {
                name: "keeps the value at the compact revision",
                compacts: &[3],
                want_response: Response::Compacted {
                    compact_revision: 3,
                },
                want_compact_revision: 3,
                want_reads: &[
                    ("a", 2, Err(())),
                    ("a", 3, Ok(Some("2"))),
                    ("b", 3, Ok(Some("3"))),
                    ("a", 4, Ok(None)),
                ],
                want_history_a: &[2, 4],
            },
            Case {
                name: "tombstone at the compact revision stays in history",
                compacts: &[4],
                want_response: Response::Compacted {
                    compact_revision: 4,
                },
                want_compact_revision: 4,
                want_reads: &[
                    ("a", 3, Err(())),
                    ("a", 4, Ok(None)),
                    ("b", 4, Ok(Some("3"))),
                ],
                want_history_a: &[4],
            },
            Case {
                name: "again at the same revision",
                compacts: &[3, 3],
                want_response: compacted(3, 3),
                want_compact_revision: 3,
                want_reads: &[("a", 3, Ok(Some("2")))],
                want_history_a: &[2, 4],
            },
            Case {
                name: "below the compact revision",
                compacts: &[3, 2],
                want_response: compacted(2, 3),
                want_compact_revision: 3,
                want_reads: &[("a", 2, Err(()))],
                want_history_a: &[2, 4],
            },
        ];
        for c in cases {
            let mut s = Store::new();
            for op in [put("a", "1"), put("a", "2"), put("b", "3"), del(&["a"])] {
                must_apply(&mut s, op);
            }
            let mut response = None;
            for &revision in c.compacts {
                response = Some(must_apply(&mut s, Op::Compact { revision }));
            }
            assert_eq!(response, Some(c.want_response), "{}", c.name);
            assert_eq!(s.compact_revision(), c.want_compact_revision, "{}", c.name);
            assert_eq!(s.revision(), 4, "{}: compaction bumps nothing", c.name);
            for &(key, revision, want) in c.want_reads {
                let got = s.get_at(key.as_bytes(), revision);
                let got = match got {
                    Ok(kv) => Ok(kv.map(|kv| String::from_utf8(kv.value.to_vec()).unwrap())),
                    Err(StoreError::Compacted {
                        requested,
                        compact_revision,
                    }) => {
                        assert_eq!(
                            (requested, compact_revision),
                            (revision, s.compact_revision())
                        );
                        Err(())
                    }
                    Err(e) => panic!("{}: {key}@{revision}: {e}", c.name),
                };
                assert_eq!(
                    got,
                    want.map(|v| v.map(str::to_owned)),
                    "{}: {key}@{revision}",
                    c.name
                );
            }
            let history: Vec<u64> = s
                .history(b"a", 0, 0, usize::MAX)
                .unwrap()
                .iter()
                .map(|e| e.revision.main)
                .collect();
            assert_eq!(history, c.want_history_a, "{}", c.name);
            let from = s.compact_revision();
            if from > 1 {
                assert_eq!(
                    s.history(b"a", from - 1, 0, 10),
                    Err(StoreError::Compacted {
                        requested: from - 1,
                        compact_revision: from
                    }),
                    "{}",
                    c.name
                );
            }
        }
    }

    #[test]
    fn history_bounds() {
        let mut s = Store::new();
        for v in ["1", "2", "3"] {
            must_apply(&mut s, put("a", v));
        }
        let mains = |r: Result<Vec<Event>, StoreError>| {
            r.map(|events| events.iter().map(|e| e.revision.main).collect::<Vec<_>>())
        };
        assert_eq!(mains(s.history(b"a", 2, 0, 10)), Ok(vec![2, 3]));
        assert_eq!(mains(s.history(b"a", 1, 2, 10)), Ok(vec![1, 2]));
        assert_eq!(mains(s.history(b"a", 1, 0, 2)), Ok(vec![1, 2]));
        assert_eq!(mains(s.history(b"a", 3, 1, 10)), Ok(vec![]));
        assert_eq!(mains(s.history(b"a", 9, 0, 10)), Ok(vec![]));
        assert_eq!(mains(s.history(b"zz", 0, 0, 10)), Ok(vec![]));
        assert_eq!(
            mains(s.history(b"a", 0, 4, 10)),
            Err(StoreError::FutureRevision {
                requested: 4,
                current: 3
            })
        );
    }

    #[test]
    fn dedup_same_seq_returns_cached_older_seq_refused() {
        let mut s = Store::new();
        let (first, events) = must_apply_as(&mut s, 1, 5, put("a", "x"));
        assert_eq!(
            (first.clone(), events.len()),
            (Response::Put { revision: 1 }, 1)
        );
        let before = s.clone();
        struct Case {
            seq: u64,
            op: Op,
            want: Response,
        }
        let cases = [
            // A retry, even with a different body, answers the recorded response.
            Case {
                seq: 5,
                op: put("a", "x"),
                want: first.clone(),
            },
            Case {
                seq: 5,
                op: del(&["a"]),
                want: first.clone(),
            },
            Case {
                seq: 4,
                op: put("a", "old"),
                want: Response::Error(StoreError::StaleSequence {
                    client_id: 1,
                    seq: 4,
                    last: 5,
                }),
            },
        ];
        for c in cases {
            let (response, events) = must_apply_as(&mut s, 1, c.seq, c.op);
            assert_eq!(response, c.want, "seq {}", c.seq);
            assert!(events.is_empty());
            assert_eq!(s, before, "seq {} changed nothing", c.seq);
        }
        // A refused request is recorded too, and its retry answers the same error.
        let (compact, _) = must_apply_as(&mut s, 1, 6, Op::Compact { revision: 9 });
        assert!(matches!(
            compact,
            Response::Error(StoreError::FutureRevision { .. })
        ));
        assert_eq!(
            must_apply_as(&mut s, 1, 6, Op::Compact { revision: 1 }).0,
            compact
        );
        // Another client and requests without a client are independent.
        assert_eq!(
            must_apply_as(&mut s, 2, 1, put("a", "y")).0,
            Response::Put { revision: 2 }
        );
        assert_eq!(
            must_apply(&mut s, put("a", "z")),
            Response::Put { revision: 3 }
        );
        assert_eq!(
            must_apply(&mut s, put("a", "z")),
            Response::Put { revision: 4 }
        );
    }

    /// Applies `op` in an entry stamped `at_ms`, as client `client_id`'s write `seq` first sent
    /// at `sent_ms`, a retry or a first attempt.
    fn apply_stamped(
        store: &mut Store,
        at_ms: i64,
        (client_id, seq, sent_ms, retry): (u64, u64, i64, bool),
        op: Op,
    ) -> Response {
        let client = ClientSeq {
            client_id,
            seq,
            sent_ms,
            retry,
        };
        store
            .apply(&Request {
                client: Some(client),
                op,
                at_ms,
            })
            .0
    }

    fn incr(key: &str) -> Op {
        Op::IncrBy {
            key: b(key),
            delta: 1,
        }
    }

    fn retry_expired(age_ms: i64) -> Response {
        Response::Error(StoreError::RetryExpired {
            age_ms,
            window_ms: DEDUP_WINDOW_MS,
        })
    }

    /// DedupBounded is a memory valve only: past it, a retry of an evicted client is refused as
    /// uncertain and changes nothing (NoDoubleApplyAfterEviction), where it used to apply
    /// again; a first attempt of an unknown client still applies.
    #[test]
    fn dedup_valve_refuses_an_evicted_clients_retry_instead_of_applying_it_twice() {
        let mut s = Store::new();
        let t = 1_000_000;
        assert_eq!(
            apply_stamped(&mut s, t, (0, 1, t, false), incr("n")),
            Response::Integer {
                value: 1,
                revision: 1
            }
        );
        for client_id in 1..MAX_DEDUP_CLIENTS as u64 {
            apply_stamped(&mut s, t + 1, (client_id, 1, t, false), del(&["missing"]));
        }
        assert_eq!(s.dedup.len(), MAX_DEDUP_CLIENTS);
        // Full: client 0's retry is still answered from the table.
        let one = Response::Integer {
            value: 1,
            revision: 1,
        };
        assert_eq!(
            apply_stamped(&mut s, t + 2, (0, 1, t, true), incr("n")),
            one
        );
        // One more client evicts client 0, the oldest stamp.
        apply_stamped(
            &mut s,
            t + 3,
            (u64::MAX, 1, t + 3, false),
            del(&["missing"]),
        );
        assert_eq!(s.dedup.len(), MAX_DEDUP_CLIENTS);
        let before = s.clone();
        assert_eq!(
            apply_stamped(&mut s, t + 4, (0, 1, t, true), incr("n")),
            retry_expired(4)
        );
        assert!(s == before, "the refused retry changed nothing");
        // A first attempt is never a duplicate: it applies (and evicts client 1).
        assert_eq!(
            apply_stamped(&mut s, t + 5, (0, 2, t + 5, false), incr("n")),
            Response::Integer {
                value: 2,
                revision: 2
            }
        );
        let restored = Store::from_snapshot(&s.to_snapshot()).unwrap();
        assert!(restored == s);
    }

    /// DedupWindow: an entry is kept for the window of leader time however many other clients
    /// write meanwhile, and is evicted by the first entry stamped past it; a retry then is
    /// refused as uncertain, never applied twice. A late first attempt still applies.
    #[test]
    fn dedup_window_keeps_entries_through_churn_and_refuses_retries_past_it() {
        let mut s = Store::new();
        let t0 = 1_700_000_000_000;
        let one = Response::Integer {
            value: 1,
            revision: 1,
        };
        assert_eq!(
            apply_stamped(&mut s, t0, (1, 7, t0 - 3, false), incr("n")),
            one
        );
        // Churn: 50,000 one-write clients over the window (each a new connection without
        // reuse), and expiry entries without a client.
        let churn = 50_000;
        for i in 0..churn {
            let at = t0 + 1 + DEDUP_WINDOW_MS * i / churn;
            apply_stamped(&mut s, at, (1_000 + i as u64, 1, at, false), del(&["x"]));
        }
        assert_eq!(s.dedup.len(), 1 + churn as usize);
        s.apply(&Request {
            client: None,
            op: del(&["x"]),
            at_ms: t0 + DEDUP_WINDOW_MS,
        });
        // Exactly the window after: kept, the retry is answered from the table.
        assert_eq!(
            apply_stamped(
                &mut s,
                t0 + DEDUP_WINDOW_MS,
                (1, 7, t0 - 3, true),
                incr("n")
            ),
            one
        );
        // One ms later (a leader's clock, by the stamp of the entry applied): evicted.
        s.apply(&Request {
            client: None,
            op: del(&["x"]),
            at_ms: t0 + DEDUP_WINDOW_MS + 1,
        });
        assert_eq!(
            s.dedup.len(),
            churn as usize,
            "client 1 evicted, churn kept"
        );
        let late = t0 + DEDUP_WINDOW_MS + 2;
        s.apply(&Request {
            client: None,
            op: del(&["x"]),
            at_ms: late,
        });
        let before = s.clone();
        assert_eq!(
            apply_stamped(&mut s, late, (1, 7, t0 - 3, true), incr("n")),
            retry_expired(DEDUP_WINDOW_MS + 5)
        );
        assert!(s == before, "refused: not applied, not recorded");
        // Client 1's next write, a first attempt, applies; its retry is deduplicated.
        let two = Response::Integer {
            value: 2,
            revision: 2,
        };
        assert_eq!(
            apply_stamped(&mut s, late, (1, 8, late, false), incr("n")),
            two
        );
        assert_eq!(
            apply_stamped(&mut s, late, (1, 8, late, true), incr("n")),
            two
        );
        // Every entry older than the window goes at once, by stamp, not by count.
        s.apply(&Request {
            client: None,
            op: del(&["x"]),
            at_ms: late + 2 * DEDUP_WINDOW_MS,
        });
        assert_eq!(s.dedup.len(), 0);
    }

    /// NoDoubleApplyAfterEviction under clock skew: the forwarder's clock may run ahead of the
    /// leaders' by up to MAX_CLOCK_SKEW_MS and its retry is still refused; a leader whose
    /// clock runs behind the last one's evicts nothing early.
    #[test]
    fn dedup_window_tolerates_the_assumed_clock_skew() {
        let mut s = Store::new();
        let t0 = 1_700_000_000_000;
        // Leader A, clock 30 s behind the forwarder's, applies client 1's write.
        let forwarder = t0 + 30_000;
        apply_stamped(&mut s, t0, (1, 1, forwarder, false), incr("n"));
        // Leader B's clock is 40 s behind A's: a write stamped by it evicts nothing early.
        apply_stamped(&mut s, t0 - 40_000, (2, 1, t0, false), incr("m"));
        assert_eq!(s.dedup.len(), 2);
        // Much later a leader evicts both.
        let late = t0 + DEDUP_WINDOW_MS + 1;
        s.apply(&Request {
            client: None,
            op: del(&["x"]),
            at_ms: late,
        });
        assert_eq!(s.dedup.len(), 0);
        let before = s.clone();
        let refused = apply_stamped(&mut s, late, (1, 1, forwarder, true), incr("n"));
        assert!(
            matches!(refused, Response::Error(StoreError::RetryExpired { .. })),
            "{refused:?}"
        );
        assert_eq!(s, before);
        // A retry first sent more than the skew bound after the newest evicted stamp cannot
        // be of an evicted write: it is new.
        let fresh = t0 + MAX_CLOCK_SKEW_MS + 1;
        assert_eq!(
            apply_stamped(&mut s, late, (3, 1, fresh, true), incr("n")),
            Response::Integer {
                value: 2,
                revision: 3
            }
        );
    }

    /// SnapshotFaithful for the window: stamps and the newest evicted stamp survive a
    /// snapshot, so a restored node evicts the same entries at the same stamps and refuses the
    /// same retries.
    #[test]
    fn dedup_window_survives_snapshot_and_restore() {
        let mut s = Store::new();
        let t0 = 1_700_000_000_000;
        for (client_id, at) in [(1, t0), (2, t0 + 60_000), (3, t0 + 120_000)] {
            apply_stamped(&mut s, at, (client_id, 1, at, false), incr("n"));
        }
        // Client 1 ages out.
        s.apply(&Request {
            client: None,
            op: del(&["x"]),
            at_ms: t0 + DEDUP_WINDOW_MS + 1,
        });
        let mut restored = Store::from_snapshot(&s.to_snapshot()).unwrap();
        assert_eq!(restored, s);
        for store in [&mut s, &mut restored] {
            assert_eq!(store.dedup.len(), 2);
            let at = t0 + DEDUP_WINDOW_MS + 60_001;
            assert!(matches!(
                apply_stamped(store, at, (1, 1, t0, true), incr("n")),
                Response::Error(StoreError::RetryExpired { .. })
            ));
            // Client 2 ages out at the same stamp on both; client 3 is still answered.
            assert_eq!(store.dedup.len(), 1);
            assert_eq!(
                apply_stamped(store, at, (3, 1, t0 + 120_000, true), incr("n")),
                Response::Integer {
                    value: 3,
                    revision: 3
                }
            );
        }
        assert_eq!(restored, s);
    }

    #[test]
    fn never_panics_on_odd_requests() {
        let mut s = Store::new();
        let huge: Vec<Bytes> = (0..10_000u32)
            .map(|i| Bytes::from(i.to_be_bytes().to_vec()))
            .collect();
        let ops = [
            put("", ""),
            del(&[""]),
            del(&[]),
            Op::Delete { keys: huge },
            Op::Put {
                key: Bytes::from(vec![0xff; 1 << 16]),
                value: Bytes::from(vec![0; 1 << 16]),
            },
            Op::Compact { revision: u64::MAX },
            Op::Compact { revision: 3 },
            Op::SetRange {
                key: b("a"),
                offset: u64::MAX,
                value: b("x"),
            },
            Op::MSet {
                pairs: Vec::new(),
                if_none_exist: true,
            },
            Op::IncrByFloat {
                key: b(""),
                increment: Bytes::from(vec![b'9'; 5000]),
            },
            Op::IncrByFloat {
                key: b(""),
                increment: b("0x1p99999999999999999999"),
            },
            Op::IncrByFloat {
                key: b(""),
                increment: b("-0x1p-99999999999999999999"),
            },
            Op::Rename {
                src: b("a"),
                dst: b("a"),
                if_absent: false,
            },
            Op::Flush,
        ];
        for op in ops {
            must_apply(&mut s, op);
        }
        assert_eq!((s.revision(), s.compact_revision(), s.len()), (4, 3, 0));
        must_apply_as(&mut s, u64::MAX, u64::MAX, put("a", "b"));
        must_apply_as(&mut s, u64::MAX, 0, put("a", "b"));
        assert!(s.get_at(b"", u64::MAX).is_err());
        assert!(s.history(b"", u64::MAX, u64::MAX, usize::MAX).is_err());
    }

    #[test]
    fn error_texts_start_with_resp_prefix() {
        let cases = [
            (
                StoreError::Compacted {
                    requested: 2,
                    compact_revision: 5,
                },
                "COMPACTED required revision 2 has been compacted; oldest available revision is 5",
            ),
            (
                StoreError::FutureRevision {
                    requested: 9,
                    current: 4,
                },
                "ERR revision 9 is in the future; current revision is 4",
            ),
            (
                StoreError::StaleSequence {
                    client_id: 7,
                    seq: 1,
                    last: 3,
                },
                "ERR stale request: sequence 1 of client 7 is older than the last applied 3",
            ),
            (
                StoreError::NotInteger,
                "ERR value is not an integer or out of range",
            ),
            (
                StoreError::Overflow,
                "ERR increment or decrement would overflow",
            ),
            (StoreError::NotFloat, "ERR value is not a valid float"),
            (
                StoreError::NanOrInfinity,
                "ERR increment would produce NaN or Infinity",
            ),
            (
                StoreError::StringTooLong,
                "ERR string exceeds maximum allowed size (proto-max-bulk-len)",
            ),
            (StoreError::NoSuchKey, "ERR no such key"),
        ];
        for (error, want) in cases {
            assert_eq!(error.to_string(), want);
        }
    }
}
