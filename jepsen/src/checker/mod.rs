//! The checks (SEMANTICS.md §4): linearizability of the register workload, the set check and the
//! durability of acknowledged writes, and
//! the client-side cache check. Pure functions of a history; no I/O.

pub mod cache;
pub mod durability;
pub mod linearizable;
pub mod set;
pub mod watch;

pub use linearizable::Verdict;
