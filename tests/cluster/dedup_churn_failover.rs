//! Retry deduplication under connection churn while the leader is killed with SIGKILL.
//!
//! Followers forward every write to the leader and, when the leader dies with writes in flight,
//! retry them (marked as retries) with the same `(client_id, seq)` at the new leader, where the
//! store's dedup table (kept for a 5-minute window of leader time, `src/store/dedup.rs`) answers
//! a retry of an applied write from its record instead of applying it again. Here, meanwhile,
//! clients open a new connection for every `INCR` (the churn that used to evict a retrying
//! forwarder's record) and one client pipelines `INCR`s. The rules checked (ExactlyOnce):
//!
//! - no write applies twice: each counter ends between its acknowledged `INCR`s and those plus
//!   the ones answered `UNCERTAIN`, and the acknowledged replies of a counter are distinct;
//! - every reply is an integer, the documented `TRYAGAIN … not applied` or the leader-lost
//!   `UNCERTAIN …`; never the dedup-window refusal (`UNCERTAIN retry of a write first sent …`):
//!   nothing can leave the table in a test shorter than the window, so such a reply would be a
//!   retry wrongly refused;
//! - the churn does not grow the table: `dedup_clients` stays near the number of connections
//!   writing at once, and `INFO raft` reports the window (`dedup_window_ms`).

use crate::common;
use crate::common::raw;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::{phase, Cluster};
use raw::{multibulk, RawConn, Reply};

/// `WriteError::NoLeader`: the write was never accepted by a leader.
const NOT_APPLIED: &str =
    "TRYAGAIN no raft leader available (election in progress or quorum lost); not applied, retry";
/// `WriteError::Unknown`: indeterminate.
const UNKNOWN: &str = "UNCERTAIN the leader was lost or stopped before answering; the write may \
     or may not have been applied";

/// The other uncertain answer: a leader that proposed the write and had no answer within the
/// write timeout (`RaftError::TimedOut`), its timeout in the text.
const TIMED_OUT: &str = "UNCERTAIN the write was proposed but not answered within ";

fn timed_out(r: &Reply) -> bool {
    matches!(r, Reply::Error(e) if e.starts_with(TIMED_OUT.as_bytes())
        && e.ends_with(b"; it may or may not have been applied"))
}

/// INCRs per pipeline of the pipelining client.
const PIPELINE: usize = 16;
/// Threads that each open a new connection per INCR.
const CHURNERS: usize = 4;
/// How long one pipeline's replies may take: a failed run is retried write by write, each
/// retry bounded by `write_timeout_ms` (5 s by default).
const REPLY_TIMEOUT: Duration = Duration::from_secs(100);

/// What the clients of one counter saw.
#[derive(Default)]
struct Counter {
    /// The values acknowledged INCRs answered.
    acked: Vec<i64>,
    not_applied: usize,
    unknown: usize,
    /// Replies that are neither an integer nor a documented error.
    wrong: Vec<String>,
}

impl Counter {
    fn record(&mut self, reply: Reply) {
        match reply {
            Reply::Integer(n) => self.acked.push(n),
            r if r == Reply::error(NOT_APPLIED) => self.not_applied += 1,
            r if r == Reply::error(UNKNOWN) || timed_out(&r) => self.unknown += 1,
            r => self.wrong.push(format!("{r:?}")),
        }
    }
}

/// The clients: churners INCR `churn` over a new connection each time, alternating between
/// `addrs`; the pipeliner INCRs `piped` in pipelines over one connection to `addrs[0]`.
struct Clients {
    stop: Arc<AtomicBool>,
    churn: Arc<Mutex<Counter>>,
    piped: Arc<Mutex<Counter>>,
    handles: Vec<thread::JoinHandle<()>>,
}

impl Clients {
    fn start(addrs: Vec<String>) -> Clients {
        let stop = Arc::new(AtomicBool::new(false));
        let churn = Arc::new(Mutex::new(Counter::default()));
        let piped = Arc::new(Mutex::new(Counter::default()));
        let mut handles = Vec::new();
        for t in 0..CHURNERS {
            let (stop, churn, addrs) = (stop.clone(), churn.clone(), addrs.clone());
            handles.push(thread::spawn(move || {
                let mut i = t;
                while !stop.load(Ordering::Relaxed) {
                    let mut con = RawConn::must_connect(&addrs[i % addrs.len()]);
                    con.send(&multibulk(&["INCR", "churn"]));
                    let reply = con.must_read_reply(REPLY_TIMEOUT);
                    churn.lock().unwrap().record(reply);
                    i += 1;
                }
            }));
        }
        {
            let (stop, piped, addr) = (stop.clone(), piped.clone(), addrs[0].clone());
            handles.push(thread::spawn(move || {
                let mut con = RawConn::must_connect(&addr);
                let pipeline: Vec<u8> = (0..PIPELINE)
                    .flat_map(|_| multibulk(&["INCR", "piped"]))
                    .collect();
                while !stop.load(Ordering::Relaxed) {
                    con.send(&pipeline);
                    let replies = con.must_read_replies(PIPELINE, REPLY_TIMEOUT);
                    let mut counter = piped.lock().unwrap();
                    for reply in replies {
                        counter.record(reply);
                    }
                }
            }));
        }
        Clients {
            stop,
            churn,
            piped,
            handles,
        }
    }

    /// Acknowledged INCRs so far: (churn, piped).
    fn acked(&self) -> (usize, usize) {
        (
            self.churn.lock().unwrap().acked.len(),
            self.piped.lock().unwrap().acked.len(),
        )
    }

    /// Stops the clients after their current command and returns what they saw.
    fn finish(mut self) -> (Counter, Counter) {
        self.stop.store(true, Ordering::Relaxed);
        for h in self.handles.drain(..) {
            h.join().expect("client thread panicked");
        }
        (
            std::mem::take(&mut *self.churn.lock().unwrap()),
            std::mem::take(&mut *self.piped.lock().unwrap()),
        )
    }
}

impl Drop for Clients {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[test]
fn leader_killed_under_connection_churn_applies_no_write_twice() {
    let mut c = Cluster::start();
    let old_leader = {
        phase("start: wait for the first leader");
        c.must_leader(Duration::from_secs(20))
    };
    let survivors: Vec<u64> = c.ids().into_iter().filter(|&id| id != old_leader).collect();
    let clients = {
        phase("INCRs through both followers: a new connection per INCR, and pipelines");
        let clients = Clients::start(survivors.iter().map(|&id| c.redis_addr(id)).collect());
        c.must_wait(
            Duration::from_secs(60),
            "200 churned and 320 pipelined INCRs acknowledged before the kill",
            |_| match clients.acked() {
                (churn, piped) if churn >= 200 && piped >= 320 => Ok(()),
                n => Err(format!("{n:?} acknowledged")),
            },
        );
        clients
    };

    {
        phase("kill -9 the leader with INCRs in flight; a survivor must take over");
        c.kill9(old_leader);
        let at_kill = clients.acked();
        c.must_leader(Duration::from_secs(20));
        c.must_wait(
            Duration::from_secs(60),
            "200 churned and 320 pipelined INCRs acknowledged after the failover",
            |_| match clients.acked() {
                (churn, piped) if churn >= at_kill.0 + 200 && piped >= at_kill.1 + 320 => Ok(()),
                n => Err(format!("{n:?} acknowledged, {at_kill:?} at the kill")),
            },
        );
    }

    let (churn, piped) = clients.finish();
    let mut con = c.must_connect(survivors[0]);
    for (key, counter) in [("churn", &churn), ("piped", &piped)] {
        phase(&format!(
            "{key}: every reply documented; the counter within [acked, acked + uncertain]"
        ));
        eprintln!(
            "           {key}: {} acknowledged, {} not applied, {} uncertain",
            counter.acked.len(),
            counter.not_applied,
            counter.unknown
        );
        if !counter.wrong.is_empty() {
            c.fail(&format!(
                "{key}: {} replies were neither an integer nor a documented TRYAGAIN/UNCERTAIN, \
                 first: {:?}",
                counter.wrong.len(),
                &counter.wrong[..counter.wrong.len().min(5)]
            ));
        }
        let value: i64 = redis::cmd("GET")
            .arg(key)
            .query(&mut con)
            .unwrap_or_else(|e| panic!("GET {key}: {e}"));
        let acked = counter.acked.len() as i64;
        let most = acked + counter.unknown as i64;
        if !(acked..=most).contains(&value) {
            c.fail(&format!(
                "{key} is {value}: {acked} INCRs acknowledged and {} uncertain, so a write \
                 applied twice or an acknowledged one was lost",
                counter.unknown
            ));
        }
        let distinct: BTreeSet<i64> = counter.acked.iter().copied().collect();
        if distinct.len() != counter.acked.len() || distinct.last().is_some_and(|&n| n > value) {
            c.fail(&format!(
                "{key}: acknowledged replies are not distinct values up to {value}"
            ));
        }
    }

    phase("the churn left the dedup table small; INFO raft reports the window");
    let node = survivors[0];
    assert_eq!(c.must_raft_u64(node, "dedup_window_ms"), 300_000);
    let entries = c.must_raft_u64(node, "dedup_clients");
    let connections = churn.acked.len() + churn.not_applied + churn.unknown;
    eprintln!("           dedup_clients {entries} after {connections} churned connections");
    // Identities are reused: about the connections writing at once (5 here) per node that
    // ever served them, plus the old leader's (none wrote through it), not one per connection.
    assert!(
        entries < 40,
        "{entries} dedup entries after {connections} connections"
    );
}
