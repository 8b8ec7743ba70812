//! Leader-side helpers, written once and used by both paths that reach them: a client write
//! or read index on this node when it leads (`write.rs`, `read.rs`), and the same request
//! forwarded by a follower (`rpc.rs`). Each answers in wire terms ([`ForwardError`]), so the
//! local caller and the forwarding follower read the same outcome.

use futures::StreamExt;
use openraft::{ReadPolicy, TryAsRef};

use super::typ::Raft;
use super::wire::ForwardError;
use super::{stamp, TypeConfig};
use crate::store::{Request, Response};

/// Proposes `req` on this node, as leader, and returns the store's response once it is
/// committed and applied, or why not.
pub(super) async fn client_write(raft: &Raft, req: Request) -> Result<Response, ForwardError> {
    match raft.client_write(stamp(req)).await {
        Ok(resp) => Ok(resp.data),
        Err(e) => Err(forward_error(&e)),
    }
}

/// This node's read index, as leader, confirmed by a quorum (ReadIndex).
pub(super) async fn read_index(raft: &Raft) -> Result<u64, ForwardError> {
    match raft.get_read_linearizer(ReadPolicy::ReadIndex).await {
        Ok(lin) => Ok(lin.read_log_id().index()),
        Err(e) => Err(forward_error(&e)),
    }
}

/// Appends `reqs` in order as consecutive entries (openraft `client_write_many`) and returns
/// one result per request, in order: the store's response once applied, or why not. A request
/// with an error may still be applied (the follower retries it with the same `(client_id, seq)`).
pub(super) async fn client_write_many(
    raft: &Raft,
    reqs: Vec<Request>,
) -> Vec<Result<Response, ForwardError>> {
    let n = reqs.len();
    let mut results = Vec::with_capacity(n);
    append_many(raft, reqs, &mut results).await;
    // Fewer results only when Raft stopped: the rest share the last failure.
    let last = match results.last() {
        Some(Err(e)) => e.clone(),
        _ => ForwardError::NotLeader { leader: None },
    };
    results.resize(n, Err(last));
    results
}

/// Appends `reqs` in order as consecutive entries on this node, as leader, and pushes each
/// one's result onto `results` as it arrives (so a caller that gives up keeps what came).
/// Stops early only if Raft stopped.
pub(super) async fn append_many(
    raft: &Raft,
    reqs: Vec<Request>,
    results: &mut Vec<Result<Response, ForwardError>>,
) {
    let reqs = reqs.into_iter().map(stamp).collect::<Vec<_>>();
    let mut stream = match raft.client_write_many(reqs).await {
        Ok(stream) => stream,
        Err(fatal) => {
            results.push(Err(ForwardError::Fatal(fatal.to_string())));
            return;
        }
    };
    while let Some(item) = stream.next().await {
        results.push(match item {
            Ok(Ok(written)) => Ok(written.response),
            // ForwardToLeader (not appended) or LogEntryDiscarded (outcome unknown).
            Ok(Err(e)) => Err(ForwardError::NotLeader {
                leader: e.try_as_ref().and_then(|f| f.leader_id),
            }),
            Err(fatal) => Err(ForwardError::Fatal(fatal.to_string())),
        });
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
