//! The WAL's sync worker: group commit (DurableBeforeAck); after the sync that makes a purge
//! point durable, it hands the purged segments to the housekeeping thread (PurgeOffTheCore).
//! Also a follower's sync on its own thread (FollowerSyncsInline) and the counters of both.
//!
//! **DurableLastKnown.** After each sync the worker raises [`Wal::durable`] to the last log id
//! written before the sync began, unless a truncation came in between; a truncation lowers it
//! to the new last entry. So every entry up to `durable` is on the disk and in the log: what
//! a follower may count as its own share of a majority (`raft/early_commit.rs`).
//!
//! **FollowerSyncsInline.** An append asked to sync where it stands (`Wal::append` with
//! `here`: a follower's, on Raft's own thread, `raft/log_store.rs`) is synced on the calling
//! thread, and completed before the append returns, when no job waits for the worker, no sync
//! runs, the last sync took at most [`INLINE_SYNC_MAX_US`] and ended longer ago than it took;
//! otherwise it is queued as always. On an idle machine that saves the two thread wake-ups of
//! a follower's sync (to the worker and back, 60-110 µs each on a virtual machine whose idle
//! vCPUs halt), which lie on a write's critical path. Under load appends come back to back
//! (the last sync ended moments ago), and they go to the worker, so that those arriving
//! during a sync share the next one (group commit): syncing each inline made 20 % more syncs
//! per write at 64 clients.
//! One sync at a time (`syncer`), so jobs still complete in the order they were queued. A
//! slow disk turns it off: a sync over the bound never holds Raft's thread twice in a row.

use super::*;

/// Counters of the group commit, reported by `INFO` (`raft_log_flushes`, ...) and `/metrics`.
#[derive(Debug)]
pub struct FlushStats {
    /// Syncs that acknowledged at least one append.
    pub flushes: AtomicU64,
    /// Entries acknowledged by those syncs.
    pub entries: AtomicU64,
    /// Append calls acknowledged by those syncs.
    pub appends: AtomicU64,
    /// Every successful sync: those above, and those for a vote or the committed index alone.
    pub syncs: AtomicU64,
    /// Syncs made on the appending thread (FollowerSyncsInline, `sync.rs`).
    pub syncs_inline: AtomicU64,
    /// Bytes of records written to the log, frames and padding included (the snapshot
    /// trigger's measure of the log: `raft/snapshot_trigger.rs`).
    pub bytes: AtomicU64,
    /// How long each successful group-commit `fdatasync` took
    /// (`redraft_log_flush_duration_seconds`).
    pub flush_seconds: Histogram,
    /// Entries acknowledged per successful sync (`redraft_log_flush_entries`).
    pub entries_per_flush: Histogram,
}

impl Default for FlushStats {
    fn default() -> Self {
        Self {
            flushes: AtomicU64::new(0),
            entries: AtomicU64::new(0),
            appends: AtomicU64::new(0),
            syncs: AtomicU64::new(0),
            syncs_inline: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            flush_seconds: Histogram::new(LATENCY_BUCKETS),
            entries_per_flush: Histogram::new(BATCH_BUCKETS),
        }
    }
}

/// FollowerSyncsInline only while the last sync took at most this long: Raft's thread (its
/// heartbeats, the sessions beside it) waits for an inline sync.
pub(super) const INLINE_SYNC_MAX_US: u64 = 2_000;

impl Wal {
    /// Records the committed log id and returns: no write and no sync of its own; its record
    /// goes ahead of the next record written or into the next group commit, which makes it
    /// durable (CommittedRidesNextSync).
    pub fn save_committed(&self, committed: Option<LogId>) -> io::Result<()> {
        let mut st = self.shared.lock_writable()?;
        st.committed = committed;
        st.committed_unwritten = true;
        Ok(())
    }

    /// Sets the hook told, after every group-commit sync, the committed id that sync made
    /// durable (CommittedRidesNextSync); a second call is ignored.
    pub fn on_synced(&self, hook: SyncedHook) {
        let _ = self.shared.on_synced.set(hook);
    }

    /// Calls `done` after a sync that covers every record written so far (the committed id
    /// and purge point included).
    pub fn sync(&self, done: Done) -> io::Result<()> {
        let st = self.shared.lock_writable()?;
        self.queue(&st, 0, done)
    }

    pub(super) fn queue(
        &self,
        st: &MutexGuard<'_, State>,
        entries: u64,
        done: Done,
    ) -> io::Result<()> {
        self.queue_job(st, SyncJob { entries, done })
    }

    /// Queues `job` to the worker. With the state lock held (`_st`): the worker, which takes
    /// the jobs and then reads the last segment under the same lock, never syncs a file older
    /// than the job's records.
    pub(super) fn queue_job(&self, _st: &MutexGuard<'_, State>, job: SyncJob) -> io::Result<()> {
        self.shared.queued.fetch_add(1, Ordering::AcqRel);
        self.tx.lock().expect("lock").send(job).map_err(|_| {
            self.shared.queued.fetch_sub(1, Ordering::AcqRel);
            io::Error::other("raft log sync worker stopped")
        })
    }
}

impl Shared {
    /// The sync worker: takes every queued job, syncs the last segment once, completes the
    /// jobs in order (DurableBeforeAck, group commit).
    pub(super) fn sync_worker(self: Arc<Self>, rx: mpsc::Receiver<SyncJob>) {
        let mut batch: Vec<SyncJob> = Vec::new();
        loop {
            match rx.recv() {
                Ok(job) => batch.push(job),
                Err(mpsc::RecvError) => return,
            }
            while let Ok(job) = rx.try_recv() {
                batch.push(job);
            }
            let n = batch.len();
            {
                let _syncer = self.syncer.lock().unwrap_or_else(|p| p.into_inner());
                self.sync_batch(&mut batch);
            }
            self.queued.fetch_sub(n, Ordering::AcqRel);
        }
    }

    /// FollowerSyncsInline: syncs `job`'s append on the calling thread and completes it, when
    /// no job waits for the worker, no sync runs, and the last sync was quick and ended longer
    /// ago than it took; else gives the job back. Called with the state lock held (`st`, let
    /// go here before the sync): every queueing path holds it, so none queues in between, and
    /// the worker holds `syncer` only while it has jobs counted in `queued`.
    pub(super) fn sync_here<'a>(
        &self,
        st: MutexGuard<'a, State>,
        job: SyncJob,
    ) -> Option<(MutexGuard<'a, State>, SyncJob)> {
        let took = self.last_sync_us.load(Ordering::Relaxed);
        let since = (self.opened.elapsed().as_micros() as u64)
            .saturating_sub(self.last_sync_end_us.load(Ordering::Relaxed));
        if self.queued.load(Ordering::Acquire) != 0 || took > INLINE_SYNC_MAX_US || since < took {
            return Some((st, job));
        }
        let Ok(_syncer) = self.syncer.try_lock() else {
            return Some((st, job));
        };
        drop(st);
        self.sync_batch(&mut vec![job]);
        self.stats.syncs_inline.fetch_add(1, Ordering::Relaxed);
        None
    }

    /// Writes the committed id if it is not yet, syncs the last segment once, and completes
    /// `batch`'s jobs in order (DurableBeforeAck). The caller holds `syncer`: one sync at a
    /// time, so jobs complete in the order they were queued.
    fn sync_batch(&self, batch: &mut Vec<SyncJob>) {
        let syncs = self.sync_attempts.fetch_add(1, Ordering::Relaxed) + 1;
        let started = Instant::now();
        // CommittedRidesNextSync: the committed id recorded before this sync begins is
        // durable once it succeeds; not yet in the log, it is written here first.
        let (file, reach, committed, written, last, truncations) = {
            let mut st = self.state.lock().expect("wal state lock");
            let written = if st.committed_unwritten {
                self.check_writable()
                    .and_then(|()| self.write_records(&mut st, Vec::new()).map(drop))
            } else {
                Ok(())
            };
            (
                st.segments.back().map(|s| s.file.clone()),
                // SyncedMarks: how far this sync reaches (records are written under the lock).
                st.segments.back().map(|s| (s.seq, st.write_off)),
                st.committed,
                written,
                st.last_log_id,
                st.truncations,
            )
        };
        let result = if let Err(e) = written.and_then(|()| self.check_writable()) {
            Err(e)
        } else if self.opts.fail_sync_after.is_some_and(|n| syncs > n) {
            Err(self.fail(
                "flush",
                io::Error::other("injected by failpoint log_flush_fail_after"),
            ))
        } else {
            match file {
                Some(f) => self.sync_file(&*f).map_err(|e| self.fail("flush", e)),
                None => Ok(()),
            }
        };
        match result {
            Ok(()) => {
                // DurableLastKnown: what was written before the sync began is on the disk,
                // unless a truncation has taken it back meanwhile.
                let durable = {
                    let mut st = self.state.lock().expect("wal state lock");
                    if st.truncations == truncations && last > st.durable {
                        st.durable = last;
                    }
                    if let Some(reach) = reach.filter(|&r| r > st.synced_to) {
                        st.synced_to = reach;
                    }
                    st.durable
                };
                if let Some(hook) = self.on_synced.get() {
                    hook(Ok(Synced { committed, durable }));
                }
                self.stats.syncs.fetch_add(1, Ordering::Relaxed);
                let entries: u64 = batch.iter().map(|j| j.entries).sum();
                let appends = batch.iter().filter(|j| j.entries > 0).count() as u64;
                let took = started.elapsed();
                self.last_sync_us
                    .store(took.as_micros() as u64, Ordering::Relaxed);
                self.last_sync_end_us
                    .store(self.opened.elapsed().as_micros() as u64, Ordering::Relaxed);
                if appends > 0 {
                    let s = &self.stats;
                    s.flushes.fetch_add(1, Ordering::Relaxed);
                    s.appends.fetch_add(appends, Ordering::Relaxed);
                    s.entries.fetch_add(entries, Ordering::Relaxed);
                    s.flush_seconds.observe_duration(took);
                    s.entries_per_flush.observe(entries as f64);
                }
                for job in batch.drain(..) {
                    (job.done)(Ok(()));
                }
            }
            Err(e) => {
                if let Some(hook) = self.on_synced.get() {
                    hook(Err(&e));
                }
                let msg = e.to_string();
                for job in batch.drain(..) {
                    (job.done)(Err(io::Error::other(msg.clone())));
                }
            }
        }
    }
}
