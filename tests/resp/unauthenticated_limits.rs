//! Unauthenticated input cannot make the server allocate (Redis's fix for CVE-2021-32675): with
//! `requirepass` set, a connection that has not authenticated may declare at most 10 arguments
//! per multibulk and 16 KB per argument. Beyond that Redis replies
//! `-ERR Protocol error: unauthenticated multibulk length` / `... bulk length` and closes, before
//! it reads (or buffers) the arguments.
//!
//! Differential where Redis defines the bytes: every exchange runs against a redraft node and a
//! real `redis-server`, both with `requirepass`, and must get the same bytes. The memory check
//! reads the node's `VmRSS` from `/proc/<pid>/status` around many such attempts.

use crate::common;
use crate::common::raw;

use std::thread;
use std::time::Duration;

use common::single::{RealRedis, Single};
use raw::{escape, multibulk, proc_status_kb, RawConn, Reply, REPLY_TIMEOUT};

const PASSWORD: &str = "s3cret";

const MULTIBULK_ERROR: &[u8] = b"-ERR Protocol error: unauthenticated multibulk length\r\n";
const BULK_ERROR: &[u8] = b"-ERR Protocol error: unauthenticated bulk length\r\n";

/// Sends `bytes` on a fresh unauthenticated connection and returns everything the server sent
/// before it closed (panics if it stays open).
fn must_be_refused(addr: &str, bytes: &[u8]) -> Vec<u8> {
    let mut c = RawConn::must_connect(addr);
    c.send(bytes);
    c.must_closed(REPLY_TIMEOUT).0
}

/// `*N` over 10 and `$len` over 16384 are refused with Redis's text and the connection closes;
/// exactly 10 arguments and exactly 16384 bytes are still read and answered (here with the
/// command's own error, as the client is not authenticated).
#[test]
fn oversize_unauthenticated_frames_are_refused_as_redis_refuses_them() {
    let node = Single::start_with_password(PASSWORD, "");
    let redis = RealRedis::start_with_password(PASSWORD);
    for (name, addr) in [("redraft", &node.addr), ("redis", &redis.addr)] {
        let got = must_be_refused(addr, b"*2000\r\n");
        assert_eq!(escape(&got), escape(MULTIBULK_ERROR), "{name}: *2000");
        let got = must_be_refused(addr, b"*11\r\n");
        assert_eq!(escape(&got), escape(MULTIBULK_ERROR), "{name}: *11");
        let got = must_be_refused(addr, b"*1\r\n$100000\r\n");
        assert_eq!(escape(&got), escape(BULK_ERROR), "{name}: $100000");
        let got = must_be_refused(addr, b"*2\r\n$4\r\nAUTH\r\n$16385\r\n");
        assert_eq!(escape(&got), escape(BULK_ERROR), "{name}: $16385");
        // A command already read is answered before the refusal of the next one.
        let mut pipeline = multibulk(&["PING"]);
        pipeline.extend_from_slice(b"*1\r\n$100000\r\n");
        let got = must_be_refused(addr, &pipeline);
        let mut want = b"-NOAUTH Authentication required.\r\n".to_vec();
        want.extend_from_slice(BULK_ERROR);
        assert_eq!(escape(&got), escape(&want), "{name}: PING then $100000");
    }

    // At the limits the frame is read; the reply (arity, WRONGPASS) is the command's own.
    let ten: Vec<String> = std::iter::once("ECHO".to_string())
        .chain((1..10).map(|i| i.to_string()))
        .collect();
    let big_password = "p".repeat(16384);
    let mut replies = Vec::new();
    for addr in [&node.addr, &redis.addr] {
        let mut c = RawConn::must_connect(addr);
        let a = c.must_call(&ten);
        let b = c.must_call(&["AUTH", &big_password]);
        let (extra, closed) = c.drain_for(Duration::from_millis(50));
        assert!(extra.is_empty() && !closed, "{addr}: closed {closed}");
        replies.push((a, b));
    }
    assert_eq!(replies[0], replies[1], "redraft vs redis at the limits");
    assert!(
        matches!(&replies[0].1, Reply::Error(e) if e.starts_with(b"WRONGPASS")),
        "{:?}",
        replies[0]
    );
}

/// Authentication lifts the caps from the next command on, also when AUTH and a large command
/// arrive in one packet (Redis executes AUTH before it parses what follows); `RESET` brings
/// them back; a node without `requirepass` has none.
#[test]
fn authentication_lifts_the_caps_from_the_next_command() {
    let node = Single::start_with_password(PASSWORD, "");
    let redis = RealRedis::start_with_password(PASSWORD);
    let big = "v".repeat(100_000);
    let eleven: Vec<String> = std::iter::once("ECHO".to_string())
        .chain((1..11).map(|i| i.to_string()))
        .collect();
    for (name, addr) in [("redraft", &node.addr), ("redis", &redis.addr)] {
        let mut c = RawConn::must_connect(addr);
        let mut pipeline = multibulk(&["AUTH", PASSWORD]);
        pipeline.extend_from_slice(&multibulk(&["ECHO", &big]));
        pipeline.extend_from_slice(&multibulk(&eleven));
        c.send(&pipeline);
        let got = c.must_read_replies(3, REPLY_TIMEOUT);
        assert_eq!(got[0], Reply::ok(), "{name}: AUTH");
        assert_eq!(got[1], Reply::bulk(&big), "{name}: ECHO 100000 bytes");
        assert_eq!(
            got[2],
            Reply::error("ERR wrong number of arguments for 'echo' command"),
            "{name}: 11 arguments after AUTH"
        );
        assert_eq!(c.must_call(&["RESET"]), Reply::Simple(b"RESET".to_vec()));
        c.send(b"*1\r\n$100000\r\n");
        let (got, _) = c.must_closed(REPLY_TIMEOUT);
        assert_eq!(escape(&got), escape(BULK_ERROR), "{name}: after RESET");
    }
    let open = Single::start();
    let mut c = RawConn::must_connect(&open.addr);
    assert_eq!(c.must_call(&["ECHO", &big]), Reply::bulk(&big));
    assert_eq!(
        c.must_call(&eleven),
        Reply::error("ERR wrong number of arguments for 'echo' command")
    );
}

/// Many unauthenticated clients each announce a 1 MB argument and send all but its last byte,
/// and many more announce 2000 arguments: the node refuses every one at its header, so what
/// they send is never buffered and its RSS does not grow. (Without the caps, the 48 held
/// connections alone make it buffer 48 MB.)
#[test]
fn unauthenticated_clients_cannot_make_the_node_hold_memory() {
    let mut node = Single::start_with_password(PASSWORD, "");
    let pid = node.pid();
    // Warm up: connections and authenticated commands, so lazily built state exists already.
    for _ in 0..20 {
        let mut c = RawConn::must_connect(&node.addr);
        assert_eq!(c.must_call(&["AUTH", PASSWORD]), Reply::ok());
        assert_eq!(c.must_call(&["SET", "warm", "x"]), Reply::ok());
    }
    let rss0 = proc_status_kb(pid, "VmRSS");

    const MB: usize = 1024 * 1024;
    let header = format!("*2\r\n$4\r\nAUTH\r\n${MB}\r\n").into_bytes();
    let body = vec![b'p'; MB - 1];
    let mut held = Vec::new();
    for _ in 0..48 {
        let mut c = RawConn::must_connect(&node.addr);
        c.send(&header);
        // The server may already have closed the connection: the rest may not be taken.
        let _ = c.try_send(&body);
        held.push(c);
    }
    for _ in 0..200 {
        let mut c = RawConn::must_connect(&node.addr);
        let _ = c.try_send(b"*2000\r\n");
        let _ = c.try_send(&b"$1\r\nx\r\n".repeat(1000));
    }
    // Every connection above was read up to its header before this one's PING is answered
    // (connections are served concurrently, so allow a short settle time as well).
    let mut probe = RawConn::must_connect(&node.addr);
    assert_eq!(
        probe.must_call(&["PING"]),
        Reply::error("NOAUTH Authentication required.")
    );
    thread::sleep(Duration::from_millis(300));
    let rss1 = proc_status_kb(pid, "VmRSS");
    let grown_mb = rss1.saturating_sub(rss0) / 1024;
    eprintln!("VmRSS {rss0} -> {rss1} kB (+{grown_mb} MB)");

    for (i, c) in held.iter_mut().enumerate() {
        let (got, _) = c.must_closed(REPLY_TIMEOUT);
        assert_eq!(escape(&got), escape(BULK_ERROR), "held connection {i}");
    }
    assert!(
        grown_mb < 24,
        "VmRSS grew by {grown_mb} MB while unauthenticated clients sent 48 x 1 MB of arguments"
    );
    assert!(node.is_running(), "redraft exited");
}
