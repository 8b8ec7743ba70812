//! Commands: turns a client's argv into a reply, through the read gate or the write path.
//!
//! Knows RESP only as `protocol::Frame`/`Parse`; knows Raft only through `RaftNode`.
//! One file per family: `keys.rs` (strings and keys; the writing TTL commands in `expire.rs`),
//! `history.rs` (GETAT HISTORY ROLLBACK COMPACT), `pubsub.rs` (SUBSCRIBE ... PUBLISH PUBSUB),
//! `stream.rs` (XREAD XRANGE XREVRANGE on the `__watch__:` streams),
//! `reads.rs` (keyspace reads answered from one `store::ReadOp`), `txn.rs` (MULTI EXEC DISCARD
//! WATCH UNWATCH), `admin.rs` (connection and server, routed on to `connection.rs` and
//! `server.rs`). `table.rs` is the command table (`COMMAND`'s data).
//! `batch.rs` answers a pipeline batch ([`Batch`]), proposing runs of writes together.
//!
//! # How a command is dispatched
//!
//! ```text
//! argv ─▶ table lookup ─▶ unknown subcommand? ─▶ arity ─▶ authenticated (or a no_auth command)?
//!      ─▶ keys::plan (a write: its store::Op and reply shape) ─▶ proposed, alone or in a run
//!      ─▶ reads::plan (a read: its store::ReadOp and reply shape) ─▶ read gate ─▶ store
//!      ─▶ txn::run (MULTI EXEC DISCARD WATCH UNWATCH)
//!      ─▶ keys::execute ─▶ admin::execute ─▶ unknown command
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
//! SET ─▶ keys::plan ─▶ Plan { op, reply } ─▶ Session::request (next seq) ─▶ RaftNode::write
//!     ─▶ Response ─▶ WriteReply::frame ─▶ reply
//! SET; INCR; DEL (one batch) ─▶ plans ─▶ consecutive seqs ─▶ RaftNode::write_many ─▶ replies
//! ```
//!
//! # How a read flows
//!
//! ```text
//! GET ─▶ read_gate (session's read mode: linearizable ⇒ ReadIndex barrier; stale ⇒ none)
//!     ─▶ state machine read lock ─▶ store::Store::get ─▶ reply
//! ```

mod admin;
mod batch;
mod cluster;
mod connection;
mod history;
mod keys;
mod pubsub;
mod raft_errors;
mod reads;
mod server;
mod stream;
pub mod table;
mod txn;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;

use crate::config::ReadMode;
use crate::protocol::{Frame, Parse, ParseError, Protocol};
use crate::raft::RaftError;
use crate::server::clients::FLAG_READONLY;
use crate::server::{ClientHandle, ServerContext};
use crate::store::{ClientSeq, Op, Request, Response};

pub use batch::Batch;
use table::Lookup;

/// Per-connection state.
pub struct Session {
    /// `CLIENT ID`: unique on this node, grows.
    pub id: u64,
    pub addr: SocketAddr,
    pub proto: Protocol,
    pub authenticated: bool,
    pub read_mode: ReadMode,
    /// What other sessions see of this one (name, flags, last command); shared with the
    /// client registry.
    pub handle: Arc<ClientHandle>,
    /// Deduplication identity of this connection's writes (random, cluster-unique), taken from
    /// the node's pool of ended sessions' identities when there is one (DedupIdsReused).
    client_id: u64,
    /// Where `(client_id, seq)` goes back when the session ends.
    dedup_ids: Arc<DedupIdPool>,
    /// Sequence number of this connection's last write.
    seq: u64,
    /// Whether a read barrier already covers the rest of the current pipeline batch
    /// (BatchBarrier, see [`read_gate`]). Cleared at each new batch and by every write.
    pub(crate) barrier_valid: bool,
    /// MULTI's queue and the WATCHed keys (`txn.rs`).
    txn: txn::TxnState,
    /// The channels and patterns this connection subscribes to, with its message queue;
    /// `None` while it subscribes to nothing (`pubsub.rs`).
    pub subscription: Option<crate::watch::pubsub::Subscription>,
}

impl Session {
    pub fn new(ctx: &ServerContext, handle: Arc<ClientHandle>) -> Self {
        let (client_id, seq) = ctx.dedup_ids.take();
        let mut session = Self {
            id: handle.id,
            addr: handle.addr,
            proto: Protocol::Resp2,
            authenticated: ctx.requirepass.is_none(),
            read_mode: ctx.settings.read_mode(),
            handle,
            client_id,
            seq,
            dedup_ids: ctx.dedup_ids.clone(),
            barrier_valid: false,
            txn: txn::TxnState::default(),
            subscription: None,
        };
        session.set_read_mode(ctx.settings.read_mode());
        session
    }

    /// The request for this connection's next write. Seqs grow by one per write, in command
    /// order; a connection has one write, or one ordered run of them (`RaftNode::write_many`),
    /// in flight at a time. So `(client_id, seq)` identifies a write across retries and
    /// forwarding, and the store refuses one older than the last it applied. The leader stamps
    /// `at_ms`; the forwarder marks its retries (`RaftNode::write`).
    fn request(&mut self, op: Op) -> Request {
        self.seq += 1;
        Request {
            client: Some(ClientSeq {
                client_id: self.client_id,
                seq: self.seq,
                // Made now, sent from now on: never later than its first send
                // (NoDoubleApplyAfterEviction needs it no later).
                sent_ms: crate::raft::unix_ms(),
                retry: false,
            }),
            op,
            at_ms: 0,
        }
    }

    /// Switches the reply protocol (HELLO, RESET).
    pub fn set_proto(&mut self, proto: Protocol) {
        self.proto = proto;
        self.handle.set_resp(match proto {
            Protocol::Resp2 => 2,
            Protocol::Resp3 => 3,
        });
    }

    /// Sets the read mode; stale mode shows as `flags=r` in `CLIENT LIST`, as `READONLY` does in
    /// Redis.
    pub fn set_read_mode(&mut self, mode: ReadMode) {
        self.read_mode = mode;
        self.barrier_valid = false;
        self.handle.set_flag(FLAG_READONLY, mode == ReadMode::Stale);
    }

    /// `RESET`: back to a new connection's state (Redis's `clearClientConnectionState`): RESP2,
    /// no name, the default read mode, no CLIENT flags, unauthenticated when a password is
    /// configured. The library name and version stay, as in Redis: they still describe the
    /// client behind the connection.
    pub fn reset(&mut self, ctx: &ServerContext) {
        self.reset_transaction_and_subscriptions();
        self.set_proto(Protocol::Resp2);
        self.handle.names().name = None;
        self.set_read_mode(ctx.settings.read_mode());
        self.handle
            .set_flag(crate::server::clients::FLAG_NO_EVICT, false);
        self.handle
            .set_flag(crate::server::clients::FLAG_NO_TOUCH, false);
        self.authenticated = ctx.requirepass.is_none();
    }

    /// RESET leaves MULTI (queued commands and WATCHed keys are discarded) and every pub/sub
    /// subscription.
    fn reset_transaction_and_subscriptions(&mut self) {
        self.txn = txn::TxnState::default();
        self.subscription = None;
        self.handle.subscriptions.store(0, Ordering::Relaxed);
        self.handle
            .pattern_subscriptions
            .store(0, Ordering::Relaxed);
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.dedup_ids.give_back(self.client_id, self.seq);
    }
}

/// **DedupIdsReused.** The dedup identities `(client_id, last seq)` of ended sessions, which new
/// sessions continue (their first write is `seq + 1`). The store's dedup table keeps one entry
/// per identity (`store::dedup`), so with reuse it holds about as many entries as this node ever
/// had concurrent writing connections, not one per connection ever opened: connection churn
/// (a connection per request) no longer evicts a retrying forwarder's entry.
///
/// Safe because an identity is given back only when its session has ended, so its last write
/// (and every retry of it by this node) has returned; a copy of that write still in some log
/// either applies before the next session's first write or is refused as stale after it
/// (`seq` below the last applied), as any late duplicate is. Its client saw no `+OK` for it in
/// the second case (the write was answered uncertain, or not at all).
#[derive(Default)]
pub struct DedupIdPool {
    ids: std::sync::Mutex<Vec<(u64, u64)>>,
}

impl DedupIdPool {
    /// The most identities kept; more are forgotten (their table entries age out).
    const MAX: usize = 16 * 1024;

    /// An identity for a new session: an ended session's, or a fresh random one.
    fn take(&self) -> (u64, u64) {
        self.lock().pop().unwrap_or_else(|| (rand::random(), 0))
    }

    /// Returns an ended session's identity to the pool.
    fn give_back(&self, client_id: u64, seq: u64) {
        let mut ids = self.lock();
        if ids.len() < Self::MAX {
            ids.push((client_id, seq));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(u64, u64)>> {
        self.ids.lock().unwrap_or_else(|p| p.into_inner())
    }
}

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
    if session.txn.in_multi() && txn::queues(&argv) {
        return txn::queue(ctx, session, argv);
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
    /// Any other command: runs through the families' `execute`.
    Other(OtherCommand),
}

/// A command that is not a write, parsed up to its name.
struct OtherCommand {
    raw_name: Bytes,
    name: String,
    parse: Parse,
}

/// Counts the command, runs the checks, and plans it if it is a write. Has no effect beyond
/// the counters and `CLIENT LIST`'s `cmd=`, so a batch may prepare a command before the one
/// ahead of it has run.
fn prepare(ctx: &ServerContext, session: &Session, argv: Vec<Bytes>) -> Prepared {
    ctx.total_commands.fetch_add(1, Ordering::Relaxed);
    let checked = check(session, &argv);
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
        let name = String::from_utf8_lossy(&raw_name).to_lowercase();
        let full_name = match table::lookup(&name, argv.get(1).map(|a| &a[..])) {
            Lookup::Found(spec, _) => spec.name.to_string(),
            _ => name.clone(),
        };
        if let Some(out) = pubsub::subscribed_context_reply(session, &name, &full_name, &argv) {
            return Prepared::Done(out);
        }
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
    if let Some(plan) = keys::plan(&name, &mut parse).or_else(|| history::plan(&name, &mut parse)) {
        return Prepared::Write(plan);
    }
    if let Some(plan) = reads::plan(&name, &mut parse) {
        return Prepared::Read(plan);
    }
    if txn::is_txn_command(&name) {
        return Prepared::Txn(name, Ok(parse));
    }
    Prepared::Other(OtherCommand {
        raw_name,
        name,
        parse,
    })
}

/// Runs a command that is not a write.
async fn run_other(ctx: &ServerContext, session: &mut Session, cmd: OtherCommand) -> Outcome {
    let OtherCommand {
        raw_name,
        name,
        mut parse,
    } = cmd;
    // Each family answers the commands it owns and returns None for the others.
    if let Some(r) = pubsub::execute(ctx, session, &name, &mut parse) {
        return r.unwrap_or_else(|e| reply(Err(e)));
    }
    if let Some(r) = keys::execute(ctx, session, &name, &mut parse).await {
        return reply(r);
    }
    if let Some(r) = history::execute(ctx, session, &name, &mut parse).await {
        return reply(r);
    }
    if let Some(r) = stream::execute(ctx, session, &name, &mut parse).await {
        return reply(r);
    }
    let result = match admin::execute(ctx, session, &name, &mut parse).await {
        Some(r) => r,
        None => Err(unknown_command(&raw_name, &mut parse)),
    };
    reply(result)
}

/// The reply to a command's result: its frame, or its error as a RESP error.
fn reply(result: CommandResult) -> Outcome {
    match result {
        Ok(frame) => frame.into(),
        Err(e) => Frame::Error(e.to_string()).into(),
    }
}

/// The checks before a command runs, in Redis's order: unknown command (before `AUTH` only),
/// unknown subcommand, arity, authentication. Records the command for `CLIENT LIST`'s `cmd=`.
fn check(session: &Session, argv: &[Bytes]) -> Result<(), CommandError> {
    let Some(raw_name) = argv.first() else {
        return Ok(());
    };
    let name = String::from_utf8_lossy(raw_name).to_lowercase();
    match table::lookup(&name, argv.get(1).map(|a| &a[..])) {
        Lookup::Found(spec, id) => {
            session.handle.set_last_cmd(id);
            if !spec.arity_ok(argv.len()) {
                return Err(ParseError::WrongArity(spec.name.to_string()).into());
            }
            if !session.authenticated && !spec.has_flag("no_auth") {
                return Err(noauth());
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

fn noauth() -> CommandError {
    CommandError::Reply("NOAUTH Authentication required.".into())
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
async fn read_gate(ctx: &ServerContext, session: &mut Session) -> Result<(), CommandError> {
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

/// How a write command turns the store's [`Response`] into its reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WriteReply {
    /// `Put` → `+OK` (SET without options).
    Put,
    /// `Set` → with `get` the previous value or nil; else `+OK` if written, nil if not (SET
    /// with options, GETSET).
    Set { get: bool },
    /// `Set` → `:1` if written, `:0` if not (SETNX).
    SetNx,
    /// `Value` → bulk or nil (GETDEL, INCRBYFLOAT).
    Value,
    /// `Integer` → the new value (INCR and friends).
    Integer,
    /// `Length` → the new length (APPEND, SETRANGE).
    Length,
    /// `Deleted` → how many keys were deleted (DEL, UNLINK).
    Deleted,
    /// `Deleted` → `+OK` (FLUSHDB, FLUSHALL).
    Flushed,
    /// `Applied` → `:1`/`:0` if `as_integer` (MSETNX, RENAMENX, CAS), else `+OK` (MSET, RENAME).
    Applied { as_integer: bool },
    /// `Compacted` → `+OK` (COMPACT).
    Compacted,
}

impl WriteReply {
    /// The reply to the store's answer; a refusal (`Response::Error`) is an error reply.
    pub fn frame(self, response: Response) -> CommandResult {
        let bulk_or_nil = |value: Option<Bytes>| value.map_or(Frame::Null, Frame::Bulk);
        match (self, response) {
            (_, Response::Error(e)) => Err(CommandError::Reply(e.to_string())),
            (Self::Put, Response::Put { .. }) => Ok(Frame::ok()),
            (Self::Set { get: true }, Response::Set { prev, .. }) => Ok(bulk_or_nil(prev)),
            (Self::Set { get: false }, Response::Set { written, .. }) => {
                Ok(if written { Frame::ok() } else { Frame::Null })
            }
            (Self::SetNx, Response::Set { written, .. }) => Ok(Frame::Integer(i64::from(written))),
            (Self::Value, Response::Value { value, .. }) => Ok(bulk_or_nil(value)),
            (Self::Integer, Response::Integer { value, .. }) => Ok(Frame::Integer(value)),
            (Self::Length, Response::Length { length, .. }) => Ok(Frame::Integer(length as i64)),
            (Self::Deleted, Response::Deleted { deleted, .. }) => {
                Ok(Frame::Integer(deleted as i64))
            }
            (Self::Flushed, Response::Deleted { .. }) => Ok(Frame::ok()),
            (Self::Compacted, Response::Compacted { .. }) => Ok(Frame::ok()),
            (Self::Applied { as_integer }, Response::Applied { applied, .. }) => {
                Ok(if as_integer {
                    Frame::Integer(i64::from(applied))
                } else {
                    Frame::ok()
                })
            }
            (_, other) => Err(CommandError::Reply(format!(
                "ERR unexpected store response {other:?}"
            ))),
        }
    }
}

/// Proposes one planned write for this session and returns its reply.
async fn write(ctx: &ServerContext, session: &mut Session, plan: Plan) -> CommandResult {
    // BatchBarrier: a read after this write needs a barrier that covers it.
    session.barrier_valid = false;
    let req = session.request(plan.op);
    plan.reply.frame(ctx.node.write(req).await?)
}

/// At most `max` bytes of `arg`, as text (invalid UTF-8 replaced), as Redis's `%.128s`.
fn truncated(arg: &[u8], max: usize) -> String {
    String::from_utf8_lossy(&arg[..arg.len().min(max)]).into_owned()
}

/// Redis's reply to a command it does not know (`server.c` `processCommand`): the name as sent
/// and the first arguments, quoted, up to 128 bytes of them.
fn unknown_command(raw_name: &[u8], parse: &mut Parse) -> CommandError {
    let mut args: Vec<u8> = Vec::new();
    while args.len() < 128 {
        let Ok(a) = parse.next_bytes() else { break };
        let room = 128 - args.len();
        args.push(b'\'');
        args.extend_from_slice(&a[..a.len().min(room)]);
        args.extend_from_slice(b"' ");
    }
    CommandError::Reply(format!(
        "ERR unknown command '{}', with args beginning with: {}",
        truncated(raw_name, 128),
        String::from_utf8_lossy(&args)
    ))
}

/// Parses `argv` as a session does before proposing a write: the command table lookup and
/// arity check, then the write planner. Returns the `store::Op` a write command proposes,
/// `Ok(None)` for any other command (reads and admin commands are executed, not planned), or
/// the error reply's text. Needs no session or cluster; public for the criterion suite
/// (`benches/suites/protocol.rs`), which measures command parsing through it.
pub fn plan_write(argv: Vec<Bytes>) -> Result<Option<Op>, String> {
    let name = match argv.first() {
        Some(n) => String::from_utf8_lossy(n).to_lowercase(),
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
    match keys::plan(&name, &mut parse) {
        Some(Ok(plan)) => Ok(Some(plan.op)),
        Some(Err(e)) => Err(e.to_string()),
        None => Ok(None),
    }
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
