//! The README's config-center walkthrough, run: `examples/config_center.rs` loads `app/` at one
//! revision from the leader, follows the watch stream, and keeps its config right through a
//! kill -9 of the node it watches (the leader) and an operator's ROLLBACK of a bad value:
//! every change once, in revision order, and the final config equal to the store's.

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::{phase, Cluster};

/// The example binary `cargo test` builds next to the test binaries.
fn example_path() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    dir.join("examples").join("config_center")
}

/// Runs `args` on any live node until one applies it (TRYAGAIN while a leader is elected).
fn must_write(cluster: &Cluster, ids: &[u64], args: &[&str]) -> redis::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for &id in ids {
            if let Ok(mut c) = cluster.try_connect(id) {
                let mut cmd = redis::cmd(args[0]);
                for a in &args[1..] {
                    cmd.arg(*a);
                }
                if let Ok(v) = cmd.query::<redis::Value>(&mut c) {
                    return v;
                }
            }
        }
        assert!(Instant::now() < deadline, "{args:?} never applied");
        thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn config_center_example_survives_leader_kill_and_rollback() {
    let mut cluster = Cluster::start();
    let leader = cluster.must_leader(Duration::from_secs(20));
    let ids = cluster.ids();
    let others: Vec<u64> = ids.iter().copied().filter(|&i| i != leader).collect();
    must_write(&cluster, &ids, &["SET", "app/a", "1"]);
    must_write(&cluster, &ids, &["SET", "app/b", "2"]);
    must_write(&cluster, &ids, &["SET", "other", "x"]);
    let addrs: Vec<String> = [leader, others[0], others[1]]
        .iter()
        .map(|&i| cluster.redis_addr(i))
        .collect();
    let mut child = Command::new(example_path())
        .args(["app/", "5"])
        .args(&addrs)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run examples/config_center (built by cargo test)");
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let next = |rx: &mpsc::Receiver<String>| {
        rx.recv_timeout(Duration::from_secs(30))
            .expect("example output")
    };
    assert_eq!(next(&rx), "loaded 2 keys at revision 3");
    {
        phase("a change, then kill -9 of the leader the example is watching, then more changes");
        must_write(&cluster, &ids, &["SET", "app/a", "10"]);
        assert_eq!(next(&rx), "change 4-0 set app/a 10");
        cluster.kill9(leader);
        // Writes go to the new leader's cluster once it is elected (no retried, doubled write).
        cluster.must_leader(Duration::from_secs(20));
        must_write(&cluster, &others, &["SET", "app/c", "3"]);
        must_write(&cluster, &others, &["SET", "other", "y"]);
        must_write(&cluster, &others, &["DEL", "app/c"]);
    }
    {
        phase("an operator writes a bad value and rolls it back");
        let redis::Value::Array(h) = must_write(&cluster, &others, &["HISTORY", "app/a"]) else {
            panic!()
        };
        let good = format!("{:?}", h.last().unwrap());
        assert!(good.contains("10"), "{good}");
        must_write(&cluster, &others, &["SET", "app/b", "oops"]);
        must_write(&cluster, &others, &["ROLLBACK", "app/b", "4"]);
    }
    let mut lines = Vec::new();
    while lines.len() < 6 {
        lines.push(next(&rx));
    }
    assert_eq!(
        lines,
        [
            "change 5-0 set app/c 3",
            "change 7-0 del app/c",
            "change 8-0 set app/b oops",
            "change 9-0 set app/b 2",
            "app/a=10",
            "app/b=2",
        ]
    );
    assert!(child.wait().expect("wait").success());
    assert!(
        rx.recv_timeout(Duration::from_secs(1)).is_err(),
        "nothing more"
    );
    cluster.restart(leader);
}
