//! Pipelined writes on one connection (`src/commands/batch.rs`): a run of consecutive writes in
//! one batch is proposed with one ordered call (`RaftNode::write_many`), and must behave exactly
//! as if each write had been proposed alone:
//!
//! - **RunOrder**: every command is answered, in command order; each write is its own
//!   revision (the run travels as one batcher job, usually one Raft entry), so the
//!   `mod_revision`s of N pipelined SETs strictly increase in pipeline order and, with nothing
//!   else writing, are consecutive.
//! - **RunBeforeNext** with BatchBarrier: in `SET k i; GET k; INCR c` pipelines, each GET reads
//!   the SET just before it and the INCRs answer 1, 2, 3, ... (read-your-writes on a follower).
//! - A command refused while it is checked or planned (wrong arity, a bad integer, a syntax
//!   error) or by the store (INCR of a non-number) gets its error in its place, proposes
//!   nothing (no revision), and the writes around it are applied.
//! - **RunBounded**: a pipeline over the run bounds (more than 1024 writes, more than 4 MB of
//!   values) is still answered in full and in order.
//!
//! Each check runs on a single node (the leader's batcher proposes the run) and on a follower of
//! a three-node cluster (the run travels in one forwarded `ClientWriteMany` RPC).

use crate::common;
use crate::common::raw;

use std::time::Duration;

use common::single::Single;
use common::{phase, Cluster};
use raw::{multibulk, RawConn, Reply};

/// How long a whole pipeline's replies may take on a debug build.
const PIPELINE_TIMEOUT: Duration = Duration::from_secs(60);

/// Sends `commands` in one write and returns their replies.
fn must_pipeline(con: &mut RawConn, commands: &[Vec<String>]) -> Vec<Reply> {
    let bytes: Vec<u8> = commands.iter().flat_map(|c| multibulk(c)).collect();
    con.send(&bytes);
    con.must_read_replies(commands.len(), PIPELINE_TIMEOUT)
}

fn cmd(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

/// The `mod_revision` field of a GETMETA reply (RESP2: a flat array of name, value pairs).
fn mod_revision(reply: &Reply) -> i64 {
    let Reply::Array(Some(items)) = reply else {
        panic!("GETMETA answered {reply:?}, want a map as a flat array");
    };
    let at = items
        .iter()
        .position(|r| *r == Reply::bulk("mod_revision"))
        .unwrap_or_else(|| panic!("GETMETA reply has no mod_revision: {reply:?}"));
    match items.get(at + 1) {
        Some(Reply::Integer(n)) => *n,
        other => panic!("GETMETA mod_revision is {other:?}"),
    }
}

/// The `mod_revision` of each key, read with one pipeline of GETMETA.
fn must_mod_revisions(con: &mut RawConn, keys: &[String]) -> Vec<i64> {
    let metas: Vec<Vec<String>> = keys.iter().map(|k| cmd(&["GETMETA", k])).collect();
    must_pipeline(con, &metas)
        .iter()
        .map(mod_revision)
        .collect()
}

/// Asserts `revs` go up by exactly one each (each write its own revision, nothing else writing).
fn assert_consecutive(target: &str, what: &str, revs: &[i64]) {
    for (i, w) in revs.windows(2).enumerate() {
        assert_eq!(
            w[1],
            w[0] + 1,
            "[{target}] {what}: mod_revision of write {} is {}, of write {} is {}; want \
             consecutive revisions in pipeline order (all: {revs:?})",
            i,
            w[0],
            i + 1,
            w[1]
        );
    }
}

/// N pipelined SETs: N `+OK`s, and consecutive `mod_revision`s in pipeline order. 2000 SETs are
/// more than one run can hold (1024), when the batch holds them all.
fn check_sets_get_their_own_revisions(target: &str, addr: &str) {
    phase(&format!(
        "[{target}] 2000 pipelined SETs: +OK each, own consecutive revisions"
    ));
    let mut con = RawConn::must_connect(addr);
    let n = 2000;
    let keys: Vec<String> = (0..n).map(|i| format!("{target}:set:{i}")).collect();
    let sets: Vec<Vec<String>> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| cmd(&["SET", k, &format!("v{i}")]))
        .collect();
    let replies = must_pipeline(&mut con, &sets);
    for (i, r) in replies.iter().enumerate() {
        assert_eq!(*r, Reply::ok(), "[{target}] reply to SET #{i}");
    }
    let gets: Vec<Vec<String>> = keys.iter().map(|k| cmd(&["GET", k])).collect();
    for (i, r) in must_pipeline(&mut con, &gets).iter().enumerate() {
        assert_eq!(
            *r,
            Reply::bulk(format!("v{i}")),
            "[{target}] GET {}",
            keys[i]
        );
    }
    let revs = must_mod_revisions(&mut con, &keys);
    assert_consecutive(target, "2000 pipelined SETs", &revs);
}

/// `SET k i; GET k; INCR c` × 300 in one pipeline: each GET sees its SET, INCRs count up.
fn check_read_your_writes_in_a_pipeline(target: &str, addr: &str) {
    phase(&format!(
        "[{target}] SET k i; GET k; INCR c pipelines read their own writes"
    ));
    let mut con = RawConn::must_connect(addr);
    let (key, counter) = (format!("{target}:ryw"), format!("{target}:ryw:counter"));
    let rounds = 300;
    let mut commands = Vec::new();
    for i in 0..rounds {
        commands.push(cmd(&["SET", &key, &i.to_string()]));
        commands.push(cmd(&["GET", &key]));
        commands.push(cmd(&["INCR", &counter]));
    }
    let replies = must_pipeline(&mut con, &commands);
    for i in 0..rounds {
        let got = &replies[3 * i..3 * i + 3];
        let want = [
            Reply::ok(),
            Reply::bulk(i.to_string()),
            Reply::Integer(i as i64 + 1),
        ];
        assert_eq!(got, want, "[{target}] round {i}: SET, GET, INCR");
    }
}

/// Errors in the middle of a run of writes: each answered in place, the rest applied.
fn check_errors_inside_a_run(target: &str, addr: &str) {
    phase(&format!(
        "[{target}] refused commands inside a run of writes"
    ));
    let mut con = RawConn::must_connect(addr);
    let k = |name: &str| format!("{target}:mixed:{name}");
    let (a, b, c, d, e, s, f) = (k("a"), k("b"), k("c"), k("d"), k("e"), k("s"), k("f"));
    let not_integer = "ERR value is not an integer or out of range";
    let steps: Vec<(Vec<String>, Reply)> = vec![
        (cmd(&["SET", &a, "1"]), Reply::ok()),
        (
            cmd(&["SET", &b]),
            Reply::error("ERR wrong number of arguments for 'set' command"),
        ),
        (cmd(&["INCRBY", &c, "ten"]), Reply::error(not_integer)),
        (cmd(&["SET", &s, "abc"]), Reply::ok()),
        (
            cmd(&["SET", &d, "4", "NX", "XX"]),
            Reply::error("ERR syntax error"),
        ),
        (cmd(&["INCR", &c]), Reply::Integer(1)),
        // Refused by the store at apply: the entry is proposed but changes nothing.
        (cmd(&["INCR", &s]), Reply::error(not_integer)),
        (
            cmd(&["SETRANGE", &e, "-1", "x"]),
            Reply::error("ERR offset is out of range"),
        ),
        (
            cmd(&["MSET", &e]),
            Reply::error("ERR wrong number of arguments for 'mset' command"),
        ),
        (cmd(&["DECRBY", &c, "-4"]), Reply::Integer(5)),
        (cmd(&["SET", &f, "6"]), Reply::ok()),
        (cmd(&["GET", &a]), Reply::bulk("1")),
        (cmd(&["GET", &b]), Reply::Bulk(None)),
        (cmd(&["GET", &d]), Reply::Bulk(None)),
        (cmd(&["GET", &e]), Reply::Bulk(None)),
        (cmd(&["GET", &s]), Reply::bulk("abc")),
        (cmd(&["GET", &f]), Reply::bulk("6")),
        (cmd(&["GET", &c]), Reply::bulk("5")),
    ];
    let commands: Vec<Vec<String>> = steps.iter().map(|(c, _)| c.clone()).collect();
    let replies = must_pipeline(&mut con, &commands);
    for (i, ((command, want), got)) in steps.iter().zip(&replies).enumerate() {
        assert_eq!(got, want, "[{target}] command #{i} {command:?}");
    }
    // Writes applied: a (rev r), s (r+1), INCR c (r+2), INCR s refused (no revision),
    // DECRBY c (r+3), f (r+4). A refused command bumps nothing.
    let revs = must_mod_revisions(&mut con, &[a, s, c, f]);
    assert_eq!(
        [revs[1] - revs[0], revs[2] - revs[0], revs[3] - revs[0]],
        [1, 3, 4],
        "[{target}] mod_revisions of a, s, c, f: {revs:?}; want r, r+1, r+3, r+4"
    );
}

/// Twelve 1 MB SETs in one pipeline: more bytes than one run may carry (4 MB).
fn check_big_values_split_into_runs(target: &str, addr: &str) {
    phase(&format!("[{target}] 12 pipelined 1 MB SETs"));
    let mut con = RawConn::must_connect(addr);
    let keys: Vec<String> = (0..12).map(|i| format!("{target}:big:{i}")).collect();
    let value = |i: usize| format!("{i}:{}", "x".repeat(1024 * 1024));
    let sets: Vec<Vec<String>> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| cmd(&["SET", k, &value(i)]))
        .collect();
    for (i, r) in must_pipeline(&mut con, &sets).iter().enumerate() {
        assert_eq!(*r, Reply::ok(), "[{target}] reply to big SET #{i}");
    }
    let strlens: Vec<Vec<String>> = keys.iter().map(|k| cmd(&["STRLEN", k])).collect();
    for (i, r) in must_pipeline(&mut con, &strlens).iter().enumerate() {
        assert_eq!(
            *r,
            Reply::Integer(value(i).len() as i64),
            "[{target}] STRLEN"
        );
    }
    let revs = must_mod_revisions(&mut con, &keys);
    assert_consecutive(target, "12 big SETs", &revs);
}

fn check_all(target: &str, addr: &str) {
    check_sets_get_their_own_revisions(target, addr);
    check_read_your_writes_in_a_pipeline(target, addr);
    check_errors_inside_a_run(target, addr);
    check_big_values_split_into_runs(target, addr);
}

#[test]
fn pipelined_writes_on_a_single_node() {
    let node = Single::start();
    check_all("single", &node.addr);
}

#[test]
fn pipelined_writes_on_a_follower() {
    let mut c = Cluster::start();
    let leader = {
        phase("start: wait for a leader every node agrees on");
        c.must_leader(Duration::from_secs(20))
    };
    let follower = c.ids().into_iter().find(|&id| id != leader).unwrap();
    check_all("follower", &c.redis_addr(follower));
    {
        phase("the leader answers a pipeline the same way");
        check_read_your_writes_in_a_pipeline("leader", &c.redis_addr(leader));
    }
}
