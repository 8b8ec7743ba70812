//! The WAL's read path: finding the records of a range of entries under the state lock
//! ([`Wal::locate`], at most a budget of bytes: ReplicationReadBound in `log_store.rs`) and
//! reading them without it ([`Located::read`]).

use super::*;

impl Wal {
    /// The entries whose indexes are in `range` (those that exist).
    pub fn entries(&self, range: impl RangeBounds<u64>) -> io::Result<Vec<Entry>> {
        self.locate(range, u64::MAX).read()
    }

    /// Where the entries of `range` are (those that exist), from the first, as many as fit in
    /// `budget` record bytes, and always the first: the records are read later, with
    /// [`Located::read`], without the state lock.
    pub fn locate(&self, range: impl RangeBounds<u64>, budget: u64) -> Located {
        let st = self.shared.state.lock().expect("wal state lock");
        let end = st.first + st.locs.len() as u64;
        let lo = match range.start_bound() {
            Bound::Included(&i) => i,
            Bound::Excluded(&i) => i.saturating_add(1),
            Bound::Unbounded => 0,
        }
        .max(st.first);
        let hi = match range.end_bound() {
            Bound::Included(&i) => i.saturating_add(1),
            Bound::Excluded(&i) => i,
            Bound::Unbounded => u64::MAX,
        }
        .min(end);
        let mut out = Located {
            parts: Vec::new(),
            bytes: 0,
            cut: false,
        };
        for i in lo..hi.max(lo) {
            let loc = st.locs[(i - st.first) as usize];
            if !out.parts.is_empty() && out.bytes + u64::from(loc.len) > budget {
                out.cut = true;
                break;
            }
            out.bytes += u64::from(loc.len);
            out.parts.push((segment_of(&st, loc.seq).file.clone(), loc));
        }
        out
    }
}

/// Entries found by [`Wal::locate`], to be read.
pub struct Located {
    parts: Vec<(Arc<dyn DiskFile>, Loc)>,
    bytes: u64,
    cut: bool,
}

impl Located {
    /// The bytes of their records.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Whether the budget left out entries of the range.
    pub fn cut(&self) -> bool {
        self.cut
    }

    /// How many entries.
    pub fn len(&self) -> usize {
        self.parts.len()
    }

    /// Whether there are none (the range held no entry of the log).
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// Reads and decodes them (blocking: `pread`s).
    pub fn read(self) -> io::Result<Vec<Entry>> {
        let mut out = Vec::with_capacity(self.parts.len());
        for (file, loc) in self.parts {
            out.push(read_entry(&*file, loc)?);
        }
        Ok(out)
    }
}

/// Reads the entry record at `loc`; a normal entry's request stays encoded, in the bytes read
/// (DecodeOnApply).
pub(super) fn read_entry(file: &dyn DiskFile, loc: Loc) -> io::Result<Entry> {
    let mut buf = vec![0u8; loc.len as usize];
    file.read_at(loc.off, &mut buf)?;
    decode_entry(bytes::Bytes::from(buf))
        .map_err(|e| data_error(format!("raft log record at offset {}: {e}", loc.off)))
}
