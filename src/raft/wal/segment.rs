//! Segment files: rolling to a new last segment (FullSegmentSynced), the preallocated spare
//! (SpareAhead) made by the housekeeping thread, which also deletes purged segments
//! (SpareOffTheWritePath), and installing a segment whole before any record is written in it
//! (SegmentDurableOnCreate, HeadRepeatsState).

use super::*;

/// The next segment, preallocated ahead of need (SpareAhead).
pub(super) enum Spare {
    /// None: the housekeeping thread makes one (at once, or after [`DISK_FULL_RETRY`] when the
    /// last attempt failed).
    Missing,
    /// The housekeeping thread is making `spare.tmp`; a roll waits for it.
    Making,
    /// `spare.tmp`, preallocated to the given size.
    Ready(Arc<dyn DiskFile>, u64),
}

/// What the housekeeping thread has to do (SpareOffTheWritePath).
pub(super) struct Chores {
    pub(super) spare: Spare,
    /// When to try making the spare again after a failure (disk full).
    pub(super) retry_at: Option<Instant>,
    /// Purged segments to delete, oldest first (PurgeWholeSegments).
    pub(super) dead: Vec<String>,
    /// The WAL is dropped: the thread ends.
    pub(super) stop: bool,
}

impl Shared {
    /// Makes a new last segment with room for a record of `need` bytes.
    pub(super) fn roll(&self, st: &mut State, need: u64) -> io::Result<()> {
        // FullSegmentSynced.
        self.sync_last(st)?;
        let head = head_bytes(st)?;
        let want = self
            .opts
            .segment_bytes
            .max(padded(head.len() as u64 + need));
        // SpareOffTheWritePath: the spare the housekeeping thread made, if it is there; the
        // chores lock is held until `spare.tmp` is renamed, so the thread never makes the next
        // one under the name of this one.
        let mut chores = self.chores.lock().expect("wal chores lock");
        while matches!(chores.spare, Spare::Making) {
            chores = self.chores_changed.wait(chores).expect("wal chores lock");
        }
        let (file, cap) = match std::mem::replace(&mut chores.spare, Spare::Missing) {
            Spare::Ready(f, cap) if cap >= want => (f, cap),
            // None yet (the disk was full), or too small for this record: made here.
            _ => self
                .make_spare(want)
                .map_err(|e| self.fail("preallocating the next segment", e))?,
        };
        let seq = st.segments.back().map_or(1, |s| s.seq + 1);
        self.install_segment(st, seq, file, cap, head)?;
        chores.retry_at = None;
        drop(chores);
        self.chores_changed.notify_all();
        Ok(())
    }

    /// Creates and preallocates `spare.tmp`.
    pub(super) fn make_spare(&self, size: u64) -> io::Result<(Arc<dyn DiskFile>, u64)> {
        let r = (|| {
            let f = self.disk.create(SPARE)?;
            f.allocate(size)?;
            Ok(f)
        })();
        match r {
            Ok(f) => Ok((f, size)),
            Err(e) => {
                // Give back what a failed preallocation took.
                let _ = self.disk.remove(SPARE);
                Err(e)
            }
        }
    }

    /// SpareAhead: makes the spare now (at open, where nothing else runs yet) and records the
    /// outcome as the housekeeping thread does.
    pub(super) fn make_spare_now(&self) {
        let made = self.make_spare(self.opts.segment_bytes);
        let mut chores = self.chores.lock().expect("wal chores lock");
        self.spare_made(&mut chores, made);
    }

    /// Records the outcome of making a spare: ready, or the disk-full flag raised (SpareAhead)
    /// and a retry after [`DISK_FULL_RETRY`].
    fn spare_made(&self, chores: &mut Chores, made: io::Result<(Arc<dyn DiskFile>, u64)>) {
        match made {
            Ok((f, cap)) => {
                chores.spare = Spare::Ready(f, cap);
                chores.retry_at = None;
                if self.disk_full.swap(false, Ordering::AcqRel) {
                    tracing::info!(
                        "raft log: the next segment is preallocated again; disk no longer full"
                    );
                }
            }
            Err(e) => {
                chores.spare = Spare::Missing;
                chores.retry_at = Some(Instant::now() + DISK_FULL_RETRY);
                let reason = format!(
                    "cannot preallocate the next raft log segment ({} bytes) in {}: {e}",
                    self.opts.segment_bytes,
                    self.disk.path_of("").display()
                );
                *self.disk_full_reason.lock().expect("lock") = reason.clone();
                if !self.disk_full.swap(true, Ordering::AcqRel) {
                    tracing::error!(error = %reason, "raft log: disk full; client writes are refused until space returns");
                }
            }
        }
    }

    /// The housekeeping thread (SpareOffTheWritePath): deletes purged segments
    /// (PurgeWholeSegments) and makes the spare whenever there is none (SpareAhead), retrying
    /// every [`DISK_FULL_RETRY`] while that fails. Ends when the WAL is dropped; after a failure
    /// (FailStop) it makes no more spares.
    pub(super) fn housekeeping(self: Arc<Self>) {
        let mut chores = self.chores.lock().expect("wal chores lock");
        loop {
            if chores.stop {
                return;
            }
            if !chores.dead.is_empty() {
                let dead = std::mem::take(&mut chores.dead);
                drop(chores);
                self.remove_segments(&dead);
                chores = self.chores.lock().expect("wal chores lock");
                continue;
            }
            let wanted =
                matches!(chores.spare, Spare::Missing) && !self.failed.load(Ordering::Acquire);
            let wait = match chores.retry_at {
                Some(at) if wanted => at.checked_duration_since(Instant::now()),
                _ => None,
            };
            if wanted && wait.is_none() {
                chores.spare = Spare::Making;
                drop(chores);
                let made = self.make_spare(self.opts.segment_bytes);
                chores = self.chores.lock().expect("wal chores lock");
                self.spare_made(&mut chores, made);
                self.chores_changed.notify_all();
                continue;
            }
            chores = match wait {
                Some(d) => {
                    self.chores_changed
                        .wait_timeout(chores, d)
                        .expect("wal chores lock")
                        .0
                }
                None => self.chores_changed.wait(chores).expect("wal chores lock"),
            };
        }
    }

    /// SegmentDurableOnCreate and HeadRepeatsState: writes the magic and the state records
    /// into the preallocated `file`, syncs it, renames it to segment `seq` and syncs the
    /// directory; it is then the last segment.
    pub(super) fn install_segment(
        &self,
        st: &mut State,
        seq: u64,
        file: Arc<dyn DiskFile>,
        cap: u64,
        buf: Vec<u8>,
    ) -> io::Result<()> {
        let name = seg_name(seq);
        let r = file
            .write_at(0, &buf)
            .and_then(|()| self.sync_file_all(&*file))
            .and_then(|()| self.disk.rename(SPARE, &name))
            .and_then(|()| self.sync_dir());
        if let Err(e) = r {
            return Err(self.fail(&format!("creating segment {name}"), e));
        }
        st.segments.push_back(Segment { seq, file });
        st.write_off = buf.len() as u64;
        st.cap = cap.max(buf.len() as u64);
        Ok(())
    }
}

/// A new segment's first bytes: the magic, then the state records (HeadRepeatsState).
pub(super) fn head_bytes(st: &State) -> io::Result<Vec<u8>> {
    let mut buf = MAGIC.to_vec();
    let mut head = Vec::new();
    if let Some(v) = &st.vote {
        head.push(Record::Vote(*v));
    }
    head.push(Record::Committed(st.committed));
    if let Some(p) = st.purged {
        head.push(Record::Purged(p));
    }
    for r in &head {
        frame_into(&mut buf, &encode_record(r)?);
    }
    Ok(buf)
}
