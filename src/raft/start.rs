//! Starts this node's Raft: opens the log store (WAL) and the state machine, builds openraft,
//! opens the peer listener, initialises a pristine cluster when that is safe, and starts the
//! leader's background tasks (expiry, compaction). `node.rs` calls [`start`] and builds the
//! client-facing listeners on the [`RaftNode`] it returns.
//!
//! # Start-up order
//!
//! ```text
//! log store + state machine opened ─▶ Raft built (restores snapshot + re-applies committed
//!   log) ─▶ votes refused and no campaign for one lease if the log is not empty
//!   (VoteAfterRestart, CampaignAfterRestart) ─▶ peer
//!   listener ─▶ initialise if the log is empty ─▶ RaftNode ─▶ expiry and compaction tasks
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

use super::batcher::Batcher;
use super::early_commit::EarlyCommit;
use super::forward::WriteForwarders;
use super::health::{self, Liveness};
use super::log_store::LogStore;
use super::network::NetworkFactory;
use super::peer_conn::{PeerSlot, Peers};
use super::pipeline::CommitTold;
use super::read_gate::Reads;
use super::rpc;
use super::runtime::RaftTasks;
use super::state_machine::StateMachineStore;
use super::typ::Raft;
use super::wire::{PeerIdentity, RpcRequest, RpcResponse};
use super::{spawn_compaction, spawn_expiry, spawn_snapshot_trigger, PeerNode, RaftNode};
use crate::config::{ClusterConfig, NodeConfig};
use crate::error::{Error, Result};
use crate::watch::pubsub::PubSub;

/// A started Raft: the node handle, the bound peer address, and the tasks to await on
/// shutdown.
pub struct Started {
    pub node: Arc<RaftNode>,
    pub raft_addr: std::net::SocketAddr,
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Starts Raft for node `node_id` (`me`) of `cfg`, which is validated. `join`: the node was
/// started with `--join` and never initialises a cluster. The tasks end when `shutdown` turns
/// true. Returns once the peer listener is bound.
pub async fn start(
    cfg: &ClusterConfig,
    me: &NodeConfig,
    node_id: u64,
    join: bool,
    tls: Option<Arc<crate::tls::TlsContext>>,
    shutdown: &watch::Receiver<bool>,
) -> Result<Started> {
    // RaftOnItsOwnThread (`runtime.rs`): this runs on Raft's runtime; what a session starts
    // later is spawned there through this handle.
    let raft_tasks = RaftTasks::current();
    let log_store = LogStore::open(&me.data_dir.join("raft-log"))
        .map_err(|e| Error::Storage(format!("{}: {e}", me.data_dir.display())))?;
    log_store.set_node_id(node_id);
    let flush_stats = log_store.flush_stats();
    let log_disk = log_store.disk_full_probe();
    let sm = StateMachineStore::open(&me.data_dir.join("snapshot"))
        .map_err(|e| Error::Storage(format!("{}: {e}", me.data_dir.display())))?;
    let node_metrics = sm.metrics();
    let early = EarlyCommit::new(node_id, &log_store, node_metrics.clone());
    // DurableReads: before openraft starts, since it restores the snapshot at start-up.
    sm.set_commit_gate(log_store.commit_gate());

    // A campaign after [T, 1.2T) of silence, votes refused for 3T/5 after each AppendEntries
    // (`config::ElectionTiming`); the read lease is shorter than that window (LeaseBound).
    let timing = cfg.raft.election_timing();
    let raft_cfg = openraft::Config {
        cluster_name: cfg.cluster.name.clone(),
        heartbeat_interval: cfg.raft.heartbeat_ms,
        election_timeout_min: timing.min_ms,
        election_timeout_max: timing.max_ms,
        // A follower asks whether it would win before it bumps its term. Without it, a
        // follower with a shorter log that times out first raises the term and votes for
        // itself, and may then refuse the up-to-date follower at that term (a lower node id
        // loses the tie), which must wait for another timeout; with it, the refused
        // pre-candidate changes nothing and the up-to-date follower's campaign wins at once.
        enable_pre_vote: Some(true),
        // Turned on below: at once on a pristine node, after the vote-refusal window on a
        // restarted one (CampaignAfterRestart), so no tick can campaign before that is known.
        enable_elect: false,
        // Snapshots are asked for by `snapshot_trigger.rs` alone (revisions, log bytes and the
        // snapshot's size); openraft's policy counts log entries and ignores the size.
        snapshot_policy: openraft::SnapshotPolicy::Never,
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
        tls,
    };
    let raft: Raft = openraft::Raft::new(
        node_id,
        Arc::new(raft_cfg),
        NetworkFactory::new(identity.clone(), Some(early.clone() as Arc<dyn CommitTold>)),
        log_store,
        sm.clone(),
    )
    .await
    .map_err(|e| Error::Storage(format!("cannot start raft: {e}")))?;

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
        liveness.refuse_votes_for(timing.vote_refusal_window());
        // CampaignAfterRestart: nor does this node campaign itself within that window.
        // openraft restores the vote with no lease, so it would campaign after its election
        // timeout alone (2/5 of `election_timeout_ms`), and a peer that no longer hears the
        // old leader (cut off from it) would elect it, while the old leader may still use a
        // lease acknowledged by this node's previous process: up to the window minus the drift
        // margin (LeaseBound, `read.rs`), which is longer than 2/5 whenever the margin is below
        // a fifth. Waiting out the window keeps the whole margin, as for votes.
        let (raft, window) = (raft.clone(), timing.vote_refusal_window());
        tokio::spawn(async move {
            tokio::time::sleep(window).await;
            raft.runtime_config().elect(true);
        });
    } else {
        raft.runtime_config().elect(true);
    }

    let peer_listener = TcpListener::bind(&me.raft_addr)
        .await
        .map_err(|e| Error::Io(format!("cannot listen on raft_addr {}: {e}", me.raft_addr)))?;
    let raft_addr = peer_listener
        .local_addr()
        .map_err(|e| Error::Io(e.to_string()))?;
    let pubsub = PubSub::new();
    let batcher = Batcher::start(raft.clone(), node_metrics.clone());
    tasks.push(tokio::spawn(rpc::serve(
        peer_listener,
        raft.clone(),
        batcher.clone(),
        identity.clone(),
        liveness.clone(),
        pubsub.clone(),
        sm.clone(),
        cfg.raft.read_lease(),
        early.clone(),
        shutdown.clone(),
    )));

    if join {
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

    let peers = Arc::new(Peers::new(identity));
    let write_timeout = Duration::from_millis(cfg.server.write_timeout_ms);
    let node = Arc::new(RaftNode {
        id: node_id,
        raft: raft.clone(),
        sm,
        peers: peers.clone(),
        flush_stats,
        log_disk,
        write_timeout,
        reads: Reads::new(
            cfg.raft.read_lease(),
            Duration::from_millis(cfg.raft.election_timeout_ms),
            liveness.clone(),
        ),
        node_metrics,
        liveness,
        pubsub: pubsub.clone(),
        forwarders: Default::default(),
        batcher,
        write_forwarders: WriteForwarders::new(peers.clone(), write_timeout, raft_tasks.clone()),
        early: early.clone(),
        tasks: raft_tasks,
    });
    // CommittedByDurableMajority (`early_commit.rs`): announces this node's flushes as leader,
    // commits what a leader's flush and its own make a majority of as follower.
    tasks.push(tokio::spawn(early.run(
        raft.clone(),
        peers,
        shutdown.clone(),
    )));

    // Only the leader expires keys; the task idles while this node follows.
    tasks.push(spawn_expiry(node.clone(), shutdown.clone()));
    // Only the leader compacts; every node samples its applied revision for the time rule.
    tasks.extend(spawn_compaction(
        node.clone(),
        cfg.store.effective(),
        shutdown.clone(),
    ));
    // Every node: a snapshot every `snapshot_every` revisions once the log since the last is
    // as large as `snapshot_log_percent` of it (SnapshotEveryRevisions,
    // SnapshotCostsNoMoreThanTheLog).
    tasks.push(spawn_snapshot_trigger(
        node.clone(),
        cfg.raft.snapshot_every,
        cfg.raft.snapshot_log_percent,
        shutdown.clone(),
    ));
    Ok(Started {
        node,
        raft_addr,
        tasks,
    })
}

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
