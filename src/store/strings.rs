//! The read-modify-writes of the string commands (SET NX/XX/GET, GETDEL, INCRBY, INCRBYFLOAT,
//! APPEND, SETRANGE, MSET/MSETNX, RENAME/RENAMENX, FLUSH, CAS), decided inside `apply` from the
//! state every node has at that point in the log, so each is atomic however many clients on
//! however many nodes race (DeterministicApply).
//!
//! Every op here either fails before changing anything (a [`StoreError`], no event) or records
//! its changes through one [`Changes`], which numbers them `sub` = 0, 1, … under the next main
//! revision and makes that revision current only if there was at least one
//! (RevisionMonotonic). A put always counts as a change, even of the same value, as etcd's put.
//!
//! Semantics follow Redis 7.0's `t_string.c` and `db.c`; the texts of the errors live in
//! `error.rs`. This file must not parse client arguments: the command layer has already refused
//! what Redis refuses before looking at the key.

use std::collections::BTreeSet;

use bytes::{Bytes, BytesMut};

use super::long_double::LongDouble;
use super::{Event, Response, Revision, SetWhen, Store, StoreError};

/// The longest string APPEND and SETRANGE may make: Redis's default `proto-max-bulk-len`,
/// 512 MiB. A constant, not configuration: the store reads no local config (DeterministicApply).
pub const MAX_STRING_LEN: u64 = 512 * 1024 * 1024;

/// The changes of one request, all under main revision `main`.
struct Changes {
    main: u64,
    events: Vec<Event>,
}

type Applied = Result<(Response, Vec<Event>), StoreError>;

impl Store {
    /// Starts the changes of a request: they will share the next main revision.
    fn begin(&self) -> Changes {
        Changes {
            main: self.revision + 1,
            events: Vec::new(),
        }
    }

    /// Puts `value` at `key` as the next change.
    fn put_in(&mut self, changes: &mut Changes, key: &Bytes, value: &Bytes) {
        let revision = Revision::new(changes.main, changes.events.len() as u64);
        changes.events.push(self.keyspace.put(key, value, revision));
    }

    /// Deletes `key` as the next change if it is live; returns whether it was.
    fn delete_in(&mut self, changes: &mut Changes, key: &Bytes) -> bool {
        let revision = Revision::new(changes.main, changes.events.len() as u64);
        match self.keyspace.delete(key, revision) {
            Some(event) => {
                changes.events.push(event);
                true
            }
            None => false,
        }
    }

    /// Ends the request: its main revision becomes current if it changed anything
    /// (RevisionMonotonic). Returns its events.
    fn end(&mut self, changes: Changes) -> Vec<Event> {
        if !changes.events.is_empty() {
            self.revision = changes.main;
        }
        changes.events
    }

    pub(super) fn set(&mut self, key: &Bytes, value: &Bytes, when: SetWhen, get: bool) -> Applied {
        let prev = self.keyspace.get(key);
        let written = match when {
            SetWhen::Always => true,
            SetWhen::Absent => prev.is_none(),
            SetWhen::Present => prev.is_some(),
        };
        let mut changes = self.begin();
        if written {
            self.put_in(&mut changes, key, value);
        }
        let events = self.end(changes);
        let response = Response::Set {
            written,
            prev: prev.filter(|_| get).map(|kv| kv.value),
            revision: self.revision,
        };
        Ok((response, events))
    }

    pub(super) fn get_del(&mut self, key: &Bytes) -> Applied {
        let value = self.keyspace.get(key).map(|kv| kv.value);
        let mut changes = self.begin();
        self.delete_in(&mut changes, key);
        let events = self.end(changes);
        let revision = self.revision;
        Ok((Response::Value { value, revision }, events))
    }

    pub(super) fn incr_by(&mut self, key: &Bytes, delta: i64) -> Applied {
        let current = match self.keyspace.get(key) {
            Some(kv) => parse_i64(&kv.value).ok_or(StoreError::NotInteger)?,
            None => 0,
        };
        let value = current.checked_add(delta).ok_or(StoreError::Overflow)?;
        let mut changes = self.begin();
        self.put_in(&mut changes, key, &Bytes::from(value.to_string()));
        let events = self.end(changes);
        let revision = self.revision;
        Ok((Response::Integer { value, revision }, events))
    }

    pub(super) fn incr_by_float(&mut self, key: &Bytes, increment: &[u8]) -> Applied {
        // Redis checks the stored value first, then the increment; both answer the same text.
        let current = match self.keyspace.get(key) {
            Some(kv) => LongDouble::parse(&kv.value).ok_or(StoreError::NotFloat)?,
            None => LongDouble::ZERO,
        };
        let increment = LongDouble::parse(increment).ok_or(StoreError::NotFloat)?;
        let sum = current
            .checked_add(increment)
            .ok_or(StoreError::NanOrInfinity)?;
        let text = Bytes::from(sum.to_human());
        let mut changes = self.begin();
        self.put_in(&mut changes, key, &text);
        let events = self.end(changes);
        let revision = self.revision;
        Ok((
            Response::Value {
                value: Some(text),
                revision,
            },
            events,
        ))
    }

    pub(super) fn append(&mut self, key: &Bytes, value: &Bytes) -> Applied {
        let new = match self.keyspace.get(key) {
            None => value.clone(),
            Some(kv) => {
                let total = kv.value.len() as u64 + value.len() as u64;
                if total > MAX_STRING_LEN {
                    return Err(StoreError::StringTooLong);
                }
                let mut buf = BytesMut::with_capacity(total as usize);
                buf.extend_from_slice(&kv.value);
                buf.extend_from_slice(value);
                buf.freeze()
            }
        };
        let mut changes = self.begin();
        self.put_in(&mut changes, key, &new);
        let events = self.end(changes);
        let (length, revision) = (new.len() as u64, self.revision);
        Ok((Response::Length { length, revision }, events))
    }

    pub(super) fn set_range(&mut self, key: &Bytes, offset: u64, value: &Bytes) -> Applied {
        let current = self.keyspace.get(key).map(|kv| kv.value);
        if value.is_empty() {
            // Redis writes nothing (and creates no key) for an empty value.
            let length = current.map_or(0, |v| v.len() as u64);
            let revision = self.revision;
            return Ok((Response::Length { length, revision }, Vec::new()));
        }
        let end = offset
            .checked_add(value.len() as u64)
            .filter(|&end| end <= MAX_STRING_LEN)
            .ok_or(StoreError::StringTooLong)?;
        let (offset, end) = (offset as usize, end as usize);
        let current = current.unwrap_or_default();
        let mut buf = BytesMut::with_capacity(current.len().max(end));
        buf.extend_from_slice(&current);
        if buf.len() < end {
            buf.resize(end, 0);
        }
        buf[offset..end].copy_from_slice(value);
        let new = buf.freeze();
        let mut changes = self.begin();
        self.put_in(&mut changes, key, &new);
        let events = self.end(changes);
        let (length, revision) = (new.len() as u64, self.revision);
        Ok((Response::Length { length, revision }, events))
    }

    pub(super) fn mset(&mut self, pairs: &[(Bytes, Bytes)], if_none_exist: bool) -> Applied {
        if if_none_exist && pairs.iter().any(|(key, _)| self.keyspace.is_live(key)) {
            let revision = self.revision;
            let applied = false;
            return Ok((Response::Applied { applied, revision }, Vec::new()));
        }
        // The last pair of each key wins; earlier ones are skipped, so a key changes once per
        // revision, as everywhere else (a key's version never outgrows the revision count,
        // which the snapshot checks rely on).
        let mut later: BTreeSet<&Bytes> = BTreeSet::new();
        let mut last: Vec<bool> = pairs.iter().rev().map(|(k, _)| later.insert(k)).collect();
        last.reverse();
        let mut changes = self.begin();
        for ((key, value), _) in pairs.iter().zip(last).filter(|(_, last)| *last) {
            self.put_in(&mut changes, key, value);
        }
        let events = self.end(changes);
        let revision = self.revision;
        let applied = true;
        Ok((Response::Applied { applied, revision }, events))
    }

    pub(super) fn rename(&mut self, src: &Bytes, dst: &Bytes, if_absent: bool) -> Applied {
        let value = self.keyspace.get(src).ok_or(StoreError::NoSuchKey)?.value;
        let revision = self.revision;
        if src == dst {
            // Redis: OK for RENAME, 0 for RENAMENX, and nothing changes.
            let applied = !if_absent;
            return Ok((Response::Applied { applied, revision }, Vec::new()));
        }
        if if_absent && self.keyspace.is_live(dst) {
            let applied = false;
            return Ok((Response::Applied { applied, revision }, Vec::new()));
        }
        let mut changes = self.begin();
        self.delete_in(&mut changes, src);
        self.put_in(&mut changes, dst, &value);
        let events = self.end(changes);
        let (applied, revision) = (true, self.revision);
        Ok((Response::Applied { applied, revision }, events))
    }

    pub(super) fn flush(&mut self) -> Applied {
        let keys: Vec<Bytes> = self.keyspace.keys().cloned().collect();
        let mut changes = self.begin();
        for key in &keys {
            self.delete_in(&mut changes, key);
        }
        let events = self.end(changes);
        let (deleted, revision) = (events.len() as u64, self.revision);
        Ok((Response::Deleted { deleted, revision }, events))
    }

    pub(super) fn cas(
        &mut self,
        key: &Bytes,
        expected_mod_revision: u64,
        value: &Bytes,
    ) -> Applied {
        let current = self.keyspace.get(key).map_or(0, |kv| kv.mod_revision);
        let applied = current == expected_mod_revision;
        let mut changes = self.begin();
        if applied {
            self.put_in(&mut changes, key, value);
        }
        let events = self.end(changes);
        let revision = self.revision;
        Ok((Response::Applied { applied, revision }, events))
    }
}

/// Parses `text` as Redis's `string2ll`: exactly the canonical decimal form of an `i64` (no sign
/// but `-`, no leading zeros, no `-0`, no spaces).
fn parse_i64(text: &[u8]) -> Option<i64> {
    let n: i64 = std::str::from_utf8(text).ok()?.parse().ok()?;
    (n.to_string().as_bytes() == text).then_some(n)
}
