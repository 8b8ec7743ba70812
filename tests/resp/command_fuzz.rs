//! Every command the server lists, with random arguments: the server answers or closes the
//! connection, and never panics or dies (DESIGN §8: never panic on bytes from a client).
//!
//! For each name in `COMMAND LIST` (minus the few that stop the server or wait minutes by
//! design), every invocation with no argument or one, then 150 with 2-6 arguments, drawn from a
//! pool of edge-case tokens (numbers at and past the i64/u64 limits, stream IDs and ranges,
//! option keywords, empty and binary strings), each on a connection of its own command, one reply read within 1 s (a blocking
//! command that times out just gets a new connection). Afterwards the node must still be
//! running, answer PING, and its log must hold no panic. The seed is printed; set
//! `FUZZ_SEED` to replay one. Checked to fail when a command handler panics on one argument
//! (an `assert!` planted in ECHO).

use crate::common;
use crate::common::raw;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use common::single::Single;
use raw::{multibulk, parse_reply};

const POOL: &[&[u8]] = &[
    b"",
    b"0",
    b"1",
    b"-1",
    b"2",
    b"100",
    b"9223372036854775807",
    b"-9223372036854775808",
    b"9223372036854775808",
    b"18446744073709551616",
    b"1.5",
    b"inf",
    b"-inf",
    b"nan",
    b"1e400",
    b"k",
    b"k2",
    b"__watch__:",
    b"__watch__:k",
    b"$",
    b"+",
    b"-",
    b"(",
    b"(1",
    b"1-0",
    b"0-0",
    b"1-",
    b"-1-1",
    b"18446744073709551615-18446744073709551615",
    b"STREAMS",
    b"COUNT",
    b"BLOCK",
    b"EX",
    b"PX",
    b"EXAT",
    b"PXAT",
    b"KEEPTTL",
    b"PERSIST",
    b"NX",
    b"XX",
    b"GT",
    b"LT",
    b"GET",
    b"SET",
    b"FROM",
    b"TO",
    b"MATCH",
    b"TYPE",
    b"ID",
    b"LIST",
    b"INFO",
    b"HELP",
    b"KILL",
    b"NUMSUB",
    b"CHANNELS",
    b"*",
    b"[",
    b"\\",
    b"\x00\xff\r\n",
];

/// Commands not fuzzed: they stop the server or the connection by design, or wait for a
/// cluster change that a one-node cluster never completes (minutes).
const SKIP: &[&str] = &[
    "shutdown",
    "quit",
    "raft.addnode",
    "raft.removenode",
    "raft.transfer",
];

/// Reads one reply within `timeout`; `None` on timeout, close or an unparsable reply.
fn one_reply(s: &mut TcpStream, timeout: Duration) -> Option<raw::Reply> {
    let deadline = Instant::now() + timeout;
    let mut buf = Vec::new();
    loop {
        if let Ok(Some((reply, _))) = parse_reply(&buf) {
            return Some(reply);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        s.set_read_timeout(Some(left)).ok()?;
        let mut chunk = [0u8; 16 * 1024];
        match s.read(&mut chunk) {
            Ok(0) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return None
            }
            Err(_) => return None,
        }
    }
}

#[test]
fn random_arguments_to_every_command_never_crash_the_server() {
    let mut node = Single::start();
    let seed: u64 = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("command_fuzz seed {seed} (FUZZ_SEED={seed} replays it)");
    let mut rng = StdRng::seed_from_u64(seed);

    let names: Vec<String> = {
        let mut c = node.must_connect();
        let mut v: Vec<String> = redis::cmd("COMMAND")
            .arg("LIST")
            .query(&mut c)
            .expect("COMMAND LIST");
        v.sort();
        v
    };
    assert!(names.len() > 50, "COMMAND LIST: {names:?}");
    let (mut sent, mut answered, mut timeouts) = (0u64, 0u64, 0u64);
    for name in names.iter().filter(|n| !SKIP.contains(&n.as_str())) {
        let mut conn: Option<TcpStream> = None;
        let mut slow = 0;
        // Every invocation with no or one argument, then random ones with two to six.
        let exhaustive = (0..=POOL.len()).map(|i| match i {
            0 => Vec::new(),
            i => vec![POOL[i - 1].to_vec()],
        });
        let random: Vec<Vec<Vec<u8>>> = (0..150)
            .map(|_| {
                (0..rng.gen_range(2..=6))
                    .map(|_| POOL[rng.gen_range(0..POOL.len())].to_vec())
                    .collect()
            })
            .collect();
        for args in exhaustive.chain(random) {
            if slow >= 3 {
                break; // a blocking command: three timeouts are enough
            }
            let mut argv: Vec<Vec<u8>> = vec![name.as_bytes().to_vec()];
            argv.extend(args);
            let s = match conn.as_mut() {
                Some(s) => s,
                None => {
                    let s = TcpStream::connect(&node.addr).expect("connect");
                    s.set_nodelay(true).ok();
                    conn.insert(s)
                }
            };
            sent += 1;
            if s.write_all(&multibulk(&argv)).is_err() {
                conn = None;
                continue;
            }
            match one_reply(s, Duration::from_secs(1)) {
                Some(_) => answered += 1,
                None => {
                    timeouts += 1;
                    slow += 1;
                    conn = None;
                }
            }
            assert!(
                node.is_running(),
                "redraft died after {name} {:?} (seed {seed}):\n{}",
                argv.iter().map(|a| raw::escape(a)).collect::<Vec<_>>(),
                node.log_tail()
            );
        }
    }
    eprintln!("{sent} commands sent, {answered} answered, {timeouts} timed out or closed");
    let mut c = node.must_connect();
    let pong: String = redis::cmd("PING")
        .query(&mut c)
        .expect("PING after the fuzz");
    assert_eq!(pong, "PONG");
    let log = std::fs::read_to_string(node.dir().join("node1.log")).unwrap_or_default();
    assert!(
        !log.contains("panicked"),
        "a task panicked (seed {seed}):\n{}",
        panic_report(&log)
    );
    assert!(answered > sent / 2, "{answered} of {sent} answered");
}

/// The first panic in a node log: its message and the frames (with the
/// frame above each) that are redraft's own code, so a CI failure names
/// the line that panicked without the whole log.
fn panic_report(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    let Some(start) = lines.iter().position(|l| l.contains("panicked")) else {
        return String::new();
    };
    let mut out = vec![lines[start].to_string()];
    if let Some(message) = lines.get(start + 1) {
        out.push(message.to_string());
    }
    for (i, line) in lines.iter().enumerate().skip(start + 1).take(400) {
        if line.contains("./src/") {
            out.push(format!("{} {}", lines[i - 1].trim(), line.trim()));
        }
    }
    out.join("\n")
}
