//! The plain power-cut check: one node with its data dir on lossyfs, N acknowledged `SET`s one
//! after the other, a power cut (kill -9 and every unsynced byte dropped), a restart, and a
//! `GET` of every key. **DurableBeforeAck** says all N are there. With a log that never
//! fsyncs, none are (measured with sled: 0 of 200).
//!
//! Used by `redraft-jepsen --power-cut-sets N` and `tests/power_loss.rs`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;

use crate::db::{Db, DbOpts};
use crate::resp::{Conn, Reply};

/// What to run.
#[derive(Clone, Debug)]
pub struct PowerCutOpts {
    pub bin: PathBuf,
    pub lossyfs: PathBuf,
    pub run_dir: PathBuf,
    pub sets: u64,
    /// `crash-torn` instead of `crash`.
    pub torn: bool,
    /// `REDRAFT_FAILPOINTS` for the node.
    pub failpoints: Option<String>,
}

/// What came back.
#[derive(Clone, Debug, Serialize)]
pub struct PowerCutReport {
    pub acknowledged: u64,
    pub kept: u64,
    /// Acknowledged keys missing or with another value after the restart (first 20).
    pub lost: Vec<String>,
    /// lossyfs counters just before the cut (file and directory syncs the node made).
    pub disk_before: serde_json::Value,
    /// What the cut dropped.
    pub dropped: serde_json::Value,
}

impl PowerCutReport {
    pub fn passed(&self) -> bool {
        self.acknowledged > 0 && self.kept == self.acknowledged
    }
}

const IO: Duration = Duration::from_secs(5);

async fn get(addr: &str, key: &str) -> Result<Option<Vec<u8>>> {
    let mut c = Conn::connect(addr, IO)
        .await
        .map_err(|e| anyhow!("connect {addr}: {e}"))?;
    match c
        .call(&[b"GET", key.as_bytes()], IO)
        .await
        .map_err(|e| anyhow!("GET {key}: {e}"))?
    {
        Reply::Bulk(v) => Ok(v),
        other => bail!("GET {key}: {other:?}"),
    }
}

async fn wait_ready(addr: &str, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        match get(addr, "__powercut_probe__").await {
            Ok(_) => return Ok(()),
            Err(e) if Instant::now() > deadline => {
                bail!("the node did not answer GET within {timeout:?}: {e:#}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Runs the check (needs root and /dev/fuse for the mount).
pub async fn run(o: &PowerCutOpts) -> Result<PowerCutReport> {
    let mut db = Db::setup(DbOpts {
        bin: o.bin.clone(),
        nodes: 1,
        run_dir: o.run_dir.clone(),
        netns: false,
        heartbeat_ms: 50,
        election_timeout_ms: 500,
        write_timeout_ms: 5000,
        snapshot_every: 100_000,
        read_mode: "linearizable".into(),
        peer_tls: false,
        clock: None,
        history_revisions: None,
        lossyfs: Some(o.lossyfs.clone()),
        env: o
            .failpoints
            .iter()
            .map(|f| ("REDRAFT_FAILPOINTS".to_string(), f.clone()))
            .collect(),
    })
    .context("set up the node")?;
    let addr = db.client_addrs()[0].1.clone();
    db.start(1)?;
    wait_ready(&addr, Duration::from_secs(30)).await?;
    let mut acked = Vec::new();
    let mut c = Conn::connect(&addr, IO)
        .await
        .map_err(|e| anyhow!("connect {addr}: {e}"))?;
    for i in 0..o.sets {
        let (k, v) = (format!("pc:{i}"), format!("v{i}"));
        match c.call(&[b"SET", k.as_bytes(), v.as_bytes()], IO).await {
            Ok(Reply::Simple(s)) if s == "OK" => acked.push((k, v)),
            Ok(other) => bail!("SET {k} answered {other:?}"),
            Err(e) => bail!("SET {k}: {e}"),
        }
    }
    drop(c);
    let disk_before = db.disk_stats(1)?;
    let mode = if o.torn {
        crate::db::CrashMode::Torn
    } else {
        crate::db::CrashMode::Clean
    };
    let dropped = db.power_cut(1, mode)?;
    db.start(1)?;
    wait_ready(&addr, Duration::from_secs(30))
        .await
        .context("after the power cut")?;
    let mut kept = 0;
    let mut lost = Vec::new();
    for (k, v) in &acked {
        match get(&addr, k).await? {
            Some(got) if got == v.as_bytes() => kept += 1,
            other => {
                if lost.len() < 20 {
                    lost.push(format!(
                        "{k} = {:?}",
                        other.map(|b| String::from_utf8_lossy(&b).into_owned())
                    ))
                }
            }
        }
    }
    db.teardown();
    Ok(PowerCutReport {
        acknowledged: acked.len() as u64,
        kept,
        lost,
        disk_before,
        dropped,
    })
}
