//! The WAL's cache of its newest entries (**RecentEntriesCached**): replication reads each
//! new entry once per follower and apply once per node, moments after it was appended; served
//! from here, neither `pread`s nor decodes it again.
//!
//! - **CacheIsSuffix.** The cache holds consecutive entries ending at the log's last entry
//!   (or nothing): an append pushes its entries, a truncate drops those it removes, a purge
//!   those it removes, and the oldest go first when the cache is over its budget. So an index
//!   the cache holds is always the log's live entry at that index, and any other index is
//!   read from its record.
//! - **CachedAsRead.** What the cache holds is the decode of the record the append wrote,
//!   i.e. exactly what a read of that record returns, never the caller's own entry: an
//!   entry proposed on the leader carries values that are slices of a client's read buffer,
//!   and the state machine keeps what it applies in its history for as long as history lasts.
//! - **CacheBudget.** At most `budget` bytes of records (their payload lengths); an entry
//!   larger than a quarter of that is not cached, and empties the cache (CacheIsSuffix).

use std::collections::VecDeque;

use openraft::entry::RaftEntry;

use super::Entry;

/// The newest entries of the log (module doc).
pub(super) struct EntryCache {
    /// Consecutive entries with their record length, oldest first (CacheIsSuffix).
    entries: VecDeque<(Entry, u32)>,
    bytes: u64,
    budget: u64,
}

impl EntryCache {
    pub(super) fn new(budget: u64) -> Self {
        Self {
            entries: VecDeque::new(),
            bytes: 0,
            budget,
        }
    }

    /// Adds the log's new last entry, whose record is `len` bytes (CacheBudget).
    pub(super) fn push(&mut self, entry: Entry, len: u32) {
        let follows = self
            .entries
            .back()
            .is_none_or(|(last, _)| last.index() + 1 == entry.index());
        if !follows || u64::from(len) > self.budget / 4 {
            self.clear();
        }
        if u64::from(len) > self.budget / 4 {
            return;
        }
        self.bytes += u64::from(len);
        self.entries.push_back((entry, len));
        while self.bytes > self.budget {
            let Some((_, len)) = self.entries.pop_front() else {
                break;
            };
            self.bytes -= u64::from(len);
        }
    }

    /// The entry at `index`, if cached.
    pub(super) fn get(&self, index: u64) -> Option<&Entry> {
        let first = self.entries.front()?.0.index();
        let (entry, _) = self
            .entries
            .get(usize::try_from(index.checked_sub(first)?).ok()?)?;
        debug_assert_eq!(entry.index(), index, "CacheIsSuffix");
        Some(entry)
    }

    /// Drops the entries after `last` (all if `None`): a truncate.
    pub(super) fn truncate_after(&mut self, last: Option<u64>) {
        while let Some((e, len)) = self.entries.back() {
            if last.is_some_and(|l| e.index() <= l) {
                break;
            }
            self.bytes -= u64::from(*len);
            self.entries.pop_back();
        }
    }

    /// Drops the entries up to `upto`: a purge.
    pub(super) fn purge_upto(&mut self, upto: u64) {
        while let Some((e, len)) = self.entries.front() {
            if e.index() > upto {
                break;
            }
            self.bytes -= u64::from(*len);
            self.entries.pop_front();
        }
    }

    pub(super) fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use openraft::vote::RaftLeaderId;

    use super::*;

    fn entry(index: u64) -> Entry {
        let leader = openraft::impls::leader_id_adv::LeaderId::<u64, u64>::new(1, 1);
        Entry::new_blank(openraft::LogId::new(leader.to_committed(), index))
    }

    fn held(c: &EntryCache) -> Vec<u64> {
        c.entries.iter().map(|(e, _)| e.index()).collect()
    }

    /// Each way out of the cache: truncate, purge, the budget, a gap, an entry too large.
    #[test]
    fn the_cache_keeps_a_suffix_within_its_budget() {
        let mut c = EntryCache::new(100);
        for i in 1..=5 {
            c.push(entry(i), 10);
        }
        assert_eq!(held(&c), [1, 2, 3, 4, 5]);
        c.truncate_after(Some(3));
        assert_eq!(held(&c), [1, 2, 3]);
        assert!(c.get(4).is_none() && c.get(3).is_some());
        c.purge_upto(1);
        assert_eq!(held(&c), [2, 3]);
        assert!(c.get(1).is_none());
        for i in 4..=11 {
            c.push(entry(i), 10);
        }
        assert_eq!(held(&c), (2..=11).collect::<Vec<_>>(), "100 bytes fit");
        c.push(entry(12), 20);
        assert_eq!(
            held(&c),
            (4..=12).collect::<Vec<_>>(),
            "the oldest go first"
        );
        assert_eq!(c.bytes, 100);
        c.push(entry(20), 10);
        assert_eq!(held(&c), [20], "a gap starts the suffix again");
        c.push(entry(21), 26);
        assert!(
            held(&c).is_empty(),
            "over a quarter of the budget: nothing cached"
        );
        c.push(entry(22), 10);
        c.truncate_after(None);
        assert!(held(&c).is_empty());
        assert_eq!(c.bytes, 0);
    }
}
