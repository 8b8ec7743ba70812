//! LogStore: durability of appends, callbacks in order, FailStop, the committed record, sled
//! refusal, purge and truncate.

use openraft::entry::RaftEntry;
use openraft::type_config::TypeConfigExt;
use openraft::vote::RaftLeaderId;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::mpsc;

use super::*;

fn entry(term: u64, index: u64) -> Entry {
    let leader = openraft::impls::leader_id_adv::LeaderId::<u64, u64>::new(term, 1);
    Entry::new_blank(openraft::LogId::new(leader.to_committed(), index))
}

async fn append_and_wait(store: &mut LogStore, entries: Vec<Entry>) -> io::Result<()> {
    let (tx, rx) = TypeConfig::oneshot();
    store.append(entries, IOFlushed::signal(tx)).await?;
    rx.await.map_err(io::Error::other)?
}

/// A log whose every sync after the first fails (failpoint `log_flush_fail_after=1`), and
/// the directory it lives in.
fn failing_after_one_sync() -> (tempfile::TempDir, LogStore) {
    let dir = tempfile::tempdir().unwrap();
    let opts = WalOptions {
        fail_sync_after: Some(1),
        ..WalOptions::default()
    };
    let s = LogStore::open_with(dir.path(), opts).unwrap();
    (dir, s)
}

/// DurableBeforeAck: an acknowledged append survives closing and reopening the log.
#[tokio::test]
async fn acknowledged_append_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut s = LogStore::open(dir.path()).unwrap();
        append_and_wait(&mut s, (1..=5).map(|i| entry(1, i)).collect())
            .await
            .unwrap();
        let vote = Vote::new(3, 2);
        s.save_vote(&vote).await.unwrap();
    }
    let mut s = LogStore::open(dir.path()).unwrap();
    let st = s.get_log_state().await.unwrap();
    assert_eq!(st.last_log_id.map(|l| l.index()), Some(5));
    let got = s.try_get_log_entries(1..=5).await.unwrap();
    assert_eq!(
        got.iter().map(|e| e.index()).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    assert_eq!(s.read_vote().await.unwrap(), Some(Vote::new(3, 2)));
}

/// Group commit: callbacks complete in submission order, and every append is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_complete_in_order_and_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = LogStore::open(dir.path()).unwrap();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let mut rxs = Vec::new();
    for i in 1..=50u64 {
        let (tx, rx) = TypeConfig::oneshot();
        s.append([entry(1, i)], IOFlushed::signal(tx))
            .await
            .unwrap();
        rxs.push((i, rx));
    }
    for (i, rx) in rxs {
        let done_tx = done_tx.clone();
        tokio::spawn(async move {
            rx.await.unwrap().unwrap();
            done_tx.send(i).unwrap();
        });
    }
    drop(done_tx);
    let mut n = 0;
    while done_rx.recv().await.is_some() {
        n += 1;
    }
    assert_eq!(n, 50);
    let stats = s.flush_stats();
    assert_eq!(stats.entries.load(Ordering::Relaxed), 50);
    assert_eq!(stats.appends.load(Ordering::Relaxed), 50);
    let flushes = stats.flushes.load(Ordering::Relaxed);
    assert!((1..=50).contains(&flushes), "flushes = {flushes}");
}

/// FailStop: once a sync has failed, its append is not acknowledged and every later write
/// is refused.
#[tokio::test]
async fn refuses_writes_after_a_failed_sync() {
    let (_dir, mut s) = failing_after_one_sync();
    append_and_wait(&mut s, vec![entry(1, 1)]).await.unwrap();
    let err = append_and_wait(&mut s, vec![entry(1, 2)])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("log_flush_fail_after"), "{err}");
    let (tx, _rx) = TypeConfig::oneshot();
    assert!(s
        .append([entry(1, 3)], IOFlushed::signal(tx))
        .await
        .is_err());
    assert!(s.save_vote(&Vote::new(2, 1)).await.is_err());
    assert!(s.truncate_after(None).await.is_err());
    assert!(s.purge(entry(1, 1).log_id()).await.is_err());
    // Nothing was written by the refused append.
    assert_eq!(s.try_get_log_entries(3..4).await.unwrap().len(), 0);
}

/// CommittedRidesNextSync: `save_committed` queues no sync; the next append's sync raises
/// the commit gate to it, and on a quiet log a waiter's own request does; a reopened log's
/// gate starts at the committed id found.
#[tokio::test]
async fn the_committed_record_rides_the_next_sync() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut s = LogStore::open(dir.path()).unwrap();
        append_and_wait(&mut s, (1..=3).map(|i| entry(1, i)).collect())
            .await
            .unwrap();
        let gate = s.commit_gate();
        assert_eq!(gate.durable(), None);
        let syncs = s.flush_stats().syncs.load(Ordering::Relaxed);
        s.save_committed(Some(entry(1, 2).log_id())).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let after = s.flush_stats().syncs.load(Ordering::Relaxed);
        assert_eq!(after, syncs, "save_committed queued a sync of its own");
        assert_eq!(gate.durable(), None, "the gate rose without a sync");
        append_and_wait(&mut s, vec![entry(1, 4)]).await.unwrap();
        assert_eq!(
            gate.durable(),
            Some(2),
            "the append's sync did not raise the gate"
        );

        // Nothing else is written: the waiter's request makes the sync.
        s.save_committed(Some(entry(1, 4).log_id())).await.unwrap();
        tokio::time::timeout(Duration::from_secs(10), gate.wait_durable(4))
            .await
            .expect("a waiter on a quiet log was never covered")
            .unwrap();
    }
    let mut s = LogStore::open(dir.path()).unwrap();
    assert_eq!(
        s.read_committed().await.unwrap(),
        Some(entry(1, 4).log_id())
    );
    assert_eq!(s.commit_gate().durable(), Some(4));
}

/// GateFailStops: when the committed record's sync fails, a read's wait fails too (and
/// the WAL refuses every later write, so openraft stops the node) instead of waiting
/// forever or going on.
#[tokio::test]
async fn a_failed_committed_sync_fails_the_gate() {
    let (_dir, mut s) = failing_after_one_sync();
    append_and_wait(&mut s, vec![entry(1, 1)]).await.unwrap();
    s.save_committed(Some(entry(1, 1).log_id())).await.unwrap();
    let r = tokio::time::timeout(Duration::from_secs(10), s.commit_gate().wait_durable(1))
        .await
        .expect("the gate neither opened nor failed");
    assert!(r.is_err(), "the gate opened after a failed sync");
}

/// A data dir whose log an earlier redraft kept in sled is refused, saying how to move it.
#[test]
fn refuses_a_sled_log_with_the_way_out() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("db")).unwrap();
    let err = LogStore::open(dir.path()).err().expect("refused");
    let msg = err.to_string();
    assert!(
        msg.contains("sled") && msg.contains("redraft backup"),
        "{msg}"
    );
    assert!(msg.contains("redraft restore"), "{msg}");
}

/// OrderedKeys: reads after purge and truncation see a contiguous range.
#[tokio::test]
async fn purge_and_truncate_leave_no_holes() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = LogStore::open(dir.path()).unwrap();
    append_and_wait(&mut s, (1..=300).map(|i| entry(1, i)).collect())
        .await
        .unwrap();
    s.purge(entry(1, 255).log_id()).await.unwrap();
    s.truncate_after(Some(entry(1, 290).log_id()))
        .await
        .unwrap();
    let st = s.get_log_state().await.unwrap();
    assert_eq!(st.last_purged_log_id.map(|l| l.index()), Some(255));
    assert_eq!(st.last_log_id.map(|l| l.index()), Some(290));
    let got: Vec<u64> = s
        .try_get_log_entries(..)
        .await
        .unwrap()
        .iter()
        .map(|e| e.index())
        .collect();
    assert_eq!(got, (256..=290).collect::<Vec<_>>());
}
