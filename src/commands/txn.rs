//! Transactions: MULTI EXEC DISCARD WATCH UNWATCH, with Redis 7.0's semantics and replies
//! (`multi.c`), carried out as etcd's Txn: EXEC is one Raft entry.
//!
//! - MULTI starts queuing. Each later command passes the dispatcher's checks (unknown command,
//!   arity, authentication) and is queued (`+QUEUED`); a command that fails them is answered
//!   with its error and marks the transaction (Redis's `CLIENT_DIRTY_EXEC`), so EXEC answers
//!   `-EXECABORT` and runs nothing. EXEC, DISCARD, MULTI, WATCH, QUIT and RESET are never queued.
//! - WATCH reads each key's last change (`store::Store::last_change`: its `mod_revision`, a
//!   delete or expiry included) through the connection's read gate, and records it as a
//!   [`Compare`].
//! - EXEC plans the queued commands (what Redis checks before looking at the keyspace, a
//!   syntax error for instance, fails that command alone, as in Redis) and proposes their
//!   writes and reads, with the compares, as one `Op::Txn` entry: one revision, one `sub` per
//!   change, applied atomically on every node. If a compare fails at apply, nothing is
//!   applied and EXEC answers a nil array. Reads queued in the transaction are answered at
//!   apply and see its own writes. A runtime error (INCR of a non-number) answers that
//!   command only; the others apply (Redis does not roll back).
//! - EXEC, DISCARD and UNWATCH clear the watches; EXEC and DISCARD leave MULTI.
//!
//! Deliberate differences: commands that are neither keyspace writes nor `reads.rs` reads
//! (PING, ECHO, KEYS, SCAN, REVISION, CLIENT, INFO, ...) are run locally right after the entry
//! applied, in their place in the reply; KEYS, SCAN and REVISION there see the transaction's
//! writes but may also see later ones. A failed entry (no leader, leader lost) answers EXEC
//! with that error (`TRYAGAIN …` not applied, `UNCERTAIN …` unknown): the transaction was
//! applied entirely or not at all.
//!
//! # Format
//!
//! ```text
//! MULTI              → +OK | -ERR MULTI calls can not be nested
//! <command> (queued) → +QUEUED | its error (and EXEC will answer EXECABORT)
//! EXEC               → array of replies | nil array (a watched key changed)
//!                      | -EXECABORT Transaction discarded because of previous errors.
//!                      | -ERR EXEC without MULTI
//!                      | -EXECABORT Transaction discarded because of: <why EXEC was refused>
//! DISCARD            → +OK | -ERR DISCARD without MULTI
//! WATCH key [key ...] → +OK | -ERR WATCH inside MULTI is not allowed
//! UNWATCH            → +OK
//! ```

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::reads::ReadReply;
use super::table::{self, Lookup};
use super::{
    check, prepare, read_gate, reply, run_other, unknown_command, CommandError, CommandResult,
    Outcome, Prepared, Session, WriteReply,
};
use crate::context::ServerContext;
use crate::protocol::{Frame, Parse};
use crate::raft::unix_ms;
use crate::store::{Compare, Op, Response};

/// One connection's transaction state.
#[derive(Debug, Default)]
pub(super) struct TxnState {
    /// The commands queued since MULTI, as received; `None` outside MULTI.
    queued: Option<Vec<Vec<Bytes>>>,
    /// A command failed its checks while queuing: EXEC answers EXECABORT.
    dirty: bool,
    /// The WATCHed keys as read, each key once, in WATCH order.
    watched: Vec<Compare>,
}

impl TxnState {
    /// Returns whether the connection is inside MULTI.
    pub fn in_multi(&self) -> bool {
        self.queued.is_some()
    }

    /// Marks the transaction as refused: EXEC answers EXECABORT.
    pub fn flag(&mut self) {
        self.dirty = true;
    }
}

/// Returns whether `argv` is queued inside MULTI: every command but EXEC DISCARD MULTI WATCH
/// QUIT RESET (Redis's `processCommand`).
pub(super) fn queues(argv: &[Bytes]) -> bool {
    let name = argv
        .first()
        .map(|n| String::from_utf8_lossy(n).to_ascii_lowercase())
        .unwrap_or_default();
    !matches!(
        name.as_str(),
        "exec" | "discard" | "multi" | "watch" | "quit" | "reset"
    )
}

/// Queues `argv` inside MULTI after the checks every command passes; a failed check answers
/// its error and marks the transaction.
pub(super) fn queue(ctx: &ServerContext, session: &mut Session, argv: Vec<Bytes>) -> Outcome {
    ctx.total_commands.fetch_add(1, Ordering::Relaxed);
    let refused = match check(ctx, session, &argv) {
        Err(e) => Some(e),
        Ok(()) => {
            let name = String::from_utf8_lossy(&argv[0]).to_ascii_lowercase();
            match table::lookup(&name, argv.get(1).map(|a| &a[..])) {
                Lookup::Found(spec, _) if spec.has_flag("no_multi") => Some(CommandError::Reply(
                    "ERR Command not allowed inside a transaction".into(),
                )),
                Lookup::Found(..) => None,
                _ => Some(unknown_command(&argv[0], &mut Parse::new(argv.clone()))),
            }
        }
    };
    if let Some(e) = refused {
        session.txn.dirty = true;
        return reply(Err(e));
    }
    if let Some(queued) = session.txn.queued.as_mut() {
        queued.push(argv);
    }
    Frame::Simple("QUEUED".into()).into()
}

/// Runs MULTI, EXEC, DISCARD, WATCH or UNWATCH (already checked by the dispatcher).
pub(super) async fn run(
    ctx: &ServerContext,
    session: &mut Session,
    name: &str,
    parse: Result<Parse, CommandError>,
) -> CommandResult {
    let mut parse = match parse {
        Ok(parse) => parse,
        Err(e) => {
            // An EXEC refused by the checks discards the transaction and says why (Redis's
            // `execCommandAbort`, which drops the `ERR` word).
            session.txn = TxnState::default();
            let why = e.to_string();
            let why = why.strip_prefix("ERR ").unwrap_or(&why);
            return Err(CommandError::Reply(format!(
                "EXECABORT Transaction discarded because of: {why}"
            )));
        }
    };
    match name {
        "multi" => {
            if session.txn.in_multi() {
                return Err(CommandError::Reply(
                    "ERR MULTI calls can not be nested".into(),
                ));
            }
            session.txn.queued = Some(Vec::new());
            Ok(Frame::ok())
        }
        "discard" => {
            if !session.txn.in_multi() {
                return Err(CommandError::Reply("ERR DISCARD without MULTI".into()));
            }
            session.txn = TxnState::default();
            session.tracking_caching.store(false, Ordering::Relaxed);
            Ok(Frame::ok())
        }
        "unwatch" => {
            session.txn.watched.clear();
            Ok(Frame::ok())
        }
        "watch" => watch(ctx, session, &mut parse).await,
        _ => exec(ctx, session).await,
    }
}

/// WATCH: records each key's last change as read through the read gate.
async fn watch(ctx: &ServerContext, session: &mut Session, parse: &mut Parse) -> CommandResult {
    if session.txn.in_multi() {
        return Err(CommandError::Reply(
            "ERR WATCH inside MULTI is not allowed".into(),
        ));
    }
    let mut keys = Vec::with_capacity(parse.remaining());
    while parse.remaining() > 0 {
        keys.push(parse.next_bytes()?);
    }
    read_gate(ctx, session).await?;
    let watched = &mut session.txn.watched;
    ctx.node.read_store(|store| {
        for key in keys {
            // A key watched again keeps what was read first, as in Redis.
            if watched.iter().any(|c| c.key == key) {
                continue;
            }
            watched.push(Compare {
                mod_revision: store.last_change(&key),
                watched_at: store.revision(),
                key,
            });
        }
    });
    Ok(Frame::ok())
}

/// How one queued command is answered in EXEC's array.
enum Item {
    /// Refused when planned (a syntax error): its error.
    Done(Frame),
    /// A write of the entry: its response is the next one.
    Write(WriteReply),
    /// A read of the entry: its response is the next one.
    Read(ReadReply),
    /// Run locally once the entry has applied.
    Local(super::OtherCommand),
}

async fn exec(ctx: &ServerContext, session: &mut Session) -> CommandResult {
    let Some(queued) = session.txn.queued.take() else {
        return Err(CommandError::Reply("ERR EXEC without MULTI".into()));
    };
    let state = std::mem::take(&mut session.txn);
    if state.dirty {
        return Err(CommandError::Reply(
            "EXECABORT Transaction discarded because of previous errors.".into(),
        ));
    }
    let compares = state.watched;
    let mut items = Vec::with_capacity(queued.len());
    let mut ops = Vec::new();
    // CLIENT CACHING holds for the whole transaction (Redis clears it once EXEC has run):
    // every queued read sees the choice made before MULTI or inside it.
    let caching = session.tracking_caching.load(Ordering::Relaxed);
    // ACL permissions are checked again (Redis checks them at EXEC too).
    session.exec_running = true;
    for argv in queued {
        session.tracking_caching.store(caching, Ordering::Relaxed);
        items.push(match prepare(ctx, session, argv) {
            Prepared::Done(out) => Item::Done(out.frame),
            Prepared::Write(Ok(plan)) => {
                ops.push(plan.op);
                Item::Write(plan.reply)
            }
            Prepared::Read(Ok(plan)) => {
                ops.push(Op::Read(plan.op));
                Item::Read(plan.reply)
            }
            Prepared::Write(Err(e)) | Prepared::Read(Err(e)) => Item::Done(reply(Err(e)).frame),
            // Only UNWATCH can be queued; EXEC unwatches anyway.
            Prepared::Txn(..) => Item::Done(Frame::ok()),
            Prepared::Other(cmd) => Item::Local(cmd),
        });
    }
    session.exec_running = false;
    session.tracking_caching.store(false, Ordering::Relaxed);
    let responses = if ops.is_empty() && compares.is_empty() {
        Some(Vec::new())
    } else {
        // BatchBarrier: a read after this write needs a barrier that covers it.
        session.barrier_valid = false;
        let req = session.request(Op::Txn {
            compares,
            ops,
            now_ms: 0,
        });
        match ctx.node.write(req).await? {
            Response::Txn { responses, .. } => responses,
            Response::Error(e) => return Err(CommandError::Reply(e.to_string())),
            other => {
                return Err(CommandError::Reply(format!(
                    "ERR unexpected store response {other:?}"
                )))
            }
        }
    };
    let Some(responses) = responses else {
        return Ok(Frame::NullArray);
    };
    let now_ms = unix_ms();
    let mut responses = responses.into_iter();
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        // The store answers one response per op (`Store::apply`, `Op::Txn`).
        let missing = || Frame::Error("ERR the transaction answered fewer replies than ops".into());
        out.push(match item {
            Item::Done(frame) => frame,
            Item::Write(shape) => responses
                .next()
                .map_or_else(missing, |r| reply(shape.frame(r)).frame),
            Item::Read(shape) => responses
                .next()
                .map_or_else(missing, |r| reply(shape.frame(r, now_ms)).frame),
            Item::Local(cmd) => run_other(ctx, session, cmd).await.frame,
        });
    }
    Ok(Frame::Array(out))
}
