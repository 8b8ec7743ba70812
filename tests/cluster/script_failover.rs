//! Scripts across a leader kill: `EVAL "return redis.call('incr', KEYS[1])"` sent in a loop
//! through the two nodes that survive while the leader is killed with SIGKILL.
//!
//! Every acknowledged script ran exactly once (its reply is a counter value no other reply
//! had, and the counter ends between the number acknowledged and that plus the number whose
//! outcome was unknown: a failed or uncertain script may or may not have run, but never twice,
//! the dedup table sees to that as for any write); the restarted node ends with the same
//! counter and the same history of it as the others (the script ran at apply on every node).

use crate::common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::{connect, phase, Cluster};

const SCRIPT: &str = "return redis.call('incr', KEYS[1])";

#[derive(Default)]
struct Outcomes {
    acked: Vec<i64>,
    unknown: u64,
}

#[test]
fn scripts_survive_a_leader_kill_exactly_once() {
    let mut c = Cluster::start();
    let old_leader = c.must_leader(Duration::from_secs(20));
    let survivors: Vec<u64> = c.ids().into_iter().filter(|&id| id != old_leader).collect();
    let addrs: Vec<String> = survivors.iter().map(|&id| c.redis_addr(id)).collect();

    phase("EVAL INCR in a loop through the survivors");
    let stop = Arc::new(AtomicBool::new(false));
    let out = Arc::new(Mutex::new(Outcomes::default()));
    let writer = {
        let (stop, out) = (stop.clone(), out.clone());
        thread::spawn(move || {
            let mut n = 0usize;
            let mut con: Option<redis::Connection> = None;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let addr = &addrs[n % addrs.len()];
                if con.is_none() {
                    con = connect(addr, Duration::from_secs(2)).ok();
                }
                let Some(cn) = con.as_mut() else {
                    thread::sleep(Duration::from_millis(50));
                    continue;
                };
                let r: redis::RedisResult<i64> = redis::cmd("EVAL")
                    .arg(SCRIPT)
                    .arg(1)
                    .arg("counter")
                    .query(cn);
                let mut o = out.lock().unwrap();
                match r {
                    Ok(v) => o.acked.push(v),
                    Err(_) => {
                        o.unknown += 1;
                        con = None;
                    }
                }
            }
        })
    };
    let acked = |out: &Arc<Mutex<Outcomes>>| out.lock().unwrap().acked.len();
    c.must_wait(
        Duration::from_secs(20),
        "30 scripts before the kill",
        |_| match acked(&out) {
            n if n >= 30 => Ok(()),
            n => Err(format!("{n} acknowledged")),
        },
    );

    phase("kill -9 the leader; scripts go on through the new one");
    c.kill9(old_leader);
    let at_kill = acked(&out);
    let new_leader = c.must_leader(Duration::from_secs(20));
    assert_ne!(new_leader, old_leader);
    c.must_wait(
        Duration::from_secs(30),
        "30 more scripts after the kill",
        |_| match acked(&out) - at_kill {
            n if n >= 30 => Ok(()),
            n => Err(format!("{n} acknowledged since the kill")),
        },
    );
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("script writer");
    let o = std::mem::take(&mut *out.lock().unwrap());
    eprintln!(
        "           {} scripts acknowledged, {} unknown",
        o.acked.len(),
        o.unknown
    );

    phase("every acknowledged script ran once: distinct replies, counter within bounds");
    let distinct: BTreeSet<i64> = o.acked.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        o.acked.len(),
        "two scripts answered the same count"
    );
    let mut con = c.must_connect(new_leader);
    let count: i64 = redis::cmd("GET").arg("counter").query(&mut con).unwrap();
    let acked_n = o.acked.len() as i64;
    assert!(
        count >= acked_n && count <= acked_n + o.unknown as i64,
        "counter {count}: {acked_n} acknowledged, {} unknown",
        o.unknown
    );
    assert!(
        distinct.last().is_some_and(|&max| max <= count),
        "a reply above the final count"
    );

    phase("the restarted node has the same counter and the same history of it");
    c.restart(old_leader);
    let history = |c: &mut Cluster, id: u64| -> Result<(String, redis::Value), String> {
        let mut con = c.try_connect(id)?;
        let v: String = redis::cmd("GET")
            .arg("counter")
            .query(&mut con)
            .map_err(|e| e.to_string())?;
        let h: redis::Value = redis::cmd("HISTORY")
            .arg("counter")
            .query(&mut con)
            .map_err(|e| e.to_string())?;
        Ok((v, h))
    };
    let want = history(&mut c, new_leader).expect("history on the leader");
    assert_eq!(want.0, count.to_string());
    c.must_wait(
        Duration::from_secs(30),
        "the restarted node's counter and history to match the leader's",
        |c| {
            let got = history(c, old_leader)?;
            if got == want {
                Ok(())
            } else {
                Err(format!("restarted node has {:?}", got.0))
            }
        },
    );
}
