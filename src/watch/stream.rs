//! The watch stream (DESIGN §6): the read-only virtual Redis stream `__watch__:<prefix>`,
//! whose entries are the applied changes to keys starting with `<prefix>` (empty: every key),
//! read from the store's history.
//!
//! An entry's ID is `<revision>-<sub>` (etcd's `{main, sub}`), its fields `type` (`set`,
//! `del`, `expired`), `key`, `value` (absent for a delete or an expiry), `prev` (the
//! previous value, absent when there was none, or when it was compacted away: possible only
//! for a change at exactly the compact revision) and, last, `author` (the user whose write
//! made the revision, `store/audit.rs`; absent for the leader's own writes, expiry and
//! compaction, and for revisions written before authors were recorded).
//!
//! A change to a hash names the fields that changed instead of carrying the whole hash: `type`
//! is `hset` (some field was set; also a rewrite that changed no field, such as EXPIRE) or
//! `hdel` (fields were only removed), then `set:<field>` → the new value for each field added
//! or changed, `prev:<field>` → the old value of each changed field, `del:<field>` → the old
//! value of each removed field, in field order. The delete or expiry of a hash lists each of
//! its fields as `del:<field>`. A string put over a hash has no `prev`; a hash put over a
//! string has the string as `prev`.
//!
//! # Why history, not a broadcast
//!
//! Catch-up and live tail are one code path: both read the store's change index
//! (`store::Store::changes`, every change at or above the compact revision, in revision
//! order). A blocked reader waits only for the state machine's revision to move (a `watch`
//! channel: one value, whatever the number of waiters), then reads the new changes from the
//! store. So a watcher holds no buffer while idle, cannot lag or miss anything, and never
//! blocks apply or other watchers; a watcher that falls behind the compaction gets
//! `-COMPACTED`, never a silent gap.
//!
//! Invariants (etcd's watch guarantees, checked by `tests/watch/history_and_watch.rs`):
//! - **Ordered, Unique.** Entries come in revision order, from the change index, after the
//!   reader's ID only.
//! - **Atomic.** A read never ends inside a revision: COUNT is rounded up to the end of the
//!   last revision it reached, so an EXEC's changes (one revision, several subs) arrive in one
//!   reply.
//! - **Reliable.** A read needs every change after its ID to be at or above the compact
//!   revision; otherwise it fails with `-COMPACTED` ([`required_revision`]).
//! - **ReadBounded.** One read returns at most [`MAX_READ_ENTRIES`] entries (rounded up to a
//!   whole revision) and scans the index in chunks of [`SCAN_CHUNK`], taking the store's read
//!   lock once per chunk, so apply never waits behind a long catch-up.

use std::ops::Bound;

use bytes::Bytes;
use imbl::ordmap::DiffItem;

use crate::protocol::Frame;
use crate::store::{Event, EventKind, Revision, Store, StoreError};

/// The reserved stream name prefix.
pub const STREAM_PREFIX: &[u8] = b"__watch__:";

/// The most entries one read returns when the client gives no COUNT (or a larger one),
/// rounded up to the end of a revision (ReadBounded).
pub const MAX_READ_ENTRIES: usize = 10_000;

/// The most index entries scanned under one hold of the read lock (ReadBounded).
pub const SCAN_CHUNK: usize = 4096;

/// Returns the key prefix a stream name watches, if it is a watch stream.
pub fn watch_prefix(name: &[u8]) -> Option<Bytes> {
    name.strip_prefix(STREAM_PREFIX).map(Bytes::copy_from_slice)
}

/// The first revision a read after `after` needs in full: a read after `r-s` needs the rest
/// of revision `r` (unless `s` is the last possible sub: the whole of `r` was seen), so `r`
/// must not be compacted (Reliable).
pub fn required_revision(after: Revision) -> u64 {
    if after.sub == u64::MAX {
        after.main.saturating_add(1)
    } else {
        after.main
    }
}

/// Fails with [`StoreError::Compacted`] if reading after `after` could miss changes.
pub fn check_not_compacted(store: &Store, after: Revision) -> Result<(), StoreError> {
    let required = required_revision(after);
    let compact_revision = store.compact_revision();
    if required < compact_revision {
        return Err(StoreError::Compacted {
            requested: required,
            compact_revision,
        });
    }
    Ok(())
}

/// The state of one read across chunks.
pub struct Cursor {
    /// The range still to scan.
    pub range: (Bound<Revision>, Bound<Revision>),
    /// Newest first (XREVRANGE).
    pub reverse: bool,
    /// The most entries wanted (already capped), rounded up to a whole revision when `atomic`.
    pub count: usize,
    /// Round `count` up to the end of the last revision reached (XREAD: Atomic).
    pub atomic: bool,
    pub prefix: Bytes,
    /// The reader's gray-release label: the stream as it sees it (`gray_watch.rs`).
    pub gray: Option<Bytes>,
    pub events: Vec<Entry>,
    /// The scan reached the end of the range or `count`.
    pub done: bool,
}

impl Cursor {
    pub fn new(
        range: (Bound<Revision>, Bound<Revision>),
        reverse: bool,
        count: usize,
        atomic: bool,
        prefix: Bytes,
    ) -> Self {
        Self {
            range,
            reverse,
            count: count.min(MAX_READ_ENTRIES),
            atomic,
            prefix,
            gray: None,
            events: Vec::new(),
            done: false,
        }
    }

    /// The stream as the clients of gray-release `label` see it (GrayWatchFollowsTheView).
    pub fn seen_by(mut self, label: Option<Bytes>) -> Self {
        self.gray = label;
        self
    }

    /// Scans up to [`SCAN_CHUNK`] index entries of `store`, collecting matching events.
    /// Fails if the part still to scan has been compacted meanwhile (Reliable).
    pub fn step(&mut self, store: &Store) -> Result<(), StoreError> {
        // The lower bound must not be compacted (Reliable): checked at every chunk, since a
        // compaction may land between two. An unbounded start (`-`) means the oldest available.
        match self.range.0 {
            Bound::Excluded(r) => check_not_compacted(store, r)?,
            Bound::Included(r) if r.main < store.compact_revision() => {
                return Err(StoreError::Compacted {
                    requested: r.main,
                    compact_revision: store.compact_revision(),
                })
            }
            _ => {}
        }
        let mut scanned = 0;
        let mut last: Option<Revision> = None;
        let iter: Box<dyn Iterator<Item = (Revision, &Bytes)>> = if self.reverse {
            Box::new(store.changes(self.range).rev())
        } else {
            Box::new(store.changes(self.range))
        };
        for (revision, key) in iter {
            if scanned >= SCAN_CHUNK {
                break;
            }
            if self.events.len() >= self.count {
                let same_revision = self
                    .events
                    .last()
                    .is_some_and(|e| e.revision.main == revision.main);
                if !(self.atomic && same_revision) {
                    self.done = true;
                    return Ok(());
                }
            }
            scanned += 1;
            last = Some(revision);
            let event = match &self.gray {
                Some(label) => {
                    crate::watch::gray_watch::view_event(store, label, &self.prefix, revision, key)
                }
                None if key.starts_with(&self.prefix) => store.event_at(key, revision),
                None => None,
            };
            if let Some(event) = event {
                let author = store.author_of(revision.main).cloned();
                self.events.push(Entry { event, author });
            }
        }
        match last {
            Some(r) if scanned >= SCAN_CHUNK => {
                if self.reverse {
                    self.range.1 = Bound::Excluded(r);
                } else {
                    self.range.0 = Bound::Excluded(r);
                }
            }
            _ => self.done = true,
        }
        Ok(())
    }
}

/// Parses a stream ID as Redis 7.0 does (`streamParseID`): `ms` or `ms-seq`, decimal `u64`s.
/// A missing `seq` is `missing_seq`.
pub fn parse_id(arg: &[u8], missing_seq: u64) -> Option<Revision> {
    let text = std::str::from_utf8(arg).ok()?;
    let (main, sub) = match text.split_once('-') {
        Some((m, s)) => (m, Some(s)),
        None => (text, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(main) || sub.is_some_and(|s| !digits(s)) {
        return None;
    }
    let main = main.parse().ok()?;
    let sub = match sub {
        Some(s) => s.parse().ok()?,
        None => missing_seq,
    };
    Some(Revision::new(main, sub))
}

/// Returns the entry ID text of a revision.
pub fn id_text(r: Revision) -> Bytes {
    Bytes::from(format!("{}-{}", r.main, r.sub))
}

/// The type field of an event.
pub fn event_type(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Put => "set",
        EventKind::Delete => "del",
        EventKind::Expired => "expired",
    }
}

/// The type field of an event, hash changes named as the module doc says.
pub fn event_type_of(event: &Event) -> &'static str {
    match (&event.kind, &event.kv.hash) {
        (EventKind::Put, Some(_)) => {
            let diff = hash_diff(event);
            if diff.set.is_empty() && !diff.removed.is_empty() {
                "hdel"
            } else {
                "hset"
            }
        }
        (kind, _) => event_type(*kind),
    }
}

/// What a change did to a hash's fields, in field order.
struct HashDiff {
    /// Fields added or changed: (field, new value, old value if it changed).
    set: Vec<(Bytes, Bytes, Option<Bytes>)>,
    /// Fields removed, with their old values.
    removed: Vec<(Bytes, Bytes)>,
}

fn hash_diff(event: &Event) -> HashDiff {
    let empty = crate::store::Hash::new();
    let new = event.kv.hash.as_ref().unwrap_or(&empty);
    let old = event
        .prev
        .as_ref()
        .and_then(|p| p.hash.as_ref())
        .unwrap_or(&empty);
    let (mut set, mut removed) = (Vec::new(), Vec::new());
    // `diff` skips the nodes the two versions share: O(change), not O(fields).
    for item in old.diff(new) {
        match item {
            DiffItem::Add(f, v) => set.push((f.clone(), v.clone(), None)),
            DiffItem::Update {
                old: (_, o),
                new: (f, v),
            } => set.push((f.clone(), v.clone(), Some(o.clone()))),
            DiffItem::Remove(f, v) => removed.push((f.clone(), v.clone())),
        }
    }
    HashDiff { set, removed }
}

/// `<prefix><field>` as a stream field name.
fn named(prefix: &str, field: &[u8]) -> Frame {
    Frame::Bulk(Bytes::from([prefix.as_bytes(), field].concat()))
}

/// One change read from the stream, with the user who made its revision.
#[derive(Clone, Debug)]
pub struct Entry {
    pub event: Event,
    pub author: Option<Bytes>,
}

impl std::ops::Deref for Entry {
    type Target = Event;
    fn deref(&self) -> &Event {
        &self.event
    }
}

impl Entry {
    /// The entry as Redis replies it.
    pub fn frame(&self) -> Frame {
        entry_frame(&self.event, self.author.as_ref())
    }
}

/// One stream entry as Redis replies it: `[id, [field, value, ...]]`.
pub fn entry_frame(event: &Event, author: Option<&Bytes>) -> Frame {
    let bulk = |s: &'static str| Frame::Bulk(Bytes::from_static(s.as_bytes()));
    let mut fields = vec![
        bulk("type"),
        bulk(event_type_of(event)),
        bulk("key"),
        Frame::Bulk(event.kv.key.clone()),
    ];
    let hash_change =
        event.kv.hash.is_some() || event.prev.as_ref().is_some_and(|p| p.hash.is_some());
    if event.kind == EventKind::Put && event.kv.hash.is_none() {
        fields.push(bulk("value"));
        fields.push(Frame::Bulk(event.kv.value.clone()));
    }
    if hash_change {
        let diff = hash_diff(event);
        if event.kind == EventKind::Put || event.kv.hash.is_some() {
            for (f, v, old) in diff.set {
                fields.push(named("set:", &f));
                fields.push(Frame::Bulk(v));
                if let Some(old) = old {
                    fields.push(named("prev:", &f));
                    fields.push(Frame::Bulk(old));
                }
            }
        }
        // A string put over a hash: the hash is gone, but the entry is a `set`.
        if event.kind != EventKind::Put || event.kv.hash.is_some() {
            for (f, old) in diff.removed {
                fields.push(named("del:", &f));
                fields.push(Frame::Bulk(old));
            }
        }
    }
    if let Some(prev) = event.prev.as_ref().filter(|p| p.hash.is_none()) {
        fields.push(bulk("prev"));
        fields.push(Frame::Bulk(prev.value.clone()));
    }
    if let Some(author) = author {
        fields.push(bulk("author"));
        fields.push(Frame::Bulk(author.clone()));
    }
    Frame::Array(vec![
        Frame::Bulk(id_text(event.revision)),
        Frame::Array(fields),
    ])
}

#[cfg(test)]
#[path = "stream_test.rs"]
mod tests;
