//! Replication pipelined (AppendPipelined, `src/raft/pipeline.rs`): with several
//! AppendEntries in flight per follower, a write's entries leave for the followers while the
//! previous write's commit probe is still on its way, so one client's sequential writes each
//! wait one round trip to a follower. With one request per round trip (openraft's default
//! transport, the failpoint `append_sequential`) each waits two: the probe's, then its own.
//!
//! The round trip is lengthened with the test-only failpoint `peer_answer_delay_us` (every
//! answer from a peer reaches its caller that much later; no `netem` here), far above a
//! debug build's own time per write, so the two behaviours are apart by a round trip per write.

use crate::common;

use std::time::{Duration, Instant};

use common::{phase, Cluster};

/// Answers from peers are held this long.
const DELAY_MS: u64 = 60;
const WRITES: u32 = 10;

#[test]
fn sequential_writes_wait_one_round_trip_each_not_two() {
    let failpoints = format!("peer_answer_delay_us={}", DELAY_MS * 1000);
    let mut b = Cluster::builder()
        .heartbeat_ms(400)
        .election_timeout_ms(2000);
    for id in 1..=3 {
        b = b.node_env(id, "REDRAFT_FAILPOINTS", &failpoints);
    }
    let mut c = b.start();
    let leader = c.must_leader(Duration::from_secs(30));
    let mut con = c.must_connect(leader);
    let _: String = redis::cmd("SET")
        .arg("warm")
        .arg("up")
        .query(&mut con)
        .unwrap();
    phase(&format!(
        "{WRITES} sequential SETs on leader {leader}, peer answers held {DELAY_MS} ms"
    ));
    let started = Instant::now();
    for i in 0..WRITES {
        let ok: String = redis::cmd("SET")
            .arg(format!("k{i}"))
            .arg(i)
            .query(&mut con)
            .unwrap_or_else(|e| panic!("SET k{i}: {e}"));
        assert_eq!(ok, "OK");
    }
    let per_write = started.elapsed() / WRITES;
    phase(&format!("{per_write:?} per write"));
    // One round trip is DELAY_MS; two would be twice that. The line between them leaves half
    // a round trip for the debug build's own work and the fsyncs.
    let line = Duration::from_millis(DELAY_MS * 3 / 2);
    assert!(
        per_write >= Duration::from_millis(DELAY_MS),
        "a write took {per_write:?}, less than the held answer ({DELAY_MS} ms): the failpoint \
         is not armed, so this test shows nothing"
    );
    assert!(
        per_write < line,
        "a write took {per_write:?} (line {line:?}): writes wait a second round trip, as with \
         one AppendEntries in flight per follower"
    );
}
