//! Snapshot deltas: what changed in a [`Store`] since it was at a given revision, as a section
//! that follows a snapshot's store bytes, and loading a snapshot followed by such sections.
//!
//! ```text
//!   snapshot store bytes (snapshot.rs) ++ section* where
//!   section = DELTA_TAG (1 byte) ++ u32 BE n ++ u32 BE crc32c(payload) ++ payload (n bytes)
//!   payload = postcard(label, since, revision, compact_revision,
//!                      keys [(key, the key's versions with main > since)],
//!                      dedup, deadlines, scripts, users,      (whole, as in a snapshot)
//!                      authors [(revision > since, user)])
//! ```
//!
//! A full snapshot writes the whole history window every time, so its cost grows with the
//! history kept; a delta writes what the log wrote since the last one (**DeltaCostsWhatChanged**):
//! the versions newer than `since` of the keys that have them (a pass over the key map finds
//! them: a version that compaction has since dropped from the change index may still be the
//! value kept below the compact revision), the compact revision, the authors of the new
//! revisions, and the small tables whole.
//!
//! - **DeltaWithinWindow.** A delta since `since` exists only while the compact revision is at
//!   most `since` ([`Store::can_delta_since`]). Then compaction has dropped nothing newer than
//!   `since`, so the versions above `since` are every change made since, and what it dropped
//!   at or below `since` is decided by versions the base already holds. Past that, a key
//!   deleted after `since` and compacted away would leave no trace in the delta while the base
//!   still holds its old value (found by the property test below): take a full snapshot.
//! - **DeltaFollows.** A delta applies only to a store at exactly its `since` revision; its
//!   versions are each key's newest (VersionsOrdered) and within `(since, revision]`; its
//!   compact revision is between the store's and `since`. Anything else is refused as corrupt.
//! - **DeltaFaithful.** Base + deltas loads to the same store, byte for byte, as the store
//!   the last delta was written from. Compaction at `c2` after compaction at `c1 <= c2` keeps
//!   what compaction at `c2` alone keeps, so the loader compacts once, at the delta's compact
//!   revision, after appending. (Property-tested below over random histories.)
//! - **DeltaChecked.** Every section carries its length and a CRC32C of its payload; a
//!   section cut short is [`SnapshotError::Truncated`], a wrong CRC, tag or anything after
//!   the last section is [`SnapshotError::Corrupt`], and the loaded store passes every check
//!   a snapshot's does. Bytes from disk or a peer never panic.
//!
//! The tag is the section's format version (DESIGN's leading version byte): a later layout of
//! the payload gets a new tag, and this build refuses a tag it does not know.
//!
//! `label` is the caller's (the Raft layer keeps the snapshot meta the section brings the
//! snapshot up to); the store does not read it.

use std::io::Write;

use bytes::Bytes;
use serde::ser::SerializeSeq;
use serde::{Deserialize, Serialize, Serializer};

use super::acl::Users;
use super::audit::Authors;
use super::deadlines::Deadlines;
use super::dedup::DedupTable;
use super::key_index::{KeyIndex, Suffix};
use super::script::Scripts;
use super::snapshot::SnapshotError;
use super::Store;

/// The first byte of a delta section.
pub const DELTA_TAG: u8 = 0xD5;

/// A delta section's header: tag, length and CRC.
pub const DELTA_HEADER: usize = 9;

/// A delta as written: borrowed from the store.
#[derive(Serialize)]
struct DeltaRef<'a> {
    label: &'a [u8],
    since: u64,
    revision: u64,
    compact_revision: u64,
    keys: ChangedKeys<'a>,
    dedup: &'a DedupTable,
    deadlines: &'a Deadlines,
    scripts: &'a Scripts,
    users: &'a Users,
    authors: NewAuthors<'a>,
}

/// A delta as read.
#[derive(Deserialize)]
struct DeltaRepr {
    label: Bytes,
    since: u64,
    revision: u64,
    compact_revision: u64,
    keys: Vec<(Bytes, KeyIndex)>,
    dedup: DedupTable,
    deadlines: Deadlines,
    scripts: Scripts,
    users: Users,
    authors: Vec<(u64, Bytes)>,
}

/// The keys with versions newer than `since`, each with those versions.
struct ChangedKeys<'a>(&'a Store, u64);

impl Serialize for ChangedKeys<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let keyspace = &self.0.keyspace;
        let n = keyspace.changed_since(self.1).count();
        let mut seq = s.serialize_seq(Some(n))?;
        for (key, index, from) in keyspace.changed_since(self.1) {
            seq.serialize_element(&(key, Suffix(index, from)))?;
        }
        seq.end()
    }
}

/// The authors of the revisions above `since`.
struct NewAuthors<'a>(&'a Authors, u64);

impl Serialize for NewAuthors<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let n = self.0.since(self.1).count();
        let mut seq = s.serialize_seq(Some(n))?;
        for entry in self.0.since(self.1) {
            seq.serialize_element(&entry)?;
        }
        seq.end()
    }
}

/// A writer that passes bytes on and keeps their count and CRC32C.
struct Summing<'a, W> {
    out: &'a mut W,
    len: u64,
    crc: u32,
}

impl<W: Write> Write for Summing<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.out.write(buf)?;
        self.len += n as u64;
        self.crc = crc32c::crc32c_append(self.crc, &buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

impl Store {
    /// Writes a delta section (see the module doc) with a blank header: what changed since
    /// this store was at revision `since`, to follow the snapshot bytes of that store (or its
    /// last delta). `label` is stored as given. Streams the encoding into `w` (nothing the
    /// size of the delta is built in memory) and returns the header, which the caller writes
    /// over the blank [`DELTA_HEADER`] bytes at the section's start once the rest is durable
    /// (**HeaderLast**: until then the section reads as [`SnapshotError::Unfinished`], which a
    /// loader may cut off; never as a complete section with bytes missing).
    pub fn write_delta<W: Write>(
        &self,
        since: u64,
        label: &[u8],
        mut w: W,
    ) -> std::io::Result<[u8; DELTA_HEADER]> {
        if !self.can_delta_since(since) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "no delta since revision {since}: the store is at {}, compacted to {} \
                     (DeltaWithinWindow); take a full snapshot",
                    self.revision, self.compact_revision
                ),
            ));
        }
        w.write_all(&[0u8; DELTA_HEADER])?;
        let mut summing = Summing {
            out: &mut w,
            len: 0,
            crc: 0,
        };
        super::snapshot::write_streamed(&self.delta_ref(since, label), &mut summing)?;
        let (len, crc) = (summing.len, summing.crc);
        let len = u32::try_from(len).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "snapshot delta over 4 GiB: take a full snapshot",
            )
        })?;
        let mut header = [0u8; DELTA_HEADER];
        header[0] = DELTA_TAG;
        header[1..5].copy_from_slice(&len.to_be_bytes());
        header[5..9].copy_from_slice(&crc.to_be_bytes());
        Ok(header)
    }

    /// Whether a delta since revision `since` can be written (DeltaWithinWindow): the store
    /// is at or past `since` and compaction has not gone past it.
    pub fn can_delta_since(&self, since: u64) -> bool {
        since <= self.revision && self.compact_revision <= since
    }

    /// [`Store::write_delta`] into a `Vec`. Panics where that returns an error (no delta
    /// since `since`: check [`Store::can_delta_since`]).
    pub fn to_delta(&self, since: u64, label: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let header = self
            .write_delta(since, label, &mut out)
            .expect("a delta encodes into a Vec");
        out[..DELTA_HEADER].copy_from_slice(&header);
        out
    }

    fn delta_ref<'a>(&'a self, since: u64, label: &'a [u8]) -> DeltaRef<'a> {
        DeltaRef {
            label,
            since,
            revision: self.revision,
            compact_revision: self.compact_revision,
            keys: ChangedKeys(self, since),
            dedup: &self.dedup,
            deadlines: &self.deadlines,
            scripts: &self.scripts,
            users: &self.users,
            authors: NewAuthors(&self.authors, since),
        }
    }

    /// Applies the delta sections in `sections` (the bytes after a snapshot's store bytes) in
    /// order, and returns each one's label and length in bytes. DeltaFollows, DeltaChecked.
    pub(super) fn apply_delta_sections(
        &mut self,
        mut sections: &[u8],
    ) -> Result<Vec<(Bytes, usize)>, SnapshotError> {
        let mut labels = Vec::new();
        let mut offset = 0;
        let mut compact = self.compact_revision;
        let mut tables = None;
        while let Some((&tag, rest)) = sections.split_first() {
            if tag == 0 {
                // HeaderLast: a section whose header was never written.
                return Err(SnapshotError::Unfinished { offset });
            }
            if tag != DELTA_TAG {
                return Err(SnapshotError::Corrupt(format!(
                    "byte {tag:#04x} after the store where a delta section or the end belongs"
                )));
            }
            if rest.len() < DELTA_HEADER - 1 {
                return Err(SnapshotError::Truncated);
            }
            let len = u32::from_be_bytes(rest[0..4].try_into().expect("4 bytes")) as usize;
            let crc = u32::from_be_bytes(rest[4..8].try_into().expect("4 bytes"));
            let rest = &rest[8..];
            if rest.len() < len {
                return Err(SnapshotError::Truncated);
            }
            let (payload, next) = rest.split_at(len);
            if crc32c::crc32c(payload) != crc {
                return Err(SnapshotError::Corrupt(
                    "a delta section's checksum does not match its bytes".to_owned(),
                ));
            }
            let delta: DeltaRepr = postcard::from_bytes(payload)
                .map_err(|e| SnapshotError::Corrupt(format!("delta section: {e}")))?;
            labels.push((delta.label.clone(), DELTA_HEADER + len));
            let (c, t) = self
                .append_delta(delta, compact)
                .map_err(SnapshotError::Corrupt)?;
            (compact, tables) = (c, Some(t));
            sections = next;
            offset += DELTA_HEADER + len;
        }
        if let Some(tables) = tables {
            self.finish_deltas(compact, tables)
                .map_err(SnapshotError::Corrupt)?;
        }
        Ok(labels)
    }

    /// Appends one decoded delta's versions and authors (DeltaFollows) and moves the store's
    /// revision to the delta's; returns its compact revision and tables, which
    /// [`Store::finish_deltas`] applies once after the last delta. On an error the store is
    /// left half-changed; the caller drops it.
    fn append_delta(&mut self, d: DeltaRepr, compact: u64) -> Result<(u64, Tables), String> {
        if d.since != self.revision {
            return Err(format!(
                "a delta since revision {} follows a store at revision {}",
                d.since, self.revision
            ));
        }
        if d.revision < d.since || d.compact_revision < compact || d.compact_revision > d.since {
            return Err(format!(
                "delta revisions out of order: since {}, revision {}, compact {} (before it {compact})",
                d.since, d.revision, d.compact_revision
            ));
        }
        for (key, newer) in d.keys {
            let in_range = newer.len() > 0
                && newer.first_after(d.since) == 0
                && newer.last_revision().is_some_and(|r| r.main <= d.revision);
            if !in_range {
                return Err(format!(
                    "key {:?}: delta versions outside ({}, {}]",
                    String::from_utf8_lossy(&key),
                    d.since,
                    d.revision
                ));
            }
            self.keyspace.extend_key(key, newer)?;
        }
        if let Some((r, _)) = d
            .authors
            .iter()
            .find(|(r, _)| *r <= d.since || *r > d.revision)
        {
            return Err(format!(
                "delta author of revision {r} outside ({}, {}]",
                d.since, d.revision
            ));
        }
        self.authors.insert_all(d.authors);
        self.revision = d.revision;
        Ok((
            d.compact_revision,
            Tables {
                dedup: d.dedup,
                deadlines: d.deadlines,
                scripts: d.scripts,
                users: d.users,
            },
        ))
    }

    /// After the last delta (DeltaFaithful): checks every key and builds the derived indexes
    /// (the dump's were left unbuilt: `into_unchecked_store`; DeltaWithinWindow makes each
    /// key's versions one continuous history), compacts once to the last delta's compact
    /// revision (compactions compose; compaction keeps the indexes and CompactedPrefix), and
    /// takes the last delta's tables, checked. Once, not per delta: a load with deltas costs
    /// about what a full dump's does.
    fn finish_deltas(&mut self, compact: u64, tables: Tables) -> Result<(), String> {
        self.keyspace
            .restore(self.revision, self.compact_revision)?;
        if compact > self.compact_revision {
            self.keyspace.compact(compact);
            self.compact_revision = compact;
        }
        self.authors.compact(compact);
        let Tables {
            mut dedup,
            mut deadlines,
            scripts,
            users,
        } = tables;
        dedup.restore()?;
        deadlines.restore(&self.keyspace)?;
        self.dedup = dedup;
        self.deadlines = deadlines;
        self.scripts = scripts;
        self.users = users;
        Ok(())
    }
}

/// A delta's tables, carried whole: the last delta's replace the store's.
struct Tables {
    dedup: DedupTable,
    deadlines: Deadlines,
    scripts: Scripts,
    users: Users,
}

#[cfg(test)]
#[path = "snapshot_delta_test.rs"]
mod tests;
