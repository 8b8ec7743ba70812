//! The Redis listener: accepts client connections, enforces the connection limit, and runs one
//! [`session`] per connection until shutdown.
//!
//! Knows RESP framing only through `protocol::Connection`, and commands only through
//! `commands::execute`.

pub mod session;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::{ClusterConfig, ReadMode};
use crate::protocol::Limits;
use crate::raft::RaftNode;

/// What every session shares.
pub struct ServerContext {
    pub node: Arc<RaftNode>,
    pub limits: Limits,
    pub max_clients: usize,
    pub requirepass: Option<String>,
    /// The read mode a new connection starts in (`[server] read_mode`).
    pub default_read_mode: ReadMode,
    pub cluster_name: String,
    /// The port clients connect to (INFO's tcp_port).
    pub tcp_port: u16,
    pub started: Instant,
    /// Connected clients now.
    pub connected: AtomicUsize,
    /// Source of `CLIENT ID`s, unique per node.
    pub next_client_id: AtomicU64,
    pub total_connections: AtomicU64,
    pub total_commands: AtomicU64,
}

impl ServerContext {
    pub fn new(node: Arc<RaftNode>, cfg: &ClusterConfig, tcp_port: u16) -> Self {
        let limits = Limits {
            max_bulk_len: cfg.server.proto_max_bulk_len,
            ..Limits::default()
        };
        Self {
            node,
            limits,
            max_clients: cfg.server.max_clients,
            requirepass: cfg.server.requirepass.clone(),
            default_read_mode: cfg.server.read_mode,
            cluster_name: cfg.cluster.name.clone(),
            tcp_port,
            started: Instant::now(),
            connected: AtomicUsize::new(0),
            next_client_id: AtomicU64::new(1),
            total_connections: AtomicU64::new(0),
            total_commands: AtomicU64::new(0),
        }
    }
}

/// Accepts clients until `shutdown` turns true.
pub async fn run(
    listener: TcpListener,
    ctx: Arc<ServerContext>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let (mut stream, addr) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let _ = stream.set_nodelay(true);
        if ctx.connected.load(Ordering::Relaxed) >= ctx.max_clients {
            // Redis's reply and behaviour: say why, then close.
            tokio::spawn(async move {
                let _ = stream
                    .write_all(b"-ERR max number of clients reached\r\n")
                    .await;
            });
            continue;
        }
        ctx.connected.fetch_add(1, Ordering::Relaxed);
        ctx.total_connections.fetch_add(1, Ordering::Relaxed);
        let ctx = ctx.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            session::run(stream, addr, &ctx, shutdown).await;
            ctx.connected.fetch_sub(1, Ordering::Relaxed);
        });
    }
}
