//! Unit tests of the state machine: snapshot builds racing installs, apply and reads during an
//! encode.

use bytes::Bytes;
use openraft::entry::RaftEntry;
use openraft::vote::RaftLeaderIdExt;

use std::io;
use std::time::Duration;

use super::*;
use crate::raft::typ::Entry;

fn log_id(index: u64) -> LogId {
    let leader = <TypeConfig as openraft::RaftTypeConfig>::LeaderId::new_committed(1, 1);
    LogId::new(leader, index)
}

fn put(key: &str, value: &str) -> Request {
    Request {
        client: None,
        op: Op::Put {
            key: Bytes::copy_from_slice(key.as_bytes()),
            value: Bytes::copy_from_slice(value.as_bytes()),
        },
        at_ms: 0,
    }
}

/// Applies puts `key{i}` = `v{i}` as log entries `first..=last`.
async fn must_apply(sm: &mut StateMachineStore, first: u64, last: u64) {
    let entries: Vec<Result<EntryResponder<TypeConfig>, io::Error>> = (first..=last)
        .map(|i| {
            let e = Entry::new_normal(log_id(i), put(&format!("key{i}"), &format!("v{i}")));
            Ok((e, None))
        })
        .collect();
    sm.apply(futures::stream::iter(entries)).await.unwrap();
}

/// Arms the build hook; returns (captured, resume).
fn pause_next_build(
    sm: &StateMachineStore,
) -> (
    tokio::sync::oneshot::Receiver<()>,
    tokio::sync::oneshot::Sender<()>,
) {
    let (captured_tx, captured_rx) = tokio::sync::oneshot::channel();
    let (resume_tx, resume_rx) = tokio::sync::oneshot::channel();
    *sm.build_pause.lock().unwrap() = Some(BuildPause {
        captured: captured_tx,
        resume: resume_rx,
    });
    (captured_rx, resume_tx)
}

/// An older snapshot build that finishes after a newer install must not replace the
/// installed snapshot on disk (NewerSnapshotOnly): the log behind the installed one may
/// already be purged, and the node could not restart from the older one.
#[tokio::test]
async fn a_stale_build_never_replaces_a_newer_install() {
    let dir = tempfile::tempdir().unwrap();
    let mut sm = StateMachineStore::open(dir.path()).unwrap();
    must_apply(&mut sm, 1, 5).await;

    // The build captures the state at log index 5, then pauses.
    let (captured, resume) = pause_next_build(&sm);
    let mut builder = sm.get_snapshot_builder().await;
    let build = tokio::spawn(async move { builder.build_snapshot().await });
    captured.await.unwrap();

    // Meanwhile the leader's snapshot at index 20 is installed.
    let mut leader = StateMachineStore::open(&dir.path().join("leader")).unwrap();
    must_apply(&mut leader, 1, 20).await;
    let newer = leader
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    assert_eq!(newer.meta.last_log_id, Some(log_id(20)));
    sm.install_snapshot(&newer.meta, newer.snapshot)
        .await
        .unwrap();

    // The build resumes and finishes.
    resume.send(()).unwrap();
    let built = build.await.unwrap().unwrap();
    assert!(
        built.meta.last_log_id <= Some(log_id(20)),
        "a build never claims more than it covers"
    );

    // What is on disk, and what openraft is told is current, is the newer snapshot.
    let current = sm.get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(current.meta.last_log_id, Some(log_id(20)));
    let mut reopened = StateMachineStore::open(dir.path()).unwrap();
    let mut on_disk = reopened.get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(
        on_disk.meta.last_log_id,
        Some(log_id(20)),
        "snapshot on disk"
    );
    assert_eq!(on_disk.snapshot.load().unwrap().revision(), 20);
    assert_eq!(
        temp_files(dir.path()),
        0,
        "the stale build's temp file is gone"
    );
}

fn temp_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "tmp")
        })
        .count()
}

/// ApplyNeverWaitsForSnapshot: while a build encodes (paused in the middle by the test
/// hook), entries apply and reads see them; the snapshot holds the state it captured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_and_reads_proceed_while_a_snapshot_encodes() {
    let dir = tempfile::tempdir().unwrap();
    let mut sm = StateMachineStore::open(dir.path()).unwrap();
    must_apply(&mut sm, 1, 5).await;
    let (captured, resume) = pause_next_build(&sm);
    let mut builder = sm.get_snapshot_builder().await;
    let build = tokio::spawn(async move { builder.build_snapshot().await });
    captured.await.unwrap();

    // The build is mid-encode: apply must not wait for it. (It runs in a task of its own:
    // an apply that blocks on the state lock blocks its worker thread, and this one must
    // stay free to see it and resume the build.)
    let mut applier = sm.clone();
    let applying = tokio::spawn(async move { must_apply(&mut applier, 6, 10).await });
    if tokio::time::timeout(Duration::from_secs(10), applying)
        .await
        .is_err()
    {
        let _ = resume.send(());
        panic!("apply waited for the snapshot encode");
    }
    {
        let st = sm.read();
        assert_eq!(st.store.revision(), 10);
        assert_eq!(st.store.get(b"key8").unwrap().value.as_ref(), b"v8");
    }

    resume.send(()).unwrap();
    let built = build.await.unwrap().unwrap();
    assert_eq!(built.meta.last_log_id, Some(log_id(5)));
    let mut current = sm.get_current_snapshot().await.unwrap().unwrap();
    let store = current.snapshot.load().unwrap();
    assert_eq!(store.revision(), 5, "the snapshot holds what it captured");
    assert!(store.get(b"key5").is_some() && store.get(b"key6").is_none());
}

/// DurableReads: apply does not wait for the committed index's sync (a write's reply and a
/// watch event do not pay for it), while a read's wait covers everything applied when it
/// asks, and goes on as soon as a sync covers that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_wait_for_the_durable_committed_index_and_apply_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let sm = StateMachineStore::open(dir.path()).unwrap();
    let gate = CommitGate::new(None);
    sm.set_commit_gate(gate.clone());
    let mut applier = sm.clone();
    tokio::time::timeout(Duration::from_secs(10), must_apply(&mut applier, 1, 3))
        .await
        .expect("apply waited for the committed index's sync");
    assert_eq!(sm.read().store.revision(), 3);

    let reader = tokio::spawn({
        let sm = sm.clone();
        async move { sm.wait_applied_durable(Duration::from_secs(30)).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!reader.is_finished(), "a read passed before any sync");
    gate.advance(Some(2));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !reader.is_finished(),
        "a read passed with index 3 applied, 2 durable"
    );
    gate.advance(Some(3));
    tokio::time::timeout(Duration::from_secs(10), reader)
        .await
        .expect("a read still waiting once the gate covered what was applied")
        .unwrap()
        .unwrap();
    assert_eq!(sm.durable_committed(), Some(3));

    // A read that cannot be covered in time fails instead of hanging; a failed sync fails it.
    must_apply(&mut applier, 4, 4).await;
    let late = sm.wait_applied_durable(Duration::from_millis(50)).await;
    assert_eq!(late.unwrap_err().kind(), io::ErrorKind::TimedOut);
    gate.fail();
    assert!(sm
        .wait_applied_durable(Duration::from_secs(30))
        .await
        .is_err());
}

/// DurableReads: an installed snapshot's state is on disk in its file, so the gate covers it
/// at once (a follower that caught up by a snapshot answers reads without waiting for a
/// commit that may never come on a quiet cluster); so does the state loaded at open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_installed_snapshot_is_durable_for_reads() {
    let src_dir = tempfile::tempdir().unwrap();
    let mut source = StateMachineStore::open(src_dir.path()).unwrap();
    must_apply(&mut source, 1, 5).await;
    let snap = source.build_snapshot().await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let mut sm = StateMachineStore::open(dir.path()).unwrap();
    let gate = CommitGate::new(None);
    sm.set_commit_gate(gate.clone());
    sm.install_snapshot(&snap.meta, snap.snapshot)
        .await
        .unwrap();
    assert_eq!(gate.durable(), Some(5));
    sm.wait_applied_durable(Duration::from_millis(1))
        .await
        .unwrap();

    // Reopened, the state comes from that snapshot file (openraft restores it through
    // install_snapshot at start-up): covered whatever committed id the log kept.
    drop(sm);
    let mut reopened = StateMachineStore::open(dir.path()).unwrap();
    let gate = CommitGate::new(Some(2));
    reopened.set_commit_gate(gate.clone());
    let current = reopened.get_current_snapshot().await.unwrap().unwrap();
    reopened
        .install_snapshot(&current.meta, current.snapshot)
        .await
        .unwrap();
    assert_eq!(reopened.read().store.revision(), 5);
    assert_eq!(gate.durable(), Some(5));
}
