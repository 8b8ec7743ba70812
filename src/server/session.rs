//! One client connection: reads commands, answers each in order, flushes once per batch.
//!
//! Pipelining: every command already complete in the read buffer forms a batch, answered before
//! the replies are written, so a pipeline of N commands costs one write syscall. Commands of
//! one connection take effect in order and are answered in order (Redis's guarantee); within a
//! batch, a run of consecutive writes is proposed with one ordered call (`commands::Batch`).
//!
//! Unauthenticated input (UnauthenticatedCaps, `protocol::framer`): while the session has not
//! authenticated against a `requirepass`, its commands are framed under Redis's
//! unauthenticated caps, one command per batch, so a command pipelined after `AUTH` is framed
//! once `AUTH` has run, as in Redis.
//!
//! A framing error gets `-ERR Protocol error: …` and closes the connection (Redis behaviour);
//! a command error gets an error reply and the connection lives.
//!
//! The connection closes, without a reply unless one is said:
//! - after `QUIT`'s `+OK`, and after the reply of a `CLIENT KILL` that killed this client;
//! - when another client's `CLIENT KILL` names it;
//! - when the ACL user it authenticated as is deleted or switched off (UserRevokedCloses;
//!   a command it sent meanwhile is refused and closes it too);
//! - when it has been idle (no command) for `timeout` seconds (`[server] timeout`, 0 = never);
//!   a reply the client does not read for that long counts as idle too;
//! - when the replies of one batch, or the pub/sub messages and pushes written with them,
//!   reach the output buffer limit (`[server] client_output_buffer_limit`) as Redis accounts
//!   them (`protocol::obuf`: what overflows the reply buffer), logged as Redis logs it.
//!
//! Pub/sub: a subscribed connection also wakes for its queued messages (`watch::pubsub`) and
//! writes them between batches, in the order they were published; a message that arrives
//! while a batch runs is written after the batch's replies.
//! **PublishBeforeReply**: the messages already queued when a batch has been read are written
//! before any of its replies. PUBLISH queues a local message before it replies, so a command
//! the subscriber sends after the PUBLISH returned is answered after the message, as in Redis
//! (where PUBLISH writes into the subscriber's output buffer). Without this, the session's wake
//! for the message races the read of the command.
//!
//! Pushes (client tracking's invalidations, `watch::tracking`) are queued and written like
//! pub/sub messages: between batches, those queued before a batch was read ahead of its
//! replies, those queued while it ran after them (InvalidateAfterReply).
//!
//! Backpressure: while the socket does not take a batch's replies, the session does not read
//! further commands, so one connection holds at most one batch of replies (bounded by the output
//! buffer limit). Redis instead keeps reading and queueing until the limit; a client that never
//! reads is cut off there by Redis and stalled here (until `timeout`, if set).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::commands::table::{self, CmdId};
use crate::commands::{self, Session};
use crate::context::{ClientHandle, ServerContext};
use crate::protocol::{Connection, ConnectionError, Frame};
use crate::tls::MaybeTls;

/// Serves one client until it quits, disconnects, sends a malformed frame, is killed, idles out,
/// overflows its output buffer, or shutdown.
/// `id` is the client's `CLIENT ID`.
pub async fn run(
    stream: MaybeTls,
    addr: SocketAddr,
    id: u64,
    ctx: &ServerContext,
    mut shutdown: watch::Receiver<bool>,
) {
    let laddr = stream.tcp().local_addr().unwrap_or(addr);
    let handle = Arc::new(ClientHandle::new(id, addr, laddr, raw_fd(stream.tcp())));
    let _registration = ctx.clients.register(handle.clone());
    let mut conn = Connection::new(stream, ctx.limits.clone());
    let mut session = Session::new(ctx, handle.clone());
    let mut last_interaction = Instant::now();
    let mut users = ctx.acl.subscribe();
    loop {
        conn.set_unauthenticated(!session.authenticated);
        let idle_limit = idle_limit(ctx);
        let idle = async {
            match idle_limit {
                Some(limit) => tokio::time::sleep_until((last_interaction + limit).into()).await,
                None => std::future::pending().await,
            }
        };
        let argv = tokio::select! {
            r = conn.read_command() => r,
            Some(frame) = next_out_of_band(&mut session) => {
                // Pub/sub and tracking: write this message and any others already queued,
                // then wait again.
                conn.proto = session.proto;
                conn.reply_buffer_cron(Instant::now());
                conn.write_frame(&frame);
                write_queued_messages(&mut conn, &mut session);
                if over_output_limit(&conn, ctx, &handle) {
                    return;
                }
                handle.touch_replies(conn.reply_buffer().stats());
                if !flush_within(&mut conn, idle_limit).await {
                    return;
                }
                handle.touch_replies(conn.reply_buffer().stats());
                continue;
            }
            _ = shutdown.changed() => return,
            _ = handle.killed() => return,
            Ok(()) = users.changed() => {
                // UserRevokedCloses: a deleted or disabled user's connections close.
                if session.user_revoked(ctx) {
                    tracing::debug!(client = handle.id, "closing client: its ACL user is gone");
                    return;
                }
                continue;
            }
            _ = idle => {
                tracing::debug!(client = handle.id, addr = %addr, "closing idle client");
                return;
            }
        };
        let first = match argv {
            Ok(Some(argv)) => argv,
            Ok(None) => return,
            Err(ConnectionError::TlsOnPlainPort) => {
                tracing::warn!(client = handle.id, addr = %addr, "TLS client on the plain-text port; closed");
                return;
            }
            Err(e) => {
                reply_protocol_error(&mut conn, e).await;
                return;
            }
        };
        // The batch: every command already complete in the read buffer. A framing error after
        // them is answered once they are (as Redis does), unless one of them closes first.
        let mut received = vec![first];
        let framing_error = loop {
            if !session.authenticated {
                // The caps to frame the next command with depend on this one (AUTH).
                break None;
            }
            match conn.try_next_buffered() {
                Ok(Some(argv)) => received.push(argv),
                Ok(None) => break None,
                Err(e) => break Some(e),
            }
        };
        // PublishBeforeReply: every command of the batch arrived after these messages were
        // queued, so they go first.
        conn.reply_buffer_cron(Instant::now());
        write_queued_messages(&mut conn, &mut session);
        if over_output_limit(&conn, ctx, &handle) {
            return;
        }
        handle.touch_replies(conn.reply_buffer().stats());
        let mut close = false;
        // INFO commandstats: each command's id, and its time from the previous reply.
        let mut ids: std::collections::VecDeque<CmdId> =
            received.iter().map(|argv| table::id_of(argv)).collect();
        let mut mark = Instant::now();
        let (qbuf, qbuf_free) = conn.read_buffer();
        let argv_mem = received.iter().flatten().map(Bytes::len).sum();
        handle.set_query_buffer(qbuf, qbuf_free, argv_mem);
        let mut batch = commands::Batch::new(received, &mut session);
        loop {
            let next = {
                // While a command blocks (XREAD BLOCK), watch the socket so that a client that
                // goes away ends the wait (Redis notices a closed blocked client too). Only
                // then: reading ahead would otherwise cost every command a syscall.
                let next = batch.next(ctx, &mut session);
                tokio::pin!(next);
                let (mut watching, mut eof) = (false, false);
                loop {
                    tokio::select! {
                        biased;
                        out = &mut next => break out,
                        _ = handle.block_started(), if !watching => {
                            watching = handle.is_blocked();
                            if watching {
                                conn.release_idle_buffers();
                            }
                        }
                        r = conn.read_ahead(), if watching && !eof => {
                            if !matches!(r, Ok(n) if n > 0) {
                                eof = true;
                                handle.set_gone();
                            }
                        }
                    }
                }
            };
            let Some(out) = next else { break };
            let now = Instant::now();
            let error = match &out.frame {
                Frame::Error(e) => Some(e.as_str()),
                _ => None,
            };
            let id = ids.pop_front().unwrap_or(CmdId::NONE);
            ctx.command_stats.record(id, now - mark, error);
            mark = now;
            conn.proto = session.proto;
            for push in session.pushes_before_reply.drain(..) {
                conn.write_frame(&push);
            }
            if !session.reply_muted() {
                conn.write_frame(&out.frame);
                for frame in &out.more {
                    conn.write_frame(frame);
                }
            }
            if over_output_limit(&conn, ctx, &handle) {
                return;
            }
            if out.close || handle.is_killed() {
                close = true;
                break;
            }
        }
        // DurableReads (`raft/commit_gate.rs`): a read's reply leaves once this node's durable
        // committed index covers what it has applied; at once unless writes are being applied.
        // A sync that failed (the node is stopping) or never came closes the connection
        // without the batch's replies: a client sees an uncertain outcome, never a reply the
        // node's disk could take back.
        if session.take_read_fence() {
            if let Err(e) = ctx
                .node
                .sm
                .wait_applied_durable(ctx.node.write_timeout)
                .await
            {
                tracing::warn!(client = handle.id, addr = %addr, error = %e, "closing client: its read replies could not be covered by a durable committed index");
                return;
            }
        }
        write_queued_messages(&mut conn, &mut session);
        if over_output_limit(&conn, ctx, &handle) {
            return;
        }
        if let Some(e) = framing_error.filter(|_| !close) {
            reply_protocol_error(&mut conn, e).await;
            return;
        }
        handle.touch(Instant::now(), conn.reply_buffer().stats());
        let (qbuf, qbuf_free) = conn.read_buffer();
        handle.set_query_buffer(qbuf, qbuf_free, 0);
        let flushed = tokio::select! {
            // RepliesBeforeExit (`server/mod.rs`): replies already computed go out even when
            // shutdown has begun; only a flush that cannot complete is cut short.
            biased;
            r = flush_within(&mut conn, idle_limit) => r,
            _ = shutdown.changed() => return,
            _ = handle.killed(), if !close => return,
        };
        if !flushed || close {
            return;
        }
        last_interaction = Instant::now();
        handle.touch(last_interaction, conn.reply_buffer().stats());
    }
}

/// Waits for the next pub/sub message of a subscribed session or the next push (a
/// client-tracking invalidation), as the frame to write.
async fn next_out_of_band(session: &mut Session) -> Option<Frame> {
    let Session {
        subscription,
        pushes,
        ..
    } = session;
    let message = async {
        match subscription.as_mut() {
            Some(sub) => sub.recv().await.map(|m| m.frame()),
            None => std::future::pending().await,
        }
    };
    let push = async {
        match pushes.as_mut() {
            Some(rx) => rx.recv().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        m = message => m,
        p = push => p,
    }
}

/// Queues the pub/sub messages and pushes already waiting, after the replies written so far
/// (PublishBeforeReply, InvalidateAfterReply in `watch/tracking.rs`).
fn write_queued_messages(conn: &mut Connection<MaybeTls>, session: &mut Session) {
    conn.proto = session.proto;
    if let Some(sub) = session.subscription.as_mut() {
        while let Some(message) = sub.try_recv() {
            conn.write_frame(&message.frame());
        }
    }
    if let Some(rx) = session.pushes.as_mut() {
        while let Ok(push) = rx.try_recv() {
            conn.write_frame(&push);
        }
    }
}

/// Whether the replies queued so far pass the output buffer limit, as Redis accounts them
/// (`protocol::obuf`: only what overflows the reply buffer counts); logs the close.
fn over_output_limit(
    conn: &Connection<MaybeTls>,
    ctx: &ServerContext,
    handle: &ClientHandle,
) -> bool {
    let limit = ctx.settings.output_buffer_limit();
    let replies = conn.reply_buffer();
    if !replies.over_limit(limit) {
        return false;
    }
    tracing::warn!(
        client = handle.id,
        addr = %handle.addr,
        omem = replies.memory(),
        limit,
        "client closed for overcoming of output buffer limits"
    );
    true
}

/// The idle timeout now in force, if any.
fn idle_limit(ctx: &ServerContext) -> Option<Duration> {
    match ctx.settings.timeout_secs() {
        0 => None,
        secs => Some(Duration::from_secs(secs)),
    }
}

/// Flushes; with an idle timeout, a client that does not take its replies within it is dropped.
/// Returns whether the connection is still usable.
async fn flush_within(conn: &mut Connection<MaybeTls>, limit: Option<Duration>) -> bool {
    match limit {
        None => conn.flush().await.is_ok(),
        Some(limit) => matches!(tokio::time::timeout(limit, conn.flush()).await, Ok(Ok(()))),
    }
}

#[cfg(unix)]
fn raw_fd(stream: &TcpStream) -> i64 {
    use std::os::fd::AsRawFd;
    i64::from(stream.as_raw_fd())
}

#[cfg(not(unix))]
fn raw_fd(_stream: &TcpStream) -> i64 {
    -1
}

async fn reply_protocol_error<S>(conn: &mut Connection<S>, e: ConnectionError)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    if let ConnectionError::Frame(f) = e {
        tracing::debug!(error = %f, "closing connection after a protocol error");
        conn.write_frame(&Frame::Error(format!("ERR {f}")));
        let _ = conn.flush().await;
    }
}
