//! `redraft-loadgen fsync`: what one small `fdatasync` costs on this disk, after how long an
//! idle gap, and with how many files synced at once. A sparse write (one client's, or the
//! watch bench's put every 10 ms) finds the disk idle; a write under load finds it busy; and
//! three nodes on one machine sync three files at the same moment.
//!
//! For every writer count and gap: that many threads, each with its own file in `--dir`
//! (written with zeros and synced first, as the WAL writes its segments ahead: WrittenAhead),
//! `--rounds` times sleep the gap, meet at a barrier, then `pwrite` `--bytes` at the next offset
//! and `fdatasync` (`File::sync_data`). Prints one JSON line per combination: the latency of
//! write + sync, p50 / p90 / p99 over all writers' rounds.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Serialize;

#[derive(Serialize)]
struct Report {
    writers: usize,
    gap_us: u64,
    rounds: usize,
    bytes: usize,
    p50_us: f64,
    p90_us: f64,
    p99_us: f64,
}

/// A file of `len` zero bytes, synced (its blocks allocated and written before the test).
fn prepared(path: &Path, len: usize) -> anyhow::Result<File> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .with_context(|| format!("open {}", path.display()))?;
    f.write_all_at(&vec![0u8; len], 0)?;
    f.sync_all()?;
    Ok(f)
}

fn measure(
    dir: &Path,
    writers: usize,
    gap: Duration,
    rounds: usize,
    bytes: usize,
) -> anyhow::Result<Report> {
    let barrier = Arc::new(Barrier::new(writers));
    let mut threads = Vec::new();
    for w in 0..writers {
        let path: PathBuf = dir.join(format!("fsync-bench-{w}"));
        let f = prepared(&path, rounds * bytes)?;
        let barrier = barrier.clone();
        threads.push(std::thread::spawn(move || -> anyhow::Result<Vec<f64>> {
            let buf = vec![b'x'; bytes];
            let mut lat = Vec::with_capacity(rounds);
            for r in 0..rounds {
                std::thread::sleep(gap);
                barrier.wait();
                let t = Instant::now();
                f.write_all_at(&buf, (r * bytes) as u64)?;
                f.sync_data()?;
                lat.push(t.elapsed().as_secs_f64() * 1e6);
            }
            drop(f);
            std::fs::remove_file(&path)?;
            Ok(lat)
        }));
    }
    let mut all = Vec::with_capacity(writers * rounds);
    for t in threads {
        all.extend(t.join().map_err(|_| anyhow::anyhow!("writer panicked"))??);
    }
    all.sort_by(f64::total_cmp);
    let q = |p: f64| all[((all.len() - 1) as f64 * p).round() as usize];
    Ok(Report {
        writers,
        gap_us: gap.as_micros() as u64,
        rounds,
        bytes,
        p50_us: q(0.5),
        p90_us: q(0.9),
        p99_us: q(0.99),
    })
}

/// Runs every combination of `writers` and `gaps_us`, printing one JSON line each.
pub fn run(
    dir: &Path,
    writers: &[usize],
    gaps_us: &[u64],
    rounds: usize,
    bytes: usize,
) -> anyhow::Result<()> {
    if rounds == 0 || bytes == 0 {
        bail!("--rounds and --bytes must be at least 1");
    }
    if writers.contains(&0) {
        bail!("--writers: every count must be at least 1");
    }
    for &n in writers {
        for &gap in gaps_us {
            let r = measure(dir, n, Duration::from_micros(gap), rounds, bytes)?;
            println!("{}", serde_json::to_string(&r)?);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_writer_syncs_every_round_and_its_file_is_removed() {
        let dir = std::env::temp_dir().join(format!("loadgen-fsync-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let r = measure(&dir, 2, Duration::ZERO, 5, 16).unwrap();
        assert_eq!((r.writers, r.rounds, r.bytes), (2, 5, 16));
        assert!(r.p50_us > 0.0 && r.p50_us <= r.p90_us && r.p90_us <= r.p99_us);
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            0,
            "files left behind"
        );
        std::fs::remove_dir(&dir).unwrap();
        assert!(run(&dir, &[0], &[0], 1, 1).is_err());
        assert!(run(&dir, &[1], &[0], 0, 1).is_err());
    }
}
