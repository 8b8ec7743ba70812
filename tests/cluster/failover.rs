//! Failover and catch-up with real processes and SIGKILL.
//!
//! - `leader_killed_under_writes`: kill -9 the leader while a client writes unique keys through
//!   the other nodes. A new leader is elected and takes writes; the killed node, restarted,
//!   returns every acknowledged key on a linearizable GET (no retry on a wrong answer) and its
//!   applied index reaches the leader's.
//! - `follower_catches_up_by_snapshot`: with `snapshot_every = 20` and
//!   `max_in_snapshot_log_to_keep = 0`, kill -9 a follower and write until the leader has
//!   purged past the follower's log. The restarted follower must be sent a snapshot (its log
//!   says `snapshot installed`) and then serve every key.

use crate::common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::{connect, phase, try_set, Cluster};

/// Writes unique keys `fo-<n>` round-robin through `addrs` until stopped, recording every
/// acknowledged `(key, value)`. Failed writes are indeterminate and not recorded.
struct Writer {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<(String, String)>>>,
    errors: Arc<Mutex<Vec<String>>>,
    handle: Option<thread::JoinHandle<()>>,
}

impl Writer {
    fn start(addrs: Vec<String>) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let handle = {
            let (stop, acked, errors) = (stop.clone(), acked.clone(), errors.clone());
            thread::spawn(move || {
                let mut cons: Vec<Option<redis::Connection>> = addrs.iter().map(|_| None).collect();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let i = (n as usize) % addrs.len();
                    let (key, value) = (format!("fo-{n}"), format!("value-{n}"));
                    n += 1;
                    if cons[i].is_none() {
                        match connect(&addrs[i], Duration::from_millis(500)) {
                            Ok(con) => cons[i] = Some(con),
                            Err(e) => {
                                errors.lock().unwrap().push(e);
                                thread::sleep(Duration::from_millis(20));
                                continue;
                            }
                        }
                    }
                    match try_set(cons[i].as_mut().unwrap(), &key, &value) {
                        Ok(()) => acked.lock().unwrap().push((key, value)),
                        Err(e) => {
                            errors.lock().unwrap().push(e);
                            cons[i] = None;
                            thread::sleep(Duration::from_millis(20));
                        }
                    }
                }
            })
        };
        Writer {
            stop,
            acked,
            errors,
            handle: Some(handle),
        }
    }

    fn acked_len(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    /// Stops the writer and returns the acknowledged writes and the errors seen.
    fn finish(mut self) -> (Vec<(String, String)>, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        self.handle
            .take()
            .unwrap()
            .join()
            .expect("writer thread panicked");
        let acked = std::mem::take(&mut *self.acked.lock().unwrap());
        let errors = std::mem::take(&mut *self.errors.lock().unwrap());
        (acked, errors)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[test]
fn leader_killed_under_writes() {
    let mut c = Cluster::start();
    let old_leader = {
        phase("start: wait for the first leader");
        c.must_leader(Duration::from_secs(20))
    };
    let survivors: Vec<u64> = c.ids().into_iter().filter(|&id| id != old_leader).collect();

    let writer = {
        phase("write unique keys through the two nodes that will survive");
        let writer = Writer::start(survivors.iter().map(|&id| c.redis_addr(id)).collect());
        c.must_wait(
            Duration::from_secs(20),
            "50 acknowledged writes before the kill",
            |_| match writer.acked_len() {
                n if n >= 50 => Ok(()),
                n => Err(format!("{n} acknowledged")),
            },
        );
        writer
    };

    let new_leader = {
        phase("kill -9 the leader mid-write; a survivor must take over");
        let leader = c.must_leader(Duration::from_secs(10));
        if leader != old_leader {
            c.fail(&format!(
                "leadership moved from {old_leader} to {leader} on its own"
            ));
        }
        c.kill9(old_leader);
        let at_kill = writer.acked_len();
        let new_leader = c.must_leader(Duration::from_secs(20));
        assert_ne!(new_leader, old_leader);
        c.must_wait(
            Duration::from_secs(20),
            "50 more acknowledged writes after the failover",
            |_| match writer.acked_len() - at_kill {
                n if n >= 50 => Ok(()),
                n => Err(format!("{n} acknowledged since the kill")),
            },
        );
        new_leader
    };

    let acked = {
        phase("the new leader takes a write through the surviving follower");
        let follower = survivors
            .iter()
            .copied()
            .find(|&id| id != new_leader)
            .unwrap();
        c.must_set(follower, "after-failover", "yes");
        let (mut acked, errors) = writer.finish();
        eprintln!(
            "           writer: {} acknowledged, {} failed (first: {:?})",
            acked.len(),
            errors.len(),
            errors.first()
        );
        acked.push(("after-failover".to_string(), "yes".to_string()));
        acked
    };

    {
        phase("restart the killed node: linearizable GETs on it see every acknowledged key");
        c.restart(old_leader);
        c.must_read_all(old_leader, &acked, Duration::from_secs(30));
    }

    {
        phase("the restarted node's applied index reaches the leader's");
        c.must_wait(
            Duration::from_secs(20),
            "raft_applied_index of the restarted node to reach the leader's",
            |c| {
                let leader = c.try_raft_u64(new_leader, "raft_applied_index")?;
                let node = c.try_raft_u64(old_leader, "raft_applied_index")?;
                if node >= leader {
                    Ok(())
                } else {
                    Err(format!("leader {leader}, restarted node {node}"))
                }
            },
        );
        let leader = c.must_leader(Duration::from_secs(10));
        if leader != new_leader {
            c.fail(&format!(
                "leadership moved from {new_leader} to {leader} when node {old_leader} rejoined"
            ));
        }
    }
}

#[test]
fn follower_catches_up_by_snapshot() {
    let mut c = Cluster::builder()
        .snapshot_every(20)
        .max_in_snapshot_log_to_keep(0)
        .start();
    let leader = {
        phase("start: wait for a leader and some replicated history");
        let leader = c.must_leader(Duration::from_secs(20));
        for i in 0..10 {
            c.must_set(leader, &format!("early-{i}"), "e");
        }
        leader
    };
    let follower = c.ids().into_iter().find(|&id| id != leader).unwrap();
    let other = c
        .ids()
        .into_iter()
        .find(|&id| id != leader && id != follower)
        .unwrap();

    let follower_last = {
        phase("record how far the follower's log goes, then kill -9 it");
        let applied = c.must_raft_u64(follower, "raft_applied_index");
        let last = c.must_raft_u64(follower, "raft_last_log_index");
        eprintln!("           follower {follower}: applied {applied}, last log index {last}");
        c.kill9(follower);
        applied.max(last)
    };

    let mut kvs = Vec::new();
    {
        phase("write 200 keys with the follower down, through the leader and the other node");
        let mut cons = [c.must_connect(leader), c.must_connect(other)];
        for i in 0..200 {
            let (key, value) = (format!("snap-{i}"), format!("value-{i}"));
            if let Err(e) = try_set(&mut cons[i % 2], &key, &value) {
                c.fail(&format!("SET {key} with one follower down: {e}"));
            }
            kvs.push((key, value));
        }
    }

    {
        phase("wait until the leader has purged its log past the follower's last entry");
        c.must_wait(
            Duration::from_secs(20),
            "the leader's raft_purged_index to pass the dead follower's last log index",
            |c| {
                let purged = c.try_raft_u64(leader, "raft_purged_index")?;
                if purged > follower_last {
                    Ok(())
                } else {
                    Err(format!("purged {purged}, follower's last {follower_last}"))
                }
            },
        );
    }

    {
        phase("restart the follower: it can only catch up by receiving a snapshot");
        c.restart(follower);
        let what = format!(
            "`snapshot installed` past index {follower_last} in the restarted follower's log"
        );
        c.must_wait(Duration::from_secs(30), &what, |c| {
            let installed = c.snapshot_indexes_since_start(follower, "snapshot installed");
            if installed.iter().any(|&i| i > follower_last) {
                Ok(())
            } else {
                Err(format!("installed since restart: {installed:?}"))
            }
        });
        c.must_read_all(follower, &kvs, Duration::from_secs(30));
        let applied = c.must_raft_u64(follower, "raft_applied_index");
        let snapshot = c.must_raft_u64(follower, "raft_snapshot_index");
        if snapshot <= follower_last || applied < snapshot {
            c.fail(&format!(
                "follower {follower}: snapshot index {snapshot}, applied {applied}; want a \
                 snapshot past its old last index {follower_last}"
            ));
        }
    }
}
