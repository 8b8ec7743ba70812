//! The file operations the WAL uses, behind a trait: [`RealDisk`] over one directory of the
//! real filesystem, and (tests only) [`sim::SimDisk`], a simulated disk that keeps synced and
//! unsynced bytes and directory entries apart and can "crash", dropping everything unsynced
//! (LazyFS's model).
//!
//! Owns no policy: when to sync is the WAL's business (`wal/mod.rs`).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One open file of a [`Disk`].
#[allow(clippy::len_without_is_empty)] // a file, not a collection
pub trait DiskFile: Send + Sync {
    /// Writes all of `buf` at `off`.
    fn write_at(&self, off: u64, buf: &[u8]) -> io::Result<()>;
    /// Fills all of `buf` from `off` (an error if the file is shorter).
    fn read_at(&self, off: u64, buf: &mut [u8]) -> io::Result<()>;
    /// The file's length in bytes.
    fn len(&self) -> io::Result<u64>;
    /// Reserves the blocks of the first `len` bytes (zeros past the data), growing the file to
    /// at least `len`: later writes below `len` cannot fail for lack of space. On the real disk
    /// the zeros are written and synced (WrittenAhead, see [`RealDisk`]'s file), so later
    /// `fdatasync`s of data written below `len` need no metadata write.
    fn allocate(&self, len: u64) -> io::Result<()>;
    /// Cuts (or grows) the file to `len` bytes.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// `fdatasync`: the data written so far (and the length) is durable.
    fn sync_data(&self) -> io::Result<()>;
    /// `fsync`: the data and all metadata are durable.
    fn sync_all(&self) -> io::Result<()>;
}

/// One directory of files.
pub trait Disk: Send + Sync {
    /// The names of the files in the directory.
    fn list(&self) -> io::Result<Vec<String>>;
    /// Opens an existing file for reading and writing.
    fn open(&self, name: &str) -> io::Result<Arc<dyn DiskFile>>;
    /// Creates a file (emptying it if it exists), for reading and writing.
    fn create(&self, name: &str) -> io::Result<Arc<dyn DiskFile>>;
    /// Renames `from` to `to`, replacing `to`.
    fn rename(&self, from: &str, to: &str) -> io::Result<()>;
    /// Removes a file.
    fn remove(&self, name: &str) -> io::Result<()>;
    /// `fsync` of the directory: creations, renames and removals so far are durable.
    fn sync_dir(&self) -> io::Result<()>;
    /// The file's full path, for error messages.
    fn path_of(&self, name: &str) -> PathBuf;
}

/// The real filesystem: one directory.
pub struct RealDisk {
    dir: PathBuf,
}

impl RealDisk {
    /// Opens `dir`, creating it (and making its entry in the parent durable) if missing.
    pub fn open(dir: &Path) -> io::Result<Self> {
        // DirEntryDurable: every level created (raft-log/ and wal/) is synced into its parent.
        crate::fsutil::create_dir_all_durable(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }
}

struct RealFile(File);

impl DiskFile for RealFile {
    fn write_at(&self, off: u64, buf: &[u8]) -> io::Result<()> {
        self.0.write_all_at(buf, off)
    }
    fn read_at(&self, off: u64, buf: &mut [u8]) -> io::Result<()> {
        self.0.read_exact_at(buf, off)
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
    fn allocate(&self, len: u64) -> io::Result<()> {
        let len = libc::off_t::try_from(len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "segment too large"))?;
        // SAFETY: a plain syscall on a file descriptor this struct owns.
        let from = self.0.metadata()?.len();
        let rc = unsafe { libc::posix_fallocate(self.0.as_raw_fd(), 0, len) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        // WrittenAhead: fallocate leaves the blocks "unwritten"; the first write into one
        // converts its extent, and the fdatasync after it must then write the inode too (two
        // device writes per group commit, not one). Writing the zeros now (on the WAL's
        // housekeeping thread: SpareOffTheWritePath in `wal/mod.rs`) and syncing them makes
        // every later fdatasync a data write only (measured here: 4 KiB pwrite + fdatasync
        // 425-441 us of CPU and 1.1-1.2 ms into fallocated blocks, 91-237 us and 0.25-0.66 ms
        // into written ones; 8 MiB of zeros + sync: 9-11 ms idle, 5-30 ms under load, once per
        // segment). Paced (PacedWrites, `fsutil.rs`): the zeros go out a chunk at a time, so
        // the log's group commits never queue behind the whole segment.
        crate::fsutil::write_zeros_paced(&self.0, from.min(len as u64), len as u64)?;
        self.0.sync_data()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }
    fn sync_all(&self) -> io::Result<()> {
        self.0.sync_all()
    }
}

impl Disk for RealDisk {
    fn list(&self) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.dir)? {
            let e = e?;
            if let Some(name) = e.file_name().to_str() {
                out.push(name.to_string());
            }
        }
        Ok(out)
    }
    fn open(&self, name: &str) -> io::Result<Arc<dyn DiskFile>> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(self.dir.join(name))?;
        Ok(Arc::new(RealFile(f)))
    }
    fn create(&self, name: &str) -> io::Result<Arc<dyn DiskFile>> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(self.dir.join(name))?;
        Ok(Arc::new(RealFile(f)))
    }
    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        std::fs::rename(self.dir.join(from), self.dir.join(to))
    }
    fn remove(&self, name: &str) -> io::Result<()> {
        std::fs::remove_file(self.dir.join(name))
    }
    fn sync_dir(&self) -> io::Result<()> {
        File::open(&self.dir)?.sync_all()
    }
    fn path_of(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

#[cfg(test)]
pub mod sim {
    //! A simulated disk for the WAL's crash tests.
    //!
    //! Every file keeps its current bytes and its durable bytes (as of its last sync); the
    //! directory keeps its current entries and its durable entries (as of the last directory
    //! sync). [`SimDisk::crash`] drops everything unsynced. [`SimDisk::crash_after`] makes
    //! every mutating operation after the first `n` fail, as a process that died there.

    use std::collections::{BTreeMap, HashMap};
    use std::sync::Mutex;

    use super::*;

    #[derive(Clone, Default)]
    struct SimFile {
        data: Vec<u8>,
        durable: Vec<u8>,
    }

    #[derive(Default)]
    struct State {
        files: HashMap<u64, SimFile>,
        next_ino: u64,
        names: BTreeMap<String, u64>,
        durable_names: BTreeMap<String, u64>,
        ops: u64,
        crash_after: Option<u64>,
        /// Test knob: directory syncs do nothing (to show the crash tests catch it).
        skip_dir_sync: bool,
        /// Bytes the disk holds; past it writes and allocations fail with ENOSPC.
        capacity: Option<u64>,
        /// Bumped by every crash: handles opened before it are dead.
        generation: u64,
        /// Test knob: file syncs wait while this is set (a sync that has not happened yet).
        hold_syncs: bool,
        /// Test knob: preallocations wait while this is set (a slow preallocation).
        hold_allocations: bool,
    }

    /// The simulated disk. Cheap to clone: clones share one disk.
    #[derive(Clone, Default)]
    pub struct SimDisk(Arc<Mutex<State>>);

    impl SimDisk {
        pub fn new() -> Self {
            Self::default()
        }

        /// Mutating operations after the next `n` fail (the process "died" there).
        pub fn crash_after(&self, n: u64) {
            let mut s = self.0.lock().unwrap();
            s.crash_after = Some(s.ops + n);
        }

        /// Mutating operations counted so far.
        pub fn ops(&self) -> u64 {
            self.0.lock().unwrap().ops
        }

        /// Power loss: every unsynced byte and directory entry is gone.
        pub fn crash(&self) {
            let mut s = self.0.lock().unwrap();
            s.names = s.durable_names.clone();
            let live: std::collections::HashSet<u64> = s.names.values().copied().collect();
            s.files.retain(|ino, _| live.contains(ino));
            for f in s.files.values_mut() {
                f.data = f.durable.clone();
            }
            s.crash_after = None;
            s.generation += 1;
        }

        /// A new disk holding what this one would after a crash now (this one runs on).
        pub fn crashed_copy(&self) -> SimDisk {
            let s = self.0.lock().unwrap();
            let mut files = HashMap::new();
            for ino in s.durable_names.values() {
                if let Some(f) = s.files.get(ino) {
                    files.insert(
                        *ino,
                        SimFile {
                            data: f.durable.clone(),
                            durable: f.durable.clone(),
                        },
                    );
                }
            }
            SimDisk(Arc::new(Mutex::new(State {
                files,
                next_ino: s.next_ino,
                names: s.durable_names.clone(),
                durable_names: s.durable_names.clone(),
                ..State::default()
            })))
        }

        /// A new disk holding what this one would after a power cut now in which some of the
        /// unsynced writes reached the disk and others did not, in no particular order (the
        /// disk's write cache and the kernel's writeback reorder them; LazyFS's torn-seq):
        /// each `unit`-byte block (aligned) of every file whose current bytes differ from its
        /// durable ones is kept when `keep(name, block)` says so, else it reads as it did at
        /// the last sync (zeros past the durable end). Directory entries as [`SimDisk::crash`].
        pub fn crashed_copy_keeping(
            &self,
            unit: usize,
            mut keep: impl FnMut(&str, u64) -> bool,
        ) -> SimDisk {
            let copy = self.crashed_copy();
            let s = self.0.lock().unwrap();
            let mut c = copy.0.lock().unwrap();
            for (name, ino) in &s.durable_names {
                let (Some(f), Some(out)) = (s.files.get(ino), c.files.get_mut(ino)) else {
                    continue;
                };
                for block in 0..f.data.len().div_ceil(unit) {
                    let from = block * unit;
                    let to = (from + unit).min(f.data.len());
                    if f.durable.get(from..to) == Some(&f.data[from..to]) {
                        continue;
                    }
                    if keep(name, block as u64) {
                        if out.data.len() < to {
                            out.data.resize(to, 0);
                        }
                        out.data[from..to].copy_from_slice(&f.data[from..to]);
                    }
                }
                out.durable = out.data.clone();
            }
            drop(c);
            copy
        }

        /// A new disk holding what this one would after the *process* died now (kill -9): the
        /// page cache survives, so every written byte is readable, but only what was synced is
        /// durable (a later [`SimDisk::crash`] of the copy drops the rest).
        pub fn killed_copy(&self) -> SimDisk {
            let s = self.0.lock().unwrap();
            SimDisk(Arc::new(Mutex::new(State {
                files: s.files.clone(),
                next_ino: s.next_ino,
                names: s.names.clone(),
                durable_names: s.durable_names.clone(),
                ..State::default()
            })))
        }

        pub fn set_skip_dir_sync(&self, on: bool) {
            self.0.lock().unwrap().skip_dir_sync = on;
        }

        /// While `on`, every file sync waits (to look at the disk before a sync happens).
        pub fn hold_syncs(&self, on: bool) {
            self.0.lock().unwrap().hold_syncs = on;
        }

        /// While `on`, every preallocation waits (a spare segment that takes long to make).
        pub fn hold_allocations(&self, on: bool) {
            self.0.lock().unwrap().hold_allocations = on;
        }

        pub fn set_capacity(&self, bytes: Option<u64>) {
            self.0.lock().unwrap().capacity = bytes;
        }

        /// Bytes held by every file now.
        pub fn used(&self) -> u64 {
            let s = self.0.lock().unwrap();
            s.files.values().map(|f| f.data.len() as u64).sum()
        }

        /// The current bytes of file `name` (for tests that damage them).
        pub fn read_file(&self, name: &str) -> Vec<u8> {
            let s = self.0.lock().unwrap();
            s.files[&s.names[name]].data.clone()
        }

        /// Replaces file `name`'s bytes, durably (as damage found on disk after a restart).
        pub fn write_file(&self, name: &str, bytes: Vec<u8>) {
            let mut s = self.0.lock().unwrap();
            let ino = s.names[name];
            let f = s.files.get_mut(&ino).unwrap();
            f.durable = bytes.clone();
            f.data = bytes;
        }

        fn step(s: &mut State) -> io::Result<()> {
            if s.crash_after.is_some_and(|n| s.ops >= n) {
                return Err(io::Error::other("simulated crash"));
            }
            s.ops += 1;
            Ok(())
        }

        fn grow(s: &State, ino: u64, to: u64) -> io::Result<()> {
            let cur = s.files[&ino].data.len() as u64;
            if let Some(cap) = s.capacity {
                let used: u64 = s.files.values().map(|f| f.data.len() as u64).sum();
                if to > cur && used + (to - cur) > cap {
                    return Err(io::Error::from_raw_os_error(libc::ENOSPC));
                }
            }
            Ok(())
        }
    }

    struct Handle {
        disk: SimDisk,
        ino: u64,
        generation: u64,
    }

    impl Handle {
        /// Locks the disk and checks this handle outlived no crash.
        fn lock(&self) -> io::Result<std::sync::MutexGuard<'_, State>> {
            let s = self.disk.0.lock().unwrap();
            if s.generation != self.generation || !s.files.contains_key(&self.ino) {
                return Err(io::Error::other(
                    "file handle from before a simulated crash",
                ));
            }
            Ok(s)
        }
    }

    impl DiskFile for Handle {
        fn write_at(&self, off: u64, buf: &[u8]) -> io::Result<()> {
            let mut s = self.lock()?;
            SimDisk::step(&mut s)?;
            let end = off + buf.len() as u64;
            SimDisk::grow(&s, self.ino, end)?;
            let f = s.files.get_mut(&self.ino).expect("open file");
            if f.data.len() < end as usize {
                f.data.resize(end as usize, 0);
            }
            f.data[off as usize..end as usize].copy_from_slice(buf);
            Ok(())
        }
        fn read_at(&self, off: u64, buf: &mut [u8]) -> io::Result<()> {
            let s = self.lock()?;
            let f = &s.files[&self.ino];
            let end = off as usize + buf.len();
            if end > f.data.len() {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "short read"));
            }
            buf.copy_from_slice(&f.data[off as usize..end]);
            Ok(())
        }
        fn len(&self) -> io::Result<u64> {
            Ok(self.lock()?.files[&self.ino].data.len() as u64)
        }
        fn allocate(&self, len: u64) -> io::Result<()> {
            while self.lock()?.hold_allocations {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            let mut s = self.lock()?;
            SimDisk::step(&mut s)?;
            SimDisk::grow(&s, self.ino, len)?;
            let f = s.files.get_mut(&self.ino).expect("open file");
            if f.data.len() < len as usize {
                f.data.resize(len as usize, 0);
            }
            Ok(())
        }
        fn set_len(&self, len: u64) -> io::Result<()> {
            let mut s = self.lock()?;
            SimDisk::step(&mut s)?;
            SimDisk::grow(&s, self.ino, len)?;
            s.files
                .get_mut(&self.ino)
                .expect("open file")
                .data
                .resize(len as usize, 0);
            Ok(())
        }
        fn sync_data(&self) -> io::Result<()> {
            while self.lock()?.hold_syncs {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            let mut s = self.lock()?;
            SimDisk::step(&mut s)?;
            let f = s.files.get_mut(&self.ino).expect("open file");
            f.durable = f.data.clone();
            Ok(())
        }
        fn sync_all(&self) -> io::Result<()> {
            self.sync_data()
        }
    }

    impl Disk for SimDisk {
        fn list(&self) -> io::Result<Vec<String>> {
            Ok(self.0.lock().unwrap().names.keys().cloned().collect())
        }
        fn open(&self, name: &str) -> io::Result<Arc<dyn DiskFile>> {
            let s = self.0.lock().unwrap();
            let ino = *s
                .names
                .get(name)
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, name.to_string()))?;
            Ok(Arc::new(Handle {
                disk: self.clone(),
                ino,
                generation: s.generation,
            }))
        }
        fn create(&self, name: &str) -> io::Result<Arc<dyn DiskFile>> {
            let mut s = self.0.lock().unwrap();
            SimDisk::step(&mut s)?;
            let ino = s.next_ino;
            s.next_ino += 1;
            s.files.insert(ino, SimFile::default());
            s.names.insert(name.to_string(), ino);
            Ok(Arc::new(Handle {
                disk: self.clone(),
                ino,
                generation: s.generation,
            }))
        }
        fn rename(&self, from: &str, to: &str) -> io::Result<()> {
            let mut s = self.0.lock().unwrap();
            SimDisk::step(&mut s)?;
            let ino = s
                .names
                .remove(from)
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, from.to_string()))?;
            s.names.insert(to.to_string(), ino);
            Ok(())
        }
        fn remove(&self, name: &str) -> io::Result<()> {
            let mut s = self.0.lock().unwrap();
            SimDisk::step(&mut s)?;
            s.names
                .remove(name)
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, name.to_string()))?;
            Ok(())
        }
        fn sync_dir(&self) -> io::Result<()> {
            let mut s = self.0.lock().unwrap();
            SimDisk::step(&mut s)?;
            if !s.skip_dir_sync {
                s.durable_names = s.names.clone();
            }
            Ok(())
        }
        fn path_of(&self, name: &str) -> PathBuf {
            PathBuf::from("sim").join(name)
        }
    }
}
