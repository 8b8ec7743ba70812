//! The Raft log and vote, in their own sled database, with group commit.
//!
//! Owns `<data_dir>/raft-log` and nothing else; knows nothing of the keyspace.
//!
//! # On-disk layout (one `sled::Db`, two trees)
//!
//! ```text
//! tree "log"   key: index as u64 big-endian (8 bytes)     value: FORMAT_VERSION ++ postcard(Entry)
//! tree "meta"  key: b"vote"                               value: FORMAT_VERSION ++ postcard(Vote)
//!              key: b"committed"                          value: FORMAT_VERSION ++ postcard(Option<LogId>)
//!              key: b"last_purged"                        value: FORMAT_VERSION ++ postcard(LogId)
//! ```
//!
//! OrderedKeys: indexes are big-endian, so sled's byte order is log order and the last key is
//! the last entry.
//!
//! # Invariants
//!
//! - **DurableBeforeAck.** sled does not fsync on insert. `append` inserts the entries (so a
//!   reader sees them at once) and hands the `IOFlushed` callback to the flusher task, which
//!   calls it only after a `flush_async()` that started after the insert has returned. One flush
//!   covers every append queued while the previous one ran (group commit), and callbacks are
//!   completed in submission order. `save_vote` flushes before it returns.
//! - **FailStop.** After a failed flush the store refuses every later write and reports the
//!   error to openraft, which stops the node: it never acknowledges what it could not persist.
//! - **NoHoles.** `truncate_after` removes entries from the end backwards and `purge` records
//!   `last_purged` before removing entries from the front, so a crash at any point leaves a
//!   contiguous log.

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::OptionalSend;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::mpsc;

use super::typ::{Entry, LogId, Vote};
use super::TypeConfig;
use crate::metrics::{Histogram, BATCH_BUCKETS, LATENCY_BUCKETS};
use crate::store::FORMAT_VERSION;

const KEY_VOTE: &[u8] = b"vote";
const KEY_COMMITTED: &[u8] = b"committed";
const KEY_LAST_PURGED: &[u8] = b"last_purged";

/// Counters of the group commit, reported by `INFO` (`raft_log_flushes`, ...) and `/metrics`.
#[derive(Debug)]
pub struct FlushStats {
    /// Flushes that acknowledged at least one append.
    pub flushes: AtomicU64,
    /// Entries acknowledged by those flushes.
    pub entries: AtomicU64,
    /// Append calls acknowledged by those flushes.
    pub appends: AtomicU64,
    /// How long each successful `flush_async` took (`redraft_log_flush_duration_seconds`).
    pub flush_seconds: Histogram,
    /// Entries acknowledged per successful flush (`redraft_log_flush_entries`).
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

/// A queued acknowledgement: completed by the flusher after the next flush.
struct FlushJob {
    entries: u64,
    callback: IOFlushed<TypeConfig>,
}

/// The sled-backed log store. Cheap to clone: clones share one database, and a clone is also
/// the log reader.
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: sled::Db,
    log: sled::Tree,
    meta: sled::Tree,
    /// Set after a failed flush (FailStop); never cleared.
    failed: Arc<AtomicBool>,
    /// To the flusher task. Unbounded because every job is a small callback of an append that
    /// openraft already bounds by its own IO pipeline depth.
    flush_tx: mpsc::UnboundedSender<FlushJob>,
    stats: Arc<FlushStats>,
}

impl LogStore {
    /// Opens (or creates) the log database under `dir` and starts its flusher task.
    ///
    /// Must be called inside a tokio runtime.
    pub fn open(dir: &Path) -> io::Result<Self> {
        let db = sled::Config::new()
            .path(dir)
            // The log is small and hot; flushing is ours to decide (DurableBeforeAck).
            .flush_every_ms(None)
            .cache_capacity(64 * 1024 * 1024)
            .open()
            .map_err(sled_err)?;
        let log = db.open_tree("log").map_err(sled_err)?;
        let meta = db.open_tree("meta").map_err(sled_err)?;
        let failed = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(FlushStats::default());
        let (flush_tx, flush_rx) = mpsc::unbounded_channel();
        tokio::spawn(flusher(db.clone(), flush_rx, failed.clone(), stats.clone()));
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                log,
                meta,
                failed,
                flush_tx,
                stats,
            }),
        })
    }

    /// The group-commit counters.
    pub fn flush_stats(&self) -> Arc<FlushStats> {
        self.inner.stats.clone()
    }

    /// Marks everything up to `log_id` as purged and flushes: a restored data dir's log starts
    /// after the restored snapshot (`backup.rs`).
    pub async fn restore_purged(&mut self, log_id: LogId) -> io::Result<()> {
        RaftLogStorage::purge(self, log_id).await?;
        self.flush_now().await
    }

    fn check_writable(&self) -> io::Result<()> {
        if self.inner.failed.load(Ordering::Acquire) {
            return Err(io::Error::other(
                "raft log store refused the write: an earlier flush failed (fail-stop)",
            ));
        }
        Ok(())
    }

    async fn flush_now(&self) -> io::Result<()> {
        if let Err(e) = self.inner.db.flush_async().await {
            self.inner.failed.store(true, Ordering::Release);
            tracing::error!(error = %e, "raft log flush failed; the node stops accepting writes");
            return Err(sled_err(e));
        }
        Ok(())
    }

    fn get_meta<T: DeserializeOwned>(&self, key: &[u8]) -> io::Result<Option<T>> {
        match self.inner.meta.get(key).map_err(sled_err)? {
            None => Ok(None),
            Some(v) => decode(&v).map(Some),
        }
    }

    fn last_entry_log_id(&self) -> io::Result<Option<LogId>> {
        match self.inner.log.last().map_err(sled_err)? {
            None => Ok(None),
            Some((_, v)) => Ok(Some(decode::<Entry>(&v)?.log_id())),
        }
    }
}

/// Test-only failpoint: with `REDRAFT_FAILPOINTS=log_flush_fail_after=N` in the environment,
/// every log flush after the first N fails, as a dying disk would. Read once per process.
fn flush_fail_after() -> Option<u64> {
    static AFTER: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    *AFTER.get_or_init(|| {
        let spec = std::env::var("REDRAFT_FAILPOINTS").ok()?;
        let n = spec
            .split(',')
            .find_map(|kv| kv.strip_prefix("log_flush_fail_after="))?;
        let n = n.parse().ok()?;
        tracing::warn!(after = n, "failpoint armed: log flushes will fail");
        Some(n)
    })
}

/// Completes queued acknowledgements, one flush per batch (group commit).
async fn flusher(
    db: sled::Db,
    mut rx: mpsc::UnboundedReceiver<FlushJob>,
    failed: Arc<AtomicBool>,
    stats: Arc<FlushStats>,
) {
    let mut batch = Vec::new();
    let mut done = 0u64;
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while let Ok(job) = rx.try_recv() {
            batch.push(job);
        }
        done += 1;
        let started = std::time::Instant::now();
        let result = if failed.load(Ordering::Acquire) {
            Err("an earlier flush failed".to_string())
        } else if flush_fail_after().is_some_and(|n| done > n) {
            Err("injected by failpoint log_flush_fail_after".to_string())
        } else {
            db.flush_async()
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        match result {
            Ok(()) => {
                stats.flushes.fetch_add(1, Ordering::Relaxed);
                stats
                    .appends
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                let n: u64 = batch.iter().map(|j| j.entries).sum();
                stats.entries.fetch_add(n, Ordering::Relaxed);
                stats.flush_seconds.observe_duration(started.elapsed());
                stats.entries_per_flush.observe(n as f64);
                for job in batch.drain(..) {
                    job.callback.io_completed(Ok(()));
                }
            }
            Err(msg) => {
                failed.store(true, Ordering::Release);
                tracing::error!(error = %msg, "raft log flush failed; refusing all further writes");
                for job in batch.drain(..) {
                    job.callback.io_completed(Err(io::Error::other(format!(
                        "raft log flush failed: {msg}"
                    ))));
                }
            }
        }
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, io::Error> {
        let start = match range.start_bound() {
            Bound::Included(i) => Bound::Included(i.to_be_bytes()),
            Bound::Excluded(i) => Bound::Excluded(i.to_be_bytes()),
            Bound::Unbounded => Bound::Unbounded,
        };
        let end = match range.end_bound() {
            Bound::Included(i) => Bound::Included(i.to_be_bytes()),
            Bound::Excluded(i) => Bound::Excluded(i.to_be_bytes()),
            Bound::Unbounded => Bound::Unbounded,
        };
        let mut out = Vec::new();
        for kv in self.inner.log.range::<[u8; 8], _>((start, end)) {
            let (_, v) = kv.map_err(sled_err)?;
            out.push(decode::<Entry>(&v)?);
        }
        Ok(out)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, io::Error> {
        self.get_meta(KEY_VOTE)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, io::Error> {
        let last_purged_log_id: Option<LogId> = self.get_meta(KEY_LAST_PURGED)?;
        let last_log_id = self.last_entry_log_id()?.or(last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), io::Error> {
        self.check_writable()?;
        self.inner
            .meta
            .insert(KEY_VOTE, encode(vote)?)
            .map_err(sled_err)?;
        // DurableBeforeAck: the vote is on disk before this returns.
        self.flush_now().await
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), io::Error> {
        self.check_writable()?;
        // Not flushed here: the next log flush carries it. A committed index that is older
        // after a crash only means re-applying less on restart; the entries are durable.
        self.inner
            .meta
            .insert(KEY_COMMITTED, encode(&committed)?)
            .map_err(sled_err)?;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, io::Error> {
        Ok(self.get_meta::<Option<LogId>>(KEY_COMMITTED)?.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<TypeConfig>) -> io::Result<()>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        self.check_writable()?;
        let mut batch = sled::Batch::default();
        let mut n = 0u64;
        for entry in entries {
            batch.insert(&entry.index().to_be_bytes(), encode(&entry)?);
            n += 1;
        }
        // Readable as soon as this returns (the batch is applied atomically in memory).
        self.inner.log.apply_batch(batch).map_err(sled_err)?;
        self.inner
            .flush_tx
            .send(FlushJob {
                entries: n,
                callback,
            })
            .map_err(|_| io::Error::other("raft log flusher stopped"))?;
        Ok(())
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), io::Error> {
        self.check_writable()?;
        let from = last_log_id.map(|l| l.index() + 1).unwrap_or(0);
        // NoHoles: remove from the end backwards.
        let keys: Vec<_> = self
            .inner
            .log
            .range(from.to_be_bytes()..)
            .keys()
            .collect::<Result<_, _>>()
            .map_err(sled_err)?;
        for k in keys.into_iter().rev() {
            self.inner.log.remove(k).map_err(sled_err)?;
        }
        self.flush_now().await
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), io::Error> {
        self.check_writable()?;
        // NoHoles: record the purge point first, then drop entries from the front.
        self.inner
            .meta
            .insert(KEY_LAST_PURGED, encode(&log_id)?)
            .map_err(sled_err)?;
        let keys: Vec<_> = self
            .inner
            .log
            .range(..=log_id.index().to_be_bytes())
            .keys()
            .collect::<Result<_, _>>()
            .map_err(sled_err)?;
        for k in keys {
            self.inner.log.remove(k).map_err(sled_err)?;
        }
        Ok(())
    }
}

/// Encodes a stored value: the format-version byte, then postcard.
pub(crate) fn encode<T: Serialize>(v: &T) -> io::Result<Vec<u8>> {
    postcard::to_extend(v, vec![FORMAT_VERSION])
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Decodes a stored value written by [`encode`].
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> io::Result<T> {
    match bytes.split_first() {
        Some((&FORMAT_VERSION, rest)) => postcard::from_bytes(rest).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("corrupt raft log record: {e}"),
            )
        }),
        Some((v, _)) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("raft log record has format version {v}, this build reads {FORMAT_VERSION}"),
        )),
        None => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "empty raft log record",
        )),
    }
}

fn sled_err(e: sled::Error) -> io::Error {
    match e {
        sled::Error::Io(e) => e,
        other => io::Error::other(other),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use openraft::entry::RaftEntry;
    use std::time::Duration;

    use openraft::type_config::TypeConfigExt;
    use openraft::vote::RaftLeaderId;

    use super::*;
    use crate::raft::PeerNode;

    fn entry(term: u64, index: u64) -> Entry {
        let leader = openraft::impls::leader_id_adv::LeaderId::<u64, u64>::new(term, 1);
        Entry::new_blank(openraft::LogId::new(leader.to_committed(), index))
    }

    async fn append_and_wait(store: &mut LogStore, entries: Vec<Entry>) -> io::Result<()> {
        let (tx, rx) = TypeConfig::oneshot();
        store.append(entries, IOFlushed::signal(tx)).await?;
        rx.await.map_err(io::Error::other)?
    }

    /// DurableBeforeAck: an acknowledged append survives closing and reopening the database.
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
        // The flusher holds the last handle until its channel closes.
        let mut reopened = None;
        for _ in 0..100 {
            match LogStore::open(dir.path()) {
                Ok(s) => {
                    reopened = Some(s);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        let mut s = reopened.expect("log store reopens once the old handles are gone");
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

    /// FailStop: once a flush has failed, every later write is refused.
    #[tokio::test]
    async fn refuses_writes_after_a_failed_flush() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = LogStore::open(dir.path()).unwrap();
        append_and_wait(&mut s, vec![entry(1, 1)]).await.unwrap();
        s.inner.failed.store(true, Ordering::Release);
        let (tx, _rx) = TypeConfig::oneshot();
        assert!(s
            .append([entry(1, 2)], IOFlushed::signal(tx))
            .await
            .is_err());
        assert!(s.save_vote(&Vote::new(2, 1)).await.is_err());
        assert!(s.truncate_after(None).await.is_err());
        // Nothing was written by the refused append.
        assert_eq!(s.try_get_log_entries(2..3).await.unwrap().len(), 0);
    }

    /// Records from another format version or corrupt bytes are errors, not panics.
    #[test]
    fn decode_rejects_foreign_and_corrupt_records() {
        let good = encode(&BTreeMap::<u64, PeerNode>::new()).unwrap();
        assert!(decode::<BTreeMap<u64, PeerNode>>(&good).is_ok());
        assert!(decode::<Entry>(&[]).is_err());
        assert!(decode::<Entry>(&[FORMAT_VERSION + 1, 0, 0]).is_err());
        assert!(decode::<Entry>(&[FORMAT_VERSION, 0xff, 0xff, 0xff]).is_err());
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
