//! `KeyIndex`: every stored version of one key, oldest first (etcd's `keyIndex`).
//!
//! A key lives through *generations*. A put on an absent key starts one (`create_revision` = the
//! put's main revision, `version` = 1), each later put adds a version to it (`version` + 1), and a
//! delete ends it with a *tombstone*. A later put starts a new generation. All generations sit in
//! one vector ordered by [`Revision`]:
//!
//! ```text
//!   put a@2   put a@3   del a@5    put a@7       (c = create_revision, v = version)
//!   [c2 v1] - [c2 v2] - [tomb]  |  [c7 v1]
//!   '------ generation 1 -----'    generation 2
//! ```
//!
//! This file owns reading one key at a revision, appending to it, and compacting it. It must not
//! know about other keys, the global revision counter or clients.
//!
//! Invariants (checked by [`KeyIndex::validate`] when a snapshot is loaded):
//! - **VersionsOrdered.** Revisions strictly increase along the vector; an append is always newer
//!   than the last version (RevisionMonotonic).
//! - **GenerationConsistent.** Within a generation `create_revision` is constant and `version`
//!   grows by one; after a tombstone the next put has `version` 1 and `create_revision` = its own
//!   main revision; a tombstone only ever follows a put.
//! - **CompactedPrefix.** After compaction at `c`, at most one version with main < `c` remains,
//!   it is the first one, and it is a put (the key's value at `c`). Every version with main >= `c`
//!   remains, so `history` from `c` on is complete (HistoryWindow).

use std::sync::Arc;

use bytes::Bytes;

use super::versions::Versions;
use super::{Event, EventKind, Hash, KeyValue, Revision, Stored};

#[path = "key_index_codec.rs"]
mod codec;

pub(super) use codec::Suffix;

/// What one version of a key holds. Encoded by `key_index_codec.rs` (hashes as changes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Change {
    /// A value, with the generation it belongs to and its place in it.
    Put {
        value: Bytes,
        create_revision: u64,
        version: u64,
    },
    /// The end of a generation by a delete.
    Tombstone,
    /// The end of a generation by the leader's expiry: a tombstone that history reports as
    /// [`EventKind::Expired`].
    Expired,
    /// A hash (its fields, in field order), with the generation it belongs to and its place in
    /// it, as [`Change::Put`]. Appended last: snapshots written before hashes still decode.
    PutHash {
        fields: Hash,
        create_revision: u64,
        version: u64,
        touched: Touched,
    },
}

/// A hash version's change from the key's previous version, found by the write that made it:
/// each field it changed, in field order, with its new value or `None` if removed. A snapshot
/// writes the version as this change instead of diffing the two maps (**TouchedFields**,
/// `key_index_codec.rs`; the diff walked every shared node's boundary, and looking the named
/// fields up in both maps at encode time missed the cache on every version: a full snapshot of
/// 100,000 one-field HSETs to a hash of 10,000 fields took 142 ms and 100 ms that way, against
/// 3.6 ms for 100,000 string writes). Not part of the value: always equal, never encoded.
/// `None` (a version decoded from a snapshot, or written whole: RENAME, ROLLBACK, a deadline
/// change) means the encoder diffs.
#[derive(Clone, Debug, Default)]
pub(super) struct Touched(pub(super) Option<HashChange>);

/// A hash version's changed fields with their new values (`None`: removed), in field order.
pub(super) type HashChange = Arc<[(Bytes, Option<Bytes>)]>;

impl PartialEq for Touched {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Touched {}

impl Change {
    /// Returns whether this version ends a generation (a delete or an expiry).
    fn is_tombstone(&self) -> bool {
        matches!(self, Change::Tombstone | Change::Expired)
    }

    /// Returns `(create_revision, version)` of a put of either type, `None` for a tombstone.
    fn put_meta(&self) -> Option<(u64, u64)> {
        match self {
            Change::Put {
                create_revision,
                version,
                ..
            }
            | Change::PutHash {
                create_revision,
                version,
                ..
            } => Some((*create_revision, *version)),
            Change::Tombstone | Change::Expired => None,
        }
    }
}

/// A hint to the CPU to bring the cache line at `p` in; never reads or faults.
#[inline]
fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: a prefetch is a hint; it does not dereference `p` (any address is allowed,
        // even an invalid one) and changes no state the program can observe.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// One stored version of a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Version {
    pub revision: Revision,
    pub change: Change,
}

/// Every stored version of one key, oldest first. Never empty while it sits in the keyspace.
/// `Serialize`/`Deserialize` are `key_index_codec.rs`'s.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct KeyIndex {
    /// Ordered by revision (VersionsOrdered). Appends happen at the end, reads at a revision
    /// binary-search it, and compaction drops a prefix, costing what it drops
    /// (**CompactionCostsWhatItDrops** per key too: a `Vec` moved every remaining version on
    /// each compaction step, 19 % of a leader's samples at the default history cap,
    /// `benches/results/2026-12-05-hot-key-compaction/`). Full chunks are shared between
    /// clones, so a snapshot's capture costs a key at most one chunk's copy however long its
    /// history (SharedChunks, `versions.rs`).
    versions: Versions<Version>,
}

impl KeyIndex {
    /// Asks the CPU to fetch the oldest versions, where an encode starts (a hint: no effect
    /// on what is read).
    pub fn prefetch_versions(&self) {
        if let Some(v) = self.versions.front() {
            prefetch(std::ptr::from_ref(v).cast());
        }
    }

    /// Asks the CPU to fetch the bytes of the first versions' values (a hint).
    pub fn prefetch_values(&self) {
        for v in self.versions.iter().take(8) {
            if let Change::Put { value, .. } = &v.change {
                prefetch(value.as_ptr());
            }
        }
    }

    /// Returns the key's value at the newest version, or `None` if it ends in a tombstone.
    pub fn latest(&self, key: &Bytes) -> Option<KeyValue> {
        self.versions.back().and_then(|v| kv(key, v))
    }

    /// Returns whether the newest version is a put.
    pub fn is_live(&self) -> bool {
        self.versions
            .back()
            .is_some_and(|v| v.change.put_meta().is_some())
    }

    /// Returns the key's value as of main revision `main` (the newest version at or below it).
    pub fn at(&self, key: &Bytes, main: u64) -> Option<KeyValue> {
        let idx = self.versions.partition_point(|v| v.revision.main <= main);
        idx.checked_sub(1).and_then(|i| kv(key, &self.versions[i]))
    }

    /// Appends a put of `value` (a string or a hash, with the fields its write named:
    /// TouchedFields) at `revision` and returns its event.
    pub fn put(
        &mut self,
        key: &Bytes,
        value: &Stored,
        revision: Revision,
        touched: Touched,
    ) -> Event {
        self.debug_assert_newer(revision);
        let prev = self.latest(key);
        let (create_revision, version) = match &prev {
            Some(p) => (p.create_revision, p.version.saturating_add(1)),
            None => (revision.main, 1),
        };
        let change = match value {
            Stored::String(value) => Change::Put {
                value: value.clone(),
                create_revision,
                version,
            },
            Stored::Hash(fields) => Change::PutHash {
                fields: fields.clone(),
                create_revision,
                version,
                touched,
            },
        };
        self.versions.push_back(Version { revision, change });
        let kv = KeyValue {
            key: key.clone(),
            value: value.string().cloned().unwrap_or_default(),
            create_revision,
            mod_revision: revision.main,
            version,
            hash: value.hash().cloned(),
        };
        Event {
            kind: EventKind::Put,
            revision,
            kv,
            prev,
        }
    }

    /// Appends a tombstone at `revision` if the key is live, and returns the delete's event;
    /// with `expired`, the tombstone and its event are an expiry's.
    pub fn tombstone(&mut self, key: &Bytes, revision: Revision, expired: bool) -> Option<Event> {
        let prev = self.latest(key)?;
        self.debug_assert_newer(revision);
        let (change, kind) = if expired {
            (Change::Expired, EventKind::Expired)
        } else {
            (Change::Tombstone, EventKind::Delete)
        };
        self.versions.push_back(Version { revision, change });
        Some(Event::tombstone(kind, key.clone(), revision, Some(prev)))
    }

    /// Drops the versions that compaction at `at` makes unreachable, and returns whether any
    /// version is left.
    ///
    /// Versions with main >= `at` stay (HistoryWindow). Of those below, only the newest stays, as
    /// the key's value at `at`, and only if it is a put and nothing changed the key at `at`
    /// itself (CompactedPrefix). A tombstone at exactly `at` stays, so that a reader resuming
    /// history at the compact revision still sees that delete; the next compaction drops it.
    pub fn compact(&mut self, at: u64) -> bool {
        // Counted from the front, not searched: what lies below `at` is a prefix, usually a
        // version or two per step, so counting touches the first chunk only, while a binary
        // search missed the cache on each chunk it probed (most of compaction's time at the
        // default history cap, `benches/results/2026-12-06-compaction-front/`).
        let below = self.versions.leading(|v| v.revision.main < at);
        let at_or_below = below
            + self
                .versions
                .iter_from(below)
                .take_while(|v| v.revision.main <= at)
                .count();
        let drop = if below == 0 {
            0
        } else if at_or_below > below {
            // The key changed at `at` itself: that change is its value at `at`.
            below
        } else {
            if self.versions[below - 1].change.is_tombstone() {
                below
            } else {
                below - 1
            }
        };
        self.versions.drop_front(drop);
        !self.versions.is_empty()
    }

    /// Returns the key's changes with `from <= main <= to`, oldest first, at most `limit`.
    ///
    /// `from == 0` means every stored version, including the one compaction kept below the
    /// compact revision. An event's `prev` is `None` when the version before it is not stored.
    pub fn history(&self, key: &Bytes, from: u64, to: u64, limit: usize) -> Vec<Event> {
        let start = self.versions.partition_point(|v| v.revision.main < from);
        let end = self.versions.partition_point(|v| v.revision.main <= to);
        (start..end.max(start))
            .take(limit)
            .map(|i| self.event(key, i))
            .collect()
    }

    /// Returns the event of the version stored at exactly `revision`, if there is one; its
    /// `prev` is `None` when the version before it is not stored.
    pub fn event_at(&self, key: &Bytes, revision: Revision) -> Option<Event> {
        let i = self
            .versions
            .binary_search_by(|v| v.revision.cmp(&revision))
            .ok()?;
        Some(self.event(key, i))
    }

    /// Returns the revisions of every stored version, oldest first.
    pub fn revisions(&self) -> impl Iterator<Item = Revision> + '_ {
        self.versions.iter().map(|v| v.revision)
    }

    /// Returns the event of version `i`.
    fn event(&self, key: &Bytes, i: usize) -> Event {
        let version = &self.versions[i];
        let prev = i.checked_sub(1).and_then(|p| kv(key, &self.versions[p]));
        match kv(key, version) {
            Some(kv) => Event {
                kind: EventKind::Put,
                revision: version.revision,
                kv,
                prev,
            },
            None => {
                let kind = match version.change {
                    Change::Expired => EventKind::Expired,
                    _ => EventKind::Delete,
                };
                Event::tombstone(kind, key.clone(), version.revision, prev)
            }
        }
    }

    /// Returns how many versions are stored.
    pub fn len(&self) -> usize {
        self.versions.len()
    }

    /// Returns the position of the first version with main revision above `since` (`len()`
    /// when there is none): where a snapshot delta since `since` starts.
    pub fn first_after(&self, since: u64) -> usize {
        self.versions.partition_point(|v| v.revision.main <= since)
    }

    /// Appends `newer`'s versions (a snapshot delta's) after this key's. Refuses them unless the
    /// first is newer than the last stored (VersionsOrdered); the other invariants are checked
    /// by [`KeyIndex::validate`] once the whole delta is in.
    pub fn extend(&mut self, newer: KeyIndex) -> Result<(), String> {
        if let (Some(last), Some(first)) = (self.versions.back(), newer.versions.front()) {
            if first.revision <= last.revision {
                return Err(format!(
                    "delta version at {:?} is not after the stored {:?}",
                    first.revision, last.revision
                ));
            }
        }
        self.versions.extend(newer.versions);
        Ok(())
    }

    /// Returns the newest stored revision.
    pub fn last_revision(&self) -> Option<Revision> {
        self.versions.back().map(|v| v.revision)
    }

    /// Checks the invariants in the module doc for a key loaded from a snapshot, given the
    /// store's revision and compact revision. Returns what is wrong.
    pub fn validate(&self, current: u64, compact_revision: u64) -> Result<(), String> {
        if self.versions.is_empty() {
            return Err("key has no versions".to_owned());
        }
        let mut prev: Option<&Version> = None;
        for (i, v) in self.versions.iter().enumerate() {
            let main = v.revision.main;
            if main == 0 || main > current {
                return Err(format!("version at {:?} outside 1..={current}", v.revision));
            }
            if main < compact_revision && (i > 0 || v.change.is_tombstone()) {
                return Err(format!(
                    "version at {:?} should have been compacted",
                    v.revision
                ));
            }
            if let Some(p) = prev {
                if p.revision >= v.revision {
                    return Err(format!("versions out of order at {:?}", v.revision));
                }
            }
            let before = prev.map(|p| &p.change);
            match (v.change.put_meta(), before.map(Change::put_meta)) {
                (None, Some(Some(_))) => {}
                (None, None) if main == compact_revision => {}
                (None, _) => {
                    return Err(format!("tombstone at {:?} ends no generation", v.revision))
                }
                (Some((c, n)), before) => {
                    let ok = match before {
                        Some(Some((pc, pv))) => c == pc && Some(n) == pv.checked_add(1),
                        Some(None) => c == main && n == 1,
                        // The first stored version: its predecessors may have been compacted.
                        // A transaction may put a key several times in the revision that
                        // created it, so `c == main` allows any version; `n == 1` needs it.
                        None => c >= 1 && c <= main && n >= 1 && (n > 1 || c == main),
                    };
                    if !ok {
                        return Err(format!(
                            "put at {:?} has create_revision {c} and version {n}, which do not \
                             continue its generation",
                            v.revision
                        ));
                    }
                }
            }
            prev = Some(v);
        }
        Ok(())
    }

    fn debug_assert_newer(&self, revision: Revision) {
        debug_assert!(
            self.last_revision().is_none_or(|last| last < revision),
            "RevisionMonotonic: {revision:?} is not newer than {:?}",
            self.last_revision()
        );
    }
}

/// Returns the `KeyValue` a version holds, or `None` for a tombstone.
fn kv(key: &Bytes, version: &Version) -> Option<KeyValue> {
    match &version.change {
        Change::Put {
            value,
            create_revision,
            version: n,
        } => Some(KeyValue {
            key: key.clone(),
            value: value.clone(),
            create_revision: *create_revision,
            mod_revision: version.revision.main,
            version: *n,
            hash: None,
        }),
        Change::PutHash {
            fields,
            create_revision,
            version: n,
            ..
        } => Some(KeyValue {
            key: key.clone(),
            value: Bytes::new(),
            create_revision: *create_revision,
            mod_revision: version.revision.main,
            version: *n,
            hash: Some(fields.clone()),
        }),
        Change::Tombstone | Change::Expired => None,
    }
}

#[cfg(test)]
#[path = "key_index_test.rs"]
mod tests;
