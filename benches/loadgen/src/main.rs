//! `redraft-loadgen`: the load generator of `benches/compare.sh`. One binary drives redraft,
//! Redis and etcd with the same workloads, so the comparison measures the servers, not the
//! clients.
//!
//! - `run`: one workload on one system; prints the result as one JSON line and appends it to
//!   `--out`.
//! - `table`: the markdown tables of a results file (medians, min–max, ratios).
//! - `plot`: the PNG plots of a results file.
//! - `wakeup`: what waking a sleeping thread costs here, on the same CPU and on another.
//! - `fsync`: what a small `fdatasync` costs on this disk, after an idle gap, alone or three
//!   at once.
//!
//! Layout: `args.rs` (flags and their checks), `resp` (the shared `resp-client` crate), `client.rs` (one KV
//! client over RESP or etcd's gRPC API), `kv.rs` (set/get/mixed/fill), `raftstats.rs`
//! (redraft's group-commit counters, forced snapshots), `watch.rs` (watch-latency),
//! `failover.rs`, `result.rs` (histograms, the JSON line), `report.rs` (tables and plots).

mod args;
mod client;
mod cpustat;
mod failover;
mod fsync;
mod kv;
mod raftstats;
mod report;
mod result;
mod wakeup;
mod watch;

/// The RESP client (the shared `resp-client` crate), as `crate::resp`.
use resp_client as resp;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::args::{RunArgs, Workload};

#[derive(Parser)]
#[command(
    name = "redraft-loadgen",
    about = "Load generator for redraft, Redis and etcd"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Runs one workload against one system.
    Run(Box<RunArgs>),
    /// Prints the markdown tables of a results file.
    Table {
        /// The JSON-lines results file.
        input: PathBuf,
    },
    /// Draws the PNG plots of a results file into a folder.
    Plot {
        input: PathBuf,
        #[arg(long)]
        out_dir: PathBuf,
    },
    /// Measures a thread wake-up round trip on the same CPU and across CPUs.
    Wakeup {
        /// Round trips per placement.
        #[arg(long, default_value_t = 2000)]
        rounds: usize,
        /// Sleep between round trips (µs), so that an idle CPU goes idle.
        #[arg(long, default_value_t = 1000)]
        gap_us: u64,
    },
    /// Measures a small write + `fdatasync` after idle gaps, with files synced at once.
    Fsync {
        /// Folder for the test files (on the disk to measure).
        #[arg(long)]
        dir: PathBuf,
        /// How many files are synced at the same moment (comma-separated counts).
        #[arg(long, value_delimiter = ',', default_value = "1,3")]
        writers: Vec<usize>,
        /// Idle time before each write (µs, comma-separated).
        #[arg(long, value_delimiter = ',', default_value = "0,300,1000,2000,10000")]
        gaps_us: Vec<u64>,
        /// Writes per writer and gap.
        #[arg(long, default_value_t = 300)]
        rounds: usize,
        /// Bytes per write (one SET's log record is ~350).
        #[arg(long, default_value_t = 352)]
        bytes: usize,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Run(args) => {
            let args = *args;
            args.validate()?;
            // Two workers, as many as the machine has cores: the generator must not starve
            // the servers it measures, nor be the bottleneck on its own.
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            let out = args.out.clone();
            let result = rt.block_on(async move {
                match args.workload {
                    Workload::Set
                    | Workload::Get
                    | Workload::Mixed
                    | Workload::Fill
                    | Workload::Evalsha
                    | Workload::Hset
                    | Workload::Hget => kv::run(args).await,
                    Workload::WatchLatency => watch::run(args).await,
                    Workload::Failover => failover::run(args).await,
                }
            })?;
            println!("{}", serde_json::to_string(&result)?);
            if let Some(path) = out {
                result::append_jsonl(&path, &result)?;
            }
            // Watchers blocked in reads must not keep the process alive.
            rt.shutdown_timeout(std::time::Duration::from_millis(100));
        }
        Cmd::Table { input } => {
            print!("{}", report::table(&result::read_jsonl(&input)?));
        }
        Cmd::Wakeup { rounds, gap_us } => wakeup::run(rounds, gap_us)?,
        Cmd::Fsync {
            dir,
            writers,
            gaps_us,
            rounds,
            bytes,
        } => fsync::run(&dir, &writers, &gaps_us, rounds, bytes)?,
        Cmd::Plot { input, out_dir } => {
            for f in report::plot(&result::read_jsonl(&input)?, &out_dir)? {
                println!("{}", f.display());
            }
        }
    }
    Ok(())
}
