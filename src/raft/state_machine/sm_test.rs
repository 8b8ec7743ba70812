//! Unit tests of the state machine: snapshot builds racing installs, apply and reads during an
//! encode.

use bytes::Bytes;
use openraft::entry::RaftEntry;
use openraft::vote::RaftLeaderIdExt;

use std::io;
use std::time::Duration;

use super::*;
use crate::raft::typ::Entry;
use crate::store::Request;

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
            let e = Entry::new_normal(log_id(i), put(&format!("key{i}"), &format!("v{i}")).into());
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

/// Builds a snapshot of `sm` and returns it.
async fn must_build(sm: &mut StateMachineStore) -> Snapshot {
    sm.get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap()
}

/// The revision of the store a fresh `StateMachineStore` opened on `dir` restores, and the
/// meta it reports as current.
async fn must_reopen(dir: &Path) -> (u64, Option<LogId>) {
    let mut sm = StateMachineStore::open(dir).unwrap();
    let mut snap = sm.get_current_snapshot().await.unwrap().unwrap();
    let store = snap.snapshot.load().unwrap();
    (store.revision(), snap.meta.last_log_id)
}

/// DeltaAppend: the second build appends what changed to the current file rather than
/// dumping everything again; a restart loads the dump and the delta to the latest state, and
/// what openraft is told (and sends to followers) is that state.
#[tokio::test]
async fn a_second_build_appends_a_delta_that_restarts_to_the_latest_state() {
    let dir = tempfile::tempdir().unwrap();
    let mut sm = StateMachineStore::open(dir.path()).unwrap();
    must_apply(&mut sm, 1, 200).await;
    must_build(&mut sm).await;
    let full = std::fs::metadata(dir.path().join(SNAPSHOT_FILE))
        .unwrap()
        .len();
    must_apply(&mut sm, 201, 210).await;
    let built = must_build(&mut sm).await;
    assert_eq!(built.meta.last_log_id, Some(log_id(210)));
    assert_eq!(sm.metrics().snapshot_deltas.load(Ordering::Relaxed), 1);
    let grown = std::fs::metadata(dir.path().join(SNAPSHOT_FILE))
        .unwrap()
        .len();
    assert!(
        grown > full && grown - full < full / 4,
        "a 10-write delta on a 200-write dump: {full} -> {grown} bytes"
    );
    // What a follower would be sent decodes to the latest state.
    let mut sent = Vec::new();
    io::Read::read_to_end(&mut built.snapshot.reader().unwrap(), &mut sent).unwrap();
    assert_eq!(Store::from_snapshot(&sent).unwrap().revision(), 210);
    assert_eq!(must_reopen(dir.path()).await, (210, Some(log_id(210))));

    // A third build appends again; a restart still lands on the latest.
    must_apply(&mut sm, 211, 215).await;
    must_build(&mut sm).await;
    assert_eq!(sm.metrics().snapshot_deltas.load(Ordering::Relaxed), 2);
    assert_eq!(must_reopen(dir.path()).await, (215, Some(log_id(215))));
}

/// DeltaAppend, HeaderLast: a crash between a delta's body and its header leaves a section
/// with a blank header; the next start cuts it off and loads the file as it was before that
/// append. A corrupt byte inside a finished delta refuses to start, naming the file.
#[tokio::test]
async fn an_unfinished_delta_is_cut_off_and_a_corrupt_one_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(SNAPSHOT_FILE);
    let mut sm = StateMachineStore::open(dir.path()).unwrap();
    must_apply(&mut sm, 1, 50).await;
    must_build(&mut sm).await;
    must_apply(&mut sm, 51, 60).await;
    must_build(&mut sm).await;
    let before = std::fs::read(&path).unwrap();
    must_apply(&mut sm, 61, 70).await;
    must_build(&mut sm).await;
    let after = std::fs::read(&path).unwrap();
    drop(sm);

    // The last append's header never reached the disk.
    let mut torn = after.clone();
    torn[before.len()..before.len() + crate::store::DELTA_HEADER].fill(0);
    std::fs::write(&path, &torn).unwrap();
    assert_eq!(must_reopen(dir.path()).await, (60, Some(log_id(60))));
    assert_eq!(std::fs::read(&path).unwrap(), before, "cut back to before");

    // Only part of its body reached the disk, and no header.
    let mut torn = after.clone();
    torn.truncate(before.len() + 20);
    torn[before.len()..].fill(0);
    std::fs::write(&path, &torn).unwrap();
    assert_eq!(must_reopen(dir.path()).await, (60, Some(log_id(60))));

    // A flipped byte in the finished delta's body.
    let mut bad = after.clone();
    let i = before.len() + crate::store::DELTA_HEADER + 3;
    bad[i] ^= 0x10;
    std::fs::write(&path, &bad).unwrap();
    let err = StateMachineStore::open(dir.path()).err().expect("refused");
    assert!(
        err.to_string().contains(&path.display().to_string())
            && err.to_string().contains("checksum"),
        "{err}"
    );
}

/// DeltaWithinWindow and RebaseAtBase: once compaction passes the current file's revision,
/// or the deltas outgrow the full dump, the next build is a full dump again.
#[tokio::test]
async fn builds_dump_everything_again_past_compaction_or_a_full_dump_of_deltas() {
    let dir = tempfile::tempdir().unwrap();
    let mut sm = StateMachineStore::open(dir.path()).unwrap();
    let deltas = |sm: &StateMachineStore| sm.metrics().snapshot_deltas.load(Ordering::Relaxed);
    must_apply(&mut sm, 1, 20).await;
    must_build(&mut sm).await;
    must_apply(&mut sm, 21, 30).await;
    must_build(&mut sm).await;
    assert_eq!(deltas(&sm), 1);

    // Compaction to revision 31, past the file's 30.
    must_apply(&mut sm, 31, 31).await;
    let compact = Entry::new_normal(
        log_id(32),
        Request {
            client: None,
            op: Op::Compact { revision: 31 },
            at_ms: 0,
        }
        .into(),
    );
    sm.apply(futures::stream::iter([Ok((compact, None))]))
        .await
        .unwrap();
    must_build(&mut sm).await;
    assert_eq!(
        deltas(&sm),
        1,
        "a full dump after compaction passed the file"
    );
    assert_eq!(must_reopen(dir.path()).await, (31, Some(log_id(32))));

    // Deltas as large as the 31-key dump: the next build is full.
    let mut index = 33;
    let mut full_after = None;
    for _ in 0..6 {
        must_apply(&mut sm, index, index + 14).await;
        index += 15;
        let before = deltas(&sm);
        must_build(&mut sm).await;
        if deltas(&sm) == before {
            full_after = Some(before);
            break;
        }
    }
    assert!(
        full_after.is_some(),
        "never rebased: {} deltas",
        deltas(&sm)
    );
    let (revision, last) = must_reopen(dir.path()).await;
    assert_eq!(last, Some(log_id(index - 1)));
    assert_eq!(
        revision,
        index - 2,
        "one entry (the compaction) made no revision"
    );
}

/// DeltaAppend across a transfer: a follower installs the leader's dump and deltas (the bytes
/// a transfer sends), holds the same state, restarts to it, and its own next builds are a full
/// dump and then deltas again.
#[tokio::test]
async fn a_snapshot_with_deltas_installs_restarts_and_is_built_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut leader = StateMachineStore::open(&dir.path().join("leader")).unwrap();
    must_apply(&mut leader, 1, 100).await;
    must_build(&mut leader).await;
    must_apply(&mut leader, 101, 110).await;
    let sent = must_build(&mut leader).await;
    assert_eq!(leader.metrics().snapshot_deltas.load(Ordering::Relaxed), 1);

    // The follower receives the store bytes as a transfer would: read from the leader's
    // file, through a temp file of its own, decoded and checked there.
    let follower_dir = dir.path().join("follower");
    let mut follower = StateMachineStore::open(&follower_dir).unwrap();
    let mut bytes = Vec::new();
    io::Read::read_to_end(&mut sent.snapshot.reader().unwrap(), &mut bytes).unwrap();
    let received = crate::raft::snapshot_transfer::receive_whole(&follower, &bytes).unwrap();
    follower
        .install_snapshot(&sent.meta, received)
        .await
        .unwrap();
    let want = leader.read().store.to_snapshot();
    assert_eq!(follower.read().store.to_snapshot(), want);
    assert_eq!(must_reopen(&follower_dir).await, (110, Some(log_id(110))));

    // Its own builds: a full dump first (no delta onto an installed file), then deltas.
    let deltas = |sm: &StateMachineStore| sm.metrics().snapshot_deltas.load(Ordering::Relaxed);
    must_apply(&mut follower, 111, 120).await;
    must_build(&mut follower).await;
    assert_eq!(deltas(&follower), 0);
    must_apply(&mut follower, 121, 125).await;
    must_build(&mut follower).await;
    assert_eq!(deltas(&follower), 1);
    assert_eq!(must_reopen(&follower_dir).await, (125, Some(log_id(125))));
}
