//! Cluster capability: three (or five) real `redraft` processes on ephemeral ports: start-up and
//! election, failover under writes (plain, pipelined, retried through churning connections, scripts),
//! cluster operations (RAFT.INFO, ROLE, leadership transfer, rolling restart, HTTP), membership
//! changes, large entries and snapshot transfer in chunks, keyspace-sized commands without an election, replication pipelined over a slow
//! round trip, Sentinel discovery through a leader kill.
//!
//! One test binary; each module below is one area, sharing the harness in `tests/common`.

#[path = "../common/mod.rs"]
mod common;

mod acl_users;
mod client_cache;
mod cluster_ops;
mod console;
mod dedup_churn_failover;
mod early_commit;
mod failover;
mod follower_sync;
mod large_entries;
mod long_commands;
mod membership;
mod pipelined_failover;
mod pipelined_replication;
mod restart_campaign;
mod schemas;
mod script_failover;
mod sentinel;
mod snapshot_chunks;
mod three_processes;
