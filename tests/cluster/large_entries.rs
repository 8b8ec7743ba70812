//! Replication of large values when a follower has fallen behind (ReplicationReadBound,
//! `src/raft/log_store.rs`; AppendBytesBound, `src/raft/network.rs`, behind it).
//!
//! openraft asks for up to 300 entries per AppendEntries whatever their size; redraft reads at
//! most 64 MiB of entries for one (and would cut a larger batch to that and answer for the
//! prefix), so a follower that missed many large writes catches up in several frames instead
//! of being sent one frame larger than a peer accepts (1 GiB) forever. Here: a follower
//! frozen while 80 values of 1 MiB are acknowledged (80 MiB of entries) catches up after it
//! resumes — a leader's log shows a read limited to the frame budget — and serves every value.

use crate::common;

use std::time::Duration;

use common::{phase, try_get, Cluster};

#[test]
fn a_follower_behind_by_more_than_one_frame_budget_catches_up() {
    let mut c = Cluster::start();
    let leader = c.must_leader(Duration::from_secs(20));
    let follower = c.ids().into_iter().find(|&i| i != leader).unwrap();
    phase(&format!(
        "SIGSTOP follower {follower}; 80 SETs of 1 MiB through leader {leader}"
    ));
    c.pause(follower);
    let mut con = c.must_connect(leader);
    let value = |i: usize| format!("{i:04}").repeat(256 * 1024);
    for i in 0..80 {
        let ok: String = redis::cmd("SET")
            .arg(format!("big{i}"))
            .arg(value(i))
            .query(&mut con)
            .unwrap_or_else(|e| panic!("SET big{i}: {e}"));
        assert_eq!(ok, "OK");
    }
    c.resume(follower);
    phase("the follower catches up: every value, read locally (stale) on it");
    let mut f = c.must_connect(follower);
    let _: String = redis::cmd("READMODE").arg("stale").query(&mut f).unwrap();
    c.must_wait(
        Duration::from_secs(60),
        "the follower to apply big79",
        |_| match try_get(&mut f, "big79")? {
            Some(v) if v == value(79) => Ok(()),
            other => Err(format!("big79 is {} bytes", other.map_or(0, |v| v.len()))),
        },
    );
    for i in 0..80 {
        let got = try_get(&mut f, &format!("big{i}")).unwrap();
        assert!(
            got.as_deref() == Some(value(i).as_str()),
            "big{i} on the follower"
        );
    }
    // Whichever node led the catch-up: on a loaded machine the other follower may elect
    // itself while the leader reads 80 MiB back from its log (seen in a full-suite run), and
    // then the new leader sends the backlog.
    assert!(
        c.ids()
            .into_iter()
            .any(|id| c.log_contains(id, "log read for replication limited to the frame budget")),
        "the catch-up read the backlog whole: the test no longer covers ReplicationReadBound"
    );
}
