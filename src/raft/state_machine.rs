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
//!   installs; every snapshot file write holds one lock (`writer`), each writer has its own
//!   temp file, and the check below and the rename are one step under that lock.
//! - **NewerSnapshotOnly.** A snapshot replaces the current one only if its `last_log_id` is
//!   greater. A build that captured its state before a newer install finished is dropped (its
//!   meta, returned to openraft, claims only what it covers, which the file on disk covers
//!   too, so openraft never purges past the snapshot on disk).
//!
//! Snapshot file `current.snap`:
//!
//! ```text
//! u32 big-endian n ++ [FORMAT_VERSION ++ postcard(SnapshotMeta)] (n bytes) ++ Store::to_snapshot()
//! ```
//!
//! The store bytes ([`Store::to_snapshot`], which carry their own version byte) hold the whole
//! history window, the compact revision, the dedup table and every live key's deadline; the meta carries the last applied
//! log id and the membership. The same store bytes travel to followers as the snapshot data.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};

use futures::{Stream, StreamExt};
use openraft::entry::RaftEntry;
use openraft::storage::{EntryResponder, RaftSnapshotBuilder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend};
use tokio::sync::{broadcast, watch, Notify};

use super::log_store::{decode, encode};
use super::typ::{LogId, Snapshot, SnapshotMeta, StoredMembership};
use super::TypeConfig;
use crate::metrics::NodeMetrics;
use crate::store::{Applied, Response, Store};

const SNAPSHOT_FILE: &str = "current.snap";

/// The last snapshot, as persisted: its meta and the encoded store.
type CurrentSnapshot = (SnapshotMeta, Arc<Vec<u8>>);

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
    /// The last snapshot built or installed, as persisted. Changed only by [`Self::persist`],
    /// under `writer`, after the file is durable.
    current: Arc<Mutex<Option<CurrentSnapshot>>>,
    /// Held by whoever writes a snapshot file (OneSnapshotWriter): a build and an install
    /// never write at once, and the newer-than-current check and the rename are one step.
    writer: Arc<tokio::sync::Mutex<()>>,
    /// Numbers temp files, so no two writers ever share one (even across a restart: a
    /// leftover temp file is only ever overwritten by its own writer, and removed on open).
    tmp_seq: Arc<std::sync::atomic::AtomicU64>,
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
    /// Test hook: pauses the next snapshot build right after it captured the state.
    #[cfg(test)]
    build_pause: Arc<Mutex<Option<BuildPause>>>,
}

/// Pauses a snapshot build after its capture (tests only): `captured` is signalled, then the
/// build waits for `resume`.
#[cfg(test)]
struct BuildPause {
    captured: tokio::sync::oneshot::Sender<()>,
    resume: tokio::sync::oneshot::Receiver<()>,
}

impl StateMachineStore {
    /// Opens the state machine whose snapshots live under `dir`; loads the last snapshot file
    /// (openraft installs it on start).
    pub fn open(dir: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        remove_temp_files(dir)?;
        let path = dir.join(SNAPSHOT_FILE);
        let current = match std::fs::read(&path) {
            Ok(bytes) => {
                let (meta, data) = split_snapshot_file(bytes).map_err(|e| {
                    io::Error::new(e.kind(), format!("snapshot {}: {e}", path.display()))
                })?;
                Some((meta, Arc::new(data)))
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

    /// Makes `(meta, data)` the current snapshot, on disk then in memory, if it is newer than
    /// the current one (NewerSnapshotOnly); returns whether it did. One writer at a time
    /// (OneSnapshotWriter); the file is durable before it becomes current (SnapshotBeforePurge).
    async fn persist(&self, meta: &SnapshotMeta, data: Arc<Vec<u8>>) -> io::Result<bool> {
        let _writer = self.writer.lock().await;
        if !self.is_newer(meta) {
            return Ok(false);
        }
        let this = self.clone();
        let (m, d) = (meta.clone(), data.clone());
        tokio::task::spawn_blocking(move || this.write_file(&m, &d))
            .await
            .map_err(io::Error::other)??;
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some((meta.clone(), data));
        Ok(true)
    }

    /// Whether a snapshot with `meta` is newer than the current one (none is oldest).
    fn is_newer(&self, meta: &SnapshotMeta) -> bool {
        let current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        current
            .as_ref()
            .is_none_or(|(cur, _)| meta.last_log_id > cur.last_log_id)
    }

    /// Writes the snapshot file without copying `data` again (it may be large): a temp file
    /// of its own, fsync, rename, fsync of the directory.
    fn write_file(&self, meta: &SnapshotMeta, data: &[u8]) -> io::Result<()> {
        let meta = encode(meta)?;
        let len = u32::try_from(meta.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "snapshot meta over 4 GiB"))?
            .to_be_bytes();
        let seq = self.tmp_seq.fetch_add(1, Ordering::Relaxed);
        write_atomic(&self.dir, SNAPSHOT_FILE, seq, &[&len, &meta, data])
    }
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
    sm.persist(&meta, Arc::new(store.to_vec())).await?;
    let mut log = super::log_store::LogStore::open(&data_dir.join("raft-log"))?;
    log.restore_purged(log_id).await
}

/// Splits a snapshot file into its meta and the encoded store, without copying the latter.
fn split_snapshot_file(mut bytes: Vec<u8>) -> io::Result<(SnapshotMeta, Vec<u8>)> {
    let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_string());
    let len: [u8; 4] = bytes
        .get(..4)
        .ok_or_else(|| bad("truncated"))?
        .try_into()
        .unwrap();
    let end = 4 + u32::from_be_bytes(len) as usize;
    let meta: SnapshotMeta = decode(bytes.get(4..end).ok_or_else(|| bad("truncated meta"))?)?;
    bytes.drain(..end);
    Ok((meta, bytes))
}

/// Writes `parts` to `dir/name` so that a crash leaves either the old or the new file: temp
/// file `name.seq.tmp`, fsync, rename, fsync of the directory.
fn write_atomic(dir: &Path, name: &str, seq: u64, parts: &[&[u8]]) -> io::Result<()> {
    use std::io::Write;
    let tmp = dir.join(format!("{name}.{seq}.tmp"));
    {
        let mut f = io::BufWriter::new(std::fs::File::create(&tmp)?);
        for part in parts {
            f.write_all(part)?;
        }
        f.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    }
    std::fs::rename(&tmp, dir.join(name))?;
    std::fs::File::open(dir)?.sync_all()
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachineStore {
    type SnapshotData = Vec<u8>;

    async fn build_snapshot(&mut self) -> Result<Snapshot, io::Error> {
        let started = std::time::Instant::now();
        let (meta, data) = {
            let st = self.read();
            let meta = SnapshotMeta {
                last_log_id: st.last_applied,
                last_membership: st.last_membership.clone(),
            };
            (meta, st.store.to_snapshot())
        };
        #[cfg(test)]
        {
            let pause = self.build_pause.lock().unwrap().take();
            if let Some(p) = pause {
                let _ = p.captured.send(());
                let _ = p.resume.await;
            }
        }
        let data = Arc::new(data);
        let fresh = self.persist(&meta, data.clone()).await?;
        if fresh {
            tracing::info!(last_log_id = ?meta.last_log_id, bytes = data.len(), "snapshot built");
        } else {
            // A newer snapshot was installed meanwhile: this one is dropped, and the meta
            // returned claims no more than it covers, so openraft purges nothing the snapshot
            // on disk does not cover (NewerSnapshotOnly).
            tracing::info!(
                last_log_id = ?meta.last_log_id,
                "snapshot built but not kept: a newer one is current"
            );
        }
        self.metrics.snapshot_builds.fetch_add(1, Ordering::Relaxed);
        self.metrics
            .snapshot_build_seconds
            .observe_duration(started.elapsed());
        let data = Arc::try_unwrap(data).unwrap_or_else(|d| d.as_ref().clone());
        Ok(Snapshot {
            meta,
            snapshot: data,
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotData = Vec<u8>;
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

    async fn install_snapshot(&mut self, meta: &SnapshotMeta, data: Vec<u8>) -> io::Result<()> {
        // openraft also calls this at start-up with our own current snapshot, to restore the
        // in-memory keyspace; that one is already on disk.
        let store = Store::from_snapshot(&data).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("cannot install snapshot: {e}"),
            )
        })?;
        let restoring = self
            .current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .is_some_and(|(m, _)| m == meta);
        let persisted = !restoring && self.persist(meta, Arc::new(data)).await?;
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
        let cur = self
            .current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        Ok(cur.map(|(meta, data)| Snapshot {
            meta,
            snapshot: data.as_ref().clone(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use openraft::entry::RaftEntry;
    use openraft::vote::RaftLeaderIdExt;

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
        let newer = leader.get_snapshot_builder().await.build_snapshot().await.unwrap();
        assert_eq!(newer.meta.last_log_id, Some(log_id(20)));
        sm.install_snapshot(&newer.meta, newer.snapshot.clone())
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
        let on_disk = reopened.get_current_snapshot().await.unwrap().unwrap();
        assert_eq!(on_disk.meta.last_log_id, Some(log_id(20)), "snapshot on disk");
        let store = Store::from_snapshot(&on_disk.snapshot).unwrap();
        assert_eq!(store.revision(), 20);
    }
}
