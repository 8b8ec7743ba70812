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
//!   serialised, rebuilt by [`Keyspace::restore`], trimmed by [`Keyspace::compact`]. Revisions
//!   only grow (RevisionMonotonic), so it is a persistent vector sorted by revision: a change is
//!   a push at the back, a compaction a split at the front, a range two binary searches
//!   (**ChangeQueue**; an ordered map paid a descent and a node split per write).
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
use imbl::{OrdMap, OrdSet, Vector};
use serde::{Deserialize, Serialize};

use super::key_index::{KeyIndex, Touched};
use super::{Event, KeyValue, Revision, Stored};

/// Every key's history. Reading a key's latest value is one ordered-map lookup, O(log n).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Keyspace {
    #[serde(
        serialize_with = "serialize_keys",
        deserialize_with = "super::cautious::ord_map"
    )]
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
    by_revision: Vector<(Revision, Bytes)>,
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
    /// `touched`: a hash write's exact change, or none (TouchedFields, `key_index.rs`).
    pub fn put(
        &mut self,
        key: &Bytes,
        value: &Stored,
        revision: Revision,
        touched: Touched,
    ) -> Event {
        // One descent of the map for a key that exists (the common case): imbl's `entry`
        // looks the key up and then descends again for the value.
        let (was_live, event) = match self.keys.get_mut(key.as_ref()) {
            Some(index) => (index.is_live(), index.put(key, value, revision, touched)),
            None => {
                let mut index = KeyIndex::default();
                let event = index.put(key, value, revision, touched);
                self.keys.insert(key.clone(), index);
                (false, event)
            }
        };
        self.record_change(revision, key);
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
        self.record_change(revision, key);
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

    /// Returns whether any key (live or not) starts with `prefix`: one descent of the map, no
    /// allocation.
    pub fn any_key_with_prefix(&self, prefix: &[u8]) -> bool {
        self.keys
            .get_next(prefix)
            .is_some_and(|(k, _)| k.starts_with(prefix))
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

    /// Returns how many versions of `key` are stored (0 for a key never written or compacted
    /// away): the most a history read of it visits.
    pub fn version_count(&self, key: &[u8]) -> usize {
        self.keys.get(key).map_or(0, KeyIndex::len)
    }

    /// How many stored changes have a main revision at or below `at`: what compacting at `at`
    /// visits (a revision of `MSET` or a script counts each of its changes).
    pub fn changes_up_to(&self, at: u64) -> usize {
        self.change_position(&Revision::new(at.saturating_add(1), 0))
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
    /// one, which stays as its value at `at`), and the index entries below `at` are split off
    /// the front of the change queue in O(log n) (ChangeQueue). (imbl's `OrdMap::split_lookup`,
    /// used before on an ordered-map index, rebuilt the whole index: about 100 ms of apply for
    /// a 100,000-revision window, every second under automatic compaction.)
    pub fn compact(&mut self, at: u64) {
        #[cfg(debug_assertions)]
        let live_before = self.live;
        let first_kept = self.change_position(&Revision::new(at, 0));
        let after_at = self.change_position(&Revision::new(at.saturating_add(1), 0));
        // The keys changed below `at`, and those changed at `at` itself: such a key also drops
        // the version it kept below the last compact revision (that change is now its value at
        // `at`).
        let mut touched: Vec<Bytes> = self
            .by_revision
            .focus()
            .narrow(..after_at)
            .into_iter()
            .map(|(_, k)| k.clone())
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
        self.by_revision = self.by_revision.skip(first_kept);
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
        let start = match range.0 {
            Bound::Included(r) => self.change_position(&r),
            Bound::Excluded(r) => self.change_position_after(&r),
            Bound::Unbounded => 0,
        };
        let end = match range.1 {
            Bound::Included(r) => self.change_position_after(&r),
            Bound::Excluded(r) => self.change_position(&r),
            Bound::Unbounded => self.by_revision.len(),
        };
        let range = if start < end { start..end } else { 0..0 };
        self.by_revision
            .focus()
            .narrow(range)
            .into_iter()
            .map(|(r, k)| (*r, k))
    }

    /// Records `key`'s change at `revision` in the change index (ChangeQueue). A revision not
    /// above the newest (never made by apply: RevisionMonotonic) still lands in order.
    fn record_change(&mut self, revision: Revision, key: &Bytes) {
        match self.by_revision.back() {
            Some((last, _)) if *last >= revision => {
                match self.by_revision.binary_search_by(|(r, _)| r.cmp(&revision)) {
                    Ok(at) => {
                        self.by_revision.set(at, (revision, key.clone()));
                    }
                    Err(at) => self.by_revision.insert(at, (revision, key.clone())),
                }
            }
            _ => self.by_revision.push_back((revision, key.clone())),
        }
    }

    /// The position in the change index of the first change at or above `revision`.
    fn change_position(&self, revision: &Revision) -> usize {
        match self.by_revision.binary_search_by(|(r, _)| r.cmp(revision)) {
            Ok(at) | Err(at) => at,
        }
    }

    /// The position in the change index of the first change above `revision`.
    fn change_position_after(&self, revision: &Revision) -> usize {
        match self.by_revision.binary_search_by(|(r, _)| r.cmp(revision)) {
            Ok(at) => at + 1,
            Err(at) => at,
        }
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
        let mut changes: Vec<(Revision, Bytes)> = self
            .keys
            .iter()
            .flat_map(|(key, index)| index.revisions().map(move |r| (r, key.clone())))
            .filter(|(r, _)| r.main >= compact_revision)
            .collect();
        changes.sort_unstable_by_key(|(r, _)| *r);
        self.by_revision = changes.into_iter().collect();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ChangeQueue answers every range exactly as an ordered map of the same changes does,
    /// through puts, deletes, compactions and a rebuild (`restore`), for every bound shape.
    #[test]
    fn the_change_queue_answers_ranges_as_an_ordered_map() {
        use std::collections::BTreeMap;
        let mut ks = Keyspace::default();
        let mut model: BTreeMap<Revision, Bytes> = BTreeMap::new();
        let mut compacted = 0;
        let value = Stored::String(Bytes::from_static(b"v"));
        for main in 2..400u64 {
            let key = Bytes::from(format!("k{}", main * 7 % 13));
            let r = Revision::new(main, 0);
            ks.put(&key, &value, r, Touched::default());
            model.insert(r, key.clone());
            if main % 3 == 0 {
                let r = Revision::new(main, 1);
                if ks.delete(&key, r, false).is_some() {
                    model.insert(r, key);
                }
            }
            if main % 50 == 0 {
                compacted = main - 20;
                ks.compact(compacted);
                model = model.split_off(&Revision::new(compacted, 0));
            }
            if main % 97 == 0 {
                ks.restore(main, compacted).unwrap();
            }
            let probes = [
                compacted.saturating_sub(1),
                compacted,
                main / 2,
                main - 1,
                main,
                main + 1,
            ];
            for &a in &probes {
                for &b in &probes {
                    for sub in [0, 1] {
                        let (lo, hi) = (Revision::new(a, sub), Revision::new(b, 1 - sub));
                        for range in [
                            (Bound::Included(lo), Bound::Included(hi)),
                            (Bound::Included(lo), Bound::Excluded(hi)),
                            (Bound::Excluded(lo), Bound::Included(hi)),
                            (Bound::Excluded(lo), Bound::Unbounded),
                            (Bound::Unbounded, Bound::Excluded(hi)),
                            (Bound::Unbounded, Bound::Unbounded),
                        ] {
                            let got: Vec<_> =
                                ks.changes(range).map(|(r, k)| (r, k.clone())).collect();
                            let want: Vec<_> = if lo > hi
                                && !matches!(range.0, Bound::Unbounded)
                                && !matches!(range.1, Bound::Unbounded)
                            {
                                Vec::new()
                            } else {
                                model.range(range).map(|(r, k)| (*r, k.clone())).collect()
                            };
                            assert_eq!(got, want, "after {main}, {range:?}");
                            let back: Vec<_> = ks.changes(range).rev().map(|(r, _)| r).collect();
                            assert!(back.iter().rev().eq(want.iter().map(|(r, _)| r)));
                        }
                    }
                }
            }
        }
        // A change recorded out of order (never made by apply) still lands in order.
        ks.record_change(
            Revision::new(compacted + 1, 5),
            &Bytes::from_static(b"late"),
        );
        let revs: Vec<Revision> = ks
            .changes((Bound::Unbounded, Bound::Unbounded))
            .map(|(r, _)| r)
            .collect();
        assert!(revs.windows(2).all(|w| w[0] < w[1]), "{revs:?}");
        assert!(revs.contains(&Revision::new(compacted + 1, 5)));
    }

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
                ks.put(&key, &value, Revision::new(i + 2, 0), Touched::default());
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
