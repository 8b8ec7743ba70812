//! Reads capability: the read modes (linearizable, lease, stale) on a real cluster, linearizable
//! reads sharing ReadIndex rounds, and the same replies from a follower as from the leader.
//!
//! One test binary; each module below is one area, sharing the harness in `tests/common`.

#[path = "../common/mod.rs"]
mod common;

mod leader_follower_replies;
mod read_batching;
mod read_modes;
