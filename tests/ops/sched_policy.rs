//! `[server] sched_policy`: every thread of a node runs under the configured Linux CPU
//! scheduling policy (HandOffsWithoutPreemption, `src/config/sched_policy.rs`): `SCHED_BATCH`
//! by default, `SCHED_OTHER` when the config says `"other"`. Read from `/proc/<pid>/task/*/stat`
//! of a real process, after it served a write, so the runtime's workers and the WAL's sync
//! thread exist and must have inherited the policy set at start.
//!
//! `[server] worker_threads`: the runtime has that many workers (`INFO server`
//! `worker_threads`), one per CPU when unset, and serves writes and reads with one.
//!
//! `[server] raft_thread` (RaftOnItsOwnThread, `src/raft/runtime.rs`): Raft runs on a thread
//! named `raft` of its own, which exists only with the setting, inherits the policy like every
//! other thread, and serves writes, reads and a restart.

use crate::common;

use std::fs;

use common::single::Single;

/// Linux's policy numbers, as `/proc/<pid>/task/*/stat` shows them.
const SCHED_OTHER: u32 = libc::SCHED_OTHER as u32;
const SCHED_BATCH: u32 = libc::SCHED_BATCH as u32;

/// `(thread name, policy)` of every thread of `pid`.
fn thread_policies(pid: u32) -> Vec<(String, u32)> {
    let mut out = Vec::new();
    for task in fs::read_dir(format!("/proc/{pid}/task")).expect("list threads") {
        let path = task.expect("thread entry").path();
        let Ok(stat) = fs::read_to_string(path.join("stat")) else {
            continue; // the thread ended meanwhile
        };
        // `pid (comm) state ...`: comm may hold spaces and parentheses, so split after the
        // last ')'; the field after it is field 3 (state), and policy is field 41.
        let close = stat.rfind(')').expect("stat has (comm)");
        let name = stat[stat.find('(').expect("(") + 1..close].to_string();
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let policy = fields[41 - 3].parse().expect("policy is a number");
        out.push((name, policy));
    }
    out
}

/// Whether this environment lets an unprivileged process choose `SCHED_BATCH` at all (a
/// seccomp profile could refuse `sched_setscheduler`; Linux itself allows it to anyone): tried
/// on a thread of the test's own that ends at once.
fn environment_allows_sched_batch() -> bool {
    std::thread::spawn(|| {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: pid 0 is this short-lived thread; `param` is valid for the call.
        unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) == 0 }
    })
    .join()
    .expect("probe thread")
}

fn assert_every_thread(node: &Single, want: u32) {
    let mut con = node.must_connect();
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query(&mut con)
        .expect("SET");
    let threads = thread_policies(node.pid());
    assert!(
        threads.iter().any(|(n, _)| n == "raft-wal-sync"),
        "the WAL's sync thread should exist: {threads:?}"
    );
    assert!(
        threads
            .iter()
            .filter(|(n, _)| n == "tokio-rt-worker")
            .count()
            >= 1,
        "the runtime's workers should exist: {threads:?}"
    );
    let wrong: Vec<_> = threads.iter().filter(|(_, p)| *p != want).collect();
    assert!(
        wrong.is_empty(),
        "threads not under policy {want}: {wrong:?}"
    );
}

#[test]
fn every_thread_runs_sched_batch_by_default() {
    if !environment_allows_sched_batch() {
        // The node then runs with the default policy and logs why (`src/main.rs`).
        eprintln!("SKIPPED: this environment refuses sched_setscheduler(SCHED_BATCH)");
        return;
    }
    let node = Single::start();
    assert_every_thread(&node, SCHED_BATCH);
}

#[test]
fn sched_policy_other_keeps_the_default_policy() {
    let node = Single::start_with("[server]\nsched_policy = \"other\"\n");
    assert_every_thread(&node, SCHED_OTHER);
}

/// `worker_threads` of `INFO server`.
fn info_worker_threads(node: &Single) -> usize {
    let info = common::try_info(&mut node.must_connect(), "server").expect("INFO server");
    info.get("worker_threads")
        .unwrap_or_else(|| panic!("INFO server lacks worker_threads: {info:?}"))
        .parse()
        .expect("worker_threads is a number")
}

#[test]
fn worker_threads_sets_the_runtime_and_defaults_to_one_per_cpu() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let node = Single::start();
    assert_eq!(info_worker_threads(&node), cpus, "default: one per CPU");
    drop(node);

    let node = Single::start_with("[server]\nworker_threads = 1\n");
    assert_eq!(info_worker_threads(&node), 1);
    let mut con = node.must_connect();
    for i in 0..20 {
        let _: () = redis::cmd("SET")
            .arg(format!("k{i}"))
            .arg(i)
            .query(&mut con)
            .expect("SET with one worker");
    }
    let v: i64 = redis::cmd("GET").arg("k19").query(&mut con).expect("GET");
    assert_eq!(v, 19);
}

/// Whether `pid` has a thread named `raft`.
fn has_raft_thread(pid: u32) -> bool {
    thread_policies(pid).iter().any(|(n, _)| n == "raft")
}

#[test]
fn raft_thread_runs_raft_on_a_thread_of_its_own() {
    let node = Single::start_with("[server]\nraft_thread = false\n");
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query(&mut node.must_connect())
        .expect("SET");
    assert!(
        !has_raft_thread(node.pid()),
        "no raft thread without the setting"
    );
    drop(node);

    let mut node = Single::start_with("[server]\nraft_thread = true\nsched_policy = \"other\"\n");
    assert_every_thread(&node, SCHED_OTHER);
    assert!(has_raft_thread(node.pid()), "the raft thread should exist");
    let mut con = node.must_connect();
    for i in 0..50 {
        let _: () = redis::cmd("SET")
            .arg(format!("k{i}"))
            .arg(i)
            .query(&mut con)
            .expect("SET with Raft on its own thread");
    }
    let v: i64 = redis::cmd("GET").arg("k49").query(&mut con).expect("GET");
    assert_eq!(v, 49);
    drop(con);
    // The log and the snapshot written by that runtime read back after a restart.
    node.restart();
    let v: i64 = redis::cmd("GET")
        .arg("k7")
        .query(&mut node.must_connect())
        .expect("GET after restart");
    assert_eq!(v, 7);
    assert!(
        has_raft_thread(node.pid()),
        "the raft thread after a restart"
    );
}

/// `raft_thread_sessions` of `INFO raft`, asked on `con`.
fn sessions_beside_raft(con: &mut redis::Connection) -> usize {
    let info = common::try_info(con, "raft").expect("INFO raft");
    info.get("raft_thread_sessions")
        .unwrap_or_else(|| panic!("INFO raft lacks raft_thread_sessions: {info:?}"))
        .parse()
        .expect("raft_thread_sessions is a number")
}

/// SessionsBesideRaft: with `raft_thread`, the first `raft_thread_sessions` connections run on
/// the `raft` thread, later ones on the workers, and a place freed by a closed connection
/// goes to the next one; sessions in either place serve reads, writes, scripts and
/// transactions alike. Without the setting, no session is counted there.
#[test]
fn sessions_run_beside_raft_up_to_the_limit() {
    let node = Single::start_with("[server]\nraft_thread = false\n");
    assert_eq!(sessions_beside_raft(&mut node.must_connect()), 0);
    drop(node);

    let node = Single::start_with("[server]\nraft_thread = true\nraft_thread_sessions = 2\n");
    let mut a = node.must_connect();
    assert_eq!(sessions_beside_raft(&mut a), 1, "the first connection");
    let mut b = node.must_connect();
    let mut c = node.must_connect();
    let mut d = node.must_connect();
    assert_eq!(sessions_beside_raft(&mut d), 2, "no more than the limit");
    for (i, con) in [&mut a, &mut b, &mut c, &mut d].into_iter().enumerate() {
        let key = format!("k{i}");
        let _: () = redis::cmd("SET").arg(&key).arg(i).query(con).expect("SET");
        let n: i64 = redis::cmd("INCR").arg(&key).query(con).expect("INCR");
        assert_eq!(n, i as i64 + 1);
        let got: i64 = redis::cmd("EVAL")
            .arg("return redis.call('INCR', KEYS[1])")
            .arg(1)
            .arg(&key)
            .query(con)
            .expect("EVAL");
        assert_eq!(got, i as i64 + 2);
        let (v,): (i64,) = redis::pipe()
            .atomic()
            .cmd("GET")
            .arg(&key)
            .query(con)
            .expect("MULTI/EXEC");
        assert_eq!(v, i as i64 + 2);
    }
    // Both hosted connections close: their places are free again (the count falls once the
    // node has seen each connection end).
    drop((a, b));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while sessions_beside_raft(&mut c) != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "places not given back after their connections closed"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let mut e = node.must_connect();
    assert_eq!(sessions_beside_raft(&mut e), 1, "a freed place is reused");
    let v: i64 = redis::cmd("GET").arg("k3").query(&mut e).expect("GET");
    assert_eq!(v, 5);
}
