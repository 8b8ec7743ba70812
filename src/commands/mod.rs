//! Commands: turns a client's argv into a reply, through the read gate or the write path.
//!
//! Knows RESP only as `protocol::Frame`/`Parse`; knows Raft only through `RaftNode`.
//! One file per family: `keys.rs` (strings and keys), `admin.rs` (connection and server).
//!
//! # How a read flows
//!
//! ```text
//! GET ─▶ read_gate (session's read mode: linearizable ⇒ ReadIndex barrier; stale ⇒ none)
//!     ─▶ state machine read lock ─▶ store::Store::get ─▶ reply
//! ```

mod admin;
mod keys;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use bytes::Bytes;

use crate::config::ReadMode;
use crate::protocol::{Frame, Parse, ParseError, Protocol};
use crate::raft::WriteError;
use crate::server::ServerContext;
use crate::store::{ClientSeq, Op, Request, Response};

/// Per-connection state.
pub struct Session {
    /// `CLIENT ID`: unique on this node, grows.
    pub id: u64,
    pub addr: SocketAddr,
    pub name: Option<String>,
    pub proto: Protocol,
    pub authenticated: bool,
    pub read_mode: ReadMode,
    /// Deduplication identity of this connection's writes (random, cluster-unique).
    client_id: u64,
    /// Sequence number of this connection's last write.
    seq: u64,
}

impl Session {
    pub fn new(ctx: &ServerContext, addr: SocketAddr) -> Self {
        Self {
            id: ctx.next_client_id.fetch_add(1, Ordering::Relaxed),
            addr,
            name: None,
            proto: Protocol::Resp2,
            authenticated: ctx.requirepass.is_none(),
            read_mode: ctx.default_read_mode,
            client_id: rand::random(),
            seq: 0,
        }
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
    let mut parse = Parse::new(argv);
    let name = parse.command_name();
    if !session.authenticated && !matches!(name.as_str(), "auth" | "hello" | "quit") {
        return Frame::Error("NOAUTH Authentication required.".into()).into();
    }
    if name == "quit" {
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
            None => Err(unknown_command(&name, &mut parse)),
        },
    };
    match result {
        Ok(frame) => frame.into(),
        Err(e) => Frame::Error(e.to_string()).into(),
    }
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
async fn read_gate(ctx: &ServerContext, session: &Session) -> Result<(), CommandError> {
    match session.read_mode {
        ReadMode::Stale => Ok(()),
        ReadMode::Linearizable | ReadMode::Lease => Ok(ctx.node.read_barrier().await?),
    }
}

/// Proposes a write for this session and returns the store's answer.
async fn write(
    ctx: &ServerContext,
    session: &mut Session,
    op: Op,
) -> Result<Response, CommandError> {
    let req = session.request(op);
    match ctx.node.write(req).await? {
        Response::Error(e) => Err(CommandError::Reply(e.to_string())),
        r => Ok(r),
    }
}

/// Redis's reply to a command it does not know.
fn unknown_command(name: &str, parse: &mut Parse) -> CommandError {
    let mut args = String::new();
    while let Ok(a) = parse.next_bytes() {
        if args.len() > 128 {
            break;
        }
        let a = String::from_utf8_lossy(&a);
        let a: String = a.chars().take(128).collect();
        args.push_str(&format!("'{a}' "));
    }
    let name: String = name.chars().take(128).collect();
    CommandError::Reply(format!(
        "ERR unknown command '{name}', with args beginning with: {args}"
    ))
}
