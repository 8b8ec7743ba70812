//! Snapshot transfer in chunks across real processes (ChunkBounded in
//! `src/raft/snapshot_transfer.rs`).
//!
//! - `follower_catches_up_by_a_snapshot_of_many_chunks`: with 4 KiB chunks
//!   (`REDRAFT_SNAPSHOT_CHUNK_BYTES`, a test-only size; the default is 1 MiB), kill -9 a
//!   follower, write ~400 KB with it down, force `RAFT.SNAPSHOT` on the leader so its log is
//!   purged past the follower's, restart the follower: the leader's log says the snapshot went
//!   in many chunks, the follower's that it installed one, and it answers every read.

use crate::common;

use std::time::Duration;

use common::{phase, try_set, Cluster};

const CHUNK: usize = 4096;

#[test]
fn follower_catches_up_by_a_snapshot_of_many_chunks() {
    // Inherited by every node this test spawns (one test per file: no other test sees it).
    std::env::set_var("REDRAFT_SNAPSHOT_CHUNK_BYTES", CHUNK.to_string());
    let mut c = Cluster::builder().max_in_snapshot_log_to_keep(0).start();
    let leader = c.must_leader(Duration::from_secs(20));
    for i in 0..10 {
        c.must_set(leader, &format!("early-{i}"), "e");
    }
    let follower = c.ids().into_iter().find(|&id| id != leader).unwrap();

    let follower_last = {
        phase("kill -9 a follower");
        let applied = c.must_raft_u64(follower, "raft_applied_index");
        let last = c.must_raft_u64(follower, "raft_last_log_index");
        c.kill9(follower);
        applied.max(last)
    };

    let mut kvs = Vec::new();
    {
        phase("write 400 keys of 1 KB with the follower down");
        let mut con = c.must_connect(leader);
        for i in 0..400 {
            let (key, value) = (format!("big-{i}"), format!("{i:04}{}", "v".repeat(1020)));
            if let Err(e) = try_set(&mut con, &key, &value) {
                c.fail(&format!("SET {key} with one follower down: {e}"));
            }
            kvs.push((key, value));
        }
    }

    {
        phase("RAFT.SNAPSHOT on the leader purges its log past the follower's");
        let mut con = c.must_connect(leader);
        let r: redis::Value = redis::cmd("RAFT.SNAPSHOT").query(&mut con).unwrap();
        assert_eq!(r, redis::Value::Okay);
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
        phase("restart the follower: it catches up by a snapshot sent in many chunks");
        c.restart(follower);
        c.must_wait(
            Duration::from_secs(60),
            "`snapshot installed` in the restarted follower's log",
            |c| {
                let installed = c.snapshot_indexes_since_start(follower, "snapshot installed");
                if installed.iter().any(|&i| i > follower_last) {
                    Ok(())
                } else {
                    Err(format!("installed since restart: {installed:?}"))
                }
            },
        );
        c.must_read_all(follower, &kvs, Duration::from_secs(30));
        let log = c.log_since_start(leader);
        let sent = log
            .lines()
            .filter(|l| l.contains("snapshot sent in chunks"))
            .find_map(|l| {
                let bytes = field(l, "bytes=")?;
                let chunks = field(l, "chunks=")?;
                Some((bytes, chunks))
            });
        let Some((bytes, chunks)) = sent else {
            c.fail("the leader's log has no `snapshot sent in chunks`");
        };
        eprintln!("           snapshot: {bytes} bytes in {chunks} chunks");
        assert!(bytes > 400 * 1024, "snapshot of {bytes} bytes");
        assert_eq!(
            chunks,
            bytes.div_ceil(CHUNK as u64),
            "chunks of {CHUNK} bytes"
        );
    }
}

/// The number after `name` in a log line.
fn field(line: &str, name: &str) -> Option<u64> {
    let rest = &line[line.find(name)? + name.len()..];
    let end = rest
        .find(|ch: char| !ch.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}
