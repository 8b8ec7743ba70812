//! The write-ahead log that holds the Raft log, the vote, the committed log id and the purge
//! point: segmented append-only files, every record checksummed, every acknowledgement after an
//! `fdatasync` (group commit). Modelled on etcd's `server/storage/wal` and HashiCorp's
//! `raft-wal`.
//!
//! Owns one directory (`<data_dir>/raft-log/wal/`) through a [`Disk`]; knows the openraft types
//! it stores and nothing of the keyspace. `log_store.rs` adapts it to openraft's traits.
//!
//! # On-disk layout
//!
//! ```text
//! raft-log/wal/00000000000000000001.seg   segments, numbered by a sequence number (20 digits)
//!              00000000000000000002.seg   the last one is written; older ones are only read
//!              spare.tmp                  the next segment, preallocated ahead of need
//!
//! segment  = MAGIC (8 bytes "RDFTWAL1")
//!            record*                      the head: Vote, Committed, Purged as of creation
//!            record*                      then whatever was written while it was the last
//!            zeros                        preallocated (posix_fallocate), not yet written
//! record   = len: u32 LE | crc: u32 LE | payload (len bytes) | zero padding to 8 bytes
//!            crc = CRC32C(payload); len = 0 is never a record (it is the zero fill)
//! payload  = FORMAT_VERSION byte ++ postcard(Record)
//! Record   = Entry(Entry) | Vote(Vote) | Committed(Option<LogId>) | Purged(LogId)
//!          | Truncated(Option<u64>)      entries after that index are gone
//! ```
//!
//! Replaying every segment in order rebuilds the state; the in-memory index keeps only
//! `(segment, offset, len)` per live entry, and reads `pread` the record, so memory grows with
//! the number of live entries, not with their bytes.
//!
//! # Invariants
//!
//! - **DurableBeforeAck.** An append writes its records (readable at once: openraft reads
//!   entries for replication before they are flushed) and queues its callback for the sync
//!   worker. The worker takes every queued job, then `fdatasync`s the last segment, then
//!   completes the jobs in submission order: one sync covers every append written before it
//!   began (group commit). A vote rides the same group commit and `save_vote` waits for it;
//!   truncate syncs before it returns.
//! - **CommittedRidesNextSync.** `save_committed` writes its record and returns without a
//!   sync of its own; the caller waits for the next group commit with [`Wal::sync`] (the log
//!   store does, so the committed id is durable before openraft's `save_committed` returns:
//!   DESIGN §2). Under load that sync is shared with the appends and votes queued around it.
//!   The committed id found after a crash is never ahead of the log: its record follows, in
//!   the log, every entry it covers (an entry is written before it can be committed), and
//!   replay stops at the first record missing.
//! - **FullSegmentSynced.** A segment is synced before the next one is made the last, so a
//!   job whose records landed in an older segment is durable whichever file the worker syncs,
//!   and any damage in a non-last segment is corruption, never a torn write.
//! - **SegmentDurableOnCreate.** A new segment is written whole in `spare.tmp` (magic and head),
//!   fsynced, renamed to its name, and the directory fsynced, before any record in it is
//!   written.
//! - **HeadRepeatsState.** Every segment starts with the vote, committed and purge point as of
//!   its creation, so deleting older segments never loses them.
//! - **PurgeWholeSegments.** Segments are deleted only after a sync has made the purge point
//!   durable, oldest first with a directory sync after each, and only those before the one
//!   holding the first live entry (never the last). After a crash the segments left are a
//!   contiguous run.
//! - **PurgeOffTheCore.** `purge` writes the purge point and returns; the sync worker syncs it
//!   and then deletes the segments (openraft calls `purge` from its core task after every
//!   snapshot, and waits for it). A purge lost in a crash leaves more log, never a hole:
//!   openraft only asks that a purge leave no hole, and the snapshot behind it is durable
//!   first (SnapshotBeforePurge in `state_machine.rs`).
//! - **TornTailOnly.** At open, a bad record at the end of the last segment with nothing valid
//!   after it is a torn write: it is cut off and the cut synced. A bad record anywhere else is
//!   corruption: open fails naming the file and byte offset. Nothing is dropped silently.
//! - **FailStop.** After a failed write or sync, every later write is refused with the error;
//!   openraft stops the node. Nothing that could not be persisted is ever acknowledged.
//! - **SpareAhead.** The next segment is preallocated before it is needed, so a write into the
//!   last segment cannot hit ENOSPC. When the spare cannot be made (disk full) the WAL raises
//!   [`Wal::disk_full`] instead of failing; the write path refuses client writes while it is up,
//!   and the sync worker retries every second and lowers it once the spare exists.

pub mod disk;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use openraft::entry::RaftEntry;
use serde::{Deserialize, Serialize};

use self::disk::{Disk, DiskFile};
use super::typ::{Entry, LogId, Vote};
use crate::metrics::{Histogram, BATCH_BUCKETS, LATENCY_BUCKETS};

/// The first 8 bytes of every segment.
pub const MAGIC: &[u8; 8] = b"RDFTWAL1";
/// Bytes of a record's frame before its payload: length and CRC32C.
const FRAME: u64 = 8;
/// Records start on multiples of this.
const ALIGN: u64 = 8;
/// The largest payload a record may claim (an entry is at most ~1 GiB: `MAX_ENTRY_BYTES`).
const MAX_RECORD: u64 = 1 << 31;
/// The name of the preallocated next segment.
const SPARE: &str = "spare.tmp";
/// How often the sync worker retries making the spare while the disk is full.
const DISK_FULL_RETRY: Duration = Duration::from_secs(1);
/// Bytes of CRC work the open-time scan for valid records after a bad one may spend before
/// it gives up and calls the damage corruption (refusing to start rather than guess).
const SCAN_BUDGET: u64 = 256 << 20;

/// What the WAL stores. Variants only grow (postcard numbers them by position).
#[derive(Serialize, Deserialize)]
enum Record {
    Entry(Entry),
    Vote(Vote),
    Committed(Option<LogId>),
    Purged(LogId),
    /// Entries with an index above this one (all if `None`) are gone.
    Truncated(Option<u64>),
}

/// How a WAL behaves; [`WalOptions::default`] is production.
#[derive(Clone, Debug)]
pub struct WalOptions {
    /// Bytes preallocated per segment (a larger record gets a segment of its own size).
    pub segment_bytes: u64,
    /// `false` skips every fsync/fdatasync (failpoint `log_sync_off`: only for showing that the
    /// power-loss tests have teeth).
    pub sync: bool,
    /// Failpoint `log_flush_fail_after=N`: every group-commit sync after the first N fails.
    pub fail_sync_after: Option<u64>,
}

impl Default for WalOptions {
    fn default() -> Self {
        Self {
            segment_bytes: 8 << 20,
            sync: true,
            fail_sync_after: None,
        }
    }
}

/// Counters of the group commit, reported by `INFO` (`raft_log_flushes`, ...) and `/metrics`.
#[derive(Debug)]
pub struct FlushStats {
    /// Syncs that acknowledged at least one append.
    pub flushes: AtomicU64,
    /// Entries acknowledged by those syncs.
    pub entries: AtomicU64,
    /// Append calls acknowledged by those syncs.
    pub appends: AtomicU64,
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
            flush_seconds: Histogram::new(LATENCY_BUCKETS),
            entries_per_flush: Histogram::new(BATCH_BUCKETS),
        }
    }
}

/// Called once with the outcome of the sync that covers a write.
pub type Done = Box<dyn FnOnce(io::Result<()>) + Send>;

/// A write waiting for the sync worker.
struct SyncJob {
    /// Entries it appended (0 for a vote or committed record).
    entries: u64,
    done: Done,
}

/// Where a live entry's record is.
#[derive(Clone, Copy, Debug)]
struct Loc {
    seq: u64,
    /// Offset of the payload (after the frame).
    off: u64,
    len: u32,
}

struct Segment {
    seq: u64,
    file: Arc<dyn DiskFile>,
}

struct State {
    /// Oldest first, sequence numbers contiguous; the last one is written.
    segments: VecDeque<Segment>,
    /// Where the next record goes in the last segment.
    write_off: u64,
    /// The last segment's preallocated size: records are written below it.
    cap: u64,
    /// The preallocated next segment (SpareAhead); `None` while the disk is full.
    spare: Option<(Arc<dyn DiskFile>, u64)>,
    /// Live entries: `locs[i]` holds index `first + i`.
    locs: VecDeque<Loc>,
    first: u64,
    last_log_id: Option<LogId>,
    vote: Option<Vote>,
    committed: Option<LogId>,
    purged: Option<LogId>,
    /// Whether replay has met an entry yet (at open only).
    replayed_entry: bool,
}

impl State {
    fn empty() -> Self {
        Self {
            segments: VecDeque::new(),
            write_off: 0,
            cap: 0,
            spare: None,
            locs: VecDeque::new(),
            first: 0,
            last_log_id: None,
            vote: None,
            committed: None,
            purged: None,
            replayed_entry: false,
        }
    }
}

struct Shared {
    disk: Arc<dyn Disk>,
    opts: WalOptions,
    state: Mutex<State>,
    /// Set by the first failed write or sync (FailStop); never cleared.
    failed: AtomicBool,
    failure: Mutex<Option<String>>,
    /// SpareAhead: up while the next segment cannot be preallocated.
    disk_full: AtomicBool,
    disk_full_reason: Mutex<String>,
    stats: Arc<FlushStats>,
}

/// The write-ahead log. Dropping the last handle stops its sync worker.
pub struct Wal {
    shared: Arc<Shared>,
    /// To the sync worker. Held here, not in `Shared`, so the worker ends when the WAL is
    /// dropped. Unbounded: each job is the callback of a write openraft already bounds.
    tx: Mutex<mpsc::Sender<SyncJob>>,
}

fn seg_name(seq: u64) -> String {
    format!("{seq:020}.seg")
}

fn parse_seg_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn padded(n: u64) -> u64 {
    n.div_ceil(ALIGN) * ALIGN
}

/// Frames `payload` as one record (length, CRC32C, payload, padding) onto `buf`.
fn frame_into(buf: &mut Vec<u8>, payload: &[u8]) {
    buf.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    buf.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    buf.extend_from_slice(payload);
    let pad = padded(FRAME + payload.len() as u64) - (FRAME + payload.len() as u64);
    buf.extend(std::iter::repeat_n(0u8, pad as usize));
}

fn encode_record(r: &Record) -> io::Result<Vec<u8>> {
    super::codec::encode(r)
}

/// What is at `off` of a segment's bytes.
enum Parsed<'a> {
    /// A whole, checksummed record: its payload, and where the next one starts.
    Record(&'a [u8], u64),
    /// Zero fill: the end of the written part.
    End,
    /// Something that is neither.
    Bad(String),
}

fn parse_at(buf: &[u8], off: u64) -> Parsed<'_> {
    let len_total = buf.len() as u64;
    if off + FRAME > len_total {
        if buf[off as usize..].iter().all(|&b| b == 0) {
            return Parsed::End;
        }
        return Parsed::Bad("a record frame runs past the end of the file".into());
    }
    let o = off as usize;
    let len = u32::from_le_bytes(buf[o..o + 4].try_into().expect("4 bytes")) as u64;
    let crc = u32::from_le_bytes(buf[o + 4..o + 8].try_into().expect("4 bytes"));
    if len == 0 {
        if crc == 0 {
            return Parsed::End;
        }
        return Parsed::Bad("a record of length 0".into());
    }
    if len > MAX_RECORD || off + FRAME + len > len_total {
        return Parsed::Bad(format!("a record length of {len} bytes runs past the end"));
    }
    let payload = &buf[o + 8..o + 8 + len as usize];
    if crc32c::crc32c(payload) != crc {
        return Parsed::Bad("CRC32C mismatch".into());
    }
    Parsed::Record(payload, off + padded(FRAME + len))
}

/// Whether a valid record starts anywhere after `from` (aligned). `None` when the scan ran
/// out of budget (then the caller must assume there is one).
fn valid_record_after(buf: &[u8], from: u64) -> Option<bool> {
    let mut budget = SCAN_BUDGET;
    let mut off = padded(from);
    while off + FRAME <= buf.len() as u64 {
        let o = off as usize;
        let len = u32::from_le_bytes(buf[o..o + 4].try_into().expect("4 bytes")) as u64;
        if len != 0 && len <= MAX_RECORD && off + FRAME + len <= buf.len() as u64 {
            if budget < len {
                return None;
            }
            budget -= len;
            if let Parsed::Record(..) = parse_at(buf, off) {
                return Some(true);
            }
        }
        off += ALIGN;
    }
    Some(false)
}

fn data_error(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

impl Wal {
    /// Opens the WAL in `disk` (creating it if empty), replays it, cuts a torn tail, and starts
    /// the sync worker (a thread).
    pub fn open(disk: Arc<dyn Disk>, opts: WalOptions, stats: Arc<FlushStats>) -> io::Result<Wal> {
        if !opts.sync {
            tracing::warn!(
                "FAILPOINT log_sync_off ARMED: the raft log is NEVER fsynced; acknowledged writes \
                 are lost on power failure. For tests only."
            );
        }
        let mut seqs = Vec::new();
        for name in disk.list()? {
            if let Some(seq) = parse_seg_name(&name) {
                seqs.push(seq);
            } else if name == SPARE {
                disk.remove(SPARE)?;
            } else {
                tracing::warn!(file = %disk.path_of(&name).display(), "unknown file in the raft log directory, left alone");
            }
        }
        seqs.sort_unstable();
        for w in seqs.windows(2) {
            if w[1] != w[0] + 1 {
                return Err(data_error(format!(
                    "raft log segments are not contiguous: {} is followed by {} (a segment is \
                     missing); refusing to start",
                    disk.path_of(&seg_name(w[0])).display(),
                    disk.path_of(&seg_name(w[1])).display()
                )));
            }
        }
        let mut st = State::empty();
        let shared = Arc::new(Shared {
            disk: disk.clone(),
            opts,
            state: Mutex::new(State::empty()),
            failed: AtomicBool::new(false),
            failure: Mutex::new(None),
            disk_full: AtomicBool::new(false),
            disk_full_reason: Mutex::new(String::new()),
            stats,
        });
        for (i, &seq) in seqs.iter().enumerate() {
            let last = i + 1 == seqs.len();
            shared.replay_segment(&mut st, seq, last)?;
        }
        if st.segments.is_empty() {
            // A new log: its first segment, made like any other (SegmentDurableOnCreate).
            let (file, cap) = shared.make_spare(shared.opts.segment_bytes)?;
            let head = head_bytes(&st)?;
            shared.install_segment(&mut st, 1, file, cap, head)?;
        }
        shared.refill_spare(&mut st);
        *shared.state.lock().expect("wal state lock") = st;
        let (tx, rx) = mpsc::channel();
        let worker = shared.clone();
        std::thread::Builder::new()
            .name("raft-wal-sync".into())
            .spawn(move || worker.sync_worker(rx))?;
        Ok(Wal {
            shared,
            tx: Mutex::new(tx),
        })
    }

    /// The group-commit counters.
    pub fn stats(&self) -> Arc<FlushStats> {
        self.shared.stats.clone()
    }

    /// Whether the next segment cannot be preallocated (SpareAhead), and why.
    pub fn disk_full(&self) -> Option<String> {
        if self.shared.disk_full.load(Ordering::Acquire) {
            Some(self.shared.disk_full_reason.lock().expect("lock").clone())
        } else {
            None
        }
    }

    /// Appends `entries` (readable when this returns) and calls `done` after the sync that
    /// makes them durable (DurableBeforeAck).
    pub fn append(&self, entries: impl IntoIterator<Item = Entry>, done: Done) -> io::Result<()> {
        let entries: Vec<Entry> = entries.into_iter().collect();
        let mut st = self.shared.lock_writable()?;
        let log_ids: Vec<LogId> = entries.iter().map(|e| e.log_id()).collect();
        for w in log_ids.windows(2) {
            if w[1].index() != w[0].index() + 1 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "append of non-consecutive entries {} then {}",
                        w[0].index(),
                        w[1].index()
                    ),
                ));
            }
        }
        if let Some(first) = log_ids.first() {
            let index = first.index();
            let next = self.shared.next_index(&st);
            if next.is_some_and(|next| index < next) {
                // openraft truncates before it overwrites; should it not, do it here so the
                // log on disk says so (a replay never overwrites implicitly).
                tracing::warn!(index, "append overwrites entries without a truncate first");
                self.shared
                    .write_records(&mut st, vec![Record::Truncated(index.checked_sub(1))])?;
                self.shared.apply_truncate(&mut st, index.checked_sub(1))?;
            } else if next.is_some_and(|next| index > next) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("append of index {index} would leave a gap (next is {next:?})"),
                ));
            }
        }
        let n = entries.len() as u64;
        let locs = self
            .shared
            .write_records(&mut st, entries.into_iter().map(Record::Entry).collect())?;
        for (loc, log_id) in locs.into_iter().zip(log_ids) {
            if st.locs.is_empty() {
                st.first = log_id.index();
            }
            st.locs.push_back(loc);
            st.last_log_id = Some(log_id);
        }
        self.queue(&st, n, done)
    }

    /// Records `vote`, then calls `done` after the sync that makes it durable.
    pub fn save_vote(&self, vote: &Vote, done: Done) -> io::Result<()> {
        let mut st = self.shared.lock_writable()?;
        self.shared
            .write_records(&mut st, vec![Record::Vote(*vote)])?;
        st.vote = Some(*vote);
        self.queue(&st, 0, done)
    }

    /// Records the committed log id and returns: no sync of its own, it rides the next group
    /// commit (CommittedRidesNextSync).
    pub fn save_committed(&self, committed: Option<LogId>) -> io::Result<()> {
        let mut st = self.shared.lock_writable()?;
        self.shared
            .write_records(&mut st, vec![Record::Committed(committed)])?;
        st.committed = committed;
        Ok(())
    }

    /// Calls `done` after a sync that covers every record written so far (the committed id
    /// and purge point included).
    pub fn sync(&self, done: Done) -> io::Result<()> {
        let st = self.shared.lock_writable()?;
        self.queue(&st, 0, done)
    }

    /// Removes every entry after `last` (all if `None`), durably, before it returns.
    pub fn truncate_after(&self, last: Option<u64>) -> io::Result<()> {
        let mut st = self.shared.lock_writable()?;
        self.shared
            .write_records(&mut st, vec![Record::Truncated(last)])?;
        self.shared.sync_last(&st)?;
        self.shared.apply_truncate(&mut st, last)
    }

    /// Makes `log_id` the purge point and returns without a sync (PurgeOffTheCore); the
    /// segments that hold nothing after it are deleted by the sync worker once a sync has made
    /// the purge point durable (PurgeWholeSegments). Until that sync a crash finds the old
    /// purge point and every entry after it: more log, never a hole.
    pub fn purge(&self, log_id: LogId) -> io::Result<()> {
        let mut st = self.shared.lock_writable()?;
        if st.purged.is_some_and(|p| p >= log_id) {
            return Ok(());
        }
        self.shared
            .write_records(&mut st, vec![Record::Purged(log_id)])?;
        apply_purge(&mut st, log_id);
        let mut dead = Vec::new();
        while st.segments.len() > 1 {
            let oldest = st.segments[0].seq;
            let first_live = st.locs.front().map(|l| l.seq);
            if first_live.is_some_and(|s| s <= oldest) {
                break;
            }
            // Out of the live set now (no entry in it is readable any more); its file goes
            // once the sync below has covered the purge point.
            st.segments.pop_front();
            dead.push(seg_name(oldest));
        }
        let shared = self.shared.clone();
        let done: Done = Box::new(move |r| {
            if r.is_ok() {
                shared.remove_segments(&dead);
            }
        });
        self.queue(&st, 0, done)
    }

    /// The entries whose indexes are in `range` (those that exist).
    pub fn entries(&self, range: impl RangeBounds<u64>) -> io::Result<Vec<Entry>> {
        let wanted: Vec<(Arc<dyn DiskFile>, Loc)> = {
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
            (lo..hi.max(lo))
                .map(|i| {
                    let loc = st.locs[(i - st.first) as usize];
                    (segment_of(&st, loc.seq).file.clone(), loc)
                })
                .collect()
        };
        let mut out = Vec::with_capacity(wanted.len());
        for (file, loc) in wanted {
            out.push(read_entry(&*file, loc)?);
        }
        Ok(out)
    }

    pub fn vote(&self) -> Option<Vote> {
        self.shared.state.lock().expect("lock").vote
    }

    pub fn committed(&self) -> Option<LogId> {
        self.shared.state.lock().expect("lock").committed
    }

    /// `(last purged, last log id)`: the last log id is the greater of the last entry's and
    /// the purge point, so a crash between a purge and the entries after it still reads as an
    /// ordered log to openraft.
    pub fn log_state(&self) -> (Option<LogId>, Option<LogId>) {
        let st = self.shared.state.lock().expect("lock");
        (st.purged, st.last_log_id.max(st.purged))
    }

    /// Where entry `index`'s record starts: the segment file name and the frame's offset.
    #[cfg(test)]
    fn frame_of(&self, index: u64) -> Option<(String, u64)> {
        let st = self.shared.state.lock().expect("lock");
        let i = index.checked_sub(st.first)?;
        let loc = st.locs.get(i as usize)?;
        Some((seg_name(loc.seq), loc.off - FRAME))
    }

    /// The segment files, oldest first.
    #[cfg(test)]
    fn segment_names(&self) -> Vec<String> {
        let st = self.shared.state.lock().expect("lock");
        st.segments.iter().map(|s| seg_name(s.seq)).collect()
    }

    fn queue(&self, _st: &MutexGuard<'_, State>, entries: u64, done: Done) -> io::Result<()> {
        // Queued while the state lock is held: the worker, which takes the jobs and then reads
        // the last segment under the same lock, never syncs a file older than these records.
        self.tx
            .lock()
            .expect("lock")
            .send(SyncJob { entries, done })
            .map_err(|_| io::Error::other("raft log sync worker stopped"))
    }
}

fn segment_of(st: &State, seq: u64) -> &Segment {
    &st.segments[(seq - st.segments[0].seq) as usize]
}

fn read_entry(file: &dyn DiskFile, loc: Loc) -> io::Result<Entry> {
    let mut buf = vec![0u8; loc.len as usize];
    file.read_at(loc.off, &mut buf)?;
    match super::codec::decode::<Record>(&buf)? {
        Record::Entry(e) => Ok(e),
        _ => Err(data_error(format!(
            "raft log index points at a non-entry record (offset {})",
            loc.off
        ))),
    }
}

/// A new segment's first bytes: the magic, then the state records (HeadRepeatsState).
fn head_bytes(st: &State) -> io::Result<Vec<u8>> {
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

fn apply_purge(st: &mut State, log_id: LogId) {
    st.purged = st.purged.max(Some(log_id));
    while st.first <= log_id.index() && !st.locs.is_empty() {
        st.locs.pop_front();
        st.first += 1;
    }
    if st.locs.is_empty() {
        st.first = log_id.index() + 1;
        st.last_log_id = None;
    }
}

impl Shared {
    fn lock_writable(&self) -> io::Result<MutexGuard<'_, State>> {
        self.check_writable()?;
        let st = self.state.lock().expect("wal state lock");
        self.check_writable()?;
        Ok(st)
    }

    fn check_writable(&self) -> io::Result<()> {
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
    fn fail(&self, what: &str, e: io::Error) -> io::Error {
        let msg = format!("raft log {what} failed: {e}");
        if !self.failed.swap(true, Ordering::AcqRel) {
            tracing::error!(error = %msg, "the raft log refuses every further write (fail-stop)");
            *self.failure.lock().expect("lock") = Some(msg.clone());
        }
        io::Error::new(e.kind(), msg)
    }

    fn next_index(&self, st: &State) -> Option<u64> {
        if !st.locs.is_empty() {
            Some(st.first + st.locs.len() as u64)
        } else {
            st.purged.map(|p| p.index() + 1)
        }
    }

    fn sync_file(&self, f: &dyn DiskFile) -> io::Result<()> {
        if self.opts.sync {
            f.sync_data()
        } else {
            Ok(())
        }
    }

    fn sync_file_all(&self, f: &dyn DiskFile) -> io::Result<()> {
        if self.opts.sync {
            f.sync_all()
        } else {
            Ok(())
        }
    }

    fn sync_dir(&self) -> io::Result<()> {
        if self.opts.sync {
            self.disk.sync_dir()
        } else {
            Ok(())
        }
    }

    /// PurgeWholeSegments: deletes purged segments, oldest first, with a directory sync after
    /// each, so a crash leaves a contiguous run. Called by the sync worker after the sync
    /// that made their purge point durable. A failure stops the log (FailStop).
    fn remove_segments(&self, names: &[String]) {
        for name in names {
            let r = self.disk.remove(name).and_then(|()| self.sync_dir());
            if let Err(e) = r {
                let _ = self.fail(&format!("removing purged segment {name}"), e);
                return;
            }
        }
    }

    fn sync_last(&self, st: &State) -> io::Result<()> {
        let last = st.segments.back().expect("a last segment");
        self.sync_file(&*last.file)
            .map_err(|e| self.fail("fdatasync", e))
    }

    /// Writes `records` at the end of the last segment (rolling to a new one when one does
    /// not fit), one write per segment, and returns where each payload is.
    fn write_records(&self, st: &mut State, records: Vec<Record>) -> io::Result<Vec<Loc>> {
        let mut locs = Vec::with_capacity(records.len());
        let mut buf = Vec::new();
        let mut buf_start = st.write_off;
        for r in &records {
            let payload = encode_record(r)?;
            let need = padded(FRAME + payload.len() as u64);
            if st.write_off + need > st.cap {
                self.write_buf(st, buf_start, &mut buf)?;
                self.roll(st, need)?;
                buf_start = st.write_off;
            }
            let seq = st.segments.back().expect("a last segment").seq;
            locs.push(Loc {
                seq,
                off: st.write_off + FRAME,
                len: payload.len() as u32,
            });
            frame_into(&mut buf, &payload);
            st.write_off += need;
        }
        self.write_buf(st, buf_start, &mut buf)?;
        Ok(locs)
    }

    fn write_buf(&self, st: &State, at: u64, buf: &mut Vec<u8>) -> io::Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        let last = st.segments.back().expect("a last segment");
        if let Err(e) = last.file.write_at(at, buf) {
            return Err(self.fail("write", e));
        }
        buf.clear();
        Ok(())
    }

    /// Makes a new last segment with room for a record of `need` bytes.
    fn roll(&self, st: &mut State, need: u64) -> io::Result<()> {
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
    fn make_spare(&self, size: u64) -> io::Result<(Arc<dyn DiskFile>, u64)> {
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
    fn refill_spare(&self, st: &mut State) {
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
    fn install_segment(
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

    fn apply_truncate(&self, st: &mut State, last: Option<u64>) -> io::Result<()> {
        let keep = match last {
            None => 0,
            Some(l) => (l + 1).saturating_sub(st.first).min(st.locs.len() as u64),
        };
        st.locs.truncate(keep as usize);
        st.last_log_id = match st.locs.back() {
            None => None,
            Some(&loc) => Some(read_entry(&*segment_of(st, loc.seq).file, loc)?.log_id()),
        };
        Ok(())
    }

    /// Replays segment `seq` into `st`; `last` is whether it is the last segment (the only
    /// place a torn write can be: TornTailOnly).
    fn replay_segment(&self, st: &mut State, seq: u64, last: bool) -> io::Result<()> {
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
                    let record: Record = super::codec::decode(payload).map_err(|e| {
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
                    let after = valid_record_after(&buf, off + ALIGN);
                    if after != Some(false) || (why.is_some() && !last) {
                        let why = why.unwrap_or_else(|| "zero fill followed by records".into());
                        return Err(data_error(format!(
                            "corrupt raft log record in {} at byte offset {off}: {why}{}; \
                             refusing to start (records follow it, so it is not a torn write \
                             at the tail)",
                            path.display(),
                            if after.is_none() {
                                " (scan budget spent)"
                            } else {
                                ""
                            },
                        )));
                    }
                    if let Some(why) = why {
                        // TornTailOnly: cut it off, durably, and keep the preallocation.
                        tracing::warn!(
                            file = %path.display(),
                            offset = off,
                            reason = %why,
                            "raft log: torn write at the tail of the last segment (never \
                             acknowledged); cutting it off"
                        );
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

    fn replay_record(
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
        }
        Ok(())
    }

    /// The sync worker: takes every queued job, syncs the last segment once, completes the
    /// jobs in order (DurableBeforeAck, group commit). While the disk is full it retries the
    /// spare every [`DISK_FULL_RETRY`].
    fn sync_worker(self: Arc<Self>, rx: mpsc::Receiver<SyncJob>) {
        let mut batch: Vec<SyncJob> = Vec::new();
        let mut syncs = 0u64;
        loop {
            match rx.recv_timeout(DISK_FULL_RETRY) {
                Ok(job) => batch.push(job),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if self.disk_full.load(Ordering::Acquire)
                        && !self.failed.load(Ordering::Acquire)
                    {
                        let mut st = self.state.lock().expect("wal state lock");
                        self.refill_spare(&mut st);
                    }
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
            while let Ok(job) = rx.try_recv() {
                batch.push(job);
            }
            syncs += 1;
            let started = Instant::now();
            let file = {
                let st = self.state.lock().expect("wal state lock");
                st.segments.back().map(|s| s.file.clone())
            };
            let result = if let Err(e) = self.check_writable() {
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
                    let msg = e.to_string();
                    for job in batch.drain(..) {
                        (job.done)(Err(io::Error::other(msg.clone())));
                    }
                }
            }
        }
    }
}
