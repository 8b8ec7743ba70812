//! The one RESP client of redraft's integration tests, the jepsen harness and the load
//! generator (`benches/loadgen`). It is a black box over TCP and never links `redraft`.
//!
//! - [`encode`] / [`encode_into`] / [`multibulk`]: commands as RESP arrays of bulk strings
//!   (`encode.rs`).
//! - [`Conn`]: an async (tokio) pipelining connection with a simple [`Reply`] (RESP3 maps and
//!   pushes read as arrays), used by jepsen and the load generator (`conn.rs`). Its bounded
//!   calls tell a request that never left ([`IoError::NotSent`]) from one whose reply never
//!   came ([`IoError::AfterSend`]), with no hidden reconnect or retry.
//! - [`raw`]: a sync connection for black-box tests that must see the exact bytes of a reply,
//!   with a strict RESP2/RESP3 parser (`raw::Reply` keeps every RESP3 type apart) and every
//!   wait bounded.
//!
//! It must not interpret commands: what a reply means is the caller's business.

mod conn;
mod encode;
pub mod raw;

pub use conn::{decode, is_push, Conn, IoError, Reply};
pub use encode::{encode, encode_into, multibulk};
