//! Keyspace notifications survive a burst of applies (NotifyInApplyOrder,
//! `src/raft/state_machine/mod.rs`): a follower that was stopped applies thousands of writes at
//! once when it resumes, and its subscriber gets a notification for every one, in order.
//!
//! The notifier used to be a task fed by a 1,024-slot broadcast of applied changes; a burst
//! larger than it could drain made it lag, and it dropped the notifications it missed (a
//! catching-up node logged "keyspace notifier lagged: notifications of 1520 entries dropped").
//! This test failed against that design: 12,462 of the 15,000 notifications arrived, then none.
//! Now apply itself queues them, and only a subscriber's own full queue (16,384 messages, more
//! than this burst) loses any.

use crate::common;

use std::time::{Duration, Instant};

use common::{phase, Cluster};

const WRITES: usize = 15_000;

#[test]
fn a_follower_catching_up_notifies_every_write() {
    let mut c = Cluster::start();
    let leader = c.must_leader(Duration::from_secs(20));
    let follower = c.ids().into_iter().find(|&id| id != leader).unwrap();

    phase("a subscriber on a follower with keyspace notifications on");
    let mut admin = c.must_connect(follower);
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("notify-keyspace-events")
        .arg("K$")
        .query(&mut admin)
        .unwrap();
    let mut sub_con = c.must_connect(follower);
    let mut sub = sub_con.as_pubsub();
    sub.psubscribe("__keyspace@0__:burst:*").unwrap();
    sub.set_read_timeout(Some(Duration::from_secs(20))).unwrap();

    phase(&format!(
        "SIGSTOP the follower; {WRITES} pipelined SETs through the leader; SIGCONT"
    ));
    c.pause(follower);
    let mut con = c.must_connect(leader);
    for chunk in 0..WRITES / 500 {
        let mut pipe = redis::pipe();
        for i in chunk * 500..(chunk + 1) * 500 {
            pipe.cmd("SET")
                .arg(format!("burst:{i:05}"))
                .arg("v")
                .ignore();
        }
        let () = pipe.query(&mut con).unwrap();
    }
    c.resume(follower);

    phase("every write's notification arrives, in write order");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut got = Vec::with_capacity(WRITES);
    while got.len() < WRITES && Instant::now() < deadline {
        let msg = match sub.get_message() {
            Ok(m) => m,
            Err(e) => panic!("after {} notifications: {e}", got.len()),
        };
        let event: String = msg.get_payload().unwrap();
        assert_eq!(event, "set");
        got.push(msg.get_channel_name().to_string());
    }
    let want: Vec<String> = (0..WRITES)
        .map(|i| format!("__keyspace@0__:burst:{i:05}"))
        .collect();
    assert_eq!(got.len(), WRITES, "notifications received");
    assert!(got == want, "notifications out of write order");
}
