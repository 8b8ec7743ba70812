//! A follower syncs an append on Raft's own thread when nothing else is syncing
//! (FollowerSyncsInline, `src/raft/wal/sync.rs`): one client's sequential writes are synced
//! there on both followers (`INFO raft` `raft_log_syncs_inline`), never on the leader, whose
//! sync runs beside replication; every acknowledged write is on every node. With the failpoint
//! `follower_sync_inline_off` no sync is made inline.

use crate::common;

use std::time::Duration;

use common::{try_get, try_info, Cluster};

const WRITES: usize = 50;

/// `raft_log_syncs_inline` of every node after [`WRITES`] sequential SETs on the leader, with
/// `failpoints` on every node; checks each write is on every node.
fn inline_syncs_after_writes(failpoints: Option<&str>) -> (u64, Vec<(u64, u64)>) {
    let mut b = Cluster::builder();
    if let Some(f) = failpoints {
        for id in 1..=3 {
            b = b.node_env(id, "REDRAFT_FAILPOINTS", f);
        }
    }
    let mut c = b.start();
    let leader = c.must_leader(Duration::from_secs(60));
    let mut con = c.must_connect(leader);
    for i in 0..WRITES {
        let _: String = redis::cmd("SET")
            .arg(format!("k{i}"))
            .arg(i)
            .query(&mut con)
            .unwrap();
    }
    let mut counts = Vec::new();
    for id in c.ids() {
        let mut on = c.must_connect(id);
        let _: String = redis::cmd("READMODE").arg("stale").query(&mut on).unwrap();
        // A follower applies what it synced once it learns the commit: wait for the last.
        let last = format!("k{}", WRITES - 1);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while try_get(&mut on, &last).unwrap().is_none() {
            assert!(
                std::time::Instant::now() < deadline,
                "node {id} lacks {last}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        for i in 0..WRITES {
            let got = try_get(&mut on, &format!("k{i}")).unwrap();
            assert_eq!(got, Some(i.to_string()), "node {id}, k{i}");
        }
        let info = try_info(&mut on, "raft").unwrap();
        let inline: u64 = info["raft_log_syncs_inline"].parse().unwrap();
        counts.push((id, inline));
    }
    (leader, counts)
}

#[test]
fn followers_sync_one_clients_writes_on_the_raft_thread() {
    let (leader, counts) = inline_syncs_after_writes(None);
    for (id, inline) in counts {
        if id == leader {
            assert_eq!(inline, 0, "the leader never syncs inline");
        } else {
            // Each write is one append on a follower; the worker is idle between them. A sync
            // over 2 ms turns the inline path off until a quick one, so a few may queue.
            assert!(
                inline >= (WRITES / 2) as u64,
                "follower {id} synced only {inline} of {WRITES} appends inline"
            );
        }
    }
}

#[test]
fn the_failpoint_keeps_every_sync_on_the_worker() {
    let (_, counts) = inline_syncs_after_writes(Some("follower_sync_inline_off"));
    assert!(counts.iter().all(|(_, n)| *n == 0), "{counts:?}");
}
