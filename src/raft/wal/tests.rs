//! Unit tests of the WAL over the simulated disk (`disk::sim`): group commit, torn tails,
//! corruption, purge and truncate across segments, and a crash at every step of a workload.

use std::collections::BTreeMap;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::entry::RaftEntry;
use openraft::vote::RaftLeaderId;

use super::disk::sim::SimDisk;
use super::*;

fn entry(term: u64, index: u64) -> Entry {
    let leader = openraft::impls::leader_id_adv::LeaderId::<u64, u64>::new(term, 1);
    Entry::new_blank(openraft::LogId::new(leader.to_committed(), index))
}

fn log_id(term: u64, index: u64) -> LogId {
    entry(term, index).log_id()
}

/// Small segments, so a few entries roll to a new one.
fn opts() -> WalOptions {
    WalOptions {
        segment_bytes: 128,
        ..WalOptions::default()
    }
}

fn must_open(disk: &SimDisk, opts: WalOptions) -> Wal {
    Wal::open(
        Arc::new(disk.clone()),
        opts,
        Arc::new(FlushStats::default()),
    )
    .expect("open wal")
}

fn waiter() -> (Done, std_mpsc::Receiver<io::Result<()>>) {
    let (tx, rx) = std_mpsc::channel();
    (
        Box::new(move |r| {
            let _ = tx.send(r);
        }),
        rx,
    )
}

fn wait(rx: std_mpsc::Receiver<io::Result<()>>) -> io::Result<()> {
    rx.recv_timeout(Duration::from_secs(10))
        .map_err(|e| io::Error::other(format!("no acknowledgement: {e}")))?
}

fn append(wal: &Wal, entries: Vec<Entry>) -> io::Result<()> {
    let (done, rx) = waiter();
    wal.append(entries, done)?;
    wait(rx)
}

fn save_vote(wal: &Wal, vote: Vote) -> io::Result<()> {
    let (done, rx) = waiter();
    wal.save_vote(&vote, done)?;
    wait(rx)
}

/// Saves the committed id and waits for a sync that covers it (`save_committed` itself does
/// not wait: CommittedRidesNextSync).
fn save_committed(wal: &Wal, c: Option<LogId>) -> io::Result<()> {
    wal.save_committed(c)?;
    sync(wal)
}

/// Purges and waits for the sync after which the purged segments are deleted
/// (PurgeOffTheCore: the deletion runs in the sync worker before this sync's callback).
fn purge(wal: &Wal, upto: LogId) -> io::Result<()> {
    wal.purge(upto)?;
    sync(wal)
}

fn sync(wal: &Wal) -> io::Result<()> {
    let (done, rx) = waiter();
    wal.sync(done)?;
    wait(rx)
}

/// `(index, term)` of every entry the WAL holds.
fn contents(wal: &Wal) -> Vec<(u64, u64)> {
    wal.entries(..)
        .unwrap()
        .iter()
        .map(|e| (e.index(), e.log_id().committed_leader_id().term))
        .collect()
}

fn span(term: u64, r: std::ops::RangeInclusive<u64>) -> Vec<(u64, u64)> {
    r.map(|i| (i, term)).collect()
}

/// Group commit: callbacks complete in submission order, each only once its records are
/// durable (checked in the callback itself: a crash at that instant keeps them).
#[test]
fn group_commit_acknowledges_in_order_and_only_durable_records() {
    let disk = SimDisk::new();
    let wal = Arc::new(must_open(&disk, opts()));
    let order = Arc::new(Mutex::new(Vec::new()));
    let problems = Arc::new(Mutex::new(Vec::new()));
    let mut rxs = Vec::new();
    for i in 0..40u64 {
        let (order, problems, disk) = (order.clone(), problems.clone(), disk.clone());
        let (tx, rx) = std_mpsc::channel();
        wal.append(
            [entry(1, i)],
            Box::new(move |r| {
                r.unwrap();
                order.lock().unwrap().push(i);
                // DurableBeforeAck: what a crash would keep right now holds entry i.
                let after = Wal::open(
                    Arc::new(disk.crashed_copy()),
                    WalOptions {
                        segment_bytes: 128,
                        ..WalOptions::default()
                    },
                    Arc::new(FlushStats::default()),
                );
                match after.map(|w| w.entries(i..=i).map(|v| v.len())) {
                    Ok(Ok(1)) => {}
                    other => problems
                        .lock()
                        .unwrap()
                        .push(format!("entry {i}: {other:?}")),
                }
                tx.send(()).unwrap();
            }),
        )
        .unwrap();
        rxs.push(rx);
    }
    for rx in rxs {
        rx.recv_timeout(Duration::from_secs(20)).unwrap();
    }
    assert_eq!(*order.lock().unwrap(), (0..40).collect::<Vec<_>>());
    assert_eq!(*problems.lock().unwrap(), Vec::<String>::new());
    let st = wal.stats();
    assert_eq!(st.entries.load(Ordering::Relaxed), 40);
    assert!(st.flushes.load(Ordering::Relaxed) <= 40);
    assert!(
        wal.segment_names().len() > 3,
        "the workload must roll segments"
    );
}

/// Builds a log of entries 1..=n (term 1) in one big segment and returns the disk.
fn log_of(n: u64) -> (SimDisk, Wal) {
    let disk = SimDisk::new();
    let wal = must_open(&disk, WalOptions::default());
    append(&wal, (1..=n).map(|i| entry(1, i)).collect()).unwrap();
    (disk, wal)
}

/// TornTailOnly: each shape of a torn last record is cut off at open (durably: a second
/// reopen agrees), the entries before it stay, and appending goes on.
#[test]
fn torn_tails_are_cut_and_the_log_goes_on() {
    type Damage = fn(&mut Vec<u8>, usize);
    let shapes: [(&str, Damage); 5] = [
        ("length past the end of the file", |b, at| {
            let n = b.len() as u32;
            b[at..at + 4].copy_from_slice(&n.to_le_bytes());
        }),
        ("crc mismatch", |b, at| b[at + 9] ^= 0x40),
        ("half written, zero fill after", |b, at| {
            for x in &mut b[at + 10..at + 64] {
                *x = 0;
            }
        }),
        ("frame written, payload not", |b, at| {
            for x in &mut b[at + 8..at + 64] {
                *x = 0;
            }
        }),
        ("garbage frame header", |b, at| {
            b[at..at + 8].copy_from_slice(&[7, 0, 0, 0, 1, 2, 3, 4]);
        }),
    ];
    for (what, damage) in shapes {
        let (disk, wal) = log_of(5);
        let (name, at) = wal.frame_of(5).unwrap();
        drop(wal);
        let mut bytes = disk.read_file(&name);
        damage(&mut bytes, at as usize);
        disk.write_file(&name, bytes);
        let wal = Wal::open(
            Arc::new(disk.clone()),
            opts(),
            Arc::new(FlushStats::default()),
        )
        .unwrap_or_else(|e| panic!("{what}: refused to open: {e}"));
        assert_eq!(contents(&wal), span(1, 1..=4), "{what}");
        append(&wal, vec![entry(2, 5), entry(2, 6)]).unwrap();
        drop(wal);
        disk.crash();
        let wal = must_open(&disk, opts());
        let mut want = span(1, 1..=4);
        want.extend(span(2, 5..=6));
        assert_eq!(contents(&wal), want, "{what}: after the cut and a crash");
    }
}

/// Corruption with valid records after it, or in a segment that is not the last, refuses to
/// open, naming the file and the byte offset.
#[test]
fn corrupt_middle_record_is_refused_naming_file_and_offset() {
    let (disk, wal) = log_of(10);
    let (name, at) = wal.frame_of(3).unwrap();
    drop(wal);
    let mut bytes = disk.read_file(&name);
    bytes[at as usize + 12] ^= 0x01;
    disk.write_file(&name, bytes);
    let err = Wal::open(
        Arc::new(disk.clone()),
        opts(),
        Arc::new(FlushStats::default()),
    )
    .err()
    .expect("refused");
    let msg = err.to_string();
    assert!(msg.contains(&name), "{msg}");
    assert!(msg.contains(&format!("byte offset {at}")), "{msg}");

    // In a segment that is not the last, even the final record is corruption.
    let disk = SimDisk::new();
    let wal = must_open(&disk, opts());
    for i in 1..=20 {
        append(&wal, vec![entry(1, i)]).unwrap();
    }
    let segs = wal.segment_names();
    assert!(segs.len() >= 3);
    let victim = (1..=20)
        .rev()
        .find(|&i| wal.frame_of(i).unwrap().0 == segs[0])
        .unwrap();
    let (name, at) = wal.frame_of(victim).unwrap();
    drop(wal);
    let mut bytes = disk.read_file(&name);
    bytes[at as usize + 9] ^= 0x80;
    disk.write_file(&name, bytes);
    let msg = Wal::open(
        Arc::new(disk.clone()),
        opts(),
        Arc::new(FlushStats::default()),
    )
    .err()
    .expect("refused")
    .to_string();
    assert!(
        msg.contains(&name) && msg.contains(&format!("byte offset {at}")),
        "{msg}"
    );
}

/// A missing segment in the middle is refused, not skipped.
#[test]
fn missing_middle_segment_is_refused() {
    let disk = SimDisk::new();
    let wal = must_open(&disk, opts());
    for i in 1..=20 {
        append(&wal, vec![entry(1, i)]).unwrap();
    }
    let segs = wal.segment_names();
    drop(wal);
    disk.remove(&segs[1]).unwrap();
    let msg = Wal::open(
        Arc::new(disk.clone()),
        opts(),
        Arc::new(FlushStats::default()),
    )
    .err()
    .expect("refused")
    .to_string();
    assert!(msg.contains("not contiguous"), "{msg}");
}

/// PurgeWholeSegments, truncation across segments, truncate-then-append, each checked again
/// after a reopen.
#[test]
fn purge_and_truncate_across_segments_survive_reopen() {
    let disk = SimDisk::new();
    let wal = must_open(&disk, opts());
    for i in 1..=50 {
        append(&wal, vec![entry(1, i)]).unwrap();
    }
    let before = wal.segment_names();
    purge(&wal, log_id(1, 20)).unwrap();
    let after = wal.segment_names();
    assert!(after.len() < before.len(), "{before:?} -> {after:?}");
    assert_eq!(
        disk.list()
            .unwrap()
            .iter()
            .filter(|n| n.ends_with(".seg"))
            .count(),
        after.len()
    );
    assert_eq!(contents(&wal), span(1, 21..=50));
    // The first live entry's segment stays.
    assert_eq!(wal.frame_of(21).unwrap().0, after[0]);

    let reopen = |wal: Wal| {
        drop(wal);
        disk.crash();
        must_open(&disk, opts())
    };
    let wal = reopen(wal);
    assert_eq!(contents(&wal), span(1, 21..=50));
    assert_eq!(wal.log_state(), (Some(log_id(1, 20)), Some(log_id(1, 50))));

    // Across segment boundaries: entry 35's segment is older than the last.
    assert_ne!(
        wal.frame_of(35).unwrap().0,
        *wal.segment_names().last().unwrap()
    );
    wal.truncate_after(Some(35)).unwrap();
    assert_eq!(contents(&wal), span(1, 21..=35));
    let wal = reopen(wal);
    assert_eq!(contents(&wal), span(1, 21..=35));
    assert_eq!(wal.log_state().1, Some(log_id(1, 35)));

    append(&wal, (36..=45).map(|i| entry(2, i)).collect()).unwrap();
    let mut want = span(1, 21..=35);
    want.extend(span(2, 36..=45));
    assert_eq!(contents(&wal), want);
    let wal = reopen(wal);
    assert_eq!(contents(&wal), want);

    // Purge past the end (a snapshot installed ahead of the log): empty log, last = purged.
    purge(&wal, log_id(3, 100)).unwrap();
    assert!(contents(&wal).is_empty());
    let wal = reopen(wal);
    assert_eq!(
        wal.log_state(),
        (Some(log_id(3, 100)), Some(log_id(3, 100)))
    );
    append(&wal, vec![entry(3, 101)]).unwrap();
    let wal = reopen(wal);
    assert_eq!(contents(&wal), vec![(101, 3)]);

    // Truncating everything.
    wal.truncate_after(None).unwrap();
    let wal = reopen(wal);
    assert!(contents(&wal).is_empty());
    assert_eq!(wal.log_state().1, Some(log_id(3, 100)));
}

/// HeadRepeatsState: the vote and committed id survive purging the segments they were first
/// written in.
#[test]
fn vote_and_committed_survive_purging_their_segments() {
    let disk = SimDisk::new();
    let wal = must_open(&disk, opts());
    save_vote(&wal, Vote::new(4, 2)).unwrap();
    save_committed(&wal, Some(log_id(1, 3))).unwrap();
    let first = wal.segment_names()[0].clone();
    for i in 1..=40 {
        append(&wal, vec![entry(1, i)]).unwrap();
    }
    purge(&wal, log_id(1, 39)).unwrap();
    assert!(!wal.segment_names().contains(&first));
    drop(wal);
    disk.crash();
    let wal = must_open(&disk, opts());
    assert_eq!(wal.vote(), Some(Vote::new(4, 2)));
    assert_eq!(wal.committed(), Some(log_id(1, 3)));
    assert_eq!(contents(&wal), vec![(40, 1)]);
}

/// What the workload had acknowledged when it stopped.
#[derive(Default, Debug)]
struct Acked {
    /// Entries that must be there (unless purged): index -> term.
    entries: BTreeMap<u64, u64>,
    vote: Option<Vote>,
    committed: Option<LogId>,
    /// Saved, not yet covered by an acknowledged sync.
    pending_committed: Option<LogId>,
    purged: Option<LogId>,
}

/// Appends, votes, commits, rolls, truncates (across a segment boundary), appends over the
/// truncation, purges: stops at the first error (the simulated crash).
fn workload(disk: &SimDisk, opts: WalOptions, acked: &mut Acked) -> io::Result<()> {
    let wal = Wal::open(
        Arc::new(disk.clone()),
        opts,
        Arc::new(FlushStats::default()),
    )?;
    save_vote(&wal, Vote::new(1, 1))?;
    acked.vote = Some(Vote::new(1, 1));
    for b in 0..6u64 {
        let batch: Vec<Entry> = (b * 3 + 1..=b * 3 + 3).map(|i| entry(1, i)).collect();
        append(&wal, batch)?;
        for i in b * 3 + 1..=b * 3 + 3 {
            acked.entries.insert(i, 1);
        }
        // CommittedRidesNextSync: not durable when save_committed returns, only after the
        // next acknowledged sync (the next append's or vote's). Kept below the truncation
        // point: Raft never truncates a committed entry.
        wal.save_committed(Some(log_id(1, b * 2 + 1)))?;
        if let Some(c) = acked.pending_committed.replace(log_id(1, b * 2 + 1)) {
            acked.committed = Some(c);
        }
    }
    save_vote(&wal, Vote::new(2, 1))?;
    acked.vote = Some(Vote::new(2, 1));
    acked.committed = acked.pending_committed;
    // From here entries above 12 may or may not survive.
    acked.entries.retain(|&i, _| i <= 12);
    wal.truncate_after(Some(12))?;
    for i in 13..=20 {
        append(&wal, vec![entry(2, i)])?;
        acked.entries.insert(i, 2);
    }
    // PurgeOffTheCore: a purge is durable, and its segments deleted, after the next sync.
    wal.purge(log_id(1, 9))?;
    append(&wal, (21..=26).map(|i| entry(2, i)).collect())?;
    acked.purged = Some(log_id(1, 9));
    for i in 21..=26 {
        acked.entries.insert(i, 2);
    }
    wal.purge(log_id(2, 22))?;
    append(&wal, vec![entry(2, 27)])?;
    acked.purged = Some(log_id(2, 22));
    acked.entries.insert(27, 2);
    Ok(())
}

/// Reopens a crashed disk and checks every acknowledged thing is there and the log is
/// contiguous.
fn check_after_crash(disk: &SimDisk, acked: &Acked) -> Result<(), String> {
    let wal = Wal::open(
        Arc::new(disk.clone()),
        opts(),
        Arc::new(FlushStats::default()),
    )
    .map_err(|e| format!("reopen failed: {e}"))?;
    if wal.vote() < acked.vote {
        return Err(format!(
            "vote {:?} < acknowledged {:?}",
            wal.vote(),
            acked.vote
        ));
    }
    if wal.committed() < acked.committed {
        return Err(format!(
            "committed {:?} < acknowledged {:?}",
            wal.committed(),
            acked.committed
        ));
    }
    let (purged, last) = wal.log_state();
    if purged < acked.purged {
        return Err(format!(
            "purged {purged:?} < acknowledged {:?}",
            acked.purged
        ));
    }
    let got = contents(&wal);
    for w in got.windows(2) {
        if w[1].0 != w[0].0 + 1 {
            return Err(format!("hole between {} and {}", w[0].0, w[1].0));
        }
    }
    if let (Some(first), Some(p)) = (got.first(), purged) {
        if first.0 != p.index() + 1 {
            return Err(format!(
                "first entry {} after purge point {}",
                first.0,
                p.index()
            ));
        }
    }
    if last != got.last().map(|&(i, t)| log_id(t, i)).max(purged) {
        return Err(format!("last log id {last:?} does not match the entries"));
    }
    // CommittedRidesNextSync: behind is allowed, ahead of the log never.
    if wal.committed().map(|c| c.index()) > last.map(|l| l.index()) {
        return Err(format!(
            "committed {:?} is ahead of the log (last {last:?})",
            wal.committed()
        ));
    }
    let got: BTreeMap<u64, u64> = got.into_iter().collect();
    let floor = purged.map_or(0, |p| p.index());
    for (&i, &t) in acked.entries.range(floor + 1..) {
        if got.get(&i) != Some(&t) {
            return Err(format!(
                "acknowledged entry {i} (term {t}) lost: {:?}",
                got.get(&i)
            ));
        }
    }
    Ok(())
}

/// Runs the workload with a crash after each of its mutating disk operations in turn;
/// returns the failures.
fn crash_at_every_step(tweak: impl Fn(&SimDisk), opts: WalOptions) -> Vec<String> {
    let mut failures = Vec::new();
    for k in 0.. {
        let disk = SimDisk::new();
        tweak(&disk);
        disk.crash_after(k);
        let mut acked = Acked::default();
        let finished = workload(&disk, opts.clone(), &mut acked).is_ok();
        disk.crash();
        if let Err(e) = check_after_crash(&disk, &acked) {
            failures.push(format!("crash after {k} operations: {e}"));
        }
        if finished {
            assert!(k > 20, "the workload ran only {k} operations");
            break;
        }
    }
    failures
}

/// Crash at every step of the workload (segment rolls, truncate, purge included): every
/// acknowledged entry and vote survives and the log stays contiguous.
#[test]
fn crash_at_every_step_keeps_everything_acknowledged() {
    let failures = crash_at_every_step(|_| {}, opts());
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Teeth: the same test fails when directory syncs are skipped (a new segment's name is not
/// durable) or when no sync happens at all (failpoint `log_sync_off`).
#[test]
fn crash_test_catches_missing_syncs() {
    let failures = crash_at_every_step(|d| d.set_skip_dir_sync(true), opts());
    assert!(
        !failures.is_empty(),
        "skipping directory syncs went unnoticed"
    );
    let no_sync = WalOptions {
        sync: false,
        ..opts()
    };
    let failures = crash_at_every_step(|_| {}, no_sync);
    assert!(!failures.is_empty(), "log_sync_off went unnoticed");
}

/// SpareAhead: when the next segment cannot be preallocated the WAL says "disk full" and goes
/// on writing into the segment it has; once space returns the flag clears by itself.
#[test]
fn disk_full_is_reported_and_clears_when_space_returns() {
    let disk = SimDisk::new();
    let wal = must_open(&disk, opts());
    assert_eq!(wal.disk_full(), None);
    // Room for what exists and little more: the next spare cannot be made.
    disk.set_capacity(Some(disk.used() + 100));
    let mut i = 0;
    while wal.disk_full().is_none() {
        i += 1;
        assert!(i < 100, "disk never reported full");
        append(&wal, vec![entry(1, i)]).unwrap();
    }
    let reason = wal.disk_full().unwrap();
    assert!(
        reason.contains("No space left") || reason.contains("os error 28"),
        "{reason}"
    );
    // Still writable: the segment in use was preallocated.
    i += 1;
    append(&wal, vec![entry(1, i)]).unwrap();
    assert_eq!(contents(&wal).len() as u64, i);
    disk.set_capacity(None);
    let deadline = Instant::now() + Duration::from_secs(10);
    while wal.disk_full().is_some() {
        assert!(Instant::now() < deadline, "disk-full flag never cleared");
        std::thread::sleep(Duration::from_millis(50));
    }
    for j in i + 1..=i + 20 {
        append(&wal, vec![entry(1, j)]).unwrap();
    }
    drop(wal);
    disk.crash();
    let wal = must_open(&disk, opts());
    assert_eq!(contents(&wal), span(1, 1..=i + 20));
}

/// CommittedRidesNextSync: `save_committed` returns without a sync of its own (openraft awaits
/// it before every apply), and the next acknowledged sync makes it durable. What a crash keeps
/// is never ahead of the log.
#[test]
fn committed_rides_the_next_sync() {
    let disk = SimDisk::new();
    let wal = must_open(&disk, opts());
    append(&wal, (1..=3).map(|i| entry(1, i)).collect()).unwrap();
    save_committed(&wal, Some(log_id(1, 1))).unwrap();
    let syncs = |d: &SimDisk| must_open(&d.crashed_copy(), opts()).committed();
    assert_eq!(syncs(&disk), Some(log_id(1, 1)));

    let flushes = wal.stats().flushes.load(Ordering::Relaxed);
    wal.save_committed(Some(log_id(1, 3))).unwrap();
    assert_eq!(wal.committed(), Some(log_id(1, 3)), "readable at once");
    assert_eq!(
        syncs(&disk),
        Some(log_id(1, 1)),
        "save_committed synced on its own"
    );
    // The next append's group commit covers it.
    append(&wal, vec![entry(1, 4)]).unwrap();
    assert_eq!(syncs(&disk), Some(log_id(1, 3)));
    assert_eq!(wal.stats().flushes.load(Ordering::Relaxed), flushes + 1);
}

/// PurgeOffTheCore: `purge` returns before any sync; until the sync worker has synced the
/// purge point a crash finds the old purge point and every entry (more log, no hole), and only
/// after it are the purged segments deleted.
#[test]
fn purge_deletes_segments_only_after_its_sync() {
    let disk = SimDisk::new();
    let wal = must_open(&disk, opts());
    for i in 1..=50 {
        append(&wal, vec![entry(1, i)]).unwrap();
    }
    let before = wal.segment_names();
    // Hold the sync worker off: a crash right after `purge` returns is a crash before its
    // sync. (The worker is blocked on the disk's sync gate.)
    disk.hold_syncs(true);
    wal.purge(log_id(1, 20)).unwrap();
    assert_eq!(contents(&wal), span(1, 21..=50), "purged at once in memory");
    let crashed = must_open(&disk.crashed_copy(), opts());
    assert_eq!(
        crashed.log_state().0,
        None,
        "the purge point was not synced yet"
    );
    assert_eq!(
        contents(&crashed),
        span(1, 1..=50),
        "every entry is still there"
    );
    assert_eq!(
        seg_files(&disk),
        before.len(),
        "segments deleted before the purge point was durable"
    );
    disk.hold_syncs(false);
    sync(&wal).unwrap();
    assert!(seg_files(&disk) < before.len(), "purged segments stay");
    let crashed = must_open(&disk.crashed_copy(), opts());
    assert_eq!(crashed.log_state().0, Some(log_id(1, 20)));
    assert_eq!(contents(&crashed), span(1, 21..=50));
}

fn seg_files(disk: &SimDisk) -> usize {
    disk.list()
        .unwrap()
        .iter()
        .filter(|n| n.ends_with(".seg"))
        .count()
}
