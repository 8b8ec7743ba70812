//! RESP, and only RESP: turning client bytes into argument vectors and reply [`Frame`]s into
//! bytes. This module knows nothing about commands, keys or Raft; it imports only `std`,
//! `bytes`, `redis-protocol`, `thiserror` and `tokio`, never another module of the crate.
//!
//! Layout:
//!
//! - [`framer`] owns input framing ([`parse_command`], the resumable [`Framer`], the size
//!   [`Limits`]).
//! - [`reply`] owns reply encoding ([`Frame`], [`encode`], RESP2/RESP3 via [`Protocol`]).
//! - [`parse`] owns the argument cursor a command uses to read its argv ([`Parse`]).
//! - [`obuf`] owns Redis's accounting of pending replies ([`ReplyBuffer`]: the output buffer
//!   limit, `CLIENT LIST`'s `rbs`, `rbp`, `obl`, `oll`, `omem`).
//! - [`connection`] owns the buffered socket ([`Connection`]): read a command, queue replies,
//!   flush once per batch so pipelined requests cost one write.
//!
//! How a request flows:
//!
//! ```text
//! socket --read_buf--> Connection.rbuf --Framer::parse--> Vec<Bytes> --Parse--> command
//! command reply: Frame --encode(proto)--> Connection.wbuf --flush (one write_all)--> socket
//! ```
//!
//! Invariants:
//!
//! - **NoPanicOnInput.** No byte sequence from a client makes this module panic.
//! - **LimitsBeforeAlloc.** Every declared length (`*N`, `$len`, inline line) is checked against
//!   [`Limits`] as soon as its header line is complete, before the payload is waited for, and no
//!   buffer is ever sized from a declared length.
//! - **ReplyFraming.** Whatever text a caller puts in a `Simple`/`Error`/`BigNumber` frame, the
//!   encoded reply is exactly one RESP value (CR and LF are replaced with spaces).

pub mod connection;
pub mod framer;
pub mod obuf;
pub mod parse;
pub mod reply;

pub use connection::{Connection, ConnectionError};
pub use framer::{parse_command, FrameError, Framer, Limits};
pub use obuf::{ReplyBuffer, ReplyStats};
pub use parse::{Parse, ParseError};
pub use reply::{encode, encode_pieces, Frame, Protocol};
