//! Client writes on [`RaftNode`]: one request or a run, proposed on this node when it leads or
//! forwarded to the leader over the peer connection.
//!
//! # How a write flows
//!
//! ```text
//! RaftNode::write(req{client_id, seq})
//!   ├─ this node leads ──▶ batcher (one entry with the other writes waiting) ──▶ committed on
//!   │                      a majority ──▶ applied ──▶ Response
//!   ├─ another leads   ──▶ forwarder ──▶ RpcRequest::ClientWriteMany (with the other writes
//!   │                      waiting here) ──▶ the leader's batcher ──▶ (same, there)
//!   └─ no leader       ──▶ wait for one, up to `write_timeout`, then RaftError::NoLeader
//! ```
//!
//! A retry after a lost connection or a leader change resends the same `(client_id, seq)`;
//! the store applies it at most once (ExactlyOnceApply, see `store::Store::apply`).
//!
//! # How a run of writes flows
//!
//! ```text
//! RaftNode::write_many([req{client_id, seq}, req{.., seq+1}, ...])
//!   ├─ this node leads ──▶ one batcher job: consecutive in the log, one result each
//!   ├─ another leads   ──▶ one forwarder job (never split: order kept) ──▶ (same, there)
//!   └─ then, for each request that did not come back applied, in order: RaftNode::write
//! ```

use std::future::Future;
use std::time::{Duration, Instant};

use super::error::RaftError;
use super::forward::CallFailure;
use super::peer_conn::PeerError;
use super::raft_node::RaftNode;
use super::wire::encoded_len;
use super::wire::{ForwardError, MAX_ENTRY_BYTES};
use crate::store::{ClientSeq, Request, Response, StoreError};

/// The encoded size of `req` when it exceeds [`MAX_ENTRY_BYTES`].
fn too_large(req: &Request) -> Option<usize> {
    let len = encoded_len(req);
    (len > MAX_ENTRY_BYTES).then_some(len)
}

impl RaftNode {
    /// Proposes `req` and returns the store's answer once it is committed on a majority and
    /// applied (on the leader; a forwarded write is answered by the leader).
    pub async fn write(&self, req: Request) -> Result<Response, RaftError> {
        let result = self.write_once(req).await;
        self.count_proposal(&result);
        result
    }

    /// Refuses a client write while this node's log disk is full.
    fn check_disk(&self) -> Result<(), RaftError> {
        match self.log_disk.disk_full() {
            None => Ok(()),
            Some(reason) => Err(RaftError::DiskFull {
                node: self.id,
                reason,
            }),
        }
    }

    /// Counts a client write's outcome for `/metrics`.
    fn count_proposal(&self, result: &Result<Response, RaftError>) {
        let counter = match result {
            Ok(_) => &self.node_metrics.proposals_committed,
            Err(_) => &self.node_metrics.proposals_failed,
        };
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// [`Self::write`] without counting. Every send after one that may have reached a leader
    /// is marked a retry (`ClientSeq::retry`, NoDoubleApplyAfterEviction).
    async fn write_once(&self, mut req: Request) -> Result<Response, RaftError> {
        self.check_disk()?;
        if let Some(len) = too_large(&req) {
            return Err(RaftError::TooLarge {
                len,
                limit: MAX_ENTRY_BYTES,
            });
        }
        let deadline = Instant::now() + self.write_timeout;
        // Whether a leader may already hold the request: then a failure is "unknown".
        let mut maybe_sent = false;
        loop {
            let (leader, addr) = self
                .wait_for_leader(deadline)
                .await
                .map_err(|e| uncertain_if_sent(e, maybe_sent))?;
            let left = deadline.saturating_duration_since(Instant::now());
            if leader == self.id {
                maybe_sent = true;
                let answer = tokio::time::timeout(left, self.batcher.propose(vec![req.clone()]))
                    .await
                    .map(|answers| {
                        answers.into_iter().next().unwrap_or_else(|| {
                            Err(ForwardError::Fatal("no answer from the batcher".into()))
                        })
                    });
                match answer {
                    Ok(Ok(resp)) => return Ok(resp),
                    Ok(Err(e)) => match e {
                        // The entry may already be on followers, where a new leader can
                        // commit it (UncertainIsNotRetryable).
                        ForwardError::Fatal(m) => {
                            tracing::warn!(
                                error = %m,
                                "raft stopped with a client write in flight; answered UNCERTAIN"
                            );
                            return Err(RaftError::Unknown);
                        }
                        ForwardError::NotLeader { .. } => {}
                    },
                    Err(_) => {
                        return Err(RaftError::TimedOut {
                            waited_ms: self.write_timeout.as_millis() as u64,
                        })
                    }
                }
            } else if !addr.is_empty() {
                let forwarded = self
                    .write_forwarders
                    .forward(leader, &addr, vec![req.clone()]);
                let outcome = match tokio::time::timeout(left, forwarded).await {
                    Ok(outcome) => outcome,
                    Err(_) => Err(CallFailure::Peer(PeerError::Timeout(left))),
                };
                match outcome {
                    Ok(answers) => match answers.into_iter().next() {
                        Some(Ok(resp)) => return Ok(resp),
                        // NotLeader, or the leader's Raft stopped with the write in flight.
                        Some(Err(_)) | None => maybe_sent = true,
                    },
                    // The leader served it but its answer did not fit a peer frame
                    // (OversizeReplyRefused, `rpc.rs`): retrying would only lose it again.
                    Err(CallFailure::Refused(why)) => {
                        tracing::warn!(leader, %why, "forwarded write: answer lost");
                        return Err(RaftError::Unknown);
                    }
                    Err(CallFailure::Unexpected)
                    | Err(CallFailure::Peer(PeerError::Lost(_)))
                    | Err(CallFailure::Peer(PeerError::Timeout(_))) => maybe_sent = true,
                    Err(CallFailure::Peer(PeerError::Unreachable(_))) => {}
                }
            }
            if Instant::now() >= deadline {
                return Err(if maybe_sent {
                    RaftError::Unknown
                } else {
                    RaftError::NoLeader
                });
            }
            if maybe_sent {
                req = as_retry(req);
            }
            // The leader we knew is not answering: give the election a moment.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Proposes `reqs`, one client's writes with consecutive seqs, consecutively in this order
    /// (one batcher job: usually one Raft entry), and returns one result per request, in the
    /// same order. Each request is still its own revision; what the run saves is a Raft round
    /// per write.
    ///
    /// # Failure handling
    ///
    /// ExactlyOnceApply must hold, and nothing that was not applied may be acknowledged.
    ///
    /// One attempt proposes the whole run (`propose_many`). A response from it is final: that
    /// entry was applied and answered. Any other request may or may not have been appended, and
    /// may still commit through a later leader, so it is retried in order through
    /// [`Self::write`] with the same `(client_id, seq)`. The store then:
    /// - applies it if it never was (after every earlier request of the run that was applied);
    /// - answers the recorded response if it was applied and is this client's last applied
    ///   request (a retry): a true answer;
    /// - refuses it with `StaleSequence` if a later request of this client was applied. It may
    ///   or may not have been applied itself, and its response is no longer recorded, so it
    ///   is answered [`RaftError::Unknown`], never an ok. The refusal names the last applied
    ///   seq, so every failed request below it would be refused the same way: those are
    ///   answered `Unknown` without proposing them again.
    ///
    /// The store refuses a seq below the client's last applied one, so a retried request is
    /// never applied after a later one: whatever of the run is applied is applied in order.
    ///
    /// When a retry fails (no leader, unknown, fatal), the requests after it are not tried
    /// (each would wait up to `write_timeout` again). They are answered `Unknown` if the first
    /// attempt may have reached a leader, else `Fatal` after a fatal error and `NoLeader`
    /// otherwise (then nothing after the failed retry was ever sent).
    pub async fn write_many(&self, reqs: Vec<Request>) -> Vec<Result<Response, RaftError>> {
        if let Err(e) = self.check_disk() {
            for _ in &reqs {
                self.count_proposal(&Err(e.clone()));
            }
            return reqs.iter().map(|_| Err(e.clone())).collect();
        }
        // A request too large for one entry is refused by `write` (EntryBytesBound); the run
        // is then proposed one by one, in order.
        if reqs.len() <= 1 || reqs.iter().any(|r| too_large(r).is_some()) {
            let mut out = Vec::with_capacity(1);
            for req in reqs {
                out.push(self.write(req).await);
            }
            return out;
        }
        let n = reqs.len();
        let (first, maybe_sent) = match self.propose_many(&reqs).await {
            Ok(attempt) => attempt,
            // Nothing was sent: no request was applied.
            Err(e) => {
                let results = vec![Err(e); n];
                for r in &results {
                    self.count_proposal(r);
                }
                return results;
            }
        };
        let results = settle_run(reqs, first, maybe_sent, |req| self.write_once(req)).await;
        for r in &results {
            self.count_proposal(r);
        }
        results
    }

    /// One attempt to propose `reqs` consecutively on the leader. Returns, per
    /// request, the store's response if it came back applied (`None` if not, or not known),
    /// and whether the run may have reached a leader. Fails only when nothing was sent: no
    /// leader in time, or Raft stopped.
    async fn propose_many(
        &self,
        reqs: &[Request],
    ) -> Result<(Vec<Option<Response>>, bool), RaftError> {
        let deadline = Instant::now() + self.write_timeout;
        let (leader, addr) = self.wait_for_leader(deadline).await?;
        let left = deadline.saturating_duration_since(Instant::now());
        let mut results = Vec::with_capacity(reqs.len());
        let maybe_sent = if leader == self.id {
            // On timeout no answer came: every request counts as not answered.
            if let Ok(r) = tokio::time::timeout(left, self.batcher.propose(reqs.to_vec())).await {
                results = r;
            }
            true
        } else if addr.is_empty() {
            false
        } else {
            let forwarded = self.write_forwarders.forward(leader, &addr, reqs.to_vec());
            match tokio::time::timeout(left, forwarded).await {
                Ok(Ok(r)) => {
                    results = r;
                    true
                }
                Ok(Err(CallFailure::Peer(PeerError::Unreachable(_)))) => false,
                Ok(Err(_)) | Err(_) => true,
            }
        };
        let mut answers: Vec<Option<Response>> = results.into_iter().map(Result::ok).collect();
        answers.resize(reqs.len(), None);
        answers.truncate(reqs.len());
        Ok((answers, maybe_sent))
    }
}

/// `req` marked as a possible second proposal of its write (`ClientSeq::retry`): the store
/// then refuses it as uncertain if its dedup record may have been evicted
/// (NoDoubleApplyAfterEviction, `store::dedup`), instead of applying it as new.
fn as_retry(mut req: Request) -> Request {
    if let Some(client) = &mut req.client {
        client.retry = true;
    }
    req
}

/// The error to answer for a failed attempt: once the request may have reached a leader, a
/// failure that says nothing about its fate (no leader now, or this node's Raft stopped) is
/// [`RaftError::Unknown`] (UncertainIsNotRetryable).
fn uncertain_if_sent(e: RaftError, maybe_sent: bool) -> RaftError {
    match e {
        RaftError::NoLeader | RaftError::Fatal(_) if maybe_sent => RaftError::Unknown,
        e => e,
    }
}

/// The results of a run after its first attempt (`first`: the responses that came back
/// applied), retrying the others in order with `retry` ([`RaftNode::write`]) as
/// [`RaftNode::write_many`] describes. `maybe_sent`: whether the first attempt may have reached
/// a leader.
async fn settle_run<F, Fut>(
    reqs: Vec<Request>,
    first: Vec<Option<Response>>,
    maybe_sent: bool,
    mut retry: F,
) -> Vec<Result<Response, RaftError>>
where
    F: FnMut(Request) -> Fut,
    Fut: Future<Output = Result<Response, RaftError>>,
{
    debug_assert_eq!(reqs.len(), first.len());
    let mut out = Vec::with_capacity(reqs.len());
    // This client's last applied seq, as a `StaleSequence` refusal reported it.
    let mut applied_through: Option<u64> = None;
    // The answer to every request after a failed retry.
    let mut gave_up: Option<RaftError> = None;
    for (req, answer) in reqs.into_iter().zip(first) {
        let client = req.client;
        let result = if let Some(response) = answer {
            settle(client, response, &mut applied_through)
        } else if let Some(e) = &gave_up {
            Err(e.clone())
        } else if matches!((client, applied_through), (Some(c), Some(last)) if c.seq < last) {
            // A retry would be refused as stale too.
            Err(RaftError::Unknown)
        } else {
            let req = if maybe_sent { as_retry(req) } else { req };
            match retry(req).await {
                Ok(response) => settle(client, response, &mut applied_through),
                Err(e) => {
                    // `write` says NoLeader or Fatal when it sent nothing itself; the first
                    // attempt may have.
                    let e = uncertain_if_sent(e, maybe_sent);
                    gave_up = Some(match &e {
                        RaftError::Fatal(_) => e.clone(),
                        _ if maybe_sent => RaftError::Unknown,
                        _ => RaftError::NoLeader,
                    });
                    Err(e)
                }
            }
        };
        out.push(result);
    }
    out
}

/// The result of one of `client`'s own requests answered `response`: a `StaleSequence` refusal
/// of it means a later request of the client was applied and this one's outcome is unknown
/// (see [`RaftNode::write_many`]); it records the client's last applied seq it names.
fn settle(
    client: Option<ClientSeq>,
    response: Response,
    applied_through: &mut Option<u64>,
) -> Result<Response, RaftError> {
    match (&response, client) {
        (
            Response::Error(StoreError::StaleSequence {
                client_id, last, ..
            }),
            Some(c),
        ) if *client_id == c.client_id => {
            *applied_through = Some(applied_through.map_or(*last, |a| a.max(*last)));
            Err(RaftError::Unknown)
        }
        _ => Ok(response),
    }
}

#[cfg(test)]
#[path = "write_test.rs"]
mod tests;
