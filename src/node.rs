//! Assembles one node: data dir identity, the Raft log (WAL), the state machine, Raft, the peer RPC
//! server and the Redis listener; then runs until asked to stop and shuts down in order.
//!
//! # Start-up order
//!
//! ```text
//! config validated ─▶ data dir identity checked ─▶ log store + state machine opened
//!   ─▶ Raft built (restores snapshot + re-applies committed log) ─▶ peer listener
//!   ─▶ initialise if the log is empty ─▶ Redis listener ─▶ serve until shutdown
//! ```
//!
//! # Initialisation is safe
//!
//! A node whose Raft log is empty may call `initialize` with the membership from
//! `cluster.toml`, and only when all of these hold:
//!
//! - it was not started with `--join` (a joining node is added by the cluster, never forms
//!   one);
//! - every other member listed in `cluster.toml` answered a `Status` peer RPC (authenticated
//!   with the cluster name and secret like any peer RPC), and none of them is initialised.
//!
//! One initialised member is enough to give up for good: a cluster exists, and a pristine node
//! listed in `cluster.toml` (a wiped data dir, a node whose config lists old members) waits
//! until the leader replicates to it (it is still a member) or until `RAFT.ADDNODE` adds it.
//! An unreachable member postpones the decision (retried every two heartbeats), so a second
//! cluster is never formed from a partial view; the cost is that the very first start of a
//! cluster needs every listed node up. (A data dir also names its cluster in `IDENTITY`, so a
//! node never mixes two clusters' state.)
//!
//! Every node of a pristine cluster that gets this far proposes the identical membership at
//! log id `((term 0, node 0), 0)`, which openraft documents as safe: voting elects one leader.
//! The lowest id tries at once and the others after a staggered delay, by which time they find
//! it initialised, so a normal start has one election. A node with any log or vote does not
//! initialise; it finds its state on disk.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::{ensure_data_dir_identity, ClusterConfig};
use crate::error::{Error, Result};
use crate::raft::health::{self, Liveness};
use crate::raft::log_store::LogStore;
use crate::raft::membership::{AdminRequest, CATCH_UP_TIMEOUT};
use crate::raft::network::{NetworkFactory, PeerSlot, Peers};
use crate::raft::read::Reads;
use crate::raft::rpc::{self, PeerIdentity, RpcRequest, RpcResponse};
use crate::raft::state_machine::StateMachineStore;
use crate::raft::typ::Raft;
use crate::raft::{PeerNode, RaftNode};
use crate::server::{self, http, ServerContext};
use crate::watch::pubsub::{spawn_notifier, PubSub};

/// Initialises the cluster with `members` after `delay`, only while it is safe: this node is
/// still uninitialised, every other member answered, and none of them is initialised (see
/// "Initialisation is safe" above). Gives up for good as soon as one member is initialised.
async fn initialise_when_safe(
    raft: Raft,
    members: BTreeMap<u64, PeerNode>,
    me: PeerIdentity,
    delay: Duration,
    retry: Duration,
) {
    tokio::time::sleep(delay).await;
    loop {
        match raft.is_initialized().await {
            Ok(false) => {}
            _ => return,
        }
        let mut unreachable = Vec::new();
        for (id, node) in members.iter().filter(|(id, _)| **id != me.node_id) {
            let slot = PeerSlot::new(node.raft_addr.clone(), *id, me.clone());
            match slot
                .call(RpcRequest::Status, retry.max(Duration::from_secs(1)))
                .await
            {
                Ok(RpcResponse::Status(st)) if st.initialized => {
                    tracing::warn!(
                        peer = id,
                        "a member of cluster.toml already belongs to an initialised cluster; \
                         this pristine node will not initialise one (it joins when the leader \
                         replicates to it, or after RAFT.ADDNODE)"
                    );
                    return;
                }
                Ok(RpcResponse::Status(_)) => {}
                Ok(other) => unreachable.push(format!("node {id}: answered {other:?}")),
                Err(e) => unreachable.push(format!("node {id}: {e}")),
            }
        }
        if unreachable.is_empty() {
            break;
        }
        tracing::info!(
            waiting_for = ?unreachable,
            "pristine log: initialising once every member of cluster.toml answers"
        );
        tokio::time::sleep(retry).await;
    }
    if !matches!(raft.is_initialized().await, Ok(false)) {
        return;
    }
    tracing::info!(?members, "pristine cluster: initialising the membership");
    if let Err(e) = raft.initialize(members).await {
        // A leader's replication got here first.
        tracing::info!(error = %e, "initialise skipped");
    }
}

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
    /// The HTTP address of `/metrics`, `/health` and `/ready`, when configured.
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// What every session shares; `SHUTDOWN` asks for a stop through it.
    pub ctx: Arc<ServerContext>,
    shutdown_tx: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
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

        let log_store = LogStore::open(&me.data_dir.join("raft-log"))
            .map_err(|e| Error::Storage(format!("{}: {e}", me.data_dir.display())))?;
        let flush_stats = log_store.flush_stats();
        let log_disk = log_store.disk_full_probe();
        let sm = StateMachineStore::open(&me.data_dir.join("snapshot"))
            .map_err(|e| Error::Storage(format!("{}: {e}", me.data_dir.display())))?;
        let node_metrics = sm.metrics();

        let election_timeout_max = cfg.raft.election_timeout_ms * 2;
        let raft_cfg = openraft::Config {
            cluster_name: cfg.cluster.name.clone(),
            heartbeat_interval: cfg.raft.heartbeat_ms,
            election_timeout_min: cfg.raft.election_timeout_ms,
            election_timeout_max,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(cfg.raft.snapshot_every),
            max_in_snapshot_log_to_keep: cfg.raft.max_in_snapshot_log_to_keep,
            install_snapshot_timeout: 30_000,
            // Standard Raft: a restarted node wins an election and commits its term's blank
            // entry before it leads. openraft's leader restore would let the old leader resume
            // in the same term with a commit index behind its log (our state machine is in
            // memory and is rebuilt by re-applying the log), and serve a stale read
            // (tests/regressions/stale_read_after_full_restart.rs).
            enable_leader_restore: Some(false),
            ..Default::default()
        }
        .validate()
        .map_err(|e| Error::ConfigText(format!("raft: {e}")))?;

        let identity = PeerIdentity {
            cluster: cfg.cluster.name.clone(),
            secret: cfg.cluster.secret.clone(),
            node_id,
        };
        let raft: Raft = openraft::Raft::new(
            node_id,
            Arc::new(raft_cfg),
            NetworkFactory::new(identity.clone()),
            log_store,
            sm.clone(),
        )
        .await
        .map_err(|e| Error::Storage(format!("cannot start raft: {e}")))?;

        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        let liveness = Arc::new(Liveness::new(Duration::from_millis(
            cfg.raft.election_timeout_ms,
        )));
        tokio::spawn(health::watch(
            raft.clone(),
            liveness.clone(),
            node_metrics.clone(),
        ));

        let initialized = raft
            .is_initialized()
            .await
            .map_err(|e| Error::Storage(e.to_string()))?;
        if initialized {
            // VoteAfterRestart: before the peer port opens, so no vote slips through.
            liveness.refuse_votes_for(Duration::from_millis(election_timeout_max));
        }

        let peer_listener = TcpListener::bind(&me.raft_addr)
            .await
            .map_err(|e| Error::Io(format!("cannot listen on raft_addr {}: {e}", me.raft_addr)))?;
        let raft_addr = peer_listener
            .local_addr()
            .map_err(|e| Error::Io(e.to_string()))?;
        let pubsub = PubSub::new();
        tasks.push(tokio::spawn(rpc::serve(
            peer_listener,
            raft.clone(),
            identity.clone(),
            liveness.clone(),
            pubsub.clone(),
            sm.clone(),
            shutdown_rx.clone(),
        )));

        if opts.join.is_some() {
            if !initialized {
                tracing::info!("pristine log and --join: waiting to be added to the cluster");
            }
        } else if !initialized {
            let members: BTreeMap<u64, PeerNode> = cfg
                .nodes
                .iter()
                .map(|n| {
                    let node = PeerNode {
                        raft_addr: n.raft_addr.clone(),
                        redis_addr: n.redis_addr.clone(),
                    };
                    (n.id, node)
                })
                .collect();
            // The lowest id tries at once; the others wait two election timeouts (more for
            // higher ranks) and find the cluster initialised by then. All may initialise (that
            // is safe), but staggering avoids a second election when a late node's term-1
            // candidacy outranks a leader already elected.
            let rank = members.keys().position(|id| *id == node_id).unwrap_or(0) as u64;
            let delay = Duration::from_millis(rank * 2 * cfg.raft.election_timeout_ms);
            let retry = Duration::from_millis(cfg.raft.heartbeat_ms * 2);
            tokio::spawn(initialise_when_safe(
                raft.clone(),
                members,
                identity.clone(),
                delay,
                retry,
            ));
        }

        let node = Arc::new(RaftNode {
            id: node_id,
            raft: raft.clone(),
            sm,
            peers: Arc::new(Peers::new(identity)),
            flush_stats,
            log_disk,
            write_timeout: Duration::from_millis(cfg.server.write_timeout_ms),
            reads: Reads::new(
                cfg.raft.read_lease(),
                Duration::from_millis(cfg.raft.election_timeout_ms),
                liveness.clone(),
            ),
            node_metrics,
            liveness,
            pubsub: pubsub.clone(),
            forwarders: Default::default(),
        });

        // Only the leader expires keys; the task idles while this node follows.
        tasks.push(crate::raft::spawn_expiry(node.clone(), shutdown_rx.clone()));
        // Only the leader compacts; every node samples its applied revision for the time rule.
        tasks.extend(crate::raft::spawn_compaction(
            node.clone(),
            cfg.store.effective(),
            shutdown_rx.clone(),
        ));

        let redis_listener = TcpListener::bind(&me.redis_addr).await.map_err(|e| {
            Error::Io(format!(
                "cannot listen on redis_addr {}: {e}",
                me.redis_addr
            ))
        })?;
        let redis_addr = redis_listener
            .local_addr()
            .map_err(|e| Error::Io(e.to_string()))?;
        let ctx = Arc::new(ServerContext::new(node.clone(), &cfg, redis_addr.port()));
        // Keyspace notifications from applied entries, with this node's CONFIG flags.
        let notifier_ctx = ctx.clone();
        tasks.push(spawn_notifier(
            pubsub,
            node.sm.subscribe(),
            move || notifier_ctx.settings.notify_keyspace_events().0,
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
        tasks.push(tokio::spawn(server::run(
            redis_listener,
            ctx.clone(),
            shutdown_rx,
        )));

        tracing::info!(
            node_id,
            %redis_addr,
            %raft_addr,
            ?metrics_addr,
            cluster = %cfg.cluster.name,
            "node started"
        );
        Ok(Node {
            raft: node,
            redis_addr,
            raft_addr,
            metrics_addr,
            ctx,
            shutdown_tx,
            tasks,
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
        use openraft::async_runtime::WatchReceiver;
        let mut rx = self.raft.raft.metrics();
        loop {
            if let Err(e) = &rx.borrow_watched().running_state {
                return e.to_string();
            }
            if rx.changed().await.is_err() {
                return "raft metrics closed".to_string();
            }
        }
    }

    /// Stops gracefully: hands leadership over if this node leads ([`Self::step_down`]), then
    /// stops accepting clients and peers, then stops Raft.
    pub async fn shutdown(self) {
        self.step_down().await;
        let _ = self.shutdown_tx.send(true);
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
        }
        if let Err(e) = self.raft.raft.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown");
        }
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
