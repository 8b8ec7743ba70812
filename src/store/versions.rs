//! `Versions`: the sequence one key's versions live in ([`super::key_index::KeyIndex`]):
//! appended at the back, read by position, dropped from the front by compaction, and cloned
//! whenever a snapshot's capture shares the keyspace.
//!
//! Why not one `VecDeque`: capturing a snapshot clones the keyspace's persistent maps in O(1),
//! and the first write to a key afterwards clones what that key's node holds, so a plain deque
//! copied every version of every key written between two snapshots once per snapshot. At the
//! default history cap (1,000,000 revisions over 1,000 keys: ~1,000 versions a key) that was a
//! copy of the whole history per snapshot, growing with it: SET at 64 clients fell from 21,000
//! to 13,400/s as history grew to 890,000 revisions, page faults on the fresh copies 14 % of the
//! leader's samples (`benches/results/2026-12-05-shared-chunks/`).
//!
//! Invariants:
//! - **SharedChunks.** Versions sit in chunks of [`CHUNK`]; full chunks are sealed behind an
//!   `Arc` and never change while shared, so a clone copies at most `CHUNK - 1` versions (the
//!   open tail) and one pointer per sealed chunk, whatever the history's length.
//! - **ChunksFull.** Every sealed chunk holds exactly `CHUNK` versions except the first, which
//!   compaction may have shortened (never to zero: an emptied chunk is removed); the tail holds
//!   fewer than `CHUNK`. So position `i` is found by arithmetic, in O(1).
//! - **CompactionCostsWhatItDrops** (per key, as before): dropping the first `n` versions
//!   removes whole chunks and drains the rest from the first one, in place when no clone shares
//!   it, else by copying what stays of that one chunk (at most `CHUNK - 1`).

use std::collections::VecDeque;
use std::fmt;
use std::ops::Index;
use std::sync::Arc;

/// Versions per sealed chunk: 64 of a key's versions (~3.5 KB) are copied at most per clone.
pub(super) const CHUNK: usize = 64;

type Chunk<T> = Arc<VecDeque<T>>;

/// A key's versions, oldest first (see the module doc). As small as the `VecDeque` it
/// replaced (32 bytes: it sits in every entry of the keyspace's map); a key with fewer than
/// `CHUNK` versions has no sealed chunks and no allocation for them.
#[derive(Clone)]
pub(super) struct Versions<T> {
    /// Sealed chunks, oldest first (SharedChunks, ChunksFull); `None` when there are none.
    /// Boxed so that the common key, with no sealed chunk, pays 8 bytes for them, not 24.
    #[allow(clippy::box_collection)]
    sealed: Option<Box<Vec<Chunk<T>>>>,
    /// The newest versions, fewer than `CHUNK`; owned by this clone.
    tail: Vec<T>,
}

impl<T> Default for Versions<T> {
    fn default() -> Self {
        Self {
            sealed: None,
            tail: Vec::new(),
        }
    }
}

impl<T: Clone> Versions<T> {
    fn chunks(&self) -> &[Chunk<T>] {
        self.sealed.as_deref().map_or(&[], Vec::as_slice)
    }

    /// Returns how many versions are stored.
    pub fn len(&self) -> usize {
        self.sealed_len() + self.tail.len()
    }

    /// Returns whether no version is stored.
    pub fn is_empty(&self) -> bool {
        self.sealed.is_none() && self.tail.is_empty()
    }

    fn sealed_len(&self) -> usize {
        self.chunk_start(self.chunks().len())
    }

    /// The position of sealed chunk `k`'s first version (ChunksFull); for `k` = the number of
    /// chunks, the tail's.
    fn chunk_start(&self, k: usize) -> usize {
        match (k, self.chunks().first()) {
            (0, _) | (_, None) => 0,
            (k, Some(first)) => first.len() + (k - 1) * CHUNK,
        }
    }

    /// Where position `i` is: sealed chunk `k` (the number of chunks: the tail) and the
    /// offset in it; by arithmetic (ChunksFull: past the first, every chunk holds CHUNK).
    fn locate(&self, i: usize) -> (usize, usize) {
        let chunks = self.chunks();
        match chunks.first() {
            Some(first) if i < first.len() => (0, i),
            Some(first) if i < self.sealed_len() => {
                let j = i - first.len();
                (1 + j / CHUNK, j % CHUNK)
            }
            _ => (chunks.len(), i - self.sealed_len()),
        }
    }

    /// Returns the version at position `i` (0 is the oldest stored).
    pub fn get(&self, i: usize) -> Option<&T> {
        let (k, offset) = self.locate(i);
        match self.chunks().get(k) {
            Some(chunk) => chunk.get(offset),
            None => self.tail.get(offset),
        }
    }

    /// Returns the oldest stored version.
    pub fn front(&self) -> Option<&T> {
        match self.chunks().first() {
            Some(first) => first.front(),
            None => self.tail.first(),
        }
    }

    /// Returns the newest stored version.
    pub fn back(&self) -> Option<&T> {
        self.tail
            .last()
            .or_else(|| self.chunks().last().and_then(|c| c.back()))
    }

    /// Appends `v` as the newest version; seals the tail once it is full (ChunksFull).
    pub fn push_back(&mut self, v: T) {
        self.tail.push(v);
        if self.tail.len() == CHUNK {
            let chunk = Arc::new(VecDeque::from(std::mem::take(&mut self.tail)));
            self.sealed.get_or_insert_default().push(chunk);
        }
    }

    /// Drops the oldest `n` versions (all of them if `n` exceeds the length).
    pub fn drop_front(&mut self, mut n: usize) {
        if let Some(chunks) = self.sealed.as_deref_mut() {
            let whole = chunks
                .iter()
                .scan(0, |dropped, c| {
                    *dropped += c.len();
                    Some(*dropped)
                })
                .take_while(|&dropped| dropped <= n)
                .count();
            n -= chunks[..whole].iter().map(|c| c.len()).sum::<usize>();
            chunks.drain(..whole);
            if let Some(first) = chunks.first_mut().filter(|_| n > 0) {
                // Fewer than this chunk's length (else it was dropped whole above): it stays
                // non-empty. Drained in place unless a clone shares it; then what stays is
                // copied.
                match Arc::get_mut(first) {
                    Some(owned) => {
                        owned.drain(..n);
                    }
                    None => *first = Arc::new(first.iter().skip(n).cloned().collect()),
                }
                return;
            }
            if chunks.is_empty() {
                self.sealed = None;
            }
        }
        self.tail.drain(..n.min(self.tail.len()));
    }

    /// Returns the number of leading versions for which `pred` holds; `pred` must hold for a
    /// prefix and not after it (as [`slice::partition_point`]). Searches the chunks by their
    /// newest version, then within one.
    pub fn partition_point(&self, mut pred: impl FnMut(&T) -> bool) -> usize {
        let chunks = self.chunks();
        let k = chunks.partition_point(|c| c.back().is_some_and(&mut pred));
        match chunks.get(k) {
            Some(c) => self.chunk_start(k) + c.partition_point(pred),
            None => self.sealed_len() + self.tail.partition_point(pred),
        }
    }

    /// Returns the number of leading versions for which `pred` holds, counted from the front:
    /// what [`Self::partition_point`] returns, at a cost proportional to the count (for a
    /// prefix known to be short, such as what a compaction step drops).
    pub fn leading(&self, mut pred: impl FnMut(&T) -> bool) -> usize {
        self.iter().take_while(|v| pred(v)).count()
    }

    /// Searches versions ordered by `f` (as [`slice::binary_search_by`]).
    pub fn binary_search_by(
        &self,
        mut f: impl FnMut(&T) -> std::cmp::Ordering,
    ) -> Result<usize, usize> {
        let i = self.partition_point(|v| f(v) == std::cmp::Ordering::Less);
        match self.get(i) {
            Some(v) if f(v) == std::cmp::Ordering::Equal => Ok(i),
            _ => Err(i),
        }
    }

    /// Iterates every version, oldest first.
    pub fn iter(&self) -> Iter<'_, T> {
        self.iter_from(0)
    }

    /// Iterates the versions from position `from` on, oldest first.
    pub fn iter_from(&self, from: usize) -> Iter<'_, T> {
        let chunks = self.chunks();
        let (k, offset) = self.locate(from);
        let (cur, tail) = match chunks.get(k) {
            Some(c) => (c.range(offset..), &self.tail[..]),
            None => (
                Default::default(),
                &self.tail[offset.min(self.tail.len())..],
            ),
        };
        Iter {
            chunks,
            next: k + 1,
            cur,
            tail,
        }
    }
}

/// Iterator over [`Versions`], oldest first: one chunk at a time, then the tail.
pub(super) struct Iter<'a, T> {
    chunks: &'a [Chunk<T>],
    /// The sealed chunk after `cur`'s (past the last: the tail is next).
    next: usize,
    cur: std::collections::vec_deque::Iter<'a, T>,
    /// What of the tail is still to come.
    tail: &'a [T],
}

impl<'a, T> Iterator for Iter<'a, T> {
    type Item = &'a T;

    fn next(&mut self) -> Option<&'a T> {
        loop {
            if let Some(v) = self.cur.next() {
                return Some(v);
            }
            match self.chunks.get(self.next) {
                Some(c) => {
                    self.cur = c.iter();
                    self.next += 1;
                }
                None => {
                    let (v, rest) = self.tail.split_first()?;
                    self.tail = rest;
                    return Some(v);
                }
            }
        }
    }
}

impl<T: Clone> Index<usize> for Versions<T> {
    type Output = T;

    fn index(&self, i: usize) -> &T {
        match self.get(i) {
            Some(v) => v,
            None => panic!("version {i} out of {}", self.len()),
        }
    }
}

impl<T: Clone> Extend<T> for Versions<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        for v in iter {
            self.push_back(v);
        }
    }
}

impl<T: Clone> FromIterator<T> for Versions<T> {
    /// Chunks and a tail of exactly the versions given (a snapshot's load: no spare capacity).
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut all = iter.into_iter().collect::<Vec<T>>().into_iter();
        let mut v = Self::default();
        while all.len() >= CHUNK {
            let chunk = Arc::new(all.by_ref().take(CHUNK).collect());
            v.sealed.get_or_insert_default().push(chunk);
        }
        v.tail = all.collect();
        v
    }
}

impl<T: Clone> IntoIterator for Versions<T> {
    type Item = T;
    type IntoIter = std::vec::IntoIter<T>;

    /// The versions by value, oldest first: shared chunks are cloned, owned ones moved.
    fn into_iter(self) -> Self::IntoIter {
        let mut out = Vec::with_capacity(self.len());
        for chunk in self.sealed.into_iter().flat_map(|c| *c) {
            out.extend(Arc::unwrap_or_clone(chunk));
        }
        out.extend(self.tail);
        out.into_iter()
    }
}

impl<T: Clone + PartialEq> PartialEq for Versions<T> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl<T: Clone + Eq> Eq for Versions<T> {}

impl<T: Clone + fmt::Debug> fmt::Debug for Versions<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
#[path = "versions_test.rs"]
mod tests;
