//! Assembles one node: data dir identity, the sled log, the state machine, Raft, the peer RPC
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
//! A node whose Raft log is empty calls `initialize` with the membership from `cluster.toml`.
//! Every node of a pristine cluster proposes the identical membership at log id
//! `((term 0, node 0), 0)`, which openraft documents as safe: voting elects one leader. The
//! lowest id does it at once and the others after a staggered delay, only if no leader has
//! reached them by then, so a normal start has one election. A node with any log or vote does
//! not initialise; it finds its state on disk.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::{ensure_data_dir_identity, ClusterConfig};
use crate::error::{Error, Result};
use crate::raft::log_store::LogStore;
use crate::raft::network::{NetworkFactory, Peers};
use crate::raft::read::{LeaderContact, Reads};
use crate::raft::rpc::{self, PeerIdentity};
use crate::raft::state_machine::StateMachineStore;
use crate::raft::typ::Raft;
use crate::raft::{PeerNode, RaftNode};
use crate::server::{self, ServerContext};

/// Initialises the membership after `delay` unless this node was initialised meanwhile.
async fn initialise_later(raft: Raft, members: BTreeMap<u64, PeerNode>, delay: Duration) {
    tokio::time::sleep(delay).await;
    match raft.is_initialized().await {
        Ok(false) => {}
        _ => return,
    }
    tracing::info!(
        ?members,
        "pristine log: initialising the cluster membership"
    );
    if let Err(e) = raft.initialize(members).await {
        // A leader's replication got here first.
        tracing::info!(error = %e, "initialise skipped");
    }
}

/// A running node: its Raft handle and a way to stop it.
pub struct Node {
    pub raft: Arc<RaftNode>,
    pub redis_addr: std::net::SocketAddr,
    pub raft_addr: std::net::SocketAddr,
    shutdown_tx: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Node {
    /// Starts node `node_id` of `cfg`. Returns once both listeners are bound.
    pub async fn start(cfg: ClusterConfig, node_id: u64) -> Result<Node> {
        cfg.validate()?;
        let me = cfg.node(node_id)?.clone();
        ensure_data_dir_identity(&me.data_dir, &cfg.cluster.name, node_id)?;

        let log_store = LogStore::open(&me.data_dir.join("raft-log"))
            .map_err(|e| Error::Storage(format!("{}: {e}", me.data_dir.display())))?;
        let flush_stats = log_store.flush_stats();
        let sm = StateMachineStore::open(&me.data_dir.join("snapshot"))
            .map_err(|e| Error::Storage(format!("{}: {e}", me.data_dir.display())))?;

        let raft_cfg = openraft::Config {
            cluster_name: cfg.cluster.name.clone(),
            heartbeat_interval: cfg.raft.heartbeat_ms,
            election_timeout_min: cfg.raft.election_timeout_ms,
            election_timeout_max: cfg.raft.election_timeout_ms * 2,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(cfg.raft.snapshot_every),
            max_in_snapshot_log_to_keep: cfg.raft.max_in_snapshot_log_to_keep,
            install_snapshot_timeout: 30_000,
            // Standard Raft: a restarted node wins an election and commits its term's blank
            // entry before it leads. openraft's leader restore would let the old leader resume
            // in the same term with a commit index behind its log (our state machine is in
            // memory and `committed` is not flushed), and serve a stale read
            // (tests/regress_issue4_stale_read_after_full_restart.rs).
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

        let peer_listener = TcpListener::bind(&me.raft_addr)
            .await
            .map_err(|e| Error::Io(format!("cannot listen on raft_addr {}: {e}", me.raft_addr)))?;
        let raft_addr = peer_listener
            .local_addr()
            .map_err(|e| Error::Io(e.to_string()))?;
        let contact = Arc::new(LeaderContact::default());
        tasks.push(tokio::spawn(rpc::serve(
            peer_listener,
            raft.clone(),
            identity.clone(),
            contact.clone(),
            shutdown_rx.clone(),
        )));

        if !raft
            .is_initialized()
            .await
            .map_err(|e| Error::Storage(e.to_string()))?
        {
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
            // The lowest id initialises at once; the others wait two election timeouts (more
            // for higher ranks) and initialise only if no leader has reached them meanwhile.
            // All may initialise (that is safe), but staggering avoids a second election when
            // a late node's term-1 candidacy outranks a leader already elected.
            let rank = members.keys().position(|id| *id == node_id).unwrap_or(0) as u64;
            let delay = Duration::from_millis(rank * 2 * cfg.raft.election_timeout_ms);
            tokio::spawn(initialise_later(raft.clone(), members, delay));
        }

        let node = Arc::new(RaftNode {
            id: node_id,
            raft: raft.clone(),
            sm,
            peers: Arc::new(Peers::new(identity)),
            flush_stats,
            write_timeout: Duration::from_millis(cfg.server.write_timeout_ms),
            reads: Reads::new(
                cfg.raft.read_lease(),
                Duration::from_millis(cfg.raft.election_timeout_ms),
                contact,
            ),
        });

        // Only the leader expires keys; the task idles while this node follows.
        tasks.push(crate::raft::spawn_expiry(node.clone(), shutdown_rx.clone()));

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
        tasks.push(tokio::spawn(server::run(redis_listener, ctx, shutdown_rx)));

        tracing::info!(node_id, %redis_addr, %raft_addr, cluster = %cfg.cluster.name, "node started");
        Ok(Node {
            raft: node,
            redis_addr,
            raft_addr,
            shutdown_tx,
            tasks,
        })
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

    /// Stops accepting clients and peers, then stops Raft.
    pub async fn shutdown(self) {
        let _ = self.shutdown_tx.send(true);
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
        }
        if let Err(e) = self.raft.raft.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown");
        }
    }
}
