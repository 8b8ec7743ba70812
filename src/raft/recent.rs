//! `RecentEntries`: the newest entries this node appended to its log, kept in memory as they
//! were appended, so that apply (once per node) and replication (once per follower) read them
//! without a `pread` and a decode of each record.
//!
//! Entries are kept as openraft handed them to the log (no decode; the WAL returns them after
//! framing, with their record lengths), under a lock of their own: neither the WAL's state lock
//! nor its sync thread is involved (an earlier cache inside the WAL, which decoded each record
//! as it was framed and was read under the WAL's lock, cost more than it saved).
//!
//! Invariants:
//! - **RecentIsTheLogTail.** The kept entries are exactly the log's entries `first..end` at
//!   every moment a reader can see them, or fewer: an append is kept after the WAL wrote it (a
//!   reader in between misses and reads the WAL), a truncation or purge drops entries here
//!   before the WAL does (a reader in between misses and reads the WAL, as before the cache).
//! - **WholeRangeOrMiss.** A read is served from here only when every index it asks for is
//!   kept; otherwise it goes to the WAL whole. So a read never returns fewer entries than the
//!   log holds in its range, except where the frame budget cuts it, and the cut is the WAL's:
//!   at least one entry, then entries while their record bytes fit the budget.
//! - **RecentBounded.** At most [`RECENT_BYTES`] of records are kept (by record length), and at
//!   least the newest append whatever its size.

use std::collections::VecDeque;
use std::sync::Mutex;

use openraft::entry::RaftEntry;

use super::typ::Entry;

/// The most record bytes kept (RecentBounded). Followers that keep up read within the last
/// few appends; a lagging one reads the WAL.
pub const RECENT_BYTES: u64 = 1 << 20;

#[derive(Default)]
pub struct RecentEntries {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// The index of the front entry.
    first: u64,
    entries: VecDeque<(Entry, u32)>,
    bytes: u64,
}

impl Inner {
    fn end(&self) -> u64 {
        self.first + self.entries.len() as u64
    }

    /// Drops the entries at and above `index`.
    fn drop_from(&mut self, index: u64) {
        while self.end() > index.max(self.first) {
            let (_, len) = self.entries.pop_back().expect("entries below end");
            self.bytes -= u64::from(len);
        }
    }
}

impl RecentEntries {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps `written`, consecutive entries the WAL has just written (RecentIsTheLogTail). An
    /// append that overwrites kept entries drops them first; one that leaves a gap (never made
    /// by the WAL) starts over.
    pub fn appended(&self, written: Vec<(Entry, u32)>) {
        let Some(first) = written.first().map(|(e, _)| e.log_id().index()) else {
            return;
        };
        let n = written.len();
        let mut inner = self.lock();
        if first < inner.first || first > inner.end() || inner.entries.is_empty() {
            inner.entries.clear();
            inner.bytes = 0;
            inner.first = first;
        } else {
            inner.drop_from(first);
        }
        for (entry, len) in written {
            inner.bytes += u64::from(len);
            inner.entries.push_back((entry, len));
        }
        // RecentBounded: the newest append stays whole.
        while inner.bytes > RECENT_BYTES && inner.entries.len() > n {
            let (_, len) = inner.entries.pop_front().expect("non-empty");
            inner.bytes -= u64::from(len);
            inner.first += 1;
        }
    }

    /// Drops every entry above `last` (a truncation: none if `None`). Called before the WAL
    /// truncates (RecentIsTheLogTail).
    pub fn truncate_after(&self, last: Option<u64>) {
        let mut inner = self.lock();
        match last {
            Some(last) => inner.drop_from(last.saturating_add(1)),
            None => inner.drop_from(0),
        }
    }

    /// Drops every entry at or below `index` (a purge). Called before the WAL purges.
    pub fn purge(&self, index: u64) {
        let mut inner = self.lock();
        while inner.first <= index {
            let Some((_, len)) = inner.entries.pop_front() else {
                inner.first = index.saturating_add(1);
                break;
            };
            inner.bytes -= u64::from(len);
            inner.first += 1;
        }
    }

    /// The entries `lo..hi`, cut as the WAL cuts to `budget` record bytes, if every one of them
    /// is kept (WholeRangeOrMiss): `(entries, cut)`.
    pub fn get(&self, lo: u64, hi: u64, budget: u64) -> Option<(Vec<Entry>, bool)> {
        let inner = self.lock();
        if lo >= hi || lo < inner.first || hi > inner.end() {
            return None;
        }
        let mut out = Vec::with_capacity((hi - lo) as usize);
        let mut bytes = 0u64;
        for (entry, len) in inner
            .entries
            .range((lo - inner.first) as usize..(hi - inner.first) as usize)
        {
            if !out.is_empty() && bytes + u64::from(*len) > budget {
                return Some((out, true));
            }
            bytes += u64::from(*len);
            out.push(entry.clone());
        }
        Some((out, false))
    }
}

#[cfg(test)]
#[path = "recent_test.rs"]
mod tests;
