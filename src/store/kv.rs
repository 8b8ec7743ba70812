//! `Keyspace`: every key's [`KeyIndex`], in byte order.
//!
//! This file owns the map from key to history and the count of live keys. It does not assign
//! revisions (the caller passes them in, RevisionMonotonic) and knows nothing of clients.
//!
//! Invariants:
//! - **NoEmptyIndex.** Every key in the map has at least one stored version; compaction removes a
//!   key whose versions are all gone.
//! - **LiveCount.** `live` equals the number of keys whose newest version is a put. It is derived
//!   state: not serialised, recomputed by [`Keyspace::restore`].
//! - **DeterministicApply.** An ordered map, so iteration (compaction, `keys`) is in byte order
//!   on every node.
//! - **CheapClone.** Every map is a persistent (copy-on-write) `imbl` map: cloning the keyspace
//!   is O(1) and shares every node until one side writes, which copies only the path it
//!   changes. A snapshot build clones the store and encodes the clone off the apply path. The
//!   serialised form is the same as a `BTreeMap`'s (a length, then the entries in order).
//! - **HashIndex.** `by_hash` holds `(key_hash(key), key)` for exactly the live keys. It is
//!   derived state like `live`: not serialised, rebuilt by [`Keyspace::restore`].
//! - **ChangeIndex.** `by_revision` maps the revision of every stored version with main >=
//!   `compact_revision` to its key: the changes of the whole keyspace in revision order, what
//!   the watch stream reads (catch-up and live tail alike). Derived state like `live`: not
//!   serialised, rebuilt by [`Keyspace::restore`], trimmed by [`Keyspace::compact`].
//!
//! # Scan cursors
//!
//! SCAN walks the live keys in `(key_hash, key)` order. A cursor is the hash to resume from:
//! `0` starts, and each page returns every live key whose hash lies in `[cursor, next)` at the
//! time of the call, `next` being the hash of the first key not returned (or `0` when none is
//! left). The pages of one iteration cover all of `0..2^64` without gaps or overlaps, and a key
//! keeps its hash forever, so a key live for the whole iteration is returned exactly once, and
//! a key added or deleted meanwhile at most once. A page never splits the keys of one hash, so
//! it may exceed `count` (only on hash collisions). The hash is FNV-1a (64-bit): the same on
//! every node, build and platform, so a cursor from one node resumes on any other.

use std::ops::Bound;

use bytes::Bytes;
use imbl::{OrdMap, OrdSet};
use serde::{Deserialize, Serialize};

use super::key_index::KeyIndex;
use super::{Event, KeyValue, Revision, Stored};

/// Every key's history. Reading a key's latest value is one ordered-map lookup, O(log n).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Keyspace {
    #[serde(serialize_with = "serialize_keys")]
    keys: OrdMap<Bytes, KeyIndex>,
    /// Number of live keys (LiveCount); kept so that `len` is O(1).
    #[serde(skip)]
    live: usize,
    /// The live keys in SCAN order (HashIndex). The keys share their bytes with `keys`.
    #[serde(skip)]
    by_hash: OrdSet<(u64, Bytes)>,
    /// Every stored change at or above the compact revision, by revision (ChangeIndex). The
    /// keys share their bytes with `keys`.
    #[serde(skip)]
    by_revision: OrdMap<Revision, Bytes>,
}

/// How many keys ahead [`serialize_keys`] asks the CPU to fetch a key's versions, and (half
/// as far) their values.
const PREFETCH_AHEAD: usize = 8;

/// Serialises the key map as imbl (and a `BTreeMap`) does, a length and the entries in order,
/// asking the CPU ahead of time for the memory the next keys' encode reads (**EncodePrefetch**):
/// a key's versions live in an allocation of their own and each value in another, so an
/// encode walking the keyspace waits on a cache miss for nearly every one of them.
fn serialize_keys<S: serde::Serializer>(
    keys: &OrdMap<Bytes, KeyIndex>,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(keys.len()))?;
    let mut far = keys.values();
    let mut near = keys.values();
    for v in far.by_ref().take(PREFETCH_AHEAD) {
        v.prefetch_versions();
    }
    for v in near.by_ref().take(PREFETCH_AHEAD / 2) {
        v.prefetch_values();
    }
    for (k, v) in keys.iter() {
        if let Some(n) = far.next() {
            n.prefetch_versions();
        }
        if let Some(n) = near.next() {
            n.prefetch_values();
        }
        map.serialize_entry(k, v)?;
    }
    map.end()
}

/// Returns the 64-bit FNV-1a hash of `key`: SCAN's order (see the module doc).
pub fn key_hash(key: &[u8]) -> u64 {
    key.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl Keyspace {
    /// Puts `value` (a string or a hash) at `key` with `revision` and returns the event.
    pub fn put(&mut self, key: &Bytes, value: &Stored, revision: Revision) -> Event {
        // One descent of the map for a key that exists (the common case): imbl's `entry`
        // looks the key up and then descends again for the value.
        let (was_live, event) = match self.keys.get_mut(key.as_ref()) {
            Some(index) => (index.is_live(), index.put(key, value, revision)),
            None => {
                let mut index = KeyIndex::default();
                let event = index.put(key, value, revision);
                self.keys.insert(key.clone(), index);
                (false, event)
            }
        };
        self.by_revision.insert(revision, key.clone());
        if !was_live {
            self.live += 1;
            self.by_hash.insert((key_hash(key), key.clone()));
        }
        event
    }

    /// Deletes `key` with `revision` if it is live, and returns the event; with `expired`, as
    /// the leader's expiry.
    pub fn delete(&mut self, key: &Bytes, revision: Revision, expired: bool) -> Option<Event> {
        let event = self
            .keys
            .get_mut(key.as_ref())?
            .tombstone(key, revision, expired)?;
        self.by_revision.insert(revision, key.clone());
        self.live -= 1;
        self.by_hash.remove(&(key_hash(key), key.clone()));
        Some(event)
    }

    /// Returns the latest live value of `key`.
    pub fn get(&self, key: &[u8]) -> Option<KeyValue> {
        let (key, index) = self.keys.get_key_value(key)?;
        index.latest(key)
    }

    /// Returns the latest live value of every key starting with `prefix`, in key order.
    pub fn live_with_prefix(&self, prefix: &[u8]) -> Vec<KeyValue> {
        let start = Bytes::copy_from_slice(prefix);
        self.keys
            .range((Bound::Included(start), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter_map(|(k, index)| index.latest(k))
            .collect()
    }

    /// Returns whether `key` is live, without copying its value out.
    pub fn is_live(&self, key: &[u8]) -> bool {
        self.keys.get(key).is_some_and(KeyIndex::is_live)
    }

    /// Returns the main revision of `key`'s last stored change, a tombstone included; 0 if
    /// none is stored.
    pub fn last_change(&self, key: &[u8]) -> u64 {
        self.keys
            .get(key)
            .and_then(KeyIndex::last_revision)
            .map_or(0, |r| r.main)
    }

    /// Returns the value of `key` as of main revision `main`.
    pub fn get_at(&self, key: &[u8], main: u64) -> Option<KeyValue> {
        let (key, index) = self.keys.get_key_value(key)?;
        index.at(key, main)
    }

    /// Returns `key`'s stored changes with `from <= main <= to`, oldest first, at most `limit`.
    pub fn history(&self, key: &[u8], from: u64, to: u64, limit: usize) -> Vec<Event> {
        match self.keys.get_key_value(key) {
            Some((key, index)) => index.history(key, from, to, limit),
            None => Vec::new(),
        }
    }

    /// Compacts every key at `at`, dropping keys with nothing left (NoEmptyIndex).
    ///
    /// **CompactionCostsWhatItDrops.** The work is proportional to the versions dropped, not to
    /// the keyspace or the history window: the keys to compact are those the change index
    /// names below `at` or at `at` itself (ChangeIndex: a key with a version in
    /// `[compact_revision, at]`; any other key's versions below `at` are only its newest, live
    /// one, which stays as its value at `at`), and the index entries below `at`
    /// index entries are removed one by one. (imbl's `OrdMap::split_lookup`, used before, rebuilt
    /// the whole index: about 100 ms of apply for a 100,000-revision window, every second under
    /// automatic compaction.)
    pub fn compact(&mut self, at: u64) {
        #[cfg(debug_assertions)]
        let live_before = self.live;
        let first_kept = Revision::new(at, 0);
        let dropped: Vec<(Revision, Bytes)> = self
            .by_revision
            .range(..first_kept)
            .map(|(r, k)| (*r, k.clone()))
            .collect();
        // A key changed at `at` itself also drops the version it kept below the last compact
        // revision (that change is now its value at `at`).
        let at_itself = self
            .by_revision
            .range(first_kept..Revision::new(at.saturating_add(1), 0))
            .map(|(_, k)| k.clone());
        let mut touched: Vec<Bytes> = dropped
            .iter()
            .map(|(_, k)| k.clone())
            .chain(at_itself)
            .collect();
        touched.sort_unstable();
        touched.dedup();
        // Only keys with a version below `at` can lose one; the others are not touched, so
        // their nodes stay shared with any clone (CheapClone).
        for key in touched {
            let left = self
                .keys
                .get_mut(&key)
                .is_some_and(|index| index.compact(at));
            if !left {
                self.keys.remove(&key);
            }
        }
        for (r, _) in dropped {
            self.by_revision.remove(&r);
        }
        // Compaction never touches a key's newest version unless it is a tombstone, so the
        // live set (and HashIndex) stays as it is.
        #[cfg(debug_assertions)]
        debug_assert_eq!(
            (live_before, self.by_hash.len()),
            (
                self.keys.values().filter(|i| i.is_live()).count(),
                self.live
            )
        );
    }

    /// Returns the changes with revisions in `range`, oldest first, as (revision, key)
    /// (ChangeIndex): every change at or above the compact revision.
    pub fn changes(
        &self,
        range: (Bound<Revision>, Bound<Revision>),
    ) -> impl DoubleEndedIterator<Item = (Revision, &Bytes)> + '_ {
        self.by_revision.range(range).map(|(r, k)| (*r, k))
    }

    /// Returns the event of `key`'s change at exactly `revision`, if it is stored.
    pub fn event_at(&self, key: &[u8], revision: Revision) -> Option<Event> {
        let (key, index) = self.keys.get_key_value(key)?;
        index.event_at(key, revision)
    }

    /// Returns the number of live keys.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Returns the live keys in byte order.
    pub fn keys(&self) -> impl Iterator<Item = &Bytes> + '_ {
        self.keys
            .iter()
            .filter(|(_, index)| index.is_live())
            .map(|(key, _)| key)
    }

    /// Returns the live keys whose hash is at least `cursor`, in scan order: at least `count`
    /// of them (when there are), plus any more of the last one's hash, and the cursor of the
    /// next page (0 when done). See "Scan cursors" in the module doc.
    pub fn scan(&self, cursor: u64, count: usize) -> (Vec<Bytes>, u64) {
        let mut page: Vec<Bytes> = Vec::new();
        let mut last = None;
        for (hash, key) in self.by_hash.range((cursor, Bytes::new())..) {
            if page.len() >= count.max(1) && last != Some(*hash) {
                return (page, *hash);
            }
            page.push(key.clone());
            last = Some(*hash);
        }
        (page, 0)
    }

    /// Every key with a version whose main revision is above `since`, with the position of
    /// the first such version, in key order (what a snapshot delta since `since` carries).
    pub fn changed_since(&self, since: u64) -> impl Iterator<Item = (&Bytes, &KeyIndex, usize)> {
        self.keys.iter().filter_map(move |(key, index)| {
            let newer = index.last_revision().is_some_and(|r| r.main > since);
            newer.then(|| (key, index, index.first_after(since)))
        })
    }

    /// Appends a snapshot delta's versions of `key` (all newer than its stored ones). The
    /// derived indexes (LiveCount, HashIndex, ChangeIndex) are stale until
    /// [`Keyspace::restore`], which the delta's loader runs next.
    pub fn extend_key(&mut self, key: Bytes, newer: KeyIndex) -> Result<(), String> {
        match self.keys.get_mut(&key) {
            Some(index) => index
                .extend(newer)
                .map_err(|e| format!("key {:?}: {e}", String::from_utf8_lossy(&key))),
            None => {
                self.keys.insert(key, newer);
                Ok(())
            }
        }
    }

    /// Checks every key loaded from a snapshot and recomputes the live count (LiveCount).
    pub fn restore(&mut self, current: u64, compact_revision: u64) -> Result<(), String> {
        for (key, index) in &self.keys {
            index
                .validate(current, compact_revision)
                .map_err(|e| format!("key {:?}: {e}", String::from_utf8_lossy(key)))?;
        }
        self.live = self.keys.values().filter(|i| i.is_live()).count();
        self.by_hash = self
            .keys()
            .map(|key| (key_hash(key), key.clone()))
            .collect();
        self.by_revision = self
            .keys
            .iter()
            .flat_map(|(key, index)| index.revisions().map(move |r| (r, key.clone())))
            .filter(|(r, _)| r.main >= compact_revision)
            .collect();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// EncodePrefetch changes nothing in the bytes: the key map encodes exactly as imbl's own
    /// `Serialize` writes it (a length, then the entries in order), for more keys than the
    /// prefetch looks ahead, for fewer, and for none.
    #[test]
    fn the_prefetching_key_encoder_writes_imbls_bytes() {
        struct Prefetching<'a>(&'a OrdMap<Bytes, KeyIndex>);
        impl Serialize for Prefetching<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                serialize_keys(self.0, s)
            }
        }
        for n in [0u64, 3, PREFETCH_AHEAD as u64, 200] {
            let mut ks = Keyspace::default();
            for i in 0..n * 3 {
                let key = Bytes::from(format!("key{}", i % n.max(1)));
                let value = Stored::String(Bytes::from(vec![b'v'; (i % 7) as usize]));
                ks.put(&key, &value, Revision::new(i + 2, 0));
                if i % 5 == 4 {
                    ks.delete(&key, Revision::new(i + 2, 1), false);
                }
            }
            assert_eq!(ks.keys.len() as u64, n);
            assert_eq!(
                postcard::to_allocvec(&Prefetching(&ks.keys)).unwrap(),
                postcard::to_allocvec(&ks.keys).unwrap(),
                "{n} keys"
            );
        }
    }
}
