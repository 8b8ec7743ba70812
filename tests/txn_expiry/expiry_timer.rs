//! The expiry timer wakes for deadlines and leadership, not for writes (QuietWatchers,
//! `src/raft/expiry.rs`). openraft publishes its full metrics several times per write; a timer
//! that followed them woke on every node for every write (and, on the leader, read the
//! deadline order under the state machine's lock each time). `INFO raft` `raft_expiry_wakeups`
//! counts the timer's wake-ups.
//!
//! - `writes_do_not_wake_the_expiry_timer_and_deadlines_still_do`: a run of writes without
//!   TTLs leaves every node's count where it was, but for the leader's idle recheck (one per
//!   second); then a key with a deadline wakes the leader's timer and expires on every node.

use crate::common;

use std::time::{Duration, Instant};

use common::{phase, try_info, Cluster};

/// Writes in the run that must not wake the timer.
const WRITES: usize = 300;
/// How long a key may take to be gone on every node after its deadline (liveness, not speed).
const LAG_BOUND: Duration = Duration::from_secs(5);

fn raft_field(c: &mut Cluster, id: u64, field: &str) -> u64 {
    let mut con = c.must_connect(id);
    let info = try_info(&mut con, "raft").unwrap_or_else(|e| panic!("node {id}: {e}"));
    info.get(field)
        .unwrap_or_else(|| panic!("node {id}: INFO raft has no {field}"))
        .parse()
        .unwrap_or_else(|e| panic!("node {id}: {field}: {e}"))
}

/// Waits until every node has applied at least `index`.
fn wait_applied(c: &mut Cluster, ids: &[u64], index: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    for &id in ids {
        while raft_field(c, id, "raft_applied_index") < index {
            assert!(
                Instant::now() < deadline,
                "node {id} did not apply index {index} within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn writes_do_not_wake_the_expiry_timer_and_deadlines_still_do() {
    let mut c = Cluster::start();
    let leader = c.must_leader(Duration::from_secs(20));
    let ids = c.ids();
    let mut con = c.must_connect(leader);
    let _: String = redis::cmd("SET")
        .arg("warm")
        .arg("up")
        .query(&mut con)
        .unwrap();
    let committed = raft_field(&mut c, leader, "raft_commit_index");
    wait_applied(&mut c, &ids, committed);

    phase(&format!("{WRITES} writes without a TTL on leader {leader}"));
    let before: Vec<u64> = ids
        .iter()
        .map(|&id| raft_field(&mut c, id, "raft_expiry_wakeups"))
        .collect();
    let started = Instant::now();
    for i in 0..WRITES {
        let _: String = redis::cmd("SET")
            .arg(format!("k{i}"))
            .arg("v")
            .query(&mut con)
            .unwrap();
    }
    let committed = raft_field(&mut c, leader, "raft_commit_index");
    wait_applied(&mut c, &ids, committed);
    let after: Vec<u64> = ids
        .iter()
        .map(|&id| raft_field(&mut c, id, "raft_expiry_wakeups"))
        .collect();
    // The leader's timer rechecks once a second when nothing is due (IDLE_RECHECK); a
    // follower's waits for leadership only.
    let allowed = 2 + started.elapsed().as_secs();
    for (n, &id) in ids.iter().enumerate() {
        let woke = after[n] - before[n];
        println!("node {id}: the expiry timer woke {woke} times during {WRITES} writes");
        assert!(
            woke <= allowed,
            "node {id}: the expiry timer woke {woke} times during {WRITES} writes without a \
             TTL (allowed {allowed}: its idle recheck)"
        );
    }

    phase("a key with a deadline wakes the leader's timer and expires on every node");
    let woken_before = raft_field(&mut c, leader, "raft_expiry_wakeups");
    let _: String = redis::cmd("SET")
        .arg("soon")
        .arg("v")
        .arg("PX")
        .arg(300)
        .query(&mut con)
        .unwrap();
    let set_at = Instant::now();
    for &id in &ids {
        let mut on = c.must_connect(id);
        loop {
            let exists: i64 = redis::cmd("EXISTS").arg("soon").query(&mut on).unwrap();
            if exists == 0 {
                break;
            }
            assert!(
                set_at.elapsed() < Duration::from_millis(300) + LAG_BOUND,
                "node {id}: the key with PX 300 is still there after {:?}",
                set_at.elapsed()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    assert!(
        raft_field(&mut c, leader, "raft_expiry_wakeups") > woken_before,
        "the leader's expiry timer never woke for the deadline"
    );
}
