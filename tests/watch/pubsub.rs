//! Pub/sub and keyspace notifications, differential against a real `redis-server`:
//! the same raw RESP2 and RESP3 sessions against both must give the same bytes, parsed
//! (SUBSCRIBE confirmations, messages, the subscribed-context errors, PING's shape, PUBSUB),
//! and the same keyspace notifications, in the same order, for every string and key command.
//! Then redraft alone: notifications and PUBLISH reach subscribers on every node of a cluster.

use crate::common;
use crate::common::raw;

use std::time::Duration;

use common::single::{RealRedis, Single};
use common::{phase, Cluster};
use raw::{multibulk, RawConn, Reply, REPLY_TIMEOUT};

/// One step: which connection sends the command, and how many replies it then reads.
struct Step {
    conn: usize,
    args: &'static [&'static str],
    replies: usize,
}

const fn step(conn: usize, args: &'static [&'static str], replies: usize) -> Step {
    Step {
        conn,
        args,
        replies,
    }
}

/// Runs `steps` on fresh connections to `addr` (0 and 1: subscribers, 1 speaks RESP3; 2: a
/// plain client) and returns every reply in order, tagged with its step.
fn run_steps(addr: &str, steps: &[Step]) -> Vec<(usize, Reply)> {
    let mut conns: Vec<RawConn> = (0..3).map(|_| RawConn::must_connect(addr)).collect();
    conns[1].must_call(&["HELLO", "3"]);
    let mut out = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        conns[s.conn].send(&multibulk(s.args));
        for r in conns[s.conn].must_read_replies(s.replies, REPLY_TIMEOUT) {
            out.push((i, r));
        }
    }
    out
}

const SUBSCRIBE_SCRIPT: &[Step] = &[
    // Nothing subscribed yet: the "no channel" confirmations.
    step(0, &["UNSUBSCRIBE"], 1),
    step(0, &["PUNSUBSCRIBE"], 1),
    step(0, &["UNSUBSCRIBE", "x", "y"], 2),
    step(0, &["SUBSCRIBE", "news", "sport"], 2),
    step(0, &["SUBSCRIBE", "news"], 1),
    // RESP2 subscribed context: errors, PING's array.
    step(0, &["GET", "x"], 1),
    step(0, &["CLIENT", "ID"], 1),
    step(0, &["PING"], 1),
    step(0, &["PING", "hello"], 1),
    step(0, &["PING", "a", "b"], 1),
    step(0, &["PSUBSCRIBE", "n*", "s?ort"], 2),
    // RESP3: pushes, and any command still runs.
    step(1, &["SUBSCRIBE", "news"], 1),
    step(1, &["PING"], 1),
    step(1, &["GET", "nokey"], 1),
    // Publishing: counts, messages then pmessages, on both subscribers.
    step(2, &["PUBLISH", "news", "hello"], 1),
    step(0, &["PING"], 3),
    step(1, &["PING"], 2),
    step(2, &["PUBLISH", "sport", "goal"], 1),
    step(0, &["PING"], 3),
    step(2, &["PUBLISH", "nobody", "x"], 1),
    step(2, &["PUBSUB", "NUMSUB", "news", "sport", "none"], 1),
    step(2, &["PUBSUB", "NUMPAT"], 1),
    step(2, &["PUBSUB", "CHANNELS", "n*"], 1),
    step(2, &["PUBSUB", "CHANNELS", "zz*"], 1),
    step(2, &["PUBSUB", "FOO"], 1),
    step(2, &["PUBSUB"], 1),
    step(2, &["PUBLISH", "a"], 1),
    step(2, &["SUBSCRIBE"], 1),
    step(0, &["UNSUBSCRIBE", "sport"], 1),
    step(0, &["PUNSUBSCRIBE", "s?ort", "n*"], 2),
    step(0, &["UNSUBSCRIBE", "news"], 1),
    // Back to a normal connection.
    step(0, &["GET", "x"], 1),
    step(1, &["UNSUBSCRIBE", "news", "other"], 2),
    step(1, &["PSUBSCRIBE", "p*"], 1),
    step(1, &["RESET"], 1),
    step(2, &["PUBSUB", "NUMPAT"], 1),
];

#[test]
fn subscribe_replies_match_redis() {
    let redis = RealRedis::start();
    let redraft = Single::start();
    let want = run_steps(&redis.addr, SUBSCRIBE_SCRIPT);
    let got = run_steps(&redraft.addr, SUBSCRIBE_SCRIPT);
    for (w, g) in want.iter().zip(&got) {
        let args = SUBSCRIBE_SCRIPT[w.0].args;
        assert_eq!(g, w, "step {} {args:?}", w.0);
    }
    assert_eq!(got.len(), want.len());
}

/// PublishBeforeReply: a message PUBLISH delivered on this node is in every local subscriber's
/// output before PUBLISH replies, so a command a subscriber sends after seeing PUBLISH's reply
/// is answered after the message (Redis's order). Eight subscribers (RESP2 and RESP3) race
/// their PING against the delivery 150 times each; any pong first fails.
#[test]
fn a_published_message_comes_before_the_reply_to_a_later_command() {
    let redraft = Single::start();
    let mut subs: Vec<RawConn> = (0..8)
        .map(|_| RawConn::must_connect(&redraft.addr))
        .collect();
    for (i, s) in subs.iter_mut().enumerate() {
        if i % 2 == 1 {
            s.must_call(&["HELLO", "3"]);
        }
        let confirm = s.must_call(&["SUBSCRIBE", "race"]);
        assert!(format!("{confirm:?}").contains("subscribe"), "{confirm:?}");
    }
    let mut publisher = RawConn::must_connect(&redraft.addr);
    let ping = multibulk(&["PING"]);
    for round in 0..150 {
        let payload = format!("m{round}");
        assert_eq!(
            publisher.must_call(&["PUBLISH", "race", &payload]),
            Reply::Integer(8)
        );
        for s in subs.iter_mut() {
            s.send(&ping);
        }
        for (i, s) in subs.iter_mut().enumerate() {
            let got = s.must_read_replies(2, REPLY_TIMEOUT);
            let text = format!("{got:?}");
            let message_first = format!("{:?}", got[0]).contains(&payload);
            assert!(
                message_first,
                "round {round}, subscriber {i}: the reply to PING overtook the message \
                 published before it: {text}"
            );
        }
    }
}

/// Writes whose notifications are compared (EXEC included); the last one is a PUBLISH on the
/// marker channel.
const WRITES: &[&[&str]] = &[
    &["SET", "a", "1"],
    &["SET", "a", "2", "EX", "100"],
    &["INCR", "n"],
    &["INCRBY", "n", "5"],
    &["DECR", "n"],
    &["INCRBYFLOAT", "f", "1.5"],
    &["APPEND", "a", "x"],
    &["SETRANGE", "a", "1", "zz"],
    &["SETRANGE", "a", "1", ""],
    &["RENAME", "a", "b"],
    &["SET", "c", "1"],
    &["RENAME", "b", "c"],
    &["RENAMENX", "c", "n"],
    &["PERSIST", "c"],
    &["EXPIRE", "c", "100"],
    &["PEXPIRE", "c", "100000", "XX"],
    &["PERSIST", "c"],
    &["GETDEL", "c"],
    &["GETDEL", "c"],
    &["MSET", "x", "1", "y", "2"],
    &["MSETNX", "x", "1", "z", "2"],
    &["DEL", "x", "y", "nope"],
    &["SET", "q", "1"],
    &["EXPIRE", "q", "-1"],
    &["SET", "g", "1"],
    &["GETEX", "g", "EX", "100"],
    &["GETEX", "g", "PERSIST"],
    &["GETEX", "g"],
    &["GETSET", "g", "2"],
    &["SETNX", "s", "1"],
    &["SETNX", "s", "2"],
    &["SETEX", "s2", "10", "v"],
    &["PSETEX", "s3", "10000", "v"],
    &["SET", "s", "3", "NX"],
    &["SET", "s", "4", "XX", "GET"],
    &["SET", "k", "v", "KEEPTTL"],
    &["INCR", "k"],
    &["MULTI"],
    &["SET", "t1", "1"],
    &["INCR", "t2"],
    &["DEL", "t1"],
    &["EXEC"],
    &["UNLINK", "t2", "s2"],
    &["HSET", "h", "a", "1", "b", "2"],
    &["HSET", "h", "a", "1"],
    &["HSETNX", "h", "a", "9"],
    &["HSETNX", "h", "c", "3"],
    &["HMSET", "h", "d", "4"],
    &["HINCRBY", "h", "n", "2"],
    &["HINCRBYFLOAT", "h", "f", "1.5"],
    &["HDEL", "h", "a", "nope"],
    &["HDEL", "h", "nope"],
    &["EXPIRE", "h", "100"],
    &["HSET", "h2", "x", "1"],
    &["HDEL", "h2", "x"],
    &["HSET", "s", "f", "v"],
    &["RENAME", "h", "h3"],
    &["FLUSHALL"],
    &["PUBLISH", "marker", "done"],
];

/// Subscribes to every notification and the marker, runs [`WRITES`], and returns the
/// messages before the marker's; with `expect`, reads exactly that many (redraft delivers
/// notifications after apply, asynchronously, so the marker may overtake them there).
fn notifications(addr: &str, classes: &str, expect: Option<usize>) -> Vec<Reply> {
    let mut admin = RawConn::must_connect(addr);
    assert_eq!(
        admin.must_call(&["CONFIG", "SET", "notify-keyspace-events", classes]),
        Reply::ok()
    );
    let mut sub = RawConn::must_connect(addr);
    sub.send(&multibulk(&["PSUBSCRIBE", "__key*@0__:*"]));
    sub.send(&multibulk(&["SUBSCRIBE", "marker"]));
    sub.must_read_replies(2, REPLY_TIMEOUT);
    for w in WRITES {
        admin.must_call(w);
    }
    match expect {
        Some(n) => {
            let got = sub.must_read_replies(n, REPLY_TIMEOUT);
            // Then only the marker: no notification too many.
            let marker = sub.must_read_reply(REPLY_TIMEOUT);
            assert!(
                format!("{marker:?}").contains("marker"),
                "extra: {marker:?}"
            );
            got
        }
        None => {
            let mut out = Vec::new();
            loop {
                let r = sub.must_read_reply(REPLY_TIMEOUT);
                if format!("{r:?}").contains("marker") {
                    return out;
                }
                out.push(r);
            }
        }
    }
}

#[test]
fn keyspace_notifications_match_redis() {
    let redis = RealRedis::start();
    let redraft = Single::start();
    for classes in ["KEA", "KEAn", "Kg", "E$x", "Kh", "Eghn"] {
        phase(&format!("notify-keyspace-events {classes}"));
        let want = notifications(&redis.addr, classes, None);
        assert!(!want.is_empty(), "{classes}: redis sent notifications");
        let got = notifications(&redraft.addr, classes, Some(want.len()));
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g, w, "{classes}: message {i}");
        }
        let mut admin = RawConn::must_connect(&redraft.addr);
        admin.must_call(&["FLUSHALL"]);
    }
}

#[test]
fn notifications_and_publish_reach_every_node() {
    let mut cluster = Cluster::start();
    let leader = cluster.must_leader(Duration::from_secs(20));
    let ids = cluster.ids();
    let mut subs = Vec::new();
    for &id in &ids {
        let addr = cluster.redis_addr(id);
        let mut admin = RawConn::must_connect(&addr);
        assert_eq!(
            admin.must_call(&["CONFIG", "SET", "notify-keyspace-events", "K$"]),
            Reply::ok()
        );
        let mut sub = RawConn::must_connect(&addr);
        sub.send(&multibulk(&["SUBSCRIBE", "__keyspace@0__:cfg", "chat"]));
        sub.must_read_replies(2, REPLY_TIMEOUT);
        subs.push(sub);
    }
    {
        phase("a write on a follower notifies the subscribers of all three nodes");
        let follower = *ids.iter().find(|&&id| id != leader).unwrap();
        let mut c = RawConn::must_connect(&cluster.redis_addr(follower));
        assert_eq!(c.must_call(&["SET", "cfg", "v1"]), Reply::ok());
        let want = Reply::Array(Some(vec![
            Reply::bulk("message"),
            Reply::bulk("__keyspace@0__:cfg"),
            Reply::bulk("set"),
        ]));
        for sub in &mut subs {
            assert_eq!(sub.must_read_reply(REPLY_TIMEOUT), want);
        }
    }
    {
        phase("PUBLISH on one node reaches the subscribers of every node, in order");
        let mut c = RawConn::must_connect(&cluster.redis_addr(leader));
        for i in 0..20 {
            let n = c.must_call(&["PUBLISH", "chat", &format!("m{i}")]);
            assert_eq!(n, Reply::Integer(1), "one local subscriber");
        }
        for sub in &mut subs {
            for i in 0..20 {
                let want = Reply::Array(Some(vec![
                    Reply::bulk("message"),
                    Reply::bulk("chat"),
                    Reply::bulk(format!("m{i}")),
                ]));
                assert_eq!(sub.must_read_reply(REPLY_TIMEOUT), want);
            }
        }
    }
}
