//! Opening a WAL: replaying a segment's records into the in-memory state, cutting a torn tail
//! (TornTailOnly) or an unsynced one a power cut left with holes (UnsyncedTailCut), and naming
//! the file and offset of any corruption.

use std::io;

use openraft::entry::RaftEntry;

use super::record::*;
use super::*;

impl Shared {
    /// Replays segment `seq` into `st`; `last` is whether it is the last segment (the only
    /// place a torn write can be: TornTailOnly).
    pub(super) fn replay_segment(&self, st: &mut State, seq: u64, last: bool) -> io::Result<()> {
        let name = seg_name(seq);
        let path = self.disk.path_of(&name);
        let file = self.disk.open(&name)?;
        let len = file.len()?;
        let mut buf = vec![0u8; len as usize];
        file.read_at(0, &mut buf)?;
        if buf.len() < MAGIC.len() || &buf[..MAGIC.len()] != MAGIC {
            return Err(data_error(format!(
                "{} is not a redraft raft log segment (bad magic at byte offset 0); refusing to start",
                path.display()
            )));
        }
        st.segments.push_back(Segment {
            seq,
            file: file.clone(),
        });
        let mut off = MAGIC.len() as u64;
        loop {
            match parse_at(&buf, off) {
                Parsed::Record(payload, next) => {
                    let record: Record = super::super::codec::decode(payload).map_err(|e| {
                        data_error(format!(
                            "corrupt raft log record in {} at byte offset {off}: {e}; refusing to start",
                            path.display()
                        ))
                    })?;
                    self.replay_record(st, record, seq, off, payload.len() as u32)
                        .map_err(|e| {
                            data_error(format!(
                                "raft log record in {} at byte offset {off}: {e}; refusing to start",
                                path.display()
                            ))
                        })?;
                    off = next;
                }
                Parsed::End | Parsed::Bad(_) => {
                    let why = match parse_at(&buf, off) {
                        Parsed::Bad(why) => Some(why),
                        _ => None,
                    };
                    let after = scan_after(&buf, off + ALIGN, seq);
                    let refuse = |detail: &str| {
                        data_error(format!(
                            "corrupt raft log record in {} at byte offset {off}: {}; refusing to \
                             start ({detail})",
                            path.display(),
                            why.as_deref().unwrap_or("zero fill followed by records"),
                        ))
                    };
                    let Some(after) = after else {
                        return Err(refuse(
                            "the scan for records after it ran out of budget (scan budget spent)",
                        ));
                    };
                    let cut_before = match after.first_valid {
                        None if why.is_some() && !last => {
                            return Err(refuse("in a segment that is not the last"))
                        }
                        None => None,
                        Some(_) if !last => {
                            return Err(refuse(
                                "records follow it, in a segment that is not the last",
                            ))
                        }
                        Some(_) if after.synced > off => {
                            return Err(refuse(&format!(
                                "records follow it, and a later sync covered the first {} \
                                 bytes of the file, so it was acknowledged",
                                after.synced
                            )))
                        }
                        Some(next) if !lost_sector_within(&buf, off, next) => {
                            return Err(refuse(
                                "records follow it, so it is not a torn write at the tail",
                            ))
                        }
                        Some(next) => Some(next),
                    };
                    if why.is_some() || cut_before.is_some() {
                        // TornTailOnly, UnsyncedTailCut: cut it off, durably, and keep the
                        // preallocation (zeros from the cut on).
                        match cut_before {
                            None => tracing::warn!(
                                file = %path.display(),
                                offset = off,
                                reason = %why.as_deref().unwrap_or_default(),
                                "raft log: torn write at the tail of the last segment (never \
                                 acknowledged); cutting it off"
                            ),
                            Some(next) => tracing::warn!(
                                file = %path.display(),
                                offset = off,
                                records_from = next,
                                "raft log: a sector written after the last sync was lost in a \
                                 power cut, and records written after it reached the disk; none \
                                 of them was synced (acknowledged), so the log is cut there"
                            ),
                        }
                        let r = file
                            .set_len(off)
                            .and_then(|()| file.allocate(len))
                            .and_then(|()| self.sync_file_all(&*file));
                        r.map_err(|e| {
                            io::Error::new(
                                e.kind(),
                                format!("cutting the torn tail of {}: {e}", path.display()),
                            )
                        })?;
                    }
                    if last {
                        st.write_off = off;
                        st.cap = len;
                    }
                    return Ok(());
                }
            }
        }
    }

    pub(super) fn replay_record(
        &self,
        st: &mut State,
        record: Record,
        seq: u64,
        off: u64,
        len: u32,
    ) -> io::Result<()> {
        match record {
            Record::Entry(e) => {
                let index = e.index();
                // The first entry replayed may follow entries in segments a purge deleted;
                // from there on the log must be contiguous.
                if !st.replayed_entry {
                    st.replayed_entry = true;
                } else if let Some(next) = self.next_index(st) {
                    if index != next {
                        return Err(data_error(format!(
                            "entry {index} where {next} was expected (a gap or an overwrite \
                             without a truncate)"
                        )));
                    }
                }
                if st.locs.is_empty() {
                    st.first = index;
                }
                st.locs.push_back(Loc {
                    seq,
                    off: off + FRAME,
                    len,
                });
                st.last_log_id = Some(e.log_id());
            }
            Record::Vote(v) => st.vote = Some(v),
            Record::Committed(c) => st.committed = c,
            Record::Purged(p) => apply_purge(st, p),
            Record::Truncated(last) => self.apply_truncate(st, last)?,
            // Read only by the scan after a bad record (UnsyncedTailCut).
            Record::Synced { .. } => {}
        }
        Ok(())
    }
}
