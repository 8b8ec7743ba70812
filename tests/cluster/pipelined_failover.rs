//! Pipelined writes through a follower while the leader is killed with SIGKILL.
//!
//! A follower forwards each run of pipelined writes to the leader as one `ClientWriteMany`
//! (`src/raft/write.rs`, `RaftNode::write_many`). When the leader dies with runs in flight, the
//! follower retries what did not come back applied, in order, with the same `(client_id, seq)`.
//! The rules checked here (ExactlyOnceApply, nothing unapplied acknowledged):
//!
//! - every `+OK` is true: each acknowledged key is present afterwards, with its value, on every
//!   survivor (linearizable GETs, never retried on a wrong answer);
//! - every error is one of the two documented texts (`TRYAGAIN … not applied`, `UNCERTAIN …`),
//!   never anything else;
//! - `TRYAGAIN ... not applied` is true: a key answered so is absent afterwards.

use crate::common;
use crate::common::raw;

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

/// SETs per pipeline.
const PIPELINE: usize = 32;
/// How long one pipeline's replies may take: a failed run is retried write by write, each retry
/// bounded by `write_timeout_ms` (5 s by default).
const PIPELINE_TIMEOUT: Duration = Duration::from_secs(40);

#[derive(Default)]
struct Outcomes {
    acked: Vec<(String, String)>,
    not_applied: Vec<String>,
    unknown: Vec<String>,
    /// Replies that are neither `+OK` nor a documented error.
    wrong: Vec<String>,
}

/// Sends pipelines of `PIPELINE` SETs of unique keys over one connection until stopped.
struct Writer {
    stop: Arc<AtomicBool>,
    outcomes: Arc<Mutex<Outcomes>>,
    handle: Option<thread::JoinHandle<()>>,
}

impl Writer {
    fn start(addr: String) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let outcomes = Arc::new(Mutex::new(Outcomes::default()));
        let handle = {
            let (stop, outcomes) = (stop.clone(), outcomes.clone());
            thread::spawn(move || {
                let mut con = RawConn::must_connect(&addr);
                let mut round = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let kvs: Vec<(String, String)> = (0..PIPELINE)
                        .map(|i| (format!("pf-{round}-{i}"), format!("value-{round}-{i}")))
                        .collect();
                    let bytes: Vec<u8> = kvs
                        .iter()
                        .flat_map(|(k, v)| multibulk(&["SET", k, v]))
                        .collect();
                    con.send(&bytes);
                    let replies = con.must_read_replies(PIPELINE, PIPELINE_TIMEOUT);
                    let mut o = outcomes.lock().unwrap();
                    for ((key, value), reply) in kvs.into_iter().zip(replies) {
                        match reply {
                            r if r == Reply::ok() => o.acked.push((key, value)),
                            r if r == Reply::error(NOT_APPLIED) => o.not_applied.push(key),
                            r if r == Reply::error(UNKNOWN) || timed_out(&r) => o.unknown.push(key),
                            r => o.wrong.push(format!("SET {key}: {r:?}")),
                        }
                    }
                    round += 1;
                }
            })
        };
        Writer {
            stop,
            outcomes,
            handle: Some(handle),
        }
    }

    fn acked_len(&self) -> usize {
        self.outcomes.lock().unwrap().acked.len()
    }

    /// Stops the writer after its current pipeline and returns what it saw.
    fn finish(mut self) -> Outcomes {
        self.stop.store(true, Ordering::Relaxed);
        self.handle
            .take()
            .unwrap()
            .join()
            .expect("writer thread panicked");
        std::mem::take(&mut *self.outcomes.lock().unwrap())
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[test]
fn leader_killed_under_pipelined_writes_through_a_follower() {
    let mut c = Cluster::start();
    let old_leader = {
        phase("start: wait for the first leader");
        c.must_leader(Duration::from_secs(20))
    };
    let survivors: Vec<u64> = c.ids().into_iter().filter(|&id| id != old_leader).collect();
    let follower = survivors[0];

    let writer = {
        phase("pipelines of 32 SETs through a follower");
        let writer = Writer::start(c.redis_addr(follower));
        c.must_wait(
            Duration::from_secs(30),
            "640 acknowledged writes before the kill",
            |_| match writer.acked_len() {
                n if n >= 640 => Ok(()),
                n => Err(format!("{n} acknowledged")),
            },
        );
        writer
    };

    let new_leader = {
        phase("kill -9 the leader with pipelines in flight; a survivor must take over");
        c.kill9(old_leader);
        let at_kill = writer.acked_len();
        let new_leader = c.must_leader(Duration::from_secs(20));
        c.must_wait(
            Duration::from_secs(40),
            "640 more acknowledged writes after the failover",
            |_| match writer.acked_len() - at_kill {
                n if n >= 640 => Ok(()),
                n => Err(format!("{n} acknowledged since the kill")),
            },
        );
        new_leader
    };

    let outcomes = {
        phase("stop the writer: every reply was +OK, a documented TRYAGAIN or UNCERTAIN");
        let o = writer.finish();
        eprintln!(
            "           {} acknowledged, {} not applied, {} unknown; new leader {new_leader}",
            o.acked.len(),
            o.not_applied.len(),
            o.unknown.len()
        );
        if !o.wrong.is_empty() {
            c.fail(&format!(
                "{} replies were neither +OK nor a documented TRYAGAIN/UNCERTAIN, first: {:?}",
                o.wrong.len(),
                &o.wrong[..o.wrong.len().min(5)]
            ));
        }
        o
    };

    for &id in &survivors {
        phase(&format!(
            "node {id}: every acknowledged key is present with its value"
        ));
        c.must_read_all(id, &outcomes.acked, Duration::from_secs(60));
    }

    {
        phase("every key answered `not applied` is absent");
        let mut con = c.must_connect(follower);
        for key in &outcomes.not_applied {
            let got: Option<String> = redis::cmd("GET")
                .arg(key)
                .query(&mut con)
                .unwrap_or_else(|e| panic!("GET {key}: {e}"));
            if got.is_some() {
                c.fail(&format!(
                    "{key} was answered `{NOT_APPLIED}` but holds {got:?}"
                ));
            }
        }
    }
}
