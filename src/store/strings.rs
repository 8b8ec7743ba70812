//! The read-modify-writes of the string commands (SET NX/XX/GET, GETDEL, INCRBY, INCRBYFLOAT,
//! APPEND, SETRANGE, MSET/MSETNX, RENAME/RENAMENX, FLUSH, CAS), decided inside `apply` from the
//! state every node has at that point in the log, so each is atomic however many clients on
//! however many nodes race (DeterministicApply).
//!
//! Every op here either fails before changing anything (a [`StoreError`], no event) or records
//! its changes in the request's [`Changes`], which numbers them `sub` = 0, 1, … under the next
//! main revision (inside a transaction, after the changes of the ops before it) and makes that
//! revision current only if there was at least one (RevisionMonotonic). A put always counts as
//! a change, even of the same value, as etcd's put.
//!
//! TTLs follow Redis: SET, GETSET, MSET and CAS clear the key's deadline (unless KEEPTTL or an
//! expiry is given), INCR/INCRBYFLOAT/APPEND/SETRANGE keep it, RENAME moves it.
//!
//! Semantics follow Redis 7.0's `t_string.c` and `db.c`; the texts of the errors live in
//! `error.rs`. This file must not parse client arguments: the command layer has already refused
//! what Redis refuses before looking at the key.

use std::collections::BTreeSet;

use bytes::{Bytes, BytesMut};

use super::long_double::LongDouble;
use super::{Changes, PutTtl, Response, SetWhen, Store, StoreError, Stored, Ttl};

/// The longest string APPEND and SETRANGE may make: Redis's default `proto-max-bulk-len`,
/// 512 MiB. A constant, not configuration: the store reads no local config (DeterministicApply).
pub const MAX_STRING_LEN: u64 = 512 * 1024 * 1024;

type Applied = Result<Response, StoreError>;

impl Store {
    /// SET and its variants: puts `value` if `when` holds, leaving the TTL `ttl` says. A
    /// deadline at or before `now_ms` deletes the key instead (Redis 7.0 sets it already
    /// expired, so no read sees it).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn set(
        &mut self,
        c: &mut Changes,
        key: &Bytes,
        value: &Bytes,
        when: SetWhen,
        get: bool,
        ttl: PutTtl,
        now_ms: i64,
    ) -> Applied {
        let ttl = Ttl::resolve(ttl)?;
        // SET replaces a hash, but SET ... GET must read the old value as a string.
        let prev = if get {
            self.string_kv(key)?
        } else {
            self.keyspace.get(key)
        };
        let written = match when {
            SetWhen::Always => true,
            SetWhen::Absent => prev.is_none(),
            SetWhen::Present => prev.is_some(),
        };
        if written {
            match ttl {
                Ttl::At(at) if at <= now_ms => {
                    self.delete_in(c, key);
                }
                ttl => self.put_in(c, key, value, ttl)?,
            }
        }
        Ok(Response::Set {
            written,
            prev: prev.filter(|_| get).map(|kv| kv.value),
            revision: self.revision_with(c),
        })
    }

    pub(super) fn get_del(&mut self, c: &mut Changes, key: &Bytes) -> Applied {
        let value = self.string_kv(key)?.map(|kv| kv.value);
        self.delete_in(c, key);
        let revision = self.revision_with(c);
        Ok(Response::Value { value, revision })
    }

    /// INCRBY and friends keep the key's deadline, as Redis's `dbOverwrite`.
    pub(super) fn incr_by(&mut self, c: &mut Changes, key: &Bytes, delta: i64) -> Applied {
        let current = match self.string_kv(key)? {
            Some(kv) => parse_i64(&kv.value).ok_or(StoreError::NotInteger)?,
            None => 0,
        };
        let value = current.checked_add(delta).ok_or(StoreError::Overflow)?;
        self.put_in(c, key, &Bytes::from(value.to_string()), Ttl::Keep)?;
        let revision = self.revision_with(c);
        Ok(Response::Integer { value, revision })
    }

    pub(super) fn incr_by_float(
        &mut self,
        c: &mut Changes,
        key: &Bytes,
        increment: &[u8],
    ) -> Applied {
        // Redis checks the stored value first, then the increment; both answer the same text.
        let current = match self.string_kv(key)? {
            Some(kv) => LongDouble::parse(&kv.value).ok_or(StoreError::NotFloat)?,
            None => LongDouble::ZERO,
        };
        let increment = LongDouble::parse(increment).ok_or(StoreError::NotFloat)?;
        let sum = current
            .checked_add(increment)
            .ok_or(StoreError::NanOrInfinity)?;
        let text = Bytes::from(sum.to_human());
        self.put_in(c, key, &text, Ttl::Keep)?;
        let revision = self.revision_with(c);
        Ok(Response::Value {
            value: Some(text),
            revision,
        })
    }

    pub(super) fn append(&mut self, c: &mut Changes, key: &Bytes, value: &Bytes) -> Applied {
        let new = match self.string_kv(key)? {
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
        self.put_in(c, key, &new, Ttl::Keep)?;
        let (length, revision) = (new.len() as u64, self.revision_with(c));
        Ok(Response::Length { length, revision })
    }

    pub(super) fn set_range(
        &mut self,
        c: &mut Changes,
        key: &Bytes,
        offset: u64,
        value: &Bytes,
    ) -> Applied {
        let current = self.string_kv(key)?.map(|kv| kv.value);
        if value.is_empty() {
            // Redis writes nothing (and creates no key) for an empty value.
            let length = current.map_or(0, |v| v.len() as u64);
            let revision = self.revision_with(c);
            return Ok(Response::Length { length, revision });
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
        self.put_in(c, key, &new, Ttl::Keep)?;
        let (length, revision) = (new.len() as u64, self.revision_with(c));
        Ok(Response::Length { length, revision })
    }

    pub(super) fn mset(
        &mut self,
        c: &mut Changes,
        pairs: &[(Bytes, Bytes)],
        if_none_exist: bool,
    ) -> Applied {
        if if_none_exist && pairs.iter().any(|(key, _)| self.keyspace.is_live(key)) {
            let revision = self.revision_with(c);
            let applied = false;
            return Ok(Response::Applied { applied, revision });
        }
        // The last pair of each key wins; earlier ones are skipped, so MSET changes a key once,
        // and its events name each key once.
        let mut later: BTreeSet<&Bytes> = BTreeSet::new();
        let mut last: Vec<bool> = pairs.iter().rev().map(|(k, _)| later.insert(k)).collect();
        last.reverse();
        // SchemaAtApply: every pair checked before any is written (against the schemas in
        // force before the MSET), so a refused pair changes nothing.
        for (key, value) in pairs {
            self.check_schema(key, &Stored::String(value.clone()))?;
        }
        for ((key, value), _) in pairs.iter().zip(last).filter(|(_, last)| *last) {
            self.put_unchecked_in(c, key, &Stored::String(value.clone()), Ttl::Clear);
        }
        let revision = self.revision_with(c);
        let applied = true;
        Ok(Response::Applied { applied, revision })
    }

    /// RENAME moves the deadline with the value, as Redis does.
    pub(super) fn rename(
        &mut self,
        c: &mut Changes,
        src: &Bytes,
        dst: &Bytes,
        if_absent: bool,
    ) -> Applied {
        let value = self
            .keyspace
            .get(src)
            .ok_or(StoreError::NoSuchKey)?
            .stored();
        let revision = self.revision_with(c);
        if src == dst {
            // Redis: OK for RENAME, 0 for RENAMENX, and nothing changes.
            let applied = !if_absent;
            return Ok(Response::Applied { applied, revision });
        }
        if if_absent && self.keyspace.is_live(dst) {
            let applied = false;
            return Ok(Response::Applied { applied, revision });
        }
        let ttl = self.deadlines.get(src).map_or(Ttl::Clear, Ttl::At);
        self.check_schema(dst, &value)?;
        self.delete_in(c, src);
        self.put_unchecked_in(c, dst, &value, ttl);
        let (applied, revision) = (true, self.revision_with(c));
        Ok(Response::Applied { applied, revision })
    }

    pub(super) fn flush(&mut self, c: &mut Changes) -> Applied {
        let keys: Vec<Bytes> = self.keyspace.keys().cloned().collect();
        let before = c.len();
        for key in &keys {
            self.delete_in(c, key);
        }
        let (deleted, revision) = ((c.len() - before) as u64, self.revision_with(c));
        Ok(Response::Deleted { deleted, revision })
    }

    /// CAS: puts `value` if the key's `mod_revision` is `expected_mod_revision`, with the TTL
    /// `ttl` (CAS without EX clears it, as SET does).
    pub(super) fn cas(
        &mut self,
        c: &mut Changes,
        key: &Bytes,
        expected_mod_revision: u64,
        value: &Bytes,
        ttl: PutTtl,
    ) -> Applied {
        let ttl = Ttl::resolve(ttl)?;
        let current = self.keyspace.get(key).map_or(0, |kv| kv.mod_revision);
        let applied = current == expected_mod_revision;
        if applied {
            self.put_in(c, key, value, ttl)?;
        }
        let revision = self.revision_with(c);
        Ok(Response::Applied { applied, revision })
    }
}

/// Parses `text` as Redis's `string2ll`: exactly the canonical decimal form of an `i64` (no sign
/// but `-`, no leading zeros, no `-0`, no spaces).
pub(super) fn parse_i64(text: &[u8]) -> Option<i64> {
    let n: i64 = std::str::from_utf8(text).ok()?.parse().ok()?;
    (n.to_string().as_bytes() == text).then_some(n)
}
