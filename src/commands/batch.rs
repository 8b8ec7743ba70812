//! Pipeline batches: answers the commands of one batch in order, proposing each run of
//! consecutive writes with one ordered call instead of one Raft round per write.
//!
//! A batch is what the session has already received (`server::session`). Walking it in order,
//! [`Batch::next`] gathers a *run*: consecutive write commands, planned ([`Plan`]), together
//! with the error replies of commands that failed their checks or their planning in between.
//! The run ends before any other command (reads, admin, QUIT: anything whose effect or answer
//! depends on what ran before it), at the end of the batch, and at the bounds below. The run's
//! writes go to [`RaftNode::write_many`](crate::raft::RaftNode::write_many) as one ordered
//! proposal; the replies come back in command order.
//!
//! ```text
//! SET a 1 │ INCR c │ SET b │ SET d 2 │ GET a │ DEL a
//! ╰──────────── run 1 ──────────────╯  read   ╰ run 2 ╯
//!   (SET b: wrong arity, answered in place, proposes nothing)
//! ```
//!
//! Invariants:
//! - **RunOrder.** Replies are in command order, and a run's writes are proposed in command
//!   order with consecutive `(client_id, seq)`s; each is its own Raft entry, so each bumps the
//!   revision once (RevisionMonotonic), exactly as when proposed one by one.
//! - **RunBeforeNext.** A command after a run starts only once every write of the run has been
//!   answered. With BatchBarrier (`read_gate`), a read after a run waits for a barrier taken
//!   after the run was applied: read-your-writes, on a follower too.
//! - **RunBounded.** A run holds at most [`MAX_RUN_COMMANDS`] commands and, unless it is a
//!   single command, [`MAX_RUN_BYTES`] of arguments, so one client cannot make one huge
//!   proposal.
//!
//! A single command behaves exactly as through [`execute`](super::execute): a run of one write
//! goes through `RaftNode::write`. One difference from Redis: a run is applied as a whole before
//! its replies are handed out, so if they overflow the output buffer limit, or the client is
//! killed meanwhile, the connection closes after the whole run was applied, where Redis stops
//! at the command that overflowed.

use std::collections::VecDeque;

use bytes::Bytes;

use super::{prepare, reply, run_prepared, write, CommandError, Outcome, Plan, Prepared, Session};
use crate::context::ServerContext;
use crate::raft::RaftError;

/// The most commands in one run (RunBounded).
pub const MAX_RUN_COMMANDS: usize = 1024;
/// The most argument bytes in one run of more than one command (RunBounded).
pub const MAX_RUN_BYTES: usize = 4 * 1024 * 1024;

/// One pipeline batch, answered command by command.
pub struct Batch {
    commands: std::vec::IntoIter<Vec<Bytes>>,
    /// A command prepared while gathering a run that could not join it: it runs next.
    held: Option<(Prepared, usize)>,
    /// The replies of the last run not yet handed out, in command order.
    answered: VecDeque<Outcome>,
}

/// One command of a run: answered already, or a write waiting for its proposal.
enum Slot {
    Answered(Outcome),
    Write(Plan),
}

impl Batch {
    /// A batch of `commands`, every one already received by `session`'s connection.
    pub fn new(commands: Vec<Vec<Bytes>>, session: &mut Session) -> Self {
        // BatchBarrier: this batch holds only commands already received; a read barrier taken
        // during an earlier batch does not cover them.
        session.barrier_valid = false;
        Self {
            commands: commands.into_iter(),
            held: None,
            answered: VecDeque::new(),
        }
    }

    /// The reply to the next command, or `None` when every command has been answered.
    pub async fn next(&mut self, ctx: &ServerContext, session: &mut Session) -> Option<Outcome> {
        if let Some(out) = self.answered.pop_front() {
            return Some(out);
        }
        if self.held.is_none() && session.txn.in_multi() {
            // Inside MULTI each command is queued (or runs: EXEC, DISCARD…) on its own.
            let argv = self.commands.next()?;
            return Some(super::execute(ctx, session, argv).await);
        }
        let (first, size) = match self.held.take() {
            Some(held) => held,
            None => {
                let argv = self.commands.next()?;
                let size = payload(&argv);
                (prepare(ctx, session, argv), size)
            }
        };
        let plan = match first {
            Prepared::Write(plan) => plan,
            other => return Some(run_prepared(ctx, session, other).await),
        };
        let mut run = vec![slot(plan)];
        let mut bytes = size;
        while run.len() < MAX_RUN_COMMANDS {
            let Some(argv) = self.commands.next() else {
                break;
            };
            let size = payload(&argv);
            match prepare(ctx, session, argv) {
                Prepared::Write(plan) if bytes.saturating_add(size) <= MAX_RUN_BYTES => {
                    bytes += size;
                    run.push(slot(plan));
                }
                // An error reply has no effect: it joins the run in its place.
                Prepared::Done(out) if !out.close => run.push(Slot::Answered(out)),
                other => {
                    self.held = Some((other, size));
                    break;
                }
            }
        }
        self.answered = propose_run(ctx, session, run).await;
        self.answered.pop_front()
    }
}

/// The bytes of a command's arguments, for RunBounded.
fn payload(argv: &[Bytes]) -> usize {
    argv.iter().map(Bytes::len).sum()
}

fn slot(plan: Result<Plan, CommandError>) -> Slot {
    match plan {
        Ok(plan) => Slot::Write(plan),
        Err(e) => Slot::Answered(reply(Err(e))),
    }
}

/// Proposes the writes of `run` in order, as one call, and returns every slot's reply in order.
async fn propose_run(
    ctx: &ServerContext,
    session: &mut Session,
    run: Vec<Slot>,
) -> VecDeque<Outcome> {
    let writes = run.iter().filter(|s| matches!(s, Slot::Write(_))).count();
    if writes <= 1 {
        // A lone write goes the single-command way.
        let mut out = VecDeque::with_capacity(run.len());
        for s in run {
            out.push_back(match s {
                Slot::Answered(o) => o,
                Slot::Write(plan) => reply(write(ctx, session, plan).await),
            });
        }
        return out;
    }
    // BatchBarrier: a read after this run needs a barrier that covers it.
    session.barrier_valid = false;
    let mut replies = Vec::with_capacity(writes);
    let mut requests = Vec::with_capacity(writes);
    let run: Vec<Option<Outcome>> = run
        .into_iter()
        .map(|s| match s {
            Slot::Answered(o) => Some(o),
            Slot::Write(plan) => {
                // Consecutive seqs in command order (RunOrder).
                requests.push(session.request(plan.op));
                replies.push(plan.reply);
                None
            }
        })
        .collect();
    let results = ctx.node.write_many(requests).await;
    debug_assert_eq!(
        results.len(),
        replies.len(),
        "one result per proposed write"
    );
    let mut answers = replies.into_iter().zip(results).map(|(r, result)| {
        reply(match result {
            Ok(response) => r.frame(response),
            Err(e) => Err(e.into()),
        })
    });
    run.into_iter()
        .map(|o| {
            // write_many answers every request; if it did not, the outcome is unknown.
            o.or_else(|| answers.next())
                .unwrap_or_else(|| reply(Err(RaftError::Unknown.into())))
        })
        .collect()
}
