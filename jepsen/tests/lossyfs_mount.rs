//! lossyfs mounted for real (the `lossyfs` binary, FUSE, the kernel in between): plain
//! `std::fs` calls, `fsync` of files and directories, then `crash` over the control socket,
//! and what is left is exactly what was synced.
//!
//! Needs root and `/dev/fuse` (CI runs as root); without them it says so and checks nothing.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jepsen::lossyfs::control;

struct Mounted {
    dir: PathBuf,
    mnt: PathBuf,
    sock: PathBuf,
    child: Child,
}

impl Mounted {
    fn new(name: &str) -> Option<Mounted> {
        if unsafe { libc::geteuid() } != 0 || !Path::new("/dev/fuse").exists() {
            eprintln!("lossyfs mount test: needs root and /dev/fuse; nothing checked");
            return None;
        }
        let dir = std::env::temp_dir().join(format!("lossyfs-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let mnt = dir.join("mnt");
        fs::create_dir_all(&mnt).unwrap();
        let sock = dir.join("control.sock");
        let child = Command::new(env!("CARGO_BIN_EXE_lossyfs"))
            .arg("--mount")
            .arg(&mnt)
            .arg("--control")
            .arg(&sock)
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn lossyfs");
        let deadline = Instant::now() + Duration::from_secs(10);
        while control(&sock, "ping").is_err() {
            assert!(Instant::now() < deadline, "lossyfs did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
        let mounts = fs::read_to_string("/proc/mounts").unwrap();
        assert!(
            mounts.contains(&format!("{} fuse", mnt.display())),
            "{mounts}"
        );
        Some(Mounted {
            dir,
            mnt,
            sock,
            child,
        })
    }

    fn crash(&self, cmd: &str) -> serde_json::Value {
        control(&self.sock, cmd).unwrap()["crash"].clone()
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = control(&self.sock, "unmount");
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn sync_dir(p: &Path) {
    File::open(p).unwrap().sync_all().unwrap();
}

fn read(p: &Path) -> Option<Vec<u8>> {
    let mut v = Vec::new();
    File::open(p).ok()?.read_to_end(&mut v).unwrap();
    Some(v)
}

#[test]
fn a_crash_keeps_exactly_what_was_synced() {
    let Some(m) = Mounted::new("keeps") else {
        return;
    };
    let d = &m.mnt;
    // A file written and fsynced, its directory fsynced: durable.
    let mut log = File::create(d.join("log")).unwrap();
    log.write_all(b"record-1;").unwrap();
    log.sync_data().unwrap();
    sync_dir(d);
    // More records, never synced: lost.
    log.write_all(b"record-2;").unwrap();
    drop(log);
    // A subdirectory made durable the whole way down.
    fs::create_dir(d.join("snap")).unwrap();
    fs::write(d.join("snap/s1"), b"snapshot").unwrap();
    File::open(d.join("snap/s1")).unwrap().sync_all().unwrap();
    sync_dir(&d.join("snap"));
    sync_dir(d);
    // An atomic replace without the final directory fsync: undone.
    fs::write(d.join("id"), b"old").unwrap();
    File::open(d.join("id")).unwrap().sync_all().unwrap();
    sync_dir(d);
    fs::write(d.join("id.tmp"), b"new").unwrap();
    File::open(d.join("id.tmp")).unwrap().sync_all().unwrap();
    fs::rename(d.join("id.tmp"), d.join("id")).unwrap();
    // A file fsynced whose directory entry never was: lost.
    let mut orphan = File::create(d.join("orphan")).unwrap();
    orphan.write_all(b"x").unwrap();
    orphan.sync_all().unwrap();
    drop(orphan);
    assert_eq!(read(&d.join("log")).unwrap(), b"record-1;record-2;");
    assert_eq!(read(&d.join("id")).unwrap(), b"new");

    let report = m.crash("crash");
    assert_eq!(read(&d.join("log")).unwrap(), b"record-1;", "{report}");
    assert_eq!(read(&d.join("orphan")), None, "{report}");
    assert_eq!(read(&d.join("snap/s1")).unwrap(), b"snapshot");
    assert_eq!(read(&d.join("id")).unwrap(), b"old");
    assert_eq!(
        read(&d.join("id.tmp")),
        None,
        "created after the last directory fsync"
    );
    assert_eq!(report["bytes_dropped"], 9, "{report}");
    assert!(
        report["entries_reverted"].as_u64().unwrap() >= 2,
        "{report}"
    );

    // The filesystem works on after a crash, and a second crash keeps the survivors.
    let mut log = OpenOptions::new().append(true).open(d.join("log")).unwrap();
    log.write_all(b"record-3;").unwrap();
    log.sync_data().unwrap();
    drop(log);
    m.crash("crash");
    assert_eq!(read(&d.join("log")).unwrap(), b"record-1;record-3;");
    let stats = control(&m.sock, "stats").unwrap();
    assert_eq!(stats["stats"]["crashes"], 2, "{stats}");
}

#[test]
fn preallocation_is_unsynced_size_like_any_write() {
    use std::os::fd::AsRawFd;
    let Some(m) = Mounted::new("falloc") else {
        return;
    };
    let p = m.mnt.join("seg");
    let f = File::create(&p).unwrap();
    sync_dir(&m.mnt);
    // A WAL preallocates its segments with posix_fallocate (FUSE_FALLOCATE).
    assert_eq!(
        unsafe { libc::posix_fallocate(f.as_raw_fd(), 0, 1 << 20) },
        0
    );
    assert_eq!(fs::metadata(&p).unwrap().len(), 1 << 20);
    drop(f);
    m.crash("crash");
    assert_eq!(
        fs::metadata(&p).unwrap().len(),
        0,
        "the size was never synced"
    );
    let f = OpenOptions::new().write(true).open(&p).unwrap();
    assert_eq!(
        unsafe { libc::posix_fallocate(f.as_raw_fd(), 0, 1 << 20) },
        0
    );
    f.sync_data().unwrap();
    drop(f);
    m.crash("crash");
    assert_eq!(fs::metadata(&p).unwrap().len(), 1 << 20);
    assert!(read(&p).unwrap().iter().all(|&b| b == 0));
}

#[test]
fn a_torn_crash_keeps_part_of_the_last_write() {
    let Some(m) = Mounted::new("torn") else {
        return;
    };
    let p = m.mnt.join("wal");
    let mut f = File::create(&p).unwrap();
    f.write_all(&[b'A'; 4096]).unwrap();
    f.sync_data().unwrap();
    sync_dir(&m.mnt);
    f.write_all(&[b'B'; 4096]).unwrap();
    drop(f);
    let report = m.crash("crash-torn");
    let data = read(&p).unwrap();
    assert_eq!(data.len(), 6144, "{report}");
    assert!(data[..4096].iter().all(|&b| b == b'A'));
    assert!(data[4096..].iter().all(|&b| b == b'B'));
    assert_eq!(report["files_torn"], 1, "{report}");
}

#[test]
fn a_reordered_crash_keeps_later_unsynced_blocks_and_loses_earlier_ones() {
    let Some(m) = Mounted::new("reordered") else {
        return;
    };
    let p = m.mnt.join("wal");
    let mut f = File::create(&p).unwrap();
    f.write_all(&[b'A'; 512]).unwrap();
    f.sync_data().unwrap();
    sync_dir(&m.mnt);
    // 32 unsynced blocks, block i filled with i.
    for i in 1..=32u8 {
        f.write_all(&[i; 512]).unwrap();
    }
    drop(f);
    let report = m.crash("crash-reordered 11");
    let data = read(&p).unwrap();
    assert!(data[..512].iter().all(|&b| b == b'A'), "{report}");
    let blocks: Vec<u8> = data[512..].chunks(512).map(|c| c[0]).collect();
    for (i, c) in data[512..].chunks(512).enumerate() {
        assert!(
            c.iter().all(|&b| b == c[0]) && (c[0] == 0 || c[0] == i as u8 + 1),
            "block {} is neither lost (zeros) nor kept whole: {report}",
            i + 1
        );
    }
    let kept = blocks.iter().filter(|&&b| b != 0).count() as u64;
    let first_lost = blocks.iter().position(|&b| b == 0);
    assert!(
        first_lost.is_some_and(|l| blocks[l..].iter().any(|&b| b != 0)),
        "no later block kept after a lost one: {blocks:?}"
    );
    assert_eq!(report["blocks_kept"], kept, "{report}");
    assert_eq!(
        report["blocks_kept"].as_u64().unwrap() + report["blocks_lost"].as_u64().unwrap(),
        32,
        "{report}"
    );
}
