//! Server commands: what a client asks about the server rather than its data, one file per
//! command group: `command.rs` (COMMAND and its subcommands, from the command table),
//! `config.rs` (CONFIG GET SET RESETSTAT), `info.rs` (INFO) with `process.rs` (the process's
//! memory and CPU figures), `role.rs` (ROLE, TIME).
//!
//! # Format
//!
//! ```text
//! COMMAND                       → every command's COMMAND INFO entry
//! COMMAND COUNT                 → :number of (top-level) commands
//! COMMAND INFO [name ...]       → entries (nil for an unknown name; all when none given)
//! COMMAND DOCS [name ...]       → map name → docs (unknown names left out; all when none given)
//! COMMAND LIST [FILTERBY MODULE m | ACLCAT c | PATTERN p] → names, subcommands included
//! COMMAND GETKEYS cmd [arg ...] → the keys the command's key specs find
//! COMMAND GETKEYSANDFLAGS cmd [arg ...] → [key, [flag ...]] per key
//! CONFIG GET pattern [pattern ...] → map parameter → value (flat array in RESP2)
//! CONFIG SET param value [param value ...] → +OK; all or none are applied
//! CONFIG RESETSTAT              → +OK (INFO stats, commandstats, errorstats, latencystats
//!                                 back to 0)
//! INFO [section ...]            → text: server, clients, memory, persistence, stats,
//!                                 replication, cpu, raft, reads, errorstats, keyspace; with
//!                                 `all`/`everything` or by name also commandstats and
//!                                 latencystats (verbatim in RESP3)
//! ROLE                          → master: [master, applied_index, [[ip, port, match_index]...]]
//!                                 replica: [slave, leader_ip, leader_port, connected|connect,
//!                                 applied_index]
//! TIME                          → [unix seconds, microseconds] as bulk strings
//! ```
//!
//! `CONFIG SET` changes a setting on this node only, until restart (redraft has no CONFIG
//! REWRITE: `cluster.toml` is the configuration). Settable: `maxclients`, `timeout`,
//! `notify-keyspace-events`, `client-output-buffer-limit`, and redraft's `read-mode` (the mode
//! new connections start in; existing ones keep theirs). Any other listed parameter may be
//! "set" to the value it has (a no-op clients and test harnesses do), and is otherwise refused as
//! Redis refuses an immutable one.

mod command;
mod config;
mod info;
mod process;
mod role;

pub(super) use command::command;
pub(super) use config::config;
pub(super) use info::info_command;
pub(super) use role::{role, time};
