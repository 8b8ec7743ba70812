//! Early commit (CommittedByDurableMajority, `src/raft/early_commit.rs`): in a three-voter
//! cluster a follower applies a write once the leader's flush and its own make a majority,
//! without waiting for the leader to hear its acknowledgement; and a read on the leader after
//! a client saw the write on that follower sees it too (ReadFloor), though the leader has not
//! yet counted the majority itself.
//!
//! The leader's view is delayed with the test-only failpoint `peer_answer_delay_us` (every
//! answer from a peer reaches its caller that much later): the leader commits a write no
//! sooner than that delay after it, while the followers hear its announcement at once. (An
//! AppendEntries is given up after a heartbeat interval, hence the long one here.)

use crate::common;

use std::time::{Duration, Instant};

use common::{phase, try_get, Cluster};

/// Answers from peers are held this long.
const DELAY_MS: u64 = 400;

#[test]
fn a_follower_applies_a_write_before_the_leader_counts_its_majority() {
    let failpoints = format!("peer_answer_delay_us={}", DELAY_MS * 1000);
    let mut b = Cluster::builder()
        .heartbeat_ms(1500)
        .election_timeout_ms(10000);
    for id in 1..=3 {
        b = b.node_env(id, "REDRAFT_FAILPOINTS", &failpoints);
    }
    let mut c = b.start();
    let leader = c.must_leader(Duration::from_secs(60));
    let follower = *c.ids().iter().find(|id| **id != leader).unwrap();
    let mut on_leader = c.must_connect(leader);
    let _: String = redis::cmd("SET")
        .arg("warm")
        .arg("up")
        .query(&mut on_leader)
        .unwrap();
    let mut stale = c.must_connect(follower);
    let _: String = redis::cmd("READMODE")
        .arg("stale")
        .query(&mut stale)
        .unwrap();
    let mut lease = c.must_connect(leader);
    let _: String = redis::cmd("READMODE")
        .arg("lease")
        .query(&mut lease)
        .unwrap();
    let mut linearizable = c.must_connect(follower);
    // The follower's first ReadIndex through the leader (its peer connection made now).
    assert_eq!(
        try_get(&mut linearizable, "warm").unwrap().as_deref(),
        Some("up")
    );

    phase(&format!(
        "SET on leader {leader}, peer answers held {DELAY_MS} ms; watching follower {follower}"
    ));
    let started = Instant::now();
    let writer = std::thread::spawn(move || {
        let r: redis::RedisResult<String> =
            redis::cmd("SET").arg("k").arg("v1").query(&mut on_leader);
        (r, started.elapsed())
    });
    let seen = loop {
        if try_get(&mut stale, "k").unwrap().as_deref() == Some("v1") {
            break started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "follower {follower} never applied the write"
        );
        std::thread::sleep(Duration::from_millis(2));
    };
    phase(&format!("follower applied it after {seen:?}"));
    // ReadFloor: the leader has not counted the majority yet, but a read after the follower
    // showed the write must show it too, in every mode.
    let read_started = started.elapsed();
    assert_eq!(
        try_get(&mut lease, "k").unwrap().as_deref(),
        Some("v1"),
        "a lease read on the leader after the follower showed the write does not see it"
    );
    assert_eq!(
        try_get(&mut linearizable, "k").unwrap().as_deref(),
        Some("v1"),
        "a linearizable read on the follower does not see its own applied write"
    );
    // The counters name the path it took (`INFO raft`).
    assert!(c.must_raft_u64(leader, "raft_flush_announcements") >= 1);
    assert!(c.must_raft_u64(follower, "raft_early_commits") >= 1);
    let (written, took) = writer.join().unwrap();
    assert_eq!(written.unwrap(), "OK");
    phase(&format!("the SET was answered after {took:?}"));
    assert!(
        took >= Duration::from_millis(DELAY_MS),
        "the SET took {took:?}, less than the held answer ({DELAY_MS} ms): the failpoint is not \
         armed, so this test shows nothing"
    );
    assert!(
        seen < Duration::from_millis(DELAY_MS / 2),
        "follower {follower} applied the write after {seen:?}: it waited for the leader to \
         hear an acknowledgement ({DELAY_MS} ms held), as without early commit"
    );
    assert!(
        read_started < Duration::from_millis(DELAY_MS),
        "the reads began after {read_started:?}, when the leader may have counted the \
         majority: they show nothing"
    );
}

/// ProbeSkippedWhenTold (`src/raft/pipeline.rs`): at one client the leader does not send a
/// follower the commit probe when early commit told it of the flush, and each follower still
/// shows each write at once. The heartbeat (which also carries the commit) is a second here,
/// so a follower that had neither the probe nor early commit's word would show a write only
/// up to a second later.
#[test]
fn sparse_writes_skip_the_commit_probe_and_followers_still_show_each_at_once() {
    let mut c = Cluster::builder()
        .heartbeat_ms(1000)
        .election_timeout_ms(8000)
        .start();
    let leader = c.must_leader(Duration::from_secs(60));
    let mut on_leader = c.must_connect(leader);
    let followers: Vec<u64> = c.ids().into_iter().filter(|id| *id != leader).collect();
    let mut stale: Vec<_> = followers
        .iter()
        .map(|f| {
            let mut conn = c.must_connect(*f);
            let _: String = redis::cmd("READMODE")
                .arg("stale")
                .query(&mut conn)
                .unwrap();
            conn
        })
        .collect();
    let _: String = redis::cmd("SET")
        .arg("warm")
        .arg("up")
        .query(&mut on_leader)
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let mut slowest = Duration::ZERO;
    for i in 0..30 {
        let key = format!("k{i}");
        let _: String = redis::cmd("SET")
            .arg(&key)
            .arg(i)
            .query(&mut on_leader)
            .unwrap();
        let answered = Instant::now();
        for (f, conn) in followers.iter().zip(stale.iter_mut()) {
            loop {
                if try_get(conn, &key).unwrap() == Some(i.to_string()) {
                    break;
                }
                assert!(
                    answered.elapsed() < Duration::from_millis(400),
                    "follower {f} did not show write {i} within 400 ms of its answer: it \
                     waited for the next heartbeat"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        slowest = slowest.max(answered.elapsed());
        std::thread::sleep(Duration::from_millis(10));
    }
    let skipped = c.must_raft_u64(leader, "raft_commit_probes_skipped");
    phase(&format!(
        "30 writes: both followers showed each within {slowest:?}; {skipped} probes skipped"
    ));
    assert!(skipped >= 1, "no commit probe was skipped");
}
