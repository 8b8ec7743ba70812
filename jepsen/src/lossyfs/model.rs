//! The pure model of lossyfs: an in-memory filesystem that remembers, for every file, its
//! current and its **durable** contents, and for every directory its current and its durable
//! entries. No FUSE here (`super::fuse` adapts it), so every rule is unit-tested directly.
//!
//! Invariants:
//! - **SyncMakesDurable.** `fsync`/`fdatasync` of a file makes its current contents (bytes and
//!   size) durable; `fsync` of a directory makes its current entries (creates, unlinks, renames
//!   into or out of it) durable. Nothing else does: no background writeback, no ordering
//!   guarantee between unsynced operations.
//! - **CrashKeepsOnlyDurable.** [`Model::crash`] sets current := durable for every file and
//!   directory, then forgets inodes no durable entry reaches. A file fsynced but whose entry
//!   was never made durable by a directory fsync is gone (POSIX requires both).
//! - **TornKeepsAPrefix.** [`CrashMode::Torn`] is a crash in which the last write to each file
//!   since its last sync half-reached the disk: the durable contents plus the first half of
//!   that write (zero-filled if it lies past the durable end).
//! - **UnsyncedBlocksAnyOrder.** [`CrashMode::Reordered`] is a crash in which each 512-byte
//!   block (aligned) that changed since the file's last sync reached the disk or not, by a
//!   coin per block from the crash's seed (LazyFS's torn-seq): later writes may survive
//!   earlier ones. A file grows to its last kept block; a size cut since the sync is lost.
//! - **InodesNeverReused.** Inode numbers only grow, so the kernel never confuses an inode
//!   dropped by a crash with a new one.

use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

pub type Ino = u64;
/// The root directory (FUSE's root inode number).
pub const ROOT: Ino = 1;

/// An operation the model refuses, with the errno FUSE answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsError {
    NotFound,
    Exists,
    NotDir,
    IsDir,
    NotEmpty,
    Invalid,
    TooBig,
}

impl FsError {
    pub fn errno(self) -> i32 {
        match self {
            FsError::NotFound => libc::ENOENT,
            FsError::Exists => libc::EEXIST,
            FsError::NotDir => libc::ENOTDIR,
            FsError::IsDir => libc::EISDIR,
            FsError::NotEmpty => libc::ENOTEMPTY,
            FsError::Invalid => libc::EINVAL,
            FsError::TooBig => libc::EFBIG,
        }
    }
}

pub type Result<T> = std::result::Result<T, FsError>;

/// Largest file the model holds (it is all in memory; test data dirs are small).
pub const MAX_FILE: u64 = 1 << 32;

#[derive(Clone, Debug, Default)]
pub struct File {
    data: Vec<u8>,
    durable: Vec<u8>,
    /// The last write since the last sync (offset, bytes): what a torn crash half-keeps.
    last_write: Option<(u64, Vec<u8>)>,
    /// Bytes written (or truncated away) since the last sync.
    unsynced: u64,
    /// The byte range that may differ from `durable` (outside it, `data` and `durable` agree
    /// up to `data.len()`): a sync copies only this, not the whole (preallocated) file.
    dirty: Option<(usize, usize)>,
}

impl File {
    fn touch(&mut self, from: usize, to: usize) {
        self.dirty = Some(match self.dirty {
            Some((a, b)) => (a.min(from), b.max(to)),
            None => (from, to),
        });
    }
}

#[derive(Clone, Debug, Default)]
pub struct Dir {
    entries: BTreeMap<Vec<u8>, Ino>,
    durable: BTreeMap<Vec<u8>, Ino>,
}

#[derive(Clone, Debug)]
pub enum Kind {
    File(File),
    Dir(Dir),
}

#[derive(Clone, Debug)]
pub struct Inode {
    pub kind: Kind,
    pub mode: u16,
    pub mtime: SystemTime,
}

/// What `stat` needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attr {
    pub ino: Ino,
    pub size: u64,
    pub dir: bool,
    pub mode: u16,
    pub mtime: SystemTime,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CrashMode {
    /// Every unsynced byte and entry is lost.
    Clean,
    /// As `Clean`, but the last unsynced write of each file is half kept (a torn write).
    Torn,
    /// Each unsynced [`BLOCK`] of each file reached the disk or not, at random (`seed`): a
    /// disk's write cache and the kernel's writeback keep no order between syncs, so a later
    /// write may survive an earlier one (UnsyncedBlocksAnyOrder).
    Reordered { seed: u64 },
}

/// What a [`CrashMode::Reordered`] crash keeps or loses whole: a sector.
pub const BLOCK: usize = 512;

/// Whether block `block` of inode `ino` survives a reordered crash with `seed`: a coin
/// (splitmix64 of the three), the same every time for the same arguments.
fn keeps(seed: u64, ino: Ino, block: usize) -> bool {
    let mut z = seed ^ ino.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (block as u64).rotate_left(32);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) & 1 == 1
}

/// What one crash dropped.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CrashReport {
    /// Files whose contents went back to their last sync.
    pub files_reverted: u64,
    /// Bytes written (or truncated) since the last sync of those files.
    pub bytes_dropped: u64,
    /// Files where a torn crash kept part of the last write.
    pub files_torn: u64,
    /// Unsynced blocks a reordered crash kept, and lost.
    pub blocks_kept: u64,
    pub blocks_lost: u64,
    /// Directory entries added, removed or changed since the last directory sync, undone.
    pub entries_reverted: u64,
    /// Inodes no durable entry reaches any more (files and dirs never made durable).
    pub inodes_dropped: u64,
}

/// Counters since the mount.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub writes: u64,
    pub bytes_written: u64,
    pub file_syncs: u64,
    pub dir_syncs: u64,
    pub crashes: u64,
    /// Sums over every crash.
    pub dropped: CrashReport,
    /// Unsynced bytes right now (what a crash would drop).
    pub unsynced_bytes: u64,
    /// Directory entries that differ from their durable state right now.
    pub unsynced_entries: u64,
    pub inodes: u64,
}

#[derive(Clone, Debug)]
pub struct Model {
    inodes: BTreeMap<Ino, Inode>,
    next: Ino,
    open: BTreeMap<Ino, u32>,
    stats: Stats,
}

impl Default for Model {
    fn default() -> Self {
        Self::new()
    }
}

fn entries_diff(a: &BTreeMap<Vec<u8>, Ino>, b: &BTreeMap<Vec<u8>, Ino>) -> u64 {
    let names: BTreeSet<&Vec<u8>> = a.keys().chain(b.keys()).collect();
    names.into_iter().filter(|n| a.get(*n) != b.get(*n)).count() as u64
}

impl Model {
    /// An empty filesystem whose (empty) root is durable.
    pub fn new() -> Model {
        let mut inodes = BTreeMap::new();
        inodes.insert(
            ROOT,
            Inode {
                kind: Kind::Dir(Dir::default()),
                mode: 0o755,
                mtime: SystemTime::now(),
            },
        );
        Model {
            inodes,
            next: ROOT + 1,
            open: BTreeMap::new(),
            stats: Stats::default(),
        }
    }

    fn inode(&self, ino: Ino) -> Result<&Inode> {
        self.inodes.get(&ino).ok_or(FsError::NotFound)
    }

    fn dir(&self, ino: Ino) -> Result<&Dir> {
        match &self.inode(ino)?.kind {
            Kind::Dir(d) => Ok(d),
            Kind::File(_) => Err(FsError::NotDir),
        }
    }

    fn dir_mut(&mut self, ino: Ino) -> Result<&mut Dir> {
        match &mut self.inodes.get_mut(&ino).ok_or(FsError::NotFound)?.kind {
            Kind::Dir(d) => Ok(d),
            Kind::File(_) => Err(FsError::NotDir),
        }
    }

    fn file_mut(&mut self, ino: Ino) -> Result<&mut File> {
        let inode = self.inodes.get_mut(&ino).ok_or(FsError::NotFound)?;
        inode.mtime = SystemTime::now();
        match &mut inode.kind {
            Kind::File(f) => Ok(f),
            Kind::Dir(_) => Err(FsError::IsDir),
        }
    }

    pub fn lookup(&self, parent: Ino, name: &[u8]) -> Result<Ino> {
        self.dir(parent)?
            .entries
            .get(name)
            .copied()
            .ok_or(FsError::NotFound)
    }

    pub fn attr(&self, ino: Ino) -> Result<Attr> {
        let i = self.inode(ino)?;
        let (size, dir) = match &i.kind {
            Kind::File(f) => (f.data.len() as u64, false),
            Kind::Dir(d) => (d.entries.len() as u64, true),
        };
        Ok(Attr {
            ino,
            size,
            dir,
            mode: i.mode,
            mtime: i.mtime,
        })
    }

    /// Creates a file or directory `name` in `parent` (not durable until `parent` is synced).
    pub fn create(&mut self, parent: Ino, name: &[u8], mode: u16, dir: bool) -> Result<Ino> {
        if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') {
            return Err(FsError::Invalid);
        }
        if self.dir(parent)?.entries.contains_key(name) {
            return Err(FsError::Exists);
        }
        let ino = self.next;
        self.next += 1;
        let kind = if dir {
            Kind::Dir(Dir::default())
        } else {
            Kind::File(File::default())
        };
        self.inodes.insert(
            ino,
            Inode {
                kind,
                mode: mode & 0o7777,
                mtime: SystemTime::now(),
            },
        );
        self.dir_mut(parent)?.entries.insert(name.to_vec(), ino);
        Ok(ino)
    }

    pub fn set_mode(&mut self, ino: Ino, mode: u16) -> Result<()> {
        self.inodes.get_mut(&ino).ok_or(FsError::NotFound)?.mode = mode & 0o7777;
        Ok(())
    }

    pub fn write(&mut self, ino: Ino, offset: u64, data: &[u8]) -> Result<usize> {
        let end = offset
            .checked_add(data.len() as u64)
            .filter(|e| *e <= MAX_FILE)
            .ok_or(FsError::TooBig)?;
        let f = self.file_mut(ino)?;
        let (off, end) = (offset as usize, end as usize);
        if f.data.len() < end {
            f.data.resize(end, 0);
        }
        f.data[off..end].copy_from_slice(data);
        f.touch(off, end);
        f.last_write = Some((offset, data.to_vec()));
        f.unsynced += data.len() as u64;
        self.stats.writes += 1;
        self.stats.bytes_written += data.len() as u64;
        Ok(data.len())
    }

    pub fn read(&self, ino: Ino, offset: u64, size: u32) -> Result<&[u8]> {
        match &self.inode(ino)?.kind {
            Kind::File(f) => {
                let start = (offset.min(f.data.len() as u64)) as usize;
                let end = (start + size as usize).min(f.data.len());
                Ok(&f.data[start..end])
            }
            Kind::Dir(_) => Err(FsError::IsDir),
        }
    }

    /// Sets the size (truncate or zero-extend); part of the file's contents, made durable by
    /// the file's sync.
    pub fn truncate(&mut self, ino: Ino, size: u64) -> Result<()> {
        if size > MAX_FILE {
            return Err(FsError::TooBig);
        }
        let f = self.file_mut(ino)?;
        let old = f.data.len() as u64;
        f.data.resize(size as usize, 0);
        f.touch(old.min(size) as usize, old.max(size) as usize);
        f.unsynced += old.abs_diff(size).max(1);
        Ok(())
    }

    /// Removes the entry `name` (a file, or an empty directory when `dir`).
    pub fn remove(&mut self, parent: Ino, name: &[u8], dir: bool) -> Result<()> {
        let ino = self.lookup(parent, name)?;
        match (&self.inode(ino)?.kind, dir) {
            (Kind::Dir(_), false) => return Err(FsError::IsDir),
            (Kind::File(_), true) => return Err(FsError::NotDir),
            (Kind::Dir(d), true) if !d.entries.is_empty() => return Err(FsError::NotEmpty),
            _ => {}
        }
        self.dir_mut(parent)?.entries.remove(name);
        self.gc();
        Ok(())
    }

    /// `rename(2)`: moves the entry, replacing a compatible target; each directory's change is
    /// durable only once that directory is synced. `noreplace`: RENAME_NOREPLACE.
    pub fn rename(
        &mut self,
        parent: Ino,
        name: &[u8],
        newparent: Ino,
        newname: &[u8],
        noreplace: bool,
    ) -> Result<()> {
        if newname.is_empty() || newname == b"." || newname == b".." || newname.contains(&b'/') {
            return Err(FsError::Invalid);
        }
        let ino = self.lookup(parent, name)?;
        self.dir(newparent)?;
        if parent == newparent && name == newname {
            return Ok(());
        }
        let moving_dir = self.attr(ino)?.dir;
        if moving_dir && (newparent == ino || self.is_ancestor(ino, newparent)) {
            return Err(FsError::Invalid);
        }
        if let Ok(target) = self.lookup(newparent, newname) {
            if noreplace {
                return Err(FsError::Exists);
            }
            match (&self.inode(target)?.kind, moving_dir) {
                (Kind::Dir(d), true) if !d.entries.is_empty() => return Err(FsError::NotEmpty),
                (Kind::Dir(_), false) => return Err(FsError::IsDir),
                (Kind::File(_), true) => return Err(FsError::NotDir),
                _ => {}
            }
        }
        self.dir_mut(parent)?.entries.remove(name);
        self.dir_mut(newparent)?
            .entries
            .insert(newname.to_vec(), ino);
        self.gc();
        Ok(())
    }

    /// Whether `a` is an ancestor of `b` in the current tree.
    fn is_ancestor(&self, a: Ino, b: Ino) -> bool {
        let mut stack = vec![a];
        let mut seen = BTreeSet::new();
        while let Some(d) = stack.pop() {
            if !seen.insert(d) {
                continue;
            }
            if let Ok(dir) = self.dir(d) {
                for &c in dir.entries.values() {
                    if c == b {
                        return true;
                    }
                    stack.push(c);
                }
            }
        }
        false
    }

    /// `fsync`/`fdatasync` of a file or `fsync` of a directory (SyncMakesDurable).
    pub fn sync(&mut self, ino: Ino) -> Result<()> {
        match &mut self.inodes.get_mut(&ino).ok_or(FsError::NotFound)?.kind {
            Kind::File(f) => {
                f.durable.resize(f.data.len(), 0);
                if let Some((a, b)) = f.dirty.take() {
                    let b = b.min(f.data.len());
                    if a < b {
                        f.durable[a..b].copy_from_slice(&f.data[a..b]);
                    }
                }
                #[cfg(test)]
                assert!(f.durable == f.data, "a sync left data and durable apart");
                f.last_write = None;
                f.unsynced = 0;
                self.stats.file_syncs += 1;
            }
            Kind::Dir(d) => {
                d.durable.clone_from(&d.entries);
                self.stats.dir_syncs += 1;
            }
        }
        Ok(())
    }

    /// The entries of a directory: (name, inode, is a directory).
    pub fn readdir(&self, ino: Ino) -> Result<Vec<(Vec<u8>, Ino, bool)>> {
        let d = self.dir(ino)?;
        Ok(d.entries
            .iter()
            .map(|(n, &i)| (n.clone(), i, self.attr(i).map(|a| a.dir).unwrap_or(false)))
            .collect())
    }

    pub fn open(&mut self, ino: Ino) -> Result<()> {
        self.inode(ino)?;
        *self.open.entry(ino).or_default() += 1;
        Ok(())
    }

    pub fn release(&mut self, ino: Ino) {
        if let Some(n) = self.open.get_mut(&ino) {
            *n -= 1;
            if *n == 0 {
                self.open.remove(&ino);
                self.gc();
            }
        }
    }

    /// Forgets inodes that neither a current nor a durable entry reaches and nobody has open.
    fn gc(&mut self) {
        let mut keep: BTreeSet<Ino> = self.open.keys().copied().collect();
        keep.extend(self.reachable(true));
        keep.extend(self.reachable(false));
        self.inodes.retain(|i, _| keep.contains(i));
    }

    /// Inodes reachable from the root through current (`durable == false`) or durable entries.
    fn reachable(&self, durable: bool) -> BTreeSet<Ino> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![ROOT];
        while let Some(i) = stack.pop() {
            if !seen.insert(i) {
                continue;
            }
            if let Some(Inode {
                kind: Kind::Dir(d), ..
            }) = self.inodes.get(&i)
            {
                let entries = if durable { &d.durable } else { &d.entries };
                stack.extend(entries.values().copied());
            }
        }
        seen
    }

    /// Power loss (CrashKeepsOnlyDurable, TornKeepsAPrefix, UnsyncedBlocksAnyOrder). Open
    /// handles are forgotten: the processes that held them are assumed dead (the harness kills
    /// them first).
    pub fn crash(&mut self, mode: CrashMode) -> CrashReport {
        let mut r = CrashReport::default();
        for (&ino, inode) in self.inodes.iter_mut() {
            match &mut inode.kind {
                Kind::Dir(d) => {
                    r.entries_reverted += entries_diff(&d.entries, &d.durable);
                    d.entries.clone_from(&d.durable);
                }
                Kind::File(f) => {
                    if f.unsynced > 0 || f.data != f.durable {
                        r.files_reverted += 1;
                        r.bytes_dropped += f.unsynced;
                    }
                    let current = std::mem::take(&mut f.data);
                    f.data.clone_from(&f.durable);
                    if let (CrashMode::Reordered { seed }, Some((from, to))) = (mode, f.dirty) {
                        let to = to.min(current.len());
                        for block in from / BLOCK..to.div_ceil(BLOCK) {
                            let (a, b) = (block * BLOCK, ((block + 1) * BLOCK).min(current.len()));
                            if f.durable.get(a..b) == Some(&current[a..b]) {
                                continue;
                            }
                            if !keeps(seed, ino, block) {
                                r.blocks_lost += 1;
                                continue;
                            }
                            r.blocks_kept += 1;
                            if f.data.len() < b {
                                f.data.resize(b, 0);
                            }
                            f.data[a..b].copy_from_slice(&current[a..b]);
                        }
                    }
                    if let (CrashMode::Torn, Some((off, bytes))) = (mode, f.last_write.take()) {
                        let keep = bytes.len() / 2;
                        if keep > 0 {
                            let (off, end) = (off as usize, off as usize + keep);
                            if f.data.len() < end {
                                f.data.resize(end, 0);
                            }
                            f.data[off..end].copy_from_slice(&bytes[..keep]);
                            r.files_torn += 1;
                        }
                    }
                    // What the torn crash left is now on the disk: durable.
                    f.durable.clone_from(&f.data);
                    f.dirty = None;
                    f.last_write = None;
                    f.unsynced = 0;
                }
            }
        }
        self.open.clear();
        let before = self.inodes.len() as u64;
        let live = self.reachable(true);
        self.inodes.retain(|i, _| live.contains(i));
        r.inodes_dropped = before - self.inodes.len() as u64;
        self.stats.crashes += 1;
        let s = &mut self.stats.dropped;
        s.files_reverted += r.files_reverted;
        s.bytes_dropped += r.bytes_dropped;
        s.files_torn += r.files_torn;
        s.blocks_kept += r.blocks_kept;
        s.blocks_lost += r.blocks_lost;
        s.entries_reverted += r.entries_reverted;
        s.inodes_dropped += r.inodes_dropped;
        r
    }

    pub fn stats(&self) -> Stats {
        let mut s = self.stats.clone();
        s.inodes = self.inodes.len() as u64;
        s.unsynced_bytes = 0;
        s.unsynced_entries = 0;
        for i in self.inodes.values() {
            match &i.kind {
                Kind::File(f) => s.unsynced_bytes += f.unsynced,
                Kind::Dir(d) => s.unsynced_entries += entries_diff(&d.entries, &d.durable),
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(m: &mut Model, parent: Ino, name: &str) -> Ino {
        m.create(parent, name.as_bytes(), 0o644, false).unwrap()
    }

    fn contents(m: &Model, parent: Ino, name: &str) -> Option<Vec<u8>> {
        let ino = m.lookup(parent, name.as_bytes()).ok()?;
        Some(m.read(ino, 0, u32::MAX).unwrap().to_vec())
    }

    #[test]
    fn unsynced_writes_are_lost_and_synced_ones_kept() {
        let mut m = Model::new();
        let f = file(&mut m, ROOT, "log");
        m.sync(ROOT).unwrap();
        m.write(f, 0, b"hello").unwrap();
        m.sync(f).unwrap();
        m.write(f, 5, b" world").unwrap();
        assert_eq!(contents(&m, ROOT, "log").unwrap(), b"hello world");
        let r = m.crash(CrashMode::Clean);
        assert_eq!(contents(&m, ROOT, "log").unwrap(), b"hello");
        assert_eq!(r.files_reverted, 1);
        assert_eq!(r.bytes_dropped, 6);
        assert_eq!(r.entries_reverted, 0);
    }

    #[test]
    fn a_file_never_synced_is_empty_after_a_crash() {
        let mut m = Model::new();
        let f = file(&mut m, ROOT, "a");
        m.sync(ROOT).unwrap();
        m.write(f, 0, &[7; 100]).unwrap();
        m.crash(CrashMode::Clean);
        assert_eq!(contents(&m, ROOT, "a").unwrap(), b"");
    }

    #[test]
    fn a_synced_file_without_a_directory_sync_is_gone() {
        let mut m = Model::new();
        let f = file(&mut m, ROOT, "a");
        m.write(f, 0, b"data").unwrap();
        m.sync(f).unwrap();
        let r = m.crash(CrashMode::Clean);
        assert_eq!(m.lookup(ROOT, b"a"), Err(FsError::NotFound));
        assert_eq!(r.entries_reverted, 1);
        assert_eq!(r.inodes_dropped, 1);
        assert_eq!(m.attr(f), Err(FsError::NotFound), "the inode is forgotten");
    }

    #[test]
    fn rename_without_a_directory_sync_is_undone() {
        let mut m = Model::new();
        let tmp = file(&mut m, ROOT, "id.tmp");
        m.write(tmp, 0, b"new").unwrap();
        m.sync(tmp).unwrap();
        let old = file(&mut m, ROOT, "id");
        m.write(old, 0, b"old").unwrap();
        m.sync(old).unwrap();
        m.sync(ROOT).unwrap();
        m.rename(ROOT, b"id.tmp", ROOT, b"id", false).unwrap();
        assert_eq!(contents(&m, ROOT, "id").unwrap(), b"new");
        assert_eq!(m.lookup(ROOT, b"id.tmp"), Err(FsError::NotFound));
        m.crash(CrashMode::Clean);
        assert_eq!(contents(&m, ROOT, "id").unwrap(), b"old");
        assert_eq!(contents(&m, ROOT, "id.tmp").unwrap(), b"new");
        // Now the full recipe: rename, then sync the directory.
        m.rename(ROOT, b"id.tmp", ROOT, b"id", false).unwrap();
        m.sync(ROOT).unwrap();
        m.crash(CrashMode::Clean);
        assert_eq!(contents(&m, ROOT, "id").unwrap(), b"new");
        assert_eq!(m.lookup(ROOT, b"id.tmp"), Err(FsError::NotFound));
    }

    #[test]
    fn unlink_without_a_directory_sync_comes_back() {
        let mut m = Model::new();
        let f = file(&mut m, ROOT, "seg1");
        m.write(f, 0, b"abc").unwrap();
        m.sync(f).unwrap();
        m.sync(ROOT).unwrap();
        m.remove(ROOT, b"seg1", false).unwrap();
        assert_eq!(m.lookup(ROOT, b"seg1"), Err(FsError::NotFound));
        m.crash(CrashMode::Clean);
        assert_eq!(contents(&m, ROOT, "seg1").unwrap(), b"abc");
        m.remove(ROOT, b"seg1", false).unwrap();
        m.sync(ROOT).unwrap();
        m.crash(CrashMode::Clean);
        assert_eq!(m.lookup(ROOT, b"seg1"), Err(FsError::NotFound));
        assert_eq!(m.stats().inodes, 1, "only the root is left");
    }

    #[test]
    fn truncate_is_file_data_made_durable_by_the_file_sync() {
        let mut m = Model::new();
        let f = file(&mut m, ROOT, "wal");
        m.sync(ROOT).unwrap();
        m.write(f, 0, b"0123456789").unwrap();
        m.sync(f).unwrap();
        m.truncate(f, 4).unwrap();
        m.crash(CrashMode::Clean);
        assert_eq!(contents(&m, ROOT, "wal").unwrap(), b"0123456789");
        m.truncate(f, 4).unwrap();
        m.sync(f).unwrap();
        m.crash(CrashMode::Clean);
        assert_eq!(contents(&m, ROOT, "wal").unwrap(), b"0123");
    }

    #[test]
    fn a_sync_after_shrink_and_regrow_makes_the_zeros_durable() {
        let mut m = Model::new();
        let f = file(&mut m, ROOT, "seg");
        m.sync(ROOT).unwrap();
        m.write(f, 0, b"ABCDEFGH").unwrap();
        m.sync(f).unwrap();
        m.truncate(f, 2).unwrap();
        m.truncate(f, 6).unwrap();
        m.write(f, 7, b"Z").unwrap();
        m.sync(f).unwrap();
        m.crash(CrashMode::Clean);
        assert_eq!(contents(&m, ROOT, "seg").unwrap(), b"AB\0\0\0\0\0Z");
    }

    #[test]
    fn nested_directories_need_each_parent_synced() {
        let mut m = Model::new();
        let d = m.create(ROOT, b"snap", 0o755, true).unwrap();
        let f = file(&mut m, d, "s1");
        m.write(f, 0, b"x").unwrap();
        m.sync(f).unwrap();
        m.sync(d).unwrap();
        // `snap` itself was never made durable in the root.
        m.crash(CrashMode::Clean);
        assert_eq!(m.lookup(ROOT, b"snap"), Err(FsError::NotFound));
        let d = m.create(ROOT, b"snap", 0o755, true).unwrap();
        let f = file(&mut m, d, "s1");
        m.write(f, 0, b"x").unwrap();
        m.sync(f).unwrap();
        m.sync(d).unwrap();
        m.sync(ROOT).unwrap();
        m.crash(CrashMode::Clean);
        let d = m.lookup(ROOT, b"snap").unwrap();
        assert_eq!(contents(&m, d, "s1").unwrap(), b"x");
    }

    #[test]
    fn a_torn_crash_keeps_half_of_the_last_write() {
        let mut m = Model::new();
        let f = file(&mut m, ROOT, "wal");
        m.sync(ROOT).unwrap();
        m.write(f, 0, b"AAAA").unwrap();
        m.sync(f).unwrap();
        m.write(f, 4, b"BBBB").unwrap();
        m.write(f, 8, b"CCCCCCCC").unwrap();
        let r = m.crash(CrashMode::Torn);
        // The first unsynced write is lost (zeros), the last half-kept.
        assert_eq!(contents(&m, ROOT, "wal").unwrap(), b"AAAA\0\0\0\0CCCC");
        assert_eq!(r.files_torn, 1);
        assert_eq!(r.bytes_dropped, 12);
        // What survived the crash is what the disk holds now: a second crash keeps it.
        m.crash(CrashMode::Clean);
        assert_eq!(contents(&m, ROOT, "wal").unwrap(), b"AAAA\0\0\0\0CCCC");
    }

    #[test]
    fn a_torn_crash_of_a_synced_file_changes_nothing() {
        let mut m = Model::new();
        let f = file(&mut m, ROOT, "wal");
        m.sync(ROOT).unwrap();
        m.write(f, 0, b"ABCDEFGH").unwrap();
        m.sync(f).unwrap();
        let r = m.crash(CrashMode::Torn);
        assert_eq!(r, CrashReport::default());
        assert_eq!(contents(&m, ROOT, "wal").unwrap(), b"ABCDEFGH");
    }

    #[test]
    fn a_reordered_crash_keeps_some_unsynced_blocks_and_loses_others_in_any_order() {
        let mut m = Model::new();
        let f = file(&mut m, ROOT, "wal");
        m.sync(ROOT).unwrap();
        m.write(f, 0, &[b'A'; BLOCK]).unwrap();
        m.sync(f).unwrap();
        let unsynced: Vec<u8> = (0..16 * BLOCK).map(|i| 1 + (i / BLOCK) as u8).collect();
        m.write(f, BLOCK as u64, &unsynced).unwrap();
        let seed = 7;
        let r = m.crash(CrashMode::Reordered { seed });
        let got = contents(&m, ROOT, "wal").unwrap();
        assert_eq!(&got[..BLOCK], &[b'A'; BLOCK][..], "synced block changed");
        let kept: Vec<bool> = (1..=16).map(|b| keeps(seed, f, b)).collect();
        assert!(kept.contains(&true) && kept.contains(&false), "{kept:?}");
        let last_kept = kept.iter().rposition(|&k| k).unwrap() + 1;
        assert_eq!(got.len(), (last_kept + 1) * BLOCK);
        for (i, &k) in kept.iter().enumerate().take(last_kept) {
            let block = &got[(i + 1) * BLOCK..(i + 2) * BLOCK];
            let want = if k { 1 + i as u8 } else { 0 };
            assert!(block.iter().all(|&b| b == want), "block {}", i + 1);
        }
        assert_eq!(r.blocks_kept as usize, kept.iter().filter(|&&k| k).count());
        assert_eq!(r.blocks_kept + r.blocks_lost, 16);
        // What survived is on the disk now: a second crash keeps it.
        m.crash(CrashMode::Clean);
        assert_eq!(contents(&m, ROOT, "wal").unwrap(), got);
    }

    #[test]
    fn inode_numbers_are_never_reused() {
        let mut m = Model::new();
        let a = file(&mut m, ROOT, "a");
        m.crash(CrashMode::Clean);
        let b = file(&mut m, ROOT, "a");
        assert!(b > a);
    }

    #[test]
    fn an_open_unlinked_file_stays_readable_until_released() {
        let mut m = Model::new();
        let f = file(&mut m, ROOT, "a");
        m.write(f, 0, b"x").unwrap();
        m.open(f).unwrap();
        m.remove(ROOT, b"a", false).unwrap();
        assert_eq!(m.read(f, 0, 10).unwrap(), b"x");
        m.release(f);
        assert_eq!(m.attr(f), Err(FsError::NotFound));
    }

    #[test]
    fn posix_errors() {
        let mut m = Model::new();
        let d = m.create(ROOT, b"d", 0o755, true).unwrap();
        file(&mut m, d, "f");
        file(&mut m, ROOT, "g");
        assert_eq!(
            m.create(ROOT, b"d", 0o644, false).unwrap_err(),
            FsError::Exists
        );
        assert_eq!(m.remove(ROOT, b"d", true).unwrap_err(), FsError::NotEmpty);
        assert_eq!(m.remove(ROOT, b"d", false).unwrap_err(), FsError::IsDir);
        assert_eq!(m.remove(ROOT, b"g", true).unwrap_err(), FsError::NotDir);
        assert_eq!(
            m.rename(ROOT, b"g", ROOT, b"d", false).unwrap_err(),
            FsError::IsDir
        );
        assert_eq!(
            m.rename(ROOT, b"d", d, b"x", false).unwrap_err(),
            FsError::Invalid
        );
        assert_eq!(
            m.rename(ROOT, b"g", d, b"f", true).unwrap_err(),
            FsError::Exists
        );
        assert_eq!(m.write(ROOT, 0, b"x").unwrap_err(), FsError::IsDir);
        assert_eq!(
            m.write(m.lookup(ROOT, b"g").unwrap(), u64::MAX, b"x")
                .unwrap_err(),
            FsError::TooBig
        );
        assert_eq!(
            m.create(ROOT, b"a/b", 0o644, false).unwrap_err(),
            FsError::Invalid
        );
    }

    #[test]
    fn stats_count_syncs_and_what_a_crash_would_drop() {
        let mut m = Model::new();
        let f = file(&mut m, ROOT, "a");
        m.write(f, 0, b"12345").unwrap();
        let s = m.stats();
        assert_eq!((s.writes, s.bytes_written, s.unsynced_bytes), (1, 5, 5));
        assert_eq!(s.unsynced_entries, 1);
        m.sync(f).unwrap();
        m.sync(ROOT).unwrap();
        let s = m.stats();
        assert_eq!((s.file_syncs, s.dir_syncs, s.unsynced_bytes), (1, 1, 0));
        assert_eq!(s.unsynced_entries, 0);
    }
}
