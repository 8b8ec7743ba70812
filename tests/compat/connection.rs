//! Connection and server commands against a single-node redraft and a real `redis-server`, side
//! by side: the same command script must get the same replies wherever Redis's behaviour applies
//! (through the sync `redis` crate, RESP2 and RESP3, and byte for byte on raw sockets).
//!
//! Known, documented differences are tested on redraft alone: `SELECT` other than 0 (Redis
//! Cluster's error), `READONLY`/`READWRITE` (read modes), `CLIENT SETINFO` and the `lib-name`/
//! `lib-ver` fields (Redis 7.2; the reference server may be 7.0), the `HELLO` version string,
//! and the `NOAUTH` text of `HELLO` (Redis 7.2's).

use crate::common;

use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::single::{RealRedis, Single};
use redis::Value;
use resp_client::raw::RawConn as RawClient;
use tempfile::TempDir;

/// A single-node redraft with `requirepass` set (the shared `Single` harness checks readiness
/// without authenticating, so it cannot start one). Killed on drop.
struct PasswordNode {
    _dir: TempDir,
    child: Child,
    addr: String,
    log: PathBuf,
}

impl PasswordNode {
    fn start(password: &str) -> PasswordNode {
        let dir = tempfile::Builder::new()
            .prefix("redraft-pw-")
            .tempdir()
            .expect("tempdir");
        let ports = common::free_ports(2);
        let config = dir.path().join("cluster.toml");
        let toml = format!(
            "[cluster]\nname = \"single\"\n\n[[node]]\nid = 1\nraft_addr = \"127.0.0.1:{}\"\n\
             redis_addr = \"127.0.0.1:{}\"\ndata_dir = \"{}\"\n\n[server]\nrequirepass = \"{password}\"\n",
            ports[0],
            ports[1],
            dir.path().join("node1").display()
        );
        std::fs::write(&config, toml).expect("write cluster.toml");
        let log = dir.path().join("node1.log");
        let child = common::spawn_node(&config, 1, &log);
        let node = PasswordNode {
            _dir: dir,
            child,
            addr: format!("127.0.0.1:{}", ports[1]),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if std::net::TcpStream::connect(&node.addr).is_ok() {
                let mut c = RawClient::must_connect(&node.addr);
                if c.call(&format!("AUTH {password}")) == "+OK\r\n"
                    && c.call("ROLE").contains("master")
                {
                    return node;
                }
            }
            assert!(
                Instant::now() < deadline,
                "redraft with requirepass not ready:\n{}",
                common::file_tail(&node.log, 40)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for PasswordNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("redraft log:\n{}", common::file_tail(&self.log, 80));
        }
    }
}

/// A sync client speaking RESP3 (the crate sends `HELLO 3` itself).
fn must_connect_resp3(addr: &str) -> redis::Connection {
    let client = redis::Client::open(format!("redis://{addr}/?protocol=resp3")).expect("url");
    let con = client
        .get_connection_with_timeout(Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("connect RESP3 {addr}: {e}"));
    con.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    con
}

/// Runs a command and renders the outcome, error replies included, for comparison.
fn run(con: &mut redis::Connection, args: &[&str]) -> String {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    match cmd.query::<Value>(con) {
        Ok(v) => format!("{v:?}"),
        Err(e) => format!("error: {:?} {:?}", e.code(), e.detail()),
    }
}

fn field_names(line: &str) -> Vec<String> {
    line.trim_end()
        .split(' ')
        .map(|kv| kv.split_once('=').map_or(kv, |(k, _)| k).to_string())
        .collect()
}

fn field<'a>(line: &'a str, name: &str) -> &'a str {
    line.trim_end()
        .split(' ')
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name}= in {line:?}"))
}

fn map_keys(v: &Value) -> Vec<String> {
    match v {
        Value::Map(pairs) => pairs
            .iter()
            .map(|(k, _)| redis::from_redis_value::<String>(k).expect("string key"))
            .collect(),
        other => panic!("want a map, got {other:?}"),
    }
}

fn map_get<'a>(v: &'a Value, key: &str) -> &'a Value {
    match v {
        Value::Map(pairs) => pairs
            .iter()
            .find(|(k, _)| redis::from_redis_value::<String>(k).ok().as_deref() == Some(key))
            .map(|(_, v)| v)
            .unwrap_or_else(|| panic!("no {key} in {v:?}")),
        other => panic!("want a map, got {other:?}"),
    }
}

#[test]
fn error_replies_match_redis() {
    let node = Single::start();
    let redis = RealRedis::start();
    // Each line runs on a fresh raw connection to both servers; the replies must be the same
    // bytes. (HELLO 3 ... with a bad option leaves the connection on RESP2 on both.)
    let script = [
        "PING",
        "PING hello",
        "PING a b",
        "ECHO",
        "ECHO hi",
        "FOO x y",
        // Command names fold ASCII case only, as Redis's strcasecmp does: the Kelvin sign
        // (U+212A) folds to `k` only under Unicode rules, so this is an unknown command.
        "\u{212A}EYS *",
        "gEt",
        "GET",
        "AUTH x",
        "AUTH a b",
        "AUTH a b c",
        "SELECT 0",
        "SELECT abc",
        "SELECT 0 1",
        "CLIENT",
        "CLIENT FOO",
        "CLIENT fOo bar",
        "CLIENT SETNAME",
        "CLIENT GETNAME",
        "CLIENT ID 1",
        "CLIENT NO-EVICT maybe",
        "CLIENT LIST TYPE foo",
        "CLIENT LIST ID abc",
        "CLIENT LIST ID 0",
        "CLIENT LIST ID",
        "CLIENT LIST FOO",
        "CLIENT LIST ID 99999",
        "CLIENT KILL 1.2.3.4:5",
        "CLIENT KILL ID 0",
        "CLIENT KILL ID 99999",
        "CLIENT KILL TYPE x y",
        "CLIENT KILL FOO bar",
        "CLIENT KILL SKIPME maybe",
        "CLIENT KILL USER bob",
        "HELLO 4",
        "HELLO 1",
        "HELLO abc",
        "HELLO 3 FOO",
        "HELLO 2 AUTH a",
        "HELLO 3 SETNAME",
        "COMMAND FOO",
        "COMMAND COUNT x",
        "COMMAND LIST FOO",
        "COMMAND LIST FILTERBY FOO x",
        "COMMAND LIST FILTERBY MODULE x",
        "COMMAND INFO nosuch",
        "COMMAND DOCS nosuch",
        "CONFIG",
        "CONFIG FOO",
        "CONFIG GET",
        "CONFIG SET maxclients",
        "CONFIG SET a b c",
        "CONFIG SET foo bar",
        "CONFIG SET maxclients abc",
        "CONFIG SET maxclients 0",
        "CONFIG SET timeout -1",
        "CONFIG SET timeout 1 timeout 2",
        "CONFIG SET notify-keyspace-events Q",
        "CONFIG SET client-output-buffer-limit normal",
        "CONFIG RESETSTAT x",
        "TIME x",
        "QUIT",
    ];
    for line in script {
        let mut a = RawClient::must_connect(&node.addr);
        let mut b = RawClient::must_connect(&redis.addr);
        let (got, want) = (a.call(line), b.call(line));
        assert_eq!(got, want, "{line}");
    }
}

#[test]
fn hello_shape_and_resp3_client() {
    let node = Single::start();
    let redis = RealRedis::start();
    for addr in [&node.addr, &redis.addr] {
        let mut con = must_connect_resp3(addr);
        let hello: Value = redis::cmd("HELLO").query(&mut con).expect("HELLO");
        assert_eq!(
            map_keys(&hello),
            ["server", "version", "proto", "id", "mode", "role", "modules"],
            "{addr}"
        );
        assert_eq!(
            map_get(&hello, "server"),
            &Value::BulkString(b"redis".to_vec())
        );
        assert_eq!(map_get(&hello, "proto"), &Value::Int(3));
        assert_eq!(
            map_get(&hello, "mode"),
            &Value::BulkString(b"standalone".to_vec())
        );
        assert_eq!(
            map_get(&hello, "role"),
            &Value::BulkString(b"master".to_vec())
        );
        assert_eq!(map_get(&hello, "modules"), &Value::Array(vec![]));
        let id: i64 = redis::cmd("CLIENT").arg("ID").query(&mut con).expect("id");
        assert_eq!(map_get(&hello, "id"), &Value::Int(id), "{addr}");
        // RESP3 reply types through the client: nil is Nil, CONFIG GET is a map.
        let name: Value = redis::cmd("CLIENT").arg("GETNAME").query(&mut con).unwrap();
        assert_eq!(name, Value::Nil, "{addr}");
        let cfg: Value = redis::cmd("CONFIG")
            .arg("GET")
            .arg("maxclients")
            .query(&mut con)
            .unwrap();
        assert_eq!(map_keys(&cfg), ["maxclients"], "{addr}");
        // Back to RESP2 with HELLO 2: the map becomes a flat array.
        let hello2: Value = redis::cmd("HELLO").arg("2").query(&mut con).unwrap();
        match hello2 {
            Value::Array(items) => assert_eq!(items.len(), 14, "{addr}"),
            other => panic!("{addr}: HELLO 2 gave {other:?}"),
        }
    }
    // redraft's version string is the Redis version it speaks for.
    let mut con = must_connect_resp3(&node.addr);
    let hello: Value = redis::cmd("HELLO").arg("3").query(&mut con).unwrap();
    assert_eq!(
        map_get(&hello, "version"),
        &Value::BulkString(b"7.4.0".to_vec())
    );
}

#[test]
fn resp3_bytes_on_a_raw_socket() {
    let node = Single::start();
    let redis = RealRedis::start();
    let mut c = RawClient::must_connect(&node.addr);
    let id = c.call("CLIENT ID");
    let id = id.trim_start_matches(':').trim_end();
    let hello = c.call("HELLO 3");
    assert_eq!(
        hello,
        format!(
            "%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n7.4.0\r\n$5\r\nproto\r\n\
             :3\r\n$2\r\nid\r\n:{id}\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n\
             $6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n"
        )
    );
    assert_eq!(c.call("CLIENT GETNAME"), "_\r\n");
    assert_eq!(c.call("COMMAND INFO nosuch"), "*1\r\n_\r\n");
    assert_eq!(c.call("PING"), "+PONG\r\n");
    assert_eq!(
        c.call("CONFIG GET maxclients"),
        "%1\r\n$10\r\nmaxclients\r\n$5\r\n10000\r\n"
    );
    let info = c.call("CLIENT INFO");
    assert!(info.starts_with('='), "verbatim string: {info:?}");
    assert!(info.contains("\r\ntxt:id="), "{info:?}");
    assert!(info.contains(" resp=3 "), "{info:?}");
    // The same RESP3 bytes as Redis for the command table's sets and maps.
    let mut r = RawClient::must_connect(&redis.addr);
    r.call("HELLO 3");
    for line in [
        "COMMAND INFO get",
        "COMMAND INFO set del mget",
        "COMMAND DOCS get",
        "COMMAND DOCS set",
        "CONFIG GET timeout",
        "CONFIG GET notify-keyspace-events",
    ] {
        assert_eq!(c.call(line), r.call(line), "{line}");
    }
    // RESET: back to RESP2.
    assert_eq!(c.call("RESET"), "+RESET\r\n");
    assert_eq!(c.call("CLIENT GETNAME"), "$-1\r\n");
}

#[test]
fn client_names_ids_and_list_fields_match_redis() {
    let node = Single::start();
    let redis = RealRedis::start();
    for (addr, is_redraft) in [(&node.addr, true), (&redis.addr, false)] {
        let mut a = RawClient::must_connect(addr);
        let mut b = RawClient::must_connect(addr);
        let id_a: u64 = a.call("CLIENT ID")[1..].trim_end().parse().unwrap();
        let id_b: u64 = b.call("CLIENT ID")[1..].trim_end().parse().unwrap();
        assert!(id_b > id_a, "{addr}: ids grow ({id_a}, {id_b})");
        assert_eq!(a.call("CLIENT GETNAME"), "$-1\r\n");
        assert_eq!(
            a.call_args(&[b"CLIENT", b"SETNAME", b"a b"]),
            "-ERR Client names cannot contain spaces, newlines or special characters.\r\n"
        );
        assert_eq!(a.call("CLIENT SETNAME worker-1"), "+OK\r\n");
        assert_eq!(a.call("CLIENT GETNAME"), "$8\r\nworker-1\r\n");
        assert!(a.call("HELLO 2 SETNAME w2").starts_with("*14\r\n"));
        assert_eq!(a.call("CLIENT GETNAME"), "$2\r\nw2\r\n");
        assert_eq!(a.call_args(&[b"CLIENT", b"SETNAME", b""]), "+OK\r\n");
        assert_eq!(a.call("CLIENT GETNAME"), "$-1\r\n");
        assert_eq!(a.call("CLIENT SETNAME worker-1"), "+OK\r\n");

        let info = a.call("CLIENT INFO");
        let line = info.split_once("\r\n").unwrap().1.trim_end_matches("\r\n");
        assert_eq!(field(line, "id"), id_a.to_string());
        assert_eq!(field(line, "name"), "worker-1");
        assert_eq!(field(line, "cmd"), "client|info");
        assert_eq!(field(line, "flags"), "N");
        assert_eq!(field(line, "db"), "0");
        assert_eq!(field(line, "user"), "default");
        assert_eq!(field(line, "resp"), "2");

        let list = b.call("CLIENT LIST");
        let lines: Vec<&str> = list
            .split_once("\r\n")
            .unwrap()
            .1
            .trim_end_matches("\r\n")
            .lines()
            .collect();
        let ids: Vec<&str> = lines.iter().map(|l| field(l, "id")).collect();
        assert!(ids.contains(&id_a.to_string().as_str()), "{addr}: {list}");
        let mine = lines
            .iter()
            .find(|l| field(l, "id") == id_b.to_string())
            .unwrap();
        assert_eq!(field(mine, "cmd"), "client|list");
        // Only the ID asked for.
        let only = b.call(&format!("CLIENT LIST ID {id_a}"));
        assert_eq!(only.matches("id=").count(), 1, "{only}");
        assert!(only.contains("name=worker-1"));
        assert!(b
            .call("CLIENT LIST TYPE normal")
            .contains(&format!("id={id_b} ")));
        assert_eq!(b.call("CLIENT LIST TYPE pubsub"), "$0\r\n\r\n");

        let mut names = field_names(mine);
        if is_redraft {
            // Redis 7.2 appends lib-name and lib-ver; the reference server may be 7.0.
            assert_eq!(names.split_off(names.len() - 2), ["lib-name", "lib-ver"]);
        } else if names.ends_with(&["lib-name".to_string(), "lib-ver".to_string()]) {
            names.truncate(names.len() - 2);
        }
        let want = "id addr laddr fd name age idle flags db sub psub ssub multi qbuf qbuf-free \
                    argv-mem multi-mem rbs rbp obl oll omem tot-mem events cmd user redir resp";
        assert_eq!(names, want.split(' ').collect::<Vec<_>>(), "{addr}");

        // CLIENT KILL by id closes the other connection, and answers the count.
        assert_eq!(b.call(&format!("CLIENT KILL ID {id_a}")), ":1\r\n");
        assert!(a.wait_closed(Duration::from_secs(5)).is_some(), "{addr}");
    }
}

#[test]
fn setinfo_and_client_flags_on_redraft() {
    let node = Single::start();
    let mut c = RawClient::must_connect(&node.addr);
    assert_eq!(c.call("CLIENT SETINFO lib-name redis-py"), "+OK\r\n");
    assert_eq!(c.call("CLIENT SETINFO LIB-VER 5.0.1"), "+OK\r\n");
    assert_eq!(
        c.call_args(&[b"CLIENT", b"SETINFO", b"lib-ver", b"5 0"]),
        "-ERR lib-ver cannot contain spaces, newlines or special characters.\r\n"
    );
    assert_eq!(
        c.call("CLIENT SETINFO lib-foo x"),
        "-ERR Unrecognized option 'lib-foo'\r\n"
    );
    assert_eq!(
        c.call("CLIENT SETINFO lib-name"),
        "-ERR wrong number of arguments for 'client|setinfo' command\r\n"
    );
    assert_eq!(c.call("CLIENT NO-EVICT on"), "+OK\r\n");
    assert_eq!(c.call("CLIENT NO-TOUCH on"), "+OK\r\n");
    assert_eq!(c.call("READONLY"), "+OK\r\n");
    let info = c.call("CLIENT INFO");
    assert!(info.contains(" flags=reT "), "{info}");
    assert!(
        info.contains(" lib-name=redis-py lib-ver=5.0.1\n"),
        "{info}"
    );
    assert_eq!(c.call("READMODE"), "$5\r\nstale\r\n");
    assert_eq!(c.call("READWRITE"), "+OK\r\n");
    assert_eq!(c.call("READMODE"), "$12\r\nlinearizable\r\n");
    assert_eq!(c.call("READMODE lease"), "+OK\r\n");
    assert_eq!(c.call("READMODE"), "$5\r\nlease\r\n");
    // RESET clears name, flags and read mode, keeps the library fields (as Redis 7.2).
    assert_eq!(c.call("CLIENT SETNAME n1"), "+OK\r\n");
    assert_eq!(c.call("RESET"), "+RESET\r\n");
    let info = c.call("CLIENT INFO");
    assert!(info.contains(" name= "), "{info}");
    assert!(info.contains(" flags=N "), "{info}");
    assert!(
        info.contains(" lib-name=redis-py lib-ver=5.0.1\n"),
        "{info}"
    );
    assert_eq!(c.call("READMODE"), "$12\r\nlinearizable\r\n");
    // The library fields of the redis crate itself (it sends CLIENT SETINFO on connect).
    let mut con = node.must_connect();
    let info: String = redis::cmd("CLIENT").arg("INFO").query(&mut con).unwrap();
    assert!(info.contains(" lib-name=redis-rs "), "{info}");
    // SELECT: Redis Cluster's answer for any database but 0.
    assert_eq!(c.call("SELECT 0"), "+OK\r\n");
    assert_eq!(
        c.call("SELECT 1"),
        "-ERR SELECT is not allowed in cluster mode\r\n"
    );
    assert_eq!(
        c.call("SELECT -1"),
        "-ERR SELECT is not allowed in cluster mode\r\n"
    );
    assert_eq!(
        c.call("SELECT 99999999999"),
        "-ERR value is not an integer or out of range\r\n"
    );
}

#[test]
fn requirepass_gates_everything_but_the_handshake() {
    let node = PasswordNode::start("pw");
    let redis = RealRedis::start();
    let mut c = RawClient::must_connect(&node.addr);
    assert_eq!(c.call("GET k"), "-NOAUTH Authentication required.\r\n");
    assert_eq!(c.call("PING"), "-NOAUTH Authentication required.\r\n");
    assert_eq!(c.call("CLIENT ID"), "-NOAUTH Authentication required.\r\n");
    // Checks that come first in Redis still come first: arity, unknown command.
    assert_eq!(
        c.call("GET"),
        "-ERR wrong number of arguments for 'get' command\r\n"
    );
    assert_eq!(
        c.call("FOO"),
        "-ERR unknown command 'FOO', with args beginning with: \r\n"
    );
    assert_eq!(
        c.call("HELLO 3"),
        "-NOAUTH HELLO must be called with the client already authenticated, otherwise the \
         HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and \
         select the RESP protocol version at the same time\r\n"
    );
    assert_eq!(
        c.call("HELLO 4"),
        "-NOPROTO unsupported protocol version\r\n"
    );
    let wrong = "-WRONGPASS invalid username-password pair or user is disabled.\r\n";
    assert_eq!(c.call("HELLO 3 AUTH default nope"), wrong);
    assert_eq!(c.call("HELLO 3 AUTH someone pw"), wrong);
    assert_eq!(c.call("AUTH nope"), wrong);
    assert_eq!(c.call("AUTH bob pw"), wrong);
    // Still RESP2 and unauthenticated after the failures.
    assert_eq!(c.call("GET k"), "-NOAUTH Authentication required.\r\n");
    let hello = c.call("HELLO 3 AUTH default pw SETNAME app");
    assert!(hello.starts_with("%7\r\n"), "{hello}");
    assert_eq!(c.call("GET k"), "_\r\n");
    assert_eq!(c.call("CLIENT GETNAME"), "$3\r\napp\r\n");
    // RESET forgets the authentication.
    assert_eq!(c.call("RESET"), "+RESET\r\n");
    assert_eq!(c.call("GET k"), "-NOAUTH Authentication required.\r\n");
    assert_eq!(c.call("AUTH pw"), "+OK\r\n");
    assert_eq!(c.call("GET k"), "$-1\r\n");
    assert_eq!(c.call("AUTH default pw"), "+OK\r\n");
    // QUIT works unauthenticated and closes after +OK.
    let mut q = RawClient::must_connect(&node.addr);
    assert_eq!(q.call("QUIT"), "+OK\r\n");
    assert!(q.wait_closed(Duration::from_secs(5)).is_some());
    // Stock clients authenticate through the URL, RESP2 (AUTH) and RESP3 (HELLO 3 AUTH).
    for url in [
        format!("redis://:pw@{}/", node.addr),
        format!("redis://:pw@{}/?protocol=resp3", node.addr),
    ] {
        let client = redis::Client::open(url.clone()).unwrap();
        let mut con = client
            .get_connection_with_timeout(Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        let pong: String = redis::cmd("PING").query(&mut con).unwrap();
        assert_eq!(pong, "PONG");
    }
    // With no password configured, HELLO AUTH accepts the default user with any password, as
    // Redis's nopass default user does.
    let open = Single::start();
    for addr in [&open.addr, &redis.addr] {
        let mut c = RawClient::must_connect(addr);
        assert!(
            c.call("HELLO 3 AUTH default x").starts_with("%7\r\n"),
            "{addr}"
        );
        assert_eq!(c.call("AUTH default x"), "+OK\r\n", "{addr}");
    }
}

#[test]
fn command_table_matches_redis() {
    let node = Single::start();
    let redis = RealRedis::start();
    let mut ours = RawClient::must_connect(&node.addr);
    let mut theirs = RawClient::must_connect(&redis.addr);
    let list = ours.call("COMMAND LIST");
    let names: Vec<String> = list
        .lines()
        .skip(1)
        .filter(|l| !l.starts_with('$') && !l.is_empty())
        .map(str::to_string)
        .collect();
    assert!(names.contains(&"get".to_string()), "{list}");
    assert!(names.contains(&"client|list".to_string()), "{list}");
    let count = ours.call("COMMAND COUNT");
    let top = names.iter().filter(|n| !n.contains('|')).count();
    assert_eq!(count, format!(":{top}\r\n"));
    // Every command of the table that Redis has: identical COMMAND INFO and DOCS entries, in
    // RESP3 so that sets, maps and arrays are told apart.
    ours.call("HELLO 3");
    theirs.call("HELLO 3");
    let mut compared = 0;
    for name in &names {
        let theirs_info = theirs.call(&format!("COMMAND INFO {name}"));
        if theirs_info == "*1\r\n_\r\n" {
            continue; // redraft's own, or newer than the reference server.
        }
        // Containers list only the subcommands redraft answers; their entries compare one by
        // one.
        // ACL's subcommands come in Redis's hash order.
        if [
            "acl", "client", "command", "config", "object", "pubsub", "script",
        ]
        .contains(&name.as_str())
        {
            continue;
        }
        assert_eq!(
            ours.call(&format!("COMMAND INFO {name}")),
            theirs_info,
            "COMMAND INFO {name}"
        );
        assert_eq!(
            ours.call(&format!("COMMAND DOCS {name}")),
            theirs.call(&format!("COMMAND DOCS {name}")),
            "COMMAND DOCS {name}"
        );
        compared += 1;
    }
    assert!(compared >= 40, "compared only {compared} commands");
    // redraft's own commands are documented with arguments, so redis-cli shows hints.
    let docs = ours.call("COMMAND DOCS cas getmeta");
    for want in ["expected_mod_revision", "key_spec_index", "summary"] {
        assert!(docs.contains(want), "{docs}");
    }
    let info = ours.call("COMMAND INFO getmeta");
    assert!(
        info.starts_with("*1\r\n*10\r\n$7\r\ngetmeta\r\n:2\r\n"),
        "{info}"
    );
    ours.call("HELLO 2");
    assert_eq!(
        ours.call("COMMAND LIST FILTERBY PATTERN getm*"),
        "*1\r\n$7\r\ngetmeta\r\n"
    );
    let conn = ours.call("COMMAND LIST FILTERBY ACLCAT connection");
    assert!(conn.contains("$5\r\nhello\r\n") && conn.contains("client|setname"));
    assert!(!conn.contains("\r\nget\r\n"));
    // The full table is one entry per command.
    let all = ours.call("COMMAND");
    assert!(
        all.starts_with(&format!("*{top}\r\n*10\r\n")),
        "{}",
        &all[..40]
    );
}

#[test]
fn config_get_set_and_time() {
    let node = Single::start();
    let redis = RealRedis::start();
    for addr in [&node.addr, &redis.addr] {
        let mut con = common::connect(addr, Duration::from_secs(5)).unwrap();
        // RESP2: a flat array of pairs (Redis's order is its hash table's: compare as pairs).
        let got: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("maxclients")
            .arg("timeout")
            .query(&mut con)
            .unwrap();
        let mut pairs: Vec<(String, String)> = got
            .chunks(2)
            .map(|p| (p[0].clone(), p[1].clone()))
            .collect();
        pairs.sort();
        assert_eq!(
            pairs,
            [
                ("maxclients".to_string(), "10000".to_string()),
                ("timeout".to_string(), "0".to_string())
            ],
            "{addr}"
        );
        for (param, value, shown) in [
            ("notify-keyspace-events", "KEA", "AKE"),
            ("notify-keyspace-events", "Kg$", "g$K"),
            ("notify-keyspace-events", "", ""),
            ("timeout", "30", "30"),
            ("timeout", "0", "0"),
            ("maxclients", "500", "500"),
            ("maxclients", "10000", "10000"),
        ] {
            assert_eq!(
                run(&mut con, &["CONFIG", "SET", param, value]),
                format!("{:?}", Value::Okay)
            );
            let got: Vec<String> = redis::cmd("CONFIG")
                .arg("GET")
                .arg(param)
                .query(&mut con)
                .unwrap();
            assert_eq!(got, [param, shown], "{addr}");
        }
        // All or nothing: the bad second pair leaves the first unapplied.
        let err = run(
            &mut con,
            &["CONFIG", "SET", "maxclients", "10", "timeout", "x"],
        );
        assert!(
            err.contains("argument couldn't be parsed into an integer"),
            "{err}"
        );
        let max: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("maxclients")
            .query(&mut con)
            .unwrap();
        assert_eq!(max[1], "10000", "{addr}");
        // What client libraries ask for is answered.
        for param in [
            "save",
            "appendonly",
            "databases",
            "maxmemory",
            "maxmemory-policy",
            "proto-max-bulk-len",
            "client-output-buffer-limit",
        ] {
            let got: Vec<String> = redis::cmd("CONFIG")
                .arg("GET")
                .arg(param)
                .query(&mut con)
                .unwrap();
            assert_eq!(got.first().map(String::as_str), Some(param), "{addr}");
        }
        let glob: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("max*")
            .query(&mut con)
            .unwrap();
        assert!(glob.contains(&"maxclients".to_string()), "{addr}: {glob:?}");

        // TIME: [seconds, microseconds] as bulk strings, close to this machine's clock.
        let time: Vec<String> = redis::cmd("TIME").query(&mut con).unwrap();
        let secs: u64 = time[0].parse().unwrap();
        let micros: u64 = time[1].parse().unwrap();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(secs.abs_diff(now) <= 5, "{addr}: {secs} vs {now}");
        assert!(micros < 1_000_000);
    }
    // redraft-only: the output buffer limit setting round-trips in Redis's format.
    let mut c = RawClient::must_connect(&node.addr);
    assert_eq!(
        c.call_args(&[
            b"CONFIG",
            b"SET",
            b"client-output-buffer-limit",
            b"normal 1mb 0 0"
        ]),
        "+OK\r\n"
    );
    let got = c.call("CONFIG GET client-output-buffer-limit");
    assert!(
        got.contains("normal 1048576 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"),
        "{got}"
    );
    // A fixed setting may be "set" to what it is, not changed.
    assert_eq!(c.call_args(&[b"CONFIG", b"SET", b"save", b""]), "+OK\r\n");
    assert_eq!(
        c.call("CONFIG SET appendonly yes"),
        "-ERR CONFIG SET failed (possibly related to argument 'appendonly') - can't set \
         immutable config\r\n"
    );
    // INFO: the sections clients read.
    let mut con = node.must_connect();
    let clients = common::try_info(&mut con, "clients").unwrap();
    assert!(clients["connected_clients"].parse::<u64>().unwrap() >= 2);
    assert_eq!(clients["maxclients"], "10000");
    let server = common::try_info(&mut con, "server").unwrap();
    assert_eq!(server["tcp_port"], node.port.to_string());
    assert_eq!(server["redis_version"], "7.4.0");
    let both: String = redis::cmd("INFO")
        .arg("server")
        .arg("clients")
        .query(&mut con)
        .unwrap();
    assert!(both.contains("# Server\r\n") && both.contains("# Clients\r\n"));
    assert!(!both.contains("# Raft"));
    let none: String = redis::cmd("INFO").arg("nosuch").query(&mut con).unwrap();
    assert_eq!(none, "");
}
