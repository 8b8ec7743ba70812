//! The openraft state machine: an adapter around the deterministic [`Store`], plus snapshots.
//!
//! Owns `<data_dir>/snapshot/` and the in-memory keyspace. It decides nothing itself: every
//! change comes from a committed entry through [`Store::apply`] (DeterministicApply).
//!
//! # Persistence
//!
//! The keyspace lives in memory; what is durable is the Raft log (see `log_store.rs`) and the
//! last snapshot. On restart openraft installs the last snapshot from
//! [`RaftStateMachine::get_current_snapshot`] and re-applies the log from there up to the saved
//! committed index, so a node restored from snapshot + log answers every read as before.
//!
//! - **SnapshotBeforePurge.** A snapshot is fsynced (temp file, fsync, rename, fsync dir) before
//!   `build_snapshot` or `install_snapshot` returns; openraft purges log entries only after
//!   that, so every purged entry is covered by a durable snapshot.
//! - **OneSnapshotWriter.** openraft builds snapshots in a task of their own, concurrently with
//!   installs. Every writer has a temp file of its own; making one current (the newer-than
//!   check, the rename, the fsync of the directory) holds one lock (`writer`).
//! - **NewerSnapshotOnly.** A snapshot replaces the current one only if its `last_log_id` is
//!   greater. A build that captured its state before a newer install finished is dropped (its
//!   meta, returned to openraft, claims only what it covers, which the file on disk covers
//!   too, so openraft never purges past the snapshot on disk).
//! - **ApplyNeverWaitsForSnapshot.** A build clones the store under the read lock (O(1): the
//!   store's maps are persistent, CheapClone in `store/kv.rs`), drops the lock, and encodes the
//!   clone straight into its temp file on a thread of its own. Apply and reads go on meanwhile.
//! - **SnapshotYields.** That thread runs at a lower CPU priority (nice 10) than the runtime's
//!   workers and the log's sync thread, and writes the file paced (PacedWrites in
//!   `fsutil.rs`), so that building a snapshot neither takes a core from the write path nor
//!   floods the disk queue the log's `fdatasync` waits in. Installing a received snapshot
//!   copies it the same way.
//!
//! Snapshot file `current.snap`:
//!
//! ```text
//! u32 big-endian n ++ [FORMAT_VERSION ++ postcard(SnapshotMeta)] (n bytes) ++ Store::to_snapshot()
//! ```
//!
//! The store bytes ([`Store::to_snapshot`], which carry their own version byte) hold the whole
//! history window, the compact revision, the dedup table and every live key's deadline; the
//! meta carries the last applied log id and the membership. openraft's snapshot data is a
//! [`SnapshotFile`]: an open handle on the store bytes of such a file (or of a transfer's temp
//! file), never the bytes in memory; `network.rs` sends it to followers in chunks.

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};

use futures::{Stream, StreamExt};
use openraft::entry::RaftEntry;
use openraft::storage::{EntryResponder, RaftSnapshotBuilder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend};
use tokio::sync::{broadcast, watch, Notify};

use super::codec::{decode, encode};
use super::typ::{LogId, Snapshot, SnapshotMeta, StoredMembership};
use super::TypeConfig;
use crate::fsutil::PacedFile;
use crate::metrics::NodeMetrics;
use crate::store::{Applied, Response, Store};

const SNAPSHOT_FILE: &str = "current.snap";
/// The snapshot writer's buffer.
const WRITE_BUFFER: usize = 64 << 10;
/// The CPU niceness of the thread that encodes and writes a snapshot (SnapshotYields).
const SNAPSHOT_NICE: libc::c_int = 10;

/// A snapshot's store bytes in a file: what openraft holds, sends and installs.
///
/// The handle stays valid when a newer snapshot is renamed over the file's path (the old
/// inode lives while it is open), so a transfer in progress is never cut by a build.
pub struct SnapshotFile {
    file: File,
    /// Where the store bytes start in `file`.
    offset: u64,
    /// How many store bytes there are.
    len: u64,
    /// The store, already decoded and checked from these bytes by whoever received them
    /// (`rpc.rs` checks a transfer before it hands it to openraft), so install decodes once.
    decoded: Option<Box<Store>>,
    /// A transfer's temp file, removed when this is dropped.
    temp: Option<PathBuf>,
}

impl std::fmt::Debug for SnapshotFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotFile")
            .field("offset", &self.offset)
            .field("len", &self.len)
            .field("decoded", &self.decoded.is_some())
            .field("temp", &self.temp)
            .finish()
    }
}

impl Drop for SnapshotFile {
    fn drop(&mut self) {
        if let Some(path) = &self.temp {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl SnapshotFile {
    /// A received transfer: the store bytes are the whole of `file` (a temp file at `path`,
    /// removed on drop), already decoded into `store`.
    pub fn received(file: File, path: PathBuf, len: u64, store: Store) -> Self {
        Self {
            file,
            offset: 0,
            len,
            decoded: Some(Box::new(store)),
            temp: Some(path),
        }
    }

    /// How many store bytes the snapshot has.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the snapshot has no store bytes (never true of a valid one).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A reader of the store bytes, from their start (a second handle on the same file; read
    /// at most [`SnapshotFile::len`] bytes of it).
    pub fn reader(&self) -> io::Result<io::Take<File>> {
        let mut f = self.file.try_clone()?;
        f.seek(SeekFrom::Start(self.offset))?;
        Ok(f.take(self.len))
    }

    /// Reads and checks the store (blocking).
    fn load(&mut self) -> io::Result<Store> {
        if let Some(store) = self.decoded.take() {
            return Ok(*store);
        }
        decode_mapped(&self.file, self.offset, self.len).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("cannot install snapshot: {e}"),
            )
        })
    }
}

/// Decodes and checks the store bytes at `offset..offset + len` of `file` through a read-only
/// memory map: the encoded bytes stay in the page cache (reclaimable), never copied into the
/// heap next to the decoded store.
pub fn decode_mapped(file: &File, offset: u64, len: u64) -> Result<Store, String> {
    let file_len = file.metadata().map_err(|e| e.to_string())?.len();
    if offset.checked_add(len) != Some(file_len) {
        return Err(format!(
            "snapshot file is {file_len} bytes, expected {offset} + {len}"
        ));
    }
    let len = usize::try_from(len).map_err(|_| "snapshot larger than the address space")?;
    if len == 0 {
        return Store::from_snapshot(&[]).map_err(|e| e.to_string());
    }
    // SAFETY: the map is read-only and the file is one of our snapshot or transfer files,
    // which are written once (temp file, fsync) and never modified or truncated afterwards
    // (a newer snapshot is a new file renamed over the path; this handle keeps the old
    // inode). Nothing else writes to the snapshot dir while the node runs.
    let map = unsafe {
        memmap2::MmapOptions::new()
            .offset(offset)
            .len(len)
            .map(file)
    }
    .map_err(|e| format!("cannot map the snapshot: {e}"))?;
    Store::from_snapshot(&map).map_err(|e| e.to_string())
}

/// Everything the state machine holds in memory.
#[derive(Debug, Default)]
pub struct SmState {
    pub store: Store,
    pub last_applied: Option<LogId>,
    pub last_membership: StoredMembership,
}

/// The state machine handle. Clones share one state; a clone is also the snapshot builder.
#[derive(Clone)]
pub struct StateMachineStore {
    /// Read-mostly: sessions take the read lock to answer reads, apply takes the write lock
    /// per entry, so a read waits at most for one entry's apply.
    state: Arc<RwLock<SmState>>,
    /// The meta of the current snapshot file. Changed only under `writer`, after the file is
    /// durable.
    current: Arc<Mutex<Option<SnapshotMeta>>>,
    /// Held while a snapshot becomes current (OneSnapshotWriter).
    writer: Arc<tokio::sync::Mutex<()>>,
    /// Numbers temp files, so no two writers ever share one.
    tmp_seq: Arc<AtomicU64>,
    dir: Arc<PathBuf>,
    /// Applied changes and keyspace notifications, in revision order, for the keyspace
    /// notifier on this node (best effort, as Redis's). Lagging receivers are told they
    /// lagged; apply never waits for them.
    events: broadcast::Sender<Arc<Applied>>,
    /// The store's revision after the last apply (or snapshot install): what the watch stream's
    /// blocked readers wait on before reading the new changes from the store's history. A
    /// `watch` channel holds one value whatever the number of waiters: nothing per watcher
    /// is buffered, and no watcher can lag or block apply.
    revision: Arc<watch::Sender<u64>>,
    /// Woken when an apply (or a snapshot install) makes the earliest deadline earlier, so the
    /// leader's expiry timer (`expiry.rs`) never sleeps past a deadline it has not seen.
    deadline_wake: Arc<Notify>,
    /// Snapshot counts and build durations (`/metrics`), shared with the node.
    metrics: Arc<NodeMetrics>,
    /// Test hook: pauses the next snapshot build right before it encodes.
    #[cfg(test)]
    build_pause: Arc<Mutex<Option<BuildPause>>>,
}

/// Pauses a snapshot build before its encode (tests only): `captured` is signalled, then the
/// build waits for `resume`.
#[cfg(test)]
struct BuildPause {
    captured: tokio::sync::oneshot::Sender<()>,
    resume: tokio::sync::oneshot::Receiver<()>,
}

impl StateMachineStore {
    /// Opens the state machine whose snapshots live under `dir`; checks the last snapshot
    /// file's header (openraft installs it on start) and removes temp files a crash left.
    pub fn open(dir: &Path) -> io::Result<Self> {
        // DirEntryDurable: a snapshot in a directory that vanishes at a power cut is no snapshot.
        crate::fsutil::create_dir_all_durable(dir)?;
        remove_temp_files(dir)?;
        let path = dir.join(SNAPSHOT_FILE);
        let current = match File::open(&path) {
            Ok(mut f) => {
                let (meta, _) = read_header(&mut f).map_err(|e| {
                    io::Error::new(e.kind(), format!("snapshot {}: {e}", path.display()))
                })?;
                Some(meta)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let (events, _) = broadcast::channel(1024);
        let (revision, _) = watch::channel(0);
        Ok(Self {
            state: Arc::new(RwLock::new(SmState::default())),
            current: Arc::new(Mutex::new(current)),
            writer: Arc::default(),
            tmp_seq: Arc::default(),
            dir: Arc::new(dir.to_path_buf()),
            events,
            revision: Arc::new(revision),
            deadline_wake: Arc::new(Notify::new()),
            metrics: Arc::default(),
            #[cfg(test)]
            build_pause: Arc::default(),
        })
    }

    /// The node's metric handles; the state machine records snapshot builds and installs.
    pub fn metrics(&self) -> Arc<NodeMetrics> {
        self.metrics.clone()
    }

    /// The directory of the snapshot files; a snapshot transfer is received into a temp file
    /// here (`rpc.rs`), so it costs disk, not memory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A new temp file path in the snapshot dir, unique in this process (removed on open).
    pub fn temp_path(&self, what: &str) -> PathBuf {
        let seq = self.tmp_seq.fetch_add(1, Ordering::Relaxed);
        self.dir.join(format!("{what}.{seq}.tmp"))
    }

    /// Read access to the applied state. Hold it briefly: apply waits for it.
    pub fn read(&self) -> RwLockReadGuard<'_, SmState> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Returns the notifier the expiry timer waits on: woken when the earliest deadline moves
    /// earlier.
    pub fn deadline_wake(&self) -> Arc<Notify> {
        self.deadline_wake.clone()
    }

    /// Subscribes to applied changes and their keyspace notifications.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Applied>> {
        self.events.subscribe()
    }

    /// Returns a receiver of the store's revision, changed after every apply that moved it.
    pub fn revision_watch(&self) -> watch::Receiver<u64> {
        self.revision.subscribe()
    }

    /// Publishes the store's current revision to the watch stream's waiters.
    fn publish_revision(&self) {
        let revision = self.read().store.revision();
        self.revision.send_if_modified(|r| {
            let changed = *r != revision;
            *r = revision;
            changed
        });
    }

    /// Writes a snapshot file for `meta` to a temp file of its own: the header, then the
    /// store bytes `body` writes; fsynced. Blocking. Returns the temp path.
    fn write_temp(
        &self,
        meta: &SnapshotMeta,
        body: impl FnOnce(&mut BufWriter<PacedFile>) -> io::Result<()>,
    ) -> io::Result<PathBuf> {
        let tmp = self.temp_path(SNAPSHOT_FILE);
        let written = (|| {
            let meta = encode(meta)?;
            let len = u32::try_from(meta.len())
                .map_err(|_| {
                    io::Error::new(io::ErrorKind::InvalidData, "snapshot meta over 4 GiB")
                })?
                .to_be_bytes();
            // PacedWrites (`fsutil.rs`): the log's fdatasync never queues behind the whole
            // file; the fsync below is what makes it durable.
            let mut f = BufWriter::with_capacity(WRITE_BUFFER, PacedFile::new(File::create(&tmp)?));
            f.write_all(&len)?;
            f.write_all(&meta)?;
            body(&mut f)?;
            f.into_inner()
                .map_err(|e| e.into_error())?
                .into_inner()
                .sync_all()
        })();
        match written {
            Ok(()) => Ok(tmp),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    /// Makes the fsynced temp file `tmp` (of a snapshot with `meta`) the current snapshot if it
    /// is newer than the current one (NewerSnapshotOnly), else removes it; returns whether it
    /// did. One at a time (OneSnapshotWriter); durable before current (SnapshotBeforePurge).
    async fn commit(&self, meta: &SnapshotMeta, tmp: PathBuf) -> io::Result<bool> {
        let _writer = self.writer.lock().await;
        if !self.is_newer(meta) {
            let _ = std::fs::remove_file(&tmp);
            return Ok(false);
        }
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || -> io::Result<()> {
            std::fs::rename(&tmp, dir.join(SNAPSHOT_FILE))?;
            File::open(dir.as_path())?.sync_all()
        })
        .await
        .map_err(io::Error::other)??;
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(meta.clone());
        Ok(true)
    }

    /// Whether a snapshot with `meta` is newer than the current one (none is oldest).
    fn is_newer(&self, meta: &SnapshotMeta) -> bool {
        let current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        current
            .as_ref()
            .is_none_or(|cur| meta.last_log_id > cur.last_log_id)
    }
}

/// Reads a snapshot file's header: its meta, and the offset of the store bytes.
fn read_header(f: &mut File) -> io::Result<(SnapshotMeta, u64)> {
    let mut len = [0u8; 4];
    f.read_exact(&mut len)?;
    let n = u32::from_be_bytes(len);
    let file_len = f.metadata()?.len();
    if u64::from(n) + 4 > file_len {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "truncated meta"));
    }
    let mut meta = vec![0u8; n as usize];
    f.read_exact(&mut meta)?;
    Ok((decode(&meta)?, 4 + u64::from(n)))
}

/// Removes temp files a crash left in the snapshot dir.
fn remove_temp_files(dir: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "tmp") {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

/// Writes a restored data dir's Raft state (`backup.rs`): a snapshot of `store` (encoded
/// `Store` bytes) at log id `((term 1, node 0), 1)` whose membership has every node of
/// `members` as a voter, and a log purged up to that log id. Every node restored this way
/// starts initialised with the same state and membership.
pub async fn write_restored(
    data_dir: &Path,
    members: &std::collections::BTreeMap<u64, super::PeerNode>,
    store: &[u8],
) -> io::Result<()> {
    use openraft::vote::RaftLeaderIdExt;
    let leader = <TypeConfig as openraft::RaftTypeConfig>::LeaderId::new_committed(1, 0);
    let log_id = LogId::new(leader, 1);
    let voters = members.keys().copied().collect();
    let membership = openraft::Membership::new(vec![voters], members.clone())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
    let meta = SnapshotMeta {
        last_log_id: Some(log_id),
        last_membership: StoredMembership::new(Some(log_id), membership),
    };
    let sm = StateMachineStore::open(&data_dir.join("snapshot"))?;
    let tmp = sm.write_temp(&meta, |w| w.write_all(store))?;
    sm.commit(&meta, tmp).await?;
    let mut log = super::log_store::LogStore::open(&data_dir.join("raft-log"))?;
    log.restore_purged(log_id).await
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachineStore {
    type SnapshotData = SnapshotFile;

    async fn build_snapshot(&mut self) -> Result<Snapshot, io::Error> {
        let started = std::time::Instant::now();
        // ApplyNeverWaitsForSnapshot: an O(1) clone under the read lock; the encode runs on
        // the clone.
        let (meta, store) = {
            let st = self.read();
            let meta = SnapshotMeta {
                last_log_id: st.last_applied,
                last_membership: st.last_membership.clone(),
            };
            (meta, st.store.clone())
        };
        #[cfg(test)]
        let pause = self.build_pause.lock().unwrap().take();
        let this = self.clone();
        let m = meta.clone();
        let tmp = on_snapshot_thread(move || {
            #[cfg(test)]
            if let Some(p) = pause {
                let _ = p.captured.send(());
                let _ = p.resume.blocking_recv();
            }
            this.write_temp(&m, |w| store.write_snapshot(w))
        })
        .await??;
        let fresh = self.commit(&meta, tmp).await?;
        self.metrics.snapshot_builds.fetch_add(1, Ordering::Relaxed);
        self.metrics
            .snapshot_build_seconds
            .observe_duration(started.elapsed());
        if !fresh {
            // A newer snapshot was installed meanwhile: this one is dropped, and the meta
            // returned claims no more than it covers, so openraft purges nothing the snapshot
            // on disk does not cover (NewerSnapshotOnly). Its data is the newer one's.
            tracing::info!(
                last_log_id = ?meta.last_log_id,
                "snapshot built but not kept: a newer one is current"
            );
        }
        let current = self.open_current()?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "snapshot file vanished after a build",
            )
        })?;
        tracing::info!(last_log_id = ?meta.last_log_id, bytes = current.snapshot.len, "snapshot built");
        Ok(Snapshot {
            meta,
            snapshot: current.snapshot,
        })
    }
}

/// Runs `f` (a snapshot encode and write) on a thread of its own at a lower CPU priority
/// (SnapshotYields): never on a runtime worker, and on a two-core machine the runtime's
/// workers and the log's sync thread come first when they want the CPU.
async fn on_snapshot_thread<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> io::Result<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("snapshot-write".into())
        .spawn(move || {
            // SAFETY: plain syscalls; `setpriority` with this thread's id changes this thread
            // only (Linux keeps a niceness per thread). Failing to lower it is harmless.
            unsafe {
                let tid = libc::gettid();
                libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, SNAPSHOT_NICE);
            }
            let _ = tx.send(f());
        })?;
    rx.await
        .map_err(|_| io::Error::other("the snapshot thread panicked"))
}

impl StateMachineStore {
    /// Opens the current snapshot file: its meta (as written in it) and a handle on its store
    /// bytes.
    fn open_current(&self) -> io::Result<Option<Snapshot>> {
        let mut f = match File::open(self.dir.join(SNAPSHOT_FILE)) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let (meta, offset) = read_header(&mut f)?;
        let len = f.metadata()?.len() - offset;
        Ok(Some(Snapshot {
            meta,
            snapshot: SnapshotFile {
                file: f,
                offset,
                len,
                decoded: None,
                temp: None,
            },
        }))
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotData = SnapshotFile;
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), io::Error> {
        let st = self.read();
        Ok((st.last_applied, st.last_membership.clone()))
    }
    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<TypeConfig>, io::Error>> + Unpin + OptionalSend,
    {
        let mut earlier_deadline = false;
        while let Some(item) = entries.next().await {
            let (entry, responder) = item?;
            let log_id = entry.log_id();
            let (response, applied) = {
                let mut st = self.state.write().unwrap_or_else(|p| p.into_inner());
                let next_before = st.store.next_deadline();
                st.last_applied = Some(log_id);
                match entry.payload {
                    EntryPayload::Blank => (
                        Response::Noop {
                            revision: st.store.revision(),
                        },
                        Applied::default(),
                    ),
                    EntryPayload::Normal(ref req) => {
                        let applied = st.store.apply_notified(req);
                        let next = st.store.next_deadline();
                        earlier_deadline |=
                            next.is_some() && next_before.is_none_or(|b| next < Some(b));
                        applied
                    }
                    EntryPayload::Membership(ref m) => {
                        st.last_membership = StoredMembership::new(Some(log_id), m.clone());
                        (
                            Response::Noop {
                                revision: st.store.revision(),
                            },
                            Applied::default(),
                        )
                    }
                }
            };
            if !applied.events.is_empty() {
                self.publish_revision();
            }
            if !applied.events.is_empty() || !applied.notices.is_empty() {
                // No receivers is fine: nobody is listening.
                let _ = self.events.send(Arc::new(applied));
            }
            if let Some(r) = responder {
                r.send(response);
            }
        }
        if earlier_deadline {
            self.deadline_wake.notify_one();
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        mut data: SnapshotFile,
    ) -> io::Result<()> {
        // openraft also calls this at start-up with our own current snapshot, to restore the
        // in-memory keyspace; that one is already on disk.
        let restoring = self
            .current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .is_some_and(|m| m == meta);
        let (store, data) = tokio::task::spawn_blocking(move || data.load().map(|s| (s, data)))
            .await
            .map_err(io::Error::other)??;
        let persisted = if restoring {
            false
        } else {
            // Copy the received bytes into a snapshot file of their own, paced like a build
            // (SnapshotYields).
            let this = self.clone();
            let m = meta.clone();
            let tmp = on_snapshot_thread(move || {
                let mut reader = data.reader()?;
                this.write_temp(&m, |w| io::copy(&mut reader, w).map(|_| ()))
            })
            .await??;
            self.commit(meta, tmp).await?
        };
        if !restoring && !persisted {
            tracing::warn!(
                last_log_id = ?meta.last_log_id,
                "installing a snapshot older than the one on disk; the newer file stays"
            );
        }
        {
            let mut st = self.state.write().unwrap_or_else(|p| p.into_inner());
            st.store = store;
            st.last_applied = meta.last_log_id;
            st.last_membership = meta.last_membership.clone();
        }
        // The snapshot's deadlines are this node's to expire if it leads.
        self.deadline_wake.notify_one();
        self.publish_revision();
        if restoring {
            tracing::info!(last_log_id = ?meta.last_log_id, "snapshot restored from disk");
        } else {
            tracing::info!(last_log_id = ?meta.last_log_id, "snapshot installed from the leader");
            self.metrics
                .snapshot_installs
                .fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, io::Error> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.open_current())
            .await
            .map_err(io::Error::other)?
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use openraft::entry::RaftEntry;
    use openraft::vote::RaftLeaderIdExt;

    use std::time::Duration;

    use super::*;
    use crate::raft::typ::Entry;
    use crate::store::{Op, Request};

    fn log_id(index: u64) -> LogId {
        let leader = <TypeConfig as openraft::RaftTypeConfig>::LeaderId::new_committed(1, 1);
        LogId::new(leader, index)
    }

    fn put(key: &str, value: &str) -> Request {
        Request {
            client: None,
            op: Op::Put {
                key: Bytes::copy_from_slice(key.as_bytes()),
                value: Bytes::copy_from_slice(value.as_bytes()),
            },
            at_ms: 0,
        }
    }

    /// Applies puts `key{i}` = `v{i}` as log entries `first..=last`.
    async fn must_apply(sm: &mut StateMachineStore, first: u64, last: u64) {
        let entries: Vec<Result<EntryResponder<TypeConfig>, io::Error>> = (first..=last)
            .map(|i| {
                let e = Entry::new_normal(log_id(i), put(&format!("key{i}"), &format!("v{i}")));
                Ok((e, None))
            })
            .collect();
        sm.apply(futures::stream::iter(entries)).await.unwrap();
    }

    /// Arms the build hook; returns (captured, resume).
    fn pause_next_build(
        sm: &StateMachineStore,
    ) -> (
        tokio::sync::oneshot::Receiver<()>,
        tokio::sync::oneshot::Sender<()>,
    ) {
        let (captured_tx, captured_rx) = tokio::sync::oneshot::channel();
        let (resume_tx, resume_rx) = tokio::sync::oneshot::channel();
        *sm.build_pause.lock().unwrap() = Some(BuildPause {
            captured: captured_tx,
            resume: resume_rx,
        });
        (captured_rx, resume_tx)
    }

    /// An older snapshot build that finishes after a newer install must not replace the
    /// installed snapshot on disk (NewerSnapshotOnly): the log behind the installed one may
    /// already be purged, and the node could not restart from the older one.
    #[tokio::test]
    async fn a_stale_build_never_replaces_a_newer_install() {
        let dir = tempfile::tempdir().unwrap();
        let mut sm = StateMachineStore::open(dir.path()).unwrap();
        must_apply(&mut sm, 1, 5).await;

        // The build captures the state at log index 5, then pauses.
        let (captured, resume) = pause_next_build(&sm);
        let mut builder = sm.get_snapshot_builder().await;
        let build = tokio::spawn(async move { builder.build_snapshot().await });
        captured.await.unwrap();

        // Meanwhile the leader's snapshot at index 20 is installed.
        let mut leader = StateMachineStore::open(&dir.path().join("leader")).unwrap();
        must_apply(&mut leader, 1, 20).await;
        let newer = leader
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap();
        assert_eq!(newer.meta.last_log_id, Some(log_id(20)));
        sm.install_snapshot(&newer.meta, newer.snapshot)
            .await
            .unwrap();

        // The build resumes and finishes.
        resume.send(()).unwrap();
        let built = build.await.unwrap().unwrap();
        assert!(
            built.meta.last_log_id <= Some(log_id(20)),
            "a build never claims more than it covers"
        );

        // What is on disk, and what openraft is told is current, is the newer snapshot.
        let current = sm.get_current_snapshot().await.unwrap().unwrap();
        assert_eq!(current.meta.last_log_id, Some(log_id(20)));
        let mut reopened = StateMachineStore::open(dir.path()).unwrap();
        let mut on_disk = reopened.get_current_snapshot().await.unwrap().unwrap();
        assert_eq!(
            on_disk.meta.last_log_id,
            Some(log_id(20)),
            "snapshot on disk"
        );
        assert_eq!(on_disk.snapshot.load().unwrap().revision(), 20);
        assert_eq!(
            temp_files(dir.path()),
            0,
            "the stale build's temp file is gone"
        );
    }

    fn temp_files(dir: &Path) -> usize {
        std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "tmp")
            })
            .count()
    }

    /// ApplyNeverWaitsForSnapshot: while a build encodes (paused in the middle by the test
    /// hook), entries apply and reads see them; the snapshot holds the state it captured.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn apply_and_reads_proceed_while_a_snapshot_encodes() {
        let dir = tempfile::tempdir().unwrap();
        let mut sm = StateMachineStore::open(dir.path()).unwrap();
        must_apply(&mut sm, 1, 5).await;
        let (captured, resume) = pause_next_build(&sm);
        let mut builder = sm.get_snapshot_builder().await;
        let build = tokio::spawn(async move { builder.build_snapshot().await });
        captured.await.unwrap();

        // The build is mid-encode: apply must not wait for it. (It runs in a task of its own:
        // an apply that blocks on the state lock blocks its worker thread, and this one must
        // stay free to see it and resume the build.)
        let mut applier = sm.clone();
        let applying = tokio::spawn(async move { must_apply(&mut applier, 6, 10).await });
        if tokio::time::timeout(Duration::from_secs(10), applying)
            .await
            .is_err()
        {
            let _ = resume.send(());
            panic!("apply waited for the snapshot encode");
        }
        {
            let st = sm.read();
            assert_eq!(st.store.revision(), 10);
            assert_eq!(st.store.get(b"key8").unwrap().value.as_ref(), b"v8");
        }

        resume.send(()).unwrap();
        let built = build.await.unwrap().unwrap();
        assert_eq!(built.meta.last_log_id, Some(log_id(5)));
        let mut current = sm.get_current_snapshot().await.unwrap().unwrap();
        let store = current.snapshot.load().unwrap();
        assert_eq!(store.revision(), 5, "the snapshot holds what it captured");
        assert!(store.get(b"key5").is_some() && store.get(b"key6").is_none());
    }
}
