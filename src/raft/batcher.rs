//! Proposal batching on the leader: client writes from every connection, and from followers
//! forwarding theirs, travel to openraft as few entries as possible.
//!
//! A write costs openraft a message to its core, a log entry, a slot in every AppendEntries, a
//! callback at apply and a response: paid once per entry, however many requests it carries. So
//! the [`Batcher`] task takes every job waiting in its queue at once and proposes them as one
//! entry ([`Op::Batch`]), each request still its own revision (BatchAsEntries,
//! `state_machine/batch.rs`). It keeps at most [`MAX_IN_FLIGHT`] rounds proposed and not yet
//! applied; while they are, new jobs wait in the queue, which is where batches grow: at one
//! client a write is proposed at once, at many the batch grows with the load (etcd and TiKV
//! batch proposals the same way).
//!
//! Invariants:
//! - **JobOrder.** The requests of one job (one client's pipelined run, or a follower's
//!   forwarded batch) are proposed consecutively and in order: the task proposes rounds one
//!   after another with `client_write_ff`, which hands each entry to openraft's core before the
//!   next is sent, so log order is queue order.
//! - **EntryBytesBound.** An entry with several requests stays under [`MAX_BATCH_BYTES`]; a
//!   request larger than that (each is at most `MAX_ENTRY_BYTES`, checked by the caller) is
//!   proposed alone, as a plain entry.
//! - **OneAnswerPerRequest.** Every request of a job is answered exactly once, in order: the
//!   store's response once applied, or why it may not have been ([`ForwardError`]; the caller
//!   retries with the same `(client_id, seq)`, ExactlyOnceApply).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use openraft::errors::ClientWriteError;
use openraft::impls::ProgressResponder;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

use super::typ::Raft;
use super::wire::encoded_len;
use super::wire::ForwardError;
use super::{stamp, EncodedRequest, TypeConfig};
use crate::metrics::NodeMetrics;
use crate::store::{Op, Request, Response};

/// Rounds proposed and not yet applied, at most. Two keep the disk and the network busy at
/// once (one round syncs while the next replicates) without splitting the load into rounds
/// too small to be worth their cost.
pub const MAX_IN_FLIGHT: usize = 2;

/// The most requests one entry carries.
pub const MAX_BATCH_REQUESTS: usize = 1024;

/// The most encoded request bytes one entry of several requests carries (EntryBytesBound).
pub const MAX_BATCH_BYTES: usize = 4 << 20;

/// Answers to one job's requests, in order (OneAnswerPerRequest).
pub type Answers = Vec<Result<Response, ForwardError>>;

struct Job {
    reqs: Vec<Request>,
    reply: oneshot::Sender<Answers>,
}

/// The handle of the proposal task (the module doc). Cheap to clone.
#[derive(Clone)]
pub struct Batcher {
    tx: mpsc::UnboundedSender<Job>,
}

impl Batcher {
    /// Starts the proposal task for `raft`; it ends when every handle is dropped.
    pub fn start(raft: Raft, metrics: Arc<NodeMetrics>) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(raft, metrics, rx));
        Self { tx }
    }

    /// Proposes `reqs` on this node, as leader, consecutively and in this order (JobOrder), and
    /// returns one answer per request once each is applied or has failed.
    pub async fn propose(&self, reqs: Vec<Request>) -> Answers {
        let n = reqs.len();
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Job { reqs, reply }).is_err() {
            return vec![Err(stopped()); n];
        }
        match rx.await {
            Ok(answers) => answers,
            Err(_) => vec![Err(stopped()); n],
        }
    }
}

fn stopped() -> ForwardError {
    ForwardError::Fatal("raft stopped".into())
}

/// The proposal task: one round at a time, each as large as the queue allows.
async fn run(raft: Raft, metrics: Arc<NodeMetrics>, mut rx: mpsc::UnboundedReceiver<Job>) {
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut carry: Option<(Job, Vec<usize>)> = None;
    loop {
        let first = match carry.take() {
            Some(x) => x,
            None => match rx.recv().await {
                Some(job) => sized(job),
                None => return,
            },
        };
        // Waiting here is what lets the next round grow (the module doc).
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut count = first.0.reqs.len();
        let mut bytes: usize = first.1.iter().sum();
        let mut round = vec![first];
        while count < MAX_BATCH_REQUESTS && bytes < MAX_BATCH_BYTES {
            let Ok(job) = rx.try_recv() else { break };
            let job = sized(job);
            let (n, b) = (job.0.reqs.len(), job.1.iter().sum::<usize>());
            if count + n > MAX_BATCH_REQUESTS || bytes + b > MAX_BATCH_BYTES {
                carry = Some(job);
                break;
            }
            count += n;
            bytes += b;
            round.push(job);
        }
        propose_round(&raft, &metrics, round, permit).await;
    }
}

/// A job with the encoded size of each of its requests.
fn sized(job: Job) -> (Job, Vec<usize>) {
    let sizes = job.reqs.iter().map(encoded_len).collect();
    (job, sizes)
}

/// How many of the requests sized `sizes` (in order) each entry carries: consecutive runs of at
/// most [`MAX_BATCH_REQUESTS`] requests and [`MAX_BATCH_BYTES`] bytes, a larger request alone
/// (EntryBytesBound).
fn cut(sizes: &[usize]) -> Vec<usize> {
    let mut out: Vec<usize> = Vec::new();
    let mut open_bytes = 0usize;
    for &size in sizes {
        match out.last_mut() {
            Some(n) if *n < MAX_BATCH_REQUESTS && open_bytes + size <= MAX_BATCH_BYTES => {
                *n += 1;
                open_bytes += size;
            }
            _ => {
                out.push(1);
                open_bytes = size;
            }
        }
    }
    out
}

/// What an entry's encoding holds besides its requests' own encodings as `sized` counted
/// them: the batch request around them (no client, its clock, the op's variant, the request
/// count), at most this many bytes, plus [`STAMP_BYTES`] per request. Only a capacity hint:
/// an encoding past it grows its buffer, as any `Vec` does.
const BATCH_ENVELOPE_BYTES: usize = 32;
/// What stamping adds to a request counted before it (`raft::stamp`), at most, for any op
/// but a transaction: its clock and its op's (0 became a unix time: 9 more bytes each) and a
/// relative expiry turned absolute (9 more).
const STAMP_BYTES: usize = 27;

/// One entry of a round: its requests, and where each answer goes (job, position).
struct Entry {
    reqs: Vec<Request>,
    slots: Vec<(usize, usize)>,
    /// The encoded size of its requests as proposed (before stamping), summed: the
    /// encoding's buffer is made about this large once instead of growing.
    bytes: usize,
}

/// Cuts `round` into entries (EntryBytesBound), proposes them in order and spawns the wait for
/// their answers, which releases `permit` and answers every job.
async fn propose_round(
    raft: &Raft,
    metrics: &NodeMetrics,
    round: Vec<(Job, Vec<usize>)>,
    permit: OwnedSemaphorePermit,
) {
    let mut replies = Vec::with_capacity(round.len());
    let mut answers: Vec<Vec<Option<Result<Response, ForwardError>>>> =
        Vec::with_capacity(round.len());
    let mut sizes = Vec::new();
    let mut items = Vec::new();
    for (j, (job, job_sizes)) in round.into_iter().enumerate() {
        answers.push(vec![None; job.reqs.len()]);
        replies.push(job.reply);
        sizes.extend(job_sizes);
        items.extend(
            job.reqs
                .into_iter()
                .enumerate()
                .map(|(pos, req)| (req, (j, pos))),
        );
    }
    let mut items = items.into_iter();
    let mut at = 0;
    let entries: Vec<Entry> = cut(&sizes)
        .into_iter()
        .map(|n| {
            let (reqs, slots) = items.by_ref().take(n).unzip();
            let bytes = sizes[at..at + n].iter().sum();
            at += n;
            Entry { reqs, slots, bytes }
        })
        .collect();
    let mut waits = Vec::with_capacity(entries.len());
    let mut failed: Option<ForwardError> = None;
    for entry in entries {
        metrics.batched_entries.fetch_add(1, Ordering::Relaxed);
        metrics
            .batched_requests
            .fetch_add(entry.reqs.len() as u64, Ordering::Relaxed);
        if let Some(e) = &failed {
            waits.push((entry.slots, Err(e.clone())));
            continue;
        }
        let single = entry.reqs.len() == 1;
        let capacity = entry.bytes + entry.reqs.len() * STAMP_BYTES + BATCH_ENVELOPE_BYTES;
        let payload = if single {
            entry.reqs.into_iter().next().expect("one request")
        } else {
            Request {
                client: None,
                at_ms: 0,
                op: Op::Batch(entry.reqs),
            }
        };
        // DecodeOnApply: the request's only encoding, copied from here on.
        let payload = match EncodedRequest::encode_with_capacity(&stamp(payload), capacity) {
            Ok(p) => p,
            Err(e) => {
                let e = ForwardError::Fatal(format!("cannot encode the entry: {e}"));
                waits.push((entry.slots, Err(e)));
                continue;
            }
        };
        let (responder, rx) = ProgressResponder::<TypeConfig, _>::complete_only();
        match raft.client_write_ff(payload, Some(responder)).await {
            Ok(()) => waits.push((entry.slots, Ok((single, rx)))),
            Err(fatal) => {
                let e = ForwardError::Fatal(fatal.to_string());
                failed = Some(e.clone());
                waits.push((entry.slots, Err(e)));
            }
        }
    }
    tokio::spawn(async move {
        for (slots, wait) in waits {
            let results = match wait {
                Err(e) => vec![Err(e); slots.len()],
                Ok((single, rx)) => entry_results(single, slots.len(), rx.await),
            };
            for ((j, pos), r) in slots.into_iter().zip(results) {
                answers[j][pos] = Some(r);
            }
        }
        drop(permit);
        for (reply, answers) in replies.into_iter().zip(answers) {
            let answers = answers
                .into_iter()
                .map(|a| a.unwrap_or_else(|| Err(stopped())))
                .collect();
            // The caller may have given up (its own timeout): nothing to do.
            let _ = reply.send(answers);
        }
    });
}

/// The answers of one entry of `n` requests from what its responder delivered.
fn entry_results<E>(
    single: bool,
    n: usize,
    delivered: Result<
        Result<openraft::raft::ClientWriteResponse<TypeConfig>, ClientWriteError<TypeConfig>>,
        E,
    >,
) -> Answers {
    match delivered {
        // Raft stopped before answering: the entry may still commit through a later leader.
        Err(_) => vec![Err(stopped()); n],
        Ok(Err(e)) => {
            let leader = match &e {
                ClientWriteError::ForwardToLeader(f) => f.leader_id,
                _ => None,
            };
            vec![Err(ForwardError::NotLeader { leader }); n]
        }
        Ok(Ok(written)) => match written.data {
            Response::Batch(responses) if !single && responses.len() == n => {
                responses.into_iter().map(Ok).collect()
            }
            response if single => vec![Ok(response)],
            other => {
                tracing::error!(?other, n, "a batch entry answered out of shape");
                vec![Err(ForwardError::Fatal("batch answered out of shape".into())); n]
            }
        },
    }
}

#[cfg(test)]
#[path = "batcher_test.rs"]
mod tests;
