//! ACL users are cluster state.
//!
//! `ACL SETUSER` sent to a follower is a Raft entry: every node enforces the user (its
//! passwords, its commands and key patterns) with no further step; the users survive a restart
//! of every node from snapshots whose log was purged (so they travel in the snapshot, not only
//! in the log); `ACL DELUSER` through the leader closes the user's connections on the other
//! nodes and refuses its logins everywhere.

use crate::common;

use std::time::Duration;

use common::{phase, Cluster};
use redis::Value;

fn run(con: &mut redis::Connection, args: &[&str]) -> Result<Value, String> {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query::<Value>(con).map_err(|e| e.to_string())
}

/// Logs in as `app` on node `id` and checks what it may do there.
fn check_app_enforced(c: &mut Cluster, id: u64) -> Result<(), String> {
    let mut con = c.try_connect(id)?;
    run(&mut con, &["AUTH", "app", "s3cret"])?;
    run(&mut con, &["SET", "app:1", "v"])?;
    match run(&mut con, &["GET", "app:1"])? {
        Value::BulkString(v) if v == b"v" => {}
        other => return Err(format!("node {id}: GET app:1 = {other:?}")),
    }
    let key = run(&mut con, &["GET", "other"]).unwrap_err();
    if !key.contains("no permissions to access one of the keys") {
        return Err(format!("node {id}: GET other: {key}"));
    }
    let cmd = run(&mut con, &["FLUSHALL"]).unwrap_err();
    if !cmd.contains("no permissions to run the 'flushall' command") {
        return Err(format!("node {id}: FLUSHALL: {cmd}"));
    }
    let raft = run(&mut con, &["RAFT.INFO"]).unwrap_err();
    if !raft.contains("NOPERM") {
        return Err(format!("node {id}: RAFT.INFO: {raft}"));
    }
    let wrong = run(&mut con, &["AUTH", "app", "nope"]).unwrap_err();
    if !wrong.contains("WRONGPASS") {
        return Err(format!("node {id}: AUTH with a wrong password: {wrong}"));
    }
    Ok(())
}

#[test]
fn acl_users_are_replicated_and_survive_restarts() {
    let mut c = Cluster::builder()
        .snapshot_every(10)
        .max_in_snapshot_log_to_keep(0)
        .start();
    let leader = c.must_leader(Duration::from_secs(20));
    let followers: Vec<u64> = c.ids().into_iter().filter(|&id| id != leader).collect();

    {
        // A user made on a follower is enforced on every node.
        phase("ACL SETUSER on a follower");
        let mut con = c.must_connect(followers[0]);
        let set = run(
            &mut con,
            &[
                "ACL",
                "SETUSER",
                "app",
                "on",
                ">s3cret",
                "~app:*",
                "+@read",
                "+@write",
                "-@admin",
                "-@dangerous",
            ],
        );
        assert_eq!(set, Ok(Value::Okay));
        // The follower that answered has applied it: enforced there at once.
        check_app_enforced(&mut c, followers[0]).unwrap();
        for id in c.ids() {
            c.must_wait(
                Duration::from_secs(10),
                &format!("user app enforced on node {id}"),
                |c| check_app_enforced(c, id),
            );
        }
    }

    let described = {
        phase("every node describes the user the same way");
        let mut seen = Vec::new();
        for id in c.ids() {
            let mut con = c.must_connect(id);
            seen.push(run(&mut con, &["ACL", "LIST"]).unwrap());
        }
        assert!(seen.windows(2).all(|w| w[0] == w[1]), "{seen:?}");
        seen.remove(0)
    };

    {
        // The users travel in snapshots: the log before them is purged.
        phase("enough writes for snapshots on every node, then restart every node");
        for i in 0..40 {
            c.must_set(leader, &format!("k{i}"), "v");
        }
        c.kill9_all();
        c.spawn_all();
        c.must_leader(Duration::from_secs(30));
        for id in c.ids() {
            assert!(
                c.log_since_start(id)
                    .contains("snapshot restored from disk"),
                "node {id} restarted without a snapshot:\n{}",
                c.log_tail(id)
            );
            c.must_wait(
                Duration::from_secs(20),
                &format!("user app enforced on node {id} after the restart"),
                |c| check_app_enforced(c, id),
            );
            let mut con = c.must_connect(id);
            assert_eq!(run(&mut con, &["ACL", "LIST"]).unwrap(), described);
        }
    }

    {
        // ACL DELUSER through the leader closes the user's connections elsewhere.
        let leader = c.must_leader(Duration::from_secs(20));
        let other = c.ids().into_iter().find(|&id| id != leader).unwrap();
        let mut app = c.must_connect(other);
        run(&mut app, &["AUTH", "app", "s3cret"]).unwrap();
        let mut admin = c.must_connect(leader);
        assert_eq!(
            run(&mut admin, &["ACL", "DELUSER", "app"]),
            Ok(Value::Int(1))
        );
        c.must_wait(
            Duration::from_secs(10),
            "app's connection to a follower closed",
            |_| match run(&mut app, &["PING"]) {
                Err(_) => Ok(()),
                Ok(v) => Err(format!("still answered {v:?}")),
            },
        );
        // Each node refuses the login once it has applied the DELUSER: the follower whose
        // connection closed has, the other one may still be a few entries behind (seen
        // under a loaded test run), so wait for it rather than read it at once.
        for id in c.ids() {
            c.must_wait(
                Duration::from_secs(10),
                &format!("node {id} refuses AUTH app after ACL DELUSER"),
                |c| {
                    let mut con = c.must_connect(id);
                    match run(&mut con, &["AUTH", "app", "s3cret"]) {
                        Err(e) if e.contains("WRONGPASS") => Ok(()),
                        other => Err(format!("AUTH app answered {other:?}")),
                    }
                },
            );
        }
    }

    {
        // CONFIG SET requirepass is the default user's password: cluster state too.
        phase("CONFIG SET requirepass on a follower: every node asks for it");
        let leader = c.must_leader(Duration::from_secs(20));
        let other = c.ids().into_iter().find(|&id| id != leader).unwrap();
        let mut admin = c.must_connect(other);
        assert_eq!(
            run(&mut admin, &["CONFIG", "SET", "requirepass", "cluster-pw"]),
            Ok(Value::Okay)
        );
        for id in c.ids() {
            let addr = c.redis_addr(id);
            c.must_wait(
                Duration::from_secs(10),
                &format!("requirepass enforced on node {id}"),
                |_| {
                    let mut con = redis::Client::open(format!("redis://{addr}"))
                        .and_then(|cl| cl.get_connection_with_timeout(Duration::from_secs(5)))
                        .map_err(|e| e.to_string())?;
                    match run(&mut con, &["GET", "k1"]) {
                        Err(e) if e.contains("NOAUTH") => {}
                        other => return Err(format!("GET before AUTH: {other:?}")),
                    }
                    run(&mut con, &["AUTH", "cluster-pw"])?;
                    run(&mut con, &["GET", "k1"]).map(|_| ())
                },
            );
        }
    }
}
