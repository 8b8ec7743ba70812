//! A crash at every step of a workload (appends, votes, commits, rolls, truncation, purge) on
//! the simulated disk: what was acknowledged is there after the reopen, and the log is
//! contiguous.

use super::*;

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

/// Waits until the housekeeping thread has made the next spare or reported the disk full, as
/// it has long done between two rolls of a real log. Here a 128-byte segment rolls every two
/// appends: on a loaded machine (a fresh-clone suite run) the thread woke late, the next roll
/// found no spare and made one itself, which this full disk refuses, and the append failed.
fn spare_settled(wal: &Wal) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let chores = wal.shared.chores.lock().unwrap();
        if matches!(chores.spare, Spare::Ready(..)) || wal.disk_full().is_some() {
            return;
        }
        drop(chores);
        assert!(
            Instant::now() < deadline,
            "the housekeeping thread never settled"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
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
        spare_settled(&wal);
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
/// it on its core; read replies wait for the sync: DurableReads), and the next
/// acknowledged sync makes it durable. What a crash keeps is never ahead of the log.
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

/// CommittedRidesNextSync: `save_committed` costs no disk operation (openraft awaits it on
/// its core after every commit, on every node); its record goes out in the next write, ahead
/// of that write's records, or in the next group commit, before its sync.
#[test]
fn save_committed_writes_nothing_until_the_next_record_or_sync() {
    let disk = SimDisk::new();
    // One segment: a roll would add operations to the write counted below.
    let wal = must_open(&disk, WalOptions::default());
    append(&wal, (1..=3).map(|i| entry(1, i)).collect()).unwrap();
    let committed_after_kill =
        |d: &SimDisk| must_open(&d.killed_copy(), WalOptions::default()).committed();

    let ops = disk.ops();
    wal.save_committed(Some(log_id(1, 2))).unwrap();
    assert_eq!(disk.ops(), ops, "save_committed touched the disk");
    assert_eq!(wal.committed(), Some(log_id(1, 2)), "readable at once");
    assert_eq!(committed_after_kill(&disk), None, "not written yet");
    // A group commit with nothing else to write writes it, then syncs it.
    sync(&wal).unwrap();
    let crashed = must_open(&disk.crashed_copy(), WalOptions::default());
    assert_eq!(crashed.committed(), Some(log_id(1, 2)));

    // Ahead of the next append's entries, in the same write.
    wal.save_committed(Some(log_id(1, 3))).unwrap();
    let ops = disk.ops();
    disk.hold_syncs(true);
    let (done, rx) = waiter();
    wal.append(vec![entry(1, 4)], done, false).unwrap();
    assert_eq!(
        disk.ops(),
        ops + 1,
        "one write for the record and the entry"
    );
    assert_eq!(committed_after_kill(&disk), Some(log_id(1, 3)));
    disk.hold_syncs(false);
    wait(rx).unwrap();
    let crashed = must_open(&disk.crashed_copy(), WalOptions::default());
    assert_eq!(crashed.committed(), Some(log_id(1, 3)));
    assert_eq!(contents(&crashed), span(1, 1..=4));
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
    // SpareOffTheWritePath: the housekeeping thread deletes them after that sync.
    let deadline = Instant::now() + Duration::from_secs(10);
    while seg_files(&disk) >= before.len() {
        assert!(Instant::now() < deadline, "purged segments stay");
        std::thread::sleep(Duration::from_millis(10));
    }
    let crashed = must_open(&disk.crashed_copy(), opts());
    assert_eq!(crashed.log_state().0, Some(log_id(1, 20)));
    assert_eq!(contents(&crashed), span(1, 21..=50));
}

/// SpareOffTheWritePath: a roll takes the spare that is ready and the next one is made by the
/// housekeeping thread, so appends go on while it is slow to make; only a roll that finds it
/// still being made waits for it. (Before, every roll made the next spare itself, under the
/// state lock: 5-30 ms of zeros and sync under load, which every write of the node waited for.)
#[test]
fn appends_do_not_wait_for_the_next_spare() {
    let disk = SimDisk::new();
    let wal = Arc::new(must_open(&disk, opts()));
    disk.hold_allocations(true);
    let segments = wal.segment_names().len();
    // Appends in another thread, so that a regression hangs there, not here.
    let appender = |wal: Arc<Wal>, from: u64, until_segments: usize| {
        let (tx, rx) = std_mpsc::channel();
        std::thread::spawn(move || {
            let mut i = from;
            let r = loop {
                if let Err(e) = append(&wal, vec![entry(1, i)]) {
                    break Err(e);
                }
                if wal.segment_names().len() >= until_segments {
                    break Ok(i);
                }
                i += 1;
            };
            let _ = tx.send(r);
        });
        rx
    };
    // Up to the first roll (it takes the spare made at open), then on into the new segment
    // while the next spare cannot be made.
    let last = appender(wal.clone(), 1, segments + 1)
        .recv_timeout(Duration::from_secs(10))
        .expect("a roll waited for the next spare to be made")
        .unwrap();
    append(&wal, vec![entry(1, last + 1)]).unwrap();
    // The next roll finds the spare still being made and waits for it.
    let rolled = appender(wal.clone(), last + 2, segments + 2);
    assert!(
        rolled.recv_timeout(Duration::from_millis(200)).is_err(),
        "rolled without a spare while one was being made"
    );
    disk.hold_allocations(false);
    let end = rolled
        .recv_timeout(Duration::from_secs(10))
        .expect("the roll never got its spare")
        .unwrap();
    assert_eq!(contents(&wal), span(1, 1..=end));
}

fn seg_files(disk: &SimDisk) -> usize {
    disk.list()
        .unwrap()
        .iter()
        .filter(|n| n.ends_with(".seg"))
        .count()
}

/// ReplayedIsDurable: records written but not synced when the process died (kill -9) are still
/// in the page cache, and the restarted log reads and reports them (entries, committed id); a
/// power cut after the restart must not take them back. Open syncs the last segment.
#[test]
fn what_a_restarted_log_reads_survives_a_later_power_cut() {
    let disk = SimDisk::new();
    let wal = must_open(&disk, opts());
    append(&wal, vec![entry(1, 1)]).unwrap();
    wal.save_committed(Some(log_id(1, 1))).unwrap();
    // The sync worker is held off: these are written, never synced, when the process dies
    // (the committed id 1 in the same write, ahead of the entries: CommittedRidesNextSync).
    disk.hold_syncs(true);
    let (done, _rx) = waiter();
    wal.append(vec![entry(1, 2), entry(1, 3)], done, false)
        .unwrap();
    // Recorded in memory only: the killed process takes it along.
    wal.save_committed(Some(log_id(1, 3))).unwrap();
    let killed = disk.killed_copy();
    disk.hold_syncs(false);
    drop(wal);

    let restarted = must_open(&killed, opts());
    assert_eq!(
        contents(&restarted),
        span(1, 1..=3),
        "the page cache kept them"
    );
    assert_eq!(restarted.committed(), Some(log_id(1, 1)));
    drop(restarted);
    killed.crash();
    let after_power_cut = must_open(&killed, opts());
    assert_eq!(
        contents(&after_power_cut),
        span(1, 1..=3),
        "a power cut after the restart took back entries the restarted node had reported"
    );
    assert_eq!(after_power_cut.committed(), Some(log_id(1, 1)));
}
