//! Regression: a stale linearizable read right after kill -9 of every node (found by the jepsen
//! harness, `jepsen/README.md` "Bugs found").
//!
//! The bug: openraft's `enable_leader_restore` (on by default) let the node that led before the
//! crash resume leadership in the same term without an election. redraft's state machine is in
//! memory and the committed index is saved but not flushed, so that leader came back with a
//! commit index behind its log: the last acknowledged entry was durable in the log but not
//! known as committed, and a ReadIndex on it answered from before that entry (nil for the
//! last key). The fix: `enable_leader_restore = false` (standard Raft). A restarted node must
//! win an election in a new term and commit that term's blank entry before it serves reads,
//! which commits everything before it.
//!
//! Checks: several rounds of (write keys, kill -9 every node, restart all, first successful
//! linearizable GET of the last acknowledged key) always read the acknowledged value.

use crate::common;

use std::thread;
use std::time::{Duration, Instant};

use common::{connect, phase, Cluster};

#[test]
fn first_read_after_killing_every_node_sees_the_last_acknowledged_write() {
    let mut c = Cluster::start();
    c.must_leader(Duration::from_secs(20));
    for round in 0..6 {
        let last = {
            phase(&format!(
                "round {round}: 20 acknowledged writes through every node"
            ));
            let mut last = None;
            for k in 0..20 {
                let id = c.ids()[k % 3];
                let (key, value) = (format!("r{round}-k{k}"), format!("v{k}"));
                c.must_set(id, &key, &value);
                last = Some((id, key, value));
            }
            last.unwrap()
        };
        {
            phase("kill -9 every node, restart all");
            c.kill9_all();
            for id in c.ids() {
                c.restart(id);
            }
        }
        {
            phase("the first successful GET of the last key must see its value");
            let (id, key, want) = &last;
            let deadline = Instant::now() + Duration::from_secs(30);
            let got = loop {
                let r = connect(&c.redis_addr(*id), Duration::from_secs(1)).and_then(|mut con| {
                    redis::cmd("GET")
                        .arg(key)
                        .query::<Option<String>>(&mut con)
                        .map_err(|e| e.to_string())
                });
                match r {
                    Ok(v) => break v,
                    Err(e) if Instant::now() > deadline => {
                        c.fail(&format!("no successful GET {key} within 30 s: {e}"))
                    }
                    Err(_) => thread::sleep(Duration::from_millis(20)),
                }
            };
            if got.as_deref() != Some(want.as_str()) {
                c.fail(&format!(
                    "round {round}: first GET {key} after the restart returned {got:?}, want \
                     {want:?} (acknowledged before the crash)"
                ));
            }
        }
    }
}
