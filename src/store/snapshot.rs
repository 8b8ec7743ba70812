//! Snapshots: the whole [`Store`] as bytes, and back.
//!
//! ```text
//!   +------------------+-------------------------------------------------------------+
//!   | SNAPSHOT_VERSION | postcard(Store) = revision, compact_revision,               |
//!   |    (1 byte)      |   keyspace { key -> versions },                               |
//!   |                  |   dedup { client -> (seq, reply, leader ms), count, evicted }|
//!   |                  |   deadlines { key -> unix ms }                                |
//!   |                  |   scripts { sha1 -> body }          (since version 3)         |
//!   |                  |   users { name -> rules }, version  (since version 4)         |
//!   |                  |   authors { revision -> user }      (since version 4)         |
//!   +------------------+-------------------------------------------------------------+
//! ```
//!
//! Version 2 (the log records' [`FORMAT_VERSION`], before the script set was cluster state)
//! still loads, with no scripts, and version 3 (before ACL users were cluster state) with no
//! users; this build writes version 4.
//!
//! A snapshot holds the whole history window, the compact revision, the dedup table, the
//! expiry state (every live key's deadline) and the script bodies applied (ScriptsReplicated),
//! so a store restored from one answers every read,
//! deduplicates every retry and expires every key exactly as the original (SnapshotFaithful),
//! and a new leader restored from one takes over every pending deadline. Derived indexes (the
//! live-key count, the dedup age index, the deadline order) are not written; loading rebuilds
//! them. Every section is required: a snapshot cut short anywhere (a torn backup file, a
//! partial transfer) is refused as truncated, never loaded with a section missing.
//!
//! This file owns the encoding and the checks on load. Snapshot bytes come from disk or a peer,
//! so a wrong version byte, truncated or corrupt input returns a [`SnapshotError`] and never
//! panics, and every loaded store passes the key and dedup invariants before it is used.

use bytes::Bytes;
use serde::{Deserialize, Deserializer};

use super::acl::Users;
use super::audit::Authors;
use super::deadlines::Deadlines;
use super::dedup::DedupTable;
use super::kv::Keyspace;
use super::script::Scripts;
use super::{Store, FORMAT_VERSION};

/// The version byte this build writes at the head of a snapshot. [`FORMAT_VERSION`] (2) is
/// the same layout without the script set and the users, [`SCRIPTS_VERSION`] (3) without the
/// users; both are still read.
pub const SNAPSHOT_VERSION: u8 = 4;

/// The snapshot version that added the script set.
pub const SCRIPTS_VERSION: u8 = 3;

/// How many encoded bytes [`Store::write_snapshot`] gathers before handing them to its writer.
const CHUNK: usize = 64 << 10;

/// postcard's output for [`Store::write_snapshot`]: bytes gather in a buffer of [`CHUNK`] and
/// go to `out` a chunk at a time (**ChunkedEncode**). postcard's own `to_io` calls `write_all`
/// for every byte it encodes (each varint, each length); gathering them saved 3 % of a build
/// (its time is mostly the cache misses of reading the values: EncodePrefetch, `kv.rs`). An
/// error of `out` is kept in `failed` (postcard's error type has no room for it), the encode
/// stops, and the caller gets that error as it was (e.g. `StorageFull`). A chunk no smaller
/// than the snapshot writer's `BufWriter` (64 KiB, `build.rs`) goes straight through it.
struct Chunks<'a, W: std::io::Write> {
    buf: Vec<u8>,
    out: &'a mut W,
    failed: &'a mut Option<std::io::Error>,
}

impl<W: std::io::Write> Chunks<'_, W> {
    /// Hands the gathered bytes to `out`.
    fn drain(&mut self) -> postcard::Result<()> {
        if let Err(e) = self.out.write_all(&self.buf) {
            *self.failed = Some(e);
            return Err(postcard::Error::SerializeBufferFull);
        }
        self.buf.clear();
        Ok(())
    }
}

impl<W: std::io::Write> postcard::ser_flavors::Flavor for Chunks<'_, W> {
    type Output = ();

    #[inline]
    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        self.buf.push(byte);
        if self.buf.len() >= CHUNK {
            self.drain()?;
        }
        Ok(())
    }

    #[inline]
    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.drain()?;
        }
        Ok(())
    }

    fn finalize(mut self) -> postcard::Result<()> {
        self.drain()
    }
}

/// Writes `postcard(value)` to `w` a [`CHUNK`] at a time (ChunkedEncode), then flushes `w`.
pub(super) fn write_streamed<T: serde::Serialize, W: std::io::Write>(
    value: &T,
    w: &mut W,
) -> std::io::Result<()> {
    let mut failed = None;
    let chunks = Chunks {
        buf: Vec::with_capacity(CHUNK),
        out: w,
        failed: &mut failed,
    };
    if let Err(e) = postcard::serialize_with_flavor(value, chunks) {
        return Err(
            failed.unwrap_or_else(|| std::io::Error::other(format!("snapshot write failed: {e}")))
        );
    }
    w.flush()
}

/// Why snapshot bytes could not be loaded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The bytes end before the snapshot does (this includes no bytes at all).
    #[error("snapshot is truncated; fetch it again from the leader")]
    Truncated,
    /// The version byte is not one this build reads.
    #[error(
        "snapshot format version {found} is not supported; this build reads version {expected}"
    )]
    UnsupportedVersion { found: u8, expected: u8 },
    /// A delta section starts at byte `offset` of the snapshot bytes with a blank header: its
    /// writer stopped before finishing it (HeaderLast, `snapshot_delta.rs`). Everything from
    /// there on may be cut off; what precedes it is a valid snapshot.
    #[error("snapshot delta section at byte {offset} was never finished")]
    Unfinished { offset: usize },
    /// The bytes decode to nothing valid, or to a store that breaks its invariants.
    #[error("snapshot is corrupt: {0}; fetch it again from the leader")]
    Corrupt(String),
}

/// The serialised fields of [`Store`] before `deadlines`, in its field order (keep the two in
/// step), before the checks on load.
#[derive(Deserialize)]
struct StoreRepr {
    revision: u64,
    compact_revision: u64,
    keyspace: Keyspace,
    dedup: DedupTable,
}

/// Every serialised field of [`Store`], for deserializers other than the snapshot's.
#[derive(Deserialize)]
struct FullRepr {
    revision: u64,
    compact_revision: u64,
    keyspace: Keyspace,
    dedup: DedupTable,
    deadlines: Deadlines,
    scripts: Scripts,
    users: Users,
    authors: Authors,
}

impl StoreRepr {
    /// Checks the invariants of a decoded store and rebuilds its derived indexes.
    fn into_store(
        self,
        deadlines: Deadlines,
        scripts: Scripts,
        users: Users,
        authors: Authors,
    ) -> Result<Store, String> {
        let mut store = self.into_unchecked_store(deadlines, scripts, users, authors)?;
        store
            .keyspace
            .restore(store.revision, store.compact_revision)?;
        store.dedup.restore()?;
        store.deadlines.restore(&store.keyspace)?;
        Ok(store)
    }

    /// The store as decoded, its derived indexes not yet built and nothing checked but the
    /// compact revision: for a snapshot with deltas after it, which
    /// [`Store::apply_delta_sections`] checks and indexes once, after the last
    /// (`snapshot_delta.rs`), rather than once here and again there.
    fn into_unchecked_store(
        self,
        deadlines: Deadlines,
        scripts: Scripts,
        users: Users,
        authors: Authors,
    ) -> Result<Store, String> {
        let StoreRepr {
            revision,
            compact_revision,
            keyspace,
            dedup,
        } = self;
        if compact_revision > revision {
            return Err(format!(
                "compact revision {compact_revision} is above the revision {revision}"
            ));
        }
        Ok(Store {
            revision,
            compact_revision,
            keyspace,
            dedup,
            deadlines,
            scripts,
            users,
            authors,
        })
    }
}

impl<'de> Deserialize<'de> for Store {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let full = FullRepr::deserialize(deserializer)?;
        let core = StoreRepr {
            revision: full.revision,
            compact_revision: full.compact_revision,
            keyspace: full.keyspace,
            dedup: full.dedup,
        };
        core.into_store(full.deadlines, full.scripts, full.users, full.authors)
            .map_err(serde::de::Error::custom)
    }
}

impl Store {
    /// Writes the store's snapshot bytes (those of [`Store::to_snapshot`]) to `w`, streaming:
    /// nothing is built in memory but `w`'s own buffer. The store does no I/O of its own; the
    /// caller owns `w`.
    pub fn write_snapshot<W: std::io::Write>(&self, mut w: W) -> std::io::Result<()> {
        w.write_all(&[SNAPSHOT_VERSION])?;
        write_streamed(self, &mut w)
    }

    /// Returns the store as snapshot bytes: [`SNAPSHOT_VERSION`], then `postcard(Store)`.
    pub fn to_snapshot(&self) -> Vec<u8> {
        // Only maps, sequences of known length, integers and byte strings: postcard cannot fail.
        postcard::to_extend(self, vec![SNAPSHOT_VERSION])
            .expect("postcard encodes a Store into a Vec")
    }

    /// Loads a store from snapshot bytes written by [`Store::to_snapshot`], followed by any
    /// number of delta sections ([`Store::write_delta`], `snapshot_delta.rs`).
    pub fn from_snapshot(bytes: &[u8]) -> Result<Store, SnapshotError> {
        Self::from_snapshot_and_deltas(bytes).map(|(store, _)| store)
    }

    /// [`Store::from_snapshot`], also returning each delta section's label and length in
    /// bytes, in order (none for a snapshot without deltas).
    pub fn from_snapshot_and_deltas(
        bytes: &[u8],
    ) -> Result<(Store, Vec<(Bytes, usize)>), SnapshotError> {
        let (&found, body) = bytes.split_first().ok_or(SnapshotError::Truncated)?;
        if found != SNAPSHOT_VERSION && found != SCRIPTS_VERSION && found != FORMAT_VERSION {
            return Err(SnapshotError::UnsupportedVersion {
                found,
                expected: SNAPSHOT_VERSION,
            });
        }
        let decode_error = |e| match e {
            postcard::Error::DeserializeUnexpectedEnd => SnapshotError::Truncated,
            e => SnapshotError::Corrupt(e.to_string()),
        };
        let (repr, rest) = postcard::take_from_bytes::<StoreRepr>(body).map_err(decode_error)?;
        let (deadlines, rest) =
            postcard::take_from_bytes::<Deadlines>(rest).map_err(decode_error)?;
        let (scripts, rest) = if found >= SCRIPTS_VERSION {
            postcard::take_from_bytes::<Scripts>(rest).map_err(decode_error)?
        } else {
            (Scripts::default(), rest)
        };
        let (users, rest) = if found >= SNAPSHOT_VERSION {
            postcard::take_from_bytes::<Users>(rest).map_err(decode_error)?
        } else {
            (Users::default(), rest)
        };
        let (authors, rest) = if found >= SNAPSHOT_VERSION {
            postcard::take_from_bytes::<Authors>(rest).map_err(decode_error)?
        } else {
            (Authors::default(), rest)
        };
        if rest.is_empty() {
            let store = repr
                .into_store(deadlines, scripts, users, authors)
                .map_err(SnapshotError::Corrupt)?;
            return Ok((store, Vec::new()));
        }
        // Anything after the store must be delta sections (DeltaChecked); the whole is checked
        // and indexed once, after the last.
        let mut store = repr
            .into_unchecked_store(deadlines, scripts, users, authors)
            .map_err(SnapshotError::Corrupt)?;
        let base_len = bytes.len() - rest.len();
        let deltas = store.apply_delta_sections(rest).map_err(|e| match e {
            SnapshotError::Unfinished { offset } => SnapshotError::Unfinished {
                offset: base_len + offset,
            },
            e => e,
        })?;
        Ok((store, deltas))
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::store::{ClientSeq, Op, Request};

    fn must_sample_store() -> Store {
        let mut s = Store::new();
        let ops = [
            Op::Put {
                key: Bytes::from_static(b"a"),
                value: Bytes::from_static(b"1"),
            },
            Op::Put {
                key: Bytes::from_static(b"b"),
                value: Bytes::from_static(b"2"),
            },
            Op::Put {
                key: Bytes::from_static(b"a"),
                value: Bytes::from_static(b"3"),
            },
            Op::Delete {
                keys: vec![Bytes::from_static(b"b")],
            },
            Op::Compact { revision: 2 },
            Op::Put {
                key: Bytes::from_static(b""),
                value: Bytes::new(),
            },
            Op::Expire {
                key: Bytes::from_static(b"a"),
                expiry: crate::store::Expiry::At(1_000),
                cond: Default::default(),
                now_ms: 10,
            },
        ];
        for (i, op) in ops.into_iter().enumerate() {
            let client = Some(ClientSeq {
                client_id: 9,
                seq: i as u64 + 1,
                ..Default::default()
            });
            s.apply(&Request {
                client,
                op,
                at_ms: 0,
            });
        }
        s
    }

    #[test]
    fn round_trip_equals_original() {
        let s = must_sample_store();
        let bytes = s.to_snapshot();
        assert_eq!(bytes[0], SNAPSHOT_VERSION);
        let restored = Store::from_snapshot(&bytes).unwrap();
        assert_eq!(restored, s);
        assert_eq!(restored.len(), s.len());
        assert_eq!(restored.deadline(b"a"), Some(1_000));
        assert_eq!(restored.next_deadline(), Some(1_000));
        assert_eq!(restored.to_snapshot(), bytes);
        let mut streamed = Vec::new();
        s.write_snapshot(&mut streamed).unwrap();
        assert_eq!(streamed, bytes, "the streamed encoding is the same bytes");
        assert_eq!(
            Store::from_snapshot(&Store::new().to_snapshot()).unwrap(),
            Store::new()
        );
    }

    /// A store of several chunks (ChunkedEncode): the streamed bytes are `to_snapshot`'s, in
    /// whatever pieces the writer takes them.
    fn must_large_store() -> Store {
        let mut s = Store::new();
        for i in 0..400u32 {
            s.apply(&Request {
                client: None,
                op: Op::Put {
                    key: Bytes::from(format!("key{}", i % 150)),
                    value: Bytes::from(vec![i as u8; 700 + (i as usize % 5)]),
                },
                at_ms: 0,
            });
        }
        s
    }

    #[test]
    fn a_snapshot_of_many_chunks_streams_the_same_bytes() {
        let s = must_large_store();
        let bytes = s.to_snapshot();
        assert!(bytes.len() > 4 * CHUNK, "{} bytes", bytes.len());
        let mut streamed = Vec::new();
        s.write_snapshot(&mut streamed).unwrap();
        assert_eq!(streamed, bytes);
        assert_eq!(Store::from_snapshot(&streamed).unwrap(), s);
    }

    /// A writer that fails (a full disk) fails the snapshot write with the writer's own error,
    /// not a postcard one, and nothing past the failure is written.
    #[test]
    fn a_failing_writer_fails_the_snapshot_with_its_error() {
        struct FullAfter {
            left: usize,
            written: usize,
        }
        impl std::io::Write for FullAfter {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                if self.left == 0 {
                    return Err(std::io::Error::from(std::io::ErrorKind::StorageFull));
                }
                let n = buf.len().min(self.left);
                self.left -= n;
                self.written += n;
                Ok(n)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let s = must_large_store();
        let mut w = FullAfter {
            left: 2 * CHUNK + 10,
            written: 0,
        };
        let err = s.write_snapshot(&mut w).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::StorageFull, "{err}");
        assert_eq!(w.written, 2 * CHUNK + 10);
    }

    #[test]
    fn rejects_bad_bytes_without_panicking() {
        let good = must_sample_store().to_snapshot();
        let mut wrong_version = good.clone();
        wrong_version[0] = SNAPSHOT_VERSION + 1;
        let mut version_1 = good.clone();
        version_1[0] = 1;
        // A byte after the store other than a delta section's tag; a 0 there reads as a delta
        // section never finished (HeaderLast, below).
        let mut trailing = good.clone();
        trailing.push(1);
        struct Case {
            name: &'static str,
            bytes: Vec<u8>,
            want: fn(&SnapshotError) -> bool,
        }
        let cases = [
            Case {
                name: "empty",
                bytes: vec![],
                want: |e| *e == SnapshotError::Truncated,
            },
            Case {
                name: "wrong version",
                bytes: wrong_version,
                want: |e| {
                    matches!(
                        e,
                        SnapshotError::UnsupportedVersion {
                            found,
                            expected: SNAPSHOT_VERSION,
                        } if *found == SNAPSHOT_VERSION + 1
                    )
                },
            },
            Case {
                // Version 1: no stamps in the dedup table (before the dedup window).
                name: "the previous version",
                bytes: version_1,
                want: |e| {
                    matches!(
                        e,
                        SnapshotError::UnsupportedVersion {
                            found: 1,
                            expected: SNAPSHOT_VERSION,
                        }
                    )
                },
            },
            Case {
                name: "version only",
                bytes: vec![SNAPSHOT_VERSION],
                want: |e| *e == SnapshotError::Truncated,
            },
            Case {
                name: "trailing",
                bytes: trailing,
                want: |e| matches!(e, SnapshotError::Corrupt(_)),
            },
            Case {
                // revision 1, compact revision 5, empty keyspace, dedup (no clients, none
                // recorded, none evicted), deadlines, scripts, users (none, version 0) and
                // authors: decodes, breaks an invariant.
                name: "compact above revision",
                bytes: vec![SNAPSHOT_VERSION, 1, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                want: |e| matches!(e, SnapshotError::Corrupt(_)),
            },
            Case {
                name: "garbage",
                bytes: vec![
                    SNAPSHOT_VERSION,
                    0xff,
                    0xff,
                    0xff,
                    0xff,
                    0xff,
                    0xff,
                    0xff,
                    0xff,
                    0xff,
                    0xff,
                ],
                want: |e| matches!(e, SnapshotError::Corrupt(_) | SnapshotError::Truncated),
            },
        ];
        for c in cases {
            let err = Store::from_snapshot(&c.bytes).expect_err(c.name);
            assert!((c.want)(&err), "{}: {err:?}", c.name);
        }
        let mut blank = good.clone();
        blank.push(0);
        assert_eq!(
            Store::from_snapshot(&blank),
            Err(SnapshotError::Unfinished { offset: good.len() })
        );
        // Every truncation errs (also the one that cuts exactly the deadlines off: a torn
        // file must not load without its expiry state). Every single-byte corruption errs or
        // loads; none panics.
        for len in 0..good.len() {
            assert!(
                Store::from_snapshot(&good[..len]).is_err(),
                "truncated to {len}"
            );
        }
        let empty = Store::new().to_snapshot();
        assert_eq!(
            Store::from_snapshot(&empty[..empty.len() - 1]),
            Err(SnapshotError::Truncated),
            "an empty store's snapshot without its (empty) users section"
        );
        for i in 1..good.len() {
            for x in [0x00, 0x01, 0x7f, 0x80, 0xff] {
                let mut bad = good.clone();
                bad[i] = x;
                if let Ok(s) = Store::from_snapshot(&bad) {
                    // Whatever loaded is self-consistent enough to answer and apply.
                    let _ = s.get_at(b"a", 0);
                    let _ = s.history(b"a", 0, 0, usize::MAX);
                    let _ = s.clone().apply(&Request {
                        client: None,
                        op: Op::Put {
                            key: Bytes::from_static(b"a"),
                            value: Bytes::new(),
                        },
                        at_ms: 0,
                    });
                }
            }
        }
    }
}
