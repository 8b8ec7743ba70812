//! redraft: a replicated configuration store. Raft (openraft) over an fsynced write-ahead
//! log, etcd's MVCC keyspace, spoken over the Redis protocol.
//!
//! # Crate map
//!
//! | module      | owns                                                              | imports      |
//! |-------------|-------------------------------------------------------------------|--------------|
//! | `protocol`  | RESP framing, limits, reply encoding (no commands)                | —            |
//! | `store`     | the deterministic MVCC keyspace: revisions, history, compaction   | —            |
//! | `raft`      | openraft: WAL log store, state machine, peer network, write path  | store, watch |
//! | `watch`     | pub/sub, keyspace notifications, the `__watch__:` stream          | store, raft, protocol, glob |
//! | `commands`  | argv → reply, through the read gate or the write path             | protocol, raft, store |
//! | `server`    | the Redis listener and per-connection sessions                    | protocol, commands |
//! | `config`    | `cluster.toml`, validation, data dir identity                     | —            |
//! | `backup`    | backup file format; restore into new data dirs                    | raft, store, config |
//! | `metrics`   | counters and histograms, Prometheus text exposition               | —            |
//! | `glob`      | Redis's glob matching (KEYS, SCAN MATCH, PSUBSCRIBE)               | —            |
//! | `node`      | assembles and runs one node                                       | all          |
//!
//! # How a write flows
//!
//! ```text
//! client ─RESP─▶ server::session ─▶ commands (SET) ─▶ RaftNode::write(Request{client_id, seq})
//!   ─▶ leader: openraft client_write ─▶ log append (WAL, group-commit fdatasync) on a majority
//!   ─▶ committed ─▶ state_machine::apply ─▶ store::Store::apply ─▶ Response ─▶ +OK
//!   (on a follower: forwarded to the leader over the peer connection, same path there)
//!
//! pipeline: consecutive writes of a batch ─▶ RaftNode::write_many ─▶ client_write_many (one
//!   ordered call, still one entry and one revision per command; ClientWriteMany when forwarded)
//! ```
//!
//! # How a read flows
//!
//! ```text
//! client ─RESP─▶ session ─▶ commands (GET) ─▶ read gate (ReadIndex from the leader, wait until
//!   applied that far; or none in stale mode) ─▶ store::Store::get ─▶ bulk reply
//! ```

pub mod backup;
pub mod client;
pub mod commands;
pub mod config;
pub mod context;
pub mod error;
pub mod fsutil;
pub mod glob;
pub mod metrics;
pub mod node;
pub mod protocol;
pub mod raft;
pub mod server;
pub mod store;
pub mod watch;
