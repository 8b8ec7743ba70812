//! What the harness's tests against real nodes share: where the redraft binary under test is,
//! and one command on a fresh connection in a given read mode.

#![allow(dead_code)] // each test binary uses its own part

use std::path::PathBuf;
use std::time::Duration;

use jepsen::db::DbOpts;
use jepsen::nemesis::find_leader;
use jepsen::resp::{Conn, Reply};

/// The redraft binary under test: `$REDRAFT_BIN`, else `target/debug/redraft` (which
/// `cargo test --workspace` builds).
pub fn redraft_bin() -> PathBuf {
    let bin = std::env::var_os("REDRAFT_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug/redraft")
        });
    assert!(
        bin.exists(),
        "{} not found: build it first (`cargo build --bin redraft`) or set REDRAFT_BIN",
        bin.display()
    );
    bin
}

/// One command on a fresh connection in read mode `mode`, within `io` per step.
pub async fn call(addr: &str, mode: &str, args: &[&str], io: Duration) -> Result<Reply, String> {
    let mut con = Conn::connect(addr, io).await.map_err(|e| e.to_string())?;
    let r = con
        .call(&[b"READMODE", mode.as_bytes()], io)
        .await
        .map_err(|e| e.to_string())?;
    if r != Reply::Simple("OK".into()) {
        return Err(format!("READMODE {mode}: {r:?}"));
    }
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    con.call(&args, io).await.map_err(|e| e.to_string())
}

/// Checks that network namespaces can be made (root, `ip`, `iptables`) and returns an empty
/// run directory `redraft-<tag>-<pid>` under the temp dir, where the nodes keep their data and
/// logs (left behind for a failed run to be read).
pub fn netns_run_dir(tag: &str) -> PathBuf {
    jepsen::db::netns_available()
        .unwrap_or_else(|e| panic!("this test needs network namespaces (root, ip, iptables): {e}"));
    let run_dir = std::env::temp_dir().join(format!("redraft-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&run_dir);
    run_dir
}

/// A bulk-string reply holding `s`.
pub fn bulk(s: &str) -> Reply {
    Reply::Bulk(Some(s.as_bytes().to_vec()))
}

/// Polls `f` every 50 ms until it returns `Ok`, or panics after `timeout` saying `what`.
pub async fn wait_for<T, F, Fut>(timeout: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = std::time::Instant::now() + timeout;
    let mut last = String::new();
    while std::time::Instant::now() < deadline {
        match f().await {
            Ok(v) => return v,
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out after {timeout:?} waiting for {what}; last: {last}");
}

/// Writes `key = value` through whichever node leads now and waits until every node has applied
/// it.
pub async fn settle(addrs: &[(u64, String)], key: &str, value: &str) -> u64 {
    let io = Duration::from_secs(2);
    let leader = wait_for(
        Duration::from_secs(30),
        "a leader that takes a write",
        || async {
            let leader = find_leader(addrs, Duration::from_millis(500))
                .await
                .ok_or("no leader")?;
            let addr = &addrs.iter().find(|(i, _)| *i == leader).unwrap().1;
            match call(addr, "linearizable", &["SET", key, value], io).await? {
                Reply::Simple(s) if s == "OK" => Ok(leader),
                r => Err(format!("SET on {leader}: {r:?}")),
            }
        },
    )
    .await;
    for (id, addr) in addrs {
        wait_for(Duration::from_secs(60), "every node to apply", || async {
            match call(addr, "stale", &["GET", key], io).await? {
                r if r == bulk(value) => Ok(()),
                r => Err(format!("node {id}: {r:?}")),
            }
        })
        .await;
    }
    leader
}

/// A three-node cluster of the binary under test in `run_dir`, in network namespaces when
/// `netns`: the options the tests share, each test overriding its timing and read mode with
/// `DbOpts { heartbeat_ms: …, ..three_nodes(…) }`.
pub fn three_nodes(run_dir: &std::path::Path, netns: bool) -> DbOpts {
    DbOpts {
        bin: redraft_bin(),
        nodes: 3,
        run_dir: run_dir.to_path_buf(),
        netns,
        heartbeat_ms: 50,
        election_timeout_ms: 500,
        write_timeout_ms: 2000,
        snapshot_every: 10_000,
        read_mode: "linearizable".into(),
        peer_tls: false,
        clock: None,
        history_revisions: None,
        lossyfs: None,
        env: Vec::new(),
    }
}
