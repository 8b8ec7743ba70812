//! When a node takes a snapshot: after `[raft] snapshot_every` **revisions** (writes that
//! changed the keyspace) since its last snapshot, as etcd's `--snapshot-count` counts its
//! entries — not after that many Raft log entries, since one entry carries a whole batch of
//! writes (up to 1,024: `batcher.rs`) and a busy node's log would otherwise hold hundreds of
//! thousands of writes between snapshots, all replayed at restart.
//!
//! **SnapshotEveryRevisions.** Every node looks at its applied revision; once it is
//! `snapshot_every` past the revision of the newest snapshot the node built, installed or
//! restored (`NodeMetrics::snapshot_revision`), it asks openraft for a snapshot, at most once
//! per `snapshot_every` revisions (a build in flight is not asked for again).
//!
//! **SnapshotsStaggered.** Every node applies the same revisions, so without more they would
//! all snapshot at the same moment, and a snapshot's writeback slows a node's own log syncs
//! (seen: a watch event 435 ms late while all three built one). A node's first snapshot
//! therefore waits `snapshot_every × (id mod 8) / 8` revisions longer; later ones come every
//! `snapshot_every` from its own last, so the nodes keep apart and a quorum of them is never
//! slowed by its own snapshots at once.
//!
//! **SnapshotCostsNoMoreThanTheLog.** A snapshot is a full dump of the keyspace and its
//! history; with a million keys of 1 KB it is over a gigabyte, and one every 100,000 writes of
//! 1 KB would write ten times more to disk than the log it lets go (seen in the full-size
//! `benches/scale.sh`). So, as Redis rewrites its AOF only once it grew by
//! `auto-aof-rewrite-percentage` since the last rewrite, a node also waits until the log it
//! wrote since its last snapshot is at least `snapshot_log_percent` % of that snapshot's size:
//! snapshots then write at most 100 / `snapshot_log_percent` times the bytes of the log, and a
//! restart replays at most that share of a snapshot's worth of log besides `snapshot_every`
//! revisions. The default is 25, not Redis's 100: replaying the log is several times slower
//! per byte than loading a snapshot. Measured at a million keys of 1 KB (`benches/scale.sh`,
//! one run each): revisions alone 14,440 writes/s, follower restart 2.0 s, new node 9.7 s; 25 %:
//! 17,529, 2.7 s, 7.5 s; 100 %: 22,280, 11.0 s, 14.0 s.
//!
//! **LogWithoutRevisions.** A log can grow without revisions (reads inside `EXEC`, writes that
//! change nothing, membership and blank entries): once it holds [`LOG_ONLY_BYTES`] since the
//! last snapshot (and as much as the rule above asks), a snapshot is taken anyway. This is
//! the only snapshot policy: openraft's own (in log entries) is off, since it would ignore the
//! snapshot's size.
//!
//! The trigger looks every [`TICK`] (a few milliseconds of lateness is nothing next to
//! `snapshot_every`), rather than on every apply: a task woken per entry costs every node a
//! hand-off per write.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::RaftNode;

/// How often the trigger looks at the revision and the log.
pub const TICK: Duration = Duration::from_millis(100);

/// Log bytes since the last snapshot past which a snapshot is taken without new revisions
/// (LogWithoutRevisions).
pub const LOG_ONLY_BYTES: u64 = 256 << 20;

/// The snapshot policy's settings (`[raft]`).
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// `snapshot_every`: revisions between two snapshots (0 is taken as 1).
    pub every: u64,
    /// How much later the first snapshot comes (SnapshotsStaggered).
    pub stagger: u64,
    /// `snapshot_log_percent` (0: the size rule is off).
    pub log_percent: u64,
}

/// What the trigger knows at one look.
#[derive(Debug, Clone, Copy, Default)]
pub struct Now {
    /// The applied revision.
    pub revision: u64,
    /// The revision of the newest snapshot built, installed or restored (0: none).
    pub snapshot_revision: u64,
    /// The revision at which this node last asked for a snapshot (0: never).
    pub asked_at: u64,
    /// Log bytes written since the newest snapshot (or since the last ask, if later).
    pub log_bytes: u64,
    /// The size of the newest snapshot's full dump, without the deltas after it (0: none):
    /// what the next full snapshot costs.
    pub snapshot_bytes: u64,
}

/// Whether the node should ask for a snapshot now (the module doc).
pub fn due(p: Policy, n: Now) -> bool {
    let from = n.snapshot_revision.max(n.asked_at);
    let every = p.every.max(1);
    let threshold = if from == 0 {
        every.saturating_add(p.stagger)
    } else {
        every
    };
    // SnapshotCostsNoMoreThanTheLog.
    let log_wanted = n.snapshot_bytes.saturating_mul(p.log_percent) / 100;
    let revisions_due = n.revision.saturating_sub(from) >= threshold && n.log_bytes >= log_wanted;
    // LogWithoutRevisions.
    let log_only_due = n.log_bytes >= LOG_ONLY_BYTES.max(log_wanted);
    revisions_due || log_only_due
}

/// How much later than `every` node `id` takes its first snapshot (SnapshotsStaggered).
pub fn stagger(id: u64, every: u64) -> u64 {
    every / 8 * (id % 8)
}

/// Starts the snapshot trigger of `node`; it ends when `shutdown` turns true.
pub fn spawn_snapshot_trigger(
    node: Arc<RaftNode>,
    every: u64,
    log_percent: u64,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let policy = Policy {
            every,
            stagger: stagger(node.id, every),
            log_percent,
        };
        let revisions = node.sm.revision_watch();
        let written = || node.flush_stats.bytes.load(Ordering::Relaxed);
        let mut asked_at = 0;
        let mut seen_snapshot = node.node_metrics.snapshot_revision.load(Ordering::Relaxed);
        let mut log_from = written();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            let snapshot_revision = node.node_metrics.snapshot_revision.load(Ordering::Relaxed);
            if snapshot_revision != seen_snapshot {
                // A new snapshot (built, installed or restored): the log counts from here.
                seen_snapshot = snapshot_revision;
                log_from = written();
            }
            let now = Now {
                revision: *revisions.borrow(),
                snapshot_revision,
                asked_at,
                log_bytes: written().saturating_sub(log_from),
                snapshot_bytes: node
                    .node_metrics
                    .snapshot_base_bytes
                    .load(Ordering::Relaxed),
            };
            if !due(policy, now) {
                continue;
            }
            asked_at = now.revision;
            log_from = written();
            tracing::debug!(?now, "snapshot due");
            if let Err(e) = node.raft.trigger().snapshot().await {
                tracing::warn!(error = %e, "cannot ask for a snapshot");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(every: u64, stagger: u64) -> Policy {
        Policy {
            every,
            stagger,
            log_percent: 100,
        }
    }

    /// A node at `revision` with snapshot and ask at the given revisions, and a log larger
    /// than any snapshot so far (the size rule satisfied).
    fn at(revision: u64, snapshot_revision: u64, asked_at: u64) -> Now {
        Now {
            revision,
            snapshot_revision,
            asked_at,
            log_bytes: 1,
            snapshot_bytes: 0,
        }
    }

    #[test]
    fn asks_once_per_snapshot_every_revisions() {
        let p = policy(10, 0);
        assert!(!due(p, at(9, 0, 0)));
        assert!(due(p, at(10, 0, 0)));
        // Asked at 10, the build not done yet: not again until 20.
        assert!(!due(p, at(19, 0, 10)));
        assert!(due(p, at(20, 0, 10)));
        // A snapshot built (or installed) at 25 counts from there.
        assert!(!due(p, at(34, 25, 20)));
        assert!(due(p, at(35, 25, 20)));
        // A restarted node whose snapshot is far behind its replayed log asks at once.
        assert!(due(p, at(1_000, 0, 0)));
        assert!(due(policy(0, 0), at(1, 0, 0)), "0 is taken as 1");
    }

    #[test]
    fn nodes_take_their_first_snapshot_apart() {
        let every = 100_000;
        let firsts: Vec<u64> = (1..=3)
            .map(|id| {
                let p = policy(every, stagger(id, every));
                assert!(!due(p, at(every + p.stagger - 1, 0, 0)));
                assert!(due(p, at(every + p.stagger, 0, 0)));
                every + p.stagger
            })
            .collect();
        assert_eq!(firsts, [112_500, 125_000, 137_500]);
        // After its first, a node counts `every` from its own snapshot: the gap stays.
        assert!(due(
            policy(every, stagger(1, every)),
            at(112_500 + every, 112_500, 112_500)
        ));
        assert!(!due(
            policy(every, stagger(2, every)),
            at(125_000 + every - 1, 125_000, 125_000)
        ));
    }

    /// SnapshotCostsNoMoreThanTheLog: with a snapshot of 1 GB, 100,000 revisions are not
    /// enough until the log since it holds 1 GB too (or `snapshot_log_percent` of it).
    #[test]
    fn a_large_snapshot_waits_for_as_much_log() {
        let gb = 1 << 30;
        let big = |log_bytes| Now {
            revision: 300_000,
            snapshot_revision: 100_000,
            asked_at: 100_000,
            log_bytes,
            snapshot_bytes: gb,
        };
        let p = policy(100_000, 0);
        assert!(!due(p, big(100_000 * 1024)), "100 MB of log after 1 GB");
        assert!(!due(p, big(gb - 1)));
        assert!(due(p, big(gb)));
        let half = Policy {
            log_percent: 50,
            ..p
        };
        assert!(due(half, big(gb / 2)));
        let off = Policy {
            log_percent: 0,
            ..p
        };
        assert!(due(off, big(1)), "0: revisions alone");
        // A small snapshot changes nothing: revisions decide.
        let small = Now {
            snapshot_bytes: 1 << 20,
            log_bytes: 2 << 20,
            ..big(0)
        };
        assert!(due(p, small));
        assert!(!due(
            p,
            Now {
                revision: 199_999,
                ..small
            }
        ));
    }

    /// LogWithoutRevisions: a log that grows without revisions is snapshotted once it is
    /// large, and not before.
    #[test]
    fn a_log_without_revisions_is_snapshotted_once_large() {
        let p = policy(100_000, 0);
        let quiet = |log_bytes, snapshot_bytes| Now {
            revision: 10,
            snapshot_revision: 10,
            asked_at: 0,
            log_bytes,
            snapshot_bytes,
        };
        assert!(!due(p, quiet(LOG_ONLY_BYTES - 1, 0)));
        assert!(due(p, quiet(LOG_ONLY_BYTES, 0)));
        // ... and as large as the snapshot rule asks.
        assert!(!due(p, quiet(LOG_ONLY_BYTES, 2 * LOG_ONLY_BYTES)));
        assert!(due(p, quiet(2 * LOG_ONLY_BYTES, 2 * LOG_ONLY_BYTES)));
    }
}
