//! The server surface that monitoring agents, proxies and client test helpers probe, against a
//! single-node redraft and a real `redis-server` side by side: `CLIENT REPLY ON|OFF|SKIP` (byte
//! for byte over a pipeline), `COMMAND GETKEYS` / `GETKEYSANDFLAGS` (byte for byte, RESP2 and
//! RESP3), the INFO sections and their field names (`memory`, `cpu`, `errorstats`,
//! `commandstats`, `latencystats`, which `INFO`, `INFO all` and `INFO everything` include),
//! the counts in `commandstats` and `errorstats` after the same commands, `INFO keyspace`'s
//! `keys`, `expires` and `avg_ttl`, and `CLIENT LIST`'s query-buffer fields.
//!
//! Known difference, tested on redraft alone: INFO also has redraft's `raft` and `reads`
//! sections, and `memory` leaves out what redraft has no counterpart for (Lua, functions,
//! allocator internals).

use crate::common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::single::{RealRedis, Single};
use resp_client::raw::RawConn as RawClient;

/// The pipelined bytes `commands` get back, read until the connection has been quiet for a
/// while (a muted reply sends nothing, so there is no count to wait for).
fn pipeline_bytes(addr: &str, commands: &[&str]) -> String {
    let mut c = RawClient::must_connect(addr);
    let mut bytes = Vec::new();
    for cmd in commands {
        bytes.extend_from_slice(&resp_client::raw::line(cmd));
    }
    c.send(&bytes);
    // Ends with a PING whose reply is always sent: wait for it, then for anything after it.
    let (got, _) = c.drain_for(Duration::from_millis(700));
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn client_reply_off_skip_on_matches_redis() {
    let node = Single::start();
    let redis = RealRedis::start();
    let script = [
        "CLIENT REPLY SKIP",
        "SET a 1",
        "GET a",
        "CLIENT REPLY OFF",
        "GET a",
        "CLIENT REPLY SKIP",
        "GETT a",
        "INCR a",
        "CLIENT REPLY ON",
        "GET a",
        "CLIENT REPLY maybe",
        "CLIENT REPLY",
        "CLIENT REPLY SKIP",
        "CLIENT REPLY SKIP",
        "PING one",
        "PING two",
    ];
    let got = pipeline_bytes(&node.addr, &script);
    let want = pipeline_bytes(&redis.addr, &script);
    assert_eq!(got, want);
    // The same script read out: SKIP mutes itself and SET, OFF mutes everything up to ON, and
    // a second SKIP only mutes itself and the command after it.
    assert!(
        want.starts_with("$1\r\n1\r\n+OK\r\n$1\r\n2\r\n-ERR syntax error"),
        "{want}"
    );
    assert!(want.ends_with("$3\r\ntwo\r\n"), "{want}");
    assert!(!want.contains("one"), "{want}");
}

#[test]
fn command_getkeys_matches_redis() {
    let node = Single::start();
    let redis = RealRedis::start();
    let script = [
        "COMMAND GETKEYS get a",
        "COMMAND GETKEYS set a b",
        "COMMAND GETKEYS mset a 1 b 2 c 3",
        "COMMAND GETKEYS mset a 1 b",
        "COMMAND GETKEYS del a b c",
        "COMMAND GETKEYS rename a b",
        "COMMAND GETKEYS xread COUNT 2 STREAMS s1 s2 0 0",
        "COMMAND GETKEYS xread STREAMS s1 $",
        "COMMAND GETKEYS ping x",
        "COMMAND GETKEYS nosuch a",
        "COMMAND GETKEYS get",
        "COMMAND GETKEYS get a b",
        "COMMAND GETKEYS client list",
        "COMMAND GETKEYSANDFLAGS set a b",
        "COMMAND GETKEYSANDFLAGS set a b GET",
        "COMMAND GETKEYSANDFLAGS mset a 1 b 2",
        "COMMAND GETKEYSANDFLAGS rename a b",
        "COMMAND GETKEYSANDFLAGS getdel a",
        "COMMAND GETKEYSANDFLAGS incr a",
        "COMMAND GETKEYS eval x 2 k1 k2 a1",
        "COMMAND GETKEYS eval x 0 a1",
        "COMMAND GETKEYS eval x 3 k1",
        "COMMAND GETKEYSANDFLAGS evalsha_ro x 1 k1 a1",
        "COMMAND GETKEYS",
        "COMMAND GETKEYS get",
    ];
    for proto in ["HELLO 2", "HELLO 3"] {
        let mut a = RawClient::must_connect(&node.addr);
        let mut b = RawClient::must_connect(&redis.addr);
        a.call(proto);
        b.call(proto);
        for line in script {
            assert_eq!(a.call(line), b.call(line), "{proto}: {line}");
        }
    }
}

/// The `# Section` names of an INFO reply, in order.
fn section_names(info: &str) -> Vec<String> {
    info.lines()
        .filter_map(|l| l.strip_prefix("# "))
        .map(|s| s.trim().to_string())
        .collect()
}

/// The field names of one section of an INFO reply.
fn field_names(info: &str, section: &str) -> BTreeSet<String> {
    let mut inside = false;
    let mut names = BTreeSet::new();
    for line in info.lines() {
        if let Some(s) = line.strip_prefix("# ") {
            inside = s.trim() == section;
            continue;
        }
        if inside {
            if let Some((name, _)) = line.split_once(':') {
                names.insert(name.to_string());
            }
        }
    }
    names
}

/// `cmdstat_*` lines with their time fields dropped: `name:calls=..,rejected..,failed..`.
fn counts_of(info: &str) -> BTreeSet<String> {
    info.lines()
        .filter(|l| l.starts_with("cmdstat_"))
        .map(|l| {
            let (name, fields) = l.trim().split_once(':').unwrap();
            let kept: Vec<&str> = fields
                .split(',')
                .filter(|f| !f.starts_with("usec"))
                .collect();
            format!("{name}:{}", kept.join(","))
        })
        .collect()
}

/// `INFO [section]` on a raw connection (a client library would send commands of its own on
/// connect, which would show in the statistics), as text.
fn info(addr: &str, section: &str) -> String {
    let mut c = RawClient::must_connect(addr);
    let reply = c.call(&format!("INFO {section}"));
    let (_, text) = reply.split_once("\r\n").expect("a bulk reply");
    text.to_string()
}

/// The value of field `name` in the text of an `INFO` section (panics if it is missing).
fn info_field<'a>(text: &'a str, name: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("{name} missing: {text}"))
        .trim()
}

/// `INFO keyspace`'s `db0` line, or `None` when the keyspace is empty (Redis leaves it out).
fn db0(addr: &str) -> Option<String> {
    info(addr, "keyspace")
        .lines()
        .find_map(|l| l.strip_prefix("db0:").map(str::to_string))
}

/// `keys=`, `expires=` and `avg_ttl=` of a `db0` line, as numbers.
fn db0_fields(line: &str) -> Vec<(String, u64)> {
    line.split(',')
        .map(|kv| {
            let (k, v) = kv.split_once('=').expect("key=value");
            (k.to_string(), v.trim().parse().expect("a number"))
        })
        .collect()
}

#[test]
fn info_keyspace_counts_keys_with_a_deadline_as_redis_does() {
    let node = Single::start();
    let redis = RealRedis::start();
    for addr in [&node.addr, &redis.addr] {
        assert_eq!(db0(addr), None, "an empty keyspace has no db0 line");
        let mut c = RawClient::must_connect(addr);
        for line in [
            "SET a 1",
            "SET b 2 EX 100",
            "SET c 3 PX 50000",
            "SET d 4 EX 9",
        ] {
            assert_eq!(c.call(line), "+OK\r\n");
        }
        assert_eq!(c.call("PERSIST d"), ":1\r\n");
    }
    let ours = db0_fields(&db0(&node.addr).expect("db0"));
    let theirs = db0_fields(&db0(&redis.addr).expect("db0"));
    let names = |f: &[(String, u64)]| f.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
    assert_eq!(
        names(&ours),
        names(&theirs),
        "the same fields in the same order"
    );
    assert_eq!(ours[..2], theirs[..2], "keys and expires");
    assert_eq!(ours[..2], [("keys".into(), 4), ("expires".into(), 2)]);
    // Redis estimates avg_ttl by sampling in its expiry cycle; redraft's is exact: the mean of
    // 100 s and 50 s left, less the time the test took.
    let avg_ttl = ours[2].1;
    assert!((60_000..=75_000).contains(&avg_ttl), "avg_ttl {avg_ttl}");
}

#[test]
fn info_sections_and_statistics_match_redis() {
    let node = Single::start();
    let redis = RealRedis::start();
    for addr in [&node.addr, &redis.addr] {
        let mut c = RawClient::must_connect(addr);
        assert_eq!(c.call("CONFIG RESETSTAT"), "+OK\r\n");
        for line in [
            "SET a 1",
            "INCR a",
            "INCR a x",
            "GET a b",
            "SET s x",
            "INCR s",
            "NOSUCH x",
            "CLIENT NOSUCH",
            "GET a",
        ] {
            c.call(line);
        }
    }

    // Which sections each form of INFO shows: Redis's, plus redraft's raft and reads.
    let ours_only: BTreeSet<&str> = ["Raft", "Reads"].into();
    for form in ["", "default", "all", "everything"] {
        let ours: Vec<String> = section_names(&info(&node.addr, form))
            .into_iter()
            .filter(|s| !ours_only.contains(s.as_str()))
            .collect();
        let theirs = section_names(&info(&redis.addr, form));
        assert_eq!(ours, theirs, "INFO {form}");
    }
    let all = info(&node.addr, "all");
    for s in [
        "Raft",
        "Reads",
        "Memory",
        "CPU",
        "Commandstats",
        "Latencystats",
    ] {
        assert!(section_names(&all).iter().any(|n| n == s), "{s}: {all}");
    }

    // Same counts per command (times differ), same error codes and counts.
    let ours = info(&node.addr, "commandstats");
    let theirs = info(&redis.addr, "commandstats");
    let (ours_counts, theirs_counts) = (counts_of(&ours), counts_of(&theirs));
    for want in [
        "cmdstat_set:calls=2,rejected_calls=0,failed_calls=0",
        "cmdstat_incr:calls=2,rejected_calls=1,failed_calls=1",
        "cmdstat_get:calls=1,rejected_calls=1,failed_calls=0",
    ] {
        assert!(theirs_counts.contains(want), "Redis: {theirs}");
        assert!(ours_counts.contains(want), "redraft: {ours}");
    }
    let errors = |addr: &str| {
        info(addr, "errorstats")
            .lines()
            .filter(|l| l.starts_with("errorstat_"))
            .map(|l| l.trim().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(errors(&node.addr), errors(&redis.addr));
    assert_eq!(
        errors(&node.addr),
        vec!["errorstat_ERR:count=5"],
        "ERR: INCR a x, GET a b, INCR s, NOSUCH, CLIENT NOSUCH"
    );
    let total = |addr: &str| {
        info(addr, "stats")
            .lines()
            .find_map(|l| l.strip_prefix("total_error_replies:"))
            .map(|v| v.trim().to_string())
    };
    assert_eq!(total(&node.addr), total(&redis.addr));

    // Latency lines name the same commands, with p50, p99 and p99.9 in microseconds.
    let lat = |addr: &str| -> BTreeSet<String> {
        info(addr, "latencystats")
            .lines()
            .filter_map(|l| l.strip_prefix("latency_percentiles_usec_"))
            .map(|l| {
                let (name, fields) = l.trim().split_once(':').unwrap();
                let keys: Vec<&str> = fields
                    .split(',')
                    .map(|f| f.split('=').next().unwrap())
                    .collect();
                format!("{name}:{}", keys.join(","))
            })
            .filter(|l| !l.starts_with("info:") && !l.starts_with("config|resetstat:"))
            .collect()
    };
    assert_eq!(lat(&node.addr), lat(&redis.addr));

    // CPU: the same fields; memory: every field redraft shows is one of Redis's, and the
    // figures monitoring reads are there and positive.
    let cpu = info(&node.addr, "cpu");
    assert_eq!(
        field_names(&cpu, "CPU"),
        field_names(&info(&redis.addr, "cpu"), "CPU")
    );
    let mem = info(&node.addr, "memory");
    let ours_mem = field_names(&mem, "Memory");
    let theirs_mem = field_names(&info(&redis.addr, "memory"), "Memory");
    assert!(
        ours_mem.is_subset(&theirs_mem),
        "{:?}",
        ours_mem.difference(&theirs_mem)
    );
    for f in [
        "used_memory",
        "used_memory_rss",
        "used_memory_peak",
        "total_system_memory",
    ] {
        let v: u64 = info_field(&mem, f).parse().unwrap();
        assert!(v > 0, "{f}: {mem}");
    }

    // CONFIG RESETSTAT clears them.
    let mut c = RawClient::must_connect(&node.addr);
    c.call("CONFIG RESETSTAT");
    let after = info(&node.addr, "commandstats");
    assert!(!after.contains("cmdstat_incr"), "{after}");
    assert!(!info(&node.addr, "errorstats").contains("errorstat_"));
}

#[test]
fn client_list_reports_the_query_buffer_and_argv_memory() {
    let node = Single::start();
    let redis = RealRedis::start();
    for addr in [&node.addr, &redis.addr] {
        let mut c = RawClient::must_connect(addr);
        let line = c.call("CLIENT INFO");
        let field = |name: &str| -> u64 {
            line.split(' ')
                .find_map(|f| f.strip_prefix(&format!("{name}=")))
                .unwrap_or_else(|| panic!("{name} missing: {line}"))
                .trim()
                .parse()
                .unwrap()
        };
        // CLIENT INFO's own arguments: "CLIENT" + "INFO", as Redis counts them.
        assert_eq!(field("argv-mem"), 10, "{addr}: {line}");
        assert!(field("qbuf-free") > 0, "{addr}: {line}");
        assert!(field("tot-mem") >= field("qbuf-free"), "{addr}: {line}");
    }
}

/// The allocator's heap in `INFO memory`: the binary allocates with jemalloc (`main.rs`), so
/// `used_memory` is jemalloc's allocated bytes. It was read from glibc's `mallinfo2`, which
/// saw none of the store (a node holding 20 MB of values reported `used_memory` of ~25 KB and
/// a `mem_fragmentation_ratio` in the thousands, what a Redis dashboard alerts on), and
/// `mem_allocator` said `libc`.
#[test]
fn info_memory_reports_the_heap_the_values_are_in() {
    let node = Single::start();
    let mut c = RawClient::must_connect(&node.addr);
    let value = vec![b'v'; 100 << 10];
    for i in 0..200 {
        let reply = c.must_call(&[b"SET".as_slice(), format!("big:{i}").as_bytes(), &value]);
        assert_eq!(reply, resp_client::raw::Reply::ok(), "SET big:{i}");
    }
    let mem = info(&node.addr, "memory");
    let field = |f: &str| info_field(&mem, f);
    let used: u64 = field("used_memory").parse().unwrap();
    let rss: u64 = field("used_memory_rss").parse().unwrap();
    assert!(
        used >= 20 << 20,
        "used_memory {used} with 20 MiB of values stored: {mem}"
    );
    assert!(used <= rss, "more allocated than resident: {mem}");
    let frag: f64 = field("mem_fragmentation_ratio").parse().unwrap();
    assert!(frag < 3.0, "mem_fragmentation_ratio {frag}: {mem}");
    assert!(field("mem_allocator").starts_with("jemalloc-"), "{mem}");
    let allocated: u64 = field("allocator_allocated").parse().unwrap();
    let active: u64 = field("allocator_active").parse().unwrap();
    let resident: u64 = field("allocator_resident").parse().unwrap();
    assert!(
        allocated <= active && active <= resident && allocated >= 20 << 20,
        "{mem}"
    );
}
