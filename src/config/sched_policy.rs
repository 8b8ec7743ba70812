//! `server.sched_policy`: the Linux CPU scheduling policy of the node's process, set once at
//! start, before any thread exists, so that every thread inherits it.
//!
//! **HandOffsWithoutPreemption.** A write or a read crosses several threads of one node (a
//! session's tokio worker, the Raft core, the WAL's sync thread, the state machine): each
//! hand-off is a wake-up. Under `SCHED_OTHER` (Linux's default, `SCHED_NORMAL` in the kernel)
//! a woken thread may preempt the thread that woke it on the spot, so the sender is switched
//! out in the middle of its work, often only to be switched back moments later: on the
//! project's 2-core VM a quarter of a leader's context switches under one writing client were
//! such preemptions right after a `send`, a futex wake or an eventfd write (`perf record -e
//! sched:sched_switch`). Under `SCHED_BATCH` a waking thread never preempts the running one
//! (the kernel's `check_preempt_wakeup_fair` returns early for it): the sender finishes its
//! turn, the woken thread runs on an idle core at once or after the sender blocks, its slice
//! ends, or the next tick. Nothing else changes: the same fair share of CPU, no privilege
//! needed (`SCHED_OTHER` → `SCHED_BATCH` is allowed to any process), and no real-time policy
//! that could starve the machine. Measured side by side (`benches/set_ab.sh`,
//! `benches/HISTORY.md` "SCHED_BATCH"). Timing-sensitive work (heartbeats, elections) waits at most for the
//! running thread to block or use up its time slice (milliseconds), against election
//! timeouts of hundreds of milliseconds (`benches/elections.sh`: no false election).
//!
//! `"other"` keeps the default policy. On a platform without `sched_setscheduler` the option
//! is ignored with a warning.

use std::fmt;

use serde::Deserialize;

/// The process's CPU scheduling policy (module doc).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SchedPolicy {
    /// `SCHED_BATCH`: a wake-up never preempts the running thread (HandOffsWithoutPreemption).
    #[default]
    Batch,
    /// `SCHED_OTHER`: Linux's default.
    Other,
}

impl SchedPolicy {
    /// The policy's name as written in config.
    pub fn as_str(self) -> &'static str {
        match self {
            SchedPolicy::Batch => "batch",
            SchedPolicy::Other => "other",
        }
    }

    /// Sets this policy on the calling thread, which every thread it starts afterwards
    /// inherits: call it first thing in `main`, before the runtime starts its workers.
    #[cfg(target_os = "linux")]
    pub fn apply_to_process(self) -> std::io::Result<()> {
        let policy = match self {
            SchedPolicy::Batch => libc::SCHED_BATCH,
            SchedPolicy::Other => libc::SCHED_OTHER,
        };
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: pid 0 is the calling thread; `param` is a valid sched_param for the call.
        if unsafe { libc::sched_setscheduler(0, policy, &param) } == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }

    /// Sets this policy on the calling thread (not supported here: module doc).
    #[cfg(not(target_os = "linux"))]
    pub fn apply_to_process(self) -> std::io::Result<()> {
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "scheduling policies are only set on Linux",
        ))
    }
}

impl fmt::Display for SchedPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
