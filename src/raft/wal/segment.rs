//! Segment files: rolling to a new last segment (FullSegmentSynced), the preallocated spare
//! (SpareAhead) and installing a segment whole before any record is written in it
//! (SegmentDurableOnCreate, HeadRepeatsState).

use super::*;

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
        let (file, cap) = match st.spare.take() {
            Some((f, cap)) if cap >= want => (f, cap),
            _ => self
                .make_spare(want)
                .map_err(|e| self.fail("preallocating the next segment", e))?,
        };
        let seq = st.segments.back().map_or(1, |s| s.seq + 1);
        self.install_segment(st, seq, file, cap, head)?;
        self.refill_spare(st);
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

    /// SpareAhead: preallocates the next segment if there is none; a full disk raises the
    /// disk-full flag instead of failing.
    pub(super) fn refill_spare(&self, st: &mut State) {
        if st.spare.is_some() {
            return;
        }
        match self.make_spare(self.opts.segment_bytes) {
            Ok(s) => {
                st.spare = Some(s);
                if self.disk_full.swap(false, Ordering::AcqRel) {
                    tracing::info!(
                        "raft log: the next segment is preallocated again; disk no longer full"
                    );
                }
            }
            Err(e) => {
                let reason = format!(
                    "cannot preallocate the next raft log segment ({} bytes) in {}: {e}",
                    self.opts.segment_bytes,
                    self.disk.path_of("").display()
                );
                if !self.disk_full.swap(true, Ordering::AcqRel) {
                    tracing::error!(error = %reason, "raft log: disk full; client writes are refused until space returns");
                }
                *self.disk_full_reason.lock().expect("lock") = reason;
            }
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
