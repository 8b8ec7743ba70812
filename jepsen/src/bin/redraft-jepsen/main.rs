//! `redraft-jepsen`: one run of the harness. Sets up the cluster, runs the workloads and the
//! nemesis, heals, restarts, reads back, checks, writes the run's folder and prints the
//! verdicts; the last line is `linearizable: true|false|unknown` (SEMANTICS.md §4, §6, §7).

mod cli;
mod phases;
mod setup;
mod verdicts;

use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{bail, Context, Result};
use clap::Parser;
use jepsen::checker::{self, Verdict};
use jepsen::db;
use jepsen::history;
use jepsen::nemesis;

use cli::Cli;
use phases::{heal_and_read_back, workload_and_nemesis};
use setup::setup;
use verdicts::{check, print_lin, report};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        db::cleanup_now();
        default_hook(info);
    }));
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("harness failure: tokio runtime: {e}");
            return ExitCode::from(3);
        }
    };
    let result = rt.block_on(async move {
        tokio::spawn(async {
            use tokio::signal::unix::{signal, SignalKind};
            let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            eprintln!("interrupted: removing the cluster, namespaces and rules");
            db::cleanup_now();
            std::process::exit(130);
        });
        if let Some(path) = &cli.check {
            return check_only(path, cli.check_budget);
        }
        if let Some(n) = cli.power_cut_sets {
            return power_cut_only(&cli, n).await;
        }
        run(cli).await
    });
    db::cleanup_now();
    match result {
        Ok(Verdict::True) => ExitCode::SUCCESS,
        Ok(Verdict::False) => ExitCode::from(1),
        Ok(Verdict::Unknown) => ExitCode::from(2),
        Err(e) => {
            eprintln!("harness failure: {e:#}");
            ExitCode::from(3)
        }
    }
}

async fn power_cut_only(cli: &Cli, sets: u64) -> Result<Verdict> {
    if unsafe { libc::geteuid() } != 0 || !std::path::Path::new("/dev/fuse").exists() {
        bail!("the power-cut check (lossyfs) needs root and /dev/fuse");
    }
    let lossyfs = match &cli.lossyfs_bin {
        Some(b) => b.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("the harness's directory")?
            .join("lossyfs"),
    };
    let stamp: String = nemesis::rfc3339(SystemTime::now())
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(15)
        .collect();
    let run_dir = cli.out.join(format!("{stamp}-powercut"));
    std::fs::create_dir_all(&run_dir)?;
    let run_dir = run_dir.canonicalize()?;
    println!("output: {}", run_dir.display());
    if let Some(f) = &cli.failpoints {
        println!("node runs with REDRAFT_FAILPOINTS={f}");
    }
    let report = jepsen::powercut::run(&jepsen::powercut::PowerCutOpts {
        bin: cli
            .bin
            .canonicalize()
            .with_context(|| cli.bin.display().to_string())?,
        lossyfs,
        run_dir: run_dir.clone(),
        sets,
        torn: cli.torn,
        failpoints: cli.failpoints.clone(),
    })
    .await?;
    std::fs::write(
        run_dir.join("summary.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    println!("disk before the cut: {}", report.disk_before);
    println!("the cut dropped: {}", report.dropped);
    if !report.lost.is_empty() {
        println!("lost (first 20): {}", report.lost.join(", "));
    }
    println!(
        "power cut: kept {} of {} acknowledged SETs",
        report.kept, report.acknowledged
    );
    let verdict = if report.passed() {
        Verdict::True
    } else {
        Verdict::False
    };
    println!("durable: {}", verdict.as_str());
    Ok(verdict)
}

fn check_only(path: &std::path::Path, budget: u64) -> Result<Verdict> {
    let ops = history::read_jsonl(path)?;
    let lin = checker::linearizable::check(&ops, budget);
    print_lin(&lin, &ops);
    println!("linearizable: {}", lin.verdict.as_str());
    Ok(lin.verdict)
}

/// One run in phases: set up the cluster, run the workload under the nemesis, heal and read
/// back, check the history, write and print the report. The last line printed is the verdict.
async fn run(cli: Cli) -> Result<Verdict> {
    let setup = setup(&cli).await?;
    let (workload, watchers, cache_readers) = workload_and_nemesis(&cli, &setup).await?;
    let after = heal_and_read_back(&cli, &setup, &workload, watchers, cache_readers).await?;
    let checks = check(&cli, &setup, &workload, &after);
    report(&cli, &setup, &workload, &after, &checks)?;
    Ok(checks.verdict)
}
