//! Uncertain outcomes get their own error prefix (UncertainIsNotRetryable, `src/raft/write.rs`):
//! a write that may have reached a leader and was not confirmed is answered
//! `-UNCERTAIN … may or may not have been applied`, never `TRYAGAIN` (which clients retry with a
//! new sequence number, applying an `INCR` twice) and never a final-sounding `ERR`.
//!
//! - A leader whose log flush fails after the entry went out (the failpoint
//!   `REDRAFT_FAILPOINTS=log_flush_fail_after=N` on that node only) answers `UNCERTAIN`, and the
//!   survivors may indeed hold the write.
//! - redis-py and ioredis with their default settings surface `UNCERTAIN` as a plain error and
//!   send the command once: the leader's `redraft_server_commands_total` for `incr`/`incrby`
//!   grows by exactly one per call.
//! - Connection churn does not grow the dedup table (DedupIdsReused, `src/commands/mod.rs`), so
//!   it cannot evict a retrying forwarder's entry.

use crate::common;
use crate::common::client_libs;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{phase, Cluster};

const UNCERTAIN: &str = "UNCERTAIN the leader was lost or stopped before answering; the write \
                         may or may not have been applied";

/// The start of the other uncertain answer: a leader whose write timeout ran out first.
const TIMED_OUT: &str = "UNCERTAIN the write was proposed but not answered within 1500 ms";

/// Makes node `target` the leader (RAFT.TRANSFER through the current leader), or panics.
fn must_lead(c: &mut Cluster, target: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let leader = c.must_leader(Duration::from_secs(20));
        if leader == target {
            return;
        }
        if Instant::now() > deadline {
            c.fail(&format!("node {target} never became the leader"));
        }
        if let Ok(mut con) = c.try_connect(leader) {
            let _: redis::RedisResult<redis::Value> =
                redis::cmd("RAFT.TRANSFER").arg(target).query(&mut con);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// INCR through `con` until one fails; returns how many were acknowledged and the error.
fn incr_until_error(con: &mut redis::Connection, key: &str) -> (i64, redis::RedisError) {
    let mut acked = 0;
    for _ in 0..100_000 {
        match redis::cmd("INCR").arg(key).query::<i64>(con) {
            Ok(n) => {
                acked += 1;
                assert_eq!(n, acked, "INCR answered {n} after {acked} acknowledged");
            }
            Err(e) => return (acked, e),
        }
    }
    panic!("100000 INCRs acknowledged: the failpoint never fired");
}

/// The text of an error reply as the server sent it (`CODE detail`).
fn reply_text(e: &redis::RedisError) -> String {
    match (e.code(), e.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        _ => format!("{e:?}"),
    }
}

#[test]
fn a_leader_whose_log_flush_fails_answers_uncertain_and_the_survivors_may_hold_the_write() {
    // Node 1's flushes fail after the 80th: enough to initialise, elect, take the lead and
    // acknowledge some INCRs; then its disk "dies" with an entry possibly on the followers.
    let mut c = Cluster::builder()
        .node_env(1, "REDRAFT_FAILPOINTS", "log_flush_fail_after=80")
        .start();
    phase("make node 1 (the failing disk) the leader");
    must_lead(&mut c, 1);
    let mut con = c.must_connect(1);

    phase("INCR on node 1 until its flush fails");
    let (acked, err) = incr_until_error(&mut con, "counter");
    let text = reply_text(&err);
    eprintln!("{acked} INCRs acknowledged, then: {text}");
    assert!(acked > 0, "the failpoint fired before any write");
    assert_eq!(
        text, UNCERTAIN,
        "a leader whose flush failed after the entry may have gone out must answer UNCERTAIN"
    );
    assert_eq!(c.must_exit(1, Duration::from_secs(20)), Some(3), "FailStop");

    phase("the survivors elect a leader; the uncertain INCR may or may not be there");
    let leader = c.must_leader(Duration::from_secs(20));
    let got: i64 = c.must_wait(Duration::from_secs(20), "GET counter on a survivor", |c| {
        let mut con = c.try_connect(leader)?;
        redis::cmd("GET")
            .arg("counter")
            .query::<Option<i64>>(&mut con)
            .map(|v| v.unwrap_or(0))
            .map_err(|e| e.to_string())
    });
    eprintln!(
        "survivors hold counter = {got} ({} the uncertain INCR)",
        if got > acked { "with" } else { "without" }
    );
    assert!(
        got == acked || got == acked + 1,
        "counter {got}: every acknowledged INCR ({acked}) and at most the uncertain one"
    );
}

/// `redraft_server_commands_total` of `incr` plus `incrby` on node `id` (redis-py's `incr()`
/// sends `INCRBY key 1`).
fn incr_count(c: &Cluster, id: u64) -> u64 {
    let (status, body) = c
        .try_http_get(id, "/metrics")
        .unwrap_or_else(|e| panic!("GET /metrics on node {id}: {e}"));
    assert_eq!(status, 200, "{body}");
    ["incr", "incrby"]
        .iter()
        .map(|cmd| {
            let prefix = format!("redraft_server_commands_total{{command=\"{cmd}\"}} ");
            body.lines()
                .find_map(|l| l.strip_prefix(prefix.as_str()))
                .map_or(0, |v| v.trim().parse::<u64>().expect("a count"))
        })
        .sum()
}

/// Runs one INCR of `key` against `addr` through a library script; returns what it printed.
fn run_lib(mut cmd: Command, addr: &str, key: &str) -> String {
    let (host, port) = addr.rsplit_once(':').expect("host:port");
    cmd.args([host, port, key]);
    let out = client_libs::run_bounded(cmd, Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        out.status.success(),
        "exit {:?}, stdout {stdout:?}, stderr {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn redis_py_and_ioredis_do_not_retry_an_uncertain_write() {
    let python = client_libs::must_redis_py();
    let node_modules = client_libs::must_ioredis();
    let mut c = Cluster::builder().metrics().write_timeout_ms(1500).start();
    let leader = c.must_leader(Duration::from_secs(20));
    c.must_set(leader, "warm", "x");
    let followers: Vec<u64> = c.ids().into_iter().filter(|&id| id != leader).collect();

    phase("freeze both followers: the leader appends INCRs it can never commit");
    for &f in &followers {
        c.pause(f);
    }
    let addr = c.redis_addr(leader);
    let testdata = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/testdata");

    let before = incr_count(&c, leader);
    let mut py = Command::new("python3");
    py.arg(format!("{testdata}/uncertain_redis_py.py"))
        .env("PYTHONPATH", &python)
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let got_py = run_lib(py, &addr, "py");
    let after_py = incr_count(&c, leader);

    let mut node = Command::new("node");
    node.arg(format!("{testdata}/uncertain_ioredis.js"))
        .env("NODE_PATH", &node_modules);
    let got_js = run_lib(node, &addr, "js");
    let after_js = incr_count(&c, leader);

    for &f in &followers {
        c.resume(f);
    }
    eprintln!("redis-py: {got_py}\nioredis: {got_js}");
    // The leader answers one of its two uncertain texts: the write timed out while it still
    // led (its lease had not run out), or it had stepped down by then.
    let uncertain = |got: &str, class: &str| {
        got.strip_prefix(class).is_some_and(|text| {
            text == UNCERTAIN
                || (text.starts_with(TIMED_OUT)
                    && text.ends_with("; it may or may not have been applied"))
        })
    };
    assert!(
        uncertain(&got_py, "redis.exceptions.ResponseError: "),
        "redis-py surfaces UNCERTAIN as a plain ResponseError: {got_py}"
    );
    assert!(
        uncertain(&got_js, "ReplyError: "),
        "ioredis surfaces UNCERTAIN as a plain ReplyError: {got_js}"
    );
    assert_eq!(after_py - before, 1, "redis-py sent INCR once");
    assert_eq!(after_js - after_py, 1, "ioredis sent INCR once");
}

/// DedupIdsReused: 300 connections opened one after another, each writing once, leave about
/// a few dedup entries, not 300: connection churn cannot push a retrying forwarder's entry out
/// of the bounded table. Ten concurrent writers add about ten.
#[test]
fn connection_churn_does_not_grow_the_dedup_table() {
    let node = common::single::Single::start();
    let dedup_clients = || -> u64 {
        let mut con = node.must_connect();
        let info: String = redis::cmd("INFO")
            .arg("raft")
            .query(&mut con)
            .expect("INFO");
        info.lines()
            .find_map(|l| l.strip_prefix("dedup_clients:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("INFO raft has no dedup_clients:\n{info}"))
    };
    for i in 0..300 {
        let mut con = node.must_connect();
        let _: () = redis::cmd("SET")
            .arg("churn")
            .arg(i)
            .query(&mut con)
            .expect("SET");
    }
    let after_churn = dedup_clients();
    eprintln!("dedup_clients after 300 connections, one after another: {after_churn}");
    // A session ends a moment after its client closes, so a few overlap; without reuse: 300.
    assert!(
        after_churn < 20,
        "{after_churn} dedup entries after 300 sequential connections"
    );
    let writers: Vec<_> = (0..10)
        .map(|w| {
            let mut con = node.must_connect();
            std::thread::spawn(move || {
                for i in 0..20 {
                    let _: () = redis::cmd("SET")
                        .arg(format!("w{w}"))
                        .arg(i)
                        .query(&mut con)
                        .expect("SET");
                }
            })
        })
        .collect();
    for w in writers {
        w.join().expect("writer");
    }
    let after_concurrent = dedup_clients();
    eprintln!("dedup_clients after 10 concurrent writers: {after_concurrent}");
    assert!(after_concurrent < 30, "{after_concurrent} dedup entries");
    let mut con = node.must_connect();
    let got: i64 = redis::cmd("GET").arg("churn").query(&mut con).expect("GET");
    assert_eq!(got, 299);
}
