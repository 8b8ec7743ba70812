//! A persisted snapshot's file ([`SnapshotFile`]): its header (the meta), its store bytes, and
//! decoding them through a read-only memory map; and the low-priority thread snapshot work runs
//! on (SnapshotYields). The file layout is drawn in `mod.rs` ("Persistence").

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::super::codec::decode;
use super::super::typ::SnapshotMeta;
use super::Layout;
use crate::store::{SnapshotError, Store};

/// A snapshot's store bytes in a file: what openraft holds, sends and installs.
///
/// The handle stays valid when a newer snapshot is renamed over the file's path (the old
/// inode lives while it is open), so a transfer in progress is never cut by a build.
pub struct SnapshotFile {
    pub(super) file: File,
    /// Where the store bytes start in `file`.
    pub(super) offset: u64,
    /// How many store bytes there are.
    pub(super) len: u64,
    /// The store, already decoded and checked from these bytes by whoever received them
    /// (`rpc.rs` checks a transfer before it hands it to openraft), so install decodes once.
    pub(super) decoded: Option<Box<Store>>,
    /// A transfer's temp file, removed when this is dropped.
    pub(super) temp: Option<PathBuf>,
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
    pub(super) fn load(&mut self) -> io::Result<Store> {
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
    decode_mapped_sections(file, offset, len)
        .map(|(store, _)| store)
        .map_err(|e| e.to_string())
}

/// [`decode_mapped`], also returning each delta section's label and length.
fn decode_mapped_sections(
    file: &File,
    offset: u64,
    len: u64,
) -> Result<(Store, Vec<(Bytes, usize)>), SnapshotError> {
    let io = |e: io::Error| SnapshotError::Corrupt(e.to_string());
    let file_len = file.metadata().map_err(io)?.len();
    if offset.checked_add(len).is_none_or(|end| end > file_len) {
        return Err(SnapshotError::Corrupt(format!(
            "snapshot file is {file_len} bytes, expected at least {offset} + {len}"
        )));
    }
    let len = usize::try_from(len)
        .map_err(|_| SnapshotError::Corrupt("snapshot larger than the address space".into()))?;
    if len == 0 {
        return Store::from_snapshot_and_deltas(&[]);
    }
    // SAFETY: the map is read-only and the file is one of our snapshot or transfer files. The
    // bytes mapped are never modified while mapped: a transfer's or a build's file is written
    // once (temp file, fsync) before anyone reads it, a newer snapshot is a new file renamed
    // over the path (this handle keeps the old inode), and a delta is appended past the end
    // of every length handed out (DeltaAppend). A snapshot file is cut short only by
    // [`load_at_start`] before anything maps it, and by a failed append back to the length it
    // had. Nothing else writes to the snapshot dir while the node runs.
    let map = unsafe {
        memmap2::MmapOptions::new()
            .offset(offset)
            .len(len)
            .map(file)
    }
    .map_err(|e| SnapshotError::Corrupt(format!("cannot map the snapshot: {e}")))?;
    Store::from_snapshot_and_deltas(&map)
}

/// Opens the current snapshot file at `path` at start (`None`: there is none): the meta it
/// brings the state to (its last delta's, else its header's), its layout, and its store
/// decoded with every delta and checked. **DeltaAppend**: a delta a crash left unfinished
/// (its header is written last, HeaderLast in `store/snapshot_delta.rs`) is cut off, fsynced,
/// and the file loads as it was before that append began (the build that appended it had not
/// returned, so the log behind it is still there). Anything else wrong refuses to start,
/// naming the file.
pub(super) fn load_at_start(path: &Path) -> io::Result<Option<(SnapshotMeta, Layout, Store)>> {
    let refuse = |e: &dyn std::fmt::Display| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("snapshot {}: {e}", path.display()),
        )
    };
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let (base_meta, header) = read_header(&mut f).map_err(|e| refuse(&e))?;
    for _ in 0..2 {
        let store_len = f.metadata()?.len() - header;
        match decode_mapped_sections(&f, header, store_len) {
            Ok((store, deltas)) => {
                let delta_bytes: usize = deltas.iter().map(|(_, n)| n).sum();
                let meta = match deltas.last() {
                    Some((label, _)) => decode::<SnapshotMeta>(label).map_err(|e| refuse(&e))?,
                    None => base_meta.clone(),
                };
                let layout = Layout {
                    base_meta,
                    header,
                    store_len,
                    base_len: store_len - delta_bytes as u64,
                    revision: store.revision(),
                };
                return Ok(Some((meta, layout, store)));
            }
            Err(SnapshotError::Unfinished { offset }) => {
                let at = header + offset as u64;
                tracing::warn!(
                    path = %path.display(),
                    at,
                    "snapshot delta left unfinished by a crash: cut off"
                );
                let w = std::fs::OpenOptions::new().write(true).open(path)?;
                w.set_len(at)?;
                w.sync_all()?;
            }
            Err(e) => return Err(refuse(&e)),
        }
    }
    Err(refuse(&"a delta still unfinished after cutting one off"))
}

/// Reads a snapshot file's header: its meta, and the offset of the store bytes.
pub(super) fn read_header(f: &mut File) -> io::Result<(SnapshotMeta, u64)> {
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
pub(super) fn remove_temp_files(dir: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "tmp") {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

/// The CPU niceness of the thread that encodes and writes a snapshot (SnapshotYields).
const SNAPSHOT_NICE: libc::c_int = 10;

/// Runs `f` (a snapshot encode and write) on a thread of its own at a lower CPU priority
/// (SnapshotYields): never on a runtime worker, and on a two-core machine the runtime's
/// workers and the log's sync thread come first when they want the CPU.
pub(super) async fn on_snapshot_thread<T: Send + 'static>(
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
