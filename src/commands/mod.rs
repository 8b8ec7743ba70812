//! Commands: turns a client's argv into a reply, through the read gate or the write path.
//!
//! Knows RESP only as `protocol::Frame`/`Parse`; knows Raft only through `RaftNode`; shares
//! state with the listener through `crate::context`.
//!
//! - `route.rs`: the route, one arm per command: name → kind (write, read, txn, pub/sub,
//!   stream, admin) and the function that answers it. `table/` is the command table
//!   (`COMMAND`'s data in `table/data.rs`), which checks every command's arity once, up front.
//! - Families, one file each: `strings.rs` (SET INCR APPEND ...), `expire.rs` (EXPIRE PERSIST
//!   GETEX SETEX ...), `keys.rs` (DEL RENAME KEYS SCAN FLUSHDB REVISION CAS), `reads.rs` (reads
//!   answered from one `store::ReadOp`: GET MGET TTL ...), `history.rs` (GETAT HISTORY ROLLBACK
//!   COMPACT), `schema.rs` (SCHEMA SET GET DEL LIST), `gray.rs` (GRAY
//!   STAGE PROMOTE ABORT LIST), `txn.rs` (MULTI EXEC DISCARD WATCH UNWATCH), `pubsub.rs` (SUBSCRIBE ... PUBLISH
//!   PUBSUB), `stream.rs` (XREAD XRANGE XREVRANGE on the `__watch__:` streams),
//!   `connection.rs` (PING HELLO AUTH CLIENT READMODE ...), `server/` (COMMAND, CONFIG, INFO,
//!   ROLE and TIME, a file per group), `cluster.rs` (RAFT.* SHUTDOWN).
//! - Shared: `args.rs` (argument parsing: time units, SET's options), `reply.rs` (reply
//!   helpers, [`WriteReply`]), `session.rs` ([`Session`]), `batch.rs` (a pipeline batch,
//!   [`Batch`], proposing runs of writes together). This file is the dispatcher.
//!
//! # How a command is dispatched
//!
//! ```text
//! argv ─▶ check: table lookup ─▶ unknown subcommand? ─▶ arity ─▶ authenticated (or no_auth)?
//!      ─▶ route::route(name) ─▶ Write: plan (store::Op + reply shape) ─▶ proposed (or in a run)
//!                            ─▶ Read: reads::plan (store::ReadOp + reply) ─▶ read gate ─▶ store
//!                            ─▶ Txn: txn::run (MULTI EXEC DISCARD WATCH UNWATCH)
//!                            ─▶ PubSub / Admin: answered at once
//!                            ─▶ ReadRun / Stream / Cluster: answered after waiting
//!                            ─▶ no route: unknown command
//! ```
//!
//! Inside MULTI, every command but EXEC DISCARD MULTI WATCH QUIT RESET is checked and queued
//! instead (`txn::queue`); EXEC proposes the queued writes and reads as one entry:
//!
//! ```text
//! MULTI; SET a 1; GET a; EXEC ─▶ plans ─▶ Op::Txn{compares (WATCH), ops} ─▶ RaftNode::write
//!     ─▶ Response::Txn (one response per op, or none: a watched key changed) ─▶ array reply
//! ```
//!
//! The checks run in Redis's order (`server.c` `processCommand`), so the same bad input gets the
//! same error from redraft and from Redis. A command not in the table is not checked up front
//! and, before `AUTH`, is answered as an unknown command.
//!
//! # How a write flows
//!
//! ```text
//! SET ─▶ route ─▶ strings::set ─▶ Plan { op, reply } ─▶ Session::request (next seq)
//!     ─▶ RaftNode::write ─▶ Response ─▶ WriteReply::frame ─▶ reply
//! SET; INCR; DEL (one batch) ─▶ plans ─▶ consecutive seqs ─▶ RaftNode::write_many ─▶ replies
//! ```
//!
//! # How a read flows
//!
//! ```text
//! GET ─▶ route ─▶ reads::plan ─▶ read_gate (session's read mode: linearizable ⇒ ReadIndex
//!     barrier; stale ⇒ none) ─▶ RaftNode::read_store ─▶ store::Store::read ─▶ reply
//! ```

mod acl_command;
mod args;
mod batch;
mod cluster;
mod connection;
mod expire;
mod gray;
mod hashes;
mod history;
mod keys;
mod lua;
mod pubsub;
mod raft_errors;
mod reads;
mod reply;
mod route;
mod schema;
mod scripting;
mod sentinel;
mod server;
mod session;
mod stream;
mod strings;
pub mod table;
mod tracking;
mod txn;

use std::sync::atomic::Ordering;

use bytes::Bytes;

use crate::acl::{Denied, LogContext, LogReason};
use crate::config::ReadMode;
use crate::context::ServerContext;
use crate::protocol::{Frame, Parse, ParseError};
use crate::raft::RaftError;
use crate::store::Op;

pub use batch::Batch;
pub use lua::install as install_script_host;
pub(crate) use reply::WriteReply;
use reply::{noauth, reply, truncated, unknown_command};
use route::Route;
pub use sentinel::switch_master_message;
pub use session::Session;
use table::Lookup;

/// The Redis version redraft speaks for (`HELLO`'s `version`, `INFO`'s `redis_version`).
/// 7.4: redis-py's client-side cache (`cache_config`) refuses servers older than 7.4.0, and
/// clients read 7.2's `CLIENT SETINFO` from it; the command table's metadata stays 7.0.15's.
pub const REDIS_VERSION: &str = "7.4.0";

/// What to send back, and whether to close the connection after it.
pub struct Outcome {
    pub frame: Frame,
    /// Further frames sent right after `frame`, in order (SUBSCRIBE's confirmation per
    /// channel).
    pub more: Vec<Frame>,
    pub close: bool,
}

impl From<Frame> for Outcome {
    fn from(frame: Frame) -> Self {
        Outcome {
            frame,
            more: Vec::new(),
            close: false,
        }
    }
}

/// Runs one command on its own. The session answers pipelines through [`Batch`], which runs a
/// lone command exactly this way; this is the entry point for a single command elsewhere.
pub async fn execute(ctx: &ServerContext, session: &mut Session, argv: Vec<Bytes>) -> Outcome {
    if session.txn.in_multi() {
        if txn::queues(&argv) {
            return txn::queue(ctx, session, argv);
        }
        // MULTI, WATCH, DISCARD and RESET run at once; one the checks refuse (its arity) marks
        // the transaction as a refused queued command does (Redis's `rejectCommand`).
        let prepared = prepare(ctx, session, argv);
        if matches!(&prepared, Prepared::Done(out) if matches!(out.frame, Frame::Error(_))) {
            session.txn.flag();
        }
        return run_prepared(ctx, session, prepared).await;
    }
    run_prepared(ctx, session, prepare(ctx, session, argv)).await
}

/// Runs a prepared command on its own.
async fn run_prepared(ctx: &ServerContext, session: &mut Session, prepared: Prepared) -> Outcome {
    match prepared {
        Prepared::Done(out) => out,
        Prepared::Write(plan) => reply(match plan {
            Ok(plan) => write(ctx, session, plan).await,
            Err(e) => Err(e),
        }),
        Prepared::Read(plan) => reply(match plan {
            Ok(plan) => reads::run(ctx, session, plan).await,
            Err(e) => Err(e),
        }),
        Prepared::Txn(name, parse) => reply(txn::run(ctx, session, &name, parse).await),
        Prepared::Other(cmd) => run_other(ctx, session, cmd).await,
    }
}

/// A command past the checks every command passes ([`check`]), not yet run.
enum Prepared {
    /// Already answered: it failed a check, or it is QUIT.
    Done(Outcome),
    /// A write command: its plan, or why planning refused it (nothing is proposed then).
    Write(Result<Plan, CommandError>),
    /// A keyspace read answered from one `store::ReadOp` (`reads.rs`), or why planning
    /// refused it.
    Read(Result<reads::ReadPlan, CommandError>),
    /// MULTI EXEC DISCARD WATCH UNWATCH (`txn.rs`), by lowercase name; an EXEC that failed
    /// the checks carries why.
    Txn(String, Result<Parse, CommandError>),
    /// Any other command: runs its routed function ([`run_other`]).
    Other(OtherCommand),
}

/// A command that is neither planned nor a transaction command, parsed up to its name, with
/// the function its route names (`None`: an unknown command).
struct OtherCommand {
    raw_name: Bytes,
    run: Option<Run>,
    parse: Parse,
}

/// How a command that is run rather than planned is called (from its [`Route`]).
enum Run {
    /// Answered at once with frames of its own (pub/sub).
    Frames(route::Frames),
    /// Answered at once.
    Now(route::Now),
    /// Answered after waiting (the read gate, the cluster, XREAD BLOCK).
    Waits(route::Waits),
}

/// Counts the command, runs the checks, and plans it if it is a write. Has no effect beyond
/// the counters and `CLIENT LIST`'s `cmd=`, so a batch may prepare a command before the one
/// ahead of it has run.
fn prepare(ctx: &ServerContext, session: &Session, argv: Vec<Bytes>) -> Prepared {
    ctx.total_commands.fetch_add(1, Ordering::Relaxed);
    if session.user_revoked(ctx) {
        // The user was deleted or switched off: the connection closes (as Redis closes a
        // deleted user's clients), without running the command.
        return Prepared::Done(Outcome {
            frame: Frame::Error(
                "NOPERM the user this connection authenticated as was deleted or disabled".into(),
            ),
            more: Vec::new(),
            close: true,
        });
    }
    let checked = check(ctx, session, &argv);
    // Commands per type (`/metrics`): the slot after the table's counts unknown commands.
    let slot = session
        .handle
        .last_cmd()
        .top_index()
        .unwrap_or(table::commands().len());
    ctx.command_counts.inc(slot);
    if let Err(e) = checked {
        // A refused EXEC discards the transaction (Redis's `rejectCommand`): `txn.rs` does.
        if argv
            .first()
            .is_some_and(|n| n.eq_ignore_ascii_case(b"exec"))
        {
            return Prepared::Txn("exec".into(), Err(e));
        }
        return Prepared::Done(Frame::Error(e.to_string()).into());
    }
    let raw_name = argv.first().cloned().unwrap_or_default();
    if session.subscription.is_some() {
        let name = String::from_utf8_lossy(&raw_name).to_ascii_lowercase();
        let full_name = match table::lookup(&name, argv.get(1).map(|a| &a[..])) {
            Lookup::Found(spec, _) => spec.name.to_string(),
            _ => name.clone(),
        };
        if let Some(out) = pubsub::subscribed_context_reply(session, &name, &full_name, &argv) {
            return Prepared::Done(out);
        }
    }
    // RememberBeforeRead (`watch/tracking.rs`): a tracking session's read keys are remembered
    // before the read runs.
    if session.tracking.is_some() {
        let name = String::from_utf8_lossy(&raw_name).to_ascii_lowercase();
        tracking::remember_read(ctx, session, &name, &argv);
    }
    let mut parse = Parse::new(argv);
    let name = parse.command_name();
    if name == "quit" {
        // Redis's QUIT: +OK, then the connection closes once the reply is sent.
        return Prepared::Done(Outcome {
            frame: Frame::ok(),
            more: Vec::new(),
            close: true,
        });
    }
    let run = match route::route(&name) {
        Some(Route::Write(plan)) => return Prepared::Write(plan(&mut parse)),
        Some(Route::Read(shape)) => return Prepared::Read(reads::plan(shape, &mut parse)),
        Some(Route::Txn) => return Prepared::Txn(name, Ok(parse)),
        Some(Route::PubSub(f)) => Some(Run::Frames(f)),
        Some(Route::Admin(f)) => Some(Run::Now(f)),
        Some(Route::ReadRun(f) | Route::Stream(f) | Route::Cluster(f)) => Some(Run::Waits(f)),
        None => None,
    };
    Prepared::Other(OtherCommand {
        raw_name,
        run,
        parse,
    })
}

/// Runs a command that is neither planned nor a transaction command.
async fn run_other(ctx: &ServerContext, session: &mut Session, cmd: OtherCommand) -> Outcome {
    let OtherCommand {
        raw_name,
        run,
        mut parse,
    } = cmd;
    match run {
        Some(Run::Frames(f)) => f(ctx, session, &mut parse).unwrap_or_else(|e| reply(Err(e))),
        Some(Run::Now(f)) => reply(f(ctx, session, &mut parse)),
        Some(Run::Waits(f)) => reply(f(ctx, session, &mut parse).await),
        None => reply(Err(unknown_command(&raw_name, &mut parse))),
    }
}

/// The checks before a command runs, in Redis's order: unknown command (before `AUTH` only),
/// unknown subcommand, arity, authentication, ACL permissions. Records the command for
/// `CLIENT LIST`'s `cmd=`.
fn check(ctx: &ServerContext, session: &Session, argv: &[Bytes]) -> Result<(), CommandError> {
    let Some(raw_name) = argv.first() else {
        return Ok(());
    };
    match table::lookup_argv(argv) {
        Lookup::Found(spec, id) => {
            session.handle.set_last_cmd(id);
            if !spec.arity_ok(argv.len()) {
                return Err(ParseError::WrongArity(spec.name.to_string()).into());
            }
            if !session.authenticated && !spec.has_flag("no_auth") {
                return Err(noauth());
            }
            if session.authenticated {
                acl_check(ctx, session, spec, id, argv)?;
            }
            Ok(())
        }
        Lookup::UnknownSubcommand(_) => {
            session.handle.set_last_cmd(table::CmdId::NONE);
            Err(CommandError::Reply(format!(
                "ERR unknown subcommand '{}'. Try {} HELP.",
                truncated(&argv[1], 128),
                String::from_utf8_lossy(raw_name).to_uppercase()
            )))
        }
        Lookup::Unknown => {
            session.handle.set_last_cmd(table::CmdId::NONE);
            if session.authenticated {
                Ok(())
            } else {
                let mut parse = Parse::new(argv.to_vec());
                Err(unknown_command(raw_name, &mut parse))
            }
        }
    }
}

/// The ACL check of a known command (`crate::acl::check_command`); a refusal is logged in
/// the node's ACL LOG and answered with Redis 7.0's NOPERM text (EXEC's own text when EXEC
/// finds that a queued command is no longer allowed).
fn acl_check(
    ctx: &ServerContext,
    session: &Session,
    spec: &table::CommandSpec,
    id: table::CmdId,
    argv: &[Bytes],
) -> Result<(), CommandError> {
    let Some(user) = ctx.acl.user(&session.user) else {
        return Err(noauth());
    };
    let Err(denied) = crate::acl::check_command(&user, spec, id, argv) else {
        return Ok(());
    };
    let (reason, object) = match denied {
        Denied::Command => (LogReason::Command, spec.name.to_string()),
        Denied::Key(i) => (
            LogReason::Key,
            String::from_utf8_lossy(&argv[i]).into_owned(),
        ),
        Denied::Channel(i) => (
            LogReason::Channel,
            String::from_utf8_lossy(&argv[i]).into_owned(),
        ),
    };
    let context = if session.exec_running || session.txn.in_multi() {
        LogContext::Multi
    } else {
        LogContext::Toplevel
    };
    session.log_refusal(ctx, reason, context, object, None);
    if session.exec_running {
        let why = match denied {
            Denied::Command => "no permission to execute the command or subcommand",
            Denied::Key(_) => "no permission to touch the specified keys",
            Denied::Channel(_) => "no permission to access one of the channels used as arguments",
        };
        return Err(CommandError::Reply(format!(
            "NOPERM ACLs rules changed between the moment the transaction was accumulated and \
             the EXEC call. This command is no longer allowed for the following reason: {why}"
        )));
    }
    Err(CommandError::Reply(denied.reply(spec.name)))
}

/// A command's failure; its text is the RESP error (first word = prefix).
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error("{}", raft_errors::raft_error_text(.0))]
    Write(#[from] RaftError),
    #[error("{0}")]
    Reply(String),
}

pub type CommandResult = Result<Frame, CommandError>;

/// The one read gate every reading command passes (DESIGN §4): it counts the read in the
/// session's mode, then makes it safe for that mode (`raft::read`: ReadIndex, lease, or
/// nothing for stale).
///
/// **BatchBarrier.** One barrier serves every read of a pipeline batch. The session starts a
/// batch only with commands already received, so each of them was invoked before the barrier's
/// round began; a write in the batch clears the barrier, so a later read waits until this
/// node has applied that write (read-your-writes on a follower). A run of writes proposed
/// together clears it too, and a read after the run starts only once the run has been
/// answered (RunBeforeNext, `batch.rs`). `READMODE` clears it as well.
///
/// **DurableReads.** The reply leaves only once this node's durable committed index covers
/// what it had applied (the session's flush waits: `raft/commit_gate.rs`).
async fn read_gate(ctx: &ServerContext, session: &mut Session) -> Result<(), CommandError> {
    session.read_fence = true;
    ctx.node.reads.count(session.read_mode);
    if !session.barrier_valid || session.read_mode == ReadMode::Stale {
        ctx.node.read_barrier(session.read_mode).await?;
        session.barrier_valid = session.read_mode != ReadMode::Stale;
    }
    Ok(())
}

/// A write command, planned: what to propose, and how to answer once it is applied.
///
/// Planning does what Redis does before looking at the keyspace (arity, syntax, a number that
/// does not parse) and proposes nothing when that fails; the store decides the rest at apply.
/// Splitting plan from reply lets a pipeline batch propose a run of writes at once
/// ([`batch`]).
pub(crate) struct Plan {
    pub op: Op,
    pub reply: WriteReply,
}

/// Proposes one planned write for this session and returns its reply.
async fn write(ctx: &ServerContext, session: &mut Session, plan: Plan) -> CommandResult {
    // BatchBarrier: a read after this write needs a barrier that covers it.
    session.barrier_valid = false;
    let req = session.request(plan.op);
    plan.reply.frame(ctx.node.write(req).await?)
}

/// Parses `argv` as a session does before proposing a write: the command table lookup and
/// arity check, then the write planner. Returns the `store::Op` a write command proposes,
/// `Ok(None)` for any other command (reads and admin commands are executed, not planned), or
/// the error reply's text. Needs no session or cluster; public for the criterion suite
/// (`benches/suites/protocol.rs`), which measures command parsing through it.
pub fn plan_write(argv: Vec<Bytes>) -> Result<Option<Op>, String> {
    let name = match argv.first() {
        Some(n) => String::from_utf8_lossy(n).to_ascii_lowercase(),
        None => return Ok(None),
    };
    if let Lookup::Found(spec, _) = table::lookup(&name, argv.get(1).map(|a| &a[..])) {
        if !spec.arity_ok(argv.len()) {
            return Err(
                CommandError::from(ParseError::WrongArity(spec.name.to_string())).to_string(),
            );
        }
    }
    let mut parse = Parse::new(argv);
    match route::route(&name) {
        Some(Route::Write(plan)) => plan(&mut parse).map(|plan| Some(plan.op)),
        _ => Ok(None),
    }
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod plan_write_tests {
    use super::*;

    fn argv(args: &[&str]) -> Vec<Bytes> {
        args.iter()
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect()
    }

    #[test]
    fn plans_writes_and_passes_over_the_rest() {
        assert_eq!(
            plan_write(argv(&["set", "k", "v"])),
            Ok(Some(Op::Put {
                key: Bytes::from_static(b"k"),
                value: Bytes::from_static(b"v"),
            }))
        );
        assert_eq!(plan_write(argv(&["GET", "k"])), Ok(None));
        assert_eq!(plan_write(Vec::new()), Ok(None));
        assert_eq!(
            plan_write(argv(&["SET", "k"])),
            Err("ERR wrong number of arguments for 'set' command".to_string())
        );
        assert!(plan_write(argv(&["INCRBY", "k", "x"]))
            .unwrap_err()
            .contains("not an integer"));
    }
}
