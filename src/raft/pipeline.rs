//! Pipelined AppendEntries: openraft's replication stream to one follower, sent with several
//! requests in flight on the peer connection instead of one request per round trip.
//!
//! openraft (0.10) drives replication as a stream of AppendEntries requests
//! (`RaftNetworkV2::stream_append`): the next request is made as soon as the leader has
//! submitted new entries to its log or moved its commit index. Its default transport sends one,
//! waits for the answer, then asks for the next, so a follower whose AppendEntries is in flight
//! learns of a commit only after that round trip, and the entries the leader appends meanwhile
//! wait for it too. A traced write on an idle cluster showed the slower follower learning the
//! commit ~250 µs after the leader had it, and its watch event that much later.
//!
//! - **AppendPipelined.** [`PeerClient`]'s `stream_append` writes each request as soon as
//!   openraft makes it, up to [`MAX_IN_FLIGHT`] unanswered on the connection, and yields the
//!   answers in the order of the requests (the follower serves one connection's AppendEntries
//!   in arrival order: AppendInOrder in `rpc.rs`). The commit index reaches a follower while its
//!   last append is still being synced, and new entries reach it while it syncs the previous
//!   ones. While the pipeline is full, openraft's stream is not asked for more, so the entries
//!   appended meanwhile travel together in the next request.
//! - **PipelineStopsAtFirstRefusal.** As openraft's sequential transport: a conflict, a higher
//!   vote, a partial success, an error or a timeout is the last item yielded; requests still in
//!   flight then are abandoned and their connection is not used again (NoStaleConn,
//!   `network.rs`), and openraft starts a new stream from what the follower acknowledged. A
//!   request cut to the frame budget (AppendBytesBound) is the last one sent: its partial
//!   success ends the stream.
//!
//! - **ProbeSkippedWhenTold.** When the leader's commit index moves and no new entry is there
//!   to carry it, openraft makes an AppendEntries with no entries (the commit probe). A follower
//!   that early commit (`early_commit.rs`) has told of the leader's flush commits by itself, so
//!   the probe is not sent to it ([`CommitTold`]): at one client that is two of the six peer
//!   messages per write. Only when it carries nothing else: nothing is in flight (every request
//!   of this session was answered, so the follower has flushed up to the probe's
//!   `prev_log_id`), the probe starts where the last request sent ended, that is at or past
//!   the commit it carries, and the session has already had entries acknowledged. No answer
//!   is yielded for it; openraft counts it answered with the next answer, to a request sent
//!   after it, so the lease never counts an acknowledgement from before it was made (LeaseBound,
//!   `read.rs`). If the follower did not act on the announcement after all (its membership
//!   moved), the next AppendEntries or heartbeat brings the commit.
//!
//! Nothing here changes what a follower accepts: each request is a complete AppendEntries
//! checked by openraft on the follower (vote, previous log id), so requests that arrive or are
//! answered in any order cost a retry, never a wrong log.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use openraft::errors::{NetworkError, RPCError, Unreachable};
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, StreamAppendResult};

use super::append_encoded::AppendFormat;
use super::peer_conn::{Awaiting, PeerConn, PeerError, MIN_WRITE_BOUND};
use super::typ::{Entry, LogId, Vote};
use super::wire::{encoded_len, RpcRequest, RpcResponse, MAX_APPEND_BYTES};
use super::TypeConfig;

/// AppendEntries requests one replication stream keeps unanswered on its connection at most.
pub const MAX_IN_FLIGHT: usize = 4;

type Item = Result<StreamAppendResult<TypeConfig>, RPCError<TypeConfig>>;

/// Whether a follower learns a commit without the leader's commit probe (ProbeSkippedWhenTold).
pub trait CommitTold: Send + Sync {
    /// Whether `target`, which has flushed up to `commit`, was told recently enough to act on
    /// it that the leader of `vote` flushed up to `commit` or further; counts the probe
    /// skipped when it answers yes.
    fn skip_commit_probe(&self, target: u64, vote: &Vote, commit: &LogId) -> bool;
}

/// A request written and not yet answered.
struct Sent {
    awaiting: Awaiting,
    prev: Option<LogId>,
    /// The last log id of the request as openraft made it (before a cut).
    last: Option<LogId>,
    /// `Some(last sent)` if the entries were cut to the frame budget.
    cut: Option<Option<LogId>>,
    deadline: tokio::time::Instant,
}

/// One stream session's pipeline (AppendPipelined).
pub(super) struct Pipeline<S> {
    conn: Arc<PeerConn>,
    target: u64,
    /// Encoded or older AppendEntries (AppendedRequestsFallBack, `append_encoded.rs`).
    format: AppendFormat,
    timeout: Duration,
    input: S,
    /// No more requests will be taken from `input`: it ended, or the last one was cut.
    input_done: bool,
    in_flight: VecDeque<Sent>,
    /// An item that ends the stream was yielded (PipelineStopsAtFirstRefusal).
    stopped: bool,
    /// Who tells followers of commits (ProbeSkippedWhenTold); `None`: every probe is sent.
    told: Option<Arc<dyn CommitTold>>,
    /// Where the last request sent ended (its last log id as sent).
    last_sent: Option<Option<LogId>>,
    /// A request carrying entries was answered with a success in this session.
    entries_acked: bool,
}

/// What one wait of [`Pipeline::next_item`] brought.
enum Event {
    Answer(Result<RpcResponse, PeerError>),
    Request(Option<AppendEntriesRequest<TypeConfig>>),
}

impl<S> Pipeline<S>
where
    S: Stream<Item = AppendEntriesRequest<TypeConfig>> + Unpin,
{
    pub(super) fn new(
        conn: Arc<PeerConn>,
        target: u64,
        format: AppendFormat,
        timeout: Duration,
        input: S,
        told: Option<Arc<dyn CommitTold>>,
    ) -> Self {
        Self {
            conn,
            target,
            format,
            timeout,
            input,
            input_done: false,
            in_flight: VecDeque::new(),
            stopped: false,
            told,
            last_sent: None,
            entries_acked: false,
        }
    }

    /// The stream of answers, in the order of the requests.
    pub(super) fn into_stream(self) -> impl Stream<Item = Item> + Send
    where
        S: Send,
    {
        futures::stream::unfold(self, |mut p| async move {
            let item = p.next_item().await?;
            Some((item, p))
        })
    }

    /// The next answer: sends requests as openraft makes them while the pipeline has room, and
    /// returns once the oldest request in flight is answered (None: the stream is over).
    async fn next_item(&mut self) -> Option<Item> {
        loop {
            if self.stopped {
                return None;
            }
            let room = !self.input_done && self.in_flight.len() < MAX_IN_FLIGHT;
            let timeout = self.timeout;
            let event = {
                let Self {
                    input, in_flight, ..
                } = self;
                match in_flight.front_mut() {
                    None if !room => return None,
                    // Nothing in flight: wait for openraft's next request.
                    None => Event::Request(input.next().await),
                    Some(head) => {
                        tokio::select! {
                            biased;
                            r = head.awaiting.answer(head.deadline, timeout) => Event::Answer(r),
                            // Cancel-safe: openraft's request stream keeps a request it was
                            // making when this wait ends, and finishes it on the next poll.
                            req = input.next(), if room => Event::Request(req),
                        }
                    }
                }
            };
            match event {
                Event::Request(None) => self.input_done = true,
                Event::Request(Some(req)) if self.probe_needless(&req) => {}
                Event::Request(Some(req)) => {
                    if let Err(e) = self.send(req).await {
                        self.stopped = true;
                        return Some(Err(e));
                    }
                }
                Event::Answer(r) => {
                    let head = self.in_flight.pop_front().expect("an answer is the head's");
                    return Some(self.answered(head, r));
                }
            }
        }
    }

    /// ProbeSkippedWhenTold: whether `rpc` is a commit probe the follower has no use for.
    fn probe_needless(&self, rpc: &AppendEntriesRequest<TypeConfig>) -> bool {
        let (Some(told), Some(commit)) = (&self.told, rpc.leader_commit.as_ref()) else {
            return false;
        };
        rpc.entries.is_empty()
            && self.in_flight.is_empty()
            && self.entries_acked
            && self.last_sent == Some(rpc.prev_log_id)
            && rpc.prev_log_id.as_ref() >= Some(commit)
            && told.skip_commit_probe(self.target, &rpc.vote, commit)
    }

    /// Writes `rpc` (cut to the frame budget: AppendBytesBound) and puts it in flight.
    async fn send(
        &mut self,
        mut rpc: AppendEntriesRequest<TypeConfig>,
    ) -> Result<(), RPCError<TypeConfig>> {
        let prev = rpc.prev_log_id;
        let last = rpc.entries.last().map(|e| e.log_id).or(prev);
        let cut = cut_to_frame_budget(&mut rpc, self.target);
        if cut.is_some() {
            // Its partial success ends the stream; nothing may follow it.
            self.input_done = true;
        }
        let write_bound = self.timeout.max(MIN_WRITE_BOUND);
        let awaiting = self
            .conn
            .send(append_request(&self.format, rpc), write_bound)
            .await
            .map_err(|e| self.rpc_error(e))?;
        self.last_sent = Some(cut.unwrap_or(last));
        self.in_flight.push_back(Sent {
            awaiting,
            prev,
            last,
            cut,
            deadline: tokio::time::Instant::now() + self.timeout,
        });
        Ok(())
    }

    /// The item for `head`'s answer; marks the stream stopped unless the answer is a success
    /// for all the request carried (PipelineStopsAtFirstRefusal).
    fn answered(&mut self, head: Sent, r: Result<RpcResponse, PeerError>) -> Item {
        let resp = match r {
            Ok(RpcResponse::AppendEntries(Ok(resp))) => resp,
            Ok(RpcResponse::AppendEntries(Err(m))) => {
                self.stopped = true;
                return Err(RPCError::Network(NetworkError::from_string(format!(
                    "node {}: {m}",
                    self.target
                ))));
            }
            Ok(RpcResponse::Refused(why)) => {
                self.stopped = true;
                self.format.refused(self.target, &why);
                return Err(RPCError::Network(NetworkError::from_string(format!(
                    "node {} refused the request: {why}",
                    self.target
                ))));
            }
            Ok(_) => {
                self.stopped = true;
                return Err(RPCError::Network(NetworkError::from_string(
                    "unexpected answer to append_entries",
                )));
            }
            Err(e) => {
                self.stopped = true;
                return Err(self.rpc_error(e));
            }
        };
        let resp = for_sent(head.cut, resp);
        let whole = match &resp {
            AppendEntriesResponse::Success => true,
            AppendEntriesResponse::PartialSuccess(upto) => *upto == head.last,
            _ => false,
        };
        if !whole {
            self.stopped = true;
        } else if head.last > head.prev {
            self.entries_acked = true;
        }
        Ok(resp.into_stream_result(head.prev, head.last))
    }

    fn rpc_error(&self, e: PeerError) -> RPCError<TypeConfig> {
        match e {
            PeerError::Unreachable(_) => RPCError::Unreachable(Unreachable::from_string(format!(
                "node {}: {e}",
                self.target
            ))),
            e => RPCError::Network(NetworkError::from_string(format!(
                "node {}: {e}",
                self.target
            ))),
        }
    }
}

/// AppendBytesBound: cuts `rpc`'s entries to what fits [`MAX_APPEND_BYTES`] (a follower that
/// takes the prefix answers for it alone: [`for_sent`]). Returns `Some(last log id sent)` if
/// entries were cut.
pub(super) fn cut_to_frame_budget(
    rpc: &mut AppendEntriesRequest<TypeConfig>,
    target: u64,
) -> Option<Option<LogId>> {
    let kept = entries_within(&rpc.entries, MAX_APPEND_BYTES);
    (kept < rpc.entries.len()).then(|| {
        tracing::info!(
            target,
            sent = kept,
            of = rpc.entries.len(),
            "append entries cut to the frame budget"
        );
        rpc.entries.truncate(kept);
        rpc.entries.last().map(|e| e.log_id)
    })
}

/// How many of `entries`, from the first, fit in `budget` encoded bytes; always at least one
/// (a single entry larger than the budget travels alone; `write.rs` refuses entries that
/// could not fit a frame at all).
pub(super) fn entries_within(entries: &[Entry], budget: usize) -> usize {
    let mut total = 0usize;
    for (i, e) in entries.iter().enumerate() {
        total = total.saturating_add(entry_len(e));
        if total > budget {
            return i.max(1);
        }
    }
    entries.len()
}

/// `rpc` as the peer of `format` takes it: encoded, or the older AppendEntries
/// (AppendedRequestsFallBack, `append_encoded.rs`).
pub(super) fn append_request(
    format: &AppendFormat,
    rpc: AppendEntriesRequest<TypeConfig>,
) -> RpcRequest {
    if format.encoded() {
        RpcRequest::AppendEntriesEncoded(rpc.into())
    } else {
        RpcRequest::AppendEntries(rpc)
    }
}

/// The encoded size of `e` ([`encoded_len`]), for a normal entry without decoding its request
/// (DecodeOnApply): its log id, its payload's variant (one byte) and the request's bytes.
pub(super) fn entry_len(e: &Entry) -> usize {
    match &e.payload {
        openraft::EntryPayload::Normal(req) => encoded_len(&e.log_id) + 1 + req.len(),
        _ => encoded_len(e),
    }
}

/// The follower's answer to an AppendEntries of which only a prefix, ending at `cut`, was sent
/// (`None`: all of it): a plain success then covers the prefix only.
pub(super) fn for_sent(
    cut: Option<Option<LogId>>,
    resp: AppendEntriesResponse<TypeConfig>,
) -> AppendEntriesResponse<TypeConfig> {
    match (cut, resp) {
        (Some(last), AppendEntriesResponse::Success) => AppendEntriesResponse::PartialSuccess(last),
        (_, resp) => resp,
    }
}

#[cfg(test)]
#[path = "pipeline_test.rs"]
mod tests;
