//! Snapshots follow revisions, not log entries (SnapshotEveryRevisions,
//! `src/raft/snapshot_trigger.rs`): pipelined writes travel many to a Raft entry, and a node
//! that counted entries would keep them all in its log, replaying every one at restart.

use crate::common;

use std::time::Duration;

use common::{phase, Cluster};

#[test]
fn batched_writes_are_snapshotted_every_snapshot_every_revisions() {
    let mut c = Cluster::builder().snapshot_every(200).start();
    let leader = c.must_leader(Duration::from_secs(20));

    phase("2,000 writes pipelined 500 at a time: a few log entries, 2,000 revisions");
    let entries_before = c.must_info(leader, "raft")["raft_last_log_index"]
        .parse::<u64>()
        .unwrap();
    let mut con = c.must_connect(leader);
    for batch in 0..4 {
        let mut pipe = redis::pipe();
        for i in 0..500 {
            pipe.cmd("SET")
                .arg(format!("k{batch}:{i}"))
                .arg("v")
                .ignore();
        }
        let () = pipe.query(&mut con).unwrap();
    }
    let entries = c.must_info(leader, "raft")["raft_last_log_index"]
        .parse::<u64>()
        .unwrap()
        - entries_before;
    assert!(
        entries < 200,
        "the writes took {entries} entries: batching is off, this test shows nothing"
    );

    phase("every node has a snapshot covering most of the writes");
    for id in c.ids() {
        c.must_wait(
            Duration::from_secs(20),
            &format!("node {id} took a snapshot"),
            |c| {
                let info = c.must_info(id, "raft");
                let snapshot: u64 = info["raft_snapshot_index"].parse().unwrap();
                let applied: u64 = info["raft_applied_index"].parse().unwrap();
                if snapshot > 0 && applied >= snapshot {
                    Ok(())
                } else {
                    Err(format!("snapshot index {snapshot}, applied {applied}"))
                }
            },
        );
    }
}
