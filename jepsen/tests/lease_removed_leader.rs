//! A leader that removes itself from the cluster (`RAFT.REMOVENODE` of the leader) must stop
//! serving lease reads before its successor can acknowledge a write (RemovedLeaderNoLease,
//! `src/raft/leader.rs`), on real `redraft` processes.
//!
//! Once the configuration without it is committed, openraft has the removed leader hand over
//! leadership on its own (its `removed_leader_step_down`: a `TriggerTransferLeader` 150 ms
//! later). A transfer is the one way followers give up their lease early (the target's vote
//! request carries the transfer flag), so the successor is elected and acknowledges writes
//! at once, while the old leader's last quorum acknowledgement is still younger than the lease;
//! and a transferring leader sends no heartbeats, so it does not learn of the new term. The
//! lease fast path, decided on openraft's metrics, did not see that transfer (the guard for
//! transfers, TransferGuard, is set only by `RAFT.TRANSFER`), and served the old value: found
//! by the jepsen harness (jepsen/README.md, bug #5).
//!
//! Here on three nodes on 127.0.0.1 with a slow heartbeat (500 ms, election timeout 5000 ms:
//! a lease of 2 s), so the window is wide: a writer sets `k` to 1, 2, 3, ... through a
//! follower while a reader asks the leader for lease reads of `k` every 5 ms; the leader is
//! removed; no read the old leader answers may return a value older than one acknowledged
//! before the read was asked.
//!
//! Needs the redraft binary: `$REDRAFT_BIN`, else `target/debug/redraft`.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jepsen::db::{Db, DbOpts};
use jepsen::resp::Reply;
use support::{call, settle, three_nodes};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_removes_itself_serves_no_stale_lease_read() {
    let run_dir = std::env::temp_dir().join(format!("redraft-lrl-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&run_dir);
    let mut db = Db::setup(DbOpts {
        heartbeat_ms: 500,
        election_timeout_ms: 5000,
        write_timeout_ms: 5000,
        read_mode: "lease".into(),
        ..three_nodes(&run_dir, false)
    })
    .expect("set up the cluster");
    db.start_all().expect("start the nodes");
    let addrs = db.client_addrs();
    let addr = |id: u64| addrs.iter().find(|(i, _)| *i == id).unwrap().1.clone();
    let leader = settle(&addrs, "k", "0").await;
    let follower = addrs
        .iter()
        .map(|(i, _)| *i)
        .find(|&i| i != leader)
        .unwrap();
    eprintln!("leader {leader}; writes through node {follower}");

    let origin = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    // (value, when acknowledged) of every acknowledged write.
    let acked: Arc<Mutex<Vec<(u64, Duration)>>> = Arc::default();
    let writer = {
        let (stop, acked, at) = (stop.clone(), acked.clone(), addr(follower));
        tokio::spawn(async move {
            let mut i = 1u64;
            while !stop.load(Ordering::Relaxed) {
                let v = i.to_string();
                let r = call(
                    &at,
                    "linearizable",
                    &["SET", "k", &v],
                    Duration::from_secs(2),
                )
                .await;
                if matches!(r, Ok(Reply::Simple(ref s)) if s == "OK") {
                    acked.lock().unwrap().push((i, origin.elapsed()));
                    i += 1;
                } else {
                    // Uncertain: never reuse its value (a later write of a smaller value could
                    // then be taken for a stale read).
                    i += 1;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    // (when asked, value) of every lease read the old leader answered.
    let reads: Arc<Mutex<Vec<(Duration, u64)>>> = Arc::default();
    let reader = {
        let (stop, reads, at) = (stop.clone(), reads.clone(), addr(leader));
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let asked = origin.elapsed();
                let r = call(&at, "lease", &["GET", "k"], Duration::from_millis(300)).await;
                if let Ok(Reply::Bulk(Some(v))) = r {
                    let v: u64 = String::from_utf8_lossy(&v).parse().expect("a number");
                    reads.lock().unwrap().push((asked, v));
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let removed_at = origin.elapsed();
    let r = call(
        &addr(leader),
        "linearizable",
        &["RAFT.REMOVENODE", &leader.to_string()],
        Duration::from_secs(10),
    )
    .await;
    eprintln!("RAFT.REMOVENODE {leader} at {removed_at:?}: {r:?}");
    assert!(
        matches!(r, Ok(Reply::Simple(ref s)) if s == "OK"),
        "RAFT.REMOVENODE {leader}: {r:?}"
    );
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    reader.await.unwrap();
    db.teardown();

    let acked = acked.lock().unwrap().clone();
    let reads = reads.lock().unwrap().clone();
    let after: Vec<_> = acked.iter().filter(|(_, t)| *t > removed_at).collect();
    eprintln!(
        "{} writes acknowledged ({} after the removal), {} lease reads answered by node {leader} \
         ({} asked after the removal)",
        acked.len(),
        after.len(),
        reads.len(),
        reads.iter().filter(|(t, _)| *t > removed_at).count()
    );
    assert!(
        after.len() > 10,
        "the writes through node {follower} did not go on after the removal: nothing tested"
    );
    for (asked, v) in &reads {
        let newest = acked
            .iter()
            .filter(|(_, t)| t < asked)
            .map(|(i, _)| *i)
            .max();
        if let Some(newest) = newest {
            assert!(
                *v >= newest,
                "stale lease read: node {leader}, removed at {removed_at:?}, answered k={v} to a \
                 read asked at {asked:?}, after k={newest} was acknowledged"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&run_dir);
}
