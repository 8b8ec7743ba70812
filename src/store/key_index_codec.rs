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

use super::{Change, Hash, KeyIndex, Revision, Version};

/// One version as encoded.
#[derive(Serialize, Deserialize)]
struct VersionRepr {
    revision: Revision,
    change: ChangeRepr,
}

/// [`Change`] as encoded (StringEncodingUnchanged, HashDelta).
#[derive(Serialize, Deserialize)]
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

/// The versions as a sequence of [`VersionRepr`].
struct EncodedVersions<'a>(&'a [Version]);

impl Serialize for EncodedVersions<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let empty = Hash::new();
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        let mut prev: Option<&Hash> = None;
        for v in self.0 {
            let change = match &v.change {
                Change::Put {
                    value,
                    create_revision,
                    version,
                } => ChangeRepr::Put {
                    value: value.clone(),
                    create_revision: *create_revision,
                    version: *version,
                },
                Change::Tombstone => ChangeRepr::Tombstone,
                Change::Expired => ChangeRepr::Expired,
                Change::PutHash {
                    fields,
                    create_revision,
                    version,
                } => {
                    let (mut set, mut removed) = (Vec::new(), Vec::new());
                    // `diff` skips the nodes both maps share: O(change), not O(fields).
                    for item in prev.unwrap_or(&empty).diff(fields) {
                        match item {
                            DiffItem::Add(f, v) | DiffItem::Update { new: (f, v), .. } => {
                                set.push((f.clone(), v.clone()))
                            }
                            DiffItem::Remove(f, _) => removed.push(f.clone()),
                        }
                    }
                    ChangeRepr::PutHash {
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
            seq.serialize_element(&VersionRepr {
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
        st.serialize_field("versions", &EncodedVersions(&self.versions))?;
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
        Ok(KeyIndex { versions })
    }
}
