//! Durability across a whole-cluster crash (DurableBeforeAck): every write a client saw `+OK`
//! for survives kill -9 of all three nodes at once, with no graceful shutdown.
//!
//! - `acknowledged_writes_survive_killing_every_node`: the log alone (no snapshot is taken).
//! - `acknowledged_writes_survive_restart_from_snapshot_and_log`: `snapshot_every = 50`, so
//!   each node restarts from a persisted snapshot plus the log after it.
//!
//! After the restart and an election, every acknowledged key must read back with its value on
//! every node (linearizable GET; a wrong or missing value is not retried).

use crate::common;

use std::time::Duration;

use common::{phase, try_set, Cluster};

/// Keys written before the crash. With `snapshot_every = 50` the last snapshot is at index
/// 299, so the last ~20 writes exist only in the log.
const KEYS: usize = 320;

/// What a node logs when it starts from the snapshot in its own data dir.
const RESTORED: &str = "snapshot restored from disk";

/// What a node logs when it installs a snapshot sent by the leader.
const INSTALLED: &str = "snapshot installed";

/// Writes `KEYS` keys round-robin through every node, each acknowledged, then kills all nodes
/// with SIGKILL at once, restarts them and checks every key on every node. Returns the
/// restarted cluster for further checks.
fn must_survive_full_crash(mut c: Cluster, prefix: &str) -> Cluster {
    {
        phase("start: wait for a leader");
        c.must_leader(Duration::from_secs(20));
    }

    let mut kvs = Vec::new();
    {
        phase("write keys through every node in turn, each acknowledged");
        let ids = c.ids();
        let mut cons: Vec<redis::Connection> = ids.iter().map(|&id| c.must_connect(id)).collect();
        for i in 0..KEYS {
            let (key, value) = (
                format!("{prefix}-{i}"),
                format!("value-{i}-{}", "x".repeat(i % 7)),
            );
            if let Err(e) = try_set(&mut cons[i % ids.len()], &key, &value) {
                c.fail(&format!(
                    "SET {key} through node {}: {e}",
                    ids[i % ids.len()]
                ));
            }
            kvs.push((key, value));
        }
    }

    {
        phase("kill -9 all three nodes right after the last acknowledgement");
        c.kill9_all();
    }

    {
        phase("restart all three and wait for a leader");
        for id in c.ids() {
            c.restart(id);
        }
        c.must_leader(Duration::from_secs(20));
    }

    {
        phase("every acknowledged key reads back with its value on every node");
        for id in c.ids() {
            c.must_read_all(id, &kvs, Duration::from_secs(30));
        }
    }
    c
}

#[test]
fn acknowledged_writes_survive_killing_every_node() {
    let mut c = must_survive_full_crash(Cluster::start(), "log");
    {
        phase("no node had a snapshot: everything came back from the log alone");
        for id in c.ids() {
            for message in [RESTORED, INSTALLED] {
                let indexes = c.snapshot_indexes_since_start(id, message);
                if !indexes.is_empty() {
                    c.fail(&format!(
                        "node {id}: `{message}` since restart at {indexes:?}"
                    ));
                }
            }
        }
    }
}

#[test]
fn acknowledged_writes_survive_restart_from_snapshot_and_log() {
    let mut c = must_survive_full_crash(Cluster::builder().snapshot_every(50).start(), "snap");
    {
        phase("each node restored its own snapshot at start-up, then replayed the log after it");
        for id in c.ids() {
            let restored = c.snapshot_indexes_since_start(id, RESTORED);
            let ok = restored.first().is_some_and(|&i| i > 0 && i < KEYS as u64);
            if !ok {
                c.fail(&format!(
                    "node {id}: `{RESTORED}` indexes since restart {restored:?}; want the first \
                     in 1..{KEYS} (a snapshot, with later writes only in the log)"
                ));
            }
        }
    }
}
