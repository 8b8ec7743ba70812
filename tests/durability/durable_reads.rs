//! DurableReads (`src/raft/commit_gate.rs`): a read's reply leaves only once the node's
//! committed index is durable up to what it has applied, so a node never answers a read with a
//! state its disk could lose at a power cut; a write's reply and a watch event do not wait for
//! that sync (the write is already fsynced on a majority; a watcher resumes by revision).
//!
//! The failpoint `committed_gate_delay_ms=N` raises the gate N ms after each committed sync,
//! which makes the two kinds of reply tell apart from outside the process: `INFO raft` shows
//! `raft_durable_commit_index` below `raft_applied_index` for those N ms.

use crate::common;

use std::thread;
use std::time::{Duration, Instant};

use common::single::Single;

/// Long enough that a reply which did not wait is seen before the gate rises; shorter than
/// the `write_timeout_ms` (5 s) a read waits for it at most.
const GATE_DELAY: Duration = Duration::from_secs(3);

fn raft_field(con: &mut redis::Connection, field: &str) -> u64 {
    let info: String = redis::cmd("INFO").arg("raft").query(con).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("INFO raft has no {field}: {info}"))
        .trim()
        .parse()
        .unwrap()
}

/// (applied, durable) as `INFO raft` reports them; INFO is not a read of the keyspace and
/// does not wait.
fn indexes(con: &mut redis::Connection) -> (u64, u64) {
    (
        raft_field(con, "raft_applied_index"),
        raft_field(con, "raft_durable_commit_index"),
    )
}

/// Waits until the gate covers everything applied (the start's own entries). A read asks
/// for the sync on a quiet log (CommittedRidesNextSync: no sync is queued for a committed
/// record alone).
fn settle(con: &mut redis::Connection) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let _: Option<String> = redis::cmd("GET").arg("settle").query(con).unwrap();
        let (applied, durable) = indexes(con);
        if durable >= applied {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "gate stuck at {durable} < {applied}"
        );
        thread::sleep(Duration::from_millis(100));
    }
}

/// (applied, durable) once `INFO raft` shows an applied index the gate does not cover yet,
/// which it does within the gate's delay only if the reply just received did not wait for
/// the gate (openraft's metrics, which INFO reports, may show the apply a moment late).
fn uncovered(con: &mut redis::Connection, what: &str) -> (u64, u64) {
    let deadline = Instant::now() + GATE_DELAY / 2;
    loop {
        let (applied, durable) = indexes(con);
        if durable < applied {
            return (applied, durable);
        }
        assert!(
            Instant::now() < deadline,
            "{what}: its reply waited for its committed sync (applied {applied}, durable {durable})"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_read_waits_for_the_durable_committed_index_a_write_and_a_watch_event_do_not() {
    let node = Single::start_with_env(
        "",
        &[(
            "REDRAFT_FAILPOINTS".to_string(),
            format!("committed_gate_delay_ms={}", GATE_DELAY.as_millis()),
        )],
    );
    let mut con = node.must_connect();
    settle(&mut con);

    // A write's reply: before the gate covers its entry.
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v1")
        .query(&mut con)
        .unwrap();
    uncovered(&mut con, "SET");

    // A read's reply, in every read mode: only once the gate covers what was applied.
    for mode in ["linearizable", "lease", "stale"] {
        let _: () = redis::cmd("READMODE").arg(mode).query(&mut con).unwrap();
        let _: () = redis::cmd("SET")
            .arg("k")
            .arg(mode)
            .query(&mut con)
            .unwrap();
        let (applied, _) = uncovered(&mut con, "SET");
        let got: String = redis::cmd("GET").arg("k").query(&mut con).unwrap();
        assert_eq!(got, mode);
        let (_, durable) = indexes(&mut con);
        assert!(
            durable >= applied,
            "{mode}: GET answered before the committed index {applied} was durable ({durable})"
        );
    }

    // A watch event: delivered before the gate covers it.
    settle(&mut con);
    let after: u64 = {
        let v: Vec<redis::Value> = redis::cmd("REVISION").query(&mut con).unwrap();
        redis::from_redis_value(&v[1]).unwrap()
    };
    let mut watcher = node.must_connect();
    let reader = thread::spawn(move || {
        let v: redis::Value = redis::cmd("XREAD")
            .arg("BLOCK")
            .arg(20_000)
            .arg("STREAMS")
            .arg("__watch__:w")
            .arg(after)
            .query(&mut watcher)
            .unwrap();
        (v, uncovered(&mut watcher, "XREAD"))
    });
    thread::sleep(Duration::from_millis(200));
    let _: () = redis::cmd("SET").arg("w").arg("x").query(&mut con).unwrap();
    let (event, _) = reader.join().unwrap();
    assert!(
        format!("{event:?}").contains("__watch__:w"),
        "no event: {event:?}"
    );
}
