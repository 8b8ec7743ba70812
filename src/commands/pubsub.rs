//! Pub/sub commands with Redis 7.0's replies (`pubsub.c`): SUBSCRIBE PSUBSCRIBE UNSUBSCRIBE
//! PUNSUBSCRIBE PUBLISH PUBSUB, and the subscribed-connection rules.
//!
//! The channels live in `watch::pubsub`; a session holds its [`Subscription`] (created on the
//! first subscribe, dropped when the last channel and pattern are gone), and the session loop
//! (`server::session`) writes the queued messages while the connection waits for commands.
//!
//! - A RESP2 connection with a subscription may only run (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE,
//!   PING, QUIT and RESET; anything else gets Redis's error, and PING answers
//!   `["pong", message]`. A RESP3 connection may run anything (pushes are out of band).
//! - PUBLISH reaches the subscribers of every node (`raft/publish.rs`) and answers how many
//!   received it on this node, as in Redis Cluster. PUBSUB answers about this node only.
//!
//! # Format
//!
//! ```text
//! SUBSCRIBE channel [channel ...]    → per channel: push [subscribe, channel, count]
//! PSUBSCRIBE pattern [pattern ...]   → per pattern: push [psubscribe, pattern, count]
//! UNSUBSCRIBE [channel ...]          → per channel (all if none; [.., nil, count] if there were
//!                                      none): push [unsubscribe, channel, count]
//! PUNSUBSCRIBE [pattern ...]         → the same with punsubscribe
//! PUBLISH channel message            → :receivers on this node
//! PUBSUB CHANNELS [pattern]          → array of channels with subscribers
//! PUBSUB NUMSUB [channel ...]        → flat array: channel, count, ...
//! PUBSUB NUMPAT                      → :distinct patterns
//! messages                           → push [message, channel, payload]
//!                                      | push [pmessage, pattern, channel, payload]
//! ```
//! `count` is the connection's channels plus patterns after the change.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;

use super::{CommandError, Outcome, Session};
use crate::context::ServerContext;
use crate::protocol::{Frame, Parse, Protocol};
use crate::watch::pubsub::Subscription;

/// The commands a RESP2 connection with subscriptions may run (Redis's `processCommand`).
const ALLOWED_SUBSCRIBED: &[&str] = &[
    "ping",
    "subscribe",
    "psubscribe",
    "unsubscribe",
    "punsubscribe",
    "ssubscribe",
    "sunsubscribe",
    "quit",
    "reset",
];

/// Whether the connection is in RESP2's subscribed context.
pub fn in_subscribed_context(session: &Session) -> bool {
    session.proto == Protocol::Resp2 && session.subscription.is_some()
}

/// In RESP2's subscribed context, answers what Redis answers before running `argv` (an error
/// for a command not allowed there, `["pong", msg]` for PING); `None` lets it run. `full_name`
/// is Redis's name for the command (`client|id` for a subcommand).
pub fn subscribed_context_reply(
    session: &Session,
    name: &str,
    full_name: &str,
    argv: &[Bytes],
) -> Option<Outcome> {
    if !in_subscribed_context(session) {
        return None;
    }
    if !ALLOWED_SUBSCRIBED.contains(&name) {
        return Some(
            Frame::Error(format!(
                "ERR Can't execute '{full_name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / \
                 QUIT / RESET are allowed in this context"
            ))
            .into(),
        );
    }
    if name == "ping" && argv.len() <= 2 {
        let message = argv.get(1).cloned().unwrap_or_default();
        return Some(
            Frame::Array(vec![
                Frame::Bulk(Bytes::from_static(b"pong")),
                Frame::Bulk(message),
            ])
            .into(),
        );
    }
    None
}

fn confirmation(kind: &'static str, name: Option<Bytes>, count: usize) -> Frame {
    Frame::Push(vec![
        Frame::Bulk(Bytes::from_static(kind.as_bytes())),
        name.map_or(Frame::Null, Frame::Bulk),
        Frame::Integer(count as i64),
    ])
}

/// Several frames as one outcome.
fn frames(mut all: Vec<Frame>) -> Outcome {
    let first = all.remove(0);
    Outcome {
        frame: first,
        more: all,
        close: false,
    }
}

/// Publishes the session's counts to `CLIENT LIST` (`sub=`, `psub=`) and drops an empty
/// subscription (its queue goes with it).
fn settle(session: &mut Session) {
    let (channels, patterns) = session
        .subscription
        .as_ref()
        .map_or((0, 0), |s| (s.channels(), s.patterns()));
    session
        .handle
        .subscriptions
        .store(channels as u64, Ordering::Relaxed);
    session
        .handle
        .pattern_subscriptions
        .store(patterns as u64, Ordering::Relaxed);
    if channels + patterns == 0 {
        session.subscription = None;
    }
}

pub(super) fn subscribe(
    ctx: &ServerContext,
    session: &mut Session,
    parse: &mut Parse,
    pattern: bool,
) -> Result<Outcome, CommandError> {
    let handle = session.handle.clone();
    let may_read = session.key_filter(ctx);
    let sub = session.subscription.get_or_insert_with(|| {
        Subscription::new(
            ctx.node.pubsub.clone(),
            handle.id,
            Arc::new(move || handle.kill()),
        )
    });
    // KeysFiltered: keyspace notifications name only keys the user may read (its patterns
    // as of this SUBSCRIBE).
    sub.may_read = may_read;
    let mut out = Vec::with_capacity(parse.remaining());
    while parse.remaining() > 0 {
        let name = parse.next_bytes()?;
        let kind = if pattern {
            sub.psubscribe(&name);
            "psubscribe"
        } else {
            sub.subscribe(&name);
            "subscribe"
        };
        out.push(confirmation(kind, Some(name), sub.count()));
    }
    settle(session);
    Ok(frames(out))
}

pub(super) fn unsubscribe(
    session: &mut Session,
    parse: &mut Parse,
    pattern: bool,
) -> Result<Outcome, CommandError> {
    let kind = if pattern {
        "punsubscribe"
    } else {
        "unsubscribe"
    };
    let mut names = Vec::with_capacity(parse.remaining());
    while parse.remaining() > 0 {
        names.push(parse.next_bytes()?);
    }
    let Some(sub) = session.subscription.as_mut() else {
        let count = 0;
        let out = if names.is_empty() {
            vec![confirmation(kind, None, count)]
        } else {
            names
                .into_iter()
                .map(|n| confirmation(kind, Some(n), count))
                .collect()
        };
        return Ok(frames(out));
    };
    if names.is_empty() {
        names = if pattern {
            sub.pattern_list()
        } else {
            sub.channel_list()
        };
        if names.is_empty() {
            return Ok(frames(vec![confirmation(kind, None, sub.count())]));
        }
    }
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        if pattern {
            sub.punsubscribe(&name);
        } else {
            sub.unsubscribe(&name);
        }
        out.push(confirmation(kind, Some(name), sub.count()));
    }
    settle(session);
    Ok(frames(out))
}

pub(super) fn publish(ctx: &ServerContext, parse: &mut Parse) -> Result<Outcome, CommandError> {
    let channel = parse.next_bytes()?;
    let message = parse.next_bytes()?;
    let received = ctx.node.publish(channel, message);
    Ok(Frame::Integer(received as i64).into())
}

pub(super) fn pubsub(ctx: &ServerContext, parse: &mut Parse) -> Result<Outcome, CommandError> {
    let sub = parse.next_string()?.to_ascii_lowercase();
    let hub = &ctx.node.pubsub;
    let frame = match sub.as_str() {
        "channels" => {
            let pattern = if parse.remaining() > 0 {
                Some(parse.next_bytes()?)
            } else {
                None
            };
            Frame::Array(
                hub.channels(pattern.as_deref())
                    .into_iter()
                    .map(Frame::Bulk)
                    .collect(),
            )
        }
        "numsub" => {
            let mut out = Vec::with_capacity(parse.remaining() * 2);
            while parse.remaining() > 0 {
                let channel = parse.next_bytes()?;
                let n = hub.numsub(&channel);
                out.push(Frame::Bulk(channel));
                out.push(Frame::Integer(n as i64));
            }
            Frame::Array(out)
        }
        "numpat" => Frame::Integer(hub.numpat() as i64),
        // The table refuses other subcommands before this runs.
        other => {
            return Err(CommandError::Reply(format!(
                "ERR unknown subcommand '{other}'. Try PUBSUB HELP."
            )))
        }
    };
    Ok(frame.into())
}
