//! The WAL's sync worker: group commit (DurableBeforeAck); after the sync that makes a purge
//! point durable, it hands the purged segments to the housekeeping thread (PurgeOffTheCore).
//!
//! **DurableLastKnown.** After each sync the worker raises [`Wal::durable`] to the last log id
//! written before the sync began, unless a truncation came in between; a truncation lowers it
//! to the new last entry. So every entry up to `durable` is on the disk and in the log: what
//! a follower may count as its own share of a majority (`raft/early_commit.rs`).

use super::*;

impl Shared {
    /// The sync worker: takes every queued job, syncs the last segment once, completes the
    /// jobs in order (DurableBeforeAck, group commit).
    pub(super) fn sync_worker(self: Arc<Self>, rx: mpsc::Receiver<SyncJob>) {
        let mut batch: Vec<SyncJob> = Vec::new();
        let mut syncs = 0u64;
        loop {
            match rx.recv() {
                Ok(job) => batch.push(job),
                Err(mpsc::RecvError) => return,
            }
            while let Ok(job) = rx.try_recv() {
                batch.push(job);
            }
            syncs += 1;
            let started = Instant::now();
            // CommittedRidesNextSync: the committed id recorded before this sync begins is
            // durable once it succeeds; not yet in the log, it is written here first.
            let (file, committed, written, last, truncations) = {
                let mut st = self.state.lock().expect("wal state lock");
                let written = if st.committed_unwritten {
                    self.check_writable()
                        .and_then(|()| self.write_records(&mut st, Vec::new()).map(drop))
                } else {
                    Ok(())
                };
                (
                    st.segments.back().map(|s| s.file.clone()),
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
                        st.durable
                    };
                    if let Some(hook) = self.on_synced.get() {
                        hook(Ok(Synced { committed, durable }));
                    }
                    self.stats.syncs.fetch_add(1, Ordering::Relaxed);
                    let entries: u64 = batch.iter().map(|j| j.entries).sum();
                    let appends = batch.iter().filter(|j| j.entries > 0).count() as u64;
                    if appends > 0 {
                        let s = &self.stats;
                        s.flushes.fetch_add(1, Ordering::Relaxed);
                        s.appends.fetch_add(appends, Ordering::Relaxed);
                        s.entries.fetch_add(entries, Ordering::Relaxed);
                        s.flush_seconds.observe_duration(started.elapsed());
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
}
