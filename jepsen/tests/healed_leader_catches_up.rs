//! A leader cut off by a real partition and then healed catches up within a bound
//! (HealedLeaderCatchesUp), on real `redraft` processes in network namespaces.
//!
//! Each round, on three nodes: the leader L is cut from both followers (`iptables DROP`, so
//! its peer connections stay half-open); the two others elect a leader and acknowledge writes;
//! the partition heals; L must apply the last acknowledged write within [`CATCH_UP`]. A stuck
//! round prints every node's `INFO raft` before failing, and leaves the nodes' logs in the run
//! directory (`REDRAFT_JEPSEN_LOG=info,openraft=debug` for more).
//!
//! Needs root, `ip` and `iptables` (CI installs them; `scripts/jepsen-ci.sh`), and the redraft
//! binary: `$REDRAFT_BIN`, else `target/debug/redraft`.

mod support;

use std::time::{Duration, Instant};

use jepsen::db::{Db, DbOpts};
use jepsen::nemesis::find_leader;
use jepsen::resp::Reply;
use support::{bulk, call, netns_run_dir, three_nodes};

const ROUNDS: u32 = 6;
/// How long a healed old leader may take to apply the majority's last write.
const CATCH_UP: Duration = Duration::from_secs(10);

/// Polls `f` every 50 ms until it returns `Ok`, or returns the last error after `timeout`.
async fn wait_for<T, F, Fut>(timeout: Duration, mut f: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    let mut last = String::from("never tried");
    while Instant::now() < deadline {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(last)
}

/// Every node's `INFO raft`, for the failure message.
async fn info_all(addrs: &[(u64, String)]) -> String {
    let mut out = String::new();
    for (id, addr) in addrs {
        let info = match call(addr, "stale", &["INFO", "raft"], Duration::from_secs(2)).await {
            Ok(Reply::Bulk(Some(t))) => String::from_utf8_lossy(&t).replace("\r\n", " "),
            other => format!("{other:?}"),
        };
        out.push_str(&format!("\n  node {id}: {info}"));
    }
    out
}

/// Writes `value` through the leader, not `exclude`, to the key named `value`; returns the
/// leader. A key per value: a write that timed out is uncertain and may still commit later, so
/// a later write to a shared key could be overwritten by an earlier one.
async fn write_through_leader(
    addrs: &[(u64, String)],
    exclude: Option<u64>,
    value: &str,
) -> Result<u64, String> {
    let io = Duration::from_secs(2);
    wait_for(Duration::from_secs(30), || async {
        let leader = find_leader(addrs, Duration::from_millis(500))
            .await
            .ok_or("no leader")?;
        if Some(leader) == exclude {
            return Err(format!("node {leader} still leads"));
        }
        let addr = &addrs.iter().find(|(i, _)| *i == leader).unwrap().1;
        match call(addr, "linearizable", &["SET", value, value], io).await? {
            Reply::Simple(s) if s == "OK" => Ok(leader),
            r => Err(format!("SET on {leader}: {r:?}")),
        }
    })
    .await
}

/// Waits until node `id` at `addr` has applied the write of `value`, within [`CATCH_UP`].
async fn applied(id: u64, addr: &str, value: &str) -> Result<Duration, String> {
    let t = Instant::now();
    wait_for(CATCH_UP, || async {
        match call(addr, "stale", &["GET", value], Duration::from_secs(2)).await? {
            r if r == bulk(value) => Ok(t.elapsed()),
            r => Err(format!("node {id} reads {r:?}")),
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_and_healed_applies_the_new_leaders_writes() {
    let run_dir = netns_run_dir("hl");
    let mut db = Db::setup(DbOpts {
        heartbeat_ms: 100,
        election_timeout_ms: 1000,
        read_mode: "lease".into(),
        ..three_nodes(&run_dir, true)
    })
    .expect("set up namespaces and config");
    db.start_all().expect("start the nodes");
    let addrs = db.client_addrs();
    let addr = |id: u64| addrs.iter().find(|(i, _)| *i == id).unwrap().1.clone();

    let mut leader = write_through_leader(&addrs, None, "start")
        .await
        .unwrap_or_else(|e| panic!("no first write: {e}"));
    for round in 1..=ROUNDS {
        for (id, a) in &addrs {
            if let Err(e) = applied(*id, a, if round == 1 { "start" } else { "healed" }).await {
                panic!(
                    "round {round}: node {id} did not apply before the cut: {e}{}",
                    info_all(&addrs).await
                );
            }
        }
        let others: Vec<u64> = addrs
            .iter()
            .map(|(i, _)| *i)
            .filter(|&i| i != leader)
            .collect();
        db.partition(&[(leader, others[0]), (leader, others[1])])
            .expect("cut the leader off");
        let cut_at = Instant::now();
        // Heal as soon as the majority has written once: the new leader's first connections to
        // the old one are then still being made (a SYN dropped, retried after the heal).
        let new_leader = write_through_leader(&addrs, Some(leader), &format!("r{round}"))
            .await
            .unwrap_or_else(|e| panic!("round {round}: the majority did not write: {e}"));
        eprintln!(
            "round {round}: node {leader} cut off; node {new_leader} leads and wrote at +{:?}",
            cut_at.elapsed()
        );
        db.heal_network().expect("heal");
        let healed_at = Instant::now();
        let last = format!("r{round}-healed");
        write_through_leader(&addrs, Some(leader), &last)
            .await
            .unwrap_or_else(|e| panic!("round {round}: no write after the heal: {e}"));
        match applied(leader, &addr(leader), &last).await {
            Ok(took) => eprintln!("  node {leader} applied {last} {took:?} after the heal"),
            Err(e) => panic!(
                "round {round}: old leader {leader} did not apply {last} within {CATCH_UP:?} \
                 of the heal ({e}); logs in {}{}",
                run_dir.display(),
                info_all(&addrs).await
            ),
        }
        // The next round starts from a settled cluster and cuts whoever leads now.
        leader = write_through_leader(&addrs, None, "healed")
            .await
            .unwrap_or_else(|e| panic!("round {round}: no write after the heal: {e}"));
        eprintln!("  settled {:?} after the heal", healed_at.elapsed());
    }
    db.teardown();
    let _ = std::fs::remove_dir_all(&run_dir);
}
