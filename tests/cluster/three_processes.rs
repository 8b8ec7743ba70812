//! Three real `redraft` processes from one `cluster.toml`, reached over RESP.
//!
//! Checks that a pristine cluster initialises itself and elects one leader (ROLE: one `master`,
//! two `slave`; INFO `role:` agrees and `loading:0`), that a write through any node is readable
//! through every other node (a write through a follower is forwarded to the leader), and that
//! the stock `redis-cli` binary works against it.

use crate::common;

use std::process::Command;
use std::time::Duration;

use common::{phase, try_get, try_info, try_role, try_set, Cluster};

#[test]
fn three_processes_serve_one_keyspace() {
    let mut c = Cluster::start();

    let leader = {
        phase("a pristine cluster initialises itself: wait for exactly one master");
        c.must_leader(Duration::from_secs(20))
    };
    let followers: Vec<u64> = c.ids().into_iter().filter(|&id| id != leader).collect();

    {
        phase("ROLE and INFO agree: one master, two slaves, nothing loading");
        for id in c.ids() {
            let mut con = c.must_connect(id);
            let want = if id == leader { "master" } else { "slave" };
            let role = try_role(&mut con).unwrap_or_else(|e| c.fail(&e));
            if role != want {
                c.fail(&format!("node {id}: ROLE says {role:?}, want {want:?}"));
            }
            let info = try_info(&mut con, "all").unwrap_or_else(|e| c.fail(&e));
            if info.get("role").map(String::as_str) != Some(want) {
                c.fail(&format!(
                    "node {id}: INFO role is {:?}, want {want:?}",
                    info.get("role")
                ));
            }
            if info.get("loading").map(String::as_str) != Some("0") {
                c.fail(&format!(
                    "node {id}: INFO loading is {:?}, want \"0\"",
                    info.get("loading")
                ));
            }
            if info.get("raft_leader_id") != Some(&leader.to_string()) {
                c.fail(&format!(
                    "node {id}: INFO raft_leader_id is {:?}, want {leader}",
                    info.get("raft_leader_id")
                ));
            }
        }
    }

    {
        phase("a write through the leader is readable through both followers");
        let mut con = c.must_connect(leader);
        try_set(&mut con, "from-leader", "v1").unwrap_or_else(|e| c.fail(&e));
        for &id in &followers {
            let got =
                try_get(&mut c.must_connect(id), "from-leader").unwrap_or_else(|e| c.fail(&e));
            if got.as_deref() != Some("v1") {
                c.fail(&format!(
                    "node {id}: GET from-leader = {got:?}, want \"v1\""
                ));
            }
        }
    }

    {
        phase("a write through a follower is forwarded and readable through the other two");
        let (writer, other) = (followers[0], followers[1]);
        let mut con = c.must_connect(writer);
        try_set(&mut con, "from-follower", "v2").unwrap_or_else(|e| c.fail(&e));
        for id in [leader, other] {
            let got =
                try_get(&mut c.must_connect(id), "from-follower").unwrap_or_else(|e| c.fail(&e));
            if got.as_deref() != Some("v2") {
                c.fail(&format!(
                    "node {id}: GET from-follower = {got:?}, want \"v2\""
                ));
            }
        }
        // An overwrite through the other follower is seen by the first one.
        try_set(&mut c.must_connect(other), "from-follower", "v3").unwrap_or_else(|e| c.fail(&e));
        let got = try_get(&mut con, "from-follower").unwrap_or_else(|e| c.fail(&e));
        if got.as_deref() != Some("v3") {
            c.fail(&format!(
                "node {writer}: GET from-follower = {got:?}, want \"v3\""
            ));
        }
    }

    {
        phase("the real redis-cli: SET on one node, GET on another");
        let cli = |c: &mut Cluster, id: u64, args: &[&str]| -> String {
            let port = c.redis_port(id).to_string();
            let out = match Command::new("redis-cli")
                .args(["-h", "127.0.0.1", "-p", &port])
                .args(args)
                .output()
            {
                Ok(out) => out,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                    "redis-cli is not on PATH; this test needs it: apt-get install redis-tools"
                ),
                Err(e) => panic!("run redis-cli: {e}"),
            };
            if !out.status.success() {
                c.fail(&format!(
                    "redis-cli -p {port} {args:?} exited {}: stdout {:?} stderr {:?}",
                    out.status,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        };
        let (a, b) = (followers[0], leader);
        let set = cli(&mut c, a, &["SET", "cli-key", "cli value"]);
        if set != "OK" {
            c.fail(&format!(
                "redis-cli SET on node {a} printed {set:?}, want \"OK\""
            ));
        }
        let got = cli(&mut c, b, &["GET", "cli-key"]);
        if got != "cli value" {
            c.fail(&format!(
                "redis-cli GET on node {b} printed {got:?}, want \"cli value\""
            ));
        }
        let got = cli(&mut c, followers[1], &["GET", "cli-key"]);
        if got != "cli value" {
            c.fail(&format!(
                "redis-cli GET on node {} printed {got:?}, want \"cli value\"",
                followers[1]
            ));
        }
        let role = cli(&mut c, leader, &["ROLE"]);
        if role.lines().next() != Some("master") {
            c.fail(&format!("redis-cli ROLE on the leader printed {role:?}"));
        }
    }
}
