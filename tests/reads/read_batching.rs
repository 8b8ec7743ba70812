//! Batched linearizable reads (`src/raft/read.rs`, BatchBarrier in `commands::read_gate`):
//! reads share ReadIndex rounds, and sharing never costs read-your-writes.
//!
//! - A pipeline of 200 GETs costs a handful of ReadIndex rounds, not 200.
//! - Concurrent readers on a follower share rounds (rounds < reads).
//! - On a follower, a pipeline `SET k i; GET k` always reads the value just written: a write
//!   in the batch clears the barrier, so the next read waits for this node to apply it.

use crate::common;

use std::thread;
use std::time::Duration;

use common::{connect, phase, Cluster};

fn rounds_and_reads(c: &mut Cluster, id: u64) -> (u64, u64) {
    (
        c.must_raft_u64(id, "raft_read_index_rounds"),
        c.must_raft_u64(id, "raft_read_index_reads"),
    )
}

#[test]
fn reads_share_rounds_and_keep_read_your_writes() {
    let mut c = Cluster::start();
    let leader = c.must_leader(Duration::from_secs(20));
    let follower = c.ids().into_iter().find(|&id| id != leader).unwrap();
    let mut con = c.must_connect(follower);
    let _: () = redis::cmd("SET").arg("k").arg("0").query(&mut con).unwrap();

    {
        phase("a pipeline of 200 GETs on a follower shares a few rounds");
        let (r0, _) = rounds_and_reads(&mut c, follower);
        let mut pipe = redis::pipe();
        for _ in 0..200 {
            pipe.cmd("GET").arg("k");
        }
        let got: Vec<String> = pipe.query(&mut con).unwrap();
        assert!(got.iter().all(|v| v == "0"), "{got:?}");
        let (r1, _) = rounds_and_reads(&mut c, follower);
        // INFO's own connection does no reads; allow for the pipeline arriving in pieces.
        assert!(
            r1 - r0 <= 20,
            "200 pipelined GETs took {} ReadIndex rounds",
            r1 - r0
        );
    }

    {
        phase("pipelined SET k i; GET k on a follower reads i every time");
        let mut pipe = redis::pipe();
        for i in 1..=100 {
            pipe.cmd("SET").arg("k").arg(i).ignore();
            pipe.cmd("GET").arg("k");
        }
        let got: Vec<u64> = pipe.query(&mut con).unwrap();
        assert_eq!(got, (1..=100).collect::<Vec<u64>>());
    }

    {
        phase("8 concurrent readers on a follower share rounds");
        let (r0, n0) = rounds_and_reads(&mut c, follower);
        let addr = c.redis_addr(follower);
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let addr = addr.clone();
                thread::spawn(move || {
                    let mut con = connect(&addr, Duration::from_secs(5)).unwrap();
                    for _ in 0..100 {
                        let v: String = redis::cmd("GET").arg("k").query(&mut con).unwrap();
                        assert_eq!(v, "100");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let (r1, n1) = rounds_and_reads(&mut c, follower);
        assert_eq!(n1 - n0, 800, "every GET passed the read gate once");
        assert!(r1 - r0 < 800, "800 concurrent GETs took {} rounds", r1 - r0);
        eprintln!("800 concurrent GETs: {} ReadIndex rounds", r1 - r0);
    }
}
