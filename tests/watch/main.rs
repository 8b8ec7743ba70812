//! Watch capability: pub/sub and keyspace notifications (differential against a real
//! `redis-server`), revision history and the watch stream (GETAT, HISTORY, ROLLBACK, COMPACT,
//! WATCH), and the README's config-center example run through a leader kill and a rollback.
//!
//! One test binary; each module below is one area, sharing the harness in `tests/common`.

#[path = "../common/mod.rs"]
mod common;

mod config_center_example;
mod history_and_watch;
mod notify_burst;
mod pubsub;
