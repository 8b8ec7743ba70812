//! lossyfs: a FUSE filesystem that loses what a disk loses when the power goes (LazyFS's
//! model). Everything written since a file's last `fsync`/`fdatasync`, and every create,
//! unlink and rename since the last `fsync` of its directory, lives in a volatile layer that a
//! `crash` command drops ([`model`] has the rules and their tests; [`fuse`] serves them).
//!
//! It is all in memory: data dirs in tests are small. One process serves one mount
//! (`lossyfs --mount DIR --control SOCKET`, `src/bin/lossyfs.rs`); the control socket takes
//! one command per line and answers one line of JSON:
//!
//! | command | effect | answer |
//! |---|---|---|
//! | `crash` | power cut: current := durable | `{"ok":true,"crash":{files_reverted, bytes_dropped, …}}` |
//! | `crash-torn` | the same, but the last unsynced write of each file is half kept | the same |
//! | `crash-reordered SEED` | the same, but each unsynced 512-byte block is kept or lost by a coin from SEED (later writes may survive earlier ones) | the same, with `blocks_kept`, `blocks_lost` |
//! | `stats` | | `{"ok":true,"stats":{writes, file_syncs, dir_syncs, unsynced_bytes, …}}` |
//! | `ping` | | `{"ok":true}` |
//! | `unmount` | unmount and exit | `{"ok":true}` |
//!
//! What it does not model: reordering across a sync (a sync makes everything before it
//! durable), lying disks (a sync that returns before the data is
//! safe), I/O errors and full disks, hard links and symlinks (refused with `EPERM`), xattrs.
//! A crash must only be sent while no process uses the mount (the harness kills the node
//! first): open handles are forgotten.

pub mod fuse;
pub mod model;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::json;

use model::{CrashMode, Model};

/// Answers one control command (the table above). `quit` is set by `unmount`.
pub fn command(model: &Mutex<Model>, line: &str, quit: &AtomicBool) -> serde_json::Value {
    let mut m = model.lock().unwrap_or_else(|p| p.into_inner());
    let line = line.trim();
    if let Some(seed) = line.strip_prefix("crash-reordered ") {
        return match seed.trim().parse() {
            Ok(seed) => json!({"ok": true, "crash": m.crash(CrashMode::Reordered { seed })}),
            Err(e) => {
                json!({"ok": false, "error": format!("crash-reordered wants a seed (u64): {e}")})
            }
        };
    }
    match line {
        "crash" => json!({"ok": true, "crash": m.crash(CrashMode::Clean)}),
        "crash-torn" => json!({"ok": true, "crash": m.crash(CrashMode::Torn)}),
        "stats" => json!({"ok": true, "stats": m.stats()}),
        "ping" => json!({"ok": true}),
        "unmount" => {
            quit.store(true, Ordering::SeqCst);
            json!({"ok": true})
        }
        other => {
            json!({"ok": false, "error": format!("unknown command {other:?} (crash, crash-torn, crash-reordered SEED, stats, ping, unmount)")})
        }
    }
}

/// Serves the control socket until `quit` is set (polls it every 50 ms).
pub fn serve_control(listener: UnixListener, model: Arc<Mutex<Model>>, quit: Arc<AtomicBool>) {
    listener
        .set_nonblocking(true)
        .expect("nonblocking control socket");
    while !quit.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                let (model, quit) = (model.clone(), quit.clone());
                std::thread::spawn(move || {
                    let _ = stream.set_nonblocking(false);
                    let Ok(mut out) = stream.try_clone() else {
                        return;
                    };
                    for line in BufReader::new(stream).lines() {
                        let Ok(line) = line else { return };
                        let answer = command(&model, &line, &quit);
                        if writeln!(out, "{answer}").is_err() {
                            return;
                        }
                    }
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => {
                eprintln!("lossyfs: control socket: {e}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// Sends one command to a lossyfs control socket and returns its JSON answer (an error if the
/// answer says `"ok": false`).
pub fn control(socket: &Path, cmd: &str) -> Result<serde_json::Value> {
    let mut s = UnixStream::connect(socket)
        .with_context(|| format!("connect to lossyfs control {}", socket.display()))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    writeln!(s, "{cmd}")?;
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line)?;
    let v: serde_json::Value = serde_json::from_str(line.trim())
        .with_context(|| format!("lossyfs answered {line:?} to {cmd}"))?;
    if v["ok"] != json!(true) {
        bail!("lossyfs refused {cmd}: {v}");
    }
    Ok(v)
}

/// Mounts a fresh lossyfs on `dir` in this process (the FUSE session runs on its own thread;
/// dropping the session unmounts). Needs root (or fusermount3) and `/dev/fuse`.
pub fn mount(dir: &Path) -> Result<(fuser::BackgroundSession, Arc<Mutex<Model>>)> {
    let model = Arc::new(Mutex::new(Model::new()));
    let mut cfg = fuser::Config::default();
    cfg.mount_options = vec![
        fuser::MountOption::FSName("lossyfs".into()),
        fuser::MountOption::Subtype("lossyfs".into()),
    ];
    let fs = fuse::LossyFs {
        model: model.clone(),
    };
    let session = fuser::spawn_mount(fs, dir, &cfg)
        .with_context(|| format!("mount lossyfs on {}", dir.display()))?;
    Ok((session, model))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_commands_answer_json() {
        let m = Mutex::new(Model::new());
        let quit = AtomicBool::new(false);
        {
            let mut g = m.lock().unwrap();
            let f = g.create(model::ROOT, b"a", 0o644, false).unwrap();
            g.sync(model::ROOT).unwrap();
            g.write(f, 0, b"12345").unwrap();
        }
        let s = command(&m, "stats", &quit);
        assert_eq!(s["stats"]["unsynced_bytes"], json!(5));
        let c = command(&m, "crash\n", &quit);
        assert_eq!(c["crash"]["bytes_dropped"], json!(5));
        assert_eq!(c["crash"]["files_reverted"], json!(1));
        assert_eq!(command(&m, "nonsense", &quit)["ok"], json!(false));
        assert!(!quit.load(Ordering::SeqCst));
        command(&m, "unmount", &quit);
        assert!(quit.load(Ordering::SeqCst));
    }
}
