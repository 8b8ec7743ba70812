//! The HTTP port (`metrics_addr`): Prometheus `/metrics`, `/health` and `/ready`.
//!
//! Owns the HTTP listener and the exposition of every metric; knows Raft only through
//! `RaftNode` (metrics, liveness verdicts) and the rest through `ServerContext`.
//!
//! A deliberately small HTTP/1.1 server: `GET` (and `HEAD`) only, the request head read up to
//! [`MAX_HEAD`] bytes within [`READ_TIMEOUT`], one response per connection, then close. That is
//! all a Prometheus scraper, a load balancer's health check or `curl` needs, and it keeps an
//! HTTP stack out of the build.
//!
//! | path       | 200 when                                        | else |
//! |------------|-------------------------------------------------|------|
//! | `/health`  | `raft::health::Liveness::health` holds          | 503, with the reason |
//! | `/ready`   | `Liveness::ready` (healthy and caught up)       | 503, with the reason |
//! | `/metrics` | always (text format 0.0.4)                      |      |

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::raft::status::Role;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::commands::table;
use crate::context::ServerContext;
use crate::metrics::{render_labelled, render_one};
use crate::tls::MaybeTls;

/// Largest request head read.
const MAX_HEAD: usize = 8 * 1024;
/// How long a client may take to send its request head.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves HTTP on `listener` until `shutdown` turns true.
pub async fn run(
    listener: TcpListener,
    ctx: Arc<ServerContext>,
    mut shutdown: watch::Receiver<bool>,
) {
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
        let ctx = ctx.clone();
        tokio::spawn(async move {
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
            if let Err(e) = serve(stream, &ctx).await {
                tracing::debug!(error = %e, "metrics connection");
            }
        });
    }
}

/// Reads one request head and answers it.
async fn serve(mut stream: MaybeTls, ctx: &ServerContext) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    let read = async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.ends_with(b"\n\n") {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
            if head.len() > MAX_HEAD {
                break;
            }
        }
        std::io::Result::Ok(())
    };
    match tokio::time::timeout(READ_TIMEOUT, read).await {
        Ok(r) => r?,
        Err(_) => return Ok(()),
    }
    let (status, content_type, body) = respond(&head, ctx);
    let is_head = head.starts_with(b"HEAD ");
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !is_head {
        out.extend_from_slice(body.as_bytes());
    }
    stream.write_all(&out).await?;
    stream.shutdown().await
}

const TEXT: &str = "text/plain; charset=utf-8";
const PROMETHEUS: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The status line, content type and body for a request head.
fn respond(head: &[u8], ctx: &ServerContext) -> (&'static str, &'static str, String) {
    if head.len() > MAX_HEAD {
        return ("431 Request Header Fields Too Large", TEXT, String::new());
    }
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if method != "GET" && method != "HEAD" {
        return ("405 Method Not Allowed", TEXT, "GET only\n".into());
    }
    let path = target.split('?').next().unwrap_or("");
    match path {
        "/health" | "/healthz" => verdict(ctx.node.health()),
        "/ready" | "/readyz" => verdict(ctx.node.ready()),
        "/metrics" => ("200 OK", PROMETHEUS, exposition(ctx)),
        _ => (
            "404 Not Found",
            TEXT,
            "try /metrics, /health or /ready\n".into(),
        ),
    }
}

fn verdict(v: Result<(), String>) -> (&'static str, &'static str, String) {
    match v {
        Ok(()) => ("200 OK", TEXT, "ok\n".into()),
        Err(why) => ("503 Service Unavailable", TEXT, format!("{why}\n")),
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
