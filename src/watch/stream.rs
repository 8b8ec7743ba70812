//! The watch stream (DESIGN §6): the read-only virtual Redis stream `__watch__:<prefix>`,
//! whose entries are the applied changes to keys starting with `<prefix>` (empty: every key),
//! read from the store's history.
//!
//! An entry's ID is `<revision>-<sub>` (etcd's `{main, sub}`), its fields `type` (`set`,
//! `del`, `expired`), `key`, `value` (absent for a delete or an expiry) and `prev` (the
//! previous value, absent when there was none, or when it was compacted away: possible only
//! for a change at exactly the compact revision).
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
    pub events: Vec<Event>,
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
            events: Vec::new(),
            done: false,
        }
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
            if key.starts_with(&self.prefix) {
                if let Some(event) = store.event_at(key, revision) {
                    self.events.push(event);
                }
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

/// One stream entry as Redis replies it: `[id, [field, value, ...]]`.
pub fn entry_frame(event: &Event) -> Frame {
    let bulk = |s: &'static str| Frame::Bulk(Bytes::from_static(s.as_bytes()));
    let mut fields = vec![
        bulk("type"),
        bulk(event_type(event.kind)),
        bulk("key"),
        Frame::Bulk(event.kv.key.clone()),
    ];
    if event.kind == EventKind::Put {
        fields.push(bulk("value"));
        fields.push(Frame::Bulk(event.kv.value.clone()));
    }
    if let Some(prev) = &event.prev {
        fields.push(bulk("prev"));
        fields.push(Frame::Bulk(prev.value.clone()));
    }
    Frame::Array(vec![
        Frame::Bulk(id_text(event.revision)),
        Frame::Array(fields),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Op, Request};

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn apply(s: &mut Store, op: Op) {
        s.apply(&Request {
            client: None,
            op,
            at_ms: 0,
        });
    }

    fn read_all(s: &Store, mut c: Cursor) -> Result<Vec<(u64, u64, Bytes)>, StoreError> {
        while !c.done {
            c.step(s)?;
        }
        Ok(c.events
            .iter()
            .map(|e| (e.revision.main, e.revision.sub, e.kv.key.clone()))
            .collect())
    }

    fn after(r: Revision) -> (Bound<Revision>, Bound<Revision>) {
        (Bound::Excluded(r), Bound::Unbounded)
    }

    #[test]
    fn ids_parse_as_redis() {
        assert_eq!(parse_id(b"5", 0), Some(Revision::new(5, 0)));
        assert_eq!(parse_id(b"5", u64::MAX), Some(Revision::new(5, u64::MAX)));
        assert_eq!(parse_id(b"5-3", u64::MAX), Some(Revision::new(5, 3)));
        for bad in [
            "",
            "-",
            "5-",
            "-3",
            "a",
            "5-x",
            "1-2-3",
            "+5",
            " 5",
            "99999999999999999999",
        ] {
            assert_eq!(parse_id(bad.as_bytes(), 0), None, "{bad:?}");
        }
    }

    //   rev 1: a=1   rev 2: MSET b/x=1 b/y=2 (subs 0, 1)   rev 3: del a   rev 4: b/x=3
    fn sample() -> Store {
        let mut s = Store::new();
        apply(
            &mut s,
            Op::Put {
                key: b("a"),
                value: b("1"),
            },
        );
        apply(
            &mut s,
            Op::MSet {
                pairs: vec![(b("b/x"), b("1")), (b("b/y"), b("2"))],
                if_none_exist: false,
            },
        );
        apply(&mut s, Op::Delete { keys: vec![b("a")] });
        apply(
            &mut s,
            Op::Put {
                key: b("b/x"),
                value: b("3"),
            },
        );
        s
    }

    #[test]
    fn reads_in_order_filtered_and_never_split_a_revision() {
        let s = sample();
        let all = read_all(
            &s,
            Cursor::new(after(Revision::new(0, 0)), false, 100, true, b("")),
        )
        .unwrap();
        assert_eq!(
            all,
            vec![
                (1, 0, b("a")),
                (2, 0, b("b/x")),
                (2, 1, b("b/y")),
                (3, 0, b("a")),
                (4, 0, b("b/x"))
            ]
        );
        // COUNT 2 from revision 1 on would end inside revision 2: rounded up (Atomic).
        let two = read_all(
            &s,
            Cursor::new(after(Revision::new(1, u64::MAX)), false, 1, true, b("")),
        )
        .unwrap();
        assert_eq!(two, vec![(2, 0, b("b/x")), (2, 1, b("b/y"))]);
        // Not atomic (XRANGE): exactly COUNT.
        let one = read_all(
            &s,
            Cursor::new(after(Revision::new(1, u64::MAX)), false, 1, false, b("")),
        )
        .unwrap();
        assert_eq!(one, vec![(2, 0, b("b/x"))]);
        let prefixed = read_all(
            &s,
            Cursor::new(after(Revision::new(2, 0)), false, 100, true, b("b/")),
        )
        .unwrap();
        assert_eq!(prefixed, vec![(2, 1, b("b/y")), (4, 0, b("b/x"))]);
        let reversed = read_all(
            &s,
            Cursor::new((Bound::Unbounded, Bound::Unbounded), true, 2, false, b("")),
        )
        .unwrap();
        assert_eq!(reversed, vec![(4, 0, b("b/x")), (3, 0, b("a"))]);
    }

    #[test]
    fn compaction_is_refused_not_skipped() {
        let mut s = sample();
        apply(&mut s, Op::Compact { revision: 3 });
        for (id, ok) in [
            (Revision::new(1, u64::MAX), false),
            (Revision::new(2, u64::MAX), true),
            (Revision::new(2, 1), false),
            (Revision::new(3, 0), true),
            (Revision::new(0, 0), false),
        ] {
            let got = check_not_compacted(&s, id);
            assert_eq!(got.is_ok(), ok, "{id:?}: {got:?}");
        }
        let rest = read_all(
            &s,
            Cursor::new(after(Revision::new(2, u64::MAX)), false, 100, true, b("")),
        )
        .unwrap();
        assert_eq!(rest, vec![(3, 0, b("a")), (4, 0, b("b/x"))]);
        // The index holds nothing below the compact revision (ChangeIndex), also after a
        // snapshot round trip.
        let restored = Store::from_snapshot(&s.to_snapshot()).unwrap();
        let oldest = (Bound::Unbounded, Bound::Unbounded);
        let again = read_all(&restored, Cursor::new(oldest, false, 100, true, b(""))).unwrap();
        assert_eq!(again, rest);
        assert!(read_all(
            &restored,
            Cursor::new(after(Revision::new(0, 0)), false, 9, true, b(""))
        )
        .is_err());
    }

    #[test]
    fn long_scans_go_in_chunks() {
        let mut s = Store::new();
        for i in 0..(SCAN_CHUNK * 2 + 10) {
            apply(
                &mut s,
                Op::Put {
                    key: b(if i % 1000 == 7 { "hit" } else { "miss" }),
                    value: b("v"),
                },
            );
        }
        let mut c = Cursor::new(after(Revision::new(0, 0)), false, 1000, true, b("hit"));
        c.step(&s).unwrap();
        assert!(!c.done, "one chunk does not cover the history");
        let got = read_all(&s, c).unwrap();
        assert_eq!(got.len(), (SCAN_CHUNK * 2 + 10).div_ceil(1000));
    }

    #[test]
    fn entries_carry_type_key_value_prev() {
        let s = sample();
        let events = read_all(
            &s,
            Cursor::new(after(Revision::new(2, u64::MAX)), false, 100, true, b("")),
        );
        assert!(events.is_ok());
        let del = s.event_at(b"a", Revision::new(3, 0)).unwrap();
        let frame = entry_frame(&del);
        let want = Frame::Array(vec![
            Frame::Bulk(b("3-0")),
            Frame::Array(vec![
                Frame::Bulk(b("type")),
                Frame::Bulk(b("del")),
                Frame::Bulk(b("key")),
                Frame::Bulk(b("a")),
                Frame::Bulk(b("prev")),
                Frame::Bulk(b("1")),
            ]),
        ]);
        assert_eq!(frame, want);
    }
}
