//! Strings and keys through a stock client (the sync `redis` crate), against real processes.
//!
//! - A differential test: the script `testdata/strings_differential.txt` (every string and key
//!   command, with their error cases) runs against a single-node redraft and a real
//!   `redis-server`, and every reply must be identical.
//! - redraft's own commands (REVISION, GETMETA, CAS) with exact revisions (RevisionMonotonic:
//!   one per changing request, none for a no-op or an error), and the options that are not
//!   supported yet.
//! - Atomicity of the read-modify-writes under concurrency: INCR and CAS loops from many
//!   clients, on one node and across a three-node cluster, lose no update.
//! - SCAN's guarantee under concurrent inserts and deletes; binary-safe keys and values.

use crate::common;

use std::collections::BTreeSet;
use std::thread;
use std::time::Duration;

use common::single::{RealRedis, Single};
use common::{phase, Cluster};
use redis::Value;

/// A reply as compared: the value, or the error's code and text.
pub(crate) type Reply = Result<Value, String>;

fn must_run(con: &mut redis::Connection, args: &[Vec<u8>]) -> Reply {
    let name = String::from_utf8(args[0].clone()).expect("command names are UTF-8");
    let mut cmd = redis::cmd(&name);
    for arg in &args[1..] {
        cmd.arg(arg.as_slice());
    }
    cmd.query::<Value>(con)
        .map_err(|e| match (e.code(), e.detail()) {
            (Some(code), Some(detail)) => format!("{code} {detail}"),
            (Some(code), None) => code.to_owned(),
            _ => format!("client error: {e}"),
        })
}

fn must_run_str(con: &mut redis::Connection, line: &str) -> Reply {
    must_run(con, &must_split(line))
}

/// Splits a script line into arguments: spaces separate; `"…"` quotes, with `\"`, `\\`, `\n`,
/// `\r`, `\t` and `\xHH` escapes. Unquoted text is taken as it is.
pub(crate) fn must_split(line: &str) -> Vec<Vec<u8>> {
    let mut args = Vec::new();
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b' ' {
            i += 1;
            continue;
        }
        let mut arg = Vec::new();
        if bytes[i] == b'"' {
            i += 1;
            loop {
                match bytes.get(i) {
                    None => panic!("unterminated quote in {line:?}"),
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(b'\\') => {
                        let esc = bytes.get(i + 1).copied();
                        i += 2;
                        match esc {
                            Some(b'n') => arg.push(b'\n'),
                            Some(b'r') => arg.push(b'\r'),
                            Some(b't') => arg.push(b'\t'),
                            Some(b'x') => {
                                let hex = std::str::from_utf8(&bytes[i..i + 2]).unwrap();
                                arg.push(u8::from_str_radix(hex, 16).unwrap());
                                i += 2;
                            }
                            Some(c) => arg.push(c),
                            None => panic!("dangling escape in {line:?}"),
                        }
                    }
                    Some(&c) => {
                        arg.push(c);
                        i += 1;
                    }
                }
            }
        } else {
            while i < bytes.len() && bytes[i] != b' ' {
                arg.push(bytes[i]);
                i += 1;
            }
        }
        args.push(arg);
    }
    args
}

/// Sorts the items of an array reply (KEYS answers in the server's own order).
fn sorted(reply: Reply) -> Reply {
    reply.map(|v| match v {
        Value::Array(mut items) => {
            items.sort_by_key(|item| format!("{item:?}"));
            Value::Array(items)
        }
        other => other,
    })
}

/// Sorts a flat `field value field value ...` reply by pair (a hash's order is the server's).
fn sorted_pairs(reply: Reply) -> Reply {
    reply.map(|v| match v {
        Value::Array(items) => {
            let mut pairs: Vec<Vec<Value>> = items.chunks(2).map(<[Value]>::to_vec).collect();
            pairs.sort_by_key(|p| format!("{p:?}"));
            Value::Array(pairs.into_iter().flatten().collect())
        }
        other => other,
    })
}

/// A hash field and its value.
type Pair = (Vec<u8>, Vec<u8>);

/// Iterates HSCAN of `key` with `options` from cursor 0 until cursor 0; returns the pairs
/// returned, sorted, or the first error.
fn hscan_all(
    con: &mut redis::Connection,
    key: &[u8],
    options: &[Vec<u8>],
) -> Result<Vec<Pair>, String> {
    let mut cursor = b"0".to_vec();
    let mut pairs = Vec::new();
    for _ in 0..100_000 {
        let mut args = vec![b"HSCAN".to_vec(), key.to_vec(), cursor.clone()];
        args.extend_from_slice(options);
        let Value::Array(parts) = must_run(con, &args)? else {
            return Err("HSCAN reply is not an array".into());
        };
        let [Value::BulkString(next), Value::Array(page)] = parts.as_slice() else {
            return Err(format!("HSCAN reply {parts:?}"));
        };
        for pair in page.chunks(2) {
            match pair {
                [Value::BulkString(f), Value::BulkString(v)] => pairs.push((f.clone(), v.clone())),
                other => return Err(format!("HSCAN pair {other:?}")),
            }
        }
        if next.as_slice() == b"0" {
            pairs.sort();
            return Ok(pairs);
        }
        cursor = next.clone();
    }
    Err("HSCAN did not finish in 100000 calls".into())
}

/// Iterates SCAN with `options` from cursor 0 until the server answers cursor 0; returns the
/// keys returned, sorted, or the first error.
fn scan_all(con: &mut redis::Connection, options: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, String> {
    let mut cursor = b"0".to_vec();
    let mut keys = Vec::new();
    for _ in 0..100_000 {
        let mut args = vec![b"SCAN".to_vec(), cursor.clone()];
        args.extend_from_slice(options);
        match must_run(con, &args)? {
            Value::Array(parts) => match parts.as_slice() {
                [Value::BulkString(next), Value::Array(page)] => {
                    for key in page {
                        match key {
                            Value::BulkString(k) => keys.push(k.clone()),
                            other => return Err(format!("SCAN key {other:?}")),
                        }
                    }
                    let text = String::from_utf8(next.clone()).map_err(|e| e.to_string())?;
                    text.parse::<u64>()
                        .map_err(|e| format!("cursor {text:?} is not a u64: {e}"))?;
                    if next.as_slice() == b"0" {
                        keys.sort();
                        return Ok(keys);
                    }
                    cursor = next.clone();
                }
                other => return Err(format!("SCAN reply {other:?}")),
            },
            other => return Err(format!("SCAN reply {other:?}")),
        }
    }
    Err("SCAN did not finish in 100000 calls".into())
}

/// Runs one script line on one server.
pub(crate) fn run_line(con: &mut redis::Connection, line: &str) -> Reply {
    if let Some(command) = line.strip_prefix("@sorted ") {
        return sorted(must_run_str(con, command));
    }
    if let Some(command) = line.strip_prefix("@sortedpairs ") {
        return sorted_pairs(must_run_str(con, command));
    }
    if let Some(command) = line.strip_prefix("@len ") {
        return must_run_str(con, command).map(|v| match v {
            Value::Array(items) => Value::Int(items.len() as i64),
            other => other,
        });
    }
    if let Some(args) = line.strip_prefix("@hscanall ") {
        let mut args = must_split(args);
        let key = args.remove(0);
        return hscan_all(con, &key, &args).map(|pairs| {
            Value::Array(
                pairs
                    .into_iter()
                    .flat_map(|(f, v)| [Value::BulkString(f), Value::BulkString(v)])
                    .collect(),
            )
        });
    }
    if let Some(options) = line.strip_prefix("@scanall") {
        let keys = scan_all(con, &must_split(options))?;
        return Ok(Value::Array(
            keys.into_iter().map(Value::BulkString).collect(),
        ));
    }
    must_run_str(con, line)
}

/// Runs every line of a differential `script` on both servers; returns how many replies were
/// compared and the mismatches, described.
pub(crate) fn differential(
    ours: &mut redis::Connection,
    theirs: &mut redis::Connection,
    script: &str,
) -> (usize, Vec<String>) {
    let mut mismatches = Vec::new();
    let mut compared = 0;
    for (n, line) in script.lines().enumerate() {
        let line = line.trim_end();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (got, want) = (run_line(ours, line), run_line(theirs, line));
        compared += 1;
        if got != want {
            mismatches.push(format!(
                "line {}: {line}\n    redraft: {}\n    redis:   {}",
                n + 1,
                show(&got),
                show(&want)
            ));
        }
    }
    (compared, mismatches)
}

#[test]
fn replies_match_real_redis() {
    let node = Single::start();
    let redis = RealRedis::start();
    let (mut ours, mut theirs) = (node.must_connect(), redis.must_connect());
    let script = include_str!("../testdata/strings_differential.txt");
    let (compared, mismatches) = differential(&mut ours, &mut theirs, script);
    assert!(compared > 400, "the script ran only {compared} commands");
    assert!(
        mismatches.is_empty(),
        "{} of {compared} replies differ from redis-server:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );

    phase("binary-safe: every byte value in keys and values");
    let all: Vec<u8> = (0..=255u8).collect();
    for con in [&mut ours, &mut theirs] {
        let k = [b"k\0".as_slice(), &all].concat();
        let set = must_run(con, &[b"SET".to_vec(), k.clone(), all.clone()]);
        assert_eq!(set, Ok(Value::Okay));
        let get = must_run(con, &[b"GET".to_vec(), k.clone()]);
        assert_eq!(get, Ok(Value::BulkString(all.clone())));
        let args = [b"APPEND".to_vec(), k.clone(), all.clone()];
        assert_eq!(must_run(con, &args), Ok(Value::Int(512)));
        let range = must_run(
            con,
            &[
                b"GETRANGE".to_vec(),
                k.clone(),
                b"250".into(),
                b"260".into(),
            ],
        );
        let want: Vec<u8> = (250..=255u8).chain(0..=4).collect();
        assert_eq!(range, Ok(Value::BulkString(want)));
        let keys = must_run(con, &[b"KEYS".to_vec(), b"k\0*".to_vec()]);
        assert_eq!(keys, Ok(Value::Array(vec![Value::BulkString(k.clone())])));
    }
}

pub(crate) fn show(reply: &Reply) -> String {
    let text = format!("{reply:?}");
    if text.len() > 300 {
        format!("{}… ({} chars)", &text[..300], text.len())
    } else {
        text
    }
}

/// Returns REVISION's `revision` field.
fn must_revision(con: &mut redis::Connection) -> i64 {
    match must_run_str(con, "REVISION") {
        Ok(Value::Array(fields)) => match fields.as_slice() {
            [Value::BulkString(name), Value::Int(revision), ..] if name == b"revision" => *revision,
            other => panic!("REVISION fields {other:?}"),
        },
        other => panic!("REVISION answered {other:?}"),
    }
}

fn bulk(s: &str) -> Value {
    Value::BulkString(s.as_bytes().to_vec())
}

/// GETMETA's reply for a live key, in RESP2 (a flat map).
fn meta(value: &str, create: i64, modified: i64, version: i64) -> Reply {
    Ok(Value::Array(vec![
        bulk("value"),
        bulk(value),
        bulk("create_revision"),
        Value::Int(create),
        bulk("mod_revision"),
        Value::Int(modified),
        bulk("version"),
        Value::Int(version),
        bulk("ttl"),
        Value::Int(-1),
    ]))
}

/// GETMETA's reply for a live key with a TTL of `ttl` seconds.
fn meta_ttl(value: &str, create: i64, modified: i64, version: i64, ttl: i64) -> Reply {
    meta(value, create, modified, version).map(|v| match v {
        Value::Array(mut fields) => {
            fields[9] = Value::Int(ttl);
            Value::Array(fields)
        }
        other => other,
    })
}

#[test]
fn revisions_getmeta_and_cas_are_exact() {
    let node = Single::start();
    let mut con = node.must_connect();
    let int = |n| Ok(Value::Int(n));
    let err = |text: &str| Err(text.to_owned());
    // Each step: the command, its reply, and the revision afterwards (RevisionMonotonic).
    let steps: &[(&str, Reply, i64)] = &[
        ("GETMETA a", Ok(Value::Nil), 0),
        ("SET a 1", Ok(Value::Okay), 1),
        ("GETMETA a", meta("1", 1, 1, 1), 1),
        ("INCR a", int(2), 2),
        ("INCRBY a 0", int(2), 3),
        ("MSET a 5 b 6 c 7", Ok(Value::Okay), 4),
        ("GETMETA a", meta("5", 1, 4, 4), 4),
        ("GETMETA b", meta("6", 4, 4, 1), 4),
        ("SET a x NX", Ok(Value::Nil), 4),
        ("SETNX a x", int(0), 4),
        ("MSETNX a 1 z 2", int(0), 4),
        ("SET z 1 XX", Ok(Value::Nil), 4),
        ("CAS a 3 z", int(0), 4),
        ("CAS a 1 z", int(0), 4),
        ("CAS a 4 z", int(1), 5),
        ("GETMETA a", meta("z", 1, 5, 5), 5),
        ("CAS a 4 again", int(0), 5),
        ("CAS new 0 v", int(1), 6),
        ("CAS new 0 w", int(0), 6),
        ("GETMETA new", meta("v", 6, 6, 1), 6),
        ("RENAME b bb", Ok(Value::Okay), 7),
        ("GETMETA b", Ok(Value::Nil), 7),
        ("GETMETA bb", meta("6", 7, 7, 1), 7),
        ("RENAME bb bb", Ok(Value::Okay), 7),
        ("RENAMENX c a", int(0), 7),
        ("RENAME missing x", err("ERR no such key"), 7),
        ("DEL missing other", int(0), 7),
        ("GETDEL missing", Ok(Value::Nil), 7),
        (
            "INCR a",
            err("ERR value is not an integer or out of range"),
            7,
        ),
        ("INCRBYFLOAT a 1", err("ERR value is not a valid float"), 7),
        ("APPEND c 8", int(2), 8),
        ("SETRANGE c 0 \"\"", int(2), 8),
        ("SETRANGE c 0 7", int(2), 9),
        ("GETMETA c", meta("78", 4, 9, 3), 9),
        ("FLUSHALL", Ok(Value::Okay), 10),
        ("DBSIZE", int(0), 10),
        ("FLUSHALL", Ok(Value::Okay), 10),
        ("GETMETA a", Ok(Value::Nil), 10),
        ("SET a again", Ok(Value::Okay), 11),
        ("GETMETA a", meta("again", 11, 11, 1), 11),
        // Errors a parse detects.
        (
            "CAS a x v",
            err("ERR value is not an integer or out of range"),
            11,
        ),
        (
            "CAS a -1 v",
            err("ERR value is not an integer or out of range"),
            11,
        ),
        (
            "CAS a 0",
            err("ERR wrong number of arguments for 'cas' command"),
            11,
        ),
        // CAS EX: the key exists, so expecting 0 fails.
        ("CAS a 0 v EX 10", int(0), 11),
        (
            "CAS a 11 v EX 0",
            err("ERR invalid expire time in 'cas' command"),
            11,
        ),
        ("CAS a 0 v EX", err("ERR syntax error"), 11),
        ("CAS a 0 v FOO", err("ERR syntax error"), 11),
        (
            "GETMETA",
            err("ERR wrong number of arguments for 'getmeta' command"),
            11,
        ),
        (
            "GETMETA a b",
            err("ERR wrong number of arguments for 'getmeta' command"),
            11,
        ),
        (
            "REVISION x",
            err("ERR wrong number of arguments for 'revision' command"),
            11,
        ),
        // Expiry options: each set is a revision; a deadline already passed deletes.
        ("SET a v EX 10", Ok(Value::Okay), 12),
        ("SET a v px 100000", Ok(Value::Okay), 13),
        ("SET a v NX EXAT 10", Ok(Value::Nil), 13),
        ("SET a v PXAT 10 GET", Ok(bulk("v")), 14),
        ("GETMETA a", Ok(Value::Nil), 14),
        ("SET a v EX 10 EX 1000", Ok(Value::Okay), 15),
        ("SET a v EX 10 PX 10", err("ERR syntax error"), 15),
        ("GETMETA a", meta_ttl("v", 15, 15, 1, 1000), 15),
        // Changing a deadline is a put of the same value: mod_revision and version move.
        ("EXPIRE a 2000", int(1), 16),
        ("GETMETA a", meta_ttl("v", 15, 16, 2, 2000), 16),
        ("PERSIST a", int(1), 17),
        ("PERSIST a", int(0), 17),
        ("GETMETA a", meta("v", 15, 17, 3), 17),
        ("CAS a 17 w EX 500", int(1), 18),
        ("GETMETA a", meta_ttl("w", 15, 18, 4, 500), 18),
        ("CAS a 18 x", int(1), 19),
        ("GETMETA a", meta("x", 15, 19, 5), 19),
        ("EXPIRE a -1", int(1), 20),
        ("GETMETA a", Ok(Value::Nil), 20),
        ("EXPIRE a 10", int(0), 20),
        // One transaction, one revision, whatever it changes.
        ("MULTI", Ok(Value::Okay), 20),
        ("SET t1 1", Ok(Value::SimpleString("QUEUED".into())), 20),
        ("INCR t1", Ok(Value::SimpleString("QUEUED".into())), 20),
        ("SET t2 2", Ok(Value::SimpleString("QUEUED".into())), 20),
        (
            "EXEC",
            Ok(Value::Array(vec![Value::Okay, Value::Int(2), Value::Okay])),
            21,
        ),
        ("GETMETA t1", meta("2", 21, 21, 2), 21),
        ("GETMETA t2", meta("2", 21, 21, 1), 21),
        // A transaction that changes nothing bumps nothing.
        ("MULTI", Ok(Value::Okay), 21),
        ("GET t1", Ok(Value::SimpleString("QUEUED".into())), 21),
        ("EXEC", Ok(Value::Array(vec![bulk("2")])), 21),
    ];
    // REVISION from another connection: this one may be inside MULTI.
    let mut observer = node.must_connect();
    for (i, (command, want, want_revision)) in steps.iter().enumerate() {
        let got = must_run_str(&mut con, command);
        assert_eq!(&got, want, "step {i}: {command}");
        assert_eq!(
            must_revision(&mut observer),
            *want_revision,
            "step {i}: revision after {command}"
        );
    }
    match must_run_str(&mut con, "REVISION") {
        Ok(Value::Array(fields)) => match fields.as_slice() {
            [r, Value::Int(21), c, Value::Int(0), t, Value::Int(term), l, Value::Int(1)] => {
                assert_eq!(
                    [r, c, t, l],
                    [
                        &bulk("revision"),
                        &bulk("compact_revision"),
                        &bulk("raft_term"),
                        &bulk("raft_leader")
                    ]
                );
                assert!(*term >= 1, "raft_term {term}");
            }
            other => panic!("REVISION fields {other:?}"),
        },
        other => panic!("REVISION answered {other:?}"),
    }
}

/// Runs `threads` clients doing `per_thread` INCRs on `key`, each against `addrs[i % len]`;
/// returns every reply.
fn must_incr_concurrently(
    addrs: &[String],
    key: &str,
    threads: usize,
    per_thread: usize,
) -> Vec<i64> {
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let addr = addrs[t % addrs.len()].clone();
            let key = key.to_owned();
            thread::spawn(move || {
                let mut con = common::connect(&addr, Duration::from_secs(10))
                    .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
                (0..per_thread)
                    .map(|_| {
                        redis::cmd("INCR")
                            .arg(&key)
                            .query::<i64>(&mut con)
                            .unwrap_or_else(|e| panic!("INCR on {addr}: {e}"))
                    })
                    .collect::<Vec<i64>>()
            })
        })
        .collect();
    handles
        .into_iter()
        .flat_map(|h| h.join().expect("INCR client thread"))
        .collect()
}

/// Runs `threads` clients that each add 1 to `key` `per_thread` times with GETMETA + CAS
/// retry loops; returns how many CAS each thread won.
fn must_cas_concurrently(addrs: &[String], key: &str, threads: usize, per_thread: usize) -> usize {
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let addr = addrs[t % addrs.len()].clone();
            let key = key.to_owned();
            thread::spawn(move || {
                let mut con = common::connect(&addr, Duration::from_secs(10))
                    .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
                let mut won = 0;
                while won < per_thread {
                    let meta: Value = redis::cmd("GETMETA").arg(&key).query(&mut con).unwrap();
                    let (value, mod_revision) = match meta {
                        Value::Nil => (0, 0),
                        Value::Array(f) => match (&f[1], &f[5]) {
                            (Value::BulkString(v), Value::Int(m)) => {
                                (String::from_utf8_lossy(v).parse::<i64>().unwrap(), *m)
                            }
                            other => panic!("GETMETA fields {other:?}"),
                        },
                        other => panic!("GETMETA {other:?}"),
                    };
                    let ok: i64 = redis::cmd("CAS")
                        .arg(&key)
                        .arg(mod_revision)
                        .arg(value + 1)
                        .query(&mut con)
                        .unwrap_or_else(|e| panic!("CAS on {addr}: {e}"));
                    won += ok as usize;
                }
                won
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("CAS client thread"))
        .sum()
}

#[test]
fn concurrent_incr_and_cas_lose_no_update_on_one_node() {
    let node = Single::start();
    let mut con = node.must_connect();
    let addrs = [node.addr.clone()];
    let before = must_revision(&mut con);
    {
        phase("8 clients x 200 INCR on one key");
        let mut replies = must_incr_concurrently(&addrs, "counter", 8, 200);
        replies.sort_unstable();
        // Atomic: every INCR saw a different value, 1..=1600, none lost or repeated.
        assert_eq!(replies, (1..=1600).collect::<Vec<i64>>());
        assert_eq!(must_run_str(&mut con, "GET counter"), Ok(bulk("1600")));
        assert_eq!(
            must_revision(&mut con),
            before + 1600,
            "one revision per INCR"
        );
    }
    {
        phase("4 clients x 50 GETMETA+CAS increments on one key");
        let won = must_cas_concurrently(&addrs, "cas-counter", 4, 50);
        assert_eq!(won, 200);
        assert_eq!(must_run_str(&mut con, "GET cas-counter"), Ok(bulk("200")));
    }
}

#[test]
fn concurrent_incr_and_cas_lose_no_update_across_a_cluster() {
    let mut c = Cluster::start();
    c.must_leader(Duration::from_secs(20));
    let addrs: Vec<String> = c.ids().into_iter().map(|id| c.redis_addr(id)).collect();
    {
        phase("6 clients x 100 INCR, two per node (followers forward to the leader)");
        let mut replies = must_incr_concurrently(&addrs, "counter", 6, 100);
        replies.sort_unstable();
        assert_eq!(replies, (1..=600).collect::<Vec<i64>>());
    }
    {
        phase("3 clients x 30 CAS increments, one per node");
        assert_eq!(must_cas_concurrently(&addrs, "cas-counter", 3, 30), 90);
    }
    {
        phase("every node reads the final values (linearizable reads)");
        for id in c.ids() {
            let mut con = c.must_connect(id);
            assert_eq!(
                must_run_str(&mut con, "GET counter"),
                Ok(bulk("600")),
                "node {id}"
            );
            assert_eq!(
                must_run_str(&mut con, "GET cas-counter"),
                Ok(bulk("90")),
                "node {id}"
            );
        }
    }
}

#[test]
fn scan_returns_every_stable_key_under_concurrent_writes() {
    let node = Single::start();
    let mut con = node.must_connect();
    let stable: BTreeSet<Vec<u8>> = (0..500)
        .map(|i| format!("stable:{i}").into_bytes())
        .collect();
    let mut mset = redis::cmd("MSET");
    for key in &stable {
        mset.arg(key.as_slice()).arg("v");
    }
    let () = mset.query(&mut con).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churn = {
        let (addr, stop) = (node.addr.clone(), stop.clone());
        thread::spawn(move || {
            let mut con = common::connect(&addr, Duration::from_secs(10)).unwrap();
            let mut i = 0u64;
            // Bounded: stops when told, or after 20000 writes.
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && i < 20_000 {
                let key = format!("churn:{}", i % 300);
                let cmd = if (i / 300) % 2 == 0 { "SET" } else { "DEL" };
                let mut c = redis::cmd(cmd);
                c.arg(&key);
                if cmd == "SET" {
                    c.arg(i);
                }
                let _: Value = c.query(&mut con).unwrap();
                i += 1;
            }
            i
        })
    };
    let mut rounds = 0;
    for count in [1usize, 7, 50] {
        phase(&format!(
            "SCAN COUNT {count} to completion while keys come and go"
        ));
        let mut cursor = "0".to_owned();
        let mut returned: Vec<Vec<u8>> = Vec::new();
        loop {
            let (next, page): (String, Vec<Vec<u8>>) = redis::cmd("SCAN")
                .arg(&cursor)
                .arg("COUNT")
                .arg(count)
                .query(&mut con)
                .unwrap();
            next.parse::<u64>().expect("cursors are u64");
            returned.extend(page);
            rounds += 1;
            if next == "0" {
                break;
            }
            cursor = next;
        }
        let unique: BTreeSet<Vec<u8>> = returned.iter().cloned().collect();
        assert_eq!(
            unique.len(),
            returned.len(),
            "COUNT {count}: a key returned twice"
        );
        let missing: Vec<String> = stable
            .difference(&unique)
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect();
        assert!(
            missing.is_empty(),
            "COUNT {count}: stable keys not returned: {missing:?}"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let writes = churn.join().expect("churn thread");
    assert!(
        writes > 0 && rounds > 500,
        "writes {writes}, scan calls {rounds}"
    );
}
