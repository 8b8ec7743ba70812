//! ACL users and permissions through a stock client (the sync `redis` crate).
//!
//! - A differential test: `testdata/acl_differential.txt` (ACL SETUSER rules and their
//!   refusals, GETUSER, LIST, DELUSER, AUTH and HELLO AUTH, NOPERM for commands, keys and
//!   channels, MULTI/EXEC, scripts, DRYRUN, the ACL LOG) runs against a single-node redraft
//!   and a real `redis-server` 7.0, and every reply must be identical.
//! - On redraft alone: a deleted or disabled user's connection closes; `requirepass` is the
//!   default user's password; GENPASS; read-only scripts are checked too.

use crate::common;

use std::time::Duration;

use common::single::{RealRedis, Single};
use common::{connect, phase};
use redis::Value;

use super::strings_differential::{must_split, run_line, show, Reply};

fn run(con: &mut redis::Connection, line: &str) -> Reply {
    let Some(count) = line.strip_prefix("@acllog ") else {
        return run_line(con, line);
    };
    // ACL LOG without the fields that differ by nature (age, client address and id).
    let reply = run_line(con, &format!("ACL LOG {count}"))?;
    let Value::Array(entries) = reply else {
        return Ok(reply);
    };
    let entries = entries
        .into_iter()
        .map(|e| match e {
            Value::Array(fields) => Value::Array(
                fields
                    .chunks(2)
                    .filter(|kv| {
                        !matches!(&kv[0], Value::BulkString(k)
                            if k == b"age-seconds" || k == b"client-info")
                    })
                    .flatten()
                    .cloned()
                    .collect(),
            ),
            other => other,
        })
        .collect();
    Ok(Value::Array(entries))
}

#[test]
fn acl_replies_match_real_redis() {
    let node = Single::start();
    let redis = RealRedis::start();
    let (mut ours, mut theirs) = (node.must_connect(), redis.must_connect());
    let script = include_str!("../testdata/acl_differential.txt");
    let mut mismatches = Vec::new();
    let mut compared = 0;
    for (n, line) in script.lines().enumerate() {
        let line = line.trim_end();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (got, want) = (run(&mut ours, line), run(&mut theirs, line));
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
    assert!(compared > 190, "the script ran only {compared} commands");
    assert!(
        mismatches.is_empty(),
        "{} of {compared} replies differ from redis-server:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

fn cmd(con: &mut redis::Connection, line: &str) -> Reply {
    let args = must_split(line);
    let mut c = redis::cmd(std::str::from_utf8(&args[0]).unwrap());
    for a in &args[1..] {
        c.arg(a.as_slice());
    }
    c.query::<Value>(con).map_err(|e| e.to_string())
}

#[test]
fn revoked_users_lose_their_connections() {
    let node = Single::start();
    let mut admin = node.must_connect();
    cmd(&mut admin, "ACL SETUSER ann on >pw +@all ~*").unwrap();
    cmd(&mut admin, "ACL SETUSER ben on >pw +@all ~*").unwrap();
    let login = |user: &str| {
        let mut con = connect(&node.addr, Duration::from_secs(5)).unwrap();
        assert_eq!(cmd(&mut con, &format!("AUTH {user} pw")), Ok(Value::Okay));
        con
    };
    let (mut ann, mut ben) = (login("ann"), login("ben"));
    assert_eq!(cmd(&mut ann, "SET k v"), Ok(Value::Okay));

    phase("ACL DELUSER closes the deleted user's connections, as Redis does");
    assert_eq!(cmd(&mut admin, "ACL DELUSER ann"), Ok(Value::Int(1)));
    assert!(
        cmd(&mut ann, "GET k").is_err(),
        "ann's connection must be closed"
    );
    assert_eq!(cmd(&mut ben, "GET k"), Ok(Value::BulkString(b"v".to_vec())));

    phase("a user switched off loses its connections too (Redis keeps them: a difference)");
    assert_eq!(cmd(&mut admin, "ACL SETUSER ben off"), Ok(Value::Okay));
    assert!(
        cmd(&mut ben, "GET k").is_err(),
        "ben's connection must be closed"
    );
    let mut again = connect(&node.addr, Duration::from_secs(5)).unwrap();
    let refused = cmd(&mut again, "AUTH ben pw").unwrap_err();
    assert!(refused.contains("WRONGPASS"), "{refused}");

    phase("a permission change applies from the next command");
    cmd(&mut admin, "ACL SETUSER ben on -get").unwrap();
    let mut ben = login("ben");
    let denied = cmd(&mut ben, "GET k").unwrap_err();
    assert!(denied.contains("NOPERM"), "{denied}");
    cmd(&mut admin, "ACL SETUSER ben +get").unwrap();
    assert_eq!(cmd(&mut ben, "GET k"), Ok(Value::BulkString(b"v".to_vec())));

    phase("read-only scripts are checked against the user too");
    cmd(&mut admin, "ACL SETUSER ben resetkeys ~app:*").unwrap();
    let denied = cmd(&mut ben, "EVAL_RO \"return redis.call('get','k')\" 0").unwrap_err();
    assert!(
        denied.contains("can't access at least one of the keys"),
        "{denied}"
    );
    assert_eq!(
        cmd(&mut ben, "EVAL_RO \"return redis.call('get','app:1')\" 0"),
        Ok(Value::Nil)
    );

    phase("CLIENT LIST names the user; GENPASS's length follows the bits asked");
    let Ok(Value::BulkString(list)) = cmd(&mut admin, "CLIENT LIST") else {
        panic!("CLIENT LIST")
    };
    assert!(String::from_utf8_lossy(&list).contains("user=ben"));
    for (bits, chars) in [("", 64), ("1", 1), ("5", 2), ("4096", 1024)] {
        let Ok(Value::BulkString(pass)) = cmd(&mut admin, &format!("ACL GENPASS {bits}")) else {
            panic!("GENPASS {bits}")
        };
        assert_eq!(pass.len(), chars, "GENPASS {bits}");
        assert!(pass.iter().all(u8::is_ascii_hexdigit));
    }
}

/// A connection that sends nothing first (`common::connect` checks it with PING).
fn must_connect_raw(addr: &str) -> redis::Connection {
    redis::Client::open(format!("redis://{addr}/"))
        .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(5)))
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"))
}

#[test]
fn requirepass_is_the_default_users_password() {
    let node = Single::start_with_password("secret", "");
    let mut con = must_connect_raw(&node.addr);
    let noauth = cmd(&mut con, "GET k").unwrap_err();
    assert!(noauth.contains("NOAUTH"), "{noauth}");
    assert!(cmd(&mut con, "AUTH default nope").is_err());
    assert_eq!(cmd(&mut con, "AUTH secret"), Ok(Value::Okay));
    let Ok(Value::Array(user)) = cmd(&mut con, "ACL GETUSER default") else {
        panic!("GETUSER")
    };
    assert_eq!(user[0], Value::BulkString(b"flags".to_vec()));
    assert_eq!(
        user[1],
        Value::Array(vec![Value::BulkString(b"on".to_vec())])
    );
    assert_eq!(
        user[3],
        Value::Array(vec![Value::BulkString(
            b"2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b".to_vec()
        )])
    );

    phase("ACL SETUSER default makes the default user cluster state, its password included");
    assert_eq!(cmd(&mut con, "ACL SETUSER default >other"), Ok(Value::Okay));
    let mut fresh = must_connect_raw(&node.addr);
    assert_eq!(cmd(&mut fresh, "AUTH other"), Ok(Value::Okay));
    assert_eq!(cmd(&mut fresh, "AUTH secret"), Ok(Value::Okay));
    assert_eq!(cmd(&mut con, "ACL SETUSER default nopass"), Ok(Value::Okay));
    let mut open = must_connect_raw(&node.addr);
    assert_eq!(cmd(&mut open, "SET k v"), Ok(Value::Okay));

    phase("CONFIG SET requirepass sets the default user's password; CONFIG GET never shows it");
    assert_eq!(
        cmd(&mut con, "CONFIG SET requirepass third"),
        Ok(Value::Okay)
    );
    let mut third = must_connect_raw(&node.addr);
    assert!(cmd(&mut third, "GET k").unwrap_err().contains("NOAUTH"));
    assert!(cmd(&mut third, "AUTH secret")
        .unwrap_err()
        .contains("WRONGPASS"));
    assert_eq!(cmd(&mut third, "AUTH third"), Ok(Value::Okay));
    assert_eq!(
        cmd(&mut con, "CONFIG GET requirepass"),
        Ok(Value::Array(Vec::new()))
    );
    let Ok(Value::Array(all)) = cmd(&mut con, "CONFIG GET *") else {
        panic!("CONFIG GET *")
    };
    assert!(all.len() > 10, "CONFIG GET * lists {} items", all.len());
    assert!(
        !all.contains(&Value::BulkString(b"requirepass".to_vec())),
        "CONFIG GET * lists requirepass"
    );
}
