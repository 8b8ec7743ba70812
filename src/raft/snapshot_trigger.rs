//! When a node takes a snapshot: after `[raft] snapshot_every` **revisions** (writes that
//! changed the keyspace) since its last snapshot, as etcd's `--snapshot-count` counts its
//! entries — not after that many Raft log entries, since one entry carries a whole batch of
//! writes (up to 1,024: `batcher.rs`) and a busy node's log would otherwise hold hundreds of
//! thousands of writes between snapshots, all replayed at restart.
//!
//! **SnapshotEveryRevisions.** Every node watches its applied revision; once it is
//! `snapshot_every` past the revision of the newest snapshot the node built, installed or
//! restored (`NodeMetrics::snapshot_revision`), it asks openraft for a snapshot, at most once
//! per `snapshot_every` revisions (a build in flight is not asked for again). openraft's own
//! policy (`LogsSinceLast(snapshot_every)` log entries) stays as the backstop for logs that
//! grow without revisions (reads inside `EXEC`, writes that change nothing).
//!
//! **SnapshotsStaggered.** Every node applies the same revisions, so without more they would
//! all snapshot at the same moment, and a snapshot's writeback slows a node's own log syncs
//! (seen: a watch event 435 ms late while all three built one). A node's first snapshot
//! therefore waits `snapshot_every × (id mod 8) / 8` revisions longer; later ones come every
//! `snapshot_every` from its own last, so the nodes keep apart and a quorum of them is never
//! slowed by its own snapshots at once.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::watch;

use super::RaftNode;

/// Whether a node at `revision`, whose newest snapshot is at `snapshot_revision` and which
/// last asked for one at `asked_at`, should ask now; `stagger` is added before its first.
pub fn due(revision: u64, snapshot_revision: u64, asked_at: u64, every: u64, stagger: u64) -> bool {
    let from = snapshot_revision.max(asked_at);
    let every = every.max(1);
    let threshold = if from == 0 {
        every.saturating_add(stagger)
    } else {
        every
    };
    revision.saturating_sub(from) >= threshold
}

/// How much later than `every` node `id` takes its first snapshot (SnapshotsStaggered).
pub fn stagger(id: u64, every: u64) -> u64 {
    every / 8 * (id % 8)
}

/// Starts the snapshot trigger of `node`; it ends when `shutdown` turns true.
pub fn spawn_snapshot_trigger(
    node: Arc<RaftNode>,
    every: u64,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut revisions = node.sm.revision_watch();
        let mut asked_at = 0;
        let stagger = stagger(node.id, every);
        loop {
            tokio::select! {
                r = revisions.changed() => if r.is_err() { return },
                _ = shutdown.changed() => return,
            }
            let revision = *revisions.borrow_and_update();
            let built = node.node_metrics.snapshot_revision.load(Ordering::Relaxed);
            if !due(revision, built, asked_at, every, stagger) {
                continue;
            }
            asked_at = revision;
            tracing::debug!(
                revision,
                built,
                "snapshot_every revisions applied: snapshot"
            );
            if let Err(e) = node.raft.trigger().snapshot().await {
                tracing::warn!(error = %e, "cannot ask for a snapshot");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asks_once_per_snapshot_every_revisions() {
        assert!(!due(9, 0, 0, 10, 0));
        assert!(due(10, 0, 0, 10, 0));
        // Asked at 10, the build not done yet: not again until 20.
        assert!(!due(19, 0, 10, 10, 0));
        assert!(due(20, 0, 10, 10, 0));
        // A snapshot built (or installed) at 25 counts from there.
        assert!(!due(34, 25, 20, 10, 0));
        assert!(due(35, 25, 20, 10, 0));
        // A restarted node whose snapshot is far behind its replayed log asks at once.
        assert!(due(1_000, 0, 0, 10, 0));
        assert!(due(1, 0, 0, 0, 0), "0 is taken as 1");
    }

    #[test]
    fn nodes_take_their_first_snapshot_apart() {
        let every = 100_000;
        let firsts: Vec<u64> = (1..=3)
            .map(|id| {
                let s = stagger(id, every);
                assert!(!due(every + s - 1, 0, 0, every, s));
                assert!(due(every + s, 0, 0, every, s));
                every + s
            })
            .collect();
        assert_eq!(firsts, [112_500, 125_000, 137_500]);
        // After its first, a node counts `every` from its own snapshot: the gap stays.
        assert!(due(
            112_500 + every,
            112_500,
            112_500,
            every,
            stagger(1, every)
        ));
        assert!(!due(
            125_000 + every - 1,
            125_000,
            125_000,
            every,
            stagger(2, every)
        ));
    }
}
