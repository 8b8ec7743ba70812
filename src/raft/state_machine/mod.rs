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
//! - **DeltaAppend.** A build after one this node made (or loaded at start) appends to the
//!   current file only what changed since ([`Store::write_delta`], `store/snapshot_delta.rs`),
//!   rather than dumping the whole history window again: the section with a blank header,
//!   fdatasync, its header, fdatasync (HeaderLast), all under `writer` and only if the file
//!   is still the one planned on. The file only grows while it is current: every length
//!   handed out (a transfer, a memory map) stays valid. A crash mid-append leaves a section
//!   with a blank header, which the next start cuts off (the build had not returned, so
//!   openraft had purged nothing behind it). A full dump is written instead once compaction
//!   has passed the file's revision (DeltaWithinWindow) or the deltas have grown as large as
//!   the dump (**RebaseAtBase**: a snapshot's bytes stay under twice its dump's, and so do a
//!   transfer and a restart's load), and after a snapshot was installed or restored. The
//!   snapshot policy's size rule (SnapshotCostsNoMoreThanTheLog) weighs the dump alone.
//!
//! Snapshot file `current.snap`:
//!
//! ```text
//! u32 big-endian n ++ [FORMAT_VERSION ++ postcard(SnapshotMeta)] (n bytes) ++ Store::to_snapshot()
//!   ++ (delta section, labelled with its SnapshotMeta)*
//! ```
//!
//! The header's meta is the dump's; the last delta's label is the meta the file brings the
//! state to.
//!
//! The store bytes ([`Store::to_snapshot`], which carry their own version byte) hold the whole
//! history window, the compact revision, the dedup table and every live key's deadline; the
//! meta carries the last applied log id and the membership. openraft's snapshot data is a
//! [`SnapshotFile`]: an open handle on the store bytes of such a file (or of a transfer's temp
//! file), never the bytes in memory; `network.rs` sends it to followers in chunks.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};

use futures::{Stream, StreamExt};
use openraft::entry::RaftEntry;
use openraft::storage::{EntryResponder, RaftSnapshotBuilder, RaftStateMachine};
use openraft::{EntryPayload, OptionalSend};
use tokio::sync::{broadcast, watch, Notify};

mod batch;
mod build;
mod file;
mod long_apply;

use super::codec::encode;
use super::commit_gate::CommitGate;
use super::typ::{LogId, Snapshot, SnapshotMeta, StoredMembership};
use super::TypeConfig;
use crate::fsutil::PacedFile;
use crate::metrics::NodeMetrics;
use crate::store::{Applied, Op, Response, Store, Users};

pub use self::file::{decode_mapped, SnapshotFile};
use self::file::{load_at_start, on_snapshot_thread, read_header, remove_temp_files};

const SNAPSHOT_FILE: &str = "current.snap";

/// A snapshot's meta and its store, decoded.
type Decoded = (SnapshotMeta, Box<Store>);

/// The current snapshot file, as [`StateMachineStore`] knows it.
#[derive(Clone, Debug)]
struct Current {
    /// The meta the file brings the state to: its last delta's, else its header's.
    meta: SnapshotMeta,
    /// Where its parts lie, for a file this node built or loaded at start (DeltaAppend);
    /// `None` for one installed from a leader or restored, to which no delta is appended.
    layout: Option<Layout>,
}

/// Where the parts of a snapshot file lie (DeltaAppend).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Layout {
    /// The meta in the file's header: the full dump's.
    base_meta: SnapshotMeta,
    /// Bytes of the header; the store bytes start there.
    header: u64,
    /// Store bytes: the full dump and every delta after it.
    store_len: u64,
    /// Store bytes of the full dump alone.
    base_len: u64,
    /// The store revision the file brings the state to.
    revision: u64,
}

/// A listener run inside apply (see [`StateMachineStore::set_apply_hook`]).
pub type AppliedHook = Box<dyn Fn(&Applied) + Send + Sync>;

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
    /// The current snapshot file: the meta it brings the state to and, for a file this node
    /// built or loaded at start, its layout. Changed only under `writer`, after the file is
    /// durable.
    current: Arc<Mutex<Option<Current>>>,
    /// The store decoded from the current snapshot at open, with that snapshot's meta, until
    /// openraft's start-up install takes it (so the file is decoded once).
    startup: Arc<Mutex<Option<Decoded>>>,
    /// Held while a snapshot becomes current (OneSnapshotWriter).
    writer: Arc<tokio::sync::Mutex<()>>,
    /// Numbers temp files, so no two writers ever share one.
    tmp_seq: Arc<AtomicU64>,
    dir: Arc<PathBuf>,
    /// Applied changes and their notices, in revision order, for whoever subscribes (tests);
    /// sent only while someone does. Lagging receivers are told they lagged; apply never
    /// waits for them.
    events: broadcast::Sender<Arc<Applied>>,
    /// The store's revision after the last apply (or snapshot install): what the watch stream's
    /// blocked readers wait on before reading the new changes from the store's history. A
    /// `watch` channel holds one value whatever the number of waiters: nothing per watcher
    /// is buffered, and no watcher can lag or block apply.
    revision: Arc<watch::Sender<u64>>,
    /// The store's ACL users, sent under the write lock by the apply that changed them, so a
    /// session's next command is checked against them (UsersReplicated, `store/acl.rs`).
    users: Arc<watch::Sender<Users>>,
    /// Woken when an apply (or a snapshot install) makes the earliest deadline earlier, so the
    /// leader's expiry timer (`expiry.rs`) never sleeps past a deadline it has not seen.
    deadline_wake: Arc<Notify>,
    /// Snapshot counts and build durations (`/metrics`), shared with the node.
    metrics: Arc<NodeMetrics>,
    /// Called with every non-empty [`Applied`] while apply still holds the write lock
    /// (AppliedHookBeforeReaders), and with a `flushed` one when a snapshot replaces the
    /// state: client tracking's invalidations (`watch::tracking`).
    apply_hook: Arc<std::sync::OnceLock<AppliedHook>>,
    /// Called with every non-empty [`Applied`] once apply released the write lock, in apply
    /// order (NotifyInApplyOrder): keyspace notifications (`watch::pubsub::notify_applied`).
    notify_hook: Arc<std::sync::OnceLock<AppliedHook>>,
    /// The log's durable committed index, which read replies wait on (DurableReads,
    /// `raft/commit_gate.rs`); raised here when a snapshot is installed. Unset: reads wait for
    /// nothing (tests of the state machine alone).
    commit_gate: Arc<std::sync::OnceLock<CommitGate>>,
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
    /// Opens the state machine whose snapshots live under `dir`: removes temp files a crash
    /// left, and decodes and checks the current snapshot file with its deltas (openraft
    /// installs it on start), cutting off a delta a crash left unfinished (DeltaAppend).
    pub fn open(dir: &Path) -> io::Result<Self> {
        // DirEntryDurable: a snapshot in a directory that vanishes at a power cut is no snapshot.
        crate::fsutil::create_dir_all_durable(dir)?;
        remove_temp_files(dir)?;
        let metrics = Arc::new(NodeMetrics::default());
        let (current, startup) = match load_at_start(&dir.join(SNAPSHOT_FILE))? {
            Some((meta, layout, store)) => {
                metrics
                    .snapshot_bytes
                    .store(layout.header + layout.store_len, Ordering::Relaxed);
                metrics
                    .snapshot_base_bytes
                    .store(layout.base_len, Ordering::Relaxed);
                let current = Current {
                    meta: meta.clone(),
                    layout: Some(layout),
                };
                (Some(current), Some((meta, Box::new(store))))
            }
            None => (None, None),
        };
        let (events, _) = broadcast::channel(1024);
        let (revision, _) = watch::channel(0);
        Ok(Self {
            state: Arc::new(RwLock::new(SmState::default())),
            current: Arc::new(Mutex::new(current)),
            startup: Arc::new(Mutex::new(startup)),
            writer: Arc::default(),
            tmp_seq: Arc::default(),
            dir: Arc::new(dir.to_path_buf()),
            events,
            revision: Arc::new(revision),
            users: Arc::new(watch::channel(Users::default()).0),
            deadline_wake: Arc::new(Notify::new()),
            metrics,
            apply_hook: Arc::default(),
            notify_hook: Arc::default(),
            commit_gate: Arc::default(),
            #[cfg(test)]
            build_pause: Arc::default(),
        })
    }

    /// Installs the hook called with each applied entry's [`Applied`]; a second call is
    /// ignored.
    ///
    /// **AppliedHookBeforeReaders.** The hook runs while apply holds the state's write lock, so
    /// a reader that sees an entry's effects (a value, a revision) runs after the hook ran for
    /// it. Client tracking relies on it: an invalidation for a change is queued before any
    /// read that observes the change. The hook must be quick and must not take the state lock.
    pub fn set_apply_hook(&self, hook: AppliedHook) {
        let _ = self.apply_hook.set(hook);
    }

    /// Installs the hook called with each applied entry's [`Applied`] after apply released
    /// the state's lock; a second call is ignored.
    ///
    /// **NotifyInApplyOrder.** Apply runs one entry at a time, so the hook sees every change in
    /// revision order, and before the entry's client is answered (as Redis publishes a keyspace
    /// notification before the reply). It runs on apply's path: it must only queue work (the
    /// pub/sub hub only `try_send`s, PublishNeverBlocks). A hook, not a task fed by a channel:
    /// such a task cost every node a wake-up and an allocation per write even with
    /// notifications off (Redis's default), and could lag and drop notifications.
    pub fn set_notify_hook(&self, hook: AppliedHook) {
        let _ = self.notify_hook.set(hook);
    }

    /// Shares the log's durable committed index (DurableReads); set before openraft starts, a
    /// second call is ignored. openraft restores the snapshot on disk at start-up through
    /// `install_snapshot`, which raises the gate to it (the log's committed id may be older
    /// than that snapshot after a power cut).
    pub fn set_commit_gate(&self, gate: CommitGate) {
        let _ = self.commit_gate.set(gate);
    }

    /// DurableReads: returns once the durable committed index covers everything this node has
    /// applied now, so a reply made from the state up to now can leave (`commit_gate.rs`).
    /// `Ok` at once when nothing waits (no write load, or no gate). An error when a sync failed
    /// (GateFailStops) or `timeout` passed.
    pub async fn wait_applied_durable(&self, timeout: std::time::Duration) -> io::Result<()> {
        let Some(gate) = self.commit_gate.get() else {
            return Ok(());
        };
        let Some(applied) = self.read().last_applied.map(|l| l.index()) else {
            return Ok(());
        };
        match tokio::time::timeout(timeout, gate.wait_durable(applied)).await {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the committed index {applied} was not made durable within {timeout:?}"),
            )),
        }
    }

    /// The durable committed index (`INFO raft` `raft_durable_commit_index`); `None` without a
    /// gate.
    pub fn durable_committed(&self) -> Option<u64> {
        self.commit_gate.get().and_then(CommitGate::durable)
    }

    /// Hands a non-empty `applied` to the notify hook (NotifyInApplyOrder), then to the
    /// subscribers of [`Self::subscribe`], if any.
    fn publish_applied(&self, applied: Applied) {
        if applied.is_empty() {
            return;
        }
        if let Some(hook) = self.notify_hook.get() {
            hook(&applied);
        }
        if self.events.receiver_count() > 0 {
            // A receiver dropped since the count is fine: nobody is listening.
            let _ = self.events.send(Arc::new(applied));
        }
    }

    /// Runs the apply hook, if one is installed, on a non-empty `applied`.
    fn run_apply_hook(&self, applied: &Applied) {
        if applied.is_empty() {
            return;
        }
        if let Some(hook) = self.apply_hook.get() {
            hook(applied);
        }
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

    /// Returns a receiver of the store's ACL users, changed by every apply that changed them.
    pub fn users_watch(&self) -> watch::Receiver<Users> {
        self.users.subscribe()
    }

    /// Publishes `users` if they changed (a snapshot install publishes them whatever).
    fn publish_users(&self, users: &Users, always: bool) {
        self.users.send_if_modified(|u| {
            let changed = always || u.version() != users.version();
            if changed {
                *u = users.clone();
            }
            changed
        });
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
    sm.commit(&meta, tmp, None).await?;
    let mut log = super::log_store::LogStore::open(&data_dir.join("raft-log"))?;
    log.restore_purged(log_id).await
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
            // DecodeOnApply (`encoded_request.rs`): an entry that does not decode stops the node
            // (FailStop) before anything of it is applied.
            let request =
                match &entry.payload {
                    EntryPayload::Normal(enc) => Some(enc.decode().map_err(|e| {
                        io::Error::new(e.kind(), format!("raft entry {log_id}: {e}"))
                    })?),
                    _ => None,
                };
            if let Some(req) = request {
                // BatchAsEntries (`batch.rs`): a batch's requests, or the entry's one.
                let (reqs, batch) = match &req.op {
                    Op::Batch(reqs) => (&reqs[..], true),
                    _ => (std::slice::from_ref(&req), false),
                };
                let response = self
                    .apply_requests(log_id, reqs, batch, &mut earlier_deadline)
                    .await?;
                if let Some(r) = responder {
                    r.send(response);
                }
                continue;
            }
            let response = {
                let mut st = self.state.write().unwrap_or_else(|p| p.into_inner());
                st.last_applied = Some(log_id);
                if let EntryPayload::Membership(ref m) = entry.payload {
                    st.last_membership = StoredMembership::new(Some(log_id), m.clone());
                }
                Response::Noop {
                    revision: st.store.revision(),
                }
            };
            self.publish_applied(Applied::default());
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
            .is_some_and(|c| &c.meta == meta);
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
            self.commit(meta, tmp, None).await?
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
            self.metrics
                .snapshot_revision
                .fetch_max(st.store.revision(), Ordering::Relaxed);
            // ScriptsReplicated: EVALSHA finds what the snapshot's scripts were.
            st.store.reload_script_cache();
            self.publish_users(st.store.users(), true);
            st.last_applied = meta.last_log_id;
            st.last_membership = meta.last_membership.clone();
            // DurableReads: the snapshot file on disk (this one, or a newer one that stays)
            // covers this state; a restart loads it (GateMonotonic).
            if let Some(gate) = self.commit_gate.get() {
                gate.advance(meta.last_log_id.map(|l| l.index()));
            }
            // Every key may have changed: caches drop everything (AppliedHookBeforeReaders).
            self.run_apply_hook(&Applied {
                flushed: true,
                ..Applied::default()
            });
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
#[path = "sm_test.rs"]
mod tests;
