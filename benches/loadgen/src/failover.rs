//! The `failover` workload: steady writes (the set workload's workers, at the given
//! concurrency) while the leader is killed with SIGKILL and later restarted, both through
//! shell commands from `compare.sh` (`{node}` is the 1-based index of the leader in
//! `--endpoints`). Measured as the client sees it:
//!
//! - the timeline: successful writes per bucket (100 ms);
//! - the unavailability window: the longest gap between two consecutive successful writes
//!   (any connection) that ends after the kill;
//! - catch-up: from the restart until the restarted node serves a local read (redraft
//!   `READMODE stale`, etcd serializable) of a key written, on a live node, right after the
//!   restart command.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::args::{RunArgs, System};
use crate::client::{find_leader, Kv};
use crate::kv::{summarize, worker, Timeline};
use crate::result::Failover;

/// Runs `template` with `{node}` replaced, through `sh -c`.
async fn shell(template: &str, node: usize) -> anyhow::Result<()> {
    let cmd = template.replace("{node}", &node.to_string());
    let status = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(&cmd)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .status()
        .await
        .with_context(|| format!("run {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}

/// The longest gap between consecutive completions (µs, any order) whose end is after
/// `kill_us`: `(gap length, end of the gap)`. `(0, 0)` without such a pair.
pub fn unavailability(completions_us: &mut [u64], kill_us: u64) -> (u64, u64) {
    completions_us.sort_unstable();
    let mut best = (0, 0);
    for w in completions_us.windows(2) {
        if w[1] > kill_us && w[1] - w[0] > best.0 {
            best = (w[1] - w[0], w[1]);
        }
    }
    best
}

/// Waits until node `node` (0-based) serves `key == value` locally; returns when it did.
async fn catch_up(
    args: &RunArgs,
    node: usize,
    key: &[u8],
    value: &[u8],
    limit: Instant,
) -> Option<Instant> {
    let mode = match args.system {
        System::Etcd => "serializable",
        _ => "stale",
    };
    let mut conn: Option<Kv> = None;
    while Instant::now() < limit {
        if conn.is_none() {
            conn = Kv::connect(args.system, &args.endpoints[node], mode)
                .await
                .ok();
        }
        if let Some(c) = conn.as_mut() {
            match c.get(key).await {
                Ok(Some(v)) if v == value => return Some(Instant::now()),
                Ok(_) => {}
                Err(_) => conn = None,
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

pub async fn run(args: RunArgs) -> anyhow::Result<RunResult> {
    let args = Arc::new(args);
    let leader = find_leader(args.system, &args.endpoints).await?;
    let start = Instant::now();
    let end = start + args.duration;
    let timeline = Arc::new(Timeline::new(start, args.bucket, args.duration));
    let tasks: Vec<_> = (0..args.concurrency)
        .map(|id| tokio::spawn(worker(args.clone(), id, start, end, Some(timeline.clone()))))
        .collect();

    tokio::time::sleep_until((start + args.kill_after).into()).await;
    let kill_at = Instant::now();
    shell(&args.kill_cmd, leader + 1).await?;
    tokio::time::sleep_until((kill_at + args.restart_after).into()).await;
    let restart_at = Instant::now();
    shell(&args.restart_cmd, leader + 1).await?;
    // The marker goes to a live node (any node takes writes); retried until a leader takes it.
    let marker = format!("restart-{}-{}", std::process::id(), args.rep).into_bytes();
    let live = (leader + 1) % args.endpoints.len();
    let limit = restart_at + Duration::from_secs(60);
    let mut written = false;
    while !written && Instant::now() < limit {
        if let Ok(mut kv) = Kv::connect(args.system, &args.endpoints[live], "").await {
            written = kv.put(b"bench:failover:marker", &marker).await.is_ok();
        }
        if !written {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let caught_up = if written {
        catch_up(&args, leader, b"bench:failover:marker", &marker, limit).await
    } else {
        None
    };

    let mut reports = Vec::new();
    for t in tasks {
        reports.push(t.await?);
    }
    let mut res = summarize(&args, &reports, args.duration);
    let mut completions: Vec<u64> = reports
        .iter()
        .flat_map(|r| r.completions_us.iter().copied())
        .collect();
    let kill_us = kill_at.duration_since(start).as_micros() as u64;
    let (gap, gap_end) = unavailability(&mut completions, kill_us);
    res.failover = Some(Failover {
        bucket_ms: args.bucket.as_millis() as u64,
        ok_per_bucket: timeline
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect(),
        kill_at_ms: kill_us as f64 / 1000.0,
        restart_at_ms: restart_at.duration_since(start).as_secs_f64() * 1000.0,
        killed_node: leader + 1,
        unavailable_ms: gap as f64 / 1000.0,
        first_ok_after_kill_ms: gap_end.saturating_sub(kill_us) as f64 / 1000.0,
        catchup_ms: caught_up.map(|t| t.duration_since(restart_at).as_secs_f64() * 1000.0),
    });
    if gap == 0 {
        res.status = "failed".into();
        res.note = format!("no successful write after the kill; {}", res.note);
    }
    Ok(res)
}

use crate::result::RunResult;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gap_across_the_kill_is_the_window() {
        // Writes every ms until 1000, the kill at 1000.5, nothing until 2300, then steady.
        let mut c: Vec<u64> = (0..=1000).chain(2300..2400).map(|ms| ms * 1000).collect();
        c.reverse(); // completions arrive unsorted from many workers
        let (gap, end) = unavailability(&mut c, 1_000_500);
        assert_eq!(gap, 1_300_000);
        assert_eq!(end, 2_300_000);
        // A longer gap before the kill does not count.
        let mut c = vec![0, 5_000_000, 5_001_000, 5_100_000];
        assert_eq!(unavailability(&mut c, 5_000_500), (99_000, 5_100_000));
        assert_eq!(unavailability(&mut [], 10), (0, 0));
    }

    #[tokio::test]
    async fn shell_substitutes_the_node() {
        let dir = std::env::temp_dir().join(format!("loadgen-shell-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("out");
        shell(&format!("echo killed {{node}} > {}", f.display()), 2)
            .await
            .unwrap();
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "killed 2\n");
        assert!(shell("exit 3", 1).await.is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
