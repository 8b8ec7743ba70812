//! The HTTP port (`metrics_addr`): Prometheus `/metrics`, `/health` and `/ready`, and the web
//! console (`console/`) under `/` and `/api/`.
//!
//! Owns the HTTP listener (plain or HTTPS: `[tls] metrics`) and the exposition of every
//! metric; knows Raft only through `RaftNode` (metrics, liveness verdicts) and the rest
//! through `ServerContext`. HTTP/1.1 by hyper, routed by axum; a request head must arrive
//! within [`READ_TIMEOUT`], and at most [`connection_cap`] connections are served at once
//! (HttpConnectionCap: a connection beyond them gets `503` and is closed at once, so a flood of
//! idle or slow HTTP connections cannot use up the process's file descriptors and starve the
//! Redis port); a response the client stops reading is cut off after [`WRITE_STALL`]
//! (WriteStallCut, `stall.rs`).
//!
//! | path       | 200 when                                        | else |
//! |------------|-------------------------------------------------|------|
//! | `/health`  | `raft::health::Liveness::health` holds          | 503, with the reason |
//! | `/ready`   | `Liveness::ready` (healthy and caught up)       | 503, with the reason |
//! | `/metrics` | always (text format 0.0.4)                      |      |
//!
//! `/metrics`, `/health` and `/ready` need no login (scrapers and load balancers); the
//! console's pages and API do (`console/auth.rs`).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::commands::table;
use crate::context::ServerContext;
use crate::metrics::{render_labelled, render_one};
use crate::raft::status::Role;
use crate::server::console;
use crate::server::stall::{StallGuard, WRITE_STALL};
use crate::tls::MaybeTls;

/// How long a client may take to send a request head (and, on HTTPS, its handshake).
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// The most HTTP connections served at once (HttpConnectionCap): scrapers, probes and a few
/// console pages (each open page holds one event stream) need far fewer. Never more than a
/// quarter of the process's file descriptor limit ([`connection_cap`]).
pub const MAX_CONNECTIONS: usize = 512;

/// [`MAX_CONNECTIONS`], or a quarter of `RLIMIT_NOFILE` when that is less (at least 16), so
/// the HTTP port can never take the descriptors the Redis port and the peers need.
pub fn connection_cap() -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass and reads nothing else.
    let nofile = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        usize::try_from(lim.rlim_cur).unwrap_or(usize::MAX)
    } else {
        usize::MAX
    };
    (nofile / 4).clamp(16, MAX_CONNECTIONS)
}

/// What a connection beyond [`connection_cap`] is sent before it is closed.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-type: \
text/plain; charset=utf-8\r\ncontent-length: 31\r\n\r\ntoo many HTTP connections open\n";

/// Serves HTTP on `listener` until `shutdown` turns true.
pub async fn run(
    listener: TcpListener,
    ctx: Arc<ServerContext>,
    mut shutdown: watch::Receiver<bool>,
) {
    let https = ctx
        .tls
        .as_ref()
        .is_some_and(|t| t.https_acceptor().is_some());
    let app = router(ctx.clone(), https);
    let cap = connection_cap();
    let slots = Arc::new(tokio::sync::Semaphore::new(cap));
    loop {
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            // HttpConnectionCap: answered (if the socket takes it at once) and closed now.
            let _ = stream.try_write(BUSY);
            tracing::debug!("HTTP connection refused: {cap} open");
            continue;
        };
        let ctx = ctx.clone();
        let app = app.clone();
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _slot = slot;
            // HTTPS (`[tls] metrics`): the handshake within the request's read timeout.
            let stream = match ctx.tls.as_ref().and_then(|t| t.https_acceptor()) {
                Some(tls) => match tokio::time::timeout(READ_TIMEOUT, tls.accept(stream)).await {
                    Ok(Ok(s)) => MaybeTls::from(s),
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "metrics TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                },
                None => MaybeTls::from(stream),
            };
            let service = hyper_util::service::TowerToHyperService::new(app);
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(READ_TIMEOUT)
                .serve_connection(TokioIo::new(StallGuard::new(stream, WRITE_STALL)), service);
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "metrics connection");
                    }
                }
                // A console's event stream would otherwise outlive the node.
                _ = shutdown.changed() => {}
            }
        });
    }
}

const TEXT: &str = "text/plain; charset=utf-8";
const PROMETHEUS: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every route of the HTTP port.
fn router(ctx: Arc<ServerContext>, https: bool) -> Router {
    let probes = Router::new()
        .route("/health", get(health))
        .route("/healthz", get(health))
        .route("/ready", get(ready))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .with_state(ctx.clone());
    probes
        .merge(console::router(ctx, https))
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                [(header::CONTENT_TYPE, TEXT)],
                "try /metrics, /health, /ready, or / for the console\n",
            )
        })
}

async fn health(axum::extract::State(ctx): axum::extract::State<Arc<ServerContext>>) -> Response {
    verdict(ctx.node.health())
}

async fn ready(axum::extract::State(ctx): axum::extract::State<Arc<ServerContext>>) -> Response {
    verdict(ctx.node.ready())
}

async fn metrics(axum::extract::State(ctx): axum::extract::State<Arc<ServerContext>>) -> Response {
    ([(header::CONTENT_TYPE, PROMETHEUS)], exposition(&ctx)).into_response()
}

fn verdict(v: Result<(), String>) -> Response {
    match v {
        Ok(()) => ([(header::CONTENT_TYPE, TEXT)], "ok\n").into_response(),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, TEXT)],
            format!("{why}\n"),
        )
            .into_response(),
    }
}

/// Every metric of this node in Prometheus's text format.
pub fn exposition(ctx: &ServerContext) -> String {
    let node = &ctx.node;
    let m = node.status();
    let nm = &node.node_metrics;
    let mut out = String::with_capacity(8 * 1024);
    let idx = |l: &Option<crate::raft::status::LogPosition>| l.as_ref().map_or(0, |l| l.index());

    // raft
    render_one(
        &mut out,
        "gauge",
        "redraft_raft_node_id",
        "This node's id.",
        node.id,
    );
    render_one(
        &mut out,
        "gauge",
        "redraft_raft_term",
        "The current Raft term.",
        m.current_term,
    );
    let states = [
        ("leader", Role::Leader),
        ("follower", Role::Follower),
        ("candidate", Role::Candidate),
        ("learner", Role::Learner),
        ("shutdown", Role::Shutdown),
    ];
    render_labelled(
        &mut out,
        "gauge",
        "redraft_raft_role",
        "1 for this node's Raft role, 0 for the others.",
        "role",
        states
            .iter()
            .map(|(name, s)| (name.to_string(), u64::from(m.state == *s))),
    );
    render_one(
        &mut out,
        "gauge",
        "redraft_raft_has_leader",
        "1 if this node knows a leader.",
        u64::from(m.current_leader.is_some()),
    );
    render_one(
        &mut out,
        "gauge",
        "redraft_raft_leader_id",
        "The leader this node knows (0: none).",
        m.current_leader.unwrap_or(0),
    );
    render_one(
        &mut out,
        "counter",
        "redraft_raft_leader_changes_total",
        "Times this node saw a new leader.",
        nm.leader_changes.load(Ordering::Relaxed),
    );
    render_one(
        &mut out,
        "counter",
        "redraft_raft_proposals_committed_total",
        "Client writes through this node that were committed and applied.",
        nm.proposals_committed.load(Ordering::Relaxed),
    );
    render_one(
        &mut out,
        "counter",
        "redraft_raft_proposals_failed_total",
        "Client writes through this node that failed (no leader, outcome unknown, stopped).",
        nm.proposals_failed.load(Ordering::Relaxed),
    );
    render_one(
        &mut out,
        "counter",
        "redraft_raft_leader_transfers_total",
        "Leadership transfers this node started (RAFT.TRANSFER, SHUTDOWN).",
        nm.leader_transfers.load(Ordering::Relaxed),
    );
    render_one(
        &mut out,
        "gauge",
        "redraft_raft_last_log_index",
        "The last index in this node's log.",
        m.last_log_index.unwrap_or(0),
    );
    render_one(
        &mut out,
        "gauge",
        "redraft_raft_commit_index",
        "The highest index this node knows to be committed.",
        idx(&m.local_committed),
    );
    render_one(
        &mut out,
        "gauge",
        "redraft_raft_apply_index",
        "The highest index applied to this node's state machine.",
        idx(&m.last_applied),
    );
    render_one(
        &mut out,
        "gauge",
        "redraft_raft_snapshot_index",
        "The last index covered by this node's snapshot.",
        idx(&m.snapshot),
    );
    let membership = &m.membership;
    render_one(
        &mut out,
        "gauge",
        "redraft_raft_voters",
        "Voters in the membership this node has.",
        membership.voter_ids().count() as u64,
    );
    render_one(
        &mut out,
        "gauge",
        "redraft_raft_learners",
        "Learners in the membership this node has.",
        membership.learner_ids().count() as u64,
    );
    if let Some(repl) = &m.replication {
        let last = m.last_log_index.unwrap_or(0);
        let peers: Vec<(u64, u64)> = repl
            .iter()
            .filter(|(id, _)| **id != node.id)
            .map(|(id, l)| (*id, idx(l)))
            .collect();
        render_labelled(
            &mut out,
            "gauge",
            "redraft_raft_peer_match_index",
            "The last index the leader knows each peer has (leader only).",
            "peer",
            peers.iter().map(|(id, i)| (id.to_string(), *i)),
        );
        render_labelled(
            &mut out,
            "gauge",
            "redraft_raft_peer_lag_entries",
            "How many entries each peer is behind the leader's log (leader only).",
            "peer",
            peers
                .iter()
                .map(|(id, i)| (id.to_string(), last.saturating_sub(*i))),
        );
    }

    // log
    let fs = &node.flush_stats;
    render_one(
        &mut out,
        "counter",
        "redraft_log_flushes_total",
        "Log flushes (fsync) that acknowledged appends.",
        fs.flushes.load(Ordering::Relaxed),
    );
    render_one(
        &mut out,
        "counter",
        "redraft_log_syncs_total",
        "Every log sync (fdatasync): for appends, votes and the committed index.",
        fs.syncs.load(Ordering::Relaxed),
    );
    render_one(
        &mut out,
        "counter",
        "redraft_log_bytes_written_total",
        "Bytes of records written to the log.",
        fs.bytes.load(Ordering::Relaxed),
    );
    render_one(
        &mut out,
        "counter",
        "redraft_log_entries_flushed_total",
        "Log entries acknowledged by those flushes.",
        fs.entries.load(Ordering::Relaxed),
    );
    fs.flush_seconds.render(
        &mut out,
        "redraft_log_flush_duration_seconds",
        "How long one log flush (group commit) took.",
    );
    fs.entries_per_flush.render(
        &mut out,
        "redraft_log_flush_entries",
        "Log entries acknowledged per flush (group commit size).",
    );

    // snapshot
    render_one(
        &mut out,
        "counter",
        "redraft_snapshot_builds_total",
        "Snapshots this node built.",
        nm.snapshot_builds.load(Ordering::Relaxed),
    );
    render_one(
        &mut out,
        "counter",
        "redraft_flush_announcements_total",
        "As leader: log flushes announced to a follower for early commit.",
        nm.flush_announcements.load(Ordering::Relaxed),
    );
    render_one(
        &mut out,
        "counter",
        "redraft_early_commits_total",
        "As follower: commits made from the leader's announced flush and this node's own.",
        nm.early_commits.load(Ordering::Relaxed),
    );
    render_one(
        &mut out,
        "counter",
        "redraft_commit_probes_skipped_total",
        "As leader: commit-only AppendEntries not sent because the follower was told of the commit by an announcement.",
        nm.commit_probes_skipped.load(Ordering::Relaxed),
    );
    render_one(
        &mut out,
        "counter",
        "redraft_expiry_wakeups_total",
        "Times the expiry timer woke (deadlines, leadership changes, its idle recheck).",
        nm.expiry_wakeups.load(Ordering::Relaxed),
    );
    render_one(
        &mut out,
        "counter",
        "redraft_snapshot_deltas_total",
        "Of the snapshots this node built, those appended to the current file as a delta.",
        nm.snapshot_deltas.load(Ordering::Relaxed),
    );
    render_one(
        &mut out,
        "gauge",
        "redraft_snapshot_bytes",
        "Size of the current snapshot file (its full dump and the deltas after it).",
        nm.snapshot_bytes.load(Ordering::Relaxed),
    );
    render_one(
        &mut out,
        "counter",
        "redraft_snapshot_installs_total",
        "Snapshots this node installed from a leader.",
        nm.snapshot_installs.load(Ordering::Relaxed),
    );
    nm.snapshot_build_seconds.render(
        &mut out,
        "redraft_snapshot_build_duration_seconds",
        "How long building and persisting a snapshot took.",
    );

    // read gate (`raft/read.rs`)
    let rs = &node.reads.stats;
    let get = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    render_labelled(
        &mut out,
        "counter",
        "redraft_read_served_total",
        "Reading commands served, per read mode.",
        "mode",
        [
            ("linearizable".to_string(), get(&rs.linearizable)),
            ("lease".to_string(), get(&rs.lease)),
            ("stale".to_string(), get(&rs.stale)),
        ],
    );
    for (name, help, value) in [
        (
            "redraft_read_stale_unsynced_total",
            "Stale reads served while no leader had been heard from for an election timeout.",
            get(&rs.stale_unsynced),
        ),
        (
            "redraft_read_index_rounds_total",
            "ReadIndex rounds run (each shared by every read waiting at its start).",
            get(&rs.index_rounds),
        ),
        (
            "redraft_read_index_reads_total",
            "Read barriers served by those rounds.",
            get(&rs.index_reads),
        ),
        (
            "redraft_read_lease_checks_total",
            "Lease checks asked of the Raft core.",
            get(&rs.lease_rounds),
        ),
        (
            "redraft_read_lease_hits_total",
            "Read barriers served by the leader lease (on a follower, the leader's), without a quorum round.",
            get(&rs.lease_hits),
        ),
        (
            "redraft_read_lease_fast_hits_total",
            "Lease hits decided from the published metrics, without a message to the Raft core.",
            get(&rs.lease_fast_hits),
        ),
        (
            "redraft_read_lease_fallbacks_total",
            "Lease-mode read barriers that took a ReadIndex round (no lease held).",
            get(&rs.lease_fallbacks),
        ),
        (
            "redraft_read_lease_leader_rounds_total",
            "On a follower: read indexes asked of the leader's lease for lease-mode reads.",
            get(&rs.leader_lease_rounds),
        ),
    ] {
        render_one(&mut out, "counter", name, help, value);
    }

    // server
    render_one(
        &mut out,
        "gauge",
        "redraft_server_connected_clients",
        "Client connections open now.",
        ctx.connected.load(Ordering::Relaxed) as u64,
    );
    render_one(
        &mut out,
        "counter",
        "redraft_server_connections_total",
        "Client connections accepted.",
        ctx.total_connections.load(Ordering::Relaxed),
    );
    render_one(
        &mut out,
        "counter",
        "redraft_server_rejected_connections_total",
        "Client connections refused (maxclients).",
        ctx.rejected_connections.load(Ordering::Relaxed),
    );
    let commands = table::commands();
    render_labelled(
        &mut out,
        "counter",
        "redraft_server_commands_total",
        "Commands received, per command (unknown: not a command redraft knows).",
        "command",
        commands
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.to_string(), ctx.command_counts.get(i)))
            .chain(std::iter::once((
                "unknown".to_string(),
                ctx.command_counts.get(commands.len()),
            )))
            .filter(|(_, n)| *n > 0),
    );

    // store
    let (keys, revision, compact_revision) = node.read_store(|store| {
        (
            store.len() as u64,
            store.revision(),
            store.compact_revision(),
        )
    });
    render_one(
        &mut out,
        "gauge",
        "redraft_store_keys",
        "Live keys in the keyspace.",
        keys,
    );
    render_one(
        &mut out,
        "gauge",
        "redraft_store_revision",
        "The store's current revision.",
        revision,
    );
    render_one(
        &mut out,
        "gauge",
        "redraft_store_compact_revision",
        "The store's compact revision (older revisions are gone).",
        compact_revision,
    );
    out
}
