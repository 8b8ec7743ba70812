//! Cluster administration over RESP (DESIGN §7): the `RAFT.*` commands and `SHUTDOWN`.
//!
//! Parses and answers; the rules of a membership change and the forwarding to the leader live
//! in `raft/membership.rs`. Any node accepts these commands.
//!
//! # Format
//!
//! ```text
//! RAFT.INFO                            → map: id, role, term, leader, leader_redis_addr,
//!                                        last_log_index, commit_index, applied_index,
//!                                        snapshot_index, joint, members (array of maps: id,
//!                                        raft_addr, redis_addr, suffrage voter|learner,
//!                                        match_index and lag as the leader sees them, else nil)
//! RAFT.TRANSFER [id]                   → :new leader id, once it leads (to the most caught-up
//!                                        voter when no id is given)
//! RAFT.SNAPSHOT                        → +OK once a snapshot covers what was applied at the call
//! RAFT.ADDNODE id raft_addr redis_addr → +OK once the node is a voter (learner, caught up, then
//!                                        promoted); -ERR/-TRYAGAIN with the reason otherwise
//! RAFT.REMOVENODE id                   → +OK once the membership without it is committed
//! RAFT.BACKUP                          → bulk: a backup (backup.rs format) of this node's store
//!                                        after a linearizable read barrier: whole history
//!                                        window, revision, compact revision
//! SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] → no reply: a leader hands leadership over first, then
//!                                        the node stops (Redis's SHUTDOWN closes the connection)
//! SHUTDOWN ABORT                       → -ERR No shutdown in progress.
//! ```

use std::time::Duration;

use bytes::Bytes;

use super::raft_errors::{admin_error, snapshot_error};
use super::reply::bulk;
use super::{CommandError, CommandResult};
use crate::backup::BackupHeader;
use crate::config::ReadMode;
use crate::context::ServerContext;
use crate::protocol::{Frame, Parse, ParseError};
use crate::raft::membership::{AdminRequest, CATCH_UP_TIMEOUT};
use crate::raft::PeerNode;

/// How long RAFT.TRANSFER and RAFT.REMOVENODE wait for a leader and for the change.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long RAFT.SNAPSHOT waits for the snapshot.
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(120);
/// RAFT.INFO.
pub(super) async fn raft_info(ctx: &ServerContext, parse: &mut Parse) -> CommandResult {
    parse.finish().map_err(Into::into).map(|()| info(ctx))
}

/// RAFT.SNAPSHOT.
pub(super) async fn raft_snapshot(ctx: &ServerContext, parse: &mut Parse) -> CommandResult {
    match parse.finish() {
        Ok(()) => snapshot(ctx).await,
        Err(e) => Err(e.into()),
    }
}

/// RAFT.BACKUP.
pub(super) async fn raft_backup(ctx: &ServerContext, parse: &mut Parse) -> CommandResult {
    match parse.finish() {
        Ok(()) => backup(ctx).await,
        Err(e) => Err(e.into()),
    }
}

fn info(ctx: &ServerContext) -> Frame {
    let m = ctx.node.status();
    let idx =
        |l: &Option<crate::raft::status::LogPosition>| l.as_ref().map_or(0, |l| l.index()) as i64;
    let membership = &m.membership;
    let voters: Vec<u64> = membership.voter_ids().collect();
    let last = m.last_log_index.unwrap_or(0);
    let members = membership
        .nodes()
        .map(|(id, node)| {
            let matched = m
                .replication
                .as_ref()
                .and_then(|r| r.get(id))
                .map(|l| l.as_ref().map_or(0, |l| l.index()));
            // The leader's own log is its match.
            let matched = if Some(*id) == m.current_leader && m.current_leader == Some(m.id) {
                Some(last)
            } else {
                matched
            };
            let suffrage = if voters.contains(id) {
                "voter"
            } else {
                "learner"
            };
            Frame::Map(vec![
                (bulk("id"), Frame::Integer(*id as i64)),
                (bulk("raft_addr"), bulk(node.raft_addr.clone())),
                (bulk("redis_addr"), bulk(node.redis_addr.clone())),
                (bulk("suffrage"), bulk(suffrage)),
                (
                    bulk("match_index"),
                    matched.map_or(Frame::Null, |i| Frame::Integer(i as i64)),
                ),
                (
                    bulk("lag"),
                    matched.map_or(Frame::Null, |i| {
                        Frame::Integer(last.saturating_sub(i) as i64)
                    }),
                ),
            ])
        })
        .collect();
    let role = format!("{:?}", m.state).to_ascii_lowercase();
    let leader_addr = ctx.node.leader().map(|(_, a)| a).unwrap_or_default();
    Frame::Map(vec![
        (bulk("id"), Frame::Integer(m.id as i64)),
        (bulk("role"), bulk(role)),
        (bulk("term"), Frame::Integer(m.current_term as i64)),
        (
            bulk("leader"),
            m.current_leader
                .map_or(Frame::Null, |l| Frame::Integer(l as i64)),
        ),
        (bulk("leader_redis_addr"), bulk(leader_addr)),
        (bulk("last_log_index"), Frame::Integer(last as i64)),
        (
            bulk("commit_index"),
            Frame::Integer(idx(&m.local_committed)),
        ),
        (bulk("applied_index"), Frame::Integer(idx(&m.last_applied))),
        (bulk("snapshot_index"), Frame::Integer(idx(&m.snapshot))),
        (
            bulk("joint"),
            Frame::Integer(i64::from(membership.is_joint())),
        ),
        (bulk("members"), Frame::Array(members)),
    ])
}

pub(super) async fn transfer(ctx: &ServerContext, parse: &mut Parse) -> CommandResult {
    let to = if parse.remaining() > 0 {
        Some(parse.next_u64()?)
    } else {
        None
    };
    parse.finish()?;
    ctx.node
        .node_metrics
        .leader_transfers
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let leader = ctx
        .node
        .admin(AdminRequest::Transfer { to }, ADMIN_TIMEOUT)
        .await
        .map_err(admin_error)?;
    Ok(Frame::Integer(leader as i64))
}

async fn snapshot(ctx: &ServerContext) -> CommandResult {
    ctx.node
        .snapshot_now(SNAPSHOT_TIMEOUT)
        .await
        .map_err(snapshot_error)?;
    Ok(Frame::ok())
}

/// Parses `host:port` as a socket address, naming the argument on failure.
fn addr_arg(parse: &mut Parse, what: &str) -> Result<String, CommandError> {
    let s = parse.next_string()?;
    s.parse::<std::net::SocketAddr>().map_err(|_| {
        CommandError::Reply(format!(
            "ERR invalid {what} '{s}': expected ip:port (IPv6 as [::1]:port)"
        ))
    })?;
    Ok(s)
}

pub(super) async fn add_node(ctx: &ServerContext, parse: &mut Parse) -> CommandResult {
    let id = parse.next_u64()?;
    let raft_addr = addr_arg(parse, "raft_addr")?;
    let redis_addr = addr_arg(parse, "redis_addr")?;
    parse.finish()?;
    if id == 0 {
        return Err(CommandError::Reply("ERR node id must be non-zero".into()));
    }
    let node = PeerNode {
        raft_addr,
        redis_addr,
    };
    ctx.node
        .admin(
            AdminRequest::AddNode { id, node },
            CATCH_UP_TIMEOUT + ADMIN_TIMEOUT,
        )
        .await
        .map_err(admin_error)?;
    Ok(Frame::ok())
}

pub(super) async fn remove_node(ctx: &ServerContext, parse: &mut Parse) -> CommandResult {
    let id = parse.next_u64()?;
    parse.finish()?;
    ctx.node
        .admin(AdminRequest::RemoveNode { id }, ADMIN_TIMEOUT)
        .await
        .map_err(admin_error)?;
    Ok(Frame::ok())
}

async fn backup(ctx: &ServerContext) -> CommandResult {
    // Consistent: everything acknowledged before this command is in the state read below.
    ctx.node.read_barrier(ReadMode::Linearizable).await?;
    let node = ctx.node.clone();
    let bytes = tokio::task::spawn_blocking(move || {
        let (header, store) = node.read_applied(|store, applied_index| {
            let header = BackupHeader {
                cluster: String::new(),
                node_id: node.id,
                applied_index,
                revision: store.revision(),
                compact_revision: store.compact_revision(),
                keys: store.len() as u64,
            };
            // An O(1) clone (CheapClone): the encode below runs without the lock, so apply
            // goes on meanwhile.
            (header, store.clone())
        });
        (header, store.to_snapshot())
    })
    .await
    .map_err(|e| CommandError::Reply(format!("ERR backup failed: {e}")))?;
    let (mut header, store) = bytes;
    header.cluster = ctx.cluster_name.clone();
    Ok(Frame::Bulk(Bytes::from(crate::backup::encode(
        &header, &store,
    ))))
}

pub(super) async fn shutdown(ctx: &ServerContext, parse: &mut Parse) -> CommandResult {
    let (mut save, mut nosave, mut now, mut force, mut abort) = (false, false, false, false, false);
    while parse.remaining() > 0 {
        let flag = match parse.next_string()?.to_ascii_lowercase().as_str() {
            "save" => &mut save,
            "nosave" => &mut nosave,
            "now" => &mut now,
            "force" => &mut force,
            "abort" => &mut abort,
            _ => return Err(ParseError::Syntax.into()),
        };
        *flag = true;
    }
    if (save && nosave) || (abort && (save || nosave || now || force)) {
        return Err(ParseError::Syntax.into());
    }
    if abort {
        return Err(CommandError::Reply("ERR No shutdown in progress.".into()));
    }
    tracing::info!("SHUTDOWN: stopping gracefully");
    // `main` hands leadership over (if this node leads) and stops the node; the process exit
    // closes this connection without a reply, as Redis's SHUTDOWN does.
    ctx.stop_requested.notify_one();
    std::future::pending::<()>().await;
    Ok(Frame::ok())
}
