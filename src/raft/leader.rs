//! Leader-side helpers, written once and used by both paths that reach them: a read index on
//! this node when it leads (`read.rs`), and the same request forwarded by a follower
//! (`rpc.rs`). Each answers in wire terms ([`ForwardError`]), so the local caller and the
//! forwarding follower read the same outcome. Client writes take the same two paths through
//! the proposal batcher (`batcher.rs`).

use openraft::{ReadPolicy, TryAsRef};

use super::typ::Raft;
use super::wire::ForwardError;
use super::TypeConfig;

/// This node's read index, as leader, confirmed by a quorum (ReadIndex).
pub(super) async fn read_index(raft: &Raft) -> Result<u64, ForwardError> {
    match raft.get_read_linearizer(ReadPolicy::ReadIndex).await {
        Ok(lin) => Ok(lin.read_log_id().index()),
        Err(e) => Err(forward_error(&e)),
    }
}

/// Turns a raft API error into what a forwarding follower needs to know.
fn forward_error<E>(e: &openraft::errors::RaftError<TypeConfig, E>) -> ForwardError
where
    E: std::error::Error + TryAsRef<openraft::errors::ForwardToLeader<TypeConfig>>,
{
    match e {
        openraft::errors::RaftError::Fatal(f) => ForwardError::Fatal(f.to_string()),
        openraft::errors::RaftError::APIError(api) => match api.try_as_ref() {
            Some(fwd) => ForwardError::NotLeader {
                leader: fwd.leader_id,
            },
            None => ForwardError::NotLeader { leader: None },
        },
    }
}
