//! Lease reads when the nodes' clocks run at different rates (libfaketime, `src/clock.rs`), on
//! real `redraft` processes in network namespaces with real partitions: the clock assumption of
//! lease reads (README "Read modes") holds up to its margin, and the harness's clock fault is
//! strong enough to break a lease when clocks drift past it.
//!
//! The lease (`src/raft/read.rs`, LeaseBound): the leader answers alone while its last
//! quorum-acknowledged heartbeat was *sent* less than `window − lease_drift_margin_ms` ago by
//! its clock; a follower refuses to vote for `window` (3/5 of `election_timeout_ms`) after it
//! *received* one, by its own clock. With heartbeat 100 ms and election timeout 6000 ms the
//! window is 3.6 s and the lease 2.4 s, so the rates may differ by a factor of 1.5 before a
//! follower's refusal can end before the leader's lease.
//!
//! The scenario, node 1 the leader L, node 2 the follower F1, node 3 the campaigner F2 (the
//! shape of `lease_restart.rs`, without the kill):
//!
//! ```text
//! t0-8 s     cut L–F2          F2 hears no leader and campaigns every 2.4-3.6 s (its clock);
//!                              F1 refuses while it hears from L
//! t0         cut L–F1          L is alone; its lease runs until t0 + 2.4 s / rate(L)
//! meanwhile  GET k on L in lease mode every 20 ms: when L stops answering is its lease's
//!            length in real time
//! then       SET k new through F1 until acknowledged (F2 leads once F1's refusal, 3.6 s /
//!            rate(F1) after t0, is over)
//!            GET k on L in lease mode: the old value here is a stale read
//! ```
//!
//! - Within the margin: L at 1/1.2 of real time (lease 2.88 s), the followers at 1.2 (refusal
//!   3.0 s): a factor of 1.44. The old value must never come back, and L's last lease read must
//!   have been asked within 2.88 s of the cut. The second check does not depend on when F2 wins
//!   (in these runs 5-6 s after the cut, after both): a lease that ignored the drift margin
//!   (3.6 s of L's clock, 4.32 s real) would fail it.
//! - Past it (the control): L at 0.25 (lease 9.6 s), the followers at true time (refusal 3.6 s,
//!   F2 campaigning every 2.4-3.6 s): F2 leads and acknowledges the write while L's lease still
//!   holds, and L answers the old value. If this ever stops happening, the clock fault no longer
//!   reaches the node's timers and the first test proves nothing.
//!
//! Needs root, `ip`, `iptables` and libfaketime (CI installs them; `scripts/test.sh`), and the
//! redraft binary: `$REDRAFT_BIN`, else `target/debug/redraft`.

mod support;

use std::time::{Duration, Instant};

use jepsen::clock::{check_rates, ClockOpts, DEFAULT_LIB};
use jepsen::db::{Db, DbOpts};
use jepsen::nemesis::find_leader;
use jepsen::resp::Reply;
use support::{bulk, call, netns_run_dir, settle, three_nodes, wait_for};

/// The tests of this file one at a time: a cluster's namespaces and bridge are named after the
/// process (UniqueNames), so two at once would collide.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A three-node cluster in lease mode whose node `i` runs its clocks at `rates[i - 1]`.
async fn cluster(tag: &str, rates: [f64; 3]) -> (Db, Vec<(u64, String)>) {
    let run_dir = netns_run_dir(tag);
    let mut db = Db::setup(DbOpts {
        heartbeat_ms: 100,
        election_timeout_ms: 6000,
        read_mode: "lease".into(),
        clock: Some(ClockOpts {
            lib: DEFAULT_LIB.into(),
            rates: rates.to_vec(),
            drift: 0.0,
            seed: 0,
        }),
        ..three_nodes(&run_dir, true)
    })
    .expect("set up namespaces, config and clocks (is libfaketime installed?)");
    db.start_all().expect("start the nodes");
    let addrs = db.client_addrs();
    settle(&addrs, "warmup", "1").await;
    // ClockFaultShown: the nodes' clocks do run at the rates under test.
    let starts = db.clock_starts().to_vec();
    let shown = check_rates(&addrs, &starts)
        .await
        .expect("every node's clock at its rate");
    eprintln!("clocks: {}", shown.join(", "));
    (db, addrs)
}

/// Makes node 1 the leader (`RAFT.TRANSFER 1` when another node leads) with `key = old`
/// applied everywhere. Each check writes a fresh marker first, so every node has the whole log
/// when the cuts begin: a node that missed the last entry could never win an election.
async fn node1_leads(addrs: &[(u64, String)], key: &str, old: &str) {
    let io = Duration::from_secs(2);
    for round in 0..5 {
        let leader = settle(addrs, &format!("{key}-lead{round}"), "1").await;
        if leader == 1 && settle(addrs, key, old).await == 1 {
            return;
        }
        let addr = &addrs.iter().find(|(i, _)| *i == leader).unwrap().1;
        let r = call(addr, "linearizable", &["RAFT.TRANSFER", "1"], io).await;
        eprintln!("  RAFT.TRANSFER 1 on node {leader}: {r:?}");
        wait_for(Duration::from_secs(20), "node 1 to lead", || async {
            match find_leader(addrs, Duration::from_millis(500)).await {
                Some(1) => Ok(()),
                other => Err(format!("leader {other:?}")),
            }
        })
        .await;
    }
    panic!("node 1 did not stay the leader after five transfers");
}

/// What one run of the scenario saw.
struct Seen {
    /// When the write through F1 was acknowledged, after the cut L–F1.
    acked: Duration,
    /// Node 1's answer to the lease `GET` right after.
    read: Result<Reply, String>,
    old: Reply,
    /// Lease `GET`s node 1 answered after the cut, asked every 20 ms until the write was
    /// acknowledged, and when the last of them was asked.
    served: u32,
    last_served: Duration,
}

impl Seen {
    fn stale(&self) -> bool {
        self.read.as_ref() == Ok(&self.old)
    }
}

/// Asks node 1 for lease reads of `key` every 20 ms until `stop`: how many it answered, and
/// when (after `t0`) the last answered one was asked.
async fn probe_lease(
    addr: String,
    key: String,
    t0: Instant,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> (u32, Duration) {
    let (mut served, mut last) = (0, Duration::ZERO);
    while !stop.load(std::sync::atomic::Ordering::Relaxed) && t0.elapsed() < Duration::from_secs(30)
    {
        // The time the read was asked: the node checked its lease after it, so a slow answer
        // on a busy machine cannot make a correct lease look long.
        let asked = t0.elapsed();
        let r = call(&addr, "lease", &["GET", &key], Duration::from_millis(300)).await;
        if matches!(r, Ok(Reply::Bulk(_))) {
            served += 1;
            last = asked;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (served, last)
}

async fn scenario(db: &mut Db, addrs: &[(u64, String)], attempt: u32) -> Seen {
    let addr = |id: u64| addrs.iter().find(|(i, _)| *i == id).unwrap().1.clone();
    // A key per attempt: SETs abandoned after 400 ms are uncertain and may commit later.
    let key = format!("k{attempt}");
    let (old, new) = (format!("old{attempt}"), format!("new{attempt}"));
    node1_leads(addrs, &key, &old).await;
    db.partition(&[(1, 3)]).expect("cut L–F2");
    tokio::time::sleep(Duration::from_secs(8)).await;
    db.partition(&[(1, 2)]).expect("cut L–F1");
    // After the rule is in place: node 1's last acknowledged heartbeat was sent before t0.
    let t0 = Instant::now();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let probe = tokio::spawn(probe_lease(addr(1), key.clone(), t0, stop.clone()));
    let short = Duration::from_millis(400);
    let (acked, read) = loop {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "attempt {attempt}: no write acknowledged through node 2 within 30 s of the cut"
        );
        let Ok(Reply::Simple(ok)) =
            call(&addr(2), "linearizable", &["SET", &key, &new], short).await
        else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        assert_eq!(ok, "OK");
        let acked = t0.elapsed();
        break (acked, call(&addr(1), "lease", &["GET", &key], short).await);
    };
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (served, last_served) = probe.await.expect("the lease probe");
    eprintln!(
        "  attempt {attempt}: node 1 answered {served} lease GETs after the cut, the last asked at \
         t0+{last_served:?}; SET {key} {new} acknowledged at t0+{acked:?}; lease GET on node 1 \
         then: {read:?}"
    );
    db.heal_network().expect("heal");
    Seen {
        acked,
        read,
        old: bulk(&old),
        served,
        last_served,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_reads_stay_linearizable_with_clock_rates_apart_by_less_than_the_margin() {
    let _serial = SERIAL.lock().await;
    let slow = 1.0 / 1.2;
    let (mut db, addrs) = cluster("lcw", [slow, 1.2, 1.2]).await;
    for attempt in 1..=3 {
        let seen = scenario(&mut db, &addrs, attempt).await;
        assert!(
            !seen.stale(),
            "stale lease read with clocks within the margin: node 1 (clock x{slow:.3}, lease \
             2.88 s) answered the old value after the write was acknowledged at t0+{:?} \
             (node 2's clock x1.2 refuses votes for 3.0 s)",
            seen.acked
        );
        // The lease itself, timed in real time: node 1 answered lease reads after the cut (the
        // probe saw a live lease), and stopped within 2.4 s of its clock, 2.88 s of real time,
        // before node 2's refusal (3.6 s of its clock, 3.0 s real) could end. A lease without
        // the drift margin (3.6 s of node 1's clock, 4.32 s real) fails here whatever the
        // elections do.
        assert!(
            seen.served > 0,
            "node 1 answered no lease read after the cut"
        );
        assert!(
            seen.last_served < Duration::from_millis(2880 + 100),
            "node 1 (clock x{slow:.3}) answered a lease read asked at t0+{:?}, past its lease of 2.4 s \
             of its clock (2.88 s real) from its last heartbeat before t0",
            seen.last_served
        );
    }
    let run_dir = db.opts.run_dir.clone();
    db.teardown();
    let _ = std::fs::remove_dir_all(run_dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_clock_slower_than_the_margin_allows_does_serve_stale_lease_reads() {
    let _serial = SERIAL.lock().await;
    let (mut db, addrs) = cluster("lcb", [0.25, 1.0, 1.0]).await;
    let mut stale = None;
    for attempt in 1..=3 {
        let seen = scenario(&mut db, &addrs, attempt).await;
        if seen.stale() {
            stale = Some(seen.acked);
            break;
        }
    }
    let run_dir = db.opts.run_dir.clone();
    db.teardown();
    assert!(
        stale.is_some(),
        "node 1's clock at x0.25 (lease 9.6 s of real time against 3.6 s of vote refusal) never \
         served a stale lease read in 3 attempts: the clock fault does not reach its lease"
    );
    let _ = std::fs::remove_dir_all(run_dir);
}
