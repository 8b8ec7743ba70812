//! What every client session shares, below both `commands/` (which reads and changes it) and
//! `server/` (which creates it and counts connections in it): the [`ServerContext`], the
//! [`Settings`] `CONFIG SET` changes at run time, the registry of live clients ([`clients`]) and
//! the pool of reusable write identities ([`DedupIdPool`]).
//!
//! Owns no socket and runs no command; imports `raft` (the node), `config`, `metrics`,
//! `protocol`'s limits and the command table's size and ids.

pub mod clients;
pub mod cmdstats;

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::Notify;

use crate::config::{ClusterConfig, NotifyKeyspaceEvents, ReadMode};
use crate::metrics::CounterVec;
use crate::protocol::Limits;
use crate::raft::runtime::SessionsBesideRaft;
use crate::raft::{PeerNode, RaftNode};

use crate::watch::tracking::Tracker;
pub use clients::{ClientHandle, ClientRegistry};

/// What every session shares.
pub struct ServerContext {
    pub node: Arc<RaftNode>,
    pub limits: Limits,
    pub requirepass: Option<String>,
    /// ACL users as this node enforces them (`crate::acl`), and its ACL LOG.
    pub acl: Arc<crate::acl::Acl>,
    pub cluster_name: String,
    /// The port clients connect to (INFO's tcp_port).
    pub tcp_port: u16,
    pub started: Instant,
    /// Connected clients now; checked against `max_clients` at accept.
    pub connected: AtomicUsize,
    /// Source of `CLIENT ID`s, unique per node.
    pub next_client_id: AtomicU64,
    /// Dedup identities of ended sessions, reused by new ones (DedupIdsReused).
    pub dedup_ids: Arc<DedupIdPool>,
    pub total_connections: AtomicU64,
    pub total_commands: AtomicU64,
    /// Connections refused because of `max_clients` (INFO's rejected_connections).
    pub rejected_connections: AtomicU64,
    /// Every live client (CLIENT LIST / KILL, INFO clients).
    pub clients: Arc<ClientRegistry>,
    /// Client-side caching's tables (`CLIENT TRACKING`); `node.rs` makes it the state
    /// machine's apply hook.
    pub tracker: Arc<Tracker>,
    /// The settings `CONFIG SET` changes on this node (until restart).
    pub settings: Settings,
    /// Commands run, per top-level command of the table (`redraft_server_commands_total`);
    /// the last slot counts commands not in the table.
    pub command_counts: CounterVec,
    /// INFO commandstats, latencystats and errorstats (`cmdstats.rs`).
    pub command_stats: cmdstats::CommandStats,
    /// Notified by `SHUTDOWN`; `main` then stops the node gracefully.
    pub stop_requested: Notify,
    /// This node's addresses as the cluster should know them (what `--join` asks to add).
    pub advertised: PeerNode,
    /// This node's TLS (client port, peers, HTTPS), when it has any: `CONFIG GET/SET tls-*`
    /// and SIGHUP reload it.
    pub tls: Option<Arc<crate::tls::TlsContext>>,
    /// The TLS client port (INFO's tls_port), 0 without one.
    pub tls_port: u16,
    /// With `[server] raft_thread`, the places for client sessions on the `raft` thread
    /// (SessionsBesideRaft in `raft/runtime.rs`); `None` runs every session on the workers.
    pub beside_raft: Option<SessionsBesideRaft>,
    /// The worker threads of the runtime the node started on (`INFO server`
    /// `worker_threads`), counted there: a session beside Raft runs on another runtime.
    pub worker_threads: usize,
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
    /// redraft has no Redis replicas; the pubsub class is enforced on each subscriber's queue
    /// by the node's pub/sub hub, `watch/pubsub.rs`, which holds its live value). Rarely touched.
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
            pubsub: crate::watch::pubsub::PUBSUB_LIMITS_DEFAULT,
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
        let acl = Arc::new(crate::acl::Acl::new(
            node.sm.users_watch(),
            cfg.server.requirepass.as_deref(),
        ));
        let clients = Arc::new(ClientRegistry::default());
        let tracker = Tracker::new(clients.clone(), cfg.server.tracking_table_max_keys);
        Self {
            node,
            limits,
            requirepass: cfg.server.requirepass.clone(),
            acl,
            cluster_name: cfg.cluster.name.clone(),
            tcp_port,
            started: Instant::now(),
            connected: AtomicUsize::new(0),
            next_client_id: AtomicU64::new(1),
            dedup_ids: Arc::default(),
            total_connections: AtomicU64::new(0),
            total_commands: AtomicU64::new(0),
            rejected_connections: AtomicU64::new(0),
            clients,
            tracker,
            settings: Settings::from_config(cfg),
            command_counts: CounterVec::new(crate::commands::table::commands().len() + 1),
            command_stats: cmdstats::CommandStats::default(),
            stop_requested: Notify::new(),
            advertised,
            tls: None,
            tls_port: 0,
            beside_raft: None,
            worker_threads: tokio::runtime::Handle::try_current()
                .map_or(0, |h| h.metrics().num_workers()),
        }
    }
}

/// **DedupIdsReused.** The dedup identities `(client_id, last seq)` of ended sessions, which new
/// sessions continue (their first write is `seq + 1`). The store's dedup table keeps one entry
/// per identity (`store::dedup`), so with reuse it holds about as many entries as this node ever
/// had concurrent writing connections, not one per connection ever opened: connection churn
/// (a connection per request) no longer evicts a retrying forwarder's entry.
///
/// Safe because an identity is given back only when its session has ended, so its last write
/// (and every retry of it by this node) has returned; a copy of that write still in some log
/// either applies before the next session's first write or is refused as stale after it
/// (`seq` below the last applied), as any late duplicate is. Its client saw no `+OK` for it in
/// the second case (the write was answered uncertain, or not at all).
#[derive(Default)]
pub struct DedupIdPool {
    ids: Mutex<Vec<(u64, u64)>>,
}

impl DedupIdPool {
    /// The most identities kept; more are forgotten (their table entries age out).
    const MAX: usize = 16 * 1024;

    /// An identity for a new session: an ended session's, or a fresh random one.
    pub fn take(&self) -> (u64, u64) {
        self.lock().pop().unwrap_or_else(|| (rand::random(), 0))
    }

    /// Returns an ended session's identity to the pool.
    pub fn give_back(&self, client_id: u64, seq: u64) {
        let mut ids = self.lock();
        if ids.len() < Self::MAX {
            ids.push((client_id, seq));
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<(u64, u64)>> {
        self.ids.lock().unwrap_or_else(|p| p.into_inner())
    }
}
