//! The Raft log and vote for openraft: [`LogStore`] adapts the write-ahead log (`wal/`) to
//! openraft's `RaftLogStorage` and `RaftLogReader`.
//!
//! Owns `<data_dir>/raft-log` and nothing else; knows nothing of the keyspace. The on-disk
//! layout and the invariants (**DurableBeforeAck**, **FullSegmentSynced**,
//! **SegmentDurableOnCreate**, **HeadRepeatsState**, **PurgeWholeSegments**, **TornTailOnly**,
//! **FailStop**, **SpareAhead**) are drawn and named in `wal/mod.rs`.
//!
//! - `append` returns once the entries are written (readable); its `IOFlushed` callback fires
//!   after the group-commit `fdatasync` that covers them.
//! - `save_vote` returns after the group-commit sync that covers it; `truncate_after` syncs
//!   before it returns.
//! - `save_committed` returns once its record is written; the next group-commit sync (an
//!   append's, a vote's, or one a waiting reader asks for: CommittedRidesNextSync) raises the
//!   [`CommitGate`], and a read's reply waits until the gate covers what the node had applied
//!   (**DurableReads**, `commit_gate.rs`: openraft awaits `save_committed` on its core, and
//!   neither the core nor apply, hence neither a write's reply nor a watch event, waits for
//!   that sync).
//! - `purge` returns once its record is written; the sync worker syncs it, then the WAL's
//!   housekeeping thread deletes the purged segments (PurgeOffTheCore: openraft runs it on its
//!   core task after every snapshot).
//! - `get_log_state` reports `last_log_id = max(last entry, last purged)`.
//! - **ReplicationReadBound.** Replication (`limited_get_log_entries`) reads at most one peer
//!   frame's worth of entries at a time, never the 300 entries openraft asks for whatever
//!   their size.
//! - **ReadsOffTheRuntime.** A read of more than 1 MiB of records runs on tokio's blocking
//!   pool: a catch-up of large values never holds a runtime worker, and the heartbeats queued
//!   behind it, for a `pread` and decode of many MiB (a follower elected itself during such a
//!   catch-up in a loaded full-suite run).
//!
//! An earlier redraft kept this log in sled (`raft-log/db`, `conf`, `blobs`); sled never
//! fsyncs (its flush is `sync_file_range`, sled issue #1452). Such a data dir is refused at
//! open with the way to move its data ([`LogStore::open`]).

use std::fmt::Debug;
use std::io;
use std::ops::RangeBounds;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use openraft::storage::{IOFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::vote::RaftLeaderId;
use openraft::OptionalSend;

use super::commit_gate::CommitGate;
use super::typ::{Entry, LogId, Vote};
use super::wal::disk::RealDisk;
use super::wal::{Located, Wal, WalOptions};
use super::wire::MAX_APPEND_BYTES;
use super::TypeConfig;

pub use super::wal::FlushStats;

/// The files sled kept in `raft-log/` (an earlier redraft's log).
const SLED_FILES: &[&str] = &["db", "conf", "blobs"];

/// The log store. Cheap to clone: clones share one WAL, and a clone is also the log reader.
#[derive(Clone)]
pub struct LogStore {
    wal: Arc<Wal>,
    /// The durable committed index, raised after each group-commit sync; read replies wait on
    /// it (DurableReads).
    gate: CommitGate,
    /// `false` only with failpoint `committed_sync_off`: the gate opens when the record is
    /// written, before any sync.
    committed_sync: bool,
    /// Told what each sync made durable (`early_commit.rs`).
    on_durable: Arc<OnceLock<DurableHook>>,
    /// This node's id, once Raft starts: an append while another node leads is a follower's
    /// (FollowerSyncsInline).
    me: Arc<OnceLock<u64>>,
    /// `false` only with failpoint `follower_sync_inline_off` (benchmarks).
    sync_inline: bool,
}

/// Told after each sync the last log id durable ([`LogStore::on_durable`]).
pub type DurableHook = Box<dyn Fn(Option<LogId>) + Send + Sync>;

impl LogStore {
    /// Opens (or creates) the log under `dir` (`<data_dir>/raft-log`) and starts its sync
    /// worker. Refuses a log written by an earlier redraft in sled, saying how to move it.
    pub fn open(dir: &Path) -> io::Result<Self> {
        Self::open_with(dir, WalOptions::from_env())
    }

    /// [`LogStore::open`] with explicit options (tests and benches).
    pub fn open_with(dir: &Path, opts: WalOptions) -> io::Result<Self> {
        refuse_sled(dir)?;
        let disk = RealDisk::open(&dir.join("wal"))?;
        let committed_sync = opts.committed_sync;
        let sync_inline = opts.follower_sync_inline;
        let gate_delay = std::time::Duration::from_millis(opts.committed_gate_delay_ms);
        let wal = Arc::new(Wal::open(
            Arc::new(disk),
            opts,
            Arc::new(FlushStats::default()),
        )?);
        // What open found is on disk: replay read it from there.
        let gate = CommitGate::new(wal.committed().map(|c| c.index()));
        let on_durable: Arc<OnceLock<DurableHook>> = Arc::default();
        {
            // CommittedRidesNextSync: every sync raises the gate to the committed id it covered
            // (unless failpoint committed_sync_off opens it earlier); DurableLastKnown: and
            // tells the early commit what is durable.
            let g = gate.clone();
            let hook = on_durable.clone();
            wal.on_synced(Box::new(move |synced| match synced {
                Ok(synced) => {
                    if let Some(h) = hook.get() {
                        h(synced.durable);
                    }
                    if !committed_sync {
                        return;
                    }
                    let index = synced.committed.map(|c| c.index());
                    if gate_delay.is_zero() {
                        g.advance(index);
                    } else {
                        // Failpoint committed_gate_delay_ms (tests only).
                        let g = g.clone();
                        std::thread::spawn(move || {
                            std::thread::sleep(gate_delay);
                            g.advance(index);
                        });
                    }
                }
                Err(_) => {
                    if committed_sync {
                        g.fail();
                    }
                }
            }));
        }
        // A reader waiting on the gate asks for a sync (none may come otherwise on a quiet
        // log). Weak: the gate outlives nothing of the log's.
        let weak = Arc::downgrade(&wal);
        gate.set_sync_request(Box::new(move || {
            if let Some(wal) = weak.upgrade() {
                // Refused only after a failed write or sync, which failed the gate already.
                let _ = wal.sync(Box::new(|_| {}));
            }
        }));
        Ok(Self {
            wal,
            gate,
            committed_sync,
            on_durable,
            me: Arc::new(OnceLock::new()),
            sync_inline,
        })
    }

    /// Sets the hook told, after every sync, the last log id durable ([`LogStore::durable`]);
    /// called on the WAL's sync thread, so it must be quick. A second call is ignored.
    pub fn on_durable(&self, hook: DurableHook) {
        let _ = self.on_durable.set(hook);
    }

    /// The last log id a sync has made durable (DurableLastKnown, `wal/sync.rs`).
    pub fn durable(&self) -> Option<LogId> {
        self.wal.durable()
    }

    /// The committed log id openraft last saved here (durable or not yet).
    pub fn committed(&self) -> Option<LogId> {
        self.wal.committed()
    }

    /// The durable committed index read replies wait on (DurableReads).
    pub fn commit_gate(&self) -> CommitGate {
        self.gate.clone()
    }

    /// The group-commit counters.
    pub fn flush_stats(&self) -> Arc<FlushStats> {
        self.wal.stats()
    }

    /// `Some(reason)` while the next log segment cannot be preallocated (the disk is full):
    /// the write path refuses client writes meanwhile (SpareAhead in `wal/mod.rs`).
    pub fn disk_full(&self) -> Option<String> {
        self.wal.disk_full()
    }

    /// A handle that answers [`LogStore::disk_full`] without holding the store.
    pub fn disk_full_probe(&self) -> DiskFullProbe {
        DiskFullProbe(self.wal.clone())
    }

    /// Marks everything up to `log_id` as purged, durably: a restored data dir's log starts
    /// after the restored snapshot (`backup.rs`).
    pub async fn restore_purged(&mut self, log_id: LogId) -> io::Result<()> {
        RaftLogStorage::purge(self, log_id).await?;
        self.sync().await
    }

    /// Waits for a sync that covers every record written so far.
    pub async fn sync(&self) -> io::Result<()> {
        let (done, rx) = Self::waiter();
        self.wal.sync(done)?;
        Self::wait(rx).await
    }

    /// Waits for the group-commit sync that covers a write queued with the returned callback.
    fn waiter() -> (
        super::wal::Done,
        tokio::sync::oneshot::Receiver<io::Result<()>>,
    ) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let done: super::wal::Done = Box::new(move |r| {
            let _ = tx.send(r);
        });
        (done, rx)
    }

    async fn wait(rx: tokio::sync::oneshot::Receiver<io::Result<()>>) -> io::Result<()> {
        rx.await
            .map_err(|_| io::Error::other("raft log sync worker stopped"))?
    }
}

/// Answers whether the log's disk is full (see [`LogStore::disk_full`]).
#[derive(Clone)]
pub struct DiskFullProbe(Arc<Wal>);

impl DiskFullProbe {
    pub fn disk_full(&self) -> Option<String> {
        self.0.disk_full()
    }
}

/// Refuses a `raft-log/` written by an earlier redraft in sled.
fn refuse_sled(dir: &Path) -> io::Result<()> {
    if let Some(found) = SLED_FILES.iter().map(|f| dir.join(f)).find(|p| p.exists()) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} holds a raft log written by an earlier redraft in sled (found {}); this \
                 redraft keeps the log in its own fsynced WAL and cannot read it. To move the \
                 data: while the old cluster still runs its earlier binary, save a backup with \
                 that binary (`redraft backup --from <host:port> --out cluster.backup`), then \
                 create new data dirs with this one (`redraft restore --from cluster.backup \
                 --config cluster.toml`, every data_dir empty) and start the nodes",
                dir.display(),
                found.display()
            ),
        ));
    }
    Ok(())
}

impl LogStore {
    /// Tells the log this node's id (FollowerSyncsInline).
    pub fn set_node_id(&self, id: u64) {
        let _ = self.me.set(id);
    }

    /// FollowerSyncsInline (`wal/sync.rs`): a follower's append on Raft's own thread may sync
    /// there. Never the leader's, whose core would hold replication back for the sync (its
    /// own sync runs beside the followers', not before them), and never on a runtime worker,
    /// which other tasks share.
    fn syncs_here(&self) -> bool {
        self.sync_inline
            && super::runtime::on_raft_thread()
            && self.me.get().is_some_and(|me| {
                self.wal
                    .vote()
                    .is_some_and(|v| *RaftLeaderId::node_id(v.leader_id()) != *me)
            })
    }
}

/// Reads of more record bytes than this run on tokio's blocking pool (ReadsOffTheRuntime).
const BLOCKING_READ_BYTES: u64 = 1 << 20;

/// Reads `located` (ReadsOffTheRuntime): a large read on the blocking pool, so that a
/// follower's catch-up of large values never holds a runtime worker (and with it heartbeats)
/// for the length of a `pread` and decode of many MiB.
async fn read_located(located: Located) -> io::Result<Vec<Entry>> {
    if located.bytes() <= BLOCKING_READ_BYTES {
        return located.read();
    }
    tokio::task::spawn_blocking(move || located.read())
        .await
        .map_err(io::Error::other)?
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        read_located(self.wal.locate(range, u64::MAX)).await
    }

    /// ReplicationReadBound: replication reads at most one frame's worth of entries
    /// ([`MAX_APPEND_BYTES`]) at a time; openraft asks for up to `max_payload_entries` (300)
    /// whatever their size, and 300 entries of 1 MiB would be read, decoded and then mostly
    /// left out of the frame (AppendBytesBound), again for every frame of a catch-up.
    async fn limited_get_log_entries(&mut self, start: u64, end: u64) -> io::Result<Vec<Entry>> {
        let located = self.wal.locate(start..end, MAX_APPEND_BYTES as u64);
        if located.cut() {
            tracing::info!(
                start,
                end,
                read = located.len(),
                "log read for replication limited to the frame budget"
            );
        }
        read_located(located).await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        Ok(self.wal.vote())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        let (last_purged_log_id, last_log_id) = self.wal.log_state();
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        let (done, rx) = Self::waiter();
        self.wal.save_vote(vote, done)?;
        // DurableBeforeAck: the vote is on disk before this returns.
        Self::wait(rx).await
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        // DurableReads (`commit_gate.rs`): the record rides the next group commit
        // (CommittedRidesNextSync, `wal/mod.rs`), which raises the gate read replies wait on;
        // neither openraft's core, which awaits this call, nor apply waits for that sync.
        self.wal.save_committed(committed)?;
        if !self.committed_sync {
            // Failpoint committed_sync_off: the gate opens before any sync.
            self.gate.advance(committed.map(|c| c.index()));
        }
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        Ok(self.wal.committed())
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<TypeConfig>) -> io::Result<()>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        self.wal.append(
            entries,
            Box::new(move |r| callback.io_completed(r)),
            self.syncs_here(),
        )
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        self.wal.truncate_after(last_log_id.map(|l| l.index()))
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        self.wal.purge(log_id)
    }
}

#[cfg(test)]
mod tests {
    use openraft::entry::RaftEntry;
    use openraft::type_config::TypeConfigExt;
    use openraft::vote::RaftLeaderId;
    use std::sync::atomic::Ordering;
    use std::time::Duration;
    use tokio::sync::mpsc;

    use super::*;

    fn entry(term: u64, index: u64) -> Entry {
        let leader = openraft::impls::leader_id_adv::LeaderId::<u64, u64>::new(term, 1);
        Entry::new_blank(openraft::LogId::new(leader.to_committed(), index))
    }

    async fn append_and_wait(store: &mut LogStore, entries: Vec<Entry>) -> io::Result<()> {
        let (tx, rx) = TypeConfig::oneshot();
        store.append(entries, IOFlushed::signal(tx)).await?;
        rx.await.map_err(io::Error::other)?
    }

    /// A log whose every sync after the first fails (failpoint `log_flush_fail_after=1`), and
    /// the directory it lives in.
    fn failing_after_one_sync() -> (tempfile::TempDir, LogStore) {
        let dir = tempfile::tempdir().unwrap();
        let opts = WalOptions {
            fail_sync_after: Some(1),
            ..WalOptions::default()
        };
        let s = LogStore::open_with(dir.path(), opts).unwrap();
        (dir, s)
    }

    /// DurableBeforeAck: an acknowledged append survives closing and reopening the log.
    #[tokio::test]
    async fn acknowledged_append_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = LogStore::open(dir.path()).unwrap();
            append_and_wait(&mut s, (1..=5).map(|i| entry(1, i)).collect())
                .await
                .unwrap();
            let vote = Vote::new(3, 2);
            s.save_vote(&vote).await.unwrap();
        }
        let mut s = LogStore::open(dir.path()).unwrap();
        let st = s.get_log_state().await.unwrap();
        assert_eq!(st.last_log_id.map(|l| l.index()), Some(5));
        let got = s.try_get_log_entries(1..=5).await.unwrap();
        assert_eq!(
            got.iter().map(|e| e.index()).collect::<Vec<_>>(),
            vec![1, 2, 3, 4, 5]
        );
        assert_eq!(s.read_vote().await.unwrap(), Some(Vote::new(3, 2)));
    }

    /// Group commit: callbacks complete in submission order, and every append is counted.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn callbacks_complete_in_order_and_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = LogStore::open(dir.path()).unwrap();
        let (done_tx, mut done_rx) = mpsc::unbounded_channel();
        let mut rxs = Vec::new();
        for i in 1..=50u64 {
            let (tx, rx) = TypeConfig::oneshot();
            s.append([entry(1, i)], IOFlushed::signal(tx))
                .await
                .unwrap();
            rxs.push((i, rx));
        }
        for (i, rx) in rxs {
            let done_tx = done_tx.clone();
            tokio::spawn(async move {
                rx.await.unwrap().unwrap();
                done_tx.send(i).unwrap();
            });
        }
        drop(done_tx);
        let mut n = 0;
        while done_rx.recv().await.is_some() {
            n += 1;
        }
        assert_eq!(n, 50);
        let stats = s.flush_stats();
        assert_eq!(stats.entries.load(Ordering::Relaxed), 50);
        assert_eq!(stats.appends.load(Ordering::Relaxed), 50);
        let flushes = stats.flushes.load(Ordering::Relaxed);
        assert!((1..=50).contains(&flushes), "flushes = {flushes}");
    }

    /// FailStop: once a sync has failed, its append is not acknowledged and every later write
    /// is refused.
    #[tokio::test]
    async fn refuses_writes_after_a_failed_sync() {
        let (_dir, mut s) = failing_after_one_sync();
        append_and_wait(&mut s, vec![entry(1, 1)]).await.unwrap();
        let err = append_and_wait(&mut s, vec![entry(1, 2)])
            .await
            .unwrap_err();
        assert!(err.to_string().contains("log_flush_fail_after"), "{err}");
        let (tx, _rx) = TypeConfig::oneshot();
        assert!(s
            .append([entry(1, 3)], IOFlushed::signal(tx))
            .await
            .is_err());
        assert!(s.save_vote(&Vote::new(2, 1)).await.is_err());
        assert!(s.truncate_after(None).await.is_err());
        assert!(s.purge(entry(1, 1).log_id()).await.is_err());
        // Nothing was written by the refused append.
        assert_eq!(s.try_get_log_entries(3..4).await.unwrap().len(), 0);
    }

    /// CommittedRidesNextSync: `save_committed` queues no sync; the next append's sync raises
    /// the commit gate to it, and on a quiet log a waiter's own request does; a reopened log's
    /// gate starts at the committed id found.
    #[tokio::test]
    async fn the_committed_record_rides_the_next_sync() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = LogStore::open(dir.path()).unwrap();
            append_and_wait(&mut s, (1..=3).map(|i| entry(1, i)).collect())
                .await
                .unwrap();
            let gate = s.commit_gate();
            assert_eq!(gate.durable(), None);
            let syncs = s.flush_stats().syncs.load(Ordering::Relaxed);
            s.save_committed(Some(entry(1, 2).log_id())).await.unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
            let after = s.flush_stats().syncs.load(Ordering::Relaxed);
            assert_eq!(after, syncs, "save_committed queued a sync of its own");
            assert_eq!(gate.durable(), None, "the gate rose without a sync");
            append_and_wait(&mut s, vec![entry(1, 4)]).await.unwrap();
            assert_eq!(
                gate.durable(),
                Some(2),
                "the append's sync did not raise the gate"
            );

            // Nothing else is written: the waiter's request makes the sync.
            s.save_committed(Some(entry(1, 4).log_id())).await.unwrap();
            tokio::time::timeout(Duration::from_secs(10), gate.wait_durable(4))
                .await
                .expect("a waiter on a quiet log was never covered")
                .unwrap();
        }
        let mut s = LogStore::open(dir.path()).unwrap();
        assert_eq!(
            s.read_committed().await.unwrap(),
            Some(entry(1, 4).log_id())
        );
        assert_eq!(s.commit_gate().durable(), Some(4));
    }

    /// GateFailStops: when the committed record's sync fails, a read's wait fails too (and
    /// the WAL refuses every later write, so openraft stops the node) instead of waiting
    /// forever or going on.
    #[tokio::test]
    async fn a_failed_committed_sync_fails_the_gate() {
        let (_dir, mut s) = failing_after_one_sync();
        append_and_wait(&mut s, vec![entry(1, 1)]).await.unwrap();
        s.save_committed(Some(entry(1, 1).log_id())).await.unwrap();
        let r = tokio::time::timeout(Duration::from_secs(10), s.commit_gate().wait_durable(1))
            .await
            .expect("the gate neither opened nor failed");
        assert!(r.is_err(), "the gate opened after a failed sync");
    }

    /// A data dir whose log an earlier redraft kept in sled is refused, saying how to move it.
    #[test]
    fn refuses_a_sled_log_with_the_way_out() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("db")).unwrap();
        let err = LogStore::open(dir.path()).err().expect("refused");
        let msg = err.to_string();
        assert!(
            msg.contains("sled") && msg.contains("redraft backup"),
            "{msg}"
        );
        assert!(msg.contains("redraft restore"), "{msg}");
    }

    /// OrderedKeys: reads after purge and truncation see a contiguous range.
    #[tokio::test]
    async fn purge_and_truncate_leave_no_holes() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = LogStore::open(dir.path()).unwrap();
        append_and_wait(&mut s, (1..=300).map(|i| entry(1, i)).collect())
            .await
            .unwrap();
        s.purge(entry(1, 255).log_id()).await.unwrap();
        s.truncate_after(Some(entry(1, 290).log_id()))
            .await
            .unwrap();
        let st = s.get_log_state().await.unwrap();
        assert_eq!(st.last_purged_log_id.map(|l| l.index()), Some(255));
        assert_eq!(st.last_log_id.map(|l| l.index()), Some(290));
        let got: Vec<u64> = s
            .try_get_log_entries(..)
            .await
            .unwrap()
            .iter()
            .map(|e| e.index())
            .collect();
        assert_eq!(got, (256..=290).collect::<Vec<_>>());
    }
}
