//! The primitives every WAL path writes through: the writable check and fail-stop (FailStop:
//! after a failed write or sync nothing more is written), file and directory syncs, framed
//! record writes, segment removal and truncation; and the test-only failpoints that bend them
//! ([`WalOptions::from_env`]).

use super::*;

/// The write buffer's capacity kept between writes (WriteBufferReused): a larger one (a
/// batch of big entries) is freed after its write.
const WRITE_BUFFER_KEEP: usize = 4 << 20;

/// A sync mark is written once a sync has reached this many bytes past the last mark
/// (SyncedMarks): not one per group commit, which would be a record per write at one client.
pub(super) const SYNCED_MARK_EVERY: u64 = 4096;

impl Shared {
    pub(super) fn lock_writable(&self) -> io::Result<MutexGuard<'_, State>> {
        self.check_writable()?;
        let st = self.state.lock().expect("wal state lock");
        self.check_writable()?;
        Ok(st)
    }

    pub(super) fn check_writable(&self) -> io::Result<()> {
        if self.failed.load(Ordering::Acquire) {
            let why = self
                .failure
                .lock()
                .expect("lock")
                .clone()
                .unwrap_or_default();
            return Err(io::Error::other(format!(
                "raft log store refused the write: an earlier write or sync failed (fail-stop): \
                 {why}"
            )));
        }
        Ok(())
    }

    /// FailStop: records the first failure; returns the error to report.
    pub(super) fn fail(&self, what: &str, e: io::Error) -> io::Error {
        let msg = format!("raft log {what} failed: {e}");
        if !self.failed.swap(true, Ordering::AcqRel) {
            tracing::error!(error = %msg, "the raft log refuses every further write (fail-stop)");
            *self.failure.lock().expect("lock") = Some(msg.clone());
        }
        io::Error::new(e.kind(), msg)
    }

    pub(super) fn next_index(&self, st: &State) -> Option<u64> {
        if !st.locs.is_empty() {
            Some(st.first + st.locs.len() as u64)
        } else {
            st.purged.map(|p| p.index() + 1)
        }
    }

    pub(super) fn sync_file(&self, f: &dyn DiskFile) -> io::Result<()> {
        if self.opts.sync {
            f.sync_data()
        } else {
            Ok(())
        }
    }

    pub(super) fn sync_file_all(&self, f: &dyn DiskFile) -> io::Result<()> {
        if self.opts.sync {
            f.sync_all()
        } else {
            Ok(())
        }
    }

    pub(super) fn sync_dir(&self) -> io::Result<()> {
        if self.opts.sync {
            self.disk.sync_dir()
        } else {
            Ok(())
        }
    }

    /// PurgeWholeSegments: deletes purged segments, oldest first, with a directory sync after
    /// each, so a crash leaves a contiguous run. Called by the housekeeping thread, which gets
    /// them from the sync that made their purge point durable. A failure stops the log
    /// (FailStop).
    pub(super) fn remove_segments(&self, names: &[String]) {
        for name in names {
            let r = self.disk.remove(name).and_then(|()| self.sync_dir());
            if let Err(e) = r {
                let _ = self.fail(&format!("removing purged segment {name}"), e);
                return;
            }
        }
    }

    pub(super) fn sync_last(&self, st: &State) -> io::Result<()> {
        let last = st.segments.back().expect("a last segment");
        self.sync_file(&*last.file)
            .map_err(|e| self.fail("fdatasync", e))
    }

    /// Writes `records` at the end of the last segment (rolling to a new one when one does
    /// not fit), one write per segment, and returns where each payload is. A committed id not
    /// yet in the log goes first (CommittedRidesNextSync), and a sync mark if a sync reached
    /// further into this segment than the last mark says (SyncedMarks); their locations are
    /// not returned.
    pub(super) fn write_records(
        &self,
        st: &mut State,
        records: Vec<Record>,
    ) -> io::Result<Vec<Loc>> {
        // WriteBufferReused: the records are encoded straight into the log's write buffer,
        // which keeps its pages from one write to the next (below WRITE_BUFFER_KEEP).
        let mut buf = std::mem::take(&mut st.wbuf);
        buf.clear();
        let written = self.frame_and_write(st, &records, &mut buf);
        buf.clear();
        if buf.capacity() > WRITE_BUFFER_KEEP {
            buf = Vec::new();
        }
        st.wbuf = buf;
        let (locs, written) = written?;
        st.committed_unwritten = false;
        self.stats.bytes.fetch_add(written, Ordering::Relaxed);
        Ok(locs)
    }

    /// [`Shared::write_records`]'s work: each record framed onto `buf`, the buffer written
    /// once per segment. Returns the payloads' locations and the bytes written.
    fn frame_and_write(
        &self,
        st: &mut State,
        records: &[Record],
        buf: &mut Vec<u8>,
    ) -> io::Result<(Vec<Loc>, u64)> {
        let mut locs = Vec::with_capacity(records.len());
        let mut buf_start = st.write_off;
        let mut written = 0u64;
        // CommittedRidesNextSync, SyncedMarks: records of the log's own go first.
        let last_seq = st.segments.back().expect("a last segment").seq;
        let mut lead = Vec::new();
        if st.committed_unwritten {
            lead.push(Record::Committed(st.committed));
        }
        let (to_seq, to) = st.synced_to;
        let marked = match st.synced_marked {
            (seq, off) if seq == to_seq => off,
            _ => 0,
        };
        if to_seq == last_seq && to >= marked + SYNCED_MARK_EVERY {
            lead.push(Record::Synced {
                seq: to_seq,
                off: to,
            });
            st.synced_marked = st.synced_to;
        }
        for (i, r) in lead.iter().chain(records).enumerate() {
            let at = buf.len();
            // An encoding error (none is known for these types) stops the log (FailStop):
            // `write_off` has moved past records of this call that are not written.
            let len = frame_onto(buf, r).map_err(|e| self.fail("encoding a record", e))?;
            let need = padded(FRAME + len);
            if st.write_off + need > st.cap {
                // The records before this one go to the segment they fit in; this one starts
                // the next segment.
                self.write_at(st, buf_start, &buf[..at])?;
                buf.drain(..at);
                self.roll(st, need)?;
                buf_start = st.write_off;
            }
            if i >= lead.len() {
                let seq = st.segments.back().expect("a last segment").seq;
                locs.push(Loc {
                    seq,
                    off: st.write_off + FRAME,
                    len: len as u32,
                });
            }
            st.write_off += need;
            written += need;
        }
        self.write_at(st, buf_start, buf)?;
        Ok((locs, written))
    }

    /// Writes `bytes` at `at` of the last segment (nothing if empty).
    fn write_at(&self, st: &State, at: u64, bytes: &[u8]) -> io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        let last = st.segments.back().expect("a last segment");
        last.file
            .write_at(at, bytes)
            .map_err(|e| self.fail("write", e))
    }

    pub(super) fn apply_truncate(&self, st: &mut State, last: Option<u64>) -> io::Result<()> {
        let keep = match last {
            None => 0,
            Some(l) => (l + 1).saturating_sub(st.first).min(st.locs.len() as u64),
        };
        st.locs.truncate(keep as usize);
        st.last_log_id = match st.locs.back() {
            None => None,
            Some(&loc) => Some(read_entry(&*segment_of(st, loc.seq).file, loc)?.log_id()),
        };
        // DurableLastKnown: the entries kept were synced as far as they were before.
        st.truncations += 1;
        if st.durable.map(|d| d.index()) > st.last_log_id.map(|l| l.index()) {
            st.durable = st.last_log_id;
        }
        Ok(())
    }
}

impl WalOptions {
    /// Test-only failpoints in `REDRAFT_FAILPOINTS` (comma-separated), read at open:
    /// `log_flush_fail_after=N` (every group-commit sync after the first N fails, as a dying disk
    /// would), `log_sync_off` (no fsync/fdatasync of the log at all: only to show that the
    /// power-loss tests have teeth; a loud warning is logged), `committed_sync_off` (read replies
    /// do not wait for the committed index's sync: only to measure what that wait costs,
    /// `benches/committed_sync.sh`; a loud warning is logged) and `committed_gate_delay_ms=N` (the
    /// commit gate rises N ms after each committed sync: tests of which replies wait for it),
    /// `follower_sync_inline_off` (no FollowerSyncsInline, `sync.rs`: benchmarks).
    pub fn from_env() -> Self {
        let mut opts = Self::default();
        if let Ok(spec) = std::env::var("REDRAFT_FAILPOINTS") {
            for kv in spec.split(',').map(str::trim) {
                if let Some(n) = kv.strip_prefix("log_flush_fail_after=") {
                    if let Ok(n) = n.parse() {
                        tracing::warn!(after = n, "failpoint armed: log flushes will fail");
                        opts.fail_sync_after = Some(n);
                    }
                } else if kv == "follower_sync_inline_off" {
                    opts.follower_sync_inline = false;
                } else if kv == "log_sync_off" {
                    opts.sync = false;
                } else if kv == "committed_sync_off" {
                    tracing::warn!(
                        "FAILPOINT committed_sync_off ARMED: reads are answered before the \
                         committed index is fsynced (breaks DESIGN §2). For benchmarks only."
                    );
                    opts.committed_sync = false;
                } else if let Some(ms) = kv.strip_prefix("committed_gate_delay_ms=") {
                    if let Ok(ms) = ms.parse() {
                        tracing::warn!(ms, "FAILPOINT committed_gate_delay_ms ARMED (tests only)");
                        opts.committed_gate_delay_ms = ms;
                    }
                }
            }
        }
        opts
    }
}
