//! `server.read_mode` (and `READMODE`): how reads are served.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

/// How reads are served (DESIGN §4).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum ReadMode {
    /// ReadIndex through the leader; a follower waits until it has applied that far.
    #[default]
    Linearizable,
    /// The leader answers locally while its lease holds, else falls back to ReadIndex.
    Lease,
    /// Any node answers from what it has applied.
    Stale,
}

impl ReadMode {
    /// A small number for an atomic setting; [`ReadMode::from_index`] reverses it.
    pub fn index(self) -> u8 {
        match self {
            ReadMode::Linearizable => 0,
            ReadMode::Lease => 1,
            ReadMode::Stale => 2,
        }
    }

    /// The mode of [`ReadMode::index`]; anything unknown is the default.
    pub fn from_index(i: u8) -> ReadMode {
        match i {
            1 => ReadMode::Lease,
            2 => ReadMode::Stale,
            _ => ReadMode::Linearizable,
        }
    }

    /// Returns the mode's name as written in config and in `READMODE`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReadMode::Linearizable => "linearizable",
            ReadMode::Lease => "lease",
            ReadMode::Stale => "stale",
        }
    }
}

impl fmt::Display for ReadMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of [`ReadMode::from_str`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown read mode `{0}` (expected linearizable, lease or stale)")]
pub struct ParseReadModeError(pub String);

impl FromStr for ReadMode {
    type Err = ParseReadModeError;

    /// Parses `linearizable`, `lease` or `stale`, ignoring ASCII case as Redis does for
    /// command arguments (`READMODE LEASE`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [ReadMode::Linearizable, ReadMode::Lease, ReadMode::Stale]
            .into_iter()
            .find(|mode| mode.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| ParseReadModeError(s.to_owned()))
    }
}
