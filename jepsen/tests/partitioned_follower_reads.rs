//! Reads on a follower cut off by a real network partition (DESIGN §4), with the
//! harness's network namespaces and iptables rules (`db.rs`).
//!
//! A follower F is partitioned from both other nodes; the majority acknowledges a new value.
//! Then on F:
//! - a `stale` read returns the old value (it is allowed to) and INFO `# Reads` says so:
//!   `reads_stale_unsynced` counts it and `leader_in_touch` is 0;
//! - `linearizable` and `lease` reads fail with an error (TRYAGAIN) instead of answering the
//!   old value;
//! - after the partition heals, F catches up and every mode reads the new value.
//!
//! Needs root, `ip` and `iptables` (CI installs them; `scripts/jepsen-ci.sh`), and the redraft
//! binary: `$REDRAFT_BIN`, else `target/debug/redraft` (built by `cargo build` / `cargo test`).

mod support;

use std::time::Duration;

use jepsen::db::{Db, DbOpts};
use jepsen::resp::Reply;
use support::{bulk, netns_run_dir, three_nodes, wait_for};

const IO: Duration = Duration::from_secs(5);

async fn call(addr: &str, mode: &str, args: &[&str]) -> Result<Reply, String> {
    support::call(addr, mode, args, IO).await
}

async fn info_reads(addr: &str) -> Result<Vec<(String, String)>, String> {
    match call(addr, "stale", &["INFO", "reads"]).await? {
        Reply::Bulk(Some(text)) => Ok(String::from_utf8_lossy(&text)
            .lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.to_string(), v.trim().to_string()))
            .collect()),
        other => Err(format!("INFO reads answered {other:?}")),
    }
}

fn field(info: &[(String, String)], name: &str) -> u64 {
    info.iter()
        .find(|(k, _)| k == name)
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or_else(|| panic!("INFO reads has no numeric {name}: {info:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_follower_serves_stale_reads_and_says_so_but_no_linearizable_ones() {
    let run_dir = netns_run_dir("pfr");
    let mut db = Db::setup(DbOpts {
        election_timeout_ms: 300,
        ..three_nodes(&run_dir, true)
    })
    .expect("set up namespaces and config");
    db.start_all().expect("start the nodes");
    let addrs = db.client_addrs();
    let addr = |id: u64| addrs.iter().find(|(i, _)| *i == id).unwrap().1.clone();

    let leader = wait_for(Duration::from_secs(20), "a leader", || async {
        for (id, a) in &addrs {
            if let Ok(Reply::Array(Some(r))) = call(a, "stale", &["ROLE"]).await {
                if r.first() == Some(&bulk("master")) {
                    return Ok(*id);
                }
            }
        }
        Err("no master".into())
    })
    .await;
    let f = addrs
        .iter()
        .map(|(i, _)| *i)
        .find(|&i| i != leader)
        .unwrap();
    let others: Vec<u64> = addrs.iter().map(|(i, _)| *i).filter(|&i| i != f).collect();
    eprintln!("leader {leader}, partitioned follower {f}");

    let (la, fa) = (addr(leader), addr(f));
    wait_for(Duration::from_secs(10), "SET k old", || {
        call(&la, "linearizable", &["SET", "k", "old"])
    })
    .await;
    wait_for(
        Duration::from_secs(10),
        "the follower to apply k=old",
        || async {
            match call(&fa, "stale", &["GET", "k"]).await? {
                r if r == bulk("old") => Ok(()),
                r => Err(format!("{r:?}")),
            }
        },
    )
    .await;

    db.partition(&[(f, others[0]), (f, others[1])])
        .expect("cut the follower off");
    let acked = wait_for(
        Duration::from_secs(15),
        "SET k new acknowledged by the majority",
        || {
            let la = la.clone();
            async move {
                match call(&la, "linearizable", &["SET", "k", "new"]).await? {
                    Reply::Simple(s) if s == "OK" => Ok(()),
                    r => Err(format!("{r:?}")),
                }
            }
        },
    )
    .await;
    let _: () = acked;

    // Stale: the old value, and INFO says the node is out of touch once a few election
    // timeouts have passed without AppendEntries.
    let info = wait_for(
        Duration::from_secs(10),
        "a stale read on the cut-off follower counted as unsynced",
        || async {
            let got = call(&fa, "stale", &["GET", "k"]).await?;
            assert_eq!(
                got,
                bulk("old"),
                "the cut-off follower cannot have applied the new value"
            );
            let info = info_reads(&fa).await?;
            if field(&info, "reads_stale_unsynced") >= 1 {
                Ok(info)
            } else {
                Err(format!("{info:?}"))
            }
        },
    )
    .await;
    assert_eq!(field(&info, "leader_in_touch"), 0, "{info:?}");
    assert!(field(&info, "reads_stale") >= 1, "{info:?}");
    let contact = info
        .iter()
        .find(|(k, _)| k == "leader_last_contact_ms")
        .map(|(_, v)| v.clone())
        .unwrap();
    assert!(
        contact.parse::<i64>().unwrap() >= 300,
        "leader_last_contact_ms:{contact}"
    );

    for mode in ["linearizable", "lease"] {
        match call(&fa, mode, &["GET", "k"]).await {
            Ok(Reply::Error(e)) => assert!(e.starts_with("TRYAGAIN"), "{mode}: {e}"),
            Err(e) => panic!("{mode} GET on the cut-off follower: I/O error {e}"),
            Ok(r) => panic!(
                "{mode} GET on the cut-off follower answered {r:?}: it must fail, not answer \
                 (the new value cannot be there, and the old one would be stale)"
            ),
        }
    }

    db.heal_network().expect("heal");
    for mode in ["stale", "linearizable", "lease"] {
        wait_for(
            Duration::from_secs(15),
            &format!("a {mode} read of the new value on the healed follower"),
            || async {
                match call(&fa, mode, &["GET", "k"]).await? {
                    r if r == bulk("new") => Ok(()),
                    r if r == bulk("old") && mode != "stale" => {
                        panic!("{mode} read answered the old value after the heal")
                    }
                    r => Err(format!("{r:?}")),
                }
            },
        )
        .await;
    }
    let info = info_reads(&fa).await.unwrap();
    assert_eq!(field(&info, "leader_in_touch"), 1, "{info:?}");
    db.teardown();
    let _ = std::fs::remove_dir_all(&run_dir);
}
