//! RecentEntries against a model log: what it serves is exactly the log's entries, whole or
//! cut as the WAL cuts them, through appends, overwrites, truncations and purges.

use openraft::entry::RaftEntry;
use openraft::vote::RaftLeaderId;

use super::*;
use crate::raft::typ::LogId;

fn entry(term: u64, index: u64) -> Entry {
    let leader = openraft::impls::leader_id_adv::LeaderId::<u64, u64>::new(term, 1);
    Entry::new_blank(openraft::LogId::new(leader.to_committed(), index))
}

/// The model: the log as a list of (log id, record length), from `first`.
struct Model {
    first: u64,
    log: Vec<(Entry, u32)>,
}

impl Model {
    fn range(&self, lo: u64, hi: u64, budget: u64) -> (Vec<LogId>, bool) {
        let mut out = Vec::new();
        let mut bytes = 0;
        for (e, len) in &self.log[(lo - self.first) as usize..(hi - self.first) as usize] {
            if !out.is_empty() && bytes + u64::from(*len) > budget {
                return (out, true);
            }
            bytes += u64::from(*len);
            out.push(e.log_id());
        }
        (out, false)
    }
}

fn ids(entries: &[Entry]) -> Vec<LogId> {
    entries.iter().map(|e| e.log_id()).collect()
}

/// RecentIsTheLogTail and WholeRangeOrMiss: every hit equals the model's range, cut by the
/// budget as the WAL cuts it; a range not wholly kept is a miss.
#[test]
fn serves_exactly_the_log_tail_or_misses() {
    let recent = RecentEntries::default();
    let mut model = Model {
        first: 1,
        log: Vec::new(),
    };
    let mut term = 1;
    let mut hits = 0;
    for round in 0..400u64 {
        let next = model.first + model.log.len() as u64;
        match round % 11 {
            // A truncation (a new leader overwrote the tail).
            7 if model.log.len() > 3 => {
                let last = next - 1 - round % 3;
                recent.truncate_after(Some(last));
                model.log.truncate((last + 1 - model.first) as usize);
                term += 1;
            }
            // A purge (after a snapshot).
            10 if model.log.len() > 5 => {
                let upto = model.first + 2;
                recent.purge(upto);
                model.log.drain(..(upto + 1 - model.first) as usize);
                model.first = upto + 1;
            }
            _ => {
                let n = 1 + round % 4;
                // Record lengths up to 300 KiB: the byte bound evicts, and a single append of
                // more than the bound stays whole.
                let written: Vec<(Entry, u32)> = (0..n)
                    .map(|i| {
                        (
                            entry(term, next + i),
                            (1 + (round * 37 + i * 101) % 300) as u32 * 1024,
                        )
                    })
                    .collect();
                model.log.extend(written.iter().cloned());
                recent.appended(written);
            }
        }
        let end = model.first + model.log.len() as u64;
        for lo in model.first..end {
            for hi in lo + 1..=end {
                for budget in [u64::MAX, 200 * 1024, 1] {
                    if let Some((got, cut)) = recent.get(lo, hi, budget) {
                        hits += 1;
                        assert_eq!((ids(&got), cut), model.range(lo, hi, budget), "{lo}..{hi}");
                    }
                }
            }
        }
        // Beyond the log's end, or empty: always a miss.
        assert!(recent.get(end, end + 1, u64::MAX).is_none());
        assert!(recent
            .get(end.saturating_sub(1), end + 1, u64::MAX)
            .is_none());
        // The newest append is always kept whole (RecentBounded).
        if round % 11 < 7 && !model.log.is_empty() {
            assert!(
                recent.get(end - 1, end, u64::MAX).is_some(),
                "round {round}"
            );
        }
    }
    assert!(hits > 1000, "the cache served {hits} reads");
}

/// An append that overwrites kept entries without a truncation first (the WAL allows it) drops
/// them; one that leaves a gap starts over.
#[test]
fn overwrite_and_gap() {
    let recent = RecentEntries::default();
    recent.appended((1..=5).map(|i| (entry(1, i), 10)).collect());
    recent.appended(vec![(entry(2, 3), 10)]);
    let (got, _) = recent.get(1, 4, u64::MAX).expect("kept");
    assert_eq!(
        ids(&got),
        vec![
            entry(1, 1).log_id(),
            entry(1, 2).log_id(),
            entry(2, 3).log_id()
        ]
    );
    assert!(
        recent.get(4, 5, u64::MAX).is_none(),
        "overwritten entries are gone"
    );
    recent.appended(vec![(entry(2, 9), 10)]);
    assert!(recent.get(3, 4, u64::MAX).is_none(), "a gap starts over");
    assert!(recent.get(9, 10, u64::MAX).is_some());
    recent.truncate_after(None);
    assert!(recent.get(9, 10, u64::MAX).is_none());
}
