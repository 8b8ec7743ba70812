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
    /// `revision`: the store revision of a full dump this node built, to which deltas may be
    /// appended later (DeltaAppend); `None` for a snapshot installed or restored.
    pub(super) async fn commit(
        &self,
        meta: &SnapshotMeta,
        tmp: PathBuf,
        revision: Option<u64>,
    ) -> io::Result<bool> {
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
        let header = 4 + encode(meta)?.len() as u64;
        let layout = revision.map(|revision| Layout {
            base_meta: meta.clone(),
            header,
            store_len: bytes - header,
            base_len: bytes - header,
            revision,
        });
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(Current {
            meta: meta.clone(),
            layout,
        });
        self.metrics.snapshot_bytes.store(bytes, Ordering::Relaxed);
        self.metrics
            .snapshot_base_bytes
            .store(bytes - header, Ordering::Relaxed);
        Ok(true)
    }

    /// Whether a snapshot with `meta` is newer than the current one (none is oldest).
    pub(super) fn is_newer(&self, meta: &SnapshotMeta) -> bool {
        let current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        current
            .as_ref()
            .is_none_or(|cur| meta.last_log_id > cur.meta.last_log_id)
    }

    /// Whether a build of the state `store` at `meta` may append a delta to the current file,
    /// and to which (DeltaAppend): the file is one this node built or loaded at start, `meta`
    /// is newer, compaction has not passed the file's revision (DeltaWithinWindow), and the
    /// deltas already there are smaller than the full dump (RebaseAtBase).
    fn delta_plan(&self, meta: &SnapshotMeta, store: &Store) -> Option<(SnapshotMeta, Layout)> {
        let current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        let cur = current.as_ref()?;
        let layout = cur.layout.as_ref()?;
        let fits = meta.last_log_id > cur.meta.last_log_id
            && store.can_delta_since(layout.revision)
            && layout.store_len - layout.base_len < layout.base_len;
        fits.then(|| (cur.meta.clone(), layout.clone()))
    }

    /// Appends a delta of `store` (at `meta`) since `layout.revision` to the current snapshot
    /// file, whose layout is `layout` (DeltaAppend, HeaderLast): the section with a blank
    /// header, fdatasync, the header, fdatasync. Returns the file's store bytes after it. On
    /// an error the file is cut back to its length before (a crash instead leaves an
    /// unfinished section, which the next start cuts off). Blocking; under `writer`.
    fn append_delta(&self, layout: &Layout, meta: &SnapshotMeta, store: &Store) -> io::Result<u64> {
        use std::io::{Seek, SeekFrom};
        use std::os::unix::fs::FileExt;
        let path = self.dir.join(SNAPSHOT_FILE);
        let file = std::fs::OpenOptions::new().write(true).open(&path)?;
        let start = layout.header + layout.store_len;
        let len = file.metadata()?.len();
        if len != start {
            return Err(io::Error::other(format!(
                "snapshot {} is {len} bytes, its layout says {start}",
                path.display()
            )));
        }
        let label = encode(meta)?;
        let written = (|| {
            let mut f = file.try_clone()?;
            f.seek(SeekFrom::Start(start))?;
            let mut w = BufWriter::with_capacity(WRITE_BUFFER, PacedFile::appending(f, start));
            let header = store.write_delta(layout.revision, &label, &mut w)?;
            w.into_inner()
                .map_err(|e| e.into_error())?
                .into_inner()
                .sync_data()?;
            file.write_all_at(&header, start)?;
            file.sync_data()?;
            Ok(file.metadata()?.len() - layout.header)
        })();
        if written.is_err() {
            let _ = file.set_len(start).and_then(|()| file.sync_data());
        }
        written
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
        let mut pause = self.build_pause.lock().unwrap().take();
        #[cfg(not(test))]
        let mut pause: Option<()> = None;
        // DeltaAppend: what changed since the current file, appended to it, when that is
        // allowed; else a full dump to a temp file of its own.
        let mut appended = false;
        if let Some((cur_meta, layout)) = self.delta_plan(&meta, &store) {
            let _writer = self.writer.lock().await;
            let unchanged = self
                .current
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
                .is_some_and(|c| c.meta == cur_meta && c.layout.as_ref() == Some(&layout));
            if unchanged {
                let this = self.clone();
                let (m, l, s) = (meta.clone(), layout.clone(), store.clone());
                let p = pause.take();
                let store_len = on_snapshot_thread(move || {
                    wait_pause(p);
                    this.append_delta(&l, &m, &s)
                })
                .await??;
                *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(Current {
                    meta: meta.clone(),
                    layout: Some(Layout {
                        store_len,
                        revision: store.revision(),
                        ..layout.clone()
                    }),
                });
                self.metrics
                    .snapshot_bytes
                    .store(layout.header + store_len, Ordering::Relaxed);
                self.metrics.snapshot_deltas.fetch_add(1, Ordering::Relaxed);
                appended = true;
            }
        }
        let fresh = if appended {
            true
        } else {
            let this = self.clone();
            let m = meta.clone();
            let revision = store.revision();
            let p = pause.take();
            let tmp = on_snapshot_thread(move || {
                wait_pause(p);
                this.write_temp(&m, |w| store.write_snapshot(w))
            })
            .await??;
            self.commit(&meta, tmp, Some(revision)).await?
        };
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
    /// Opens the current snapshot file: the meta it brings the state to and a handle on its
    /// store bytes (the full dump and every delta after it, as far as the last one finished).
    pub(super) fn open_current(&self) -> io::Result<Option<Snapshot>> {
        for _ in 0..100 {
            let mut f = match File::open(self.dir.join(SNAPSHOT_FILE)) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e),
            };
            let (header_meta, offset) = read_header(&mut f)?;
            let file_len = f.metadata()?.len();
            let current = self
                .current
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            let (meta, len) = match current {
                Some(Current {
                    meta,
                    layout: Some(l),
                }) if l.base_meta == header_meta && l.header == offset => (meta, l.store_len),
                // A newer file was renamed over the path between the open and the look at
                // `current` (which the renamer updates next): look again.
                Some(Current {
                    layout: Some(_), ..
                }) => {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                    continue;
                }
                _ => (header_meta, file_len - offset),
            };
            let decoded = {
                let mut startup = self.startup.lock().unwrap_or_else(|p| p.into_inner());
                match startup.take() {
                    Some((m, store)) if m == meta => Some(store),
                    other => {
                        *startup = other;
                        None
                    }
                }
            };
            return Ok(Some(Snapshot {
                meta,
                snapshot: SnapshotFile {
                    file: f,
                    offset,
                    len,
                    decoded,
                    temp: None,
                },
            }));
        }
        Err(io::Error::other(
            "the current snapshot kept changing while it was opened",
        ))
    }
}

/// The test hook: waits where a build was told to pause ([`StateMachineStore`]'s
/// `build_pause`). Nothing outside tests.
#[cfg(test)]
fn wait_pause(pause: Option<BuildPause>) {
    if let Some(p) = pause {
        let _ = p.captured.send(());
        let _ = p.resume.blocking_recv();
    }
}

#[cfg(not(test))]
fn wait_pause(_: Option<()>) {}
