//! Assembles one node: data dir identity, the Raft log (WAL), the state machine, Raft, the peer RPC
//! server and the Redis listener; then runs until asked to stop and shuts down in order.
//!
//! # Start-up order
//!
//! ```text
//! config validated ─▶ data dir identity checked ─▶ raft::start (log store + state machine
//!   opened ─▶ Raft built ─▶ peer listener ─▶ initialise if the log is empty) ─▶ Redis listener
//!   ─▶ keyspace notifier ─▶ HTTP listener ─▶ serve until shutdown
//! ```
//!
//! Raft's part (log store, state machine, Raft, peer listener, safe initialisation of a
//! pristine cluster) is `raft::start` (`raft/start.rs`); this file adds what clients see.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::{ensure_data_dir_identity, ClusterConfig};
use crate::error::{Error, Result};
use crate::raft::membership::{AdminRequest, CATCH_UP_TIMEOUT};
use crate::raft::{PeerNode, RaftNode};
use crate::server::{self, http, ServerContext};
use crate::watch::pubsub::notify_applied;

/// How a node starts besides its config.
#[derive(Clone, Debug, Default)]
pub struct StartOptions {
    /// `--join`: a member's Redis address. The node never initialises a cluster; it asks that
    /// member to add it (`Node::join`).
    pub join: Option<String>,
}

/// A running node: its Raft handle and a way to stop it.
pub struct Node {
    pub raft: Arc<RaftNode>,
    pub redis_addr: std::net::SocketAddr,
    pub raft_addr: std::net::SocketAddr,
    /// The TLS client address, when configured (`tls_addr`).
    pub tls_addr: Option<std::net::SocketAddr>,
    /// The HTTP address of `/metrics`, `/health` and `/ready`, when configured.
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// What every session shares; `SHUTDOWN` asks for a stop through it.
    pub ctx: Arc<ServerContext>,
    shutdown_tx: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Raft's own thread with `[server] raft_thread`; dropped last (after the shutdown has
    /// ended the tasks on it).
    _raft_thread: Option<crate::raft::runtime::RaftThread>,
}

impl Node {
    /// Starts node `node_id` of `cfg`. Returns once every listener is bound.
    pub async fn start(cfg: ClusterConfig, node_id: u64) -> Result<Node> {
        Self::start_with(cfg, node_id, StartOptions::default()).await
    }

    /// Starts node `node_id` of `cfg` as `opts` say. Returns once every listener is bound.
    pub async fn start_with(cfg: ClusterConfig, node_id: u64, opts: StartOptions) -> Result<Node> {
        cfg.validate()?;
        let me = cfg.node(node_id)?.clone();
        ensure_data_dir_identity(&me.data_dir, &cfg.cluster.name, node_id)?;

        // TLS files are read and checked before anything listens (a bad one stops the node).
        let tls =
            crate::tls::TlsContext::load(&cfg, &me).map_err(|e| Error::Io(format!("TLS: {e}")))?;
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        // Scripts run at apply (EVAL): the interpreter must be in place before the log replays.
        crate::commands::install_script_host();
        let join = opts.join.is_some();
        // RaftOnItsOwnThread (`raft/runtime.rs`): Raft starts on the thread's runtime, so that
        // every task it spawns runs there.
        let raft_thread = if cfg.server.raft_thread {
            Some(
                crate::raft::runtime::RaftThread::start()
                    .map_err(|e| Error::Io(format!("cannot start the raft thread: {e}")))?,
            )
        } else {
            None
        };
        let started = match &raft_thread {
            None => crate::raft::start(&cfg, &me, node_id, join, tls.clone(), &shutdown_rx).await?,
            Some(thread) => {
                let (c, m, t, rx) = (cfg.clone(), me.clone(), tls.clone(), shutdown_rx.clone());
                thread
                    .tasks()
                    .spawn(async move { crate::raft::start(&c, &m, node_id, join, t, &rx).await })
                    .await
                    .map_err(|e| Error::Io(format!("raft start-up failed: {e}")))??
            }
        };
        let (node, raft_addr, mut tasks) = (started.node, started.raft_addr, started.tasks);

        let redis_listener = TcpListener::bind(&me.redis_addr).await.map_err(|e| {
            Error::Io(format!(
                "cannot listen on redis_addr {}: {e}",
                me.redis_addr
            ))
        })?;
        let redis_addr = redis_listener
            .local_addr()
            .map_err(|e| Error::Io(e.to_string()))?;
        let tls_listener = match &me.tls_addr {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|e| Error::Io(format!("cannot listen on tls_addr {addr}: {e}")))?,
            ),
            None => None,
        };
        let tls_addr = tls_listener
            .as_ref()
            .map(TcpListener::local_addr)
            .transpose()
            .map_err(|e| Error::Io(e.to_string()))?;
        let mut ctx = ServerContext::new(node.clone(), &cfg, redis_addr.port());
        ctx.tls = tls.clone();
        ctx.tls_port = tls_addr.map_or(0, |a| a.port());
        ctx.beside_raft = raft_thread.as_ref().map(|t| {
            crate::raft::runtime::SessionsBesideRaft::new(
                t.tasks().clone(),
                cfg.server.raft_thread_sessions,
            )
        });
        let ctx = Arc::new(ctx);
        // Client tracking's invalidations, from every applied entry, before any reader can see
        // it (AppliedHookBeforeReaders, RememberBeforeRead in `watch/tracking.rs`).
        let tracker = ctx.tracker.clone();
        node.sm
            .set_apply_hook(Box::new(move |applied| tracker.invalidate(applied)));
        // Keyspace notifications from applied entries, with this node's CONFIG flags, in apply
        // order (NotifyInApplyOrder).
        let notifier_ctx = Arc::downgrade(&ctx);
        let hub = node.pubsub.clone();
        node.sm.set_notify_hook(Box::new(move |applied| {
            if let Some(ctx) = notifier_ctx.upgrade() {
                let flags = ctx.settings.notify_keyspace_events().0;
                notify_applied(&hub, flags, applied);
            }
        }));

        // Sentinel's `+switch-master` to this node's subscribers when the leader changes
        // (SENTINEL in `commands/sentinel.rs`).
        tasks.push(spawn_switch_master(
            node.clone(),
            cfg.cluster.name.clone(),
            shutdown_rx.clone(),
        ));

        let metrics_addr = match &me.metrics_addr {
            Some(addr) => {
                let listener = TcpListener::bind(addr)
                    .await
                    .map_err(|e| Error::Io(format!("cannot listen on metrics_addr {addr}: {e}")))?;
                let bound = listener
                    .local_addr()
                    .map_err(|e| Error::Io(e.to_string()))?;
                tasks.push(tokio::spawn(http::run(
                    listener,
                    ctx.clone(),
                    shutdown_rx.clone(),
                )));
                Some(bound)
            }
            None => None,
        };
        if let Some(listener) = tls_listener {
            tasks.push(tokio::spawn(server::run(
                listener,
                ctx.clone(),
                shutdown_rx.clone(),
                server::Transport::Tls,
            )));
        }
        tasks.push(tokio::spawn(server::run(
            redis_listener,
            ctx.clone(),
            shutdown_rx,
            server::Transport::Plain,
        )));

        tracing::info!(
            node_id,
            %redis_addr,
            %raft_addr,
            ?tls_addr,
            ?metrics_addr,
            cluster = %cfg.cluster.name,
            "node started"
        );
        Ok(Node {
            raft: node,
            redis_addr,
            raft_addr,
            tls_addr,
            metrics_addr,
            ctx,
            shutdown_tx,
            tasks,
            _raft_thread: raft_thread,
        })
    }

    /// `--join`: asks the member at `member` (a Redis address) to add this node, and returns
    /// once this node is a voter. Does nothing if it already is one (a restart after joining).
    /// Retries while the answer is `TRYAGAIN` or the member cannot be reached; fails with the
    /// cluster's reason otherwise (e.g. another node already uses these addresses).
    pub async fn join(&self, member: &str, password: Option<&str>) -> Result<()> {
        let me = self.raft.id;
        if self
            .raft
            .members()
            .get(&me)
            .is_some_and(|(_, voter)| *voter)
        {
            tracing::info!("already a voter; nothing to join");
            return Ok(());
        }
        let node = self.ctx.advertised.clone();
        let give_up = CATCH_UP_TIMEOUT * 2;
        let deadline = tokio::time::Instant::now() + give_up;
        let mut last = String::new();
        while tokio::time::Instant::now() < deadline {
            match join_once(member, password, me, &node).await {
                Ok(()) => {
                    tracing::info!(member, "joined the cluster as a voter");
                    return Ok(());
                }
                Err(JoinError::Retry(why)) => {
                    tracing::info!(member, reason = %why, "join: retrying");
                    last = why;
                }
                Err(JoinError::Refused(why)) => {
                    return Err(Error::ConfigText(format!(
                        "--join {member}: the cluster refused to add node {me}: {why}"
                    )))
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        Err(Error::Io(format!(
            "--join {member}: gave up after {give_up:?}; last: {last}"
        )))
    }

    /// Resolves when a client asked this node to stop (`SHUTDOWN`).
    pub async fn stop_requested(&self) {
        self.ctx.stop_requested.notified().await;
    }

    /// Moves leadership away if this node leads, so that stopping it costs the cluster no
    /// election timeout: the write stall is one transfer (the target's election and blank
    /// entry), not an election timeout. Best effort: on failure the node stops anyway.
    pub async fn step_down(&self) {
        if !self.raft.is_leader() {
            return;
        }
        let voters = self.raft.members().values().filter(|(_, v)| *v).count();
        if voters < 2 {
            return;
        }
        let started = std::time::Instant::now();
        match self
            .raft
            .admin(AdminRequest::Transfer { to: None }, Duration::from_secs(5))
            .await
        {
            Ok(leader) => tracing::info!(
                leader,
                took_ms = started.elapsed().as_millis() as u64,
                "leadership handed over before stopping"
            ),
            Err(e) => tracing::warn!(error = %e, "could not hand leadership over; stopping anyway"),
        }
    }

    /// Resolves when this node's Raft has stopped on its own (a fatal error such as a failed
    /// log flush: FailStop), with the reason.
    pub async fn fatal(&self) -> String {
        self.raft.stopped().await
    }

    /// Stops gracefully: hands leadership over if this node leads ([`Self::step_down`]), then
    /// stops accepting clients and peers, then stops Raft.
    pub async fn shutdown(self) {
        self.step_down().await;
        let _ = self.shutdown_tx.send(true);
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
        }
        self.raft.shutdown().await;
    }
}

/// Why one join attempt failed.
enum JoinError {
    /// Worth another try (no leader yet, member unreachable, catch-up still running).
    Retry(String),
    /// The cluster said no; retrying would not help.
    Refused(String),
}

/// Sends `RAFT.ADDNODE` for this node to `member` once.
async fn join_once(
    member: &str,
    password: Option<&str>,
    me: u64,
    node: &PeerNode,
) -> std::result::Result<(), JoinError> {
    use crate::client::{Client, Reply};
    let retry = |e: std::io::Error| JoinError::Retry(e.to_string());
    let mut c = Client::connect(member, Duration::from_secs(2))
        .await
        .map_err(retry)?;
    if let Some(pw) = password {
        if let Reply::Error(e) = c
            .call(&[b"AUTH", pw.as_bytes()], |_| {})
            .await
            .map_err(retry)?
        {
            return Err(JoinError::Refused(e));
        }
    }
    let id = me.to_string();
    let reply = c
        .call(
            &[
                b"RAFT.ADDNODE",
                id.as_bytes(),
                node.raft_addr.as_bytes(),
                node.redis_addr.as_bytes(),
            ],
            |_| {},
        )
        .await
        .map_err(retry)?;
    match reply {
        Reply::Error(e) if e.starts_with("TRYAGAIN") => Err(JoinError::Retry(e)),
        Reply::Error(e) => Err(JoinError::Refused(e)),
        _ => Ok(()),
    }
}

/// Publishes `+switch-master <cluster> <old ip> <old port> <new ip> <new port>` on this node
/// when the leader it knows moves from one node to another (an election in between is not a
/// switch: the message names the last leader and the next one), as a Sentinel does after a
/// failover, so Sentinel clients that subscribe to it move at once.
fn spawn_switch_master(
    node: Arc<RaftNode>,
    cluster: String,
    mut shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut known = node.leader();
        let mut last = known.clone();
        let channel = bytes::Bytes::from_static(b"+switch-master");
        loop {
            let change = tokio::select! {
                change = node.leader_change(&known) => change,
                _ = shutdown.changed() => return,
            };
            let Some(now) = change else { return };
            if let (Some((old_id, old)), Some((new_id, new))) = (&last, &now) {
                if old_id != new_id {
                    let msg = crate::commands::switch_master_message(&cluster, old, new);
                    node.pubsub.publish(&channel, &msg);
                }
            }
            if now.is_some() {
                last = now.clone();
            }
            known = now;
        }
    })
}
