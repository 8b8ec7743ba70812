//! Writes capability: pipelined writes on one connection are proposed as one ordered run, and
//! the writes of many clients share log entries (proposal batching), and both behave exactly as
//! if each write had been proposed alone.
//!
//! One test binary; each module below is one area, sharing the harness in `tests/common`.

#[path = "../common/mod.rs"]
mod common;

mod pipelined_writes;
mod proposal_batching;
