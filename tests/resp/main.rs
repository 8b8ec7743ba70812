//! RESP capability: how the server reads and answers bytes on a connection, black box over
//! raw sockets: framing (inline and multibulk, limits, the framer's invariants), session
//! lifecycle (QUIT, timeouts, output limits, CLIENT KILL, pipelining order), the limits on
//! unauthenticated input, and every listed command fuzzed with random arguments.
//!
//! One test binary; each module below is one area, sharing the harness in `tests/common`.

#[path = "../common/mod.rs"]
mod common;

mod command_fuzz;
mod framing;
mod sessions;
mod unauthenticated_limits;
