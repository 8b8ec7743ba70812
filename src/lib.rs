//! redraft: a replicated configuration store. Raft (openraft) over an fsynced write-ahead
//! log, etcd's MVCC keyspace, spoken over the Redis protocol.
//!
//! # Crate map
//!
//! | module     | owns                                           | imports                        |
//! |------------|------------------------------------------------|--------------------------------|
//! | `protocol` | RESP framing, limits, reply encoding           | —                              |
//! | `store`    | deterministic MVCC keyspace and history        | —                              |
//! | `raft`     | openraft: WAL log, state machine, network      | store, watch                   |
//! | `watch`    | pub/sub, keyspace notices, `__watch__:` stream | store, protocol, config, glob  |
//! | `context`  | what sessions share: ServerContext, clients    | raft, config, protocol         |
//! | `acl`      | ACL users compiled, permission checks, ACL LOG | store, commands::table, glob   |
//! | `commands` | argv → reply: route, families, read gate       | context, protocol, raft, store |
//! | `server`   | the Redis listener, connection loop, HTTP      | context, commands, protocol    |
//! | `config`   | `cluster.toml`, validation, data dir identity  | —                              |
//! | `backup`   | backup format; restore into new data dirs      | raft, store, config            |
//! | `metrics`  | counters and histograms, Prometheus text       | —                              |
//! | `glob`     | Redis's glob matching (KEYS, CONFIG GET...)    | —                              |
//! | `node`     | assembles and runs one node                    | all                            |
//!
//! # How a write flows
//!
//! ```text
//! client ─RESP─▶ server::session ─▶ commands::Batch ─▶ check (table: arity, auth, ACL)
//!   ─▶ route (SET ─▶ strings::set: Plan) ─▶ RaftNode::write(Request{client_id, seq})
//!   ─▶ leader: raft::batcher (every write waiting, from all connections, in one entry)
//!   ─▶ openraft ─▶ log append (WAL, group-commit fdatasync) on a majority
//!   ─▶ committed ─▶ state_machine::apply (each request its own revision) ─▶ store::Store::apply
//!   ─▶ Response ─▶ +OK
//!   (on a follower: raft::forward sends the writes waiting there as one ClientWriteMany to
//!   the leader, whose batcher takes them as one job)
//!
//! pipeline: consecutive writes of a batch ─▶ RaftNode::write_many ─▶ one batcher job (kept
//!   together and in order; still one revision per command)
//! ```
//!
//! # How a read flows
//!
//! ```text
//! client ─RESP─▶ server::session ─▶ commands::Batch ─▶ check ─▶ route (GET ─▶ reads::plan)
//!   ─▶ read gate (ReadIndex from the leader, wait until applied that far; or none in stale
//!   mode) ─▶ RaftNode::read_store ─▶ store::Store::read ─▶ bulk reply
//! ```

pub mod acl;
pub mod allocator;
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
pub mod tls;
pub mod watch;
