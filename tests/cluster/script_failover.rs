//! Scripts across faults.
//!
//! `EVAL "return redis.call('incr', KEYS[1])"` sent in a loop through the two nodes that
//! survive while the leader is killed with SIGKILL.
//!
//! Every acknowledged script ran exactly once (its reply is a counter value no other reply
//! had, and the counter ends between the number acknowledged and that plus the number whose
//! outcome was unknown: a failed or uncertain script may or may not have run, but never twice,
//! the dedup table sees to that as for any write); the restarted node ends with the same
//! counter and the same history of it as the others (the script ran at apply on every node).
//!
//! A Lua lock with fencing tokens (acquire = `SET NX PX` + `INCR` in one script, release =
//! compare-and-delete) taken by three clients through every node while the leader is killed
//! and a follower paused: no two holders at once, unique tokens, identical nodes afterwards.
//!
//! A script returning a table nested 100,000 deep (ReplyDepthBound), or `cjson.encode` of it
//! (ScriptStack), takes no node down, then or at a restart's replay.

use crate::common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::{connect, phase, Cluster};

const SCRIPT: &str = "return redis.call('incr', KEYS[1])";

#[derive(Default)]
struct Outcomes {
    acked: Vec<i64>,
    unknown: u64,
}

#[test]
fn scripts_survive_a_leader_kill_exactly_once() {
    let mut c = Cluster::start();
    let old_leader = c.must_leader(Duration::from_secs(20));
    let survivors: Vec<u64> = c.ids().into_iter().filter(|&id| id != old_leader).collect();
    let addrs: Vec<String> = survivors.iter().map(|&id| c.redis_addr(id)).collect();

    phase("EVAL INCR in a loop through the survivors");
    let stop = Arc::new(AtomicBool::new(false));
    let out = Arc::new(Mutex::new(Outcomes::default()));
    let writer = {
        let (stop, out) = (stop.clone(), out.clone());
        thread::spawn(move || {
            let mut n = 0usize;
            let mut con: Option<redis::Connection> = None;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let addr = &addrs[n % addrs.len()];
                if con.is_none() {
                    con = connect(addr, Duration::from_secs(2)).ok();
                }
                let Some(cn) = con.as_mut() else {
                    thread::sleep(Duration::from_millis(50));
                    continue;
                };
                let r: redis::RedisResult<i64> = redis::cmd("EVAL")
                    .arg(SCRIPT)
                    .arg(1)
                    .arg("counter")
                    .query(cn);
                let mut o = out.lock().unwrap();
                match r {
                    Ok(v) => o.acked.push(v),
                    Err(_) => {
                        o.unknown += 1;
                        con = None;
                    }
                }
            }
        })
    };
    let acked = |out: &Arc<Mutex<Outcomes>>| out.lock().unwrap().acked.len();
    c.must_wait(
        Duration::from_secs(20),
        "30 scripts before the kill",
        |_| match acked(&out) {
            n if n >= 30 => Ok(()),
            n => Err(format!("{n} acknowledged")),
        },
    );

    phase("kill -9 the leader; scripts go on through the new one");
    c.kill9(old_leader);
    let at_kill = acked(&out);
    let new_leader = c.must_leader(Duration::from_secs(20));
    assert_ne!(new_leader, old_leader);
    c.must_wait(
        Duration::from_secs(30),
        "30 more scripts after the kill",
        |_| match acked(&out) - at_kill {
            n if n >= 30 => Ok(()),
            n => Err(format!("{n} acknowledged since the kill")),
        },
    );
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("script writer");
    let o = std::mem::take(&mut *out.lock().unwrap());
    eprintln!(
        "           {} scripts acknowledged, {} unknown",
        o.acked.len(),
        o.unknown
    );

    phase("every acknowledged script ran once: distinct replies, counter within bounds");
    let distinct: BTreeSet<i64> = o.acked.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        o.acked.len(),
        "two scripts answered the same count"
    );
    let mut con = c.must_connect(new_leader);
    let count: i64 = redis::cmd("GET").arg("counter").query(&mut con).unwrap();
    let acked_n = o.acked.len() as i64;
    assert!(
        count >= acked_n && count <= acked_n + o.unknown as i64,
        "counter {count}: {acked_n} acknowledged, {} unknown",
        o.unknown
    );
    assert!(
        distinct.last().is_some_and(|&max| max <= count),
        "a reply above the final count"
    );

    phase("the restarted node has the same counter and the same history of it");
    c.restart(old_leader);
    let history = |c: &mut Cluster, id: u64| -> Result<(String, redis::Value), String> {
        let mut con = c.try_connect(id)?;
        let v: String = redis::cmd("GET")
            .arg("counter")
            .query(&mut con)
            .map_err(|e| e.to_string())?;
        let h: redis::Value = redis::cmd("HISTORY")
            .arg("counter")
            .query(&mut con)
            .map_err(|e| e.to_string())?;
        Ok((v, h))
    };
    let want = history(&mut c, new_leader).expect("history on the leader");
    assert_eq!(want.0, count.to_string());
    c.must_wait(
        Duration::from_secs(30),
        "the restarted node's counter and history to match the leader's",
        |c| {
            let got = history(c, old_leader)?;
            if got == want {
                Ok(())
            } else {
                Err(format!("restarted node has {:?}", got.0))
            }
        },
    );
}

/// Acquires `KEYS[1]` for `ARGV[1]` for `ARGV[2]` ms and, if it did, returns the next fencing
/// token from `KEYS[2]`; else nil. One entry: the token and the lock cannot be split.
const ACQUIRE: &str = "if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then \
                       return redis.call('incr', KEYS[2]) end return false";
/// Redis's compare-and-delete release (redis-py `Lock`, Redlock): 1 if the caller held it.
const RELEASE: &str = "if redis.call('get', KEYS[1]) == ARGV[1] then \
                       return redis.call('del', KEYS[1]) end return 0";

/// One holding of the lock, as its holder saw it (times from one clock, in µs).
#[derive(Debug)]
struct Held {
    token: i64,
    acquired_us: u128,
    release_invoked_us: u128,
    released: bool,
}

/// Lock safety through faults: three clients take a Lua lock with fencing tokens through every
/// node while the leader is killed (and restarted), then while a follower is paused. Tokens are unique, and the next
/// holder never got the lock before the previous one had even sent its release (no two
/// holders at once; checked only after releases known to have happened, since a holder whose
/// release was lost keeps the lock until its TTL). Every node ends with the same keyspace and
/// the same history of the token counter.
#[test]
fn script_locks_hold_through_a_leader_kill_and_a_pause() {
    let mut c = Cluster::start();
    let leader = c.must_leader(Duration::from_secs(20));
    let addrs: Vec<String> = c.ids().into_iter().map(|id| c.redis_addr(id)).collect();
    let epoch = std::time::Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let held = Arc::new(Mutex::new(Vec::<Held>::new()));
    let workers: Vec<_> = (0..3)
        .map(|w| {
            let (stop, held, addrs) = (stop.clone(), held.clone(), addrs.clone());
            thread::spawn(move || {
                let mut con: Option<redis::Connection> = None;
                let mut n = w;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    if con.is_none() {
                        con = connect(&addrs[n % addrs.len()], Duration::from_secs(1)).ok();
                    }
                    let Some(cn) = con.as_mut() else { continue };
                    let me = format!("worker-{w}-{n}");
                    let acquired: redis::RedisResult<Option<i64>> = redis::cmd("EVAL")
                        .arg(ACQUIRE)
                        .arg(2)
                        .arg("lock")
                        .arg("fence")
                        .arg(&me)
                        .arg(3_000)
                        .query(cn);
                    let token = match acquired {
                        Ok(Some(t)) => t,
                        Ok(None) => {
                            thread::sleep(Duration::from_millis(5));
                            continue;
                        }
                        Err(_) => {
                            con = None;
                            continue;
                        }
                    };
                    let acquired_us = epoch.elapsed().as_micros();
                    thread::sleep(Duration::from_millis(2));
                    let release_invoked_us = epoch.elapsed().as_micros();
                    let released: redis::RedisResult<i64> = redis::cmd("EVAL")
                        .arg(RELEASE)
                        .arg(1)
                        .arg("lock")
                        .arg(&me)
                        .query(cn);
                    if released.is_err() {
                        con = None;
                    }
                    held.lock().unwrap().push(Held {
                        token,
                        acquired_us,
                        release_invoked_us,
                        released: released == Ok(1),
                    });
                }
            })
        })
        .collect();
    let count = |held: &Arc<Mutex<Vec<Held>>>| held.lock().unwrap().len();
    c.must_wait(
        Duration::from_secs(20),
        "20 holdings before the faults",
        |_| match count(&held) {
            n if n >= 20 => Ok(()),
            n => Err(format!("{n} holdings")),
        },
    );

    let more = |c: &mut Cluster, what: &str, n: usize| {
        let from = count(&held);
        c.must_wait(Duration::from_secs(30), what, |_| {
            match count(&held) - from {
                k if k >= n => Ok(()),
                k => Err(format!("{k} holdings since")),
            }
        });
    };
    phase("kill -9 the leader; holdings go on through the survivors");
    c.kill9(leader);
    let new_leader = c.must_leader(Duration::from_secs(20));
    more(&mut c, "20 holdings after the kill", 20);
    c.restart(leader);
    more(&mut c, "10 holdings with the old leader back", 10);

    phase("pause a follower (SIGSTOP); holdings go on; resume it");
    let paused = c
        .ids()
        .into_iter()
        .find(|&id| id != new_leader)
        .expect("a follower");
    c.pause(paused);
    more(&mut c, "20 holdings with a follower paused", 20);
    c.resume(paused);
    more(&mut c, "10 holdings with every node back", 10);
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().expect("lock worker");
    }

    phase("tokens unique; no holder before the previous one sent its release");
    let mut held = std::mem::take(&mut *held.lock().unwrap());
    held.sort_by_key(|h| h.token);
    eprintln!(
        "           {} holdings, tokens {:?}..",
        held.len(),
        held.first().map(|h| h.token)
    );
    for pair in held.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert!(a.token < b.token, "token {} granted twice", a.token);
        if a.released && b.token == a.token + 1 {
            assert!(
                b.acquired_us > a.release_invoked_us,
                "holder of token {} got the lock before holder of {} sent its release: {a:?} {b:?}",
                b.token,
                a.token
            );
        }
    }

    phase("every node: the same lock, counter and history of the counter");
    c.must_wait(
        Duration::from_secs(30),
        "identical state on every node",
        |c| {
            let mut seen = Vec::new();
            for id in c.ids() {
                let mut con = c.try_connect(id)?;
                redis::cmd("READMODE")
                    .arg("stale")
                    .query::<()>(&mut con)
                    .map_err(|e| e.to_string())?;
                // revision and compact_revision (the raft fields may differ between nodes).
                let revision: Vec<redis::Value> = redis::cmd("REVISION")
                    .query(&mut con)
                    .map_err(|e| e.to_string())?;
                let history: redis::Value = redis::cmd("HISTORY")
                    .arg("fence")
                    .query(&mut con)
                    .map_err(|e| e.to_string())?;
                let lock: Option<String> = redis::cmd("GET")
                    .arg("lock")
                    .query(&mut con)
                    .map_err(|e| e.to_string())?;
                let rev = format!("{:?}", &revision[..revision.len().min(4)]);
                seen.push((rev, format!("{history:?}"), lock));
            }
            if seen.windows(2).all(|w| w[0] == w[1]) {
                Ok(())
            } else {
                Err(format!("nodes differ: {seen:?}"))
            }
        },
    );
}

/// EVALSHA of `sha` on node `id`: its reply, or the error text.
fn evalsha(c: &mut Cluster, id: u64, sha: &str) -> Result<String, String> {
    let mut conn = c.must_connect(id);
    redis::cmd("EVALSHA")
        .arg(sha)
        .arg(0)
        .query::<String>(&mut conn)
        .map_err(|e| e.to_string())
}

/// ScriptsReplicated: a script loaded before the snapshot a node restarts from (its log entry
/// purged) or catches up by (never applied there) still runs by its SHA-1 on that node. Before
/// the script set was in snapshots both answered NOSCRIPT.
#[test]
fn scripts_loaded_before_a_snapshot_run_by_sha_after_a_restart_and_a_catch_up() {
    let mut c = Cluster::builder().max_in_snapshot_log_to_keep(0).start();
    let leader = c.must_leader(Duration::from_secs(20));
    let followers: Vec<u64> = c.ids().into_iter().filter(|&id| id != leader).collect();
    let (restarted, behind) = (followers[0], followers[1]);
    let load = |c: &mut Cluster, body: &str| -> String {
        let mut conn = c.must_connect(leader);
        redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(body)
            .query(&mut conn)
            .expect("SCRIPT LOAD")
    };

    phase("a script loaded, then every node snapshots and purges its log");
    let first = load(&mut c, "return 'loaded before the snapshot'");
    c.must_set(leader, "after-load", "1");
    c.must_wait(
        Duration::from_secs(20),
        "every node applied the load",
        |c| {
            for id in c.ids() {
                if c.must_raft_u64(id, "raft_applied_index")
                    < c.must_raft_u64(leader, "raft_applied_index")
                {
                    return Err(format!("node {id} behind"));
                }
            }
            Ok(())
        },
    );
    for id in c.ids() {
        let mut conn = c.must_connect(id);
        let _: redis::Value = redis::cmd("RAFT.SNAPSHOT")
            .query(&mut conn)
            .expect("RAFT.SNAPSHOT");
    }
    let applied = c.must_raft_u64(restarted, "raft_applied_index");
    c.must_wait(
        Duration::from_secs(30),
        "the follower's log purged",
        |c| match c.must_raft_u64(restarted, "raft_purged_index") {
            p if p + 1 >= applied => Ok(()),
            p => Err(format!("purged up to {p}, applied {applied}")),
        },
    );

    phase("kill -9 and restart the follower: it restores from the snapshot alone");
    c.kill9(restarted);
    c.restart(restarted);
    c.must_wait(
        Duration::from_secs(30),
        "EVALSHA on the restarted node",
        |c| match evalsha(c, restarted, &first) {
            Ok(v) if v == "loaded before the snapshot" => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );

    phase("a node paused through a load catches up by a snapshot and knows the script");
    c.pause(behind);
    let was = c.must_raft_u64(leader, "raft_applied_index");
    let second = load(&mut c, "return 'loaded while a node was paused'");
    for i in 0..30 {
        c.must_set(leader, &format!("while-paused-{i}"), "x");
    }
    let mut conn = c.must_connect(leader);
    let _: redis::Value = redis::cmd("RAFT.SNAPSHOT")
        .query(&mut conn)
        .expect("RAFT.SNAPSHOT");
    c.must_wait(
        Duration::from_secs(60),
        "the leader's log purged past the paused node",
        |c| match c.must_raft_u64(leader, "raft_purged_index") {
            p if p > was + 1 => Ok(()),
            p => Err(format!("purged up to {p}")),
        },
    );
    c.resume(behind);
    c.must_wait(
        Duration::from_secs(60),
        "EVALSHA on the caught-up node",
        |c| match evalsha(c, behind, &second) {
            Ok(v) if v == "loaded while a node was paused" => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    // The state machine answers from the snapshot a moment before the install is logged.
    c.must_wait(
        Duration::from_secs(10),
        "the caught-up node to log that it installed a snapshot",
        |c| match c.snapshot_indexes_since_start(behind, "snapshot installed") {
            v if !v.is_empty() => Ok(()),
            _ => Err(format!(
                "node {behind} caught up without installing a snapshot"
            )),
        },
    );
}

/// ReplyDepthBound, a query of death before: a script returning a table nested 100,000 deep
/// overflowed the stack of the thread that applies entries, on every node, and again when a
/// restarted node replayed the entry. Now it answers nested arrays ending in Redis's "reached
/// lua stack limit" error, every node goes on, and a node killed and restarted replays it.
#[test]
fn a_script_returning_a_deeply_nested_table_takes_no_node_down() {
    let mut c = Cluster::start();
    let leader = c.must_leader(Duration::from_secs(20));
    let follower = c.ids().into_iter().find(|&id| id != leader).unwrap();
    let deep = "local t = {} local c = t for i = 1, 100000 do local n = {} c[1] = n c = n end \
                return t";

    phase("EVAL of a 100,000-deep table through a follower, read as raw RESP");
    let mut con = c.must_connect(follower);
    // Raw bytes: client libraries refuse replies this deep (the redis crate stops at 100).
    let mut sock = std::net::TcpStream::connect(c.redis_addr(follower)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let cmd = format!(
        "*3\r\n$4\r\nEVAL\r\n${}\r\n{deep}\r\n$1\r\n0\r\n",
        deep.len()
    );
    sock.write_all(cmd.as_bytes()).unwrap();
    let mut want = "*1\r\n".repeat(500).into_bytes();
    want.extend_from_slice(b"-ERR reached lua stack limit\r\n");
    let mut got = vec![0u8; want.len()];
    sock.read_exact(&mut got)
        .unwrap_or_else(|e| panic!("reading the reply: {e}"));
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&want)
    );

    phase("cjson.encode of it: refused at cjson's depth limit, as Redis does");
    // 1,000 levels of the encoder's recursion overflowed the `raft` thread's 2 MiB stack in a
    // debug build (ScriptStack: now 8 MiB, as Redis's main thread).
    let encode = "local t = {} local c = t for i = 1, 100000 do local n = {} c[1] = n c = n end \
                  return cjson.encode(t)";
    let err = redis::cmd("EVAL")
        .arg(encode)
        .arg(0)
        .query::<String>(&mut con)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("Cannot serialise, excessive nesting (1001)"),
        "{err}"
    );

    phase("every node applied both and still serves; a restarted node replays them");
    for id in c.ids() {
        let mut con = c.must_connect(id);
        let pong: String = redis::cmd("PING").query(&mut con).unwrap();
        assert_eq!(pong, "PONG", "node {id}");
    }
    c.kill9(follower);
    c.restart(follower);
    c.must_wait(Duration::from_secs(30), "the restarted node serves", |c| {
        let mut con = c.try_connect(follower)?;
        redis::cmd("PING")
            .query::<String>(&mut con)
            .map_err(|e| e.to_string())
    });
}
