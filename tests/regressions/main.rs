//! Regression tests: one module per bug found, each module's `//!` stating the bug and the fix.
//!
//! One test binary, sharing the harness in `tests/common`.

#[path = "../common/mod.rs"]
mod common;

mod stale_read_after_full_restart;
