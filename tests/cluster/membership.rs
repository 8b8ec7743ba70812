//! Membership changes on a running cluster: grow 3 → 5 with `redraft --join` and
//! shrink back under a write load, membership across restarts, removing the leader, a removed
//! node that cannot disturb the cluster, and replacing a node whose data dir was wiped (it
//! must not initialise a cluster of its own, and catches up by snapshot once re-added).

use crate::common;

use std::time::Duration;

use common::{phase, Cluster, LoadWriter};

const LEADER_TIMEOUT: Duration = Duration::from_secs(15);

fn cmd(c: &Cluster, id: u64, args: &[&str]) -> Result<redis::Value, String> {
    let mut con = c.try_connect(id)?;
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(&mut con).map_err(|e| e.to_string())
}

/// Waits until node `id`'s RAFT.INFO lists exactly `voters` as voters.
fn must_voters(c: &mut Cluster, id: u64, voters: &[u64]) {
    let what = format!("node {id} to see voters {voters:?}");
    c.must_wait(Duration::from_secs(30), &what, |c| {
        let info = c.try_raft_info(id)?;
        let mut got = info.voters();
        got.sort_unstable();
        (got == voters && info.get("joint") == "0")
            .then_some(())
            .ok_or_else(|| format!("{:?} joint={}", got, info.get("joint")))
    });
}

/// The leader node `id` knows (polled until it knows one).
fn leader_seen_by(c: &mut Cluster, id: u64) -> u64 {
    let what = format!("node {id} to know a leader");
    c.must_wait(LEADER_TIMEOUT, &what, |c| {
        let info = c.try_raft_info(id)?;
        info.get("leader").parse().map_err(|_| format!("{info:?}"))
    })
}

fn term(c: &mut Cluster, id: u64) -> u64 {
    c.must_raft_u64(id, "raft_term")
}

#[test]
fn grow_to_five_and_shrink_to_three_under_load() {
    let mut c = Cluster::builder().name("grow").start();
    c.must_leader(LEADER_TIMEOUT);
    // Through nodes 2 and 3: node 1 is killed below, which would cut the writer off mid-write.
    let addrs: Vec<String> = [2, 3].iter().map(|id| c.redis_addr(*id)).collect();
    let writer = LoadWriter::start("g", addrs);

    {
        phase("nodes 4 and 5 join through node 2 with --join; each becomes a voter");
        c.spawn_join(4, 2);
        c.spawn_join(5, 3);
        for id in [1, 2, 3, 4, 5] {
            must_voters(&mut c, id, &[1, 2, 3, 4, 5]);
        }
        assert!(c.wait_log_contains(4, "joined the cluster as a voter", Duration::from_secs(10)));
        assert!(!c.log_contains(4, "initialising the membership"));
    }

    {
        phase("membership survives restarts: node 1 (cluster.toml lists 1-3) and node 4");
        c.kill9(1);
        c.kill9(4);
        c.restart(1);
        c.restart(4);
        c.must_leader(LEADER_TIMEOUT);
        must_voters(&mut c, 1, &[1, 2, 3, 4, 5]);
        must_voters(&mut c, 4, &[1, 2, 3, 4, 5]);
        assert!(c.wait_log_contains(
            4,
            "already a voter; nothing to join",
            Duration::from_secs(10)
        ));
    }

    {
        phase("RAFT.ADDNODE refuses addresses another member uses");
        let e = cmd(
            &c,
            1,
            &["RAFT.ADDNODE", "9", &c.raft_addr(2), "127.0.0.1:1"],
        )
        .unwrap_err();
        assert!(e.contains("node 2 already uses these addresses"), "{e}");
        let e = cmd(&c, 1, &["RAFT.ADDNODE", "9", "nowhere", "127.0.0.1:1"]).unwrap_err();
        assert!(e.contains("invalid raft_addr"), "{e}");
    }

    {
        phase("remove nodes 5 and 4 (through node 1, forwarded to the leader)");
        for id in [5, 4] {
            let r = cmd(&c, 1, &["RAFT.REMOVENODE", &id.to_string()]).unwrap();
            assert_eq!(r, redis::Value::Okay);
        }
        for id in [1, 2, 3] {
            must_voters(&mut c, id, &[1, 2, 3]);
        }
        let e = cmd(&c, 1, &["RAFT.REMOVENODE", "4"]).unwrap_err();
        assert!(e.contains("node 4 is not a member"), "{e}");
    }

    {
        phase("the removed nodes, still running, do not disturb the cluster");
        let leader = leader_seen_by(&mut c, 1);
        let before = term(&mut c, leader);
        std::thread::sleep(Duration::from_secs(2));
        for id in [1, 2, 3] {
            assert_eq!(leader_seen_by(&mut c, id), leader);
        }
        assert_eq!(
            term(&mut c, leader),
            before,
            "a removed node caused an election"
        );
        c.kill9(4);
        c.kill9(5);
    }

    let report = writer.finish();
    eprintln!(
        "           {} writes acked, {} failed",
        report.acked.len(),
        report.failed.len()
    );
    assert!(
        report.failed.is_empty(),
        "writes failed: {:?}",
        report.failed
    );
    let leader = c.must_leader(LEADER_TIMEOUT);
    c.must_read_all(leader, &report.acked, Duration::from_secs(30));
}

#[test]
fn remove_the_leader_then_replace_it_wiped() {
    let mut c = Cluster::builder()
        .name("replace")
        .snapshot_every(100)
        .max_in_snapshot_log_to_keep(10)
        .start();
    let old = c.must_leader(LEADER_TIMEOUT);
    let rest: Vec<u64> = c.ids().into_iter().filter(|id| *id != old).collect();

    {
        phase("RAFT.REMOVENODE <leader> on the leader itself: the other two carry on");
        let r = cmd(&c, old, &["RAFT.REMOVENODE", &old.to_string()]).unwrap();
        assert_eq!(r, redis::Value::Okay);
        for id in &rest {
            must_voters(&mut c, *id, &rest);
        }
        let leader = c.must_wait(LEADER_TIMEOUT, "a new leader among the rest", |c| {
            let info = c.try_raft_info(rest[0])?;
            let l: u64 = info
                .get("leader")
                .parse()
                .map_err(|_| format!("{info:?}"))?;
            (rest.contains(&l))
                .then_some(l)
                .ok_or(format!("leader {l}"))
        });
        let before = term(&mut c, leader);
        std::thread::sleep(Duration::from_secs(2));
        assert_eq!(
            term(&mut c, leader),
            before,
            "the removed node caused an election"
        );
    }

    let mut kvs = Vec::new();
    {
        phase("300 writes, so that the log is compacted into snapshots");
        let mut con = c.must_connect(rest[0]);
        for i in 0..300 {
            let (k, v) = (format!("w{i}"), format!("v{i}"));
            common::try_set(&mut con, &k, &v).unwrap();
            kvs.push((k, v));
        }
    }

    {
        phase("the removed node loses its data dir and restarts pristine from cluster.toml");
        c.kill9(old);
        c.wipe(old);
        c.restart(old);
        c.must_wait(
            Duration::from_secs(10),
            "the pristine node to refuse to initialise",
            |c| {
                c.log_since_start(old)
                    .contains("will not initialise one")
                    .then_some(())
                    .ok_or("not yet".to_string())
            },
        );
        let info = c.try_raft_info(old).unwrap();
        assert_eq!(info.get("leader"), "", "{info:?}");
        assert!(info.members.is_empty(), "{info:?}");
    }

    {
        phase("RAFT.ADDNODE re-adds it; it catches up by snapshot and serves reads");
        let r = cmd(
            &c,
            rest[1],
            &[
                "RAFT.ADDNODE",
                &old.to_string(),
                &c.raft_addr(old),
                &c.redis_addr(old),
            ],
        )
        .unwrap();
        assert_eq!(r, redis::Value::Okay);
        let mut all = c.ids();
        all.sort_unstable();
        must_voters(&mut c, old, &all);
        assert!(
            !c.snapshot_indexes_since_start(old, "snapshot installed from the leader")
                .is_empty(),
            "node {old} did not catch up by snapshot:\n{}",
            c.log_tail(old)
        );
        c.must_read_all(old, &kvs, Duration::from_secs(30));
        let again = cmd(
            &c,
            rest[0],
            &[
                "RAFT.ADDNODE",
                &old.to_string(),
                &c.raft_addr(old),
                &c.redis_addr(old),
            ],
        )
        .unwrap();
        assert_eq!(again, redis::Value::Okay, "adding a voter again is a no-op");
    }
}
