//! Writes capability: pipelined writes on one connection are proposed as one ordered run and
//! behave exactly as if each write had been proposed alone.
//!
//! One test binary; each module below is one area, sharing the harness in `tests/common`.

#[path = "../common/mod.rs"]
mod common;

mod pipelined_writes;
