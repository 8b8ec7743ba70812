//! The Raft log's durability, seen from outside a real `redraft` process.
//!
//! - DurableBeforeAck: under `strace`, N sequential acknowledged SETs make at least N
//!   fsync/fdatasync calls on the log's segment files (and none with the test-only failpoint
//!   `log_sync_off`, which shows the count has teeth).
//! - TornTailOnly: a corrupted record in the middle of the log refuses to start, naming the
//!   file and the byte offset.
//! - A data dir whose log an earlier redraft kept in sled is refused with the way to move it.
//! - SpareAhead: a node whose data dir is on a small tmpfs that fills up refuses writes with a
//!   clear error while reads go on, and resumes once space returns, with every acknowledged
//!   write still there.
//! - CautiousPrealloc: a snapshot whose key map claims more entries than memory can hold
//!   refuses to start naming the snapshot file, not with an abort.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{connect, file_tail, free_ports, strip_ansi, BIN};

/// One node's files and ports.
struct NodeDir {
    config: PathBuf,
    data: PathBuf,
    log: PathBuf,
    addr: String,
}

fn node_dir(root: &Path) -> NodeDir {
    let ports = free_ports(2);
    let data = root.join("node1");
    let config = root.join("cluster.toml");
    std::fs::write(
        &config,
        format!(
            "[cluster]\nname = \"wal\"\n[[node]]\nid = 1\nraft_addr = \"127.0.0.1:{}\"\n\
             redis_addr = \"127.0.0.1:{}\"\ndata_dir = \"{}\"\n",
            ports[0],
            ports[1],
            data.display()
        ),
    )
    .unwrap();
    NodeDir {
        config,
        data,
        log: root.join("node1.log"),
        addr: format!("127.0.0.1:{}", ports[1]),
    }
}

/// Starts the node, behind `wrapper` (e.g. strace) if given, with `env`.
fn spawn(n: &NodeDir, wrapper: &[String], env: &[(&str, &str)]) -> Child {
    let args = [
        "--config".to_string(),
        n.config.display().to_string(),
        "--node".into(),
        "1".into(),
        "--log".into(),
        "info".into(),
    ];
    let mut cmd = match wrapper.split_first() {
        Some((prog, rest)) => {
            let mut c = Command::new(prog);
            c.args(rest).arg(BIN);
            c
        }
        None => Command::new(BIN),
    };
    cmd.args(args)
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&n.log).unwrap());
    cmd.spawn()
        .unwrap_or_else(|e| panic!("spawn {:?}: {e}", cmd.get_program()))
}

/// Waits until the node answers a write (it leads).
fn must_ready(n: &NodeDir) -> redis::Connection {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(mut c) = connect(&n.addr, Duration::from_secs(2)) {
            let r: redis::RedisResult<String> =
                redis::cmd("SET").arg("ready").arg("1").query(&mut c);
            if r.is_ok() {
                return c;
            }
        }
        assert!(
            Instant::now() < deadline,
            "node never took a write:\n{}",
            file_tail(&n.log, 40)
        );
        thread::sleep(Duration::from_millis(100));
    }
}

fn must_exit(child: &mut Child, within: Duration, log: &Path) -> ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("process still running:\n{}", file_tail(log, 40));
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Stops the node cleanly (SHUTDOWN), so a tracer around it flushes its output.
fn must_shutdown(con: &mut redis::Connection, child: &mut Child, log: &Path) {
    let _: redis::RedisResult<()> = redis::cmd("SHUTDOWN").query(con);
    must_exit(child, Duration::from_secs(30), log);
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Counts fsync/fdatasync calls on the log's segment files between `from` and `to` (unix
/// seconds) in an `strace -ttt -y` output file.
fn log_syncs_between(trace: &Path, from: f64, to: f64) -> usize {
    let text = std::fs::read_to_string(trace).unwrap();
    text.lines()
        .filter(|l| l.contains("raft-log/wal/") && l.contains("= 0"))
        .filter(|l| l.contains("fsync(") || l.contains("fdatasync("))
        .filter_map(|l| {
            // "<pid> <secs.micros> fdatasync(12</…/raft-log/wal/…seg>) = 0"
            l.split_whitespace()
                .find_map(|w| w.parse::<f64>().ok().filter(|t| *t > 1e9))
        })
        .filter(|t| (from..=to).contains(t))
        .count()
}

/// Runs `n` sequential SETs under strace (with `env`) and returns the log syncs made meanwhile.
fn syncs_during_sets(n: usize, env: &[(&str, &str)]) -> usize {
    if Command::new("strace").arg("-V").output().is_err() {
        panic!("strace is not installed: run `apt-get install strace` (scripts/test.sh does)");
    }
    let dir = tempfile::tempdir().unwrap();
    let node = node_dir(dir.path());
    let trace = dir.path().join("strace.out");
    let wrapper: Vec<String> = [
        "strace",
        "-f",
        "-ttt",
        "-y",
        "-e",
        "trace=fsync,fdatasync",
        "-o",
        trace.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut child = spawn(&node, &wrapper, env);
    let mut con = must_ready(&node);
    let from = unix_now();
    for i in 0..n {
        let ok: String = redis::cmd("SET")
            .arg(format!("k{i}"))
            .arg(i)
            .query(&mut con)
            .unwrap();
        assert_eq!(ok, "OK");
    }
    let to = unix_now();
    must_shutdown(&mut con, &mut child, &node.log);
    log_syncs_between(&trace, from, to)
}

/// DurableBeforeAck, seen by strace: every acknowledged SET was preceded by a log sync of
/// its entry (openraft counts the leader's own log toward the quorum only once its
/// `IOFlushed` fired, after the sync). The committed id's sync follows off the write's path
/// (DurableReads) and may share the next SET's: between N and 2N syncs for N SETs.
#[test]
fn acknowledged_sets_are_fdatasynced_under_strace() {
    const N: usize = 50;
    let syncs = syncs_during_sets(N, &[]);
    eprintln!("{N} acknowledged SETs, {syncs} fsync/fdatasync calls on the log");
    assert!(
        syncs >= N,
        "only {syncs} log syncs for {N} acknowledged sequential SETs (want an entry sync for \
         each)"
    );
    // Teeth: with the failpoint that skips every log sync, the same count sees none.
    let off = syncs_during_sets(10, &[("REDRAFT_FAILPOINTS", "log_sync_off")]);
    assert_eq!(off, 0, "log_sync_off still synced the log");
}

/// The segment files of a data dir, oldest first.
fn segments(data: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(data.join("raft-log/wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    v.sort();
    v
}

/// The byte offsets of the records of a segment (format drawn in `src/raft/wal/mod.rs`).
fn record_offsets(bytes: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut off = 8;
    while off + 8 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[off..off + 4].try_into().unwrap()) as usize;
        if len == 0 {
            break;
        }
        out.push(off);
        off += (8 + len).div_ceil(8) * 8;
    }
    out
}

/// A node in `root`, started, after `n` acknowledged SETs.
fn started_with_sets(root: &Path, n: usize) -> (NodeDir, Child, redis::Connection) {
    let node = node_dir(root);
    let child = spawn(&node, &[], &[]);
    let mut con = must_ready(&node);
    for i in 0..n {
        let _: String = redis::cmd("SET")
            .arg(format!("k{i}"))
            .arg(i)
            .query(&mut con)
            .unwrap();
    }
    (node, child, con)
}

/// Starts the node again and waits for it to refuse: its exit status and its log.
fn refused_start(node: &NodeDir) -> (ExitStatus, String) {
    let mut child = spawn(node, &[], &[]);
    let status = must_exit(&mut child, Duration::from_secs(30), &node.log);
    let text = strip_ansi(&std::fs::read_to_string(&node.log).unwrap());
    (status, text)
}

/// A corrupted record in the middle of the log: the node refuses to start and names the file
/// and the byte offset; nothing is silently dropped.
#[test]
fn corrupt_record_in_the_middle_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let (node, mut child, mut con) = started_with_sets(dir.path(), 20);
    must_shutdown(&mut con, &mut child, &node.log);

    let seg = segments(&node.data).pop().unwrap();
    let mut bytes = std::fs::read(&seg).unwrap();
    let offsets = record_offsets(&bytes);
    assert!(offsets.len() > 10, "{} records", offsets.len());
    let at = offsets[offsets.len() / 2];
    bytes[at + 8] ^= 0xff;
    std::fs::write(&seg, bytes).unwrap();

    let (status, text) = refused_start(&node);
    assert!(!status.success(), "started on a corrupt log:\n{text}");
    assert!(
        text.contains(&seg.display().to_string()),
        "names the file:\n{text}"
    );
    assert!(
        text.contains(&format!("byte offset {at}")),
        "names the offset:\n{text}"
    );
}

/// A data dir written by an earlier redraft (sled's `raft-log/db`, `conf`, `blobs`) is
/// refused at start with the way to move its data.
#[test]
fn sled_data_dir_is_refused_with_the_way_to_move_it() {
    let dir = tempfile::tempdir().unwrap();
    let node = node_dir(dir.path());
    let mut child = spawn(&node, &[], &[]);
    let mut con = must_ready(&node);
    must_shutdown(&mut con, &mut child, &node.log);
    // What sled left in raft-log/ (the WAL files of this run stay too: sled wins the check).
    std::fs::write(node.data.join("raft-log/conf"), b"segment_size: 524288\n").unwrap();
    std::fs::write(node.data.join("raft-log/db"), [0u8; 64]).unwrap();
    std::fs::create_dir_all(node.data.join("raft-log/blobs")).unwrap();

    let (status, text) = refused_start(&node);
    assert!(!status.success(), "started on a sled log:\n{text}");
    for want in ["sled", "redraft backup", "redraft restore"] {
        assert!(text.contains(want), "message lacks {want:?}:\n{text}");
    }
}

/// Unmounts a tmpfs on drop (after the node on it is gone).
struct Tmpfs(PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Fills the filesystem of `dir` with a file until ENOSPC.
fn fill(path: &Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0xabu8; 64 * 1024];
    loop {
        if f.write_all(&chunk).is_err() {
            break;
        }
    }
    let _ = f.sync_all();
}

/// SpareAhead, end to end: a full disk refuses writes with a clear error, reads go on, and once
/// space returns writes resume and every acknowledged write is there.
#[test]
fn full_disk_refuses_writes_keeps_reads_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let out = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=48m", "tmpfs"])
        .arg(&mnt)
        .output()
        .expect("run mount");
    assert!(
        out.status.success(),
        "this test needs root to mount a small tmpfs (CI runs as root): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _tmpfs = Tmpfs(mnt.clone());
    let node = node_dir(&mnt);
    let mut child = spawn(&node, &[], &[]);
    let mut con = must_ready(&node);
    let filler = mnt.join("filler");
    fill(&filler);

    // Large values fill the preallocated segment quickly; the next one cannot be made.
    let value = "v".repeat(256 * 1024);
    let mut acked = Vec::new();
    let mut refusal = None;
    for i in 0..200 {
        let r: redis::RedisResult<String> = redis::cmd("SET")
            .arg(format!("big{i}"))
            .arg(&value)
            .query(&mut con);
        match r {
            Ok(_) => acked.push(i),
            Err(e) => {
                refusal = Some(e.to_string());
                break;
            }
        }
    }
    let refusal = refusal.unwrap_or_else(|| panic!("no write was refused on a full disk"));
    assert!(refusal.contains("disk full on node 1"), "{refusal}");
    assert!(!acked.is_empty(), "some writes fit before the disk filled");
    // Reads go on, and the node is still up.
    let got: Option<String> = redis::cmd("GET").arg("big0").query(&mut con).unwrap();
    assert_eq!(got.as_deref(), Some(value.as_str()));
    assert!(
        child.try_wait().unwrap().is_none(),
        "node exited on a full disk"
    );

    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r: redis::RedisResult<String> = redis::cmd("SET").arg("after").arg("1").query(&mut con);
        match r {
            Ok(_) => break,
            Err(e) if Instant::now() < deadline => {
                assert!(e.to_string().contains("disk full"), "{e}");
                thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("writes never resumed after space returned: {e}"),
        }
    }
    for i in &acked {
        let got: Option<String> = redis::cmd("GET")
            .arg(format!("big{i}"))
            .query(&mut con)
            .unwrap();
        assert_eq!(got.as_deref(), Some(value.as_str()), "acknowledged big{i}");
    }
    must_shutdown(&mut con, &mut child, &node.log);
    // And after a restart.
    let mut child = spawn(&node, &[], &[]);
    let mut con = must_ready(&node);
    for i in acked.iter().chain([&0]) {
        let got: Option<String> = redis::cmd("GET")
            .arg(format!("big{i}"))
            .query(&mut con)
            .unwrap();
        assert_eq!(
            got.as_deref(),
            Some(value.as_str()),
            "acknowledged big{i} after restart"
        );
    }
    must_shutdown(&mut con, &mut child, &node.log);
}

/// CautiousPrealloc, seen from a real process: a snapshot whose key map claims 2^50 entries
/// (one damaged length) refuses to start with an error naming the snapshot file. Before, the
/// node died at start in a failed allocation of 2^56 bytes (SIGABRT, no message of ours).
#[test]
fn damaged_snapshot_length_refuses_to_start_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (node, mut child, mut con) = started_with_sets(dir.path(), 20);
    let _: redis::Value = redis::cmd("RAFT.SNAPSHOT").query(&mut con).unwrap();
    must_shutdown(&mut con, &mut child, &node.log);

    // current.snap = u32 BE meta length, meta, then the store: a version byte, the revision
    // and the compact revision (varints), then the key map's length (a varint).
    let snap = node.data.join("snapshot/current.snap");
    let bytes = std::fs::read(&snap).unwrap();
    let meta_len = u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
    let mut at = 4 + meta_len + 1;
    let skip_varint = |at: &mut usize| {
        while bytes[*at] & 0x80 != 0 {
            *at += 1;
        }
        *at += 1;
    };
    skip_varint(&mut at);
    skip_varint(&mut at);
    let map_len_at = at;
    skip_varint(&mut at);
    let mut damaged = bytes[..map_len_at].to_vec();
    // 2^50 entries: more bytes than any address space maps, whatever the allocator.
    let mut n: u64 = 1 << 50;
    while n >= 0x80 {
        damaged.push((n as u8) | 0x80);
        n >>= 7;
    }
    damaged.push(n as u8);
    damaged.extend_from_slice(&bytes[at..]);
    std::fs::write(&snap, damaged).unwrap();

    let (status, text) = refused_start(&node);
    assert!(
        status.code().is_some_and(|c| c != 0),
        "want a refusal with an exit status, got {status}:\n{text}"
    );
    assert!(
        text.contains(&snap.display().to_string()),
        "names the file:\n{text}"
    );
}
