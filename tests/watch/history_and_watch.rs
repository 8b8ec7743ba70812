//! History and watch through a stock client (the sync `redis` crate):
//!
//! - GETAT, HISTORY, ROLLBACK and COMPACT with exact revisions, `-COMPACTED` below the compact
//!   revision (reads, XREAD, XRANGE), and automatic compaction (`[store] history_revisions`).
//! - The watch stream `__watch__:<prefix>`, each of etcd's guarantees (DESIGN §6; the
//!   invariants of `src/watch/stream.rs`): ordered, unique, atomic (an EXEC's changes in one
//!   reply even with COUNT 1), reliable (no gaps), resumable (after a disconnect, and on
//!   another node after kill -9 of the watcher's node: exactly the missing events), and
//!   bookmarkable (BLOCK times out with nil, REVISION gives the position, a bare revision
//!   resumes after it).
//! - Many idle watchers: RSS per blocked XREAD on one node (`WATCHERS`, default 2,000 here;
//!   the README reports a 10,000 run of this test), bounded.

use crate::common;
use crate::common::raw;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::single::Single;
use common::{connect, phase, Cluster};
use redis::Value;

/// One watch stream entry: id (main, sub), fields.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    id: (u64, u64),
    fields: BTreeMap<String, String>,
}

fn text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        other => panic!("not text: {other:?}"),
    }
}

fn parse_id(id: &str) -> (u64, u64) {
    let (m, s) = id.split_once('-').expect("id has a dash");
    (m.parse().unwrap(), s.parse().unwrap())
}

fn entries(v: &Value) -> Vec<Entry> {
    let Value::Array(items) = v else {
        panic!("entries: {v:?}")
    };
    items
        .iter()
        .map(|e| {
            let Value::Array(pair) = e else {
                panic!("entry: {e:?}")
            };
            let Value::Array(kv) = &pair[1] else {
                panic!("fields: {e:?}")
            };
            let fields = kv.chunks(2).map(|c| (text(&c[0]), text(&c[1]))).collect();
            Entry {
                id: parse_id(&text(&pair[0])),
                fields,
            }
        })
        .collect()
}

/// XREAD's reply for one stream: `None` for nil.
fn xread_one(v: Value) -> Option<Vec<Entry>> {
    match v {
        Value::Nil => None,
        Value::Array(streams) => {
            assert_eq!(streams.len(), 1, "{streams:?}");
            let Value::Array(pair) = &streams[0] else {
                panic!("{streams:?}")
            };
            Some(entries(&pair[1]))
        }
        Value::Map(streams) => Some(entries(&streams[0].1)),
        other => panic!("xread: {other:?}"),
    }
}

fn xread(con: &mut redis::Connection, args: &[&str]) -> Result<Option<Vec<Entry>>, String> {
    let mut cmd = redis::cmd("XREAD");
    for a in args {
        cmd.arg(*a);
    }
    cmd.query::<Value>(con)
        .map(xread_one)
        .map_err(|e| e.to_string())
}

fn must_xread(con: &mut redis::Connection, args: &[&str]) -> Option<Vec<Entry>> {
    xread(con, args).unwrap_or_else(|e| panic!("XREAD {args:?}: {e}"))
}

fn cmd(con: &mut redis::Connection, args: &[&str]) -> Result<Value, String> {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c.query::<Value>(con)
        .map_err(|e| match (e.code(), e.detail()) {
            (Some(code), Some(detail)) => format!("{code} {detail}"),
            _ => e.to_string(),
        })
}

fn must(con: &mut redis::Connection, args: &[&str]) -> Value {
    cmd(con, args).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn revision(con: &mut redis::Connection) -> (u64, u64) {
    let v = must(con, &["REVISION"]);
    let items: Vec<Value> = match v {
        Value::Array(a) => a,
        Value::Map(m) => m.into_iter().flat_map(|(k, v)| [k, v]).collect(),
        other => panic!("REVISION: {other:?}"),
    };
    let get = |name: &str| {
        let i = items.iter().position(|v| text(v) == name).unwrap();
        text(&items[i + 1]).parse::<u64>().unwrap()
    };
    (get("revision"), get("compact_revision"))
}

/// A `set` entry of a write by the `default` user (every client write names its author).
fn set_entry(key: &str, value: &str, prev: Option<&str>) -> BTreeMap<String, String> {
    let mut f: BTreeMap<String, String> = [
        ("type", "set"),
        ("key", key),
        ("value", value),
        ("author", "default"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    if let Some(p) = prev {
        f.insert("prev".into(), p.into());
    }
    f
}

#[test]
fn history_commands_and_compaction() {
    let node = Single::start();
    let mut c = node.must_connect();
    // rev:   1      2      3       4        5
    //      a=1    a=2    b=x    del a     a=3
    for args in [
        &["SET", "a", "1"][..],
        &["SET", "a", "2"],
        &["SET", "b", "x"],
        &["DEL", "a"],
        &["SET", "a", "3"],
    ] {
        must(&mut c, args);
    }
    {
        phase("GETAT reads the value as of each revision");
        for (rev, want) in [
            (1, Some("1")),
            (2, Some("2")),
            (3, Some("2")),
            (4, None),
            (5, Some("3")),
        ] {
            let got: Option<String> = redis::cmd("GETAT").arg("a").arg(rev).query(&mut c).unwrap();
            assert_eq!(got.as_deref(), want, "GETAT a {rev}");
        }
        assert_eq!(
            cmd(&mut c, &["GETAT", "a", "9"]).unwrap_err(),
            "ERR revision 9 is in the future; current revision is 5"
        );
        assert_eq!(
            cmd(&mut c, &["GETAT", "a", "x"]).unwrap_err(),
            "ERR value is not an integer or out of range"
        );
        assert!(cmd(&mut c, &["GETAT", "a"])
            .unwrap_err()
            .contains("wrong number"));
    }
    {
        phase("HISTORY lists revision, event, value with FROM, TO and COUNT");
        let h = must(&mut c, &["HISTORY", "a"]);
        let want = Value::Array(vec![
            Value::Array(vec![
                Value::Int(1),
                Value::BulkString(b"set".to_vec()),
                Value::BulkString(b"1".to_vec()),
            ]),
            Value::Array(vec![
                Value::Int(2),
                Value::BulkString(b"set".to_vec()),
                Value::BulkString(b"2".to_vec()),
            ]),
            Value::Array(vec![
                Value::Int(4),
                Value::BulkString(b"del".to_vec()),
                Value::Nil,
            ]),
            Value::Array(vec![
                Value::Int(5),
                Value::BulkString(b"set".to_vec()),
                Value::BulkString(b"3".to_vec()),
            ]),
        ]);
        assert_eq!(h, want);
        let Value::Array(part) = must(
            &mut c,
            &["HISTORY", "a", "FROM", "2", "TO", "4", "COUNT", "1"],
        ) else {
            panic!()
        };
        assert_eq!(part.len(), 1);
        assert_eq!(
            text(&match &part[0] {
                Value::Array(x) => x[0].clone(),
                _ => panic!(),
            }),
            "2"
        );
        assert_eq!(
            cmd(&mut c, &["HISTORY", "a", "FROM"]).unwrap_err(),
            "ERR syntax error"
        );
        assert_eq!(
            cmd(&mut c, &["HISTORY", "a", "BY", "1"]).unwrap_err(),
            "ERR syntax error"
        );
    }
    {
        phase("ROLLBACK writes the old value, or deletes, as one new revision");
        assert_eq!(must(&mut c, &["ROLLBACK", "a", "1"]), Value::Int(6));
        assert_eq!(
            must(&mut c, &["GET", "a"]),
            Value::BulkString(b"1".to_vec())
        );
        assert_eq!(must(&mut c, &["ROLLBACK", "a", "4"]), Value::Int(7));
        assert_eq!(must(&mut c, &["EXISTS", "a"]), Value::Int(0));
        // Absent then and now: nothing to write, no revision.
        assert_eq!(must(&mut c, &["ROLLBACK", "a", "4"]), Value::Int(7));
        assert_eq!(must(&mut c, &["ROLLBACK", "b", "2"]), Value::Int(8));
        assert_eq!(must(&mut c, &["EXISTS", "b"]), Value::Int(0));
        assert_eq!(revision(&mut c), (8, 0));
    }
    {
        phase("COMPACT drops history below it; reads there fail with COMPACTED");
        assert_eq!(must(&mut c, &["COMPACT", "4"]), Value::Okay);
        let compacted = |r: u64| {
            format!("COMPACTED required revision {r} has been compacted; oldest available revision is 4")
        };
        assert_eq!(cmd(&mut c, &["GETAT", "a", "3"]).unwrap_err(), compacted(3));
        assert_eq!(must(&mut c, &["GETAT", "a", "4"]), Value::Nil);
        assert_eq!(
            cmd(&mut c, &["HISTORY", "a", "FROM", "2"]).unwrap_err(),
            compacted(2)
        );
        assert_eq!(
            cmd(&mut c, &["ROLLBACK", "a", "2"]).unwrap_err(),
            compacted(2)
        );
        assert_eq!(cmd(&mut c, &["COMPACT", "4"]).unwrap_err(), compacted(4));
        assert_eq!(
            cmd(&mut c, &["COMPACT", "99"]).unwrap_err(),
            "ERR revision 99 is in the future; current revision is 8"
        );
        // The watch stream: from 0, or from inside a compacted revision, is refused.
        assert_eq!(
            xread(&mut c, &["STREAMS", "__watch__:", "0"]).unwrap_err(),
            format!("COMPACTED: {}", &compacted(1)[10..])
        );
        assert!(xread(&mut c, &["STREAMS", "__watch__:", "3-0"])
            .unwrap_err()
            .contains("required revision 3"));
        // After all of revision 3 is fine: the history from 4 on is complete.
        let rest = must_xread(&mut c, &["STREAMS", "__watch__:", "3"]).unwrap();
        assert_eq!(
            rest.iter().map(|e| e.id.0).collect::<Vec<_>>(),
            vec![4, 5, 6, 7, 8]
        );
        assert!(cmd(&mut c, &["XRANGE", "__watch__:", "2", "+"])
            .unwrap_err()
            .starts_with("COMPACTED"));
        let Value::Array(all) = must(&mut c, &["XRANGE", "__watch__:", "-", "+"]) else {
            panic!()
        };
        assert_eq!(all.len(), 5, "`-` starts at the oldest available revision");
        assert_eq!(revision(&mut c), (8, 4));
    }
    {
        phase("the new commands are in COMMAND DOCS");
        let docs = format!(
            "{:?}",
            must(
                &mut c,
                &["COMMAND", "DOCS", "GETAT", "HISTORY", "ROLLBACK", "COMPACT", "XREAD"]
            )
        );
        for name in [
            "getat", "history", "rollback", "compact", "xread", "redraft",
        ] {
            assert!(docs.contains(name), "{name} in {docs}");
        }
    }
}

/// Waits (up to 20 s) until automatic compaction keeps only the last five revisions; `rule`
/// names what should have compacted, for the failure message.
fn wait_keeps_last_five(c: &mut redis::Connection, rule: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (rev, compact) = revision(c);
        if compact == rev - 4 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "compact revision {compact}, revision {rev}: {rule} did not compact"
        );
        thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn automatic_compaction_keeps_the_last_revisions() {
    let node = Single::start_with("[store]\nhistory_revisions = 5\n");
    let mut c = node.must_connect();
    for i in 0..20 {
        must(&mut c, &["SET", "k", &i.to_string()]);
    }
    wait_keeps_last_five(&mut c, "history_revisions = 5");
    assert!(cmd(&mut c, &["GETAT", "k", "15"])
        .unwrap_err()
        .starts_with("COMPACTED"));
    assert_eq!(
        must(&mut c, &["GETAT", "k", "16"]),
        Value::BulkString(b"15".to_vec())
    );
    assert!(xread(&mut c, &["STREAMS", "__watch__:", "0"])
        .unwrap_err()
        .contains("COMPACTED"));
}

/// HistoryCapped: a time rule keeps everything for its whole window (a node up less than
/// the window compacts nothing by time), which under load is unbounded in size; the cap
/// still compacts. Before the cap, this node kept all 20 revisions for an hour.
#[test]
fn the_history_cap_compacts_inside_the_time_window() {
    let node = Single::start_with("[store]\nhistory_minutes = 60\nhistory_max_revisions = 5\n");
    let mut c = node.must_connect();
    for i in 0..20 {
        must(&mut c, &["SET", "k", &i.to_string()]);
    }
    wait_keeps_last_five(&mut c, "the cap of 5 revisions");
    assert_eq!(
        must(&mut c, &["GETAT", "k", "16"]),
        Value::BulkString(b"15".to_vec())
    );
}

#[test]
fn watch_stream_guarantees_on_one_node() {
    let node = Single::start();
    let mut c = node.must_connect();
    let mut w = node.must_connect();
    {
        phase("bookmarkable: nothing yet, BLOCK times out with nil; $ and REVISION");
        assert_eq!(
            must_xread(&mut w, &["BLOCK", "50", "STREAMS", "__watch__:", "$"]),
            None
        );
        assert_eq!(must_xread(&mut w, &["STREAMS", "__watch__:", "0"]), None);
        assert_eq!(revision(&mut w), (0, 0));
    }
    {
        phase("ordered and unique: every change once, in revision order, prefix-filtered");
        must(&mut c, &["SET", "app/a", "1"]);
        must(&mut c, &["SET", "other", "x"]);
        must(&mut c, &["SET", "app/a", "2"]);
        must(&mut c, &["DEL", "app/a"]);
        let got = must_xread(&mut w, &["STREAMS", "__watch__:app/", "0"]).unwrap();
        assert_eq!(
            got,
            vec![
                Entry {
                    id: (1, 0),
                    fields: set_entry("app/a", "1", None)
                },
                Entry {
                    id: (3, 0),
                    fields: set_entry("app/a", "2", Some("1"))
                },
                Entry {
                    id: (4, 0),
                    fields: [
                        ("type", "del"),
                        ("key", "app/a"),
                        ("prev", "2"),
                        ("author", "default")
                    ]
                    .into_iter()
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .collect()
                },
            ]
        );
        let all = must_xread(&mut w, &["STREAMS", "__watch__:", "0"]).unwrap();
        assert_eq!(
            all.iter().map(|e| e.id).collect::<Vec<_>>(),
            vec![(1, 0), (2, 0), (3, 0), (4, 0)]
        );
        // A bare revision resumes after all of it; an explicit ID after that entry.
        let after2 = must_xread(&mut w, &["STREAMS", "__watch__:", "2"]).unwrap();
        assert_eq!(after2[0].id, (3, 0));
        let after = must_xread(&mut w, &["COUNT", "1", "STREAMS", "__watch__:", "2-0"]).unwrap();
        assert_eq!(after.iter().map(|e| e.id).collect::<Vec<_>>(), vec![(3, 0)]);
    }
    {
        phase("atomic: an EXEC's changes (one revision) arrive together, even with COUNT 1");
        let (rev, _) = revision(&mut w);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .set("app/x", "1")
            .set("app/y", "2")
            .del("app/x")
            .incr("app/n", 1);
        let _: Value = pipe.query(&mut c).unwrap();
        let got = must_xread(
            &mut w,
            &["COUNT", "1", "STREAMS", "__watch__:app/", &rev.to_string()],
        )
        .unwrap();
        assert_eq!(
            got.iter()
                .map(|e| (e.id, e.fields["type"].clone()))
                .collect::<Vec<_>>(),
            vec![
                ((rev + 1, 0), "set".to_string()),
                ((rev + 1, 1), "set".to_string()),
                ((rev + 1, 2), "del".to_string()),
                ((rev + 1, 3), "set".to_string()),
            ]
        );
    }
    {
        phase("a blocked XREAD wakes on the next matching change only; expiry is `expired`");
        let (rev, _) = revision(&mut w);
        let addr = node.addr.clone();
        let writer = thread::spawn(move || {
            let mut c = connect(&addr, Duration::from_secs(5)).unwrap();
            thread::sleep(Duration::from_millis(100));
            must(&mut c, &["SET", "zzz", "not watched"]);
            must(&mut c, &["SET", "app/t", "v", "PX", "100"]);
        });
        let got = must_xread(
            &mut w,
            &["BLOCK", "10000", "STREAMS", "__watch__:app/", "$"],
        )
        .unwrap();
        writer.join().unwrap();
        assert_eq!(
            got,
            vec![Entry {
                id: (rev + 2, 0),
                fields: set_entry("app/t", "v", None)
            }]
        );
        let expired = must_xread(
            &mut w,
            &[
                "BLOCK",
                "10000",
                "STREAMS",
                "__watch__:app/",
                &format!("{}", rev + 2),
            ],
        )
        .unwrap();
        assert_eq!(expired[0].fields["type"], "expired");
        assert_eq!(expired[0].fields["prev"], "v");
        assert!(!expired[0].fields.contains_key("value"));
        // The leader's own write: no author.
        assert!(!expired[0].fields.contains_key("author"));
    }
    {
        phase("XRANGE and XREVRANGE: bounds, exclusive ids, COUNT; writes to the stream refused");
        let Value::Array(r) = must(&mut w, &["XRANGE", "__watch__:", "(1-0", "3", "COUNT", "5"])
        else {
            panic!()
        };
        assert_eq!(
            entries(&Value::Array(r))
                .iter()
                .map(|e| e.id)
                .collect::<Vec<_>>(),
            vec![(2, 0), (3, 0)]
        );
        let rev = entries(&must(
            &mut w,
            &["XREVRANGE", "__watch__:app/", "+", "-", "COUNT", "2"],
        ));
        assert!(rev[0].id > rev[1].id);
        assert_eq!(
            must(&mut w, &["XRANGE", "__watch__:", "-", "+", "COUNT", "0"]),
            Value::Nil
        );
        assert_eq!(
            must(&mut w, &["XRANGE", "nostream", "-", "+"]),
            Value::Array(vec![])
        );
        assert_eq!(
            cmd(&mut w, &["XRANGE", "__watch__:", "x", "+"]).unwrap_err(),
            "ERR Invalid stream ID specified as stream command argument"
        );
        assert_eq!(
            cmd(&mut w, &["XREAD", "STREAMS", "__watch__:", "-"]).unwrap_err(),
            "ERR Invalid stream ID specified as stream command argument"
        );
        assert_eq!(
            cmd(&mut w, &["XREAD", "BLOCK", "-1", "STREAMS", "s", "0"]).unwrap_err(),
            "ERR timeout is negative"
        );
        assert!(cmd(&mut w, &["XREAD", "STREAMS", "a", "b", "0"])
            .unwrap_err()
            .starts_with("ERR Unbalanced 'xread' list of streams"));
        assert!(cmd(&mut w, &["XADD", "__watch__:app/", "*", "f", "v"])
            .unwrap_err()
            .contains("read-only watch streams"));
    }
    {
        phase("RESP3: XREAD answers a map; a timed-out BLOCK answers null");
        let mut r3 = raw::RawConn::must_connect(&node.addr);
        r3.must_call(&["HELLO", "3"]);
        let got = r3.must_call(&["XREAD", "COUNT", "1", "STREAMS", "__watch__:", "0"]);
        assert!(format!("{got:?}").starts_with('{'), "a map: {got:?}");
        assert_eq!(
            r3.must_call(&["XREAD", "BLOCK", "20", "STREAMS", "__watch__:", "$"]),
            raw::Reply::Null
        );
    }
}

/// Follows `__watch__:` from `start` on whichever node answers, reconnecting (to the next
/// node) on any error, until `stop` and caught up with `until`. Returns every entry seen.
fn follow(
    addrs: Vec<String>,
    start: String,
    stop: Arc<AtomicBool>,
    until: Arc<Mutex<u64>>,
    first: usize,
) -> Vec<Entry> {
    let mut seen: Vec<Entry> = Vec::new();
    let mut last = start;
    let mut node = first;
    let mut con: Option<redis::Connection> = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "watcher timed out at {last}");
        let target = *until.lock().unwrap();
        let caught_up = seen.last().is_some_and(|e| e.id.0 >= target);
        if stop.load(Ordering::Relaxed) && caught_up {
            return seen;
        }
        let c = match con.as_mut() {
            Some(c) => c,
            None => match connect(&addrs[node % addrs.len()], Duration::from_secs(1)) {
                Ok(c) => con.insert(c),
                Err(_) => {
                    node += 1;
                    thread::sleep(Duration::from_millis(50));
                    continue;
                }
            },
        };
        match xread(
            c,
            &[
                "COUNT",
                "7",
                "BLOCK",
                "200",
                "STREAMS",
                "__watch__:k",
                &last,
            ],
        ) {
            Ok(Some(batch)) => {
                for e in batch {
                    last = format!("{}-{}", e.id.0, e.id.1);
                    seen.push(e);
                }
            }
            Ok(None) => {}
            Err(_) => {
                con = None;
                node += 1;
            }
        }
    }
}

#[test]
fn watch_resumes_on_another_node_after_kill9() {
    let mut cluster = Cluster::start();
    let leader = cluster.must_leader(Duration::from_secs(20));
    let ids = cluster.ids();
    let followers: Vec<u64> = ids.iter().copied().filter(|&i| i != leader).collect();
    // The watcher starts on a follower, which is killed mid-way; it resumes on the others.
    let victim = followers[0];
    let order: Vec<String> = [victim, followers[1], leader]
        .iter()
        .map(|&i| cluster.redis_addr(i))
        .collect();
    let mut c = cluster.must_connect(leader);
    must(&mut c, &["SET", "k0", "before"]);
    let (start, _) = revision(&mut c);
    let stop = Arc::new(AtomicBool::new(false));
    let until = Arc::new(Mutex::new(u64::MAX));
    let watcher = {
        let (stop, until) = (stop.clone(), until.clone());
        thread::spawn(move || follow(order, start.to_string(), stop, until, 0))
    };
    let mut acked: Vec<(String, String)> = Vec::new();
    {
        phase("writes, then kill -9 of the watcher's node, then more writes");
        for i in 0..60 {
            if i == 30 {
                cluster.kill9(victim);
            }
            let (k, v) = (format!("k{}", i % 7), format!("v{i}"));
            if i % 10 == 9 {
                // Every tenth change is a transaction of two keys: one revision, two subs.
                let mut pipe = redis::pipe();
                pipe.atomic().set(&k, &v).set("k-txn", &v);
                let _: Value = pipe.query(&mut c).unwrap();
                acked.push((k, v.clone()));
                acked.push(("k-txn".into(), v));
            } else {
                must(&mut c, &["SET", &k, &v]);
                acked.push((k, v));
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
    let (end, _) = revision(&mut c);
    *until.lock().unwrap() = end;
    stop.store(true, Ordering::Relaxed);
    let seen = watcher.join().unwrap();
    {
        phase("exactly the acknowledged changes, in order, no gap, no repeat");
        let ids: Vec<(u64, u64)> = seen.iter().map(|e| e.id).collect();
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "ordered and unique: {ids:?}"
        );
        let got: Vec<(String, String)> = seen
            .iter()
            .map(|e| (e.fields["key"].clone(), e.fields["value"].clone()))
            .collect();
        assert_eq!(got, acked);
        let mains: Vec<u64> = seen
            .iter()
            .map(|e| e.id.0)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        assert_eq!(
            mains,
            ((start + 1)..=end).collect::<Vec<_>>(),
            "reliable: every revision"
        );
        cluster.restart(victim);
    }
}

#[test]
fn many_idle_blocked_watchers_cost_bounded_memory() {
    let n: usize = std::env::var("WATCHERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let node = Single::start_with("[server]\nmax_clients = 30000\n");
    let mut c = node.must_connect();
    must(&mut c, &["SET", "warm", "up"]);
    let rss = || raw::proc_status_kb(node.pid(), "VmRSS");
    // Warm the allocator with a first batch of connections, closed again.
    thread::sleep(Duration::from_millis(200));
    let before = rss();
    let mut watchers = Vec::with_capacity(n);
    for _ in 0..n {
        let mut w = raw::RawConn::must_connect(&node.addr);
        w.send(&raw::multibulk(&[
            "XREAD",
            "BLOCK",
            "0",
            "STREAMS",
            "__watch__:cfg/",
            "$",
        ]));
        watchers.push(w);
    }
    // Every watcher is blocked once a PING behind them all is answered and the server is idle.
    let mut probe = node.must_connect();
    must(&mut probe, &["PING"]);
    thread::sleep(Duration::from_millis(500));
    let after = rss();
    let per_watcher = (after.saturating_sub(before)) * 1024 / n as u64;
    eprintln!("{n} idle blocked XREAD watchers: RSS {before} kB -> {after} kB, {per_watcher} bytes per watcher");
    assert!(
        per_watcher < 96 * 1024,
        "{per_watcher} bytes per idle watcher"
    );
    {
        phase("one change wakes every watcher (none was lost or stuck)");
        must(&mut c, &["SET", "cfg/x", "1"]);
        for w in &mut watchers {
            let got = w.must_read_reply(Duration::from_secs(30));
            assert!(format!("{got:?}").contains("cfg/x"), "{got:?}");
        }
    }
}
