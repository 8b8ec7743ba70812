//! Compatibility capability: redraft answers as Redis 7 does, checked differentially against a
//! real `redis-server` and with stock clients unchanged: the single-node harness, the strings and
//! keys script, connection and server commands, the server surface monitoring and proxies probe, redis-py, redis-cli and redis-benchmark, and the
//! `-UNCERTAIN` reply as redis-py and ioredis see it.
//!
//! One test binary; each module below is one area, sharing the harness in `tests/common`.

#[path = "../common/mod.rs"]
mod common;

mod acl_differential;
mod acl_keys;
mod connection;
mod hashes;
mod redis_cli_and_benchmark;
mod redis_py;
mod scripting;
mod server_surface;
mod single_node;
mod strings_differential;
mod tracking;
mod uncertain_replies;
