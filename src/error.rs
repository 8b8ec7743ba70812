//! The crate's error type, and the one table of RESP error prefixes.
//!
//! Each layer has its own error enum (`FrameError`, `StoreError`, `ConfigError`, `RaftError`);
//! they convert into [`Error`] here. The first word of a RESP error is API: the prefixes a
//! client can see are listed once, below (which raft error gets which prefix is chosen in
//! `commands/raft_errors.rs`: `raft/` knows nothing of RESP).
//!
//! | prefix      | meaning                                                              |
//! |-------------|----------------------------------------------------------------------|
//! | `ERR`       | generic error (Redis's)                                              |
//! | `WRONGTYPE` | operation against a key holding the wrong kind of value (Redis's)    |
//! | `NOAUTH`    | authentication required (Redis's)                                    |
//! | `TRYAGAIN`  | not applied, safe to retry: no raft leader reachable in time         |
//! | `UNCERTAIN` | may have been applied: the leader was lost or stopped mid-write;     |
//! |             | retried by no common client library (UncertainIsNotRetryable)        |
//! | `COMPACTED` | the revision asked for is older than the compact revision            |

use crate::config::ConfigError;

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors that stop a node from starting or running.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("invalid config: {0}")]
    ConfigText(String),
    #[error("storage: {0}")]
    Storage(String),
    #[error("io: {0}")]
    Io(String),
}
