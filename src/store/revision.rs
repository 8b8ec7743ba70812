//! Revisions: etcd's `{main, sub}` pair that orders every change in the keyspace.
//!
//! `main` is the global revision: it grows by exactly one for every state-changing Raft entry
//! (RevisionMonotonic). `sub` numbers the changes made by that one entry, from 0. Reads and
//! no-op writes bump nothing.

use serde::{Deserialize, Serialize};

/// A point in the keyspace history: `main` is the global revision, `sub` the change within it.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Revision {
    pub main: u64,
    pub sub: u64,
}

impl Revision {
    pub const fn new(main: u64, sub: u64) -> Self {
        Self { main, sub }
    }
}
