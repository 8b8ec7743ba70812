//! The `redraft` binary: parses flags, loads `cluster.toml` (or the single-node default), runs
//! one node until SIGINT/SIGTERM, then shuts down in order.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use redraft::config::{ClusterConfig, NodeConfig};
use redraft::node::{Node, StartOptions};

/// jemalloc, not glibc's malloc: under MVCC history, compaction frees old values of every size
/// in the middle of the heap, and glibc's free lists fragment (`_int_malloc`,
/// `malloc_consolidate` and `unlink_chunk` grew to ~14 % of a node's samples once history held
/// 100,000 revisions). Redis and TiKV ship jemalloc for the same reason.
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's heap figures (AllocatorReported, `allocator.rs`), refreshed first: jemalloc
/// caches its statistics until its `epoch` is advanced.
fn jemalloc_stats() -> Option<redraft::allocator::HeapStats> {
    use tikv_jemalloc_ctl::{epoch, stats};
    epoch::advance().ok()?;
    Some(redraft::allocator::HeapStats {
        allocated: stats::allocated::read().ok()? as u64,
        active: stats::active::read().ok()? as u64,
        resident: stats::resident::read().ok()? as u64,
    })
}

/// Registers jemalloc as the process's allocator for `INFO memory`, named as Redis names it
/// (`jemalloc-5.3.0`: the version up to its first `-`).
fn register_allocator() {
    let version = tikv_jemalloc_ctl::version::read().unwrap_or("unknown");
    let version = version.split('-').next().unwrap_or(version);
    let name: &'static str = Box::leak(format!("jemalloc-{version}").into_boxed_str());
    redraft::allocator::register(redraft::allocator::Allocator {
        name,
        stats: jemalloc_stats,
    });
}

/// A replicated configuration store that speaks the Redis protocol.
///
/// With no arguments, runs a single-node store on 127.0.0.1:6379 with data in ./data.
/// With --config and --node, runs node N of the cluster described by the file.
/// With --join, runs a new node that asks a running cluster to add it.
#[derive(Debug, Parser)]
#[command(name = "redraft", version, about, long_about = None)]
struct Cli {
    /// Cluster description (see cluster.toml). Requires --node. With --join, only its
    /// [cluster] (name, secret), [raft], [server] and [store] sections are used.
    #[arg(long, value_name = "FILE", requires = "node")]
    config: Option<PathBuf>,
    /// Which node of --config this process runs (its `id`).
    #[arg(long, value_name = "N", requires = "config")]
    node: Option<u64>,
    /// Join a running cluster through this member's Redis address (host:port): the node asks
    /// to be added (RAFT.ADDNODE) and never initialises a cluster of its own. Needs --config
    /// (for the cluster name and secret), --node, --raft-addr, --redis-addr and --data-dir.
    #[arg(
        long,
        value_name = "HOST:PORT",
        requires_all = ["config", "node", "raft_addr", "redis_addr", "data_dir"]
    )]
    join: Option<String>,
    /// With --join: this node's peer address.
    #[arg(long, value_name = "HOST:PORT", requires = "join")]
    raft_addr: Option<String>,
    /// With --join: this node's client address.
    #[arg(long, value_name = "HOST:PORT", requires = "join")]
    redis_addr: Option<String>,
    /// With --join: this node's data directory.
    #[arg(long, value_name = "DIR", requires = "join")]
    data_dir: Option<PathBuf>,
    /// With --join: this node's HTTP address for /metrics, /health and /ready.
    #[arg(long, value_name = "HOST:PORT", requires = "join")]
    metrics_addr: Option<String>,
    /// With --join: this node's TLS client address (tls_addr).
    #[arg(long, value_name = "HOST:PORT", requires = "join")]
    tls_addr: Option<String>,
    /// With --join: this node's certificate (tls_cert_file).
    #[arg(long, value_name = "FILE", requires = "join")]
    tls_cert_file: Option<PathBuf>,
    /// With --join: this node's private key (tls_key_file).
    #[arg(long, value_name = "FILE", requires = "join")]
    tls_key_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Sub>,
    /// Log filter, e.g. "info", "redraft=debug" (overrides RUST_LOG).
    #[arg(long, value_name = "FILTER")]
    log: Option<String>,
}

/// Offline and client-side operations (instead of running a node).
#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// Save a consistent backup of a running cluster (RAFT.BACKUP) to a file.
    Backup {
        /// Any member's Redis address (host:port).
        #[arg(long, value_name = "HOST:PORT")]
        from: String,
        /// The backup file to write.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// The cluster's requirepass, if it has one.
        #[arg(long, value_name = "PASSWORD")]
        password: Option<String>,
    },
    /// Print a new random cluster secret (256 bits, hex) for `[cluster] secret`.
    GenSecret,
    /// Make the TLS certificates of a cluster: a CA (ca.crt, ca.key; an existing ca.key in
    /// --out is reused), node<ID>.crt/.key for every [[node]] of --config (naming its IP
    /// addresses, 127.0.0.1, ::1 and localhost; for servers and clients), and client.crt/.key
    /// for clients when tls.auth_clients asks for certificates. Keys are written mode 0600.
    Cert {
        /// The cluster's description.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// The directory to write into (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// How long node and client certificates are valid, in days.
        #[arg(long, value_name = "DAYS", default_value_t = 365)]
        days: u32,
    },
    /// Create a new cluster's data dirs from a backup (every data_dir of --config must be
    /// empty or missing); then start the nodes as usual.
    Restore {
        /// The backup file.
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
        /// The new cluster's description; its [cluster] name is the restored identity.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    register_allocator();
    let cli = Cli::parse();
    if let Some(sub) = &cli.command {
        return run_sub(sub);
    }
    let filter = cli
        .log
        .clone()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| redraft::raft::DEFAULT_LOG_FILTER.to_string());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    let (mut cfg, node_id) = match (&cli.config, cli.node) {
        (Some(path), Some(id)) => match ClusterConfig::from_file(path) {
            Ok(cfg) => (cfg, id),
            Err(e) => return fail(&e),
        },
        _ => (ClusterConfig::single_node(), 1),
    };
    if cli.join.is_some() {
        // The joining node's own [[node]] comes from the flags; the file's [[node]] list is
        // not used (the cluster's membership is the Raft log's).
        cfg.nodes = vec![NodeConfig {
            id: node_id,
            raft_addr: cli.raft_addr.clone().unwrap_or_default(),
            redis_addr: cli.redis_addr.clone().unwrap_or_default(),
            data_dir: cli.data_dir.clone().unwrap_or_default(),
            metrics_addr: cli.metrics_addr.clone(),
            tls_addr: cli.tls_addr.clone(),
            tls_cert_file: cli.tls_cert_file.clone(),
            tls_key_file: cli.tls_key_file.clone(),
        }];
    }
    // Refuse bad config before anything starts.
    if let Err(e) = cfg.validate().and_then(|_| cfg.node(node_id).map(|_| ())) {
        return fail(&e);
    }

    // HandOffsWithoutPreemption (`config/sched_policy.rs`): before the runtime starts its
    // threads, so that every thread of the node inherits the policy.
    let policy = cfg.server.sched_policy;
    if let Err(e) = policy.apply_to_process() {
        tracing::warn!(policy = %policy, error = %e, "CPU scheduling policy not set; running with the default");
    }

    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.thread_stack_size(redraft::raft::runtime::THREAD_STACK_BYTES);
    if cfg.server.worker_threads > 0 {
        builder.worker_threads(cfg.server.worker_threads);
    }
    let rt = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(&e),
    };
    let password = cfg.server.requirepass.clone();
    let opts = StartOptions {
        join: cli.join.clone(),
    };
    rt.block_on(async move {
        let node = match Node::start_with(cfg, node_id, opts).await {
            Ok(n) => n,
            Err(e) => return fail(&e),
        };
        // SIGHUP: read the TLS certificates again (rotation without a restart).
        if let Some(tls) = node.ctx.tls.clone() {
            tokio::spawn(reload_tls_on_sighup(tls));
        }
        if let Some(member) = &cli.join {
            let joined = tokio::select! {
                r = node.join(member, password.as_deref()) => r,
                _ = wait_for_signal() => {
                    node.shutdown().await;
                    return ExitCode::SUCCESS;
                }
            };
            if let Err(e) = joined {
                node.shutdown().await;
                return fail(&e);
            }
        }
        // FailStop: a node whose Raft stopped (e.g. a failed disk flush) exits rather than
        // keep answering clients.
        let code = tokio::select! {
            _ = wait_for_signal() => {
                tracing::info!("shutting down");
                ExitCode::SUCCESS
            }
            _ = node.stop_requested() => {
                tracing::info!("SHUTDOWN requested; shutting down");
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

/// Reloads the TLS files on every SIGHUP; a bad file is logged and the old ones stay
/// (ReloadAllOrNothing).
async fn reload_tls_on_sighup(tls: std::sync::Arc<redraft::tls::TlsContext>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot install a SIGHUP handler: TLS reload only with CONFIG SET");
        return;
    };
    while hup.recv().await.is_some() {
        match tls.reload() {
            Ok(()) => tracing::info!("SIGHUP: TLS certificates reloaded"),
            Err(e) => tracing::warn!(error = %e, "SIGHUP: TLS certificates not reloaded"),
        }
    }
}

/// Runs `redraft backup` / `redraft restore`.
fn run_sub(sub: &Sub) -> ExitCode {
    use indicatif::{ProgressBar, ProgressStyle};
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return fail(&e),
    };
    match sub {
        Sub::Cert { config, out, days } => {
            let cfg = match ClusterConfig::from_file(config) {
                Ok(c) => c,
                Err(e) => return fail(&e),
            };
            match redraft::tls::cert::write_cluster_certs(&cfg, out, i64::from(*days)) {
                Ok(w) => {
                    if w.reused_ca {
                        println!("reused the CA in {}", out.join("ca.key").display());
                    }
                    for f in &w.files {
                        println!("wrote {}", f.display());
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            }
        }
        Sub::GenSecret => {
            // rand's ThreadRng is a CSPRNG (ChaCha, seeded from the OS).
            let bytes: [u8; 32] = rand::random();
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            println!("{hex}");
            ExitCode::SUCCESS
        }
        Sub::Backup {
            from,
            out,
            password,
        } => rt.block_on(async {
            use redraft::client::{Client, Reply};
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg} {bytes} ({bytes_per_sec})")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_message(format!("backup from {from}"));
            let mut c = match Client::connect(from, std::time::Duration::from_secs(5)).await {
                Ok(c) => c,
                Err(e) => return fail(&e),
            };
            if let Some(pw) = password {
                match c.call(&[b"AUTH", pw.as_bytes()], |_| {}).await {
                    Ok(Reply::Error(e)) => return fail(&e),
                    Ok(_) => {}
                    Err(e) => return fail(&e),
                }
            }
            let reply = c
                .call(&[b"RAFT.BACKUP"], |n| bar.set_position(n as u64))
                .await;
            bar.finish_and_clear();
            let bytes = match reply {
                Ok(Reply::BulkString(b)) => b,
                Ok(Reply::Error(e)) => return fail(&e),
                Ok(other) => return fail(&format!("RAFT.BACKUP answered {other:?}")),
                Err(e) => return fail(&e),
            };
            let header = match redraft::backup::decode(&bytes) {
                Ok((h, _)) => h,
                Err(e) => return fail(&format!("RAFT.BACKUP reply from {from}: {e}")),
            };
            let tmp = out.with_extension("tmp");
            if let Err(e) = std::fs::write(&tmp, &bytes).and_then(|()| std::fs::rename(&tmp, out)) {
                return fail(&format!("{}: {e}", out.display()));
            }
            println!(
                "backup of cluster {:?} at revision {} (compact revision {}, applied index {}, {} \
                 keys, {} bytes) written to {}",
                header.cluster,
                header.revision,
                header.compact_revision,
                header.applied_index,
                header.keys,
                bytes.len(),
                out.display()
            );
            ExitCode::SUCCESS
        }),
        Sub::Restore { from, config } => {
            let cfg = match ClusterConfig::from_file(config) {
                Ok(c) => c,
                Err(e) => return fail(&e),
            };
            let bytes = match redraft::backup::read_file(from) {
                Ok(b) => b,
                Err(e) => return fail(&e),
            };
            let bar = ProgressBar::new(cfg.nodes.len() as u64);
            bar.set_style(
                ProgressStyle::with_template("restoring {pos}/{len} data dirs {wide_bar} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            let result = rt.block_on(redraft::backup::restore(&bytes, &cfg, |id| {
                bar.set_message(format!("node {id}"));
                bar.inc(1);
            }));
            bar.finish_and_clear();
            match result {
                Ok(h) => {
                    println!(
                        "restored cluster {:?} (from {:?} at revision {}) into {} data dirs; \
                         start its nodes with --config {}",
                        cfg.cluster.name,
                        h.cluster,
                        h.revision,
                        cfg.nodes.len(),
                        config.display()
                    );
                    ExitCode::SUCCESS
                }
                Err(e @ redraft::backup::BackupError::Format(_)) => {
                    fail(&format!("{}: {e}", from.display()))
                }
                Err(e) => fail(&e),
            }
        }
    }
}
