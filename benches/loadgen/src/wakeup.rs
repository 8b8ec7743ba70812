//! `redraft-loadgen wakeup`: what waking a sleeping thread costs on this machine, on the same
//! CPU and on another one. Every hand-off in a server (a session task to the Raft core, the
//! log's sync thread, a peer connection) is such a wake-up when the machine is not saturated;
//! on a VM whose idle vCPUs halt (no guest halt-polling), waking a thread on another vCPU
//! costs the host's wake-up of that vCPU, and one client's write pays it several times.
//!
//! Two threads pass a byte back and forth over two pipes, `--rounds` times, sleeping
//! `--gap-us` between rounds (so that an idle CPU goes idle, as between one client's writes);
//! the caller is pinned to CPU 0, its partner to CPU 0 (`same`) or CPU 1 (`other`). Prints the
//! round-trip time (two wake-ups) p50 / p90 / p99 per placement as one JSON line.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Serialize;

#[derive(Serialize)]
struct Placement {
    partner_cpu: usize,
    p50_us: f64,
    p90_us: f64,
    p99_us: f64,
}

#[derive(Serialize)]
struct Report {
    rounds: usize,
    gap_us: u64,
    same_cpu: Placement,
    other_cpu: Placement,
}

fn pin(cpu: usize) -> anyhow::Result<()> {
    // SAFETY: `set` is a plain bit set owned by this frame; sched_setaffinity(0, ..) reads it
    // for the calling thread only.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set)
    };
    if rc != 0 {
        bail!(
            "sched_setaffinity to CPU {cpu}: {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

fn pipe() -> anyhow::Result<(std::fs::File, std::fs::File)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe(2) writes; each is then owned by
    // exactly one File.
    unsafe {
        if libc::pipe(fds.as_mut_ptr()) != 0 {
            bail!("pipe: {}", std::io::Error::last_os_error());
        }
        use std::os::fd::FromRawFd;
        Ok((
            std::fs::File::from_raw_fd(fds[0]),
            std::fs::File::from_raw_fd(fds[1]),
        ))
    }
}

fn measure(partner_cpu: usize, rounds: usize, gap: Duration) -> anyhow::Result<Placement> {
    use std::io::{Read, Write};
    let (mut to_partner_r, mut to_partner_w) = pipe()?;
    let (mut back_r, mut back_w) = pipe()?;
    let partner = std::thread::spawn(move || -> anyhow::Result<()> {
        pin(partner_cpu)?;
        let mut b = [0u8; 1];
        while to_partner_r.read(&mut b)? == 1 {
            back_w.write_all(&b)?;
        }
        Ok(())
    });
    pin(0)?;
    let mut rtt = Vec::with_capacity(rounds);
    let mut b = [0u8; 1];
    for _ in 0..rounds {
        std::thread::sleep(gap);
        let t = Instant::now();
        to_partner_w.write_all(&b)?;
        back_r.read_exact(&mut b).context("partner hung up")?;
        rtt.push(t.elapsed().as_secs_f64() * 1e6);
    }
    drop(to_partner_w);
    partner
        .join()
        .map_err(|_| anyhow::anyhow!("partner panicked"))??;
    rtt.sort_by(f64::total_cmp);
    let q = |p: f64| rtt[((rtt.len() - 1) as f64 * p).round() as usize];
    Ok(Placement {
        partner_cpu,
        p50_us: q(0.5),
        p90_us: q(0.9),
        p99_us: q(0.99),
    })
}

/// Runs both placements and prints the report. Pins the calling thread to CPU 0 for the rest
/// of the process (the command exits afterwards).
pub fn run(rounds: usize, gap_us: u64) -> anyhow::Result<()> {
    if rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    if std::thread::available_parallelism()?.get() < 2 {
        bail!("needs at least two CPUs");
    }
    let gap = Duration::from_micros(gap_us);
    let report = Report {
        rounds,
        gap_us,
        same_cpu: measure(0, rounds, gap)?,
        other_cpu: measure(1, rounds, gap)?,
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
