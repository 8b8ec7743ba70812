//! FollowerSyncsInline (`sync.rs`): when an append asked to sync where it stands does so, and
//! when it is queued to the worker instead.

use std::sync::atomic::AtomicBool;

use super::*;

/// A callback and the flag it sets once its append is acknowledged.
fn done_flag() -> (Arc<AtomicBool>, Done) {
    let flag = Arc::new(AtomicBool::new(false));
    let set = flag.clone();
    let done: Done = Box::new(move |r| {
        r.unwrap();
        set.store(true, Ordering::SeqCst);
    });
    (flag, done)
}

fn wait_for(flag: &AtomicBool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !flag.load(Ordering::SeqCst) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(flag.load(Ordering::SeqCst), "never acknowledged");
}

/// Appends entry `index` asking to sync here while the disk holds every sync: the append must
/// return (queued, not blocked in a sync of its own) and be acknowledged once syncs resume.
fn must_queue(wal: &Arc<Wal>, disk: &SimDisk, index: u64, why: &str) {
    disk.hold_syncs(true);
    let (acked, done) = done_flag();
    let (returned, appended) = std_mpsc::channel();
    let appender = wal.clone();
    std::thread::spawn(move || {
        appender.append([entry(1, index)], done, true).unwrap();
        returned.send(()).unwrap();
    });
    appended
        .recv_timeout(Duration::from_secs(5))
        .unwrap_or_else(|_| panic!("{why}: append blocked on a sync instead of queueing"));
    assert!(
        !acked.load(Ordering::SeqCst),
        "{why}: acknowledged before any sync"
    );
    disk.hold_syncs(false);
    wait_for(&acked);
}

/// An append asked to sync where it stands is durable and completed when `append` returns if
/// nothing else is syncing; while a sync runs, after a slow one, or right after one (back to
/// back), it is queued to the worker like any other and completes in order after what was
/// queued before.
#[test]
fn an_idle_append_syncs_where_it_stands_and_a_busy_one_queues() {
    let disk = SimDisk::new();
    let wal = Arc::new(must_open(&disk, opts()));
    let (first, done) = done_flag();
    wal.append([entry(1, 1)], done, true).unwrap();
    assert!(
        first.load(Ordering::SeqCst),
        "completed before append returned"
    );
    let after_crash = Wal::open(
        Arc::new(disk.crashed_copy()),
        opts(),
        Arc::new(FlushStats::default()),
    )
    .unwrap();
    assert_eq!(after_crash.entries(1..=1).unwrap().len(), 1, "and durable");

    // A sync held on the worker: the next inline request queues behind it, not overtaking.
    disk.hold_syncs(true);
    let (second, done) = done_flag();
    wal.append([entry(1, 2)], done, false).unwrap();
    let (third, done) = done_flag();
    wal.append([entry(1, 3)], done, true).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert!(!second.load(Ordering::SeqCst) && !third.load(Ordering::SeqCst));
    disk.hold_syncs(false);
    wait_for(&third);
    assert!(second.load(Ordering::SeqCst));

    // After a sync slower than the bound.
    wal.shared
        .last_sync_us
        .store(sync::INLINE_SYNC_MAX_US + 1, Ordering::Relaxed);
    must_queue(&wal, &disk, 4, "after a slow sync");

    // Back to back (the last sync ended more recently than it took, as under load), so that
    // appends arriving during a sync share the next one. The end is stamped a minute ahead so
    // that it stays "more recently than it took" however late the appending thread starts: with
    // the end stamped now, a loaded machine that started the thread more than the 1 ms later
    // made the append sync inline, and the test failed in a full suite run.
    wal.shared.last_sync_us.store(1_000, Ordering::Relaxed);
    let ahead_us = wal.shared.opened.elapsed().as_micros() as u64 + 60_000_000;
    wal.shared
        .last_sync_end_us
        .store(ahead_us, Ordering::Relaxed);
    must_queue(&wal, &disk, 5, "right after a sync");
}
