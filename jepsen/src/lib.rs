//! A Jepsen-style black-box harness for redraft (DESIGN §9; STYLE "jepsen/"; SEMANTICS.md).
//!
//! Layers, each in its own module and unit-tested:
//!
//! ```text
//! main ─▶ db (cluster.toml, network namespaces, processes) ─▶ real `redraft` nodes
//!     ─▶ nemesis (kill -9, SIGSTOP, iptables partitions, on a schedule) ─▶ db
//!     ─▶ workload (register / set generators, N clients) ─▶ client (ops over resp) ─▶ history
//!     ─▶ watch (XREAD watchers following every change, moving between nodes)
//!     ─▶ cache (readers with a client-side cache kept by CLIENT TRACKING invalidations)
//!     ─▶ clock (libfaketime: nodes whose clocks run fast or slow) ◀─ db
//!     ─▶ lossyfs (data dirs that lose unsynced data at a power cut) ◀─ nemesis power-loss
//!     ─▶ checker (linearizable per key, set, durability, watch, cache) ─▶ report (summary, PNG timeline)
//! ```
//!
//! Only RESP reaches the system under test: the harness never links `redraft`.

pub mod cache;
pub mod checker;
pub mod client;
pub mod clock;
pub mod db;
pub mod history;
pub mod lossyfs;
pub mod nemesis;
pub mod powercut;
pub mod report;
/// The RESP client (the shared `resp-client` crate), as `crate::resp`.
pub use resp_client as resp;
pub mod watch;
pub mod workload;
