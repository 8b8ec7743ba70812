//! The thread Raft runs on when `[server] raft_thread` is set (off by default), and how
//! Raft's tasks find their runtime either way.
//!
//! **RaftOnItsOwnThread.** With the setting, openraft's core with its replication and
//! state-machine tasks, the peer RPC server and connections, the proposal batcher, the write
//! forwarders, early commit, expiry, compaction, snapshots and the read rounds run on one
//! current-thread tokio runtime driven by a thread of its own (named `raft`); client sessions
//! stay on the worker threads. A write's hand-offs inside Raft (a peer frame to the core, the
//! core to replication and apply, apply back to the batcher) then stay on one thread and never
//! wake a second worker to steal the task, and a long client command on a worker cannot hold
//! up heartbeats. The cost: Raft's own work is bounded by one core, and a request that needs
//! Raft (a write, a lease read on a follower, a watch event to a session) crosses from one
//! thread to the other and back: measured slower at one client, for lease reads and for watch
//! events, faster for writes under load (`benches/results/2026-12-06-raft-thread/`), so it is
//! a setting, not the default.
//!
//! Everything Raft spawns must land on that runtime: `raft::start` runs on it (so the tasks it
//! spawns, and those spawned by them, are its), and the tasks a session starts later (a
//! forwarder for a new leader, a read round) are spawned through the handle captured at start
//! ([`RaftTasks`]), not with `tokio::spawn` on the caller's runtime. Without the setting that
//! handle is the worker threads' runtime, so behaviour is as before.

use std::future::Future;
use std::io;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// Where Raft's tasks are spawned: the runtime `raft::start` ran on (RaftOnItsOwnThread).
#[derive(Clone, Debug)]
pub struct RaftTasks(Handle);

impl RaftTasks {
    /// The runtime of the calling task. Called from `raft::start`, which runs on Raft's runtime.
    pub fn current() -> Self {
        Self(Handle::current())
    }

    /// Spawns `task` on Raft's runtime, from any runtime or thread.
    pub fn spawn<F>(&self, task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.0.spawn(task)
    }
}

/// The `raft` thread and its current-thread runtime. Dropping it stops the runtime; the tasks
/// still on it are dropped with it (a node shuts its tasks down before that).
pub struct RaftThread {
    tasks: RaftTasks,
    stop: Option<oneshot::Sender<()>>,
}

impl RaftThread {
    /// Starts the thread and its runtime (timers and I/O enabled).
    pub fn start() -> io::Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let tasks = RaftTasks(rt.handle().clone());
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("raft".into())
            .spawn(move || {
                rt.block_on(async {
                    let _ = stopped.await;
                });
            })?;
        Ok(Self {
            tasks,
            stop: Some(stop),
        })
    }

    /// Where to spawn tasks on the thread's runtime.
    pub fn tasks(&self) -> &RaftTasks {
        &self.tasks
    }
}

impl Drop for RaftThread {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A task spawned through the thread runs there, not on the caller's runtime, and so does
    /// every task it spawns and every task spawned through the handle it captures.
    #[tokio::test]
    async fn tasks_spawned_through_the_raft_thread_run_on_it() {
        let t = RaftThread::start().expect("raft thread");
        let name = || std::thread::current().name().map(str::to_owned);
        let (outer, inner, tasks) = t
            .tasks()
            .spawn(async move {
                let inner = tokio::spawn(async move { name() }).await.expect("inner");
                (name(), inner, RaftTasks::current())
            })
            .await
            .expect("outer");
        assert_eq!(outer.as_deref(), Some("raft"));
        assert_eq!(inner.as_deref(), Some("raft"));
        let from_here = tasks.spawn(async move { name() }).await.expect("later");
        assert_eq!(from_here.as_deref(), Some("raft"));
        assert_ne!(name().as_deref(), Some("raft"));
    }
}
