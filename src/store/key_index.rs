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

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{Event, EventKind, KeyValue, Revision};

/// What one version of a key holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
}

impl Change {
    /// Returns whether this version ends a generation (a delete or an expiry).
    fn is_tombstone(&self) -> bool {
        matches!(self, Change::Tombstone | Change::Expired)
    }
}

/// One stored version of a key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Version {
    pub revision: Revision,
    pub change: Change,
}

/// Every stored version of one key, oldest first. Never empty while it sits in the keyspace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct KeyIndex {
    /// Ordered by revision (VersionsOrdered). A `Vec` because appends happen at the end and
    /// reads at a revision binary-search it; compaction drains a prefix.
    versions: Vec<Version>,
}

impl KeyIndex {
    /// Returns the key's value at the newest version, or `None` if it ends in a tombstone.
    pub fn latest(&self, key: &Bytes) -> Option<KeyValue> {
        self.versions.last().and_then(|v| kv(key, v))
    }

    /// Returns whether the newest version is a put.
    pub fn is_live(&self) -> bool {
        matches!(
            self.versions.last(),
            Some(Version {
                change: Change::Put { .. },
                ..
            })
        )
    }

    /// Returns the key's value as of main revision `main` (the newest version at or below it).
    pub fn at(&self, key: &Bytes, main: u64) -> Option<KeyValue> {
        let idx = self.versions.partition_point(|v| v.revision.main <= main);
        idx.checked_sub(1).and_then(|i| kv(key, &self.versions[i]))
    }

    /// Appends a put at `revision` and returns its event.
    pub fn put(&mut self, key: &Bytes, value: &Bytes, revision: Revision) -> Event {
        self.debug_assert_newer(revision);
        let prev = self.latest(key);
        let (create_revision, version) = match &prev {
            Some(p) => (p.create_revision, p.version.saturating_add(1)),
            None => (revision.main, 1),
        };
        let change = Change::Put {
            value: value.clone(),
            create_revision,
            version,
        };
        self.versions.push(Version { revision, change });
        Event {
            kind: EventKind::Put,
            revision,
            kv: KeyValue {
                key: key.clone(),
                value: value.clone(),
                create_revision,
                mod_revision: revision.main,
                version,
            },
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
        self.versions.push(Version { revision, change });
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
        let below = self.versions.partition_point(|v| v.revision.main < at);
        let at_or_below = self.versions.partition_point(|v| v.revision.main <= at);
        let drop = if below == 0 {
            0
        } else if at_or_below > below {
            // The key changed at `at` itself: that change is its value at `at`.
            below
        } else {
            match self.versions[below - 1].change {
                Change::Put { .. } => below - 1,
                Change::Tombstone | Change::Expired => below,
            }
        };
        self.versions.drain(..drop);
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

    /// Returns the main revision of the oldest stored version.
    pub fn first_main(&self) -> Option<u64> {
        self.versions.first().map(|v| v.revision.main)
    }

    /// Returns the newest stored revision.
    pub fn last_revision(&self) -> Option<Revision> {
        self.versions.last().map(|v| v.revision)
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
            if main < compact_revision && (i > 0 || !matches!(v.change, Change::Put { .. })) {
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
            match (&v.change, prev.map(|p| &p.change)) {
                (c, Some(Change::Put { .. })) if c.is_tombstone() => {}
                (c, None) if c.is_tombstone() && main == compact_revision => {}
                (Change::Tombstone | Change::Expired, _) => {
                    return Err(format!("tombstone at {:?} ends no generation", v.revision))
                }
                (
                    Change::Put {
                        create_revision,
                        version,
                        ..
                    },
                    before,
                ) => {
                    let (c, n) = (*create_revision, *version);
                    let ok = match before {
                        Some(Change::Put {
                            create_revision: pc,
                            version: pv,
                            ..
                        }) => c == *pc && Some(n) == pv.checked_add(1),
                        Some(Change::Tombstone | Change::Expired) => c == main && n == 1,
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
        }),
        Change::Tombstone | Change::Expired => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rev(main: u64) -> Revision {
        Revision::new(main, 0)
    }

    /// Builds a key index from `(main, Some(value))` puts and `(main, None)` deletes.
    fn must_build(ops: &[(u64, Option<&str>)]) -> KeyIndex {
        let key = Bytes::from_static(b"k");
        let mut ki = KeyIndex::default();
        for &(main, value) in ops {
            match value {
                Some(v) => {
                    ki.put(&key, &Bytes::copy_from_slice(v.as_bytes()), rev(main));
                }
                None => {
                    ki.tombstone(&key, rev(main), false)
                        .expect("delete of a live key");
                }
            }
        }
        ki
    }

    //   put@2 "a"   put@3 "b"   del@5   put@7 "c"
    //   [c2 v1] --- [c2 v2] --- [tomb] | [c7 v1]
    const OPS: &[(u64, Option<&str>)] =
        &[(2, Some("a")), (3, Some("b")), (5, None), (7, Some("c"))];

    #[test]
    fn at_reads_generations() {
        struct Case {
            main: u64,
            want: Option<(&'static str, u64, u64, u64)>, // value, create, mod, version
        }
        let cases = [
            Case {
                main: 0,
                want: None,
            },
            Case {
                main: 1,
                want: None,
            },
            Case {
                main: 2,
                want: Some(("a", 2, 2, 1)),
            },
            Case {
                main: 3,
                want: Some(("b", 2, 3, 2)),
            },
            Case {
                main: 4,
                want: Some(("b", 2, 3, 2)),
            },
            Case {
                main: 5,
                want: None,
            },
            Case {
                main: 6,
                want: None,
            },
            Case {
                main: 7,
                want: Some(("c", 7, 7, 1)),
            },
            Case {
                main: 100,
                want: Some(("c", 7, 7, 1)),
            },
        ];
        let ki = must_build(OPS);
        let key = Bytes::from_static(b"k");
        for c in cases {
            let got = ki.at(&key, c.main).map(|kv| {
                let value = std::str::from_utf8(&kv.value).unwrap().to_owned();
                (value, kv.create_revision, kv.mod_revision, kv.version)
            });
            let want = c.want.map(|(v, cr, mr, n)| (v.to_owned(), cr, mr, n));
            assert_eq!(got, want, "at({})", c.main);
        }
        ki.validate(7, 0).unwrap();
    }

    #[test]
    fn compact_keeps_value_at_compact_revision() {
        struct Case {
            at: u64,
            want_mains: &'static [u64],
            want_left: bool,
        }
        let cases = [
            // Nothing below 1 or 2.
            Case {
                at: 1,
                want_mains: &[2, 3, 5, 7],
                want_left: true,
            },
            Case {
                at: 2,
                want_mains: &[2, 3, 5, 7],
                want_left: true,
            },
            // put@2 is superseded by put@3 at 3.
            Case {
                at: 3,
                want_mains: &[3, 5, 7],
                want_left: true,
            },
            // put@3 is the value at 4.
            Case {
                at: 4,
                want_mains: &[3, 5, 7],
                want_left: true,
            },
            // The tombstone at exactly 5 stays, for history from 5.
            Case {
                at: 5,
                want_mains: &[5, 7],
                want_left: true,
            },
            // A tombstone below the compact revision goes with its generation.
            Case {
                at: 6,
                want_mains: &[7],
                want_left: true,
            },
            Case {
                at: 7,
                want_mains: &[7],
                want_left: true,
            },
            Case {
                at: 9,
                want_mains: &[7],
                want_left: true,
            },
        ];
        for c in cases {
            let mut ki = must_build(OPS);
            assert_eq!(ki.compact(c.at), c.want_left, "compact({})", c.at);
            let mains: Vec<u64> = ki.versions.iter().map(|v| v.revision.main).collect();
            assert_eq!(mains, c.want_mains, "compact({})", c.at);
            ki.validate(9, c.at).unwrap();
        }
    }

    #[test]
    fn compact_drops_a_deleted_key_entirely() {
        let mut ki = must_build(&[(1, Some("a")), (2, None)]);
        assert!(ki.compact(2), "the tombstone at the compact revision stays");
        assert!(!ki.compact(3), "and goes at the next compaction");
    }

    #[test]
    fn history_prev_after_compaction() {
        let key = Bytes::from_static(b"k");
        let mut ki = must_build(OPS);
        ki.compact(4);
        let events = ki.history(&key, 0, 100, usize::MAX);
        let got: Vec<(u64, EventKind, Option<u64>)> = events
            .iter()
            .map(|e| {
                (
                    e.revision.main,
                    e.kind,
                    e.prev.as_ref().map(|p| p.mod_revision),
                )
            })
            .collect();
        // put@3's predecessor is compacted; the delete replaced put@3; put@7 follows a tombstone.
        assert_eq!(
            got,
            vec![
                (3, EventKind::Put, None),
                (5, EventKind::Delete, Some(3)),
                (7, EventKind::Put, None)
            ]
        );
        assert_eq!(ki.history(&key, 5, 6, usize::MAX).len(), 1);
        assert_eq!(ki.history(&key, 6, 5, usize::MAX).len(), 0);
        assert_eq!(ki.history(&key, 0, 100, 2).len(), 2);
        assert_eq!(ki.history(&key, 0, 100, 0).len(), 0);
    }

    #[test]
    fn validate_rejects_broken_generations() {
        let put = |main, create_revision, version| Version {
            revision: rev(main),
            change: Change::Put {
                value: Bytes::new(),
                create_revision,
                version,
            },
        };
        let tomb = |main| Version {
            revision: rev(main),
            change: Change::Tombstone,
        };
        struct Case {
            name: &'static str,
            versions: Vec<Version>,
            compact: u64,
            want_ok: bool,
        }
        let cases = [
            Case {
                name: "empty",
                versions: vec![],
                compact: 0,
                want_ok: false,
            },
            Case {
                name: "create",
                versions: vec![put(1, 1, 1)],
                compact: 0,
                want_ok: true,
            },
            Case {
                name: "zero rev",
                versions: vec![put(0, 0, 1)],
                compact: 0,
                want_ok: false,
            },
            Case {
                name: "future",
                versions: vec![put(11, 11, 1)],
                compact: 0,
                want_ok: false,
            },
            Case {
                name: "out of order",
                versions: vec![put(3, 3, 1), put(2, 3, 2)],
                compact: 0,
                want_ok: false,
            },
            Case {
                name: "version skips",
                versions: vec![put(1, 1, 1), put(2, 1, 3)],
                compact: 0,
                want_ok: false,
            },
            Case {
                name: "double tombstone",
                versions: vec![put(1, 1, 1), tomb(2), tomb(3)],
                compact: 0,
                want_ok: false,
            },
            Case {
                name: "regeneration",
                versions: vec![put(1, 1, 1), tomb(2), put(3, 3, 1)],
                compact: 0,
                want_ok: true,
            },
            Case {
                name: "compacted first put",
                versions: vec![put(4, 2, 3)],
                compact: 6,
                want_ok: true,
            },
            Case {
                name: "two below compact",
                versions: vec![put(4, 2, 3), put(5, 2, 4)],
                compact: 6,
                want_ok: false,
            },
            Case {
                name: "tomb at compact",
                versions: vec![tomb(6)],
                compact: 6,
                want_ok: true,
            },
            Case {
                name: "tomb after compact",
                versions: vec![tomb(7)],
                compact: 6,
                want_ok: false,
            },
        ];
        for c in cases {
            let ki = KeyIndex {
                versions: c.versions,
            };
            assert_eq!(ki.validate(10, c.compact).is_ok(), c.want_ok, "{}", c.name);
        }
    }
}
