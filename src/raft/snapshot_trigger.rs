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

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::watch;

use super::RaftNode;

/// Whether a node at `revision`, whose newest snapshot is at `snapshot_revision` and which
/// last asked for one at `asked_at`, should ask now.
pub fn due(revision: u64, snapshot_revision: u64, asked_at: u64, every: u64) -> bool {
    let since = revision.saturating_sub(snapshot_revision.max(asked_at));
    since >= every.max(1)
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
        loop {
            tokio::select! {
                r = revisions.changed() => if r.is_err() { return },
                _ = shutdown.changed() => return,
            }
            let revision = *revisions.borrow_and_update();
            let built = node.node_metrics.snapshot_revision.load(Ordering::Relaxed);
            if !due(revision, built, asked_at, every) {
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
        assert!(!due(9, 0, 0, 10));
        assert!(due(10, 0, 0, 10));
        // Asked at 10, the build not done yet: not again until 20.
        assert!(!due(19, 0, 10, 10));
        assert!(due(20, 0, 10, 10));
        // A snapshot built (or installed) at 25 counts from there.
        assert!(!due(34, 25, 20, 10));
        assert!(due(35, 25, 20, 10));
        // A restarted node whose snapshot is far behind its replayed log asks at once.
        assert!(due(1_000, 0, 0, 10));
        assert!(due(1, 0, 0, 0), "0 is taken as 1");
    }
}
