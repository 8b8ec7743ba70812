//! The write-ahead log that holds the Raft log, the vote, the committed log id and the purge
//! point: segmented append-only files, every record checksummed, every acknowledgement after an
//! `fdatasync` (group commit). Modelled on etcd's `server/storage/wal` and HashiCorp's
//! `raft-wal`.
//!
//! Owns one directory (`<data_dir>/raft-log/wal/`) through a [`Disk`]; knows the openraft types
//! it stores and nothing of the keyspace. `log_store.rs` adapts it to openraft's traits.
//!
//! This file holds the WAL's state and its API; `record.rs` the record framing, `segment.rs`
//! the segment files, the spare and the housekeeping thread, `replay.rs` opening (replay, torn
//! tail), `sync.rs` the sync worker (group commit), a follower's sync on its own thread
//! (FollowerSyncsInline) and the group commit's counters, `write.rs` the write and sync
//! primitives with fail-stop, `disk.rs` the file system seam.
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
//! - **CommittedRidesNextSync.** `save_committed` keeps the committed id in memory and
//!   returns without a write or a sync of its own: its record is written ahead of the next
//!   record (in one `pwrite` with the next append's entries), or by the next group commit
//!   before it syncs, whichever comes first; that group commit, whatever queued it (an
//!   append, a vote, a reader asking with [`Wal::sync`]), makes it durable, and the sync
//!   worker tells the hook set with [`Wal::on_synced`] which committed id each sync covered
//!   (the log store raises the commit gate there; a read's reply waits until the gate covers
//!   what it read: DurableReads in `raft/commit_gate.rs`). Under write load the committed id costs no sync of its own.
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
//!   and hands the segments to the housekeeping thread, which deletes them (openraft calls
//!   `purge` from its core task after every snapshot, and waits for it). A purge lost in a
//!   crash leaves more log, never a hole: openraft only asks that a purge leave no hole, and
//!   the snapshot behind it is durable first (SnapshotBeforePurge in `state_machine/`).
//! - **ReplayedIsDurable.** Open syncs the last segment of an existing log: after a process
//!   crash (kill -9) replay reads records that were written but never synced (the page cache
//!   kept them), and the node acts on them (it reports the entries to a leader, applies up to
//!   the committed id); a power cut after the restart must not take them back.
//! - **TornTailOnly.** At open, a bad record at the end of the last segment with nothing valid
//!   after it is a torn write: it is cut off and the cut synced. A bad record anywhere else is
//!   corruption: open fails naming the file and byte offset (but see UnsyncedTailCut). Nothing
//!   is dropped silently.
//! - **SyncedMarks.** Once group commits have synced a segment [`write::SYNCED_MARK_EVERY`]
//!   (4 KiB) past the last mark, the next write into it begins with a [`Record::Synced`] mark:
//!   how far into the segment the last sync reached. A mark is never ahead of a sync that
//!   completed, and lags the last one by at most those 4 KiB and the records it covered; it
//!   costs one 16-byte record per 4 KiB of log at most.
//! - **UnsyncedTailCut.** The disk may keep an unsynced write and lose an earlier one in a
//!   power cut (its write cache and the kernel's writeback keep no order between syncs), so the
//!   last segment can read back as records, a hole, and records again. A sync makes every byte
//!   written before it durable, so a hole means no sync covered it, nor anything after it:
//!   none of it was acknowledged. At open a bad record in the last segment followed by valid
//!   records is therefore cut off with everything after it when (a) it lies past the furthest
//!   sync the marks after it report (so damage to what a sync covered before the last mark is
//!   refused), and (b) its span holds a whole sector of zeros, what a
//!   lost write leaves (the unwritten part of a segment is zeros: WrittenAhead). Otherwise it
//!   is corruption, refused as before: damage a sync had covered, or bytes a lost write could
//!   not leave. (etcd's WAL cuts at any torn-looking record of its last file, with neither
//!   check.)
//! - **FailStop.** After a failed write or sync, every later write is refused with the error;
//!   openraft stops the node. Nothing that could not be persisted is ever acknowledged.
//! - **SpareAhead.** The next segment is preallocated before it is needed, so a write into the
//!   last segment cannot hit ENOSPC. When the spare cannot be made (disk full) the WAL raises
//!   [`Wal::disk_full`] instead of failing; the write path refuses client writes while it is up,
//!   and the housekeeping thread retries every second and lowers it once the spare exists.
//! - **SpareOffTheWritePath.** The spare is made, and purged segments deleted, by a
//!   housekeeping thread of the WAL's own (`raft-wal-spare`), never under the state lock: a
//!   roll only takes the spare that is ready (waiting for it only if it is still being made,
//!   and making one itself only if there is none). Making one writes megabytes of zeros and
//!   syncs them (WrittenAhead), 5-30 ms under load here; done inside a roll, every append and
//!   every group commit of the node waited for it, once per segment.
//! - **WrittenAhead.** On the real disk the spare's zeros are written and synced when it is
//!   made (`disk.rs`), not only fallocated, so a group commit's `fdatasync` writes data only,
//!   never the inode of an extent it converted: half the device writes per commit.

pub mod disk;
mod read;
mod record;
mod replay;
mod segment;
mod sync;
#[cfg(test)]
mod tests;
mod write;

use std::collections::VecDeque;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use openraft::entry::RaftEntry;

use self::disk::{Disk, DiskFile};
use self::read::read_entry;
pub use self::read::Located;
use self::record::*;
use self::segment::{head_bytes, Chores, Spare};
pub use self::sync::FlushStats;
use super::typ::{Entry, LogId, Vote};
use crate::metrics::{Histogram, BATCH_BUCKETS, LATENCY_BUCKETS};

/// The first 8 bytes of every segment.
pub const MAGIC: &[u8; 8] = b"RDFTWAL1";
/// The name of the preallocated next segment.
const SPARE: &str = "spare.tmp";
/// How often the housekeeping thread retries making the spare while the disk is full.
const DISK_FULL_RETRY: Duration = Duration::from_secs(1);
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
    /// `false`: the commit gate rises when the committed record is written, before any sync
    /// (failpoint `committed_sync_off`: read replies then no longer wait for it; only for
    /// measuring what that wait costs, `benches/committed_sync.sh`).
    pub committed_sync: bool,
    /// Failpoint `committed_gate_delay_ms=N`: the gate rises N ms after the sync that covers a
    /// committed record (tests: shows which replies wait for it). 0: at once.
    pub committed_gate_delay_ms: u64,
    /// FollowerSyncsInline (`sync.rs`) on a follower's appends; off with failpoint
    /// `follower_sync_inline_off` (benchmarks).
    pub follower_sync_inline: bool,
}

impl Default for WalOptions {
    fn default() -> Self {
        Self {
            segment_bytes: 8 << 20,
            sync: true,
            fail_sync_after: None,
            committed_sync: true,
            committed_gate_delay_ms: 0,
            follower_sync_inline: true,
        }
    }
}

/// Called once with the outcome of the sync that covers a write.
pub type Done = Box<dyn FnOnce(io::Result<()>) + Send>;

/// Told after every group-commit sync what it made durable, or that it failed
/// (CommittedRidesNextSync, DurableLastKnown; [`Wal::on_synced`]).
pub type SyncedHook = Box<dyn Fn(Result<Synced, &io::Error>) + Send + Sync>;

/// What one group-commit sync made durable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Synced {
    /// The committed id written before the sync began.
    pub committed: Option<LogId>,
    /// The last log id durable after it ([`Wal::durable`]).
    pub durable: Option<LogId>,
}

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
    /// Live entries: `locs[i]` holds index `first + i`.
    locs: VecDeque<Loc>,
    first: u64,
    last_log_id: Option<LogId>,
    /// The last log id a sync has covered, lowered by a truncation below it (DurableLastKnown).
    durable: Option<LogId>,
    /// Truncations so far: a sync that began before one does not raise `durable`.
    truncations: u64,
    vote: Option<Vote>,
    committed: Option<LogId>,
    /// `committed` is not in the log yet: the next record written, or the next group commit,
    /// writes it first (CommittedRidesNextSync).
    committed_unwritten: bool,
    purged: Option<LogId>,
    /// Whether replay has met an entry yet (at open only).
    replayed_entry: bool,
    /// The write buffer records are framed in, reused (WriteBufferReused, `write.rs`).
    wbuf: Vec<u8>,
    /// `(segment, offset)`: the furthest a completed group-commit sync has covered, and the
    /// furthest a [`Record::Synced`] mark in the log says (SyncedMarks).
    synced_to: (u64, u64),
    synced_marked: (u64, u64),
}

impl State {
    fn empty() -> Self {
        Self {
            segments: VecDeque::new(),
            write_off: 0,
            cap: 0,
            locs: VecDeque::new(),
            first: 0,
            last_log_id: None,
            durable: None,
            truncations: 0,
            vote: None,
            committed: None,
            committed_unwritten: false,
            purged: None,
            replayed_entry: false,
            wbuf: Vec::new(),
            synced_to: (0, 0),
            synced_marked: (0, 0),
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
    /// The housekeeping thread's work (SpareOffTheWritePath). Lock order: `state`, then this.
    chores: Mutex<Chores>,
    chores_changed: Condvar,
    /// Told what each sync made durable of the committed id (CommittedRidesNextSync).
    on_synced: std::sync::OnceLock<SyncedHook>,
    /// Held by whoever syncs: the worker, or an appender (FollowerSyncsInline, `sync.rs`).
    syncer: Mutex<()>,
    /// Jobs queued to the worker and not yet completed.
    queued: AtomicUsize,
    /// How long the last sync took and when it ended (µs since `opened`); sync attempts made.
    last_sync_us: AtomicU64,
    last_sync_end_us: AtomicU64,
    opened: Instant,
    sync_attempts: AtomicU64,
}

/// The write-ahead log. Dropping the last handle stops its sync worker.
pub struct Wal {
    shared: Arc<Shared>,
    /// To the sync worker. Held here, not in `Shared`, so the worker ends when the WAL is
    /// dropped. Unbounded: each job is the callback of a write openraft already bounds.
    tx: Mutex<mpsc::Sender<SyncJob>>,
    /// The housekeeping thread, joined on drop (it may be writing `spare.tmp`).
    housekeeper: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Wal {
    fn drop(&mut self) {
        // A poisoned lock (the thread panicked) must not turn this drop into a second panic.
        self.shared
            .chores
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .stop = true;
        self.shared.chores_changed.notify_all();
        if let Some(h) = self.housekeeper.take() {
            let _ = h.join();
        }
    }
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
            chores: Mutex::new(Chores {
                spare: Spare::Missing,
                retry_at: None,
                dead: Vec::new(),
                stop: false,
            }),
            on_synced: std::sync::OnceLock::new(),
            syncer: Mutex::new(()),
            queued: AtomicUsize::new(0),
            last_sync_us: AtomicU64::new(0),
            last_sync_end_us: AtomicU64::new(0),
            opened: Instant::now(),
            sync_attempts: AtomicU64::new(0),
            chores_changed: Condvar::new(),
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
        } else {
            // ReplayedIsDurable: after a process crash the page cache still holds records
            // that were never synced; what replay read is reported to openraft (entries, vote,
            // committed id) and acted on, so it is made durable before anything else.
            shared.sync_last(&st)?;
        }
        st.durable = st.last_log_id;
        // The first spare is made here, so an opened log is ready to roll at once.
        shared.make_spare_now();
        *shared.state.lock().expect("wal state lock") = st;
        let (tx, rx) = mpsc::channel();
        let worker = shared.clone();
        std::thread::Builder::new()
            .name("raft-wal-sync".into())
            .spawn(move || worker.sync_worker(rx))?;
        let keeper = shared.clone();
        let housekeeper = std::thread::Builder::new()
            .name("raft-wal-spare".into())
            .spawn(move || keeper.housekeeping())?;
        Ok(Wal {
            shared,
            tx: Mutex::new(tx),
            housekeeper: Some(housekeeper),
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
    /// makes them durable (DurableBeforeAck). With `here`, that sync may run on the calling
    /// thread before this returns (FollowerSyncsInline, `sync.rs`).
    pub fn append(
        &self,
        entries: impl IntoIterator<Item = Entry>,
        done: Done,
        here: bool,
    ) -> io::Result<()> {
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
        let job = SyncJob { entries: n, done };
        let (st, job) = if here {
            match self.shared.sync_here(st, job) {
                Some(back) => back,
                None => return Ok(()),
            }
        } else {
            (st, job)
        };
        self.queue_job(&st, job)
    }

    /// Records `vote`, then calls `done` after the sync that makes it durable.
    pub fn save_vote(&self, vote: &Vote, done: Done) -> io::Result<()> {
        let mut st = self.shared.lock_writable()?;
        self.shared
            .write_records(&mut st, vec![Record::Vote(*vote)])?;
        st.vote = Some(*vote);
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
            if r.is_ok() && !dead.is_empty() {
                // SpareOffTheWritePath: the sync worker goes on with the next group commit.
                shared
                    .chores
                    .lock()
                    .expect("wal chores lock")
                    .dead
                    .extend(dead);
                shared.chores_changed.notify_all();
            }
        });
        self.queue(&st, 0, done)
    }

    pub fn vote(&self) -> Option<Vote> {
        self.shared.state.lock().expect("lock").vote
    }

    pub fn committed(&self) -> Option<LogId> {
        self.shared.state.lock().expect("lock").committed
    }

    /// The last log id a sync has made durable (DurableLastKnown): every entry up to it is on
    /// the disk, and is still this log's (a truncation below it lowers it).
    pub fn durable(&self) -> Option<LogId> {
        self.shared.state.lock().expect("lock").durable
    }

    /// `(last purged, last log id)`: the last log id is the greater of the last entry's and
    /// the purge point, so a crash between a purge and the entries after it still reads as an
    /// ordered log to openraft.
    pub fn log_state(&self) -> (Option<LogId>, Option<LogId>) {
        let st = self.shared.state.lock().expect("lock");
        (st.purged, st.last_log_id.max(st.purged))
    }
}

fn segment_of(st: &State, seq: u64) -> &Segment {
    &st.segments[(seq - st.segments[0].seq) as usize]
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
