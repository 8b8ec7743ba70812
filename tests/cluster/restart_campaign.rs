//! CampaignAfterRestart (`src/raft/start.rs`): a restarted node neither votes (VoteAfterRestart)
//! nor campaigns itself within the vote-refusal window after its start.
//!
//! The bug it guards against: openraft restores a node's vote with no lease, so a restarted
//! follower campaigned after its election timeout alone (2/5 of `election_timeout_ms`), and a
//! peer that no longer hears the old leader elected it, while the old leader (cut off) could
//! still serve lease reads acknowledged by the follower's previous process, for up to the
//! window (3/5) minus the drift margin. Here the "peer" is node Y, restarted long enough ago
//! to vote, and the leader is gone; what is checked is the restarted node X: no leader before
//! the window has passed since X was started, and no campaign in X's own log (openraft's
//! `trigger pre-vote` / `trigger election`) earlier than the window after its `startup begin`.
//! Without the fix X campaigns 2-3 s into its 3 s window (election timeout 5 s), so the log
//! check fails every time; in the run that showed it, the leader check failed first ("node 2
//! leads 2.683266883s after node 2 was started, inside its 3s vote-refusal window").

use crate::common;

use std::time::{Duration, Instant};

use common::{connect, phase, try_set, Cluster};

/// Seconds since midnight of a log line's timestamp (`2026-12-04T05:24:55.372577Z ...`).
fn line_time(line: &str) -> Option<f64> {
    let t = line
        .split_whitespace()
        .next()?
        .split('T')
        .nth(1)?
        .trim_end_matches('Z');
    let mut parts = t.split(':');
    let (h, m, s) = (parts.next()?, parts.next()?, parts.next()?);
    Some(h.parse::<f64>().ok()? * 3600.0 + m.parse::<f64>().ok()? * 60.0 + s.parse::<f64>().ok()?)
}

/// Whether node `id` answers RAFT.INFO as the leader. (Not `leader`: a restarted node names
/// the leader of the vote it restored from disk, dead or not.)
fn leads(c: &Cluster, id: u64) -> bool {
    c.try_raft_info(id)
        .is_ok_and(|info| info.get("role") == "leader")
}

#[test]
fn a_restarted_node_does_not_campaign_within_the_vote_refusal_window() {
    // 5 s election timeout: followers refuse votes for 3 s after each AppendEntries; a node
    // restarted now must not be elected before 3 s after its start.
    let window = Duration::from_millis(3000);
    let mut c = Cluster::builder().election_timeout_ms(5000).start();
    let (x, y) = {
        phase("a leader, a write every node has applied, then every node killed");
        let leader = c.must_leader(Duration::from_secs(30));
        let mut con = connect(&c.redis_addr(leader), Duration::from_secs(2)).unwrap();
        try_set(&mut con, "k", "v").unwrap();
        let index = c.must_raft_u64(leader, "raft_commit_index");
        for id in c.ids() {
            c.must_wait(
                Duration::from_secs(10),
                "every node to apply the write",
                |c| {
                    let applied = c.try_raft_info(id)?.get("applied_index").parse::<u64>();
                    match applied {
                        Ok(a) if a >= index => Ok(()),
                        other => Err(format!("node {id}: {other:?}")),
                    }
                },
            );
        }
        c.kill9_all();
        let others: Vec<u64> = c.ids().into_iter().filter(|&i| i != leader).collect();
        (others[0], others[1])
    };
    {
        phase("Y restarted alone, and left until its own restart window is over");
        c.restart(y);
        std::thread::sleep(window + Duration::from_millis(500));
        assert!(!leads(&c, y), "node {y} alone became leader");
    }
    {
        phase("X restarted: no leader until the window has passed since X's start");
        let started = Instant::now();
        c.restart(x);
        while started.elapsed() < window {
            for id in [x, y] {
                assert!(
                    !leads(&c, id),
                    "node {id} leads {:?} after node {x} was started, inside its {window:?} \
                     vote-refusal window",
                    started.elapsed()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    {
        phase("X's own log: its first campaign is not before its start + the window");
        // Same clock on both lines: openraft's `startup begin` (the election timer's origin)
        // and each `trigger pre-vote` / `trigger election`. Without the fix the first campaign
        // comes 2-3 s after start up, always inside the 3 s window.
        c.must_wait(
            Duration::from_secs(30),
            "node X to campaign or follow a leader",
            |c| {
                let log = c.log_since_start(x);
                (log.contains("trigger pre-vote")
                    || log.contains("trigger election")
                    || leads(c, y))
                .then_some(())
                .ok_or_else(|| "no campaign yet".to_string())
            },
        );
        let log = c.log_since_start(x);
        let started = log
            .lines()
            .find(|l| l.contains("startup begin"))
            .and_then(line_time)
            .expect("openraft's `startup begin` line in node X's log");
        for line in log
            .lines()
            .filter(|l| l.contains("trigger pre-vote") || l.contains("trigger election"))
        {
            let at = line_time(line).expect("a timestamp") - started;
            assert!(
                at >= window.as_secs_f64(),
                "node {x} campaigned {at:.3} s after its start, inside its {window:?} \
                 vote-refusal window: {line}"
            );
        }
    }
    {
        phase("then X and Y elect a leader");
        let leader = c.must_leader(Duration::from_secs(30));
        assert!(leader == x || leader == y);
    }
}
