//! What a run leaves behind and how it goes, however the run ends (CleanupOnEveryExit,
//! SweepLeftovers in `db`): the registry of processes, mounts, namespaces and links, the sweep of
//! an earlier run's leftovers, and the commands the rest of `db` runs.

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;

use anyhow::{bail, Context, Result};

/// Prefix of every namespace and interface name the harness creates.
pub const PREFIX: &str = "rdjp";

/// What has to go when the run ends, however it ends.
#[derive(Default)]
pub struct CleanupState {
    pub(super) pids: BTreeSet<u32>,
    /// lossyfs mount points, lazily unmounted after the processes are killed.
    pub(super) mounts: BTreeSet<PathBuf>,
    pub(super) namespaces: BTreeSet<String>,
    pub(super) links: BTreeSet<String>,
}

/// The global cleanup registry (CleanupOnEveryExit). A plain mutex: held only to edit the sets
/// or to clean up, never across an await.
pub static CLEANUP: Mutex<Option<CleanupState>> = Mutex::new(None);

pub(super) fn with_cleanup(f: impl FnOnce(&mut CleanupState)) {
    let mut g = CLEANUP.lock().unwrap_or_else(|p| p.into_inner());
    f(g.get_or_insert_with(Default::default));
}

/// Kills every registered process and removes every registered namespace and link. Idempotent.
pub fn cleanup_now() {
    let state = CLEANUP
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
        .unwrap_or_default();
    for pid in &state.pids {
        unsafe {
            libc::kill(*pid as i32, libc::SIGKILL);
        }
    }
    for pid in &state.pids {
        // Reap if it is our child; ignore otherwise.
        unsafe {
            libc::waitpid(*pid as i32, std::ptr::null_mut(), libc::WNOHANG);
        }
    }
    for m in &state.mounts {
        if let Ok(c) = std::ffi::CString::new(m.as_os_str().as_encoded_bytes()) {
            unsafe {
                libc::umount2(c.as_ptr(), libc::MNT_DETACH);
            }
        }
    }
    for ns in &state.namespaces {
        kill_ns_pids(ns);
        let _ = quiet(Command::new("ip").args(["netns", "del", ns]));
    }
    for link in &state.links {
        let _ = quiet(Command::new("ip").args(["link", "del", link]));
    }
}

pub(super) fn kill_ns_pids(ns: &str) {
    if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            if let Ok(pid) = pid.parse::<i32>() {
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
        }
    }
}

/// Runs a command, returning its stdout, or an error with its stderr.
pub(super) fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("run {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub(super) fn quiet(cmd: &mut Command) -> Result<()> {
    cmd.stdout(Stdio::null()).stderr(Stdio::null());
    run(cmd).map(|_| ())
}

/// The pid encoded in a harness name (`rdjp<pid>…`), if it is one.
pub fn owner_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(PREFIX)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    if digits.is_empty() || digits.len() == rest.len() {
        return None;
    }
    digits.parse().ok()
}

/// Whether `pid`, the owner named in a harness name, is still running (a zombie is not: a
/// harness killed with SIGKILL stays a zombie until its parent reaps it, and its leftovers must
/// still be swept). Any live process counts, whatever its binary: the harness runs as
/// `redraft-jepsen` and also inside test binaries (`jepsen/tests/*`), and sweeping the
/// namespaces of a test running beside another run broke that test. A pid reused by another
/// program only delays the sweep until that program ends (SweepOnlyTheDead).
pub(super) fn owner_alive(pid: u32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // "pid (comm) state ...": comm may contain spaces and parentheses; the state follows the
    // last ')'.
    let Some(close) = stat.rfind(')') else {
        return false;
    };
    let state = stat[close + 1..].split_whitespace().next().unwrap_or("");
    !matches!(state, "Z" | "X")
}

/// Removes namespaces and links left by harness runs that are gone (SweepLeftovers). Returns
/// what it removed.
pub fn sweep_leftovers() -> Vec<String> {
    let mut removed = Vec::new();
    let me = std::process::id();
    if let Ok(list) = run(Command::new("ip").args(["netns", "list"])) {
        for line in list.lines() {
            let name = line.split_whitespace().next().unwrap_or("");
            if let Some(pid) = owner_pid(name) {
                if pid != me && !owner_alive(pid) {
                    kill_ns_pids(name);
                    if quiet(Command::new("ip").args(["netns", "del", name])).is_ok() {
                        removed.push(name.to_string());
                    }
                }
            }
        }
    }
    if let Ok(list) = run(Command::new("ip").args(["-o", "link", "show"])) {
        for line in list.lines() {
            // "12: rdjp123b: <...>" or "13: rdjp123v1@if2: <...>"
            let Some(name) = line.split(": ").nth(1) else {
                continue;
            };
            let name = name.split('@').next().unwrap_or(name);
            if let Some(pid) = owner_pid(name) {
                if pid != me
                    && !owner_alive(pid)
                    && quiet(Command::new("ip").args(["link", "del", name])).is_ok()
                {
                    removed.push(name.to_string());
                }
            }
        }
    }
    removed
}

/// Whether this process can make network namespaces (root and a working `ip netns` and
/// `iptables`).
pub fn netns_available() -> Result<(), String> {
    if unsafe { libc::geteuid() } != 0 {
        return Err("not root".into());
    }
    for tool in ["ip", "iptables"] {
        let ok = Command::new(tool)
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            return Err(format!(
                "`{tool}` not found (apt-get install -y iptables iproute2)"
            ));
        }
    }
    Ok(())
}
