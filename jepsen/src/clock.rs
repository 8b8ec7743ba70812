//! Clock faults: nodes whose clocks run fast or slow (libfaketime), for the clock assumption of
//! lease reads (README "Read modes": the rate drift between two nodes' monotonic clocks over the
//! vote-refusal window stays below `lease_drift_margin_ms`).
//!
//! A node with rate `r` is started with `LD_PRELOAD` of libfaketime (Debian's `libfaketime`
//! package) and `FAKETIME="+0 x<r>"`: from its start, its `CLOCK_MONOTONIC` and its wall clock
//! advance `r` seconds per real second (and its sleeps and timeouts stretch by `1/r`), so every
//! timer of that node — heartbeats, election timeouts, the lease, the restart window — runs at
//! `r`. Rust's `Instant` and tokio's timers read the clock through libc's `clock_gettime`, which
//! libfaketime interposes.
//!
//! Rates are fixed per node (`--clock-rates`) or drawn at every start of every node
//! (`--clock-drift D`: uniform in `[1/(1+D), 1+D]`, so two nodes' rates differ by a factor of at
//! most `(1+D)²`), from the run's seed. [`measure_rate`] reads a node's `TIME` twice to show the
//! fault is in effect (ClockFaultShown): a run whose nodes ignored `LD_PRELOAD` would test
//! nothing, so the harness refuses to go on.
//!
//! Invariant:
//! - **ClockFaultShown.** Before the workload starts, every node's clock rate, measured over real
//!   time through `TIME`, is within [`RATE_TOLERANCE`] of the rate it was started with.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::resp::{Conn, Reply};

/// Where Debian's `libfaketime` package puts the thread-safe library.
pub const DEFAULT_LIB: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

/// How far a measured rate may be from the rate a node was started with.
pub const RATE_TOLERANCE: f64 = 0.05;

/// How each node's clock runs.
#[derive(Clone, Debug)]
pub struct ClockOpts {
    /// The libfaketime library to preload.
    pub lib: PathBuf,
    /// Fixed rates, node `i` (1-based) gets `rates[i - 1]`; nodes past the end run at 1.
    pub rates: Vec<f64>,
    /// When `rates` is empty: each start draws a rate in `[1/(1+drift), 1+drift]`.
    pub drift: f64,
    pub seed: u64,
}

/// The rates the nodes' starts got, in order.
pub struct Clocks {
    opts: ClockOpts,
    rng: StdRng,
    /// `(node, rate)` for every start.
    pub starts: Vec<(u64, f64)>,
}

impl Clocks {
    pub fn new(opts: ClockOpts) -> Result<Clocks> {
        check_lib(&opts.lib)?;
        if let Some(r) = opts.rates.iter().find(|r| !(r.is_finite() && **r > 0.0)) {
            bail!("clock rate {r}: rates must be positive");
        }
        if !(opts.drift.is_finite() && (0.0..1.0).contains(&opts.drift)) {
            bail!("clock drift {}: must be in [0, 1)", opts.drift);
        }
        let rng = StdRng::seed_from_u64(opts.seed ^ 0x636c6f636b);
        Ok(Clocks {
            opts,
            rng,
            starts: Vec::new(),
        })
    }

    /// The rate for this start of node `id` (recorded in [`Clocks::starts`]).
    pub fn next_rate(&mut self, id: u64) -> f64 {
        let rate = if self.opts.rates.is_empty() {
            draw_rate(&mut self.rng, self.opts.drift)
        } else {
            self.opts.rates.get(id as usize - 1).copied().unwrap_or(1.0)
        };
        self.starts.push((id, rate));
        rate
    }

    /// The environment that makes a process's clocks run at `rate` (none at rate 1).
    pub fn env(&self, rate: f64) -> Vec<(String, String)> {
        if rate == 1.0 {
            return Vec::new();
        }
        vec![
            ("LD_PRELOAD".into(), self.opts.lib.display().to_string()),
            ("FAKETIME".into(), faketime_spec(rate)),
        ]
    }
}

/// `FAKETIME` for a clock that starts at the true time and runs at `rate`.
pub fn faketime_spec(rate: f64) -> String {
    format!("+0 x{rate:.6}")
}

/// A rate in `[1/(1+drift), 1+drift]`, uniform in its logarithm (fast and slow equally likely).
pub fn draw_rate(rng: &mut impl Rng, drift: f64) -> f64 {
    if drift == 0.0 {
        return 1.0;
    }
    let span = (1.0 + drift).ln();
    rng.gen_range(-span..=span).exp()
}

fn check_lib(lib: &Path) -> Result<()> {
    if !lib.exists() {
        bail!(
            "{} not found: clock faults need libfaketime (`apt-get install libfaketime`) \
             or --faketime-lib",
            lib.display()
        );
    }
    Ok(())
}

/// A node's wall clock through `TIME`, in microseconds.
async fn node_time_us(conn: &mut Conn) -> Result<f64> {
    let r = conn
        .call(&[b"TIME"], Duration::from_secs(2))
        .await
        .map_err(|e| anyhow!("TIME: {e}"))?;
    let items = r.items().ok_or_else(|| anyhow!("TIME answered {r:?}"))?;
    let field = |i: usize| -> Result<f64> {
        match items.get(i) {
            Some(Reply::Bulk(Some(b))) => std::str::from_utf8(b)
                .ok()
                .and_then(|s| s.parse::<f64>().ok())
                .ok_or_else(|| anyhow!("TIME field {i}: {b:?}")),
            other => Err(anyhow!("TIME field {i}: {other:?}")),
        }
    };
    Ok(field(0)? * 1e6 + field(1)?)
}

/// One reading of a node's clock and the real time it was taken at: the middle of the round
/// trip, so a slow reply on a busy machine moves it by at most half the round trip.
async fn sample(conn: &mut Conn, origin: Instant) -> Result<(f64, f64)> {
    let before = origin.elapsed().as_secs_f64();
    let node = node_time_us(conn).await? / 1e6;
    let after = origin.elapsed().as_secs_f64();
    Ok(((before + after) / 2.0, node))
}

/// The rate of the clock of the node at `addr`: its `TIME` advance over `over` of real time.
pub async fn measure_rate(addr: &str, over: Duration) -> Result<f64> {
    let mut conn = Conn::connect(addr, Duration::from_secs(2))
        .await
        .map_err(|e| anyhow!("connect {addr}: {e}"))?;
    let origin = Instant::now();
    let (r0, t0) = sample(&mut conn, origin).await?;
    tokio::time::sleep(over).await;
    let (r1, t1) = sample(&mut conn, origin).await?;
    Ok((t1 - t0) / (r1 - r0))
}

/// ClockFaultShown: every node's measured rate is within [`RATE_TOLERANCE`] of `want`. The
/// nodes are measured at once, each over 2 s.
pub async fn check_rates(addrs: &[(u64, String)], want: &[(u64, f64)]) -> Result<Vec<String>> {
    let mut probes = Vec::new();
    for (id, addr) in addrs {
        let Some(&(_, rate)) = want.iter().rev().find(|(n, _)| n == id) else {
            continue;
        };
        let addr = addr.clone();
        let probe = tokio::spawn(async move { measure_rate(&addr, Duration::from_secs(2)).await });
        probes.push((*id, rate, probe));
    }
    let mut lines = Vec::new();
    for (id, rate, probe) in probes {
        let got = probe
            .await
            .map_err(|e| anyhow!("clock probe of node {id}: {e}"))?
            .with_context(|| format!("measure node {id}'s clock"))?;
        if (got - rate).abs() > RATE_TOLERANCE {
            bail!(
                "node {id} was started with its clocks at x{rate:.3} but its clock runs at \
                 x{got:.3}: the clock fault is not in effect (libfaketime not preloaded?)"
            );
        }
        lines.push(format!("node {id} x{rate:.3} (measured x{got:.3})"));
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drawn_rates_stay_within_the_drift_and_go_both_ways() {
        let mut rng = StdRng::seed_from_u64(7);
        let rates: Vec<f64> = (0..1000).map(|_| draw_rate(&mut rng, 0.2)).collect();
        assert!(rates
            .iter()
            .all(|r| (1.0 / 1.2 - 1e-9..=1.2 + 1e-9).contains(r)));
        assert!(rates.iter().filter(|r| **r < 0.95).count() > 200);
        assert!(rates.iter().filter(|r| **r > 1.05).count() > 200);
        assert_eq!(draw_rate(&mut rng, 0.0), 1.0);
    }

    #[test]
    fn fixed_rates_go_to_their_nodes_and_true_clocks_get_no_preload() {
        let lib = std::env::current_exe().unwrap();
        let mut c = Clocks::new(ClockOpts {
            lib,
            rates: vec![0.5, 1.0],
            drift: 0.0,
            seed: 1,
        })
        .unwrap();
        assert_eq!(c.next_rate(1), 0.5);
        assert_eq!(c.next_rate(2), 1.0);
        assert_eq!(c.next_rate(3), 1.0);
        assert_eq!(c.starts, vec![(1, 0.5), (2, 1.0), (3, 1.0)]);
        assert!(c.env(1.0).is_empty());
        let env = c.env(0.5);
        assert_eq!(env[1], ("FAKETIME".to_string(), "+0 x0.500000".to_string()));
        assert_eq!(env[0].0, "LD_PRELOAD");
    }

    #[test]
    fn bad_options_are_refused() {
        let lib = std::env::current_exe().unwrap();
        let opts = |rates: Vec<f64>, drift: f64| ClockOpts {
            lib: lib.clone(),
            rates,
            drift,
            seed: 1,
        };
        assert!(Clocks::new(opts(vec![0.0], 0.0)).is_err());
        assert!(Clocks::new(opts(vec![], 1.5)).is_err());
        let missing = ClockOpts {
            lib: "/nonexistent/libfaketime.so".into(),
            ..opts(vec![], 0.1)
        };
        let err = Clocks::new(missing).err().unwrap().to_string();
        assert!(err.contains("libfaketime"), "{err}");
    }
}
