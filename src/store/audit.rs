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

use std::fmt;

use bytes::Bytes;
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest author name kept; a longer one is cut (user names are short).
pub const MAX_AUTHOR_LEN: usize = 256;

/// Revision → the user who made it.
///
/// **AuthorRuns.** Kept as runs of consecutive revisions made by one user, oldest first
/// (a persistent vector: a snapshot's capture stays O(1)): a cluster's writes mostly come from
/// a few users, so recording a revision usually extends the last run instead of inserting
/// into a map (an `OrdMap` insert per write was ~10 % of apply under pipelined SETs). Runs
/// are maximal (two adjacent runs never join), so equal contents are equal runs. Encoded as
/// the map `revision → author` it replaces, entry by entry: snapshots are unchanged.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Authors(imbl::Vector<Run>);

/// Revisions `first..=last`, every one made by `author`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Run {
    first: u64,
    last: u64,
    author: Bytes,
}

impl Authors {
    /// Records that `author` made `revision`.
    pub fn record(&mut self, revision: u64, author: &Bytes) {
        let author = author.slice(..author.len().min(MAX_AUTHOR_LEN));
        self.insert(revision, author);
    }

    fn insert(&mut self, revision: u64, author: Bytes) {
        if self.0.back().is_some_and(|run| revision <= run.last) {
            // Below the newest revision (not seen in apply, which goes forward): rebuilt.
            let mut all: std::collections::BTreeMap<u64, Bytes> =
                self.iter().map(|(r, a)| (r, a.clone())).collect();
            all.insert(revision, author);
            *self = Self::default();
            for (r, a) in all {
                self.insert(r, a);
            }
            return;
        }
        match self.0.back_mut() {
            Some(run) if run.last + 1 == revision && run.author == author => run.last = revision,
            _ => self.0.push_back(Run {
                first: revision,
                last: revision,
                author,
            }),
        }
    }

    /// Who made `revision`, if it is known.
    pub fn get(&self, revision: u64) -> Option<&Bytes> {
        let i = self.first_run_to(revision);
        self.0
            .get(i)
            .filter(|run| run.first <= revision)
            .map(|run| &run.author)
    }

    /// The position of the first run that ends at or after `revision` (the number of runs if
    /// none does).
    fn first_run_to(&self, revision: u64) -> usize {
        use std::cmp::Ordering::{Greater, Less};
        match self
            .0
            .binary_search_by(|run| if run.last < revision { Less } else { Greater })
        {
            Ok(i) | Err(i) => i,
        }
    }

    /// Forgets the authors of revisions below `compact_revision`: whole runs, and the start of
    /// the run it falls in (CompactionCostsWhatItDrops: the work is the runs dropped).
    pub fn compact(&mut self, compact_revision: u64) {
        while self
            .0
            .front()
            .is_some_and(|run| run.last < compact_revision)
        {
            self.0.pop_front();
        }
        if let Some(run) = self.0.front_mut() {
            run.first = run.first.max(compact_revision);
        }
    }

    /// How many revisions have an author.
    pub fn len(&self) -> usize {
        self.0
            .iter()
            .map(|run| (run.last - run.first + 1) as usize)
            .sum()
    }

    /// Every revision with its author, oldest first.
    fn iter(&self) -> impl Iterator<Item = (u64, &Bytes)> {
        self.0
            .iter()
            .flat_map(|run| (run.first..=run.last).map(move |r| (r, &run.author)))
    }

    /// The authors of the revisions above `since`, oldest first (a snapshot delta's).
    pub fn since(&self, since: u64) -> impl Iterator<Item = (u64, &Bytes)> {
        let from = since.saturating_add(1);
        // By index from the first run that counts (each O(log runs)), not by skipping the
        // runs before it one by one.
        (self.first_run_to(from)..self.0.len()).flat_map(move |k| {
            let run = &self.0[k];
            (run.first.max(from)..=run.last).map(move |r| (r, &run.author))
        })
    }

    /// Records the authors a snapshot delta carries, as they were recorded (no cut to
    /// `MAX_AUTHOR_LEN`: they were cut when first recorded).
    pub fn insert_all(&mut self, authors: impl IntoIterator<Item = (u64, Bytes)>) {
        for (r, a) in authors {
            self.insert(r, a);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The map `revision → author`, as the `OrdMap` before AuthorRuns wrote it.
impl Serialize for Authors {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.len()))?;
        for (r, a) in self.iter() {
            map.serialize_entry(&r, a)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Authors {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct AuthorsVisitor;
        impl<'de> Visitor<'de> for AuthorsVisitor {
            type Value = Authors;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map of revisions to authors")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Authors, A::Error> {
                let mut authors = Authors::default();
                while let Some((r, a)) = m.next_entry::<u64, Bytes>()? {
                    authors.insert(r, a);
                }
                Ok(authors)
            }
        }
        d.deserialize_map(AuthorsVisitor)
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

    /// AuthorRuns: the runs answer, compact and encode as the `OrdMap<u64, Bytes>` they
    /// replace did (the snapshot format), through gaps, changes of author, compaction inside
    /// a run and a revision recorded out of order; one user's writes make one run.
    #[test]
    fn authors_kept_as_runs_behave_and_encode_as_the_map_they_replace() {
        let mut runs = Authors::default();
        let mut map: imbl::OrdMap<u64, Bytes> = imbl::OrdMap::new();
        let mut record = |r: u64, name: &str| {
            let b = Bytes::from(name.to_string());
            runs.record(r, &b);
            map.insert(r, b);
        };
        for r in 1..=5 {
            record(r, "alice");
        }
        // 6 has no author (an expiry), 7..=9 alice again, then bob, then alice.
        for r in 7..=9 {
            record(r, "alice");
        }
        record(10, "bob");
        record(11, "bob");
        record(12, "alice");
        record(20, "carol");
        // Out of order: inside an existing run's span, with another author.
        record(8, "dave");
        let check = |runs: &Authors, map: &imbl::OrdMap<u64, Bytes>| {
            for r in 0..=25 {
                assert_eq!(runs.get(r), map.get(&r), "revision {r}");
            }
            assert_eq!(runs.len(), map.len());
            for since in 0..=21 {
                let got: Vec<(u64, Bytes)> =
                    runs.since(since).map(|(r, a)| (r, a.clone())).collect();
                let want: Vec<(u64, Bytes)> = map
                    .range(since + 1..)
                    .map(|(r, a)| (*r, a.clone()))
                    .collect();
                assert_eq!(got, want, "since {since}");
            }
            let bytes = postcard::to_allocvec(runs).unwrap();
            assert_eq!(bytes, postcard::to_allocvec(map).unwrap(), "the encoding");
            let back: Authors = postcard::from_bytes(&bytes).unwrap();
            assert_eq!(&back, runs, "decoded runs are the canonical runs");
        };
        check(&runs, &map);
        // Compaction inside alice's second run, then past everything.
        runs.compact(8);
        let dropped: Vec<u64> = map.range(..8).map(|(r, _)| *r).collect();
        for r in dropped {
            map.remove(&r);
        }
        check(&runs, &map);
        runs.compact(100);
        assert!(runs.is_empty());

        let mut one = Authors::default();
        for r in 1..=10_000 {
            one.record(r, &Bytes::from_static(b"default"));
        }
        assert_eq!(one.0.len(), 1, "one user's writes are one run");
        assert_eq!(one.len(), 10_000);
    }
}
