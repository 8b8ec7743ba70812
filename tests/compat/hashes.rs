//! Hashes against real Redis and through real clients.
//!
//! - A differential test: `testdata/hashes_differential.txt` (every hash command with its
//!   error cases, WRONGTYPE both ways, TTLs and RENAME on hashes, HSCAN and HRANDFIELD shapes,
//!   hashes in MULTI and in scripts) runs against a single-node redraft and a real
//!   `redis-server`, and every reply must be identical.
//! - History and watch on hashes: each write is one revision of the key; `HISTORY`/`GETAT`
//!   answer a hash's fields; the watch stream names the changed fields.
//! - redis-py's `hset(mapping=...)`/`hgetall` through a follower of a three-node cluster.
//! - ioredis's hash calls and the Redlock library (its own lock, extend and unlock scripts;
//!   mutual exclusion of two clients) through a follower.

use crate::common;
use crate::strings_differential::differential;

use std::time::Duration;

use common::client_libs::run_script_against;
use common::phase;
use common::single::{RealRedis, Single};
use common::Cluster;
use redis::Value;

#[test]
fn hash_replies_match_real_redis() {
    let node = Single::start();
    let redis = RealRedis::start();
    let (mut ours, mut theirs) = (node.must_connect(), redis.must_connect());
    let script = include_str!("../testdata/hashes_differential.txt");
    let (compared, mismatches) = differential(&mut ours, &mut theirs, script);
    assert!(compared > 220, "the script ran only {compared} commands");
    assert!(
        mismatches.is_empty(),
        "{} of {compared} replies differ from redis-server:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );

    phase("RESP3: HGETALL is a map, HRANDFIELD WITHVALUES an array of pairs");
    let resp3 = "HELLO 3\nHSET r3 f v\nHGETALL r3\nHRANDFIELD r3 -2 WITHVALUES\n\
                 HRANDFIELD r3 1 WITHVALUES\nHRANDFIELD r3 -1";
    let mut lines = resp3.lines();
    let hello = lines.next().expect("HELLO line");
    for con in [&mut ours, &mut theirs] {
        redis::cmd("HELLO")
            .arg(&hello[6..])
            .query::<Value>(con)
            .expect("HELLO 3");
    }
    let (compared, mismatches) = differential(
        &mut ours,
        &mut theirs,
        &lines.collect::<Vec<_>>().join("\n"),
    );
    assert_eq!(compared, 5);
    assert!(
        mismatches.is_empty(),
        "RESP3 replies differ:\n{}",
        mismatches.join("\n")
    );
}

fn bulk(s: &str) -> Value {
    Value::BulkString(s.as_bytes().to_vec())
}

#[test]
fn hashes_through_a_follower_with_history_and_watch() {
    let redis = RealRedis::start();
    if let Err(e) = run_script_against("python3", "redis_py_hashes.py", &redis.addr) {
        panic!("the script fails against redis-server itself: {e}");
    }
    let mut c = Cluster::start();
    let leader = c.must_leader(Duration::from_secs(20));
    let follower = c.ids().into_iter().find(|&i| i != leader).unwrap();

    phase("redis-py's hash calls through a follower");
    if let Err(e) = run_script_against("python3", "redis_py_hashes.py", &c.redis_addr(follower)) {
        panic!("redis-py's hashes through a follower: {e}");
    }

    phase("a hash's history and watch entries, read on another node");
    let mut con = c.must_connect(follower);
    let added: i64 = redis::cmd("HSET")
        .arg("cfg")
        .arg(&["a", "1", "b", "2"])
        .query(&mut con)
        .unwrap();
    assert_eq!(added, 2);
    let _: i64 = redis::cmd("HSET")
        .arg("cfg")
        .arg(&["b", "3"])
        .query(&mut con)
        .unwrap();
    let _: i64 = redis::cmd("HDEL")
        .arg("cfg")
        .arg("a")
        .query(&mut con)
        .unwrap();
    let mut lcon = c.must_connect(leader);
    // Linearizable by default: the leader's reads see the follower's acknowledged writes.
    let history: Vec<Value> = redis::cmd("HISTORY").arg("cfg").query(&mut lcon).unwrap();
    let shape: Vec<(String, Value)> = history
        .iter()
        .map(|e| match e {
            Value::Array(parts) => match parts.as_slice() {
                [Value::Int(_), Value::BulkString(t), v] => {
                    (String::from_utf8_lossy(t).into_owned(), v.clone())
                }
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        })
        .collect();
    let flat = |p: &[&str]| Value::Array(p.iter().map(|s| bulk(s)).collect());
    assert_eq!(
        shape,
        vec![
            ("hset".to_string(), flat(&["a", "1", "b", "2"])),
            ("hset".to_string(), flat(&["a", "1", "b", "3"])),
            ("hdel".to_string(), flat(&["b", "3"])),
        ]
    );
    let rev = match &history[0] {
        Value::Array(parts) => match parts[0] {
            Value::Int(r) => r,
            _ => unreachable!(),
        },
        _ => unreachable!(),
    };
    let at_first: Value = redis::cmd("GETAT")
        .arg("cfg")
        .arg(rev)
        .query(&mut lcon)
        .unwrap();
    assert_eq!(
        at_first,
        flat(&["a", "1", "b", "2"]),
        "GETAT of a hash version"
    );
    let entries: Value = redis::cmd("XRANGE")
        .arg("__watch__:cfg")
        .arg("-")
        .arg("+")
        .query(&mut lcon)
        .unwrap();
    let fields: Vec<Value> = match entries {
        Value::Array(items) => items
            .into_iter()
            .map(|e| match e {
                Value::Array(mut p) => p.pop().unwrap(),
                other => panic!("{other:?}"),
            })
            .collect(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        fields,
        vec![
            flat(&["type", "hset", "key", "cfg", "set:a", "1", "set:b", "2", "author", "default"]),
            flat(&["type", "hset", "key", "cfg", "set:b", "3", "prev:b", "2", "author", "default"]),
            flat(&["type", "hdel", "key", "cfg", "del:a", "1", "author", "default"]),
        ]
    );

    phase("every node holds the same hashes");
    c.must_wait(
        Duration::from_secs(20),
        "equal HGETALL on every node",
        |c| {
            let mut seen = Vec::new();
            for id in c.ids() {
                let mut con = c.try_connect(id)?;
                redis::cmd("READMODE")
                    .arg("stale")
                    .query::<()>(&mut con)
                    .map_err(|e| e.to_string())?;
                let all: Vec<Vec<u8>> = redis::cmd("HGETALL")
                    .arg("cfg")
                    .query(&mut con)
                    .map_err(|e| e.to_string())?;
                seen.push(all);
            }
            if seen.windows(2).all(|w| w[0] == w[1]) && seen[0].len() == 2 {
                Ok(())
            } else {
                Err(format!("{seen:?}"))
            }
        },
    );
}

#[test]
fn ioredis_hashes_and_redlock_through_a_follower() {
    let redis = RealRedis::start();
    if let Err(e) = run_script_against("node", "ioredis_hashes_redlock.js", &redis.addr) {
        panic!("the script fails against redis-server itself: {e}");
    }
    let mut c = Cluster::start();
    let leader = c.must_leader(Duration::from_secs(20));
    let follower = c.ids().into_iter().find(|&i| i != leader).unwrap();
    if let Err(e) = run_script_against("node", "ioredis_hashes_redlock.js", &c.redis_addr(follower))
    {
        panic!("ioredis's hashes and Redlock through a follower: {e}");
    }
}
