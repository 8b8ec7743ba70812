//! The config centre's checks on a three-node cluster. Schema-checked values: `SCHEMA SET` through a follower, writes
//! through every node checked at apply (SET, MSET, EXEC, scripts, ROLLBACK), the refusal naming
//! the key, the JSON path and the rule and changing nothing, the schema's own history, and a
//! restarted node enforcing the same schema. Gray releases through redis-py across a leader
//! kill (`tests/testdata/redis_py_gray.py`).

use crate::common;

use std::time::Duration;

use common::client_libs::{must_redis_py, testdata_command};
use common::{phase, Cluster};
use resp_client::raw::{RawConn, Reply};

const LIMITS: &str = r#"{"type": "object", "required": ["limit"],
    "properties": {"limit": {"type": "integer", "maximum": 1000}}}"#;

fn error(r: Reply) -> String {
    match r {
        Reply::Error(e) => String::from_utf8_lossy(&e).into_owned(),
        other => panic!("not an error: {other:?}"),
    }
}

fn ok(r: Reply) {
    assert_eq!(r, Reply::ok(), "want OK");
}

#[test]
fn writes_under_a_schema_are_checked_on_every_node() {
    let mut c = Cluster::start();
    let leader = c.must_leader(Duration::from_secs(20));
    let followers: Vec<u64> = c.ids().into_iter().filter(|&id| id != leader).collect();
    let mut f1 = RawConn::must_connect(&c.redis_addr(followers[0]));
    let mut f2 = RawConn::must_connect(&c.redis_addr(followers[1]));
    let mut l = RawConn::must_connect(&c.redis_addr(leader));

    phase("a schema set through a follower; a bad schema is refused");
    let bad = error(f1.must_call(&["SCHEMA", "SET", "app/pay/", "{\"type\": 1"]));
    assert!(
        bad.starts_with("SCHEMA the schema of 'app/pay/' is not a valid JSON Schema"),
        "{bad}"
    );
    ok(f1.must_call(&["SCHEMA", "SET", "app/pay/", LIMITS]));
    assert_eq!(
        f2.must_call(&["SCHEMA", "GET", "app/pay/"]),
        Reply::Bulk(Some(LIMITS.as_bytes().to_vec())),
        "read through the other follower (linearizable)"
    );

    phase("writes through every node are checked at apply");
    ok(f2.must_call(&["SET", "app/pay/eu", r#"{"limit": 10}"#]));
    let refused = error(l.must_call(&["SET", "app/pay/eu", r#"{"limit": 5000}"#]));
    assert_eq!(
        refused,
        "SCHEMA value of 'app/pay/eu' does not match the schema of 'app/pay/' at /limit: 5000 \
         is greater than the maximum of 1000 (rule /properties/limit/maximum)"
    );
    let refused = error(f2.must_call(&["MSET", "free", "1", "app/pay/us", "{}"]));
    assert!(
        refused.contains("\"limit\" is a required property"),
        "{refused}"
    );
    assert_eq!(
        f2.must_call(&["EXISTS", "free"]),
        Reply::Integer(0),
        "MSET is all or nothing"
    );
    for (node, conn) in [(leader, &mut l), (followers[0], &mut f1)] {
        assert_eq!(
            conn.must_call(&["GET", "app/pay/eu"]),
            Reply::Bulk(Some(br#"{"limit": 10}"#.to_vec())),
            "node {node} kept the valid value"
        );
    }

    phase("EXEC: the refused command answers its error, the others apply");
    f1.must_call(&["MULTI"]);
    f1.must_call(&["SET", "app/pay/jp", r#"{"limit": 7}"#]);
    f1.must_call(&["SET", "app/pay/uk", "[]"]);
    let Reply::Array(Some(replies)) = f1.must_call(&["EXEC"]) else {
        panic!("EXEC")
    };
    assert_eq!(replies[0], Reply::ok());
    assert!(error(replies[1].clone()).starts_with("SCHEMA value of 'app/pay/uk'"));

    phase("a script's redis.call is checked; pcall sees the error");
    let script = "return redis.pcall('set', KEYS[1], ARGV[1])";
    let r = error(f2.must_call(&["EVAL", script, "1", "app/pay/fr", "12"]));
    assert!(r.starts_with("SCHEMA value of 'app/pay/fr'"), "{r}");

    phase("ROLLBACK to a value the schema refuses is refused");
    ok(l.must_call(&["SET", "app/old", "not json"]));
    // REVISION is a map (a flat array in RESP2): revision, compact_revision, ...
    let Reply::Array(Some(fields)) = l.must_call(&["REVISION"]) else {
        panic!("REVISION")
    };
    let Reply::Integer(old) = fields[1] else {
        panic!("REVISION {fields:?}")
    };
    ok(l.must_call(&["SCHEMA", "SET", "app/", r#"{"type": "object"}"#]));
    ok(l.must_call(&["SET", "app/old", "{}"]));
    let r = error(l.must_call(&["ROLLBACK", "app/old", &old.to_string()]));
    assert!(
        r.starts_with("SCHEMA value of 'app/old' is not JSON"),
        "{r}"
    );

    phase("the schemas are keys with a history; LIST names them");
    let Reply::Map(list) = ({
        f1.must_call(&["HELLO", "3"]);
        f1.must_call(&["SCHEMA", "LIST"])
    }) else {
        panic!("a map")
    };
    let prefixes: Vec<Reply> = list.into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        prefixes,
        vec![
            Reply::Bulk(Some(b"app/".to_vec())),
            Reply::Bulk(Some(b"app/pay/".to_vec()))
        ]
    );
    let Reply::Array(Some(history)) = l.must_call(&["HISTORY", "__schema__/app/pay/"]) else {
        panic!("HISTORY")
    };
    assert_eq!(history.len(), 1, "{history:?}");

    phase("a restarted node enforces the same schemas");
    c.kill9(followers[1]);
    c.restart(followers[1]);
    c.must_wait(Duration::from_secs(30), "the restarted node refuses", |c| {
        let addr = c.redis_addr(followers[1]);
        if std::net::TcpStream::connect(&addr).is_err() {
            return Err("not listening yet".to_string());
        }
        let mut conn = RawConn::must_connect(&addr);
        match conn.must_call(&["SET", "app/pay/eu", "{}"]) {
            Reply::Error(e) if e.starts_with(b"SCHEMA") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });

    phase("SCHEMA DEL frees the prefix");
    assert_eq!(
        f1.must_call(&["SCHEMA", "DEL", "app/pay/", "nothing/"]),
        Reply::Integer(1)
    );
    ok(f1.must_call(&["SET", "app/pay/eu", r#"{"limit": 5000}"#]));
}

/// redis_py_gray.py's report.
fn gray_readers(c: &Cluster, ids: &[u64], seconds: &str, promoted: bool) -> std::process::Child {
    let pythonpath = must_redis_py();
    let mut cmd = testdata_command("python3", "redis_py_gray.py");
    cmd.args(["canary", "cfg/x", "old", "new", seconds]);
    if promoted {
        cmd.arg("--promoted");
    }
    cmd.args(ids.iter().map(|&id| c.redis_addr(id)));
    cmd.env("PYTHONPATH", pythonpath)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    cmd.spawn().expect("python3 redis_py_gray.py")
}

fn must_pass(child: std::process::Child, what: &str) -> serde_json::Value {
    let out = child.wait_with_output().expect("redis_py_gray.py output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{what}: redis_py_gray.py exit {:?}: {stdout}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).expect("one JSON line")
}

/// A gray release through redis-py, across a kill -9 of the leader between stage and promote:
/// the client named `gray:canary` reads the candidate from the stage on, the other never before
/// the promote and always after it, and the key's history has the three steps.
/// The `value` of each entry of an XRANGE reply of a watch stream.
fn watched_values(r: Reply) -> Vec<String> {
    let Reply::Array(Some(entries)) = r else {
        panic!("XRANGE: {r:?}")
    };
    entries
        .into_iter()
        .filter_map(|e| {
            let Reply::Array(Some(mut parts)) = e else {
                panic!("entry: {e:?}")
            };
            let Some(Reply::Array(Some(fields))) = parts.pop() else {
                panic!("fields")
            };
            fields.chunks(2).find_map(|kv| match kv {
                [Reply::Bulk(Some(k)), Reply::Bulk(Some(v))] if k == b"value" => {
                    Some(String::from_utf8_lossy(v).into_owned())
                }
                _ => None,
            })
        })
        .collect()
}

#[test]
fn a_gray_release_survives_a_leader_kill_and_only_its_label_reads_it_early() {
    let mut c = Cluster::start();
    let leader = c.must_leader(Duration::from_secs(20));
    let mut l = RawConn::must_connect(&c.redis_addr(leader));

    phase("stage a candidate; the labelled client reads it, the other does not");
    ok(l.must_call(&["SET", "cfg/x", "old"]));
    ok(l.must_call(&["GRAY", "STAGE", "canary", "cfg/x", "new"]));
    let all = c.ids();
    must_pass(gray_readers(&c, &all, "1", false), "after the stage");

    phase("the labelled client's watch stream shows the candidate, the other's does not");
    let follower = all.iter().copied().find(|&id| id != leader).unwrap();
    let mut labelled = RawConn::must_connect(&c.redis_addr(follower));
    ok(labelled.must_call(&["CLIENT", "SETNAME", "gray:canary"]));
    let mut plain = RawConn::must_connect(&c.redis_addr(follower));
    let range = ["XRANGE", "__watch__:cfg/", "-", "+"];
    assert_eq!(watched_values(labelled.must_call(&range)), ["old", "new"]);
    assert_eq!(watched_values(plain.must_call(&range)), ["old"]);

    phase("kill -9 the leader; the survivors keep the candidate staged");
    c.kill9(leader);
    let survivors: Vec<u64> = all.iter().copied().filter(|&id| id != leader).collect();
    let new_leader = c.must_leader(Duration::from_secs(30));
    must_pass(gray_readers(&c, &survivors, "1", false), "after the kill");

    phase("promote while both clients read: the other client moves to it, never back");
    let readers = gray_readers(&c, &survivors, "3", false);
    std::thread::sleep(Duration::from_millis(1200));
    let mut nl = RawConn::must_connect(&c.redis_addr(new_leader));
    assert_eq!(
        nl.must_call(&["GRAY", "PROMOTE", "canary", "cfg/x"]),
        Reply::ok()
    );
    let report = must_pass(readers, "during the promote");
    assert_eq!(report["plain_saw_candidate"], true, "{report}");
    c.restart(leader);
    must_pass(gray_readers(&c, &all, "1", true), "after the promote");

    phase("every step is a revision in the history");
    let Reply::Array(Some(key)) = nl.must_call(&["HISTORY", "cfg/x"]) else {
        panic!("HISTORY")
    };
    let Reply::Array(Some(candidate)) = nl.must_call(&["HISTORY", "__gray__/canary/cfg/x"]) else {
        panic!("HISTORY")
    };
    assert_eq!(key.len(), 2, "set old, promote: {key:?}");
    assert_eq!(
        candidate.len(),
        2,
        "stage, promote (its delete): {candidate:?}"
    );
    assert_eq!(
        nl.must_call(&["GRAY", "PROMOTE", "canary", "cfg/x"]),
        Reply::Error(b"ERR nothing is staged for this key and label".to_vec())
    );
    assert_eq!(nl.must_call(&["GRAY", "LIST"]), Reply::Array(Some(vec![])));
}
