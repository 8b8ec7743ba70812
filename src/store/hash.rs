//! Hashes: [`Stored`] (what a key holds: a string or a [`Hash`]) and the hash commands' writes
//! (HSET HSETNX HMSET, HDEL, HINCRBY, HINCRBYFLOAT), decided inside `apply` like the string
//! commands' read-modify-writes in `strings.rs`.
//!
//! A hash is a value like a string: each write of it is a new version of its key (one revision,
//! the whole hash after the change, shared with the version before by the persistent map), so
//! history, GETAT, ROLLBACK, WATCH compares and the watch stream work on hashes as on strings.
//! The hash's deadline stays across field writes (Redis keeps a hash's TTL when a field
//! changes), and a hash whose last field is deleted is deleted (Redis never keeps an empty
//! hash): its HDEL is a tombstone.
//!
//! Invariants:
//! - **HashNeverEmpty.** A stored hash has at least one field.
//! - **DeterministicApply.** Fields are an ordered map (`imbl::OrdMap`, byte order), so every
//!   node stores, encodes and lists them identically.
//! - **TypeChecked.** A string command never reads a hash as a string, and a hash command never
//!   reads a string as a hash: both answer [`StoreError::WrongType`] and change nothing.
//!   Commands that replace a key whatever it held (SET, MSET, RENAME's destination, DEL) do not
//!   check, as in Redis.
//!
//! Semantics and error texts follow Redis 7.0's `t_hash.c`.

use bytes::Bytes;
use imbl::OrdMap;
use serde::{Deserialize, Serialize};

use super::key_index::{HashChange, Touched};
use super::long_double::LongDouble;
use super::strings::parse_i64;
use super::{Changes, KeyValue, Response, Store, StoreError, Ttl};

/// A hash's fields and values, in field byte order.
pub type Hash = OrdMap<Bytes, Bytes>;

/// What a key holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stored {
    String(Bytes),
    Hash(#[serde(deserialize_with = "super::cautious::ord_map")] Hash),
}

impl Stored {
    /// Returns the string, `None` for a hash.
    pub fn string(&self) -> Option<&Bytes> {
        match self {
            Stored::String(s) => Some(s),
            Stored::Hash(_) => None,
        }
    }

    /// Returns the hash, `None` for a string.
    pub fn hash(&self) -> Option<&Hash> {
        match self {
            Stored::Hash(h) => Some(h),
            Stored::String(_) => None,
        }
    }

    /// Redis's TYPE name.
    pub fn type_name(&self) -> &'static str {
        match self {
            Stored::String(_) => "string",
            Stored::Hash(_) => "hash",
        }
    }
}

type Applied = Result<Response, StoreError>;

impl Store {
    /// Returns the live key for a string command: `None` if absent, WRONGTYPE if a hash
    /// (TypeChecked).
    pub(super) fn string_kv(&self, key: &[u8]) -> Result<Option<KeyValue>, StoreError> {
        match self.keyspace.get(key) {
            Some(kv) if kv.is_hash() => Err(StoreError::WrongType),
            other => Ok(other),
        }
    }

    /// Returns the live hash at `key` for a hash command: empty if absent, WRONGTYPE if a
    /// string (TypeChecked).
    fn hash_at(&self, key: &[u8]) -> Result<Hash, StoreError> {
        match self.keyspace.get(key) {
            None => Ok(Hash::new()),
            Some(KeyValue {
                hash: Some(fields), ..
            }) => Ok(fields),
            Some(_) => Err(StoreError::WrongType),
        }
    }

    /// Writes `fields` as the key's next version, keeping its deadline; an empty hash deletes
    /// the key (HashNeverEmpty). `before` is the key's current value and `named` every field
    /// the write may have changed: the version keeps its change (TouchedFields, `key_index.rs`),
    /// found here while both maps are in cache.
    fn put_hash_in<'a>(
        &mut self,
        c: &mut Changes,
        key: &Bytes,
        before: &Hash,
        fields: Hash,
        named: impl IntoIterator<Item = &'a Bytes>,
    ) -> Result<(), StoreError> {
        if fields.is_empty() {
            self.delete_in(c, key);
            return Ok(());
        }
        let mut names: Vec<&Bytes> = named.into_iter().collect();
        names.sort_unstable();
        names.dedup();
        let change: HashChange = names
            .into_iter()
            .filter_map(|name| {
                let now = fields.get(name);
                (before.get(name) != now).then(|| (name.clone(), now.cloned()))
            })
            .collect();
        let value = Stored::Hash(fields);
        self.check_schema(key, &value)?;
        self.put_touched_in(c, key, &value, Ttl::Keep, Touched(Some(change)));
        Ok(())
    }

    /// HSET / HMSET (`if_absent` false: every pair is written, the answer counts the new
    /// fields) and HSETNX (`if_absent`: the one pair only if its field is new, answering 1 or
    /// 0). A later pair for the same field wins, as in Redis. Writing nothing (HSETNX on an
    /// existing field) changes nothing.
    pub(super) fn hset(
        &mut self,
        c: &mut Changes,
        key: &Bytes,
        pairs: &[(Bytes, Bytes)],
        if_absent: bool,
    ) -> Applied {
        let mut fields = self.hash_at(key)?;
        let before = fields.clone();
        let mut added = 0i64;
        for (field, value) in pairs {
            if if_absent && fields.contains_key(field) {
                continue;
            }
            if fields.insert(field.clone(), value.clone()).is_none() {
                added += 1;
            }
        }
        let changed = !pairs.is_empty() && (!if_absent || added > 0);
        if changed {
            self.put_hash_in(c, key, &before, fields, pairs.iter().map(|(f, _)| f))?;
        }
        let revision = self.revision_with(c);
        Ok(Response::Integer {
            value: added,
            revision,
        })
    }

    /// HDEL: removes the fields that exist, answering how many; deleting the last field
    /// deletes the key. Removing nothing changes nothing.
    pub(super) fn hdel(&mut self, c: &mut Changes, key: &Bytes, names: &[Bytes]) -> Applied {
        let mut fields = self.hash_at(key)?;
        let before = fields.clone();
        let mut removed = 0i64;
        for name in names {
            if fields.remove(name).is_some() {
                removed += 1;
            }
        }
        if removed > 0 {
            self.put_hash_in(c, key, &before, fields, names)?;
        }
        let revision = self.revision_with(c);
        Ok(Response::Integer {
            value: removed,
            revision,
        })
    }

    /// HINCRBY: the field's integer plus `delta` (an absent field counts as 0).
    pub(super) fn hincr_by(
        &mut self,
        c: &mut Changes,
        key: &Bytes,
        field: &Bytes,
        delta: i64,
    ) -> Applied {
        let mut fields = self.hash_at(key)?;
        let before = fields.clone();
        let current = match fields.get(field) {
            Some(v) => parse_i64(v).ok_or(StoreError::HashNotInteger)?,
            None => 0,
        };
        let value = current.checked_add(delta).ok_or(StoreError::Overflow)?;
        fields.insert(field.clone(), Bytes::from(value.to_string()));
        self.put_hash_in(c, key, &before, fields, [field])?;
        let revision = self.revision_with(c);
        Ok(Response::Integer { value, revision })
    }

    /// HINCRBYFLOAT: the field's number plus `increment`, in Redis's long double arithmetic
    /// and text. The increment is checked first, as Redis checks its argument before the key.
    pub(super) fn hincr_by_float(
        &mut self,
        c: &mut Changes,
        key: &Bytes,
        field: &Bytes,
        increment: &[u8],
    ) -> Applied {
        let increment = LongDouble::parse(increment).ok_or(StoreError::NotFloat)?;
        if matches!(increment, LongDouble::Infinite { .. }) {
            return Err(StoreError::NotFiniteIncrement);
        }
        let mut fields = self.hash_at(key)?;
        let before = fields.clone();
        let current = match fields.get(field) {
            Some(v) => LongDouble::parse(v).ok_or(StoreError::HashNotFloat)?,
            None => LongDouble::ZERO,
        };
        let sum = current
            .checked_add(increment)
            .ok_or(StoreError::NanOrInfinity)?;
        let text = Bytes::from(sum.to_human());
        fields.insert(field.clone(), text.clone());
        self.put_hash_in(c, key, &before, fields, [field])?;
        let revision = self.revision_with(c);
        Ok(Response::Value {
            value: Some(text),
            revision,
        })
    }
}
