//! The `redraft` binary: parses flags, loads `cluster.toml` (or the single-node default), runs
//! one node until SIGINT/SIGTERM, then shuts down in order.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use redraft::config::ClusterConfig;
use redraft::node::Node;

/// A replicated configuration store that speaks the Redis protocol.
///
/// With no arguments, runs a single-node store on 127.0.0.1:6379 with data in ./data.
/// With --config and --node, runs node N of the cluster described by the file.
#[derive(Debug, Parser)]
#[command(name = "redraft", version, about, long_about = None)]
struct Cli {
    /// Cluster description (see cluster.toml). Requires --node.
    #[arg(long, value_name = "FILE", requires = "node")]
    config: Option<PathBuf>,
    /// Which node of --config this process runs (its `id`).
    #[arg(long, value_name = "N", requires = "config")]
    node: Option<u64>,
    /// Log filter, e.g. "info", "redraft=debug" (overrides RUST_LOG).
    #[arg(long, value_name = "FILTER")]
    log: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = cli
        .log
        .clone()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info,openraft=warn,sled=warn".to_string());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    let (cfg, node_id) = match (&cli.config, cli.node) {
        (Some(path), Some(id)) => match ClusterConfig::from_file(path) {
            Ok(cfg) => (cfg, id),
            Err(e) => return fail(&e),
        },
        _ => (ClusterConfig::single_node(), 1),
    };
    // Refuse bad config before anything starts.
    if let Err(e) = cfg.validate().and_then(|_| cfg.node(node_id).map(|_| ())) {
        return fail(&e);
    }

    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return fail(&e),
    };
    rt.block_on(async move {
        let node = match Node::start(cfg, node_id).await {
            Ok(n) => n,
            Err(e) => return fail(&e),
        };
        // FailStop: a node whose Raft stopped (e.g. a failed disk flush) exits rather than
        // keep answering clients.
        let code = tokio::select! {
            _ = wait_for_signal() => {
                tracing::info!("shutting down");
                ExitCode::SUCCESS
            }
            why = node.fatal() => {
                tracing::error!(reason = %why, "raft stopped; exiting");
                eprintln!("redraft: raft stopped: {why}");
                ExitCode::from(3)
            }
        };
        node.shutdown().await;
        code
    })
}

fn fail(e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("redraft: {e}");
    ExitCode::from(2)
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
