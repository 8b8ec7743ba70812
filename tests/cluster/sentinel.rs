//! Sentinel-compatible discovery: every node answers `SENTINEL` as a Sentinel monitoring a
//! master named after the cluster (the leader), and Sentinel clients given the nodes as their
//! sentinels follow a kill -9 of the leader by themselves.
//!
//! - The replies: `GET-MASTER-ADDR-BY-NAME` is the leader's Redis address on every node,
//!   `MASTERS`/`MASTER` flag it `master`, `REPLICAS` lists the other members, `SENTINELS` the
//!   other nodes, `MYID` the same runid every other node reports for this one; another name
//!   answers Sentinel's error or nil.
//! - redis-py `Sentinel` (`master_for`, `slave_for`) and ioredis `sentinels` write through a
//!   kill -9 of the leader: both keep writing through the new leader without being told, every
//!   acknowledged write is there afterwards, and the longest time without a successful write
//!   is reported.
//! - `+switch-master <name> <old ip> <old port> <new ip> <new port>` reaches a subscriber on a
//!   surviving node.

use crate::common;

use std::collections::BTreeSet;
use std::thread;
use std::time::Duration;

use common::client_libs::{must_ioredis, must_redis_py, run_bounded, testdata_command};
use common::{phase, Cluster};
use redis::Value;

fn text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        other => format!("{other:?}"),
    }
}

/// A Sentinel entry (RESP2: field, value, ...) as (field, value) pairs.
fn fields(v: &Value) -> Vec<(String, String)> {
    match v {
        Value::Array(items) => items
            .chunks(2)
            .map(|p| (text(&p[0]), text(&p[1])))
            .collect(),
        other => panic!("not an entry: {other:?}"),
    }
}

fn field(entry: &[(String, String)], name: &str) -> String {
    entry
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("no {name} in {entry:?}"))
}

fn sentinel(con: &mut redis::Connection, args: &[&str]) -> redis::RedisResult<Value> {
    redis::cmd("SENTINEL").arg(args).query(con)
}

/// Runs a client script (`python3` or `node`) for `secs` against every node; its JSON line.
fn run_client(program: &str, file: &str, secs: u64, addrs: &[String]) -> serde_json::Value {
    let mut cmd = testdata_command(program, file);
    cmd.arg("test").arg(secs.to_string()).args(addrs);
    let out = run_bounded(cmd, Duration::from_secs(secs + 60));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{file}: exit {:?}, stdout {stdout:?}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{file}: {e}: {stdout:?}"))
}

#[test]
fn sentinel_clients_follow_a_leader_kill() {
    let mut c = Cluster::start();
    let leader = c.must_leader(Duration::from_secs(20));
    let addrs: Vec<String> = c.ids().into_iter().map(|id| c.redis_addr(id)).collect();
    let leader_addr = c.redis_addr(leader);
    // Install the client libraries before the clock matters.
    must_redis_py();
    must_ioredis();

    phase("SENTINEL on every node names the leader");
    let mut runids = BTreeSet::new();
    for id in c.ids() {
        let mut con = c.must_connect(id);
        let master = sentinel(&mut con, &["get-master-addr-by-name", "test"]).unwrap();
        let Value::Array(parts) = &master else {
            panic!("{master:?}")
        };
        assert_eq!(
            format!("{}:{}", text(&parts[0]), text(&parts[1])),
            leader_addr
        );
        assert_eq!(
            sentinel(&mut con, &["get-master-addr-by-name", "other"]).unwrap(),
            Value::Nil
        );
        let masters = sentinel(&mut con, &["masters"]).unwrap();
        let Value::Array(masters) = masters else {
            panic!()
        };
        let m = fields(&masters[0]);
        assert_eq!(field(&m, "name"), "test");
        assert_eq!(field(&m, "flags"), "master");
        assert_eq!(
            format!("{}:{}", field(&m, "ip"), field(&m, "port")),
            leader_addr
        );
        assert_eq!(field(&m, "num-slaves"), "2");
        assert_eq!(field(&m, "num-other-sentinels"), "2");
        let Value::Array(replicas) = sentinel(&mut con, &["replicas", "test"]).unwrap() else {
            panic!()
        };
        let replica_addrs: BTreeSet<String> = replicas
            .iter()
            .map(|r| {
                let r = fields(r);
                assert_eq!(field(&r, "flags"), "slave");
                format!("{}:{}", field(&r, "ip"), field(&r, "port"))
            })
            .collect();
        let want: BTreeSet<String> = addrs
            .iter()
            .filter(|a| **a != leader_addr)
            .cloned()
            .collect();
        assert_eq!(replica_addrs, want);
        let Value::Array(others) = sentinel(&mut con, &["sentinels", "test"]).unwrap() else {
            panic!()
        };
        assert_eq!(others.len(), 2);
        for o in &others {
            runids.insert(field(&fields(o), "runid"));
        }
        let myid = text(&sentinel(&mut con, &["myid"]).unwrap());
        assert_eq!(myid.len(), 40);
        runids.insert(myid);
        let err = sentinel(&mut con, &["master", "other"]).unwrap_err();
        assert_eq!(
            err.detail(),
            Some("No such master with that name"),
            "{err:?}"
        );
        let err = sentinel(&mut con, &["bogus"]).unwrap_err();
        assert!(format!("{err:?}").contains("unknown subcommand 'bogus'. Try SENTINEL HELP."));
    }
    assert_eq!(
        runids.len(),
        3,
        "every node names each node by one runid: {runids:?}"
    );

    phase("redis-py Sentinel and ioredis sentinels write through a kill -9 of the leader");
    let survivor = c.ids().into_iter().find(|&id| id != leader).unwrap();
    let mut sub_con = c.must_connect(survivor);
    let mut sub = sub_con.as_pubsub();
    sub.subscribe("+switch-master").unwrap();
    sub.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let (a1, a2) = (addrs.clone(), addrs.clone());
    let py = thread::spawn(move || run_client("python3", "sentinel_clients.py", 8, &a1));
    let js = thread::spawn(move || run_client("node", "sentinel_clients.js", 8, &a2));
    thread::sleep(Duration::from_secs(3));
    c.kill9(leader);
    let new_leader = c.must_leader(Duration::from_secs(20));
    let new_addr = c.redis_addr(new_leader);
    let (py, js) = (py.join().expect("redis-py"), js.join().expect("ioredis"));

    let msg = sub.get_message().expect("+switch-master");
    assert_eq!(msg.get_channel_name(), "+switch-master");
    let payload: String = msg.get_payload().unwrap();
    let (lh, lp) = leader_addr.rsplit_once(':').unwrap();
    let (nh, np) = new_addr.rsplit_once(':').unwrap();
    assert_eq!(payload, format!("test {lh} {lp} {nh} {np}"));
    drop(sub);

    phase("every acknowledged write is there; the clients moved by themselves");
    let mut con = c.must_connect(new_leader);
    for (report, prefix) in [(&py, "sent"), (&js, "sentjs")] {
        let acked: Vec<u64> = report["acked"]
            .as_array()
            .expect("acked")
            .iter()
            .map(|v| v.as_u64().expect("a write number"))
            .collect();
        let gap = report["longest_gap_ms"].as_u64().expect("gap");
        eprintln!(
            "           {prefix}: {} writes acknowledged, longest gap {gap} ms",
            acked.len()
        );
        assert!(acked.len() > 100, "{prefix}: only {} writes", acked.len());
        assert!(
            gap < 15_000,
            "{prefix}: no write for {gap} ms: the client did not find the new leader"
        );
        let keys: Vec<String> = acked.iter().map(|i| format!("{prefix}:{i}")).collect();
        for chunk in keys.chunks(200) {
            let got: Vec<Option<String>> = redis::cmd("MGET").arg(chunk).query(&mut con).unwrap();
            for (k, v) in chunk.iter().zip(got) {
                let want = k.rsplit_once(':').unwrap().1;
                assert_eq!(v.as_deref(), Some(want), "{k} was acknowledged");
            }
        }
    }
    let masters = py["masters"].as_array().expect("masters");
    assert!(
        masters.len() >= 2,
        "redis-py wrote through one master only: {masters:?}"
    );
}
