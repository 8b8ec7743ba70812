//! Client-side caching across a cluster: each node tells its own tracking clients about every
//! change it applies, whichever node the write came through.
//!
//! - `cached_reads_on_followers_are_invalidated_by_writes_anywhere`: a RESP3 client tracking on
//!   a follower is sent `invalidate` for a key it read when the key is written through the
//!   leader, through the other follower (forwarded), when it expires (the leader's expiry
//!   entry), and a `nil` invalidation when the follower, paused while the leader moved on and
//!   compacted its log, catches up by installing a snapshot (every key may have changed). A
//!   BCAST client on the other follower is sent every change under its prefix.
//! - `redis_py_cache_reads_through_a_follower`: redis-py 5's `cache_config` (protocol 3)
//!   reading through a follower while another client writes through the leader: cached reads
//!   do not reach the server, the reader never sees a value go back, and the time from a
//!   write's reply to the cached reader's first read of it (the invalidation window) is
//!   measured; expiry, a script, a hash and FLUSHALL reach the cache too.
//! - `node_redis_cache_reads_through_a_follower`: node-redis 5's `clientSideCache` the same
//!   way (hits, invalidation after a write through the leader, FLUSHALL).
//! - `a_cache_resumes_after_its_node_dies_without_flushing`: `examples/cache_resume.py` (below).

use crate::common;

use std::time::{Duration, Instant};

use common::client_libs::{must_node_redis, must_redis_py, run_bounded, testdata_command};
use common::{phase, Cluster};
use resp_client::raw::{escape, RawConn};

/// Reads from `conn` until what arrived contains `want` (a RESP fragment), within `limit`.
fn must_receive(conn: &mut RawConn, want: &str, limit: Duration, what: &str) {
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    loop {
        let (more, closed) = conn.drain_for(Duration::from_millis(20));
        seen.extend_from_slice(&more);
        if escape(&seen).contains(want) {
            return;
        }
        assert!(
            !closed && Instant::now() < deadline,
            "{what}: no {want:?} within {limit:?}; got \"{}\"",
            escape(&seen)
        );
    }
}

fn invalidate(key: &str) -> String {
    format!(
        ">2\\r\\n$10\\r\\ninvalidate\\r\\n*1\\r\\n${}\\r\\n{key}\\r\\n",
        key.len()
    )
}

/// A RESP3 connection with `CLIENT TRACKING ON <options>`.
fn tracking_client(addr: &str, options: &[&str]) -> RawConn {
    let mut conn = RawConn::must_connect(addr);
    conn.must_call(&["HELLO", "3"]);
    let mut args = vec!["CLIENT", "TRACKING", "ON"];
    args.extend_from_slice(options);
    let reply = conn.must_call(&args);
    assert_eq!(
        format!("{reply:?}"),
        format!("{:?}", resp_client::raw::Reply::ok())
    );
    conn
}

#[test]
fn cached_reads_on_followers_are_invalidated_by_writes_anywhere() {
    let mut c = Cluster::builder().max_in_snapshot_log_to_keep(0).start();
    let leader = c.must_leader(Duration::from_secs(20));
    let followers: Vec<u64> = c.ids().into_iter().filter(|&id| id != leader).collect();
    let (f1, f2) = (followers[0], followers[1]);
    let mut cache = tracking_client(&c.redis_addr(f1), &[]);
    let mut bcast = tracking_client(&c.redis_addr(f2), &["BCAST", "PREFIX", "cfg/"]);
    let limit = Duration::from_secs(10);

    phase("a key read on a follower, written through the leader");
    cache.must_call(&["GET", "k"]);
    c.must_set(leader, "k", "1");
    must_receive(
        &mut cache,
        &invalidate("k"),
        limit,
        "write through the leader",
    );

    phase("read again, written through the other follower (forwarded to the leader)");
    cache.must_call(&["GET", "k"]);
    c.must_set(f2, "k", "2");
    must_receive(
        &mut cache,
        &invalidate("k"),
        limit,
        "write through a follower",
    );

    phase("a BCAST client on the other follower is sent every change under its prefix");
    c.must_set(leader, "cfg/a", "1");
    must_receive(&mut bcast, &invalidate("cfg/a"), limit, "BCAST prefix");

    phase("expiry: the leader's expiry entry invalidates on every node");
    c.must_set(leader, "e", "v");
    cache.must_call(&["GET", "e"]);
    let mut writer = RawConn::must_connect(&c.redis_addr(leader));
    writer.must_call(&["PEXPIRE", "e", "200"]);
    must_receive(&mut cache, &invalidate("e"), limit, "PEXPIRE");
    cache.must_call(&["GET", "e"]);
    must_receive(&mut cache, &invalidate("e"), limit, "expiry");

    phase("a follower that catches up by a snapshot drops every cached key (nil)");
    cache.must_call(&["GET", "k"]);
    let behind = c.must_raft_u64(f1, "raft_last_log_index");
    c.pause(f1);
    for i in 0..50 {
        c.must_set(leader, &format!("while-paused-{i}"), "x");
    }
    writer.must_call(&["RAFT.SNAPSHOT"]);
    // The leader purges once no replication to the paused follower is in flight.
    c.must_wait(
        Duration::from_secs(60),
        "the leader's log purged past the paused follower's",
        |c| {
            let purged = c.must_raft_u64(leader, "raft_purged_index");
            if purged > behind {
                Ok(())
            } else {
                Err(format!("purged {purged}, follower at {behind}"))
            }
        },
    );
    c.resume(f1);
    must_receive(
        &mut cache,
        ">2\\r\\n$10\\r\\ninvalidate\\r\\n_\\r\\n",
        Duration::from_secs(60),
        "snapshot install",
    );
    let installed = c.snapshot_indexes_since_start(f1, "snapshot installed");
    assert!(
        !installed.is_empty(),
        "the nil came without a snapshot install on node {f1}"
    );
}

#[test]
fn redis_py_cache_reads_through_a_follower() {
    let mut c = Cluster::start();
    let leader = c.must_leader(Duration::from_secs(20));
    let follower = c.ids().into_iter().find(|&id| id != leader).unwrap();
    must_redis_py();
    let mut cmd = testdata_command("python3", "redis_py_cache.py");
    cmd.arg(c.redis_addr(follower))
        .arg(c.redis_addr(leader))
        .arg("200");
    let out = run_bounded(cmd, Duration::from_secs(180));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "redis_py_cache.py: exit {:?}, stdout {stdout:?}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout:?}"));
    eprintln!("           redis-py cache through a follower: {report}");
    assert_eq!(report["server_gets_for_100_cached"], 0, "{report}");
    assert_eq!(report["cache_size_after_flush"], 0, "{report}");
    assert!(report["window_ms_max"].as_f64().is_some(), "{report}");
}

/// `examples/cache_resume.py`: a BCAST cache of a prefix that resumes after its node is killed
/// instead of flushing. The example reads through a follower while a writer changes keys
/// through the leader; then the example is stopped (SIGSTOP), its node killed, 30 cached keys
/// changed, and the example continued: it reconnects to the next node, replays the changes it
/// missed from the watch stream, keeps the rest of its cache, and at the end every cached
/// value is the cluster's. (Without the replay, the 30 keys stay stale: the checks fail.)
#[test]
fn a_cache_resumes_after_its_node_dies_without_flushing() {
    let mut c = Cluster::start();
    let leader = c.must_leader(Duration::from_secs(20));
    let followers: Vec<u64> = c.ids().into_iter().filter(|&id| id != leader).collect();
    let order = [followers[0], followers[1], leader];
    let addrs: Vec<String> = order.iter().map(|&id| c.redis_addr(id)).collect();
    for i in 0..100 {
        c.must_set(leader, &format!("app/{i}"), "0");
    }
    let pythonpath = must_redis_py();
    let example = std::process::Command::new("python3")
        .arg(format!(
            "{}/examples/cache_resume.py",
            env!("CARGO_MANIFEST_DIR")
        ))
        .args(["demo", "app/", "8"])
        .args(&addrs)
        .env("PYTHONPATH", pythonpath)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 examples/cache_resume.py");
    let signal = |sig: &str, pid: u32| {
        let ok = std::process::Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {sig} {pid}");
    };

    phase("a writer changes app/* through the leader while the example caches them");
    let mut con = common::connect(&c.redis_addr(leader), Duration::from_secs(5)).expect("writer");
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(3) {
        n += 1;
        let key = format!("app/{}", n * 37 % 100);
        common::try_set(&mut con, &key, &n.to_string()).expect("write through the leader");
        std::thread::sleep(Duration::from_millis(5));
    }

    phase("example stopped, its node killed, 30 keys changed, example continued");
    signal("-STOP", example.id());
    c.kill9(order[0]);
    for i in 0..30 {
        common::try_set(&mut con, &format!("app/{i}"), &format!("missed-{i}"))
            .expect("write through the leader");
    }
    signal("-CONT", example.id());
    let out = example.wait_with_output().expect("example output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "cache_resume.py: exit {:?}, stdout {stdout:?}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout:?}"));
    eprintln!("           {n} writes; cache_resume: {report}");
    assert_eq!(report["mismatches"], serde_json::json!([]), "{report}");
    assert!(report["resumes"].as_u64() >= Some(1), "{report}");
    assert_eq!(report["flushes"], 0, "{report}");
    assert!(report["kept_on_resume"].as_u64() > Some(0), "{report}");
    assert!(report["replayed"].as_u64() >= Some(30), "{report}");
}

/// node-redis 5's `clientSideCache` (RESP3) through a follower, writes through the leader.
#[test]
fn node_redis_cache_reads_through_a_follower() {
    let mut c = Cluster::start();
    let leader = c.must_leader(Duration::from_secs(20));
    let follower = c.ids().into_iter().find(|&id| id != leader).unwrap();
    let mut cmd = std::process::Command::new("node");
    cmd.arg(format!(
        "{}/tests/testdata/node_redis_cache.js",
        env!("CARGO_MANIFEST_DIR")
    ))
    .arg(c.redis_addr(follower))
    .arg(c.redis_addr(leader))
    .env("NODE_PATH", must_node_redis());
    let out = run_bounded(cmd, Duration::from_secs(120));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "node_redis_cache.js: exit {:?}, stdout {stdout:?}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout:?}"));
    eprintln!("           node-redis cache through a follower: {report}");
    assert_eq!(report["hits_for_50_reads"], 50, "{report}");
    assert!(report["misses_after_flush"].as_u64() >= Some(1), "{report}");
}
