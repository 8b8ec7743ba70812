//! Operations capability: the `redraft` command line and config validation, backup and restore,
//! the peer port's shared secret, and the process's threads (CPU scheduling policy, worker count).
//!
//! One test binary; each module below is one area, sharing the harness in `tests/common`.

#[path = "../common/mod.rs"]
mod common;

mod backup_restore;
mod cli_config;
mod peer_secret;
mod sched_policy;
mod tls;
