//! Who made each revision: the audit trail of a configuration change (AuthorPerRevision).
//!
//! A client's write carries the name of the user its session authenticated as
//! ([`crate::store::Op::Authored`], made by the session), so the author travels in the Raft
//! entry and every node records the same one, at apply, for the revision the write made.
//! Writes the leader makes itself (expiry, compaction) have no author. `HISTORY ...
//! WITHAUTHORS` answers it beside each version.
//!
//! Kept for the revisions of the history window: compaction forgets the authors of revisions
//! below the compact revision (a version kept there, written earlier, shows no author). In
//! snapshots since version 4 (with the ACL users).

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// The longest author name kept; a longer one is cut (user names are short).
pub const MAX_AUTHOR_LEN: usize = 256;

/// Revision → the user who made it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authors(imbl::OrdMap<u64, Bytes>);

impl Authors {
    /// Records that `author` made `revision`.
    pub fn record(&mut self, revision: u64, author: &Bytes) {
        let author = author.slice(..author.len().min(MAX_AUTHOR_LEN));
        self.0.insert(revision, author);
    }

    /// Who made `revision`, if it is known.
    pub fn get(&self, revision: u64) -> Option<&Bytes> {
        self.0.get(&revision)
    }

    /// Forgets the authors of revisions below `compact_revision`, one by one: the work is
    /// what is forgotten (CompactionCostsWhatItDrops; imbl's `split` rebuilds the whole map).
    pub fn compact(&mut self, compact_revision: u64) {
        let dropped: Vec<u64> = self.0.range(..compact_revision).map(|(r, _)| *r).collect();
        for r in dropped {
            self.0.remove(&r);
        }
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The authors of the revisions above `since`, oldest first (a snapshot delta's).
    pub fn since(&self, since: u64) -> impl Iterator<Item = (u64, &Bytes)> {
        self.0
            .range(since.saturating_add(1)..)
            .map(|(r, a)| (*r, a))
    }

    /// Records the authors a snapshot delta carries, as they were recorded (no cut to
    /// `MAX_AUTHOR_LEN`: they were cut when first recorded).
    pub fn insert_all(&mut self, authors: impl IntoIterator<Item = (u64, Bytes)>) {
        for (r, a) in authors {
            self.0.insert(r, a);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::snapshot::{SCRIPTS_VERSION, SNAPSHOT_VERSION};
    use crate::store::{Op, Request, Store};

    fn authored(author: &'static str, op: Op) -> Request {
        Request::new(
            None,
            Op::Authored {
                author: Bytes::from_static(author.as_bytes()),
                op: Box::new(op),
            },
        )
    }

    fn put(key: &'static str, value: &'static str) -> Op {
        Op::Put {
            key: Bytes::from_static(key.as_bytes()),
            value: Bytes::from_static(value.as_bytes()),
        }
    }

    #[test]
    fn each_revision_keeps_its_author_through_a_snapshot() {
        let mut s = Store::new();
        s.apply(&authored("alice", put("k", "1")));
        s.apply(&Request::new(None, put("k", "2")));
        s.apply(&authored("bob", put("k", "3")));
        // A write that changes nothing records no author.
        s.apply(&authored(
            "carol",
            Op::Delete {
                keys: vec![Bytes::from_static(b"absent")],
            },
        ));
        // An authored op nested anywhere but the top is refused.
        let nested = Op::Txn {
            compares: vec![],
            ops: vec![Op::Authored {
                author: Bytes::from_static(b"mallory"),
                op: Box::new(put("k", "4")),
            }],
            now_ms: 0,
        };
        s.apply(&authored("mallory", nested));
        assert_eq!(s.revision(), 3);
        let names: Vec<Option<&[u8]>> = (1..=4).map(|r| s.author_of(r).map(|b| &b[..])).collect();
        assert_eq!(
            names,
            vec![Some(&b"alice"[..]), None, Some(&b"bob"[..]), None]
        );

        let bytes = s.to_snapshot();
        assert_eq!(bytes[0], SNAPSHOT_VERSION);
        let back = Store::from_snapshot(&bytes).unwrap();
        assert_eq!(back.author_of(3).map(|b| &b[..]), Some(&b"bob"[..]));
        // The version before users and authors (the same sections without the last two)
        // still loads.
        let mut v3 = bytes.clone();
        v3[0] = SCRIPTS_VERSION;
        v3.truncate(v3.len() - authors_len(&s) - users_len(&s));
        let old = Store::from_snapshot(&v3).unwrap();
        assert_eq!(old.author_of(3), None);
        assert_eq!(old.revision(), 3);
    }

    /// The encoded length of `s`'s authors section.
    fn authors_len(s: &Store) -> usize {
        postcard::to_allocvec(&s.authors).unwrap().len()
    }

    /// The encoded length of `s`'s users section.
    fn users_len(s: &Store) -> usize {
        postcard::to_allocvec(&s.users).unwrap().len()
    }

    #[test]
    fn compaction_forgets_what_is_below_the_compact_revision() {
        let mut a = Authors::default();
        for rev in 1..=5 {
            a.record(rev, &Bytes::from(format!("user{rev}")));
        }
        a.compact(3);
        assert_eq!(a.get(2), None);
        assert_eq!(a.get(3), Some(&Bytes::from_static(b"user3")));
        assert_eq!(a.get(5), Some(&Bytes::from_static(b"user5")));
        assert_eq!(a.len(), 3);
        a.record(6, &Bytes::from(vec![b'x'; 1000]));
        assert_eq!(a.get(6).map(Bytes::len), Some(MAX_AUTHOR_LEN));
    }
}
