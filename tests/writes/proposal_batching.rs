//! Proposal batching (`src/raft/batcher.rs`, `src/raft/forward.rs`): the writes of many
//! clients, on every node, travel to the log as few entries, and each is still its own write.
//!
//! - **BatchAsEntries**: 24 clients spread over the three nodes each INCR their own counter 40
//!   times and a shared counter once per round: every reply is the value a one-entry-per-write
//!   log would give (own counter 1, 2, ..., 40; the shared counter's replies all distinct), and
//!   the store's revision grows by exactly the number of writes on every node.
//! - The leader proposed fewer entries than requests (`INFO raft` `raft_proposal_entries` <
//!   `raft_proposal_requests`): with 24 writers and at most two rounds in flight, writes wait
//!   and share entries.

use crate::common;

use std::collections::BTreeSet;
use std::thread;
use std::time::Duration;

use common::{connect, phase, Cluster};

const CLIENTS: u64 = 24;
const ROUNDS: i64 = 40;

fn revision(c: &mut Cluster, id: u64) -> u64 {
    c.must_raft_u64(id, "revision")
}

#[test]
fn many_clients_share_entries_and_keep_their_own_revisions() {
    let mut c = Cluster::start();
    let leader = c.must_leader(Duration::from_secs(20));
    {
        // Every node applies something first, so revisions read below are settled.
        let mut con = c.must_connect(leader);
        let _: () = redis::cmd("SET")
            .arg("warm")
            .arg("1")
            .query(&mut con)
            .unwrap();
    }
    let before = revision(&mut c, leader);
    let entries0 = c.must_raft_u64(leader, "raft_proposal_entries");
    let requests0 = c.must_raft_u64(leader, "raft_proposal_requests");

    phase("24 clients on three nodes INCR their own and a shared counter");
    let addrs: Vec<String> = c.ids().iter().map(|&id| c.redis_addr(id)).collect();
    let workers: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let addr = addrs[i as usize % addrs.len()].clone();
            thread::spawn(move || {
                let mut con = connect(&addr, Duration::from_secs(10)).unwrap();
                let mut shared = Vec::new();
                for round in 1..=ROUNDS {
                    let own: i64 = redis::cmd("INCR")
                        .arg(format!("own:{i}"))
                        .query(&mut con)
                        .unwrap();
                    assert_eq!(own, round, "client {i}: INCR of its own counter");
                    let s: i64 = redis::cmd("INCR").arg("shared").query(&mut con).unwrap();
                    shared.push(s);
                }
                shared
            })
        })
        .collect();
    let mut seen = BTreeSet::new();
    for w in workers {
        for s in w.join().expect("a writer failed") {
            assert!(
                seen.insert(s),
                "two INCRs of the shared counter answered {s}"
            );
        }
    }
    let writes = CLIENTS * ROUNDS as u64 * 2;
    assert_eq!(seen.len() as u64, CLIENTS * ROUNDS as u64);
    assert_eq!(
        seen.iter().next_back().copied(),
        Some(CLIENTS as i64 * ROUNDS)
    );

    phase("every node's revision grew by exactly the number of writes");
    for id in c.ids() {
        let want = before + writes;
        c.must_wait(
            Duration::from_secs(10),
            "the node applied every write",
            |c| {
                let got = c.try_raft_u64(id, "revision")?;
                if got == want {
                    Ok(())
                } else {
                    Err(format!("node {id} at revision {got}, want {want}"))
                }
            },
        );
    }

    phase("the leader proposed fewer entries than requests");
    let entries = c.must_raft_u64(leader, "raft_proposal_entries") - entries0;
    let requests = c.must_raft_u64(leader, "raft_proposal_requests") - requests0;
    // At least: an internal write (expiry, compaction) or a retry may go through it too.
    assert!(
        requests >= writes,
        "{requests} requests through the leader's batcher, {writes} writes"
    );
    assert!(
        entries < requests,
        "{requests} requests in {entries} entries: no write shared an entry"
    );
}
