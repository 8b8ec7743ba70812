//! How a [`KeyIndex`] is encoded in snapshots and backups: its versions in order, each as
//! [`Version`] is, except that a hash version is stored as its change from the version just
//! before it when that one is a hash too (HashDelta).
//!
//! Why: in memory the versions of a hash share every unchanged node of the persistent map,
//! so a write to one field of a 10,000-field hash costs O(log n); encoded whole, the same
//! history would cost every field of every version on disk and, once decoded, in memory
//! (nothing shared). As changes, a snapshot holds the first version of each run whole and then
//! only the fields each write set or removed, and decoding rebuilds every version from the one
//! before it, so the restored versions share their nodes again.
//!
//! Invariants:
//! - **StringEncodingUnchanged.** A key that never held a hash encodes exactly as before
//!   hashes existed (the first three variants of [`ChangeRepr`] are [`Change`]'s, in order), so
//!   older snapshots decode and re-encode to the same bytes.
//! - **HashDelta.** A hash version's `set` and `removed` turn the previous hash version (or an
//!   empty hash when the previous version is not a hash) into this one; decoding refuses a
//!   delta that removes a missing field or leaves an empty hash (HashNeverEmpty).

use serde::de::Error as _;
use serde::ser::{SerializeSeq, SerializeStruct};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use bytes::Bytes;
use imbl::ordmap::DiffItem;

use super::{Change, Hash, KeyIndex, Revision, Touched, Version, Versions};

/// One version as encoded (decoded into; [`VersionRef`] writes it).
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
struct VersionRepr {
    revision: Revision,
    change: ChangeRepr,
}

/// [`Change`] as encoded (StringEncodingUnchanged, HashDelta).
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
enum ChangeRepr {
    Put {
        value: Bytes,
        create_revision: u64,
        version: u64,
    },
    Tombstone,
    Expired,
    PutHash {
        /// Fields added or changed since the previous hash version, in field order.
        set: Vec<(Bytes, Bytes)>,
        /// Fields removed since the previous hash version, in field order.
        removed: Vec<Bytes>,
        create_revision: u64,
        version: u64,
    },
}

/// [`VersionRepr`] borrowed from a [`Version`]: what the encoder writes.
///
/// **EncodeBorrows.** It serialises exactly as [`VersionRepr`] (same names, same fields in the
/// same order, a borrowed `Bytes` as an owned one), so a snapshot's bytes do not depend on
/// which of the two wrote them; but it copies no value. Cloning each value into an owned repr
/// cost an atomic increment and decrement on a cold cache line per version, every snapshot,
/// for every version of the history (`shared_clone` and `shared_drop` were a fifth of the
/// snapshot thread after 500,000 writes).
#[derive(Serialize)]
#[serde(rename = "VersionRepr")]
struct VersionRef<'a> {
    revision: Revision,
    change: ChangeRef<'a>,
}

/// [`ChangeRepr`] borrowed (EncodeBorrows): the variants in the same order.
#[derive(Serialize)]
#[serde(rename = "ChangeRepr")]
enum ChangeRef<'a> {
    Put {
        value: &'a Bytes,
        create_revision: u64,
        version: u64,
    },
    Tombstone,
    Expired,
    PutHash {
        set: Vec<(&'a Bytes, &'a Bytes)>,
        removed: Vec<&'a Bytes>,
        create_revision: u64,
        version: u64,
    },
}

/// The versions as a sequence of [`VersionRepr`], written as [`VersionRef`]s.
/// From the version at the position given on (0: all of them).
struct EncodedVersions<'a>(&'a Versions<Version>, usize);

/// A hash version's change from the previous one: the fields set (added or given another
/// value) and the fields removed, each in field order.
type HashDelta<'a> = (Vec<(&'a Bytes, &'a Bytes)>, Vec<&'a Bytes>);

/// The change from `prev` (none: the empty hash) to `fields`, by diffing the two maps.
fn diffed<'a>(prev: Option<&'a Hash>, fields: &'a Hash) -> HashDelta<'a> {
    let Some(prev) = prev else {
        return (fields.iter().collect(), Vec::new());
    };
    let (mut set, mut removed) = (Vec::new(), Vec::new());
    // `diff` skips the leaves both maps share, but visits every shared subtree's boundary:
    // O(branching x depth) per version, not O(change).
    for item in prev.diff(fields) {
        match item {
            DiffItem::Add(f, v) | DiffItem::Update { new: (f, v), .. } => set.push((f, v)),
            DiffItem::Remove(f, _) => removed.push(f),
        }
    }
    (set, removed)
}

/// The same change as [`diffed`], from the change the write kept (TouchedFields): no lookup
/// in either map.
fn from_touched(change: &[(Bytes, Option<Bytes>)]) -> HashDelta<'_> {
    let (mut set, mut removed) = (Vec::new(), Vec::new());
    for (field, value) in change {
        match value {
            Some(value) => set.push((field, value)),
            None => removed.push(field),
        }
    }
    (set, removed)
}

impl Serialize for EncodedVersions<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let from = self.1.min(self.0.len());
        let mut seq = s.serialize_seq(Some(self.0.len() - from))?;
        let mut prev: Option<&Hash> = None;
        for v in self.0.iter_from(from) {
            let change = match &v.change {
                Change::Put {
                    value,
                    create_revision,
                    version,
                } => ChangeRef::Put {
                    value,
                    create_revision: *create_revision,
                    version: *version,
                },
                Change::Tombstone => ChangeRef::Tombstone,
                Change::Expired => ChangeRef::Expired,
                Change::PutHash {
                    fields,
                    create_revision,
                    version,
                    touched,
                } => {
                    let (set, removed) = match (prev, &touched.0) {
                        (Some(_prev), Some(change)) => {
                            let delta = from_touched(change);
                            debug_assert_eq!(
                                delta,
                                diffed(Some(_prev), fields),
                                "TouchedFields: the kept change is not the diff at {:?}",
                                v.revision
                            );
                            delta
                        }
                        _ => diffed(prev, fields),
                    };
                    ChangeRef::PutHash {
                        set,
                        removed,
                        create_revision: *create_revision,
                        version: *version,
                    }
                }
            };
            prev = match &v.change {
                Change::PutHash { fields, .. } => Some(fields),
                _ => None,
            };
            seq.serialize_element(&VersionRef {
                revision: v.revision,
                change,
            })?;
        }
        seq.end()
    }
}

impl Serialize for KeyIndex {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("KeyIndex", 1)?;
        st.serialize_field("versions", &EncodedVersions(&self.versions, 0))?;
        st.end()
    }
}

/// A key's versions from position `.1` on, encoded as a [`KeyIndex`] of those versions alone
/// (a snapshot delta's; decoded as a `KeyIndex`). A hash version's fields are written against
/// the previous version *in the suffix*, so the first is written whole.
pub(in crate::store) struct Suffix<'a>(pub &'a KeyIndex, pub usize);

impl Serialize for Suffix<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("KeyIndex", 1)?;
        st.serialize_field("versions", &EncodedVersions(&self.0.versions, self.1))?;
        st.end()
    }
}

impl<'de> Deserialize<'de> for KeyIndex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename = "KeyIndex")]
        struct Repr {
            versions: Vec<VersionRepr>,
        }
        let repr = Repr::deserialize(d)?;
        let mut versions = Vec::with_capacity(repr.versions.len());
        let mut prev: Option<Hash> = None;
        for v in repr.versions {
            let change = match v.change {
                ChangeRepr::Put {
                    value,
                    create_revision,
                    version,
                } => Change::Put {
                    value,
                    create_revision,
                    version,
                },
                ChangeRepr::Tombstone => Change::Tombstone,
                ChangeRepr::Expired => Change::Expired,
                ChangeRepr::PutHash {
                    set,
                    removed,
                    create_revision,
                    version,
                } => {
                    // An O(1) copy of the previous version: the new one shares its nodes.
                    let mut fields = prev.take().unwrap_or_default();
                    for f in removed {
                        if fields.remove(&f).is_none() {
                            return Err(D::Error::custom(format!(
                                "hash version at {:?} removes a field it does not have",
                                v.revision
                            )));
                        }
                    }
                    for (f, value) in set {
                        fields.insert(f, value);
                    }
                    if fields.is_empty() {
                        return Err(D::Error::custom(format!(
                            "hash version at {:?} is empty",
                            v.revision
                        )));
                    }
                    Change::PutHash {
                        fields,
                        create_revision,
                        version,
                        touched: Touched::default(),
                    }
                }
            };
            prev = match &change {
                Change::PutHash { fields, .. } => Some(fields.clone()),
                _ => None,
            };
            versions.push(Version {
                revision: v.revision,
                change,
            });
        }
        Ok(KeyIndex {
            versions: Versions::from_iter(versions),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Stored;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn hash(fields: &[(&str, &str)]) -> Stored {
        Stored::Hash(fields.iter().map(|(f, v)| (b(f), b(v))).collect())
    }

    /// EncodeBorrows: the borrowed encoder writes exactly the bytes of the owned repr the
    /// decoder reads, for every kind of version (string puts, a delete, an expiry, hashes
    /// written whole and as changes).
    #[test]
    fn borrowed_encoding_is_the_owned_repr_byte_for_byte() {
        let key = b("k");
        let none = Touched::default;
        // TouchedFields: a kept change is written as the diff's (a removal and an addition).
        let named = |change: &[(&str, Option<&str>)]| {
            Touched(Some(change.iter().map(|(f, v)| (b(f), v.map(b))).collect()))
        };
        let mut ki = KeyIndex::default();
        ki.put(&key, &Stored::String(b("one")), Revision::new(2, 0), none());
        ki.put(&key, &Stored::String(b("two")), Revision::new(3, 1), none());
        ki.tombstone(&key, Revision::new(4, 0), false).unwrap();
        let first = hash(&[("a", "1"), ("b", "2")]);
        ki.put(&key, &first, Revision::new(5, 0), none());
        let second = hash(&[("a", "1"), ("c", "3")]);
        ki.put(
            &key,
            &second,
            Revision::new(6, 0),
            named(&[("b", None), ("c", Some("3"))]),
        );
        ki.tombstone(&key, Revision::new(7, 0), true).unwrap();
        ki.put(
            &key,
            &Stored::String(b("three")),
            Revision::new(8, 0),
            none(),
        );

        #[derive(Serialize)]
        #[serde(rename = "KeyIndex")]
        struct Owned {
            versions: Vec<VersionRepr>,
        }
        let put = |value: &str, create_revision, version| ChangeRepr::Put {
            value: b(value),
            create_revision,
            version,
        };
        let at = |main, sub, change| VersionRepr {
            revision: Revision::new(main, sub),
            change,
        };
        let owned = Owned {
            versions: vec![
                at(2, 0, put("one", 2, 1)),
                at(3, 1, put("two", 2, 2)),
                at(4, 0, ChangeRepr::Tombstone),
                at(
                    5,
                    0,
                    ChangeRepr::PutHash {
                        set: vec![(b("a"), b("1")), (b("b"), b("2"))],
                        removed: vec![],
                        create_revision: 5,
                        version: 1,
                    },
                ),
                at(
                    6,
                    0,
                    ChangeRepr::PutHash {
                        set: vec![(b("c"), b("3"))],
                        removed: vec![b("b")],
                        create_revision: 5,
                        version: 2,
                    },
                ),
                at(7, 0, ChangeRepr::Expired),
                at(8, 0, put("three", 8, 1)),
            ],
        };
        let written = postcard::to_allocvec(&ki).unwrap();
        assert_eq!(written, postcard::to_allocvec(&owned).unwrap());
        let back: KeyIndex = postcard::from_bytes(&written).unwrap();
        assert_eq!(back, ki);
    }
}
