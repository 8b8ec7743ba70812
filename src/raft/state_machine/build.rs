//! Building and committing snapshots: openraft's `RaftSnapshotBuilder` for
//! [`StateMachineStore`], the temp file a build writes (fsynced, then renamed over the current
//! one: SnapshotBeforePurge), and opening the current snapshot. The encode runs on a thread of
//! its own at a lower CPU priority (SnapshotYields).

use super::*;

/// The snapshot writer's buffer.
const WRITE_BUFFER: usize = 64 << 10;

impl StateMachineStore {
    /// Writes a snapshot file for `meta` to a temp file of its own: the header, then the
    /// store bytes `body` writes; fsynced. Blocking. Returns the temp path.
    pub(super) fn write_temp(
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
    pub(super) async fn commit(&self, meta: &SnapshotMeta, tmp: PathBuf) -> io::Result<bool> {
        let _writer = self.writer.lock().await;
        if !self.is_newer(meta) {
            let _ = std::fs::remove_file(&tmp);
            return Ok(false);
        }
        let dir = self.dir.clone();
        let bytes = tokio::task::spawn_blocking(move || -> io::Result<u64> {
            std::fs::rename(&tmp, dir.join(SNAPSHOT_FILE))?;
            File::open(dir.as_path())?.sync_all()?;
            Ok(std::fs::metadata(dir.join(SNAPSHOT_FILE))?.len())
        })
        .await
        .map_err(io::Error::other)??;
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(meta.clone());
        self.metrics.snapshot_bytes.store(bytes, Ordering::Relaxed);
        Ok(true)
    }

    /// Whether a snapshot with `meta` is newer than the current one (none is oldest).
    pub(super) fn is_newer(&self, meta: &SnapshotMeta) -> bool {
        let current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        current
            .as_ref()
            .is_none_or(|cur| meta.last_log_id > cur.last_log_id)
    }
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
        self.metrics
            .snapshot_revision
            .fetch_max(store.revision(), Ordering::Relaxed);
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

impl StateMachineStore {
    /// Opens the current snapshot file: its meta (as written in it) and a handle on its store
    /// bytes.
    pub(super) fn open_current(&self) -> io::Result<Option<Snapshot>> {
        let mut f = match File::open(self.dir.join(SNAPSHOT_FILE)) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let (meta, offset) = read_header(&mut f)?;
        let file_len = f.metadata()?.len();
        self.metrics
            .snapshot_bytes
            .store(file_len, Ordering::Relaxed);
        let len = file_len - offset;
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
