//! The RESP text of `raft/`'s errors: the one place that chooses which error prefix a client
//! sees for each way a write, a read barrier or an administration request can fail (the
//! prefixes are listed in `error.rs`).
//!
//! | error                                   | prefix      |
//! |-----------------------------------------|-------------|
//! | `RaftError::{NoLeader, ApplyBehind}`    | `TRYAGAIN`  |
//! | `RaftError::{Unknown, TimedOut}`        | `UNCERTAIN` |
//! | `RaftError::{TooLarge, DiskFull, Fatal}` | `ERR`       |
//! | `AdminError::{NotLeader, Incomplete, Busy}` | `TRYAGAIN` |
//! | `AdminError::Refused`                   | `ERR`       |
//! | `SnapshotError::Stopped`                | `ERR`       |
//! | `SnapshotError::NotDone`                | `TRYAGAIN`  |
//!
//! Only `NoLeader`, "never sent", and `ApplyBehind`, a read not served, carry a prefix that
//! client libraries retry (UncertainIsNotRetryable, `raft/error.rs`).

use super::CommandError;
use crate::raft::{AdminError, RaftError, SnapshotError};

/// The RESP error text of a failed write or read barrier.
pub fn raft_error_text(e: &RaftError) -> String {
    let prefix = match e {
        RaftError::NoLeader | RaftError::ApplyBehind { .. } => "TRYAGAIN",
        RaftError::Unknown | RaftError::TimedOut { .. } => "UNCERTAIN",
        _ => "ERR",
    };
    format!("{prefix} {e}")
}

/// The reply to a failed administration request.
pub fn admin_error(e: AdminError) -> CommandError {
    let prefix = match e {
        AdminError::Refused(_) => "ERR",
        AdminError::NotLeader { .. } | AdminError::Incomplete(_) | AdminError::Busy(_) => {
            "TRYAGAIN"
        }
    };
    CommandError::Reply(format!("{prefix} {e}"))
}

/// The reply to a snapshot asked for by hand that did not complete.
pub fn snapshot_error(e: SnapshotError) -> CommandError {
    let prefix = match e {
        SnapshotError::Stopped(_) => "ERR",
        SnapshotError::NotDone(_) => "TRYAGAIN",
    };
    CommandError::Reply(format!("{prefix} {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(e: CommandError) -> String {
        e.to_string()
    }

    #[test]
    fn raft_errors_carry_their_resp_prefix() {
        assert!(raft_error_text(&RaftError::TooLarge {
            len: 5,
            limit: crate::raft::MAX_ENTRY_BYTES
        })
        .starts_with("ERR request too large to replicate"),);
        assert_eq!(
            raft_error_text(&RaftError::NoLeader),
            "TRYAGAIN no raft leader available (election in progress or quorum lost); not \
             applied, retry"
        );
        assert_eq!(
            raft_error_text(&RaftError::ApplyBehind {
                index: 7,
                waited_ms: 5000
            }),
            "TRYAGAIN this node has not applied up to the read's index 7 within 5000 ms (a long \
             write is being applied ahead of it); not served, retry"
        );
        assert_eq!(
            raft_error_text(&RaftError::TimedOut { waited_ms: 5000 }),
            "UNCERTAIN the write was proposed but not answered within 5000 ms (a long write \
             applied ahead of it, a slow disk, or the leader lost); it may or may not have been \
             applied"
        );
        assert_eq!(
            raft_error_text(&RaftError::Unknown),
            "UNCERTAIN the leader was lost or stopped before answering; the write may or may \
             not have been applied"
        );
        assert_eq!(
            raft_error_text(&RaftError::Fatal("x".into())),
            "ERR raft stopped on this node: x"
        );
        assert_eq!(
            text(RaftError::Unknown.into()),
            raft_error_text(&RaftError::Unknown)
        );
    }

    #[test]
    fn admin_errors_carry_their_resp_prefix() {
        assert!(
            text(admin_error(AdminError::NotLeader { leader: Some(2) })).starts_with("TRYAGAIN ")
        );
        assert_eq!(
            text(admin_error(AdminError::Refused(
                "node 9 is not a member".into()
            ))),
            "ERR node 9 is not a member"
        );
        assert!(text(admin_error(AdminError::Incomplete("x".into()))).starts_with("TRYAGAIN "));
        // A change in progress is retryable (two nodes joining at once).
        assert!(text(admin_error(AdminError::Busy("x".into()))).starts_with("TRYAGAIN "));
    }

    #[test]
    fn snapshot_errors_carry_their_resp_prefix() {
        assert_eq!(
            text(snapshot_error(SnapshotError::Stopped("gone".into()))),
            "ERR raft stopped: gone"
        );
        assert_eq!(
            text(snapshot_error(SnapshotError::NotDone("timeout".into()))),
            "TRYAGAIN snapshot not done: timeout"
        );
    }
}
