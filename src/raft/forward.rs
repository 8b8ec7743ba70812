//! Forwarding client writes from a follower to the leader, batched: the follower's half of
//! proposal batching (`batcher.rs` is the leader's).
//!
//! Every write a follower takes goes to the leader. One [`Forwarder`] task per leader takes
//! every job waiting in its queue at once and sends them as one
//! [`RpcRequest::ClientWriteMany`]; the leader hands that to its batcher as one job, so the
//! requests stay consecutive and in order there too (JobOrder). At most [`MAX_IN_FLIGHT`]
//! calls are outstanding per leader; while they are, jobs wait and the next call grows.
//!
//! A job is never split between calls, so one client's pipelined run keeps its order however
//! the leader's RPC server schedules concurrent calls. Each job gets the answers to its own
//! requests, or the one failure of the call that carried it, which `write.rs` reads exactly as
//! it read a failure of its own call before (a lost or timed-out call may have reached the
//! leader: retried as a retry, or answered uncertain).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, Semaphore};

use super::batcher::{Answers, MAX_BATCH_BYTES, MAX_BATCH_REQUESTS, MAX_IN_FLIGHT};
use super::peer_conn::{PeerError, PeerSlot, Peers};
use super::runtime::RaftTasks;
use super::wire::encoded_len;
use super::wire::{RpcRequest, RpcResponse};
use crate::store::Request;

/// Why a forwarded call carried no answers.
#[derive(Debug, Clone)]
pub enum CallFailure {
    /// The peer connection failed: [`PeerError::Unreachable`] means nothing was sent.
    Peer(PeerError),
    /// The leader served the call but its answer did not fit a peer frame
    /// (OversizeReplyRefused, `rpc.rs`): the writes happened or not, the answers are lost.
    Refused(String),
    /// The leader answered something else (an older or newer peer): the writes may have been
    /// served.
    Unexpected,
}

struct Job {
    reqs: Vec<Request>,
    reply: oneshot::Sender<Result<Answers, CallFailure>>,
}

/// The handle of one leader's forwarding task.
#[derive(Clone)]
struct Forwarder {
    tx: mpsc::UnboundedSender<Job>,
}

/// This node's forwarders, one per leader (id and address) it has forwarded to.
pub struct WriteForwarders {
    peers: Arc<Peers>,
    /// How long one forwarded call may take: the node's write timeout.
    timeout: Duration,
    tasks: Mutex<HashMap<(u64, String), Forwarder>>,
    /// Raft's runtime, where a forwarding task runs whoever asked for it (RaftOnItsOwnThread).
    rt: RaftTasks,
}

impl WriteForwarders {
    pub fn new(peers: Arc<Peers>, timeout: Duration, rt: RaftTasks) -> Self {
        Self {
            peers,
            timeout,
            tasks: Mutex::new(HashMap::new()),
            rt,
        }
    }

    /// Sends `reqs` to the leader `leader` at `addr` (batched with other jobs, never split) and
    /// returns one answer per request, or the failure of the call that carried them.
    pub async fn forward(
        &self,
        leader: u64,
        addr: &str,
        reqs: Vec<Request>,
    ) -> Result<Answers, CallFailure> {
        let (reply, rx) = oneshot::channel();
        let mut job = Job { reqs, reply };
        for _ in 0..2 {
            let fwd = self.forwarder(leader, addr);
            match fwd.tx.send(job) {
                Ok(()) => {
                    return rx.await.unwrap_or(Err(CallFailure::Peer(PeerError::Lost(
                        "the forwarding task stopped".into(),
                    ))))
                }
                // The task ended (cannot happen while this map holds its sender; kept safe).
                Err(mpsc::error::SendError(j)) => {
                    job = j;
                    self.tasks
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&(leader, addr.to_string()));
                }
            }
        }
        Err(CallFailure::Peer(PeerError::Unreachable(
            "no forwarding task".into(),
        )))
    }

    fn forwarder(&self, leader: u64, addr: &str) -> Forwarder {
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        tasks
            .entry((leader, addr.to_string()))
            .or_insert_with(|| {
                let (tx, rx) = mpsc::unbounded_channel();
                let slot = self.peers.slot(leader, addr);
                self.rt.spawn(run(slot, self.timeout, rx));
                Forwarder { tx }
            })
            .clone()
    }
}

/// One leader's forwarding task: one call at a time per free slot, each as large as the queue
/// allows.
async fn run(slot: Arc<PeerSlot>, timeout: Duration, mut rx: mpsc::UnboundedReceiver<Job>) {
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut carry: Option<(Job, usize)> = None;
    loop {
        let first = match carry.take() {
            Some(x) => x,
            None => match rx.recv().await {
                Some(job) => sized(job),
                None => return,
            },
        };
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut count = first.0.reqs.len();
        let mut bytes = first.1;
        let mut round = vec![first.0];
        while count < MAX_BATCH_REQUESTS && bytes < MAX_BATCH_BYTES {
            let Ok(job) = rx.try_recv() else { break };
            let (job, b) = sized(job);
            if count + job.reqs.len() > MAX_BATCH_REQUESTS || bytes + b > MAX_BATCH_BYTES {
                carry = Some((job, b));
                break;
            }
            count += job.reqs.len();
            bytes += b;
            round.push(job);
        }
        let slot = slot.clone();
        tokio::spawn(async move {
            call(&slot, timeout, round).await;
            drop(permit);
        });
    }
}

fn sized(job: Job) -> (Job, usize) {
    let bytes = job.reqs.iter().map(encoded_len).sum();
    (job, bytes)
}

/// Sends the requests of `round` as one call and answers each job.
async fn call(slot: &PeerSlot, timeout: Duration, round: Vec<Job>) {
    let mut reqs = Vec::with_capacity(round.iter().map(|j| j.reqs.len()).sum());
    let mut shape = Vec::with_capacity(round.len());
    for job in round {
        shape.push((job.reqs.len(), job.reply));
        reqs.extend(job.reqs);
    }
    let total = reqs.len();
    let outcome = match slot.call(RpcRequest::ClientWriteMany(reqs), timeout).await {
        Ok(RpcResponse::ClientWriteMany(answers)) if answers.len() == total => Ok(answers),
        Ok(RpcResponse::Refused(why)) => Err(CallFailure::Refused(why)),
        Ok(_) => Err(CallFailure::Unexpected),
        Err(e) => Err(CallFailure::Peer(e)),
    };
    match outcome {
        Ok(answers) => {
            let mut answers = answers.into_iter();
            for (n, reply) in shape {
                let _ = reply.send(Ok(answers.by_ref().take(n).collect()));
            }
        }
        Err(failure) => {
            for (_, reply) in shape {
                let _ = reply.send(Err(failure.clone()));
            }
        }
    }
}
