//! Commands: turns a client's argv into a reply, through the read gate or the write path.
//!
//! Knows RESP only as `protocol::Frame`/`Parse`; knows Raft only through `RaftNode`.
//! One file per family: `keys.rs` (strings and keys), `admin.rs` (connection and server, routed
//! on to `connection.rs` and `server.rs`). `table.rs` is the command table (`COMMAND`'s data).
//!
//! # How a command is dispatched
//!
//! ```text
//! argv ─▶ table lookup ─▶ unknown subcommand? ─▶ arity ─▶ authenticated (or a no_auth command)?
//!      ─▶ keys::execute ─▶ admin::execute ─▶ unknown command
//! ```
//!
//! The checks run in Redis's order (`server.c` `processCommand`), so the same bad input gets the
//! same error from redraft and from Redis. A command not in the table is not checked up front
//! and, before `AUTH`, is answered as an unknown command.
//!
//! # How a read flows
//!
//! ```text
//! GET ─▶ read_gate (session's read mode: linearizable ⇒ ReadIndex barrier; stale ⇒ none)
//!     ─▶ state machine read lock ─▶ store::Store::get ─▶ reply
//! ```

mod admin;
mod connection;
mod keys;
mod server;
pub mod table;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;

use crate::config::ReadMode;
use crate::protocol::{Frame, Parse, ParseError, Protocol};
use crate::raft::WriteError;
use crate::server::clients::FLAG_READONLY;
use crate::server::{ClientHandle, ServerContext};
use crate::store::{ClientSeq, Op, Request, Response};

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
    /// Deduplication identity of this connection's writes (random, cluster-unique).
    client_id: u64,
    /// Sequence number of this connection's last write.
    seq: u64,
    /// Whether a read barrier already covers the rest of the current pipeline batch
    /// (BatchBarrier, see [`read_gate`]). Cleared at each new batch and by every write.
    pub(crate) barrier_valid: bool,
}

impl Session {
    pub fn new(ctx: &ServerContext, handle: Arc<ClientHandle>) -> Self {
        let mut session = Self {
            id: handle.id,
            addr: handle.addr,
            proto: Protocol::Resp2,
            authenticated: ctx.requirepass.is_none(),
            read_mode: ctx.default_read_mode,
            handle,
            client_id: rand::random(),
            seq: 0,
            barrier_valid: false,
        };
        session.set_read_mode(ctx.default_read_mode);
        session
    }

    /// The request for this connection's next write: the same connection never has two writes
    /// in flight, so `(client_id, seq)` identifies it across retries and forwarding.
    fn request(&mut self, op: Op) -> Request {
        self.seq += 1;
        Request {
            client: Some(ClientSeq {
                client_id: self.client_id,
                seq: self.seq,
            }),
            op,
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
        self.set_read_mode(ctx.default_read_mode);
        self.handle
            .set_flag(crate::server::clients::FLAG_NO_EVICT, false);
        self.handle
            .set_flag(crate::server::clients::FLAG_NO_TOUCH, false);
        self.authenticated = ctx.requirepass.is_none();
    }

    /// The RESET hook for state that later command families add: a RESET leaves MULTI (queued
    /// commands and WATCHed keys are discarded) and every pub/sub subscription. Nothing to
    /// clear until those exist.
    fn reset_transaction_and_subscriptions(&mut self) {}
}

/// What to send back, and whether to close the connection after it.
pub struct Outcome {
    pub frame: Frame,
    pub close: bool,
}

impl From<Frame> for Outcome {
    fn from(frame: Frame) -> Self {
        Outcome {
            frame,
            close: false,
        }
    }
}

/// Runs one command.
pub async fn execute(ctx: &ServerContext, session: &mut Session, argv: Vec<Bytes>) -> Outcome {
    ctx.total_commands.fetch_add(1, Ordering::Relaxed);
    if let Err(e) = check(session, &argv) {
        return Frame::Error(e.to_string()).into();
    }
    let raw_name = argv.first().cloned().unwrap_or_default();
    let mut parse = Parse::new(argv);
    let name = parse.command_name();
    if name == "quit" {
        // Redis's QUIT: +OK, then the connection closes once the reply is sent.
        return Outcome {
            frame: Frame::ok(),
            close: true,
        };
    }
    // Each family answers the commands it owns and returns None for the others.
    let result = match keys::execute(ctx, session, &name, &mut parse).await {
        Some(r) => r,
        None => match admin::execute(ctx, session, &name, &mut parse).await {
            Some(r) => r,
            None => Err(unknown_command(&raw_name, &mut parse)),
        },
    };
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
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error("{0}")]
    Reply(String),
}

pub type CommandResult = Result<Frame, CommandError>;

/// The one read gate every reading command passes (DESIGN §4): linearizable (and, until
/// lease reads exist, lease) waits for a ReadIndex barrier; stale reads pass at once.
///
/// **BatchBarrier.** One barrier serves every read of a pipeline batch. The session starts a
/// batch only with commands already received, so each of them was invoked before the barrier's
/// round began; a write in the batch clears the barrier, so a later read waits until this
/// node has applied that write (read-your-writes on a follower).
async fn read_gate(ctx: &ServerContext, session: &mut Session) -> Result<(), CommandError> {
    match session.read_mode {
        ReadMode::Stale => Ok(()),
        ReadMode::Linearizable | ReadMode::Lease => {
            if !session.barrier_valid {
                ctx.node.read_barrier().await?;
                session.barrier_valid = true;
            }
            Ok(())
        }
    }
}

/// Proposes a write for this session and returns the store's answer.
async fn write(
    ctx: &ServerContext,
    session: &mut Session,
    op: Op,
) -> Result<Response, CommandError> {
    // BatchBarrier: a read after this write needs a barrier that covers it.
    session.barrier_valid = false;
    let req = session.request(op);
    match ctx.node.write(req).await? {
        Response::Error(e) => Err(CommandError::Reply(e.to_string())),
        r => Ok(r),
    }
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
