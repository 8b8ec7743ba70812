//! RESP framing, black box: raw bytes over TCP to a single-node redraft, raw reply bytes back,
//! and wherever Redis defines the behaviour the same bytes to a real `redis-server`, so every
//! expectation here is Redis's own (a differential test: the test is right if Redis passes it).
//!
//! Checks DESIGN §8 ("Never panic on client bytes"; malformed frame → `-ERR Protocol error: …`
//! and close; limits checked before allocating) and the protocol module's invariants
//! NoPanicOnInput and LimitsBeforeAlloc. The fixture cases live in
//! `tests/testdata/resp_framing.txt`.

use crate::common;
use crate::common::framer_check;
use crate::common::raw;

use std::thread;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use common::single::{RealRedis, Single};
use raw::{escape, multibulk, parse_reply, proc_status_kb, RawConn, Reply, REPLY_TIMEOUT};

/// The two servers every differential test runs against, by name.
fn both() -> (Single, RealRedis) {
    (Single::start(), RealRedis::start())
}

fn targets<'a>(node: &'a Single, redis: &'a RealRedis) -> [(&'static str, &'a str); 2] {
    [("redraft", &node.addr), ("redis", &redis.addr)]
}

#[test]
fn fixture_cases_match_redis_byte_for_byte() {
    let cases = raw::parse_fixture(include_str!("../testdata/resp_framing.txt"));
    assert!(
        cases.len() >= 30,
        "only {} fixture cases parsed",
        cases.len()
    );
    let (node, redis) = both();
    let mut failures = Vec::new();
    for (name, addr) in targets(&node, &redis) {
        failures.extend(raw::run_fixture(&cases, name, addr));
    }
    assert!(
        failures.is_empty(),
        "{} fixture case(s) failed (tests/testdata/resp_framing.txt):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Redis echoes the command name as the client spelled it (`c->argv[0]->ptr`), not lowercased.
#[test]
fn unknown_command_error_keeps_the_clients_spelling() {
    let (node, redis) = both();
    let want = b"-ERR unknown command 'FooBar', with args beginning with: 'x' 'Y' \r\n";
    for (name, addr) in targets(&node, &redis) {
        for input in [&b"FooBar x Y\r\n"[..], &multibulk(&["FooBar", "x", "Y"])] {
            let mut conn = RawConn::must_connect(addr);
            conn.send(input);
            let got = conn.read_up_to(want.len(), REPLY_TIMEOUT);
            assert_eq!(
                escape(&got),
                escape(want),
                "[{name}] reply to \"{}\"",
                escape(input)
            );
        }
    }
}

/// A command whose bytes arrive one at a time, with a pause after each, is answered exactly
/// once, and only after its last byte.
#[test]
fn a_command_sent_byte_by_byte_is_answered_once() {
    let (node, redis) = both();
    for (name, addr) in targets(&node, &redis) {
        let value: &[u8] = b"va\r\nl\0\r";
        let commands: [(Vec<u8>, Vec<u8>); 3] = [
            (
                multibulk(&[&b"SET"[..], b"bbb-key", value]),
                b"+OK\r\n".to_vec(),
            ),
            (
                multibulk(&["GET", "bbb-key"]),
                [&b"$7\r\n"[..], value, b"\r\n"].concat(),
            ),
            (b"ECHO \"a b\"\r\n".to_vec(), b"$3\r\na b\r\n".to_vec()),
        ];
        let mut conn = RawConn::must_connect(addr);
        for (input, want) in &commands {
            for (i, byte) in input.iter().enumerate() {
                conn.send(std::slice::from_ref(byte));
                thread::sleep(Duration::from_millis(1));
                if i + 1 < input.len() {
                    assert!(
                        !conn.has_unread(),
                        "[{name}] a reply arrived after byte {i} of {} of \"{}\": \"{}\"",
                        input.len(),
                        escape(input),
                        escape(conn.pending())
                    );
                }
            }
            let got = conn.must_read_bytes(want.len(), REPLY_TIMEOUT);
            assert_eq!(
                escape(&got),
                escape(want),
                "[{name}] reply to \"{}\"",
                escape(input)
            );
            let (extra, closed) = conn.drain_for(Duration::from_millis(100));
            assert!(
                extra.is_empty() && !closed,
                "[{name}] after the reply to \"{}\": extra \"{}\", closed {closed}",
                escape(input),
                escape(&extra)
            );
        }
    }
}

/// A pipeline of three commands split in two at every byte boundary: the same replies, once,
/// whatever the split.
#[test]
fn a_pipeline_split_at_every_byte_boundary_is_answered_once() {
    let (node, redis) = both();
    let mut input = multibulk(&["SET", "split-key", "v\r\n1"]);
    input.extend(multibulk(&["GET", "split-key"]));
    input.extend_from_slice(b"ECHO 'x y'\r\n");
    let want = b"+OK\r\n$4\r\nv\r\n1\r\n$3\r\nx y\r\n";
    for (name, addr) in targets(&node, &redis) {
        let mut conn = RawConn::must_connect(addr);
        for cut in 1..input.len() {
            conn.send(&input[..cut]);
            thread::sleep(Duration::from_millis(2));
            conn.send(&input[cut..]);
            let got = conn.must_read_bytes(want.len(), REPLY_TIMEOUT);
            assert_eq!(
                escape(&got),
                escape(want),
                "[{name}] split after byte {cut}: \"{}\" | \"{}\"",
                escape(&input[..cut]),
                escape(&input[cut..])
            );
        }
        let (extra, closed) = conn.drain_for(Duration::from_millis(100));
        assert!(
            extra.is_empty() && !closed,
            "[{name}] extra \"{}\" closed {closed}",
            escape(&extra)
        );
    }
}

/// Every command of a pipeline is answered, in order, even when some fail; the replies come
/// back in one write (session.rs: one flush per batch), so the client reads them in one go.
#[test]
fn a_pipeline_of_valid_and_invalid_commands_is_answered_in_order_in_one_read() {
    let script: Vec<(Vec<u8>, &[u8])> = vec![
        (
            multibulk(&["nosuchcmd", "arg"]),
            b"-ERR unknown command 'nosuchcmd', with args beginning with: 'arg' \r\n",
        ),
        (
            multibulk(&["GET"]),
            b"-ERR wrong number of arguments for 'get' command\r\n",
        ),
        (multibulk(&["SET", "pl-k", "v1"]), b"+OK\r\n"),
        (multibulk(&["GET", "pl-k"]), b"$2\r\nv1\r\n"),
        (
            multibulk(&["SET", "pl-k", "v2", "BOGUS"]),
            b"-ERR syntax error\r\n",
        ),
        (multibulk(&["GET", "pl-k"]), b"$2\r\nv1\r\n"),
        (
            multibulk(&["ECHO"]),
            b"-ERR wrong number of arguments for 'echo' command\r\n",
        ),
        // (SELECT of a non-zero db differs on purpose: redraft answers like a Redis Cluster
        // node; tests/compat/connection.rs checks that.)
        (
            multibulk(&["SELECT"]),
            b"-ERR wrong number of arguments for 'select' command\r\n",
        ),
        (
            multibulk(&["SELECT", "x"]),
            b"-ERR value is not an integer or out of range\r\n",
        ),
        (multibulk(&["DEL", "pl-k", "pl-missing"]), b":1\r\n"),
        (multibulk(&["EXISTS", "pl-k"]), b":0\r\n"),
        (multibulk(&["PING", "hello"]), b"$5\r\nhello\r\n"),
        (
            b"PING a b\r\n".to_vec(),
            b"-ERR wrong number of arguments for 'ping' command\r\n",
        ),
        (b"GET pl-k\r\n".to_vec(), b"$-1\r\n"),
        (multibulk(&["SET", "pl-k", ""]), b"+OK\r\n"),
        (multibulk(&["GET", "pl-k"]), b"$0\r\n\r\n"),
    ];
    let input: Vec<u8> = script.iter().flat_map(|(i, _)| i.clone()).collect();
    let want: Vec<u8> = script.iter().flat_map(|(_, w)| w.to_vec()).collect();
    let (node, redis) = both();
    for (name, addr) in targets(&node, &redis) {
        let mut conn = RawConn::must_connect(addr);
        conn.send(&input);
        let first = conn.read_up_to(1, REPLY_TIMEOUT);
        // Whatever the first read returned, plus anything already buffered with it.
        let (rest_now, _) = conn.drain_for(Duration::ZERO);
        let first_read = [first, rest_now].concat();
        let rest = conn.read_up_to(want.len().saturating_sub(first_read.len()), REPLY_TIMEOUT);
        let got = [first_read.clone(), rest].concat();
        let got_replies = raw::parse_all(&got).unwrap_or_else(|e| panic!("[{name}] {e}"));
        let want_replies = raw::parse_all(&want).expect("want parses");
        for (i, ((input, _), (g, w))) in script
            .iter()
            .zip(got_replies.iter().zip(&want_replies))
            .enumerate()
        {
            assert_eq!(g, w, "[{name}] reply {i}, to \"{}\"", escape(input));
        }
        assert_eq!(
            escape(&got),
            escape(&want),
            "[{name}] {} replies for {} commands",
            got_replies.len(),
            script.len()
        );
        assert_eq!(
            first_read.len(),
            want.len(),
            "[{name}] the replies to one pipelined packet came in more than one write \
             (first read: {} of {} bytes)",
            first_read.len(),
            want.len()
        );
    }
}

/// A long pipeline (930 commands, some of them errors) is answered completely, in order.
#[test]
fn a_long_pipeline_is_answered_completely_and_in_order() {
    const N: usize = 300;
    let mut input = Vec::new();
    let mut want = Vec::new();
    for i in 0..N {
        let key = format!("lp:{i}");
        let value = format!("value-{i}");
        input.extend(multibulk(&["SET", key.as_str(), value.as_str()]));
        want.push(Reply::ok());
        input.extend(multibulk(&["GET", key.as_str()]));
        want.push(Reply::bulk(&value));
        input.extend(format!("EXISTS lp:{i} lp:none extra-{i}\r\n").into_bytes());
        want.push(Reply::Integer(1));
        if i % 10 == 0 {
            input.extend(multibulk(&["GET"]));
            want.push(Reply::error(
                "ERR wrong number of arguments for 'get' command",
            ));
        }
    }
    let (node, redis) = both();
    for (name, addr) in targets(&node, &redis) {
        let mut conn = RawConn::must_connect(addr);
        conn.send(&input);
        let got = conn.must_read_replies(want.len(), Duration::from_secs(30));
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g, w, "[{name}] reply {i} of {}", want.len());
        }
        let (extra, _) = conn.drain_for(Duration::from_millis(50));
        assert!(extra.is_empty(), "[{name}] extra \"{}\"", escape(&extra));
    }
}

/// An inline request over 64 KB with no newline is refused; one just under it is served.
#[test]
fn an_inline_request_over_64k_is_refused_and_one_under_it_is_served() {
    let (node, redis) = both();
    for (name, addr) in targets(&node, &redis) {
        let mut conn = RawConn::must_connect(addr);
        conn.send(&vec![b'x'; 64 * 1024 + 1]);
        let (got, _) = conn.must_closed(REPLY_TIMEOUT);
        assert_eq!(
            escape(&got),
            escape(b"-ERR Protocol error: too big inline request\r\n"),
            "[{name}]"
        );

        let arg = "y".repeat(60_000);
        let mut conn = RawConn::must_connect(addr);
        conn.send(format!("ECHO {arg}\r\n").as_bytes());
        let reply = conn.must_read_reply(REPLY_TIMEOUT);
        assert_eq!(
            reply,
            Reply::bulk(&arg),
            "[{name}] a 60,000-byte inline ECHO"
        );
    }
}

/// LimitsBeforeAlloc: eight clients each announce a 512 MB argument (the largest allowed) and
/// send 256 KB of it; the server must buffer what arrived, not what was announced. VmData
/// counts address space even when untouched, so an allocation sized from the header (4 GB
/// here) shows there even if RSS would not; RSS is checked too.
#[test]
fn declared_lengths_do_not_drive_allocation() {
    let mut node = Single::start();
    let pid = node.pid();
    // Warm up: a few ordinary commands so lazily allocated state is already there.
    let mut warm = RawConn::must_connect(&node.addr);
    for _ in 0..20 {
        assert_eq!(warm.must_call(&["SET", "warm", "x"]), Reply::ok());
    }
    let rss0 = proc_status_kb(pid, "VmRSS");
    let data0 = proc_status_kb(pid, "VmData");

    let header = b"*2\r\n$3\r\nSET\r\n$536870912\r\n";
    let chunk = vec![b'z'; 256 * 1024];
    let mut conns: Vec<RawConn> = (0..8)
        .map(|_| {
            let mut c = RawConn::must_connect(&node.addr);
            c.send(header);
            c.send(&chunk);
            c
        })
        .collect();
    // The server has read everything once a PING sent after it on another connection is
    // answered and a short settle time has passed (reads are per connection, not ordered).
    assert_eq!(warm.must_call(&["PING"]), Reply::Simple(b"PONG".to_vec()));
    thread::sleep(Duration::from_millis(300));

    let mut bad = RawConn::must_connect(&node.addr);
    bad.send(b"*1\r\n$99999999999\r\n");
    let (got, _) = bad.must_closed(REPLY_TIMEOUT);
    assert_eq!(
        escape(&got),
        escape(b"-ERR Protocol error: invalid bulk length\r\n")
    );

    let rss1 = proc_status_kb(pid, "VmRSS");
    let data1 = proc_status_kb(pid, "VmData");
    let (rss_mb, data_mb) = (
        rss1.saturating_sub(rss0) / 1024,
        data1.saturating_sub(data0) / 1024,
    );
    eprintln!(
        "VmRSS {rss0} -> {rss1} kB (+{rss_mb} MB), VmData {data0} -> {data1} kB (+{data_mb} MB)"
    );
    assert!(
        rss_mb < 64,
        "VmRSS grew by {rss_mb} MB for 8 x 256 KB received (8 x 512 MB declared)"
    );
    assert!(
        data_mb < 1024,
        "VmData grew by {data_mb} MB: buffers sized from the declared 8 x 512 MB?"
    );

    for (i, c) in conns.iter_mut().enumerate() {
        let (extra, closed) = c.drain_for(Duration::from_millis(20));
        assert!(
            extra.is_empty() && !closed,
            "connection {i} with an unfinished 512 MB argument: got \"{}\", closed {closed}",
            escape(&extra)
        );
    }
    drop(conns);
    assert_eq!(warm.must_call(&["GET", "warm"]), Reply::bulk("x"));
    assert!(node.is_running(), "redraft exited");
}

/// Keys and values are binary-safe: NUL bytes, CRLF, bytes that look like RESP headers, every
/// byte value, an empty value and a 1 MB value round-trip exactly.
#[test]
fn binary_keys_and_values_round_trip_exactly() {
    let all_bytes: Vec<u8> = (0..=255u8).cycle().take(1024).collect();
    let mut big = Vec::with_capacity(1 << 20);
    let mut x: u32 = 0x9e37_79b9;
    while big.len() < 1 << 20 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        big.extend_from_slice(&x.to_le_bytes());
    }
    let cases: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (b"bin\0key".to_vec(), b"v\0a\0l".to_vec()),
        (b"bin\r\nkey".to_vec(), b"\r\n".to_vec()),
        (
            b"*1\r\n$4\r\nPING\r\n".to_vec(),
            b"$3\r\nfoo\r\n:1\r\n".to_vec(),
        ),
        (vec![0xff, 0xfe, 0x00, 0x80], all_bytes),
        (b"bin-empty".to_vec(), Vec::new()),
        (b"bin-1mb".to_vec(), big),
    ];
    let (node, redis) = both();
    for (name, addr) in targets(&node, &redis) {
        let mut conn = RawConn::must_connect(addr);
        for (key, value) in &cases {
            let set = conn.must_call(&[&b"SET"[..], key, value]);
            assert_eq!(set, Reply::ok(), "[{name}] SET \"{}\"", escape(key));
        }
        for (key, value) in &cases {
            let got = conn.must_call(&[&b"GET"[..], key]);
            assert!(
                got == Reply::bulk(value),
                "[{name}] GET \"{}\": {} bytes back, want {} bytes \"{}\"",
                escape(key),
                match &got {
                    Reply::Bulk(Some(v)) => v.len(),
                    _ => 0,
                },
                value.len(),
                escape(value)
            );
            assert_eq!(
                conn.must_call(&[&b"EXISTS"[..], key]),
                Reply::Integer(1),
                "[{name}] EXISTS \"{}\"",
                escape(key)
            );
        }
        // A key differing only after a NUL byte is a different key.
        assert_eq!(
            conn.must_call(&[&b"GET"[..], b"bin\0kez"]),
            Reply::Bulk(None),
            "[{name}]"
        );
        let keys: Vec<&[u8]> = cases.iter().map(|(k, _)| k.as_slice()).collect();
        let del = conn.must_call(&[&[&b"DEL"[..]][..], &keys].concat());
        assert_eq!(del, Reply::Integer(cases.len() as i64), "[{name}] DEL");
    }
}

/// Byte strings made of RESP-ish tokens and random bytes.
fn resp_noise() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        3 => prop::collection::vec(any::<u8>(), 0..24),
        4 => prop::sample::select(vec![
            &b"*"[..], b"$", b"\r\n", b"\r", b"\n", b"-1", b"0", b"1", b"2", b"3", b"-5",
            b"99999999999", b"536870912", b"1048577", b"\"", b"'", b"\\x4", b"\\", b" ", b"\t",
            b"\0", b"PING", b"SET", b"GET", b"ECHO", b"DEL", b"EXISTS", b"*1\r\n$4\r\nPING\r\n",
            b"*2\r\n", b"$3\r\nfoo\r\n", b"+OK\r\n", b":1\r\n", b"%1\r\n", b"~", b"#t",
            b"prop-key",
        ])
        .prop_map(<[u8]>::to_vec),
    ];
    prop::collection::vec(token, 0..24).prop_map(|parts| parts.concat())
}

/// NoPanicOnInput, end to end: whatever bytes a client sends, the server answers only
/// well-formed RESP, and afterwards a fresh connection still gets `+PONG`.
#[test]
fn arbitrary_bytes_never_crash_the_server() {
    let mut node = Single::start();
    let mut runner = TestRunner::new(Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    });
    let addr = node.addr.clone();
    let result = runner.run(&resp_noise(), |input| {
        let mut conn = RawConn::must_connect(&addr);
        let _ = conn.try_send(&input);
        let (out, _closed) = conn.drain_for(Duration::from_millis(60));
        drop(conn);
        // Everything sent back is whole replies, except possibly a tail still in flight.
        let mut at = 0;
        while at < out.len() {
            match parse_reply(&out[at..]) {
                Ok(Some((_, used))) => at += used,
                Ok(None) => break,
                Err(e) => {
                    return Err(TestCaseError::fail(format!(
                        "malformed reply ({e}) to \"{}\": \"{}\"",
                        escape(&input),
                        escape(&out)
                    )))
                }
            }
        }
        let mut fresh = RawConn::must_connect(&addr);
        fresh.send(b"PING\r\n");
        let pong = fresh.read_up_to(7, REPLY_TIMEOUT);
        prop_assert_eq!(
            escape(&pong),
            escape(b"+PONG\r\n"),
            "after \"{}\"",
            escape(&input)
        );
        Ok(())
    });
    assert!(node.is_running(), "redraft exited:\n{}", node.log_tail());
    if let Err(e) = result {
        panic!("{e}\nredraft log:\n{}", node.log_tail());
    }
}

/// The framer's invariants (tests/common/framer_check.rs: RoundTrip, ConsumedWithinInput,
/// ChunkingIndependence) in process, on the same kind of noise; the fuzz target checks the
/// same rules without bounds.
#[test]
fn framer_invariants_hold_for_arbitrary_input_in_arbitrary_pieces() {
    let started = Instant::now();
    let mut runner = TestRunner::new(Config {
        cases: 2000,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (prop::collection::vec(any::<u8>(), 8), resp_noise());
    runner
        .run(&strategy, |(sizes, input)| {
            framer_check::check(&[sizes, input].concat());
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("2000 framer cases in {:?}", started.elapsed());
}
