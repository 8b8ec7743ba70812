//! The Redis listener: accepts client connections, enforces the connection limit, and runs one
//! [`session`] per connection until shutdown. Owns what every session shares: the
//! [`ServerContext`], with the registry of live clients and the settings `CONFIG SET` changes.
//!
//! Knows RESP framing only through `protocol::Connection`, and commands only through
//! `commands::Batch` (a pipeline batch, answered command by command).

pub mod clients;
pub mod http;
pub mod session;

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};

use crate::config::{ClusterConfig, NotifyKeyspaceEvents, ReadMode};
use crate::metrics::CounterVec;
use crate::protocol::Limits;
use crate::raft::{PeerNode, RaftNode};

pub use clients::{ClientHandle, ClientRegistry};

/// What every session shares.
pub struct ServerContext {
    pub node: Arc<RaftNode>,
    pub limits: Limits,
    pub requirepass: Option<String>,
    pub cluster_name: String,
    /// The port clients connect to (INFO's tcp_port).
    pub tcp_port: u16,
    pub started: Instant,
    /// Connected clients now; checked against `max_clients` at accept.
    pub connected: AtomicUsize,
    /// Source of `CLIENT ID`s, unique per node.
    pub next_client_id: AtomicU64,
    /// Dedup identities of ended sessions, reused by new ones (DedupIdsReused, `commands`).
    pub dedup_ids: Arc<crate::commands::DedupIdPool>,
    pub total_connections: AtomicU64,
    pub total_commands: AtomicU64,
    /// Connections refused because of `max_clients` (INFO's rejected_connections).
    pub rejected_connections: AtomicU64,
    /// Every live client (CLIENT LIST / KILL, INFO clients).
    pub clients: Arc<ClientRegistry>,
    /// The settings `CONFIG SET` changes on this node (until restart).
    pub settings: Settings,
    /// Commands run, per top-level command of the table (`redraft_server_commands_total`);
    /// the last slot counts commands not in the table.
    pub command_counts: CounterVec,
    /// Notified by `SHUTDOWN`; `main` then stops the node gracefully.
    pub stop_requested: Notify,
    /// This node's addresses as the cluster should know them (what `--join` asks to add).
    pub advertised: PeerNode,
}

/// Per-node settings that `CONFIG SET` may change at run time. Each is read with one relaxed
/// atomic load where it is used (at accept, per idle wait, per command batch), so a change
/// applies to existing connections from their next batch on.
pub struct Settings {
    /// `maxclients` (`[server] max_clients`).
    pub max_clients: AtomicUsize,
    /// `timeout` in seconds, 0 = none (`[server] timeout`).
    pub timeout_secs: AtomicU64,
    /// The normal class's hard `client-output-buffer-limit` in bytes, 0 = none
    /// (`[server] client_output_buffer_limit`).
    pub output_buffer_limit: AtomicU64,
    /// `notify-keyspace-events` flags (`[server] notify_keyspace_events`).
    pub notify_keyspace_events: AtomicU32,
    /// The read mode a new connection starts in (`[server] read_mode`, CONFIG `read-mode`),
    /// as [`ReadMode::index`].
    pub read_mode: AtomicU8,
    /// The rest of `client-output-buffer-limit` as `CONFIG GET` shows it: the normal class's soft
    /// limit and seconds (stored, not enforced), and the replica and pubsub classes (stored;
    /// redraft has no Redis replicas, and pub/sub uses the normal limit). Rarely touched.
    pub output_buffer_classes: Mutex<OutputBufferClasses>,
}

/// `client-output-buffer-limit` fields other than the enforced normal hard limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputBufferClasses {
    pub normal_soft: u64,
    pub normal_soft_secs: u64,
    pub replica: [u64; 3],
    pub pubsub: [u64; 3],
}

impl Default for OutputBufferClasses {
    /// Redis's defaults.
    fn default() -> Self {
        OutputBufferClasses {
            normal_soft: 0,
            normal_soft_secs: 0,
            replica: [256 << 20, 64 << 20, 60],
            pubsub: [32 << 20, 8 << 20, 60],
        }
    }
}

impl Settings {
    fn from_config(cfg: &ClusterConfig) -> Self {
        let notify =
            NotifyKeyspaceEvents::parse(&cfg.server.notify_keyspace_events).unwrap_or_default();
        Settings {
            max_clients: AtomicUsize::new(cfg.server.max_clients),
            timeout_secs: AtomicU64::new(cfg.server.timeout),
            output_buffer_limit: AtomicU64::new(cfg.server.client_output_buffer_limit),
            notify_keyspace_events: AtomicU32::new(notify.0),
            read_mode: AtomicU8::new(cfg.server.read_mode.index()),
            output_buffer_classes: Mutex::new(OutputBufferClasses::default()),
        }
    }

    pub fn max_clients(&self) -> usize {
        self.max_clients.load(Ordering::Relaxed)
    }

    pub fn timeout_secs(&self) -> u64 {
        self.timeout_secs.load(Ordering::Relaxed)
    }

    pub fn output_buffer_limit(&self) -> u64 {
        self.output_buffer_limit.load(Ordering::Relaxed)
    }

    /// The read mode a new connection starts in.
    pub fn read_mode(&self) -> ReadMode {
        ReadMode::from_index(self.read_mode.load(Ordering::Relaxed))
    }

    pub fn set_read_mode(&self, mode: ReadMode) {
        self.read_mode.store(mode.index(), Ordering::Relaxed);
    }

    pub fn notify_keyspace_events(&self) -> NotifyKeyspaceEvents {
        NotifyKeyspaceEvents(self.notify_keyspace_events.load(Ordering::Relaxed))
    }
}

impl ServerContext {
    pub fn new(node: Arc<RaftNode>, cfg: &ClusterConfig, tcp_port: u16) -> Self {
        let limits = Limits {
            max_bulk_len: cfg.server.proto_max_bulk_len,
            ..Limits::default()
        };
        let advertised = cfg
            .node(node.id)
            .map(|n| PeerNode {
                raft_addr: n.raft_addr.clone(),
                redis_addr: n.redis_addr.clone(),
            })
            .unwrap_or_default();
        Self {
            node,
            limits,
            requirepass: cfg.server.requirepass.clone(),
            cluster_name: cfg.cluster.name.clone(),
            tcp_port,
            started: Instant::now(),
            connected: AtomicUsize::new(0),
            next_client_id: AtomicU64::new(1),
            dedup_ids: Arc::default(),
            total_connections: AtomicU64::new(0),
            total_commands: AtomicU64::new(0),
            rejected_connections: AtomicU64::new(0),
            clients: Arc::new(ClientRegistry::default()),
            settings: Settings::from_config(cfg),
            command_counts: CounterVec::new(crate::commands::table::commands().len() + 1),
            stop_requested: Notify::new(),
            advertised,
        }
    }
}

/// Accepts clients until `shutdown` turns true.
/// How long shutdown waits for sessions to finish the batch they are running and send its
/// replies (RepliesBeforeExit).
const SHUTDOWN_DRAIN: std::time::Duration = std::time::Duration::from_secs(1);

/// **RepliesBeforeExit.** At shutdown, waits (up to [`SHUTDOWN_DRAIN`]) until every session has
/// ended: an idle one ends at once, a busy one after its batch's replies are flushed. So a
/// node that stops (SHUTDOWN, a signal, or FailStop after a failed flush) still sends the
/// replies it computed, such as the `UNCERTAIN` of the write whose flush failed, instead of
/// the process exiting under them.
async fn drain(ctx: &ServerContext) {
    let deadline = tokio::time::Instant::now() + SHUTDOWN_DRAIN;
    while ctx.connected.load(Ordering::Relaxed) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

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
            _ = shutdown.changed() => {
                drain(&ctx).await;
                return;
            }
        };
        let _ = stream.set_nodelay(true);
        if ctx.connected.load(Ordering::Relaxed) >= ctx.settings.max_clients() {
            // Redis's reply and behaviour: say why, then close.
            ctx.rejected_connections.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(async move {
                let _ = stream
                    .write_all(b"-ERR max number of clients reached\r\n")
                    .await;
            });
            continue;
        }
        ctx.connected.fetch_add(1, Ordering::Relaxed);
        ctx.total_connections.fetch_add(1, Ordering::Relaxed);
        // Assigned here, in accept order, so ids grow with connection order (as in Redis).
        let id = ctx.next_client_id.fetch_add(1, Ordering::Relaxed);
        let ctx = ctx.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            session::run(stream, addr, id, &ctx, shutdown).await;
            ctx.connected.fetch_sub(1, Ordering::Relaxed);
        });
    }
}
