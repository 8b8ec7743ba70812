//! Operations on a running three-node cluster: `RAFT.INFO`, `ROLE` and `INFO
//! replication` shapes, `RAFT.SNAPSHOT`, leadership transfer under load, a rolling restart with
//! `SHUTDOWN`, and the HTTP port (`/metrics`, `/health`, `/ready`).
//!
//! Stalls are measured and printed (the README's drill figures come from these runs); the
//! assertions are about correctness (no acknowledged write lost, the right leader, the right
//! shapes), with only a generous sanity bound on a stall.

use crate::common;

use std::time::{Duration, Instant};

use common::{phase, try_info, Cluster, LoadWriter};

const LEADER_TIMEOUT: Duration = Duration::from_secs(15);
/// A sanity bound, not a performance claim: a transfer that takes this long is broken.
const STALL_SANITY: Duration = Duration::from_secs(5);

fn cmd(c: &Cluster, id: u64, args: &[&str]) -> Result<redis::Value, String> {
    let mut con = c.try_connect(id)?;
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(&mut con).map_err(|e| e.to_string())
}

fn all_addrs(c: &Cluster) -> Vec<String> {
    c.ids().iter().map(|id| c.redis_addr(*id)).collect()
}

#[test]
fn raft_info_role_replication_snapshot_metrics_and_health() {
    let mut c = Cluster::builder().name("ops").metrics().start();
    let leader = c.must_leader(LEADER_TIMEOUT);
    let follower = c.ids().into_iter().find(|id| *id != leader).unwrap();
    for i in 0..20 {
        c.must_set(leader, &format!("k{i}"), "v");
    }

    {
        phase("RAFT.INFO names the leader, the members and, on the leader, each match index");
        let info = c.must_wait(Duration::from_secs(10), "RAFT.INFO with every match", |c| {
            let i = c.try_raft_info(leader)?;
            let all_matched = i.members.iter().all(|m| !m["match_index"].is_empty());
            if all_matched && i.members.len() == 3 {
                Ok(i)
            } else {
                Err(format!("{i:?}"))
            }
        });
        assert_eq!(info.get("id"), leader.to_string());
        assert_eq!(info.get("role"), "leader");
        assert_eq!(info.get("leader"), leader.to_string());
        assert_eq!(info.get("leader_redis_addr"), c.redis_addr(leader));
        assert_eq!(info.get("joint"), "0");
        assert_eq!(info.voters(), vec![1, 2, 3]);
        for m in &info.members {
            let id: u64 = m["id"].parse().unwrap();
            assert_eq!(m["redis_addr"], c.redis_addr(id));
            assert_eq!(m["raft_addr"], c.raft_addr(id));
            assert!(m["lag"].parse::<u64>().is_ok(), "{m:?}");
        }
        let commit: u64 = info.get("commit_index").parse().unwrap();
        assert!(commit >= 20, "{info:?}");

        let f = c.try_raft_info(follower).unwrap();
        assert_eq!(f.get("role"), "follower");
        assert_eq!(f.get("leader"), leader.to_string());
        assert!(
            f.members.iter().all(|m| m["match_index"].is_empty()),
            "{f:?}"
        );
    }

    {
        phase("ROLE and INFO replication answer with Redis 7.0's shapes and field order");
        let mut con = c.must_connect(leader);
        let role: Vec<redis::Value> = redis::cmd("ROLE").query(&mut con).unwrap();
        assert_eq!(role.len(), 3);
        assert!(matches!(role[1], redis::Value::Int(_)));
        let redis::Value::Array(replicas) = &role[2] else {
            panic!("{role:?}")
        };
        assert_eq!(replicas.len(), 2);
        let text: String = redis::cmd("INFO")
            .arg("replication")
            .query(&mut con)
            .unwrap();
        let keys: Vec<&str> = text
            .lines()
            .filter_map(|l| l.split_once(':').map(|(k, _)| k))
            .collect();
        // redis-server 7.0.15, a primary with two replicas.
        let want = [
            "role",
            "connected_slaves",
            "slave0",
            "slave1",
            "master_failover_state",
            "master_replid",
            "master_replid2",
            "master_repl_offset",
            "second_repl_offset",
            "repl_backlog_active",
            "repl_backlog_size",
            "repl_backlog_first_byte_offset",
            "repl_backlog_histlen",
        ];
        assert_eq!(keys, want, "{text}");
        assert!(text.contains("slave0:ip=127.0.0.1,port="), "{text}");

        let mut con = c.must_connect(follower);
        let role: Vec<redis::Value> = redis::cmd("ROLE").query(&mut con).unwrap();
        assert_eq!(role.len(), 5);
        assert_eq!(
            redis::from_redis_value::<String>(&role[0]).unwrap(),
            "slave"
        );
        assert_eq!(
            role[2],
            redis::Value::Int(i64::from(c.redis_port(leader))),
            "{role:?}"
        );
        let info = try_info(&mut con, "replication").unwrap();
        let text: String = redis::cmd("INFO")
            .arg("replication")
            .query(&mut con)
            .unwrap();
        let keys: Vec<&str> = text
            .lines()
            .filter_map(|l| l.split_once(':').map(|(k, _)| k))
            .collect();
        // redis-server 7.0.15, a connected replica.
        let want = [
            "role",
            "master_host",
            "master_port",
            "master_link_status",
            "master_last_io_seconds_ago",
            "master_sync_in_progress",
            "slave_read_repl_offset",
            "slave_repl_offset",
            "slave_priority",
            "slave_read_only",
            "replica_announced",
            "connected_slaves",
            "master_failover_state",
            "master_replid",
            "master_replid2",
            "master_repl_offset",
            "second_repl_offset",
            "repl_backlog_active",
            "repl_backlog_size",
            "repl_backlog_first_byte_offset",
            "repl_backlog_histlen",
        ];
        assert_eq!(keys, want, "{text}");
        assert_eq!(info["master_port"], c.redis_port(leader).to_string());
        assert_eq!(info["master_link_status"], "up");
    }

    {
        phase("RAFT.SNAPSHOT returns once a snapshot covers the applied index");
        let applied = c.must_raft_u64(follower, "raft_applied_index");
        let r = cmd(&c, follower, &["RAFT.SNAPSHOT"]).unwrap();
        assert_eq!(r, redis::Value::Okay);
        let snap = c.must_raft_u64(follower, "raft_snapshot_index");
        assert!(snap >= applied, "snapshot {snap} < applied {applied}");
    }

    {
        phase("/metrics exposes every family, named redraft_<subsystem>_<name>_<unit>");
        let (status, body) = c.try_http_get(follower, "/metrics").unwrap();
        assert_eq!(status, 200);
        for name in [
            "redraft_raft_term",
            "redraft_raft_role{role=\"follower\"} 1",
            "redraft_raft_leader_changes_total",
            "redraft_raft_proposals_committed_total",
            "redraft_raft_proposals_failed_total",
            "redraft_raft_commit_index",
            "redraft_raft_apply_index",
            "redraft_log_flush_duration_seconds_bucket{le=\"+Inf\"}",
            "redraft_log_flush_entries_bucket",
            "redraft_snapshot_builds_total 1",
            "redraft_snapshot_build_duration_seconds_count 1",
            "redraft_read_index_rounds_total",
            "redraft_server_connected_clients",
            "redraft_server_commands_total{command=\"raft.snapshot\"} 1",
            "redraft_store_keys 20",
            "redraft_store_revision 20",
        ] {
            assert!(body.contains(name), "/metrics lacks {name}:\n{body}");
        }
        for line in body.lines().filter(|l| !l.starts_with('#')) {
            assert!(line.starts_with("redraft_"), "{line}");
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "not a number: {line}");
        }
        let (_, body) = c.try_http_get(leader, "/metrics").unwrap();
        assert!(
            body.contains("redraft_raft_peer_lag_entries{peer=")
                && body.contains("role=\"leader\"} 1"),
            "{body}"
        );
        let proposals = body
            .lines()
            .find_map(|l| l.strip_prefix("redraft_raft_proposals_committed_total "))
            .and_then(|v| v.parse::<u64>().ok());
        assert_eq!(proposals, Some(20), "{body}");
        assert_eq!(c.try_http_get(leader, "/nope").unwrap().0, 404);
    }

    {
        phase("/health and /ready are 200 on every node of a healthy cluster");
        for id in c.ids() {
            c.must_wait(Duration::from_secs(5), "/health 200", |c| {
                match c.try_http_get(id, "/health")? {
                    (200, _) => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            });
            assert_eq!(c.try_http_get(id, "/ready").unwrap().0, 200);
        }
    }

    {
        phase("/health turns 503 on a follower that lost its leader and its quorum");
        let other = c
            .ids()
            .into_iter()
            .find(|id| *id != leader && *id != follower)
            .unwrap();
        c.kill9(leader);
        c.kill9(other);
        let body = c.must_wait(Duration::from_secs(10), "/health 503", |c| {
            match c.try_http_get(follower, "/health")? {
                (503, body) => Ok(body),
                other => Err(format!("{other:?}")),
            }
        });
        eprintln!("           /health on node {follower}: {}", body.trim());
        assert_eq!(c.try_http_get(follower, "/ready").unwrap().0, 503);

        phase("/health is 200 again once a leader is back");
        c.restart(leader);
        c.restart(other);
        c.must_wait(Duration::from_secs(15), "/health 200 again", |c| {
            match c.try_http_get(follower, "/health")? {
                (200, _) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        });
    }
}

#[test]
fn transfer_under_load_moves_leadership_without_failed_writes() {
    let mut c = Cluster::builder().name("transfer").start();
    let leader = c.must_leader(LEADER_TIMEOUT);
    let others: Vec<u64> = c.ids().into_iter().filter(|id| *id != leader).collect();
    let (target, via) = (others[0], others[1]);

    {
        phase("refusals: a node that is not a voter, a missing argument");
        let e = cmd(&c, leader, &["RAFT.TRANSFER", "99"]).unwrap_err();
        assert!(e.contains("node 99 is not a voter"), "{e}");
        let e = cmd(&c, leader, &["RAFT.TRANSFER", "x"]).unwrap_err();
        assert!(e.contains("not an integer"), "{e}");
    }

    let writer = LoadWriter::start("t", all_addrs(&c));
    std::thread::sleep(Duration::from_millis(500));

    let started = Instant::now();
    {
        phase("RAFT.TRANSFER <target>, sent to the third node (forwarded to the leader)");
        let r = cmd(&c, via, &["RAFT.TRANSFER", &target.to_string()]).unwrap();
        assert_eq!(r, redis::Value::Int(target as i64));
        assert_eq!(c.must_leader(LEADER_TIMEOUT), target);
    }
    let took = started.elapsed();
    std::thread::sleep(Duration::from_millis(500));

    let started2 = Instant::now();
    {
        phase("RAFT.TRANSFER with no id picks the most caught-up voter");
        let r = cmd(&c, target, &["RAFT.TRANSFER"]).unwrap();
        let redis::Value::Int(new) = r else {
            panic!("{r:?}")
        };
        assert_ne!(new as u64, target);
        assert_eq!(c.must_leader(LEADER_TIMEOUT), new as u64);
    }
    let ended2 = Instant::now();
    std::thread::sleep(Duration::from_millis(500));
    let report = writer.finish();

    let stall1 = report.max_gap(started, started + took);
    let stall2 = report.max_gap(started2, ended2);
    eprintln!(
        "           transfer stall: {stall1:?} (named target), {stall2:?} (any); {} writes acked",
        report.acked.len()
    );
    assert!(
        report.failed.is_empty(),
        "writes failed: {:?}",
        report.failed
    );
    assert!(stall1 < STALL_SANITY && stall2 < STALL_SANITY);

    {
        phase("every acknowledged write is there");
        let leader = c.must_leader(LEADER_TIMEOUT);
        c.must_read_all(leader, &report.acked, Duration::from_secs(30));
    }
}

#[test]
fn rolling_restart_with_shutdown_loses_no_write() {
    let mut c = Cluster::builder().name("rolling").start();
    c.must_leader(LEADER_TIMEOUT);
    let writer = LoadWriter::start("r", all_addrs(&c));
    std::thread::sleep(Duration::from_millis(300));

    let mut stalls = Vec::new();
    for id in c.ids() {
        let was_leader = c.must_leader(LEADER_TIMEOUT) == id;
        phase(&format!(
            "SHUTDOWN node {id} ({}), then restart it",
            if was_leader {
                "the leader"
            } else {
                "a follower"
            }
        ));
        let started = Instant::now();
        {
            let mut con = c.must_connect(id);
            // Redis closes the connection without a reply.
            let r: redis::RedisResult<redis::Value> = redis::cmd("SHUTDOWN").query(&mut con);
            assert!(r.is_err(), "SHUTDOWN answered {r:?}");
        }
        assert_eq!(c.must_exit(id, Duration::from_secs(10)), Some(0));
        let stopped = Instant::now();
        if was_leader {
            assert!(c.log_contains(id, "leadership handed over before stopping"));
        }
        c.restart(id);
        let leader = c.must_leader(LEADER_TIMEOUT);
        let commit = c.must_raft_u64(leader, "raft_commit_index");
        c.must_wait(
            Duration::from_secs(15),
            "the restarted node caught up",
            |c| {
                let applied = c.try_raft_u64(id, "raft_applied_index")?;
                (applied >= commit)
                    .then_some(())
                    .ok_or(format!("{applied} < {commit}"))
            },
        );
        stalls.push((id, was_leader, started, stopped));
    }
    std::thread::sleep(Duration::from_millis(300));
    let report = writer.finish();
    for (id, was_leader, from, to) in &stalls {
        eprintln!(
            "           node {id} ({}): write stall {:?}",
            if *was_leader { "leader" } else { "follower" },
            report.max_gap(*from, *to)
        );
        assert!(report.max_gap(*from, *to) < STALL_SANITY);
    }
    eprintln!(
        "           {} writes acked, {} failed (connection to the stopping node)",
        report.acked.len(),
        report.failed.len()
    );
    let leader = c.must_leader(LEADER_TIMEOUT);
    c.must_read_all(leader, &report.acked, Duration::from_secs(30));
}
