//! Client-side caching (`CLIENT TRACKING`) against real Redis.
//!
//! A differential test: `testdata/tracking_differential.txt` drives six connections (RESP3 and
//! RESP2, a subscribed redirect target, a RESP3 one, one that goes away) against a single-node
//! redraft and a real `redis-server`; after every step, the bytes each connection received
//! (replies and invalidation pushes, in their order) must be identical. It covers the errors,
//! default mode, OPTIN/OPTOUT with CLIENT CACHING (inside MULTI too), NOLOOP, BCAST with
//! prefixes, the RESP2 `__redis__:invalidate` redirect, a RESP3 redirect, a broken redirect,
//! RESET, and invalidations caused by every kind of write, EXEC, scripts, expiry and FLUSHALL.

use std::collections::BTreeMap;
use std::thread::sleep;
use std::time::{Duration, Instant};

use resp_client::raw::{escape, parse_reply, RawConn};

use crate::common::single::{RealRedis, Single};
use crate::strings_differential::must_split;

/// How long a step waits for pushes on the other connections once its reply has come: a push
/// is queued before the writer's reply is sent (AppliedHookBeforeReaders), so this only covers
/// the other session's task getting scheduled.
const SETTLE: Duration = Duration::from_millis(40);
const CONNS: [char; 6] = ['A', 'B', 'C', 'D', 'E', 'F'];

/// One server's six connections and their ids.
struct Side {
    conns: BTreeMap<char, RawConn>,
    ids: BTreeMap<char, String>,
}

impl Side {
    fn connect(addr: &str) -> Side {
        let mut conns = BTreeMap::new();
        let mut ids = BTreeMap::new();
        for c in CONNS {
            let mut conn = RawConn::must_connect(addr);
            let id = conn.must_call(&["CLIENT", "ID"]);
            ids.insert(c, format!("{id:?}"));
            conns.insert(c, conn);
        }
        // `{:?}` of an integer reply; take its digits.
        for id in ids.values_mut() {
            *id = id.chars().filter(char::is_ascii_digit).collect();
        }
        Side { conns, ids }
    }

    /// Runs one step; returns what each connection received, ids replaced by `$X`.
    fn step(&mut self, conn: Option<char>, line: &str, sleep_ms: u64) -> BTreeMap<char, String> {
        let mut got: BTreeMap<char, Vec<u8>> = BTreeMap::new();
        if let Some(c) = conn {
            let mut command = line.to_string();
            for (x, id) in &self.ids {
                command = command.replace(&format!("${x}"), id);
            }
            let sender = self.conns.get_mut(&c).expect("connection");
            let mut out = Vec::new();
            for arg in must_split(&command) {
                out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
                out.extend_from_slice(&arg);
                out.extend_from_slice(b"\r\n");
            }
            let argc = must_split(&command).len();
            let mut frame = format!("*{argc}\r\n").into_bytes();
            frame.extend_from_slice(&out);
            let _ = sender.try_send(&frame);
            let bytes = read_until_reply(sender, line);
            got.insert(c, bytes);
        } else {
            sleep(Duration::from_millis(sleep_ms));
        }
        sleep(SETTLE);
        for (c, conn) in self.conns.iter_mut() {
            let (more, _) = conn.drain_for(Duration::from_millis(1));
            got.entry(*c).or_default().extend_from_slice(&more);
        }
        got.into_iter()
            .map(|(c, bytes)| {
                let mut text = escape(&bytes);
                // Ids differ between the servers: named where a reply carries one.
                for (x, id) in &self.ids {
                    for before in ["redirect\\r\\n", "tracking-redir-broken\\r\\n"] {
                        text = text.replace(
                            &format!("{before}:{id}\\r\\n"),
                            &format!("{before}:${x}\\r\\n"),
                        );
                    }
                    if line.contains("GETREDIR") && text == format!(":{id}\\r\\n") {
                        text = format!(":${x}\\r\\n");
                    }
                }
                (c, text)
            })
            .filter(|(_, t)| !t.is_empty())
            .collect()
    }
}

/// Reads until `conn` has received one reply that is not a push (pushes may come first), or
/// the connection closed (QUIT), within 10 s.
fn read_until_reply(conn: &mut RawConn, line: &str) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut acc = Vec::new();
    loop {
        let mut at = 0;
        while let Ok(Some((_, used))) = parse_reply(&acc[at..]) {
            if acc[at] != b'>' {
                return acc;
            }
            at += used;
        }
        assert!(
            Instant::now() < deadline,
            "no reply to {line:?}; have \"{}\"",
            escape(&acc)
        );
        let (more, closed) = conn.drain_for(Duration::from_millis(5));
        acc.extend_from_slice(&more);
        if closed {
            return acc;
        }
    }
}

/// A script step: the connection (`None` for `sleep`), whether its bytes are compared, the
/// command, and the sleep.
fn parse_step(line: &str) -> (Option<char>, bool, String, u64) {
    if let Some(ms) = line.strip_prefix("sleep ") {
        return (
            None,
            true,
            String::new(),
            ms.trim().parse().expect("sleep ms"),
        );
    }
    let c = line.chars().next().expect("connection letter");
    let compared = match line.chars().nth(1) {
        Some(':') => true,
        Some('~') => false,
        _ => panic!("bad script line {line:?}"),
    };
    (Some(c), compared, line[2..].trim().to_string(), 0)
}

#[test]
fn tracking_replies_and_pushes_match_real_redis() {
    let node = Single::start();
    let redis = RealRedis::start();
    let mut ours = Side::connect(&node.addr);
    let mut theirs = Side::connect(&redis.addr);
    let script = include_str!("../testdata/tracking_differential.txt");
    let mut compared = 0;
    let mut pushes = 0;
    let mut mismatches = Vec::new();
    for line in script.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (conn, compare_sender, command, ms) = parse_step(line);
        let mut a = ours.step(conn, &command, ms);
        let mut b = theirs.step(conn, &command, ms);
        if let (Some(c), false) = (conn, compare_sender) {
            a.remove(&c);
            b.remove(&c);
        }
        compared += 1;
        pushes += b.values().filter(|t| t.contains("invalidate")).count();
        if a != b {
            mismatches.push(format!("{line}\n  redraft: {a:?}\n  redis:   {b:?}"));
        }
    }
    assert!(compared > 150, "the script ran only {compared} steps");
    assert!(
        pushes > 30,
        "only {pushes} steps saw an invalidation: the script no longer exercises tracking"
    );
    assert!(
        mismatches.is_empty(),
        "{} of {compared} steps differ from redis-server:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}
