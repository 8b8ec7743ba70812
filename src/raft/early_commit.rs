//! Early commit: a follower of a three-voter cluster learns that an entry is committed from
//! the leader's own flush and its own, without waiting for the leader to hear its
//! acknowledgement and tell it back.
//!
//! A follower normally learns a commit from the leader: its acknowledgement goes to the leader,
//! which counts a majority and sends the new commit index in its next AppendEntries (the
//! commit probe). With three voters the leader's flush and one follower's make a majority, so
//! once the leader has flushed an entry of its own term it tells the followers
//! ([`RpcRequest::LeaderFlushed`]), and a follower that has flushed it too knows it committed:
//! one message after the leader's flush instead of a round trip after its own. A watch event
//! on a follower comes that much sooner (traced, the round trip and the probe were ~300 µs of
//! the ~1 ms from a put to its event on another node).
//!
//! - **CommittedByDurableMajority.** Raft's rule: an entry of the current leader's term that is
//!   durable on a majority is committed (every later leader has it), whoever counts the
//!   majority. The follower counts {leader, itself} only when its membership is one uniform
//!   config of at most three voters that holds both (two of three, or of two), and only an
//!   entry whose log id is the leader's term's: the leader flushed up to `flushed` (all of it
//!   in its own log, which it never truncates), and the follower's durable last log id
//!   ([`LogStore::durable`], DurableLastKnown) is of the same leader, so by Log Matching every
//!   entry up to the smaller of the two is the leader's and on both disks. Anything else (a
//!   joint or larger config, an older vote, a durable id of another term) is left to the
//!   leader's own commit.
//! - **CommitThroughOpenraft.** The follower hands openraft an AppendEntries it makes itself,
//!   with the leader's vote, no entries, `prev_log_id` and `leader_commit` at that entry:
//!   openraft checks the vote and the log as for any AppendEntries, and commits and applies as
//!   usual (it applies no further than what it accepted from that leader). A vote that moved on
//!   meanwhile makes openraft refuse it, and nothing changes. Only an announcement received
//!   within [`MAX_TOLD_AGE`] is acted on (**FreshTold**).
//! - **ReadFloor.** A follower may now apply an entry before the leader knows it committed,
//!   and a client may see it there (a watch event, a stale read). A read on the leader after
//!   that must see it too (linearizability), so the leader records what it announced before
//!   it sends it, and every read index it fixes in that term (its own reads, and the ReadIndex
//!   and lease indexes it gives followers) is at least that: such a read waits for the leader
//!   to commit and apply it, which the followers' acknowledgements bring.
//! - **AnnounceQuietly.** The leader announces only a flush of exactly one entry beyond its
//!   commit index (AnnounceSparseOnly: sparse writes, where the round trip is the whole wait;
//!   under load AppendEntries stream with every entry and carry the commit anyway), to voters
//!   of a config the rule above covers; one message in flight per follower, newer values
//!   replacing unsent ones. An older node answers `Refused` (AppendedRequestsFallBack) and is
//!   not asked again.
//!
//! - **ProbeSkippedWhenTold.** A follower that was told of a flush covering the leader's new
//!   commit index, and has flushed that far itself, commits by itself: the leader's commit
//!   probe (an AppendEntries with no entries) is not sent to it (`pipeline.rs`). Counted as
//!   told only within half of [`MAX_TOLD_AGE`] of handing the announcement to its sender: the
//!   follower acted on it when both held, which was at most that long after it arrived.
//!
//! Test-only failpoint `early_commit_off` (`REDRAFT_FAILPOINTS`): the leader announces nothing,
//! so followers learn commits from the leader alone (to show what the tests would see).

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use openraft::async_runtime::WatchReceiver;
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse};
use openraft::vote::RaftLeaderId;
use openraft::ServerState;
use tokio::sync::{watch, Notify};

use super::log_store::LogStore;
use super::peer_conn::Peers;
use super::pipeline::CommitTold;
use super::typ::{LogId, Raft, RaftMetrics, Vote};
use super::wire::{RpcRequest, RpcResponse};
use crate::metrics::NodeMetrics;

/// How long one announcement may take before it is given up (the next replaces it).
const SEND_TIMEOUT: Duration = Duration::from_secs(2);

/// How long after an announcement arrived a follower may still act on it (**FreshTold**).
/// The AppendEntries it makes tells openraft it heard from the leader, which holds off this
/// node's own campaign a little longer; an announcement older than this (its own flush was
/// slower) is left to the leader's commit, so a dead leader's last word never delays a
/// failover by more than this.
const MAX_TOLD_AGE: Duration = Duration::from_millis(20);

/// A node's early-commit state: what it announced as leader, what it was told as follower.
pub struct EarlyCommit {
    id: u64,
    log: LogStore,
    raft: OnceLock<Raft>,
    wake: Notify,
    /// Follower: the newest flush a leader announced, not yet committed here.
    told: Mutex<Option<(Announcement, Instant)>>,
    /// Leader: the newest flush announced (ReadFloor).
    announced: Mutex<Option<LogId>>,
    /// Leader: the newest announcement handed to each follower's sender, and when
    /// (ProbeSkippedWhenTold).
    told_to: Mutex<HashMap<u64, (Announcement, Instant)>>,
    /// Failpoint `early_commit_off`.
    off: bool,
    metrics: Arc<NodeMetrics>,
}

impl EarlyCommit {
    /// For node `id`, whose log is `log`; the hook on the log's syncs is set here.
    pub fn new(id: u64, log: &LogStore, metrics: Arc<NodeMetrics>) -> Arc<Self> {
        let off = std::env::var("REDRAFT_FAILPOINTS")
            .is_ok_and(|s| s.split(',').any(|kv| kv.trim() == "early_commit_off"));
        if off {
            tracing::warn!("FAILPOINT early_commit_off ARMED (tests only)");
        }
        let early = Arc::new(Self {
            id,
            log: log.clone(),
            raft: OnceLock::new(),
            wake: Notify::new(),
            told: Mutex::new(None),
            announced: Mutex::new(None),
            told_to: Mutex::new(HashMap::new()),
            off,
            metrics,
        });
        let weak = Arc::downgrade(&early);
        log.on_durable(Box::new(move |durable| {
            if let Some(e) = weak.upgrade() {
                e.synced(durable);
            }
        }));
        early
    }

    /// Called after each sync, on the thread that made it (the log's sync thread, or Raft's
    /// for a follower's inline sync, FollowerSyncsInline): wakes the task when there may be
    /// something to announce or to commit.
    fn synced(&self, durable: Option<LogId>) {
        if lock(&self.told).is_some() {
            self.wake.notify_one();
            return;
        }
        let Some(raft) = self.raft.get() else { return };
        let rx = raft.metrics();
        let m = rx.borrow_watched();
        if m.state == ServerState::Leader && durable.is_some_and(|d| sparse(&d, &m)) {
            self.wake.notify_one();
        }
    }

    /// A leader's announcement arrived (`rpc.rs`).
    pub fn leader_flushed(&self, vote: Vote, flushed: LogId) {
        {
            let mut told = lock(&self.told);
            if told
                .as_ref()
                .is_some_and(|(t, _)| (&t.0, &t.1) >= (&vote, &flushed))
            {
                return;
            }
            *told = Some(((vote, flushed), Instant::now()));
        }
        self.wake.notify_one();
    }

    /// The least index a read index fixed by this node as leader may have (ReadFloor): what
    /// it announced in its current term, 0 otherwise.
    pub fn read_floor(&self, m: &RaftMetrics) -> u64 {
        floor(*lock(&self.announced), m, self.id)
    }

    /// Runs the announcing and the committing until `shutdown`.
    pub async fn run(
        self: Arc<Self>,
        raft: Raft,
        peers: Arc<Peers>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let _ = self.raft.set(raft.clone());
        let mut senders = Senders::default();
        loop {
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = shutdown.changed() => return,
            }
            // Decided on the published metrics (borrowed, not copied: this runs per write at
            // one client), then the AppendEntries awaited without the borrow.
            let request = {
                let rx = raft.metrics();
                let m = rx.borrow_watched();
                if m.state == ServerState::Leader {
                    // An announcement from before this node led commits nothing here.
                    *lock(&self.told) = None;
                    self.announce(&m, &peers, &mut senders);
                    None
                } else {
                    self.commit_request(&m)
                }
            };
            if let Some(req) = request {
                // CommitThroughOpenraft: a refusal changes nothing.
                if let Ok(AppendEntriesResponse::Success) = raft.append_entries(req).await {
                    self.metrics.early_commits.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// As leader: announces the durable last log id to the other voters (AnnounceQuietly).
    fn announce(&self, m: &RaftMetrics, peers: &Arc<Peers>, senders: &mut Senders) {
        if self.off {
            return;
        }
        let Some(flushed) = self.log.durable() else {
            return;
        };
        let Some(others) = announce_targets(m, self.id, &flushed) else {
            return;
        };
        {
            // ReadFloor: recorded before any follower can act on it.
            let mut a = lock(&self.announced);
            if a.is_none_or(|a| a < flushed) {
                *a = Some(flushed);
            }
        }
        let membership = m.membership_config.membership();
        for id in others {
            let Some(node) = membership.get_node(&id) else {
                continue;
            };
            if senders.send(peers, id, &node.raft_addr, (m.vote, flushed)) {
                lock(&self.told_to).insert(id, ((m.vote, flushed), Instant::now()));
            }
            self.metrics
                .flush_announcements
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// As follower: the AppendEntries that commits what the leader's flush and this node's
    /// make a majority of, if any (CommittedByDurableMajority).
    fn commit_request(&self, m: &RaftMetrics) -> Option<AppendEntriesRequest<super::TypeConfig>> {
        let ((vote, flushed), at) = (*lock(&self.told))?;
        let decided = if at.elapsed() > MAX_TOLD_AGE {
            Decision::Drop
        } else {
            decide(m, self.id, &vote, &flushed, self.log.durable())
        };
        let committed = self.log.committed();
        let mut told = lock(&self.told);
        let same = told.is_some_and(|(t, _)| t == (vote, flushed));
        match decided {
            Decision::Drop => {
                if same {
                    *told = None;
                }
                None
            }
            Decision::Wait => None,
            Decision::Commit(upto) => {
                if upto == flushed && same {
                    *told = None;
                }
                (Some(upto) > committed).then(|| AppendEntriesRequest {
                    vote,
                    prev_log_id: Some(upto),
                    leader_commit: Some(upto),
                    entries: Vec::new(),
                })
            }
        }
    }
}

impl CommitTold for EarlyCommit {
    fn skip_commit_probe(&self, target: u64, vote: &Vote, commit: &LogId) -> bool {
        let told = lock(&self.told_to)
            .get(&target)
            .is_some_and(|((v, flushed), at)| {
                v == vote && flushed >= commit && at.elapsed() <= MAX_TOLD_AGE / 2
            });
        if told {
            self.metrics
                .commit_probes_skipped
                .fetch_add(1, Ordering::Relaxed);
        }
        told
    }
}

/// ReadFloor for node `me` with metrics `m`, which announced up to `announced`.
fn floor(announced: Option<LogId>, m: &RaftMetrics, me: u64) -> u64 {
    if m.state != ServerState::Leader || m.current_leader != Some(me) {
        return 0;
    }
    match announced {
        Some(a) if a.committed_leader_id().term() == m.current_term => a.index(),
        _ => 0,
    }
}

/// What a follower does with a leader's announcement.
#[derive(Debug, PartialEq, Eq)]
enum Decision {
    /// It can never commit anything here (another vote or config): forget it.
    Drop,
    /// This node has not flushed an entry of that leader yet: look again after the next sync.
    Wait,
    /// Commit up to this log id.
    Commit(LogId),
}

/// CommittedByDurableMajority, for follower `me` with metrics `m`, told by the leader of `vote`
/// that it flushed up to `flushed`, with its own durable last log id `durable`.
fn decide(
    m: &RaftMetrics,
    me: u64,
    vote: &Vote,
    flushed: &LogId,
    durable: Option<LogId>,
) -> Decision {
    let leader = *vote.leader_id().node_id();
    if m.vote != *vote
        || !vote.is_committed()
        || flushed.committed_leader_id() != &vote.leader_id().to_committed()
        || !two_make_a_majority(m, leader, me)
    {
        return Decision::Drop;
    }
    match durable {
        Some(d) if d.committed_leader_id() == flushed.committed_leader_id() => {
            Decision::Commit(d.min(*flushed))
        }
        _ => Decision::Wait,
    }
}

/// The voters the leader `me` announces `flushed` to: `None` unless `flushed` is of its own
/// term, beyond its commit index, and its config is one the rule covers.
fn announce_targets(m: &RaftMetrics, me: u64, flushed: &LogId) -> Option<Vec<u64>> {
    if m.current_leader != Some(me)
        || !m.vote.is_committed()
        || flushed.committed_leader_id() != &m.vote.leader_id().to_committed()
        || !sparse(flushed, m)
    {
        return None;
    }
    let voters = uniform_voters(m)?;
    let others: Vec<u64> = voters.iter().copied().filter(|v| *v != me).collect();
    (voters.contains(&me) && voters.len() <= 3 && !others.is_empty()).then_some(others)
}

/// AnnounceSparseOnly: whether the leader's flush up to `flushed` is the one entry beyond its
/// commit index. With more (writes arriving faster than a round trip), AppendEntries already
/// stream to the followers with every new entry, each carrying the commit index; an
/// announcement then brings the commit only slightly sooner and splits each follower's apply
/// into more, smaller steps (measured: CPU per write +24 % at 64 clients when every flush was
/// announced).
fn sparse(flushed: &LogId, m: &RaftMetrics) -> bool {
    let committed = m.local_committed.map_or(0, |c| c.index());
    flushed.index() == committed + 1
}

/// Whether `a` and `b` are two voters of one uniform config of at most three voters.
fn two_make_a_majority(m: &RaftMetrics, a: u64, b: u64) -> bool {
    a != b && uniform_voters(m).is_some_and(|v| v.len() <= 3 && v.contains(&a) && v.contains(&b))
}

/// The voters of the effective membership if it is one config (not joint).
fn uniform_voters(m: &RaftMetrics) -> Option<&BTreeSet<u64>> {
    match m
        .membership_config
        .membership()
        .get_joint_config()
        .as_slice()
    {
        [only] => Some(only),
        _ => None,
    }
}

/// What a leader announces: its vote and how far it flushed.
type Announcement = (Vote, LogId);

/// One sender task per follower: one announcement in flight, newer values replacing unsent
/// ones; a peer that refuses the request (an older node) is not asked again.
#[derive(Default)]
struct Senders {
    by_peer: HashMap<(u64, String), watch::Sender<Option<Announcement>>>,
    refused: Arc<Mutex<BTreeSet<u64>>>,
}

impl Senders {
    /// Hands `what` to follower `id`'s sender; false if that follower refuses announcements.
    fn send(&mut self, peers: &Arc<Peers>, id: u64, addr: &str, what: Announcement) -> bool {
        if lock(&self.refused).contains(&id) {
            return false;
        }
        let tx = self.by_peer.entry((id, addr.to_string())).or_insert_with(|| {
            let (tx, rx) = watch::channel(None);
            let slot = peers.slot(id, addr);
            let refused = self.refused.clone();
            tokio::spawn(async move {
                let mut rx = rx;
                while rx.changed().await.is_ok() {
                    let Some((vote, flushed)) = *rx.borrow_and_update() else {
                        continue;
                    };
                    let req = RpcRequest::LeaderFlushed { vote, flushed };
                    if let Ok(RpcResponse::Refused(why)) = slot.call(req, SEND_TIMEOUT).await {
                        tracing::info!(peer = id, %why, "peer does not take early-commit announcements");
                        lock(&refused).insert(id);
                        return;
                    }
                }
            });
            tx
        });
        tx.send_replace(Some(what));
        true
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
#[path = "early_commit_test.rs"]
mod tests;
