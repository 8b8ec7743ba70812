//! A client never has to find the leader (DESIGN §1): on a three-node cluster, the same script
//! of string, key and connection commands (error cases included) gets the same replies from a
//! follower as from the leader, one command at a time and pipelined. Writes through the
//! follower are forwarded, reads pass its read gate; neither may change a reply.
//!
//! The same script also runs against a real `redis-server`, which checks the script (and the
//! expected replies it implies) is Redis's. Fields that legitimately differ are masked: client
//! ids, HELLO's `id`/`role`/`server`/`version`, TIME, revisions. ROLE and INFO replication are
//! checked separately: master on the leader, slave on the follower.
//!
//! Needs the string/key commands branch (SET options, SETNX, GETSET, GETDEL, MSET, MGET, MSETNX,
//! INCR/DECR/INCRBY, APPEND, STRLEN, GETRANGE, SETRANGE, TYPE, RENAME, KEYS, SCAN, CAS) and the
//! connection/server branch (HELLO 2/3, COMMAND COUNT, TIME) before the Redis comparison
//! passes; the leader/follower comparison holds either way.

use crate::common;
use crate::common::raw;

use std::time::Duration;

use common::single::RealRedis;
use common::{phase, Cluster};
use raw::{escape, multibulk, RawConn, Reply};

/// How a reply is compared.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Check {
    /// Byte for byte (after the key prefix is normalised).
    Exact,
    /// An array whose order is the server's: sorted first.
    Sorted,
    /// Only the shape: every integer becomes 0 and every string `<x>`.
    Shape,
    /// A HELLO map (RESP3) or flat array (RESP2): `id`, `role`, `server`, `version` masked.
    Hello,
    /// Integers masked (revisions differ between runs), strings exact.
    NoIntegers,
}

/// One command of the script; `{p}` in an argument is replaced by the run's key prefix.
struct Step {
    args: &'static [&'static str],
    check: Check,
    /// Whether Redis defines this reply (redraft's own commands and redraft-only limits do not).
    redis: bool,
}

const fn s(args: &'static [&'static str]) -> Step {
    Step {
        args,
        check: Check::Exact,
        redis: true,
    }
}

const fn c(args: &'static [&'static str], check: Check) -> Step {
    Step {
        args,
        check,
        redis: true,
    }
}

const fn own(args: &'static [&'static str], check: Check) -> Step {
    Step {
        args,
        check,
        redis: false,
    }
}

/// The script. Keys are `{p}:name`, so every run has its own keys in the one keyspace.
const SCRIPT: &[Step] = &[
    // ---- connection ----
    s(&["PING"]),
    s(&["PING", "hello"]),
    s(&["PING", "a", "b"]),
    s(&["ECHO", "echo\r\nme"]),
    s(&["ECHO"]),
    s(&["SELECT", "0"]),
    // Like a Redis Cluster node, not a standalone Redis: redraft-only reply.
    own(&["SELECT", "16"], Check::Exact),
    s(&["SELECT", "x"]),
    s(&["CLIENT", "SETNAME", "t15"]),
    s(&["CLIENT", "GETNAME"]),
    s(&["CLIENT", "SETNAME", "a b"]),
    c(&["CLIENT", "ID"], Check::Shape),
    s(&["AUTH", "nopass"]),
    s(&["CONFIG", "GET", "save"]),
    s(&["nosuchcmd", "x"]),
    c(&["TIME"], Check::Shape),
    c(&["HELLO", "2"], Check::Hello),
    s(&["HELLO", "4"]),
    own(&["COMMAND", "COUNT"], Check::Exact),
    // ---- strings ----
    s(&["SET", "{p}:a", "1"]),
    s(&["GET", "{p}:a"]),
    s(&["GET", "{p}:missing"]),
    s(&["GET"]),
    s(&["SET", "{p}:a"]),
    s(&["SET", "{p}:a", "2", "NX"]),
    s(&["SET", "{p}:a", "3", "XX"]),
    s(&["SET", "{p}:a", "4", "GET"]),
    s(&["SET", "{p}:nx", "v", "XX"]),
    s(&["SET", "{p}:ex", "x", "EX", "100"]),
    s(&["TTL", "{p}:ex"]),
    s(&["EXPIRE", "{p}:ex", "1000", "GT"]),
    s(&["TTL", "{p}:ex"]),
    s(&["SET", "{p}:b", "x", "BOGUS"]),
    s(&["SET", "{p}:c", "v", "EX", "-1"]),
    s(&["SET", "{p}:c", "v", "EX", "10", "PX", "10"]),
    s(&["GETEX", "{p}:ex", "PERSIST"]),
    s(&["TTL", "{p}:ex"]),
    // A transaction through the follower is forwarded as one entry.
    s(&["MULTI"]),
    s(&["SET", "{p}:tx", "1"]),
    s(&["INCR", "{p}:tx"]),
    s(&["GET", "{p}:tx"]),
    s(&["SET", "{p}:tx", "v", "BADOPT"]),
    s(&["EXEC"]),
    s(&["WATCH", "{p}:tx"]),
    s(&["SET", "{p}:tx", "3"]),
    s(&["MULTI"]),
    s(&["INCR", "{p}:tx"]),
    s(&["EXEC"]),
    s(&["MULTI"]),
    s(&["GET"]),
    s(&["EXEC"]),
    s(&["SETNX", "{p}:a", "z"]),
    s(&["SETNX", "{p}:d", "z"]),
    s(&["GETSET", "{p}:d", "y"]),
    s(&["GETDEL", "{p}:d"]),
    s(&["GETDEL", "{p}:d"]),
    s(&["MSET", "{p}:m1", "1", "{p}:m2", "2"]),
    s(&["MSET", "{p}:m1"]),
    s(&["MGET", "{p}:m1", "{p}:missing", "{p}:m2"]),
    s(&["MSETNX", "{p}:m1", "x", "{p}:m3", "y"]),
    s(&["MSETNX", "{p}:m3", "y", "{p}:m4", "z"]),
    s(&["INCR", "{p}:n"]),
    s(&["INCRBY", "{p}:n", "41"]),
    s(&["DECR", "{p}:n"]),
    s(&["INCR", "{p}:b"]),
    s(&["INCRBY", "{p}:n", "x"]),
    s(&["SET", "{p}:big", "9223372036854775807"]),
    s(&["INCR", "{p}:big"]),
    s(&["APPEND", "{p}:ap", "hello"]),
    s(&["APPEND", "{p}:ap", " world"]),
    s(&["STRLEN", "{p}:ap"]),
    s(&["STRLEN", "{p}:missing"]),
    s(&["GETRANGE", "{p}:ap", "0", "4"]),
    s(&["GETRANGE", "{p}:ap", "-5", "-1"]),
    s(&["SETRANGE", "{p}:ap", "6", "W"]),
    s(&["GET", "{p}:ap"]),
    s(&["SETRANGE", "{p}:sr", "3", "x"]),
    s(&["GET", "{p}:sr"]),
    s(&["SETRANGE", "{p}:ap", "-1", "x"]),
    s(&["SET", "{p}:bin", "\0\r\n$1\r\n"]),
    s(&["GET", "{p}:bin"]),
    // ---- keys ----
    s(&["TYPE", "{p}:a"]),
    s(&["TYPE", "{p}:missing"]),
    s(&["EXISTS", "{p}:a", "{p}:missing", "{p}:a"]),
    s(&["RENAME", "{p}:a", "{p}:a2"]),
    s(&["GET", "{p}:a2"]),
    s(&["RENAME", "{p}:missing", "{p}:x"]),
    c(&["KEYS", "{p}:m*"], Check::Sorted),
    c(
        &["SCAN", "0", "MATCH", "{p}:m*", "COUNT", "1000"],
        Check::Sorted,
    ),
    s(&["DEL", "{p}:m1", "{p}:m2", "{p}:missing"]),
    s(&["UNLINK", "{p}:m3"]),
    s(&["EXISTS", "{p}:m1", "{p}:m3", "{p}:m4"]),
    // ---- redraft's own ----
    own(&["CAS", "{p}:cas", "0", "v"], Check::Exact),
    own(&["CAS", "{p}:cas", "0", "w"], Check::Exact),
    own(&["GETMETA", "{p}:cas"], Check::NoIntegers),
    own(&["REVISION"], Check::Shape),
    // ---- RESP3 on the same connection, then back ----
    c(&["HELLO", "3"], Check::Hello),
    s(&["GET", "{p}:missing"]),
    s(&["MGET", "{p}:a2", "{p}:missing"]),
    s(&["CONFIG", "GET", "save"]),
    s(&["EXISTS", "{p}:a2"]),
    s(&["GET"]),
    c(&["HELLO", "2"], Check::Hello),
    s(&["GET", "{p}:missing"]),
];

fn args_for(step: &Step, prefix: &str) -> Vec<Vec<u8>> {
    step.args
        .iter()
        .map(|a| a.replace("{p}", prefix).into_bytes())
        .collect()
}

/// Replaces `prefix` with `{p}` in every string of `reply`, then applies `check`'s masks.
fn normalise(reply: Reply, prefix: &str, check: Check) -> Reply {
    let reply = map_strings(reply, &|b| replace(b, prefix.as_bytes(), b"{p}"));
    match check {
        Check::Exact => reply,
        Check::Sorted => sort_arrays(reply),
        Check::Shape => shape(reply),
        Check::NoIntegers => no_integers(reply),
        Check::Hello => mask_hello(reply),
    }
}

fn replace(b: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

fn map_items(items: Vec<Reply>, f: &dyn Fn(Reply) -> Reply) -> Vec<Reply> {
    items.into_iter().map(f).collect()
}

/// Applies `f` to the bytes of every string in `reply`.
fn map_strings(reply: Reply, f: &dyn Fn(&[u8]) -> Vec<u8>) -> Reply {
    let rec = |r| map_strings(r, f);
    match reply {
        Reply::Simple(b) => Reply::Simple(f(&b)),
        Reply::Error(b) => Reply::Error(f(&b)),
        Reply::Bulk(Some(b)) => Reply::Bulk(Some(f(&b))),
        Reply::Verbatim(b) => Reply::Verbatim(f(&b)),
        Reply::Array(Some(items)) => Reply::Array(Some(map_items(items, &rec))),
        Reply::Set(items) => Reply::Set(map_items(items, &rec)),
        Reply::Push(items) => Reply::Push(map_items(items, &rec)),
        Reply::Map(pairs) => Reply::Map(pairs.into_iter().map(|(k, v)| (rec(k), rec(v))).collect()),
        other => other,
    }
}

/// Sorts every array of plain strings (KEYS, and the key list inside a SCAN reply).
fn sort_arrays(reply: Reply) -> Reply {
    match reply {
        Reply::Array(Some(items)) => {
            let mut items = map_items(items, &sort_arrays);
            if items.iter().all(|i| matches!(i, Reply::Bulk(Some(_)))) {
                items.sort_by_key(|i| format!("{i:?}"));
            }
            Reply::Array(Some(items))
        }
        other => other,
    }
}

fn shape(reply: Reply) -> Reply {
    let masked = map_strings(reply, &|_| b"<x>".to_vec());
    no_integers(masked)
}

fn no_integers(reply: Reply) -> Reply {
    match reply {
        Reply::Integer(_) => Reply::Integer(0),
        Reply::Array(Some(items)) => Reply::Array(Some(map_items(items, &no_integers))),
        Reply::Set(items) => Reply::Set(map_items(items, &no_integers)),
        Reply::Map(pairs) => Reply::Map(
            pairs
                .into_iter()
                .map(|(k, v)| (no_integers(k), no_integers(v)))
                .collect(),
        ),
        other => other,
    }
}

fn mask_hello(reply: Reply) -> Reply {
    const MASKED: [&[u8]; 4] = [b"id", b"role", b"server", b"version"];
    let masked = || Reply::Simple(b"<masked>".to_vec());
    let is_masked = |k: &Reply| matches!(k, Reply::Bulk(Some(b)) | Reply::Simple(b) if MASKED.contains(&b.as_slice()));
    match reply {
        Reply::Map(pairs) => Reply::Map(
            pairs
                .into_iter()
                .map(|(k, v)| if is_masked(&k) { (k, masked()) } else { (k, v) })
                .collect(),
        ),
        Reply::Array(Some(items)) => {
            let mut out = Vec::with_capacity(items.len());
            let mut it = items.into_iter();
            while let Some(k) = it.next() {
                let v = it.next();
                let mask = is_masked(&k);
                out.push(k);
                out.extend(v.map(|v| if mask { masked() } else { v }));
            }
            Reply::Array(Some(out))
        }
        other => other,
    }
}

/// Runs the script one command at a time on a fresh connection to `addr`.
fn run_step_by_step(addr: &str, prefix: &str) -> Vec<Reply> {
    let mut conn = RawConn::must_connect(addr);
    SCRIPT
        .iter()
        .map(|step| {
            let reply = conn.must_call(&args_for(step, prefix));
            normalise(reply, prefix, step.check)
        })
        .collect()
}

/// Sends the whole script in one write on a fresh connection to `addr`, then reads every reply.
fn run_pipelined(addr: &str, prefix: &str) -> Vec<Reply> {
    let mut conn = RawConn::must_connect(addr);
    let input: Vec<u8> = SCRIPT
        .iter()
        .flat_map(|step| multibulk(&args_for(step, prefix)))
        .collect();
    conn.send(&input);
    conn.must_read_replies(SCRIPT.len(), Duration::from_secs(60))
        .into_iter()
        .zip(SCRIPT)
        .map(|(reply, step)| normalise(reply, prefix, step.check))
        .collect()
}

/// One line per step where `got` differs from `want`.
fn diff(what: &str, want: &[Reply], got: &[Reply], only_redis: bool) -> Vec<String> {
    SCRIPT
        .iter()
        .zip(want.iter().zip(got))
        .enumerate()
        .filter(|(_, (step, (w, g)))| w != g && (!only_redis || step.redis))
        .map(|(i, (step, (w, g)))| {
            let args: Vec<String> = step.args.iter().map(|a| escape(a.as_bytes())).collect();
            format!("  {what}, step {i} {args:?}:\n    want {w:?}\n    got  {g:?}")
        })
        .collect()
}

#[test]
fn leader_and_follower_answer_the_same_script_alike() {
    let mut cluster = Cluster::start();
    let redis = RealRedis::start();
    let leader = cluster.must_leader(Duration::from_secs(20));
    let follower = cluster
        .ids()
        .into_iter()
        .find(|&id| id != leader)
        .expect("a follower");
    let (leader_addr, follower_addr) = (cluster.redis_addr(leader), cluster.redis_addr(follower));

    {
        phase("ROLE and INFO replication are the fields that do differ: master vs slave");
        for (id, want) in [(leader, "master"), (follower, "slave")] {
            let mut con = cluster.must_connect(id);
            let role = common::try_role(&mut con).unwrap_or_else(|e| cluster.fail(&e));
            assert_eq!(role, want, "ROLE of node {id}");
            let info =
                common::try_info(&mut con, "replication").unwrap_or_else(|e| cluster.fail(&e));
            assert_eq!(
                info.get("role").map(String::as_str),
                Some(want),
                "INFO replication of node {id}: {info:?}"
            );
        }
    }

    let (on_leader, on_follower, on_redis, leader_piped, follower_piped);
    {
        phase("the script, one command at a time, on the leader, the follower and redis-server");
        on_leader = run_step_by_step(&leader_addr, "t15-leader");
        on_follower = run_step_by_step(&follower_addr, "t15-follower");
        on_redis = run_step_by_step(&redis.addr, "t15-redis");
    }
    {
        phase("the script as one pipeline on the leader and on the follower");
        leader_piped = run_pipelined(&leader_addr, "t15-leader-piped");
        follower_piped = run_pipelined(&follower_addr, "t15-follower-piped");
    }

    let mut identity = Vec::new();
    identity.extend(diff("follower vs leader", &on_leader, &on_follower, false));
    identity.extend(diff(
        "leader pipelined vs one at a time",
        &on_leader,
        &leader_piped,
        false,
    ));
    identity.extend(diff(
        "follower pipelined vs leader",
        &on_leader,
        &follower_piped,
        false,
    ));
    let conformance = diff("leader vs redis-server", &on_redis, &on_leader, true);
    if !identity.is_empty() || !conformance.is_empty() {
        cluster.fail(&format!(
            "{} leader/follower difference(s):\n{}\n\n{} difference(s) from redis-server (the \
             script's expected replies; steps with `own` are redraft-only and not compared):\n{}",
            identity.len(),
            identity.join("\n"),
            conformance.len(),
            conformance.join("\n")
        ));
    }
}
