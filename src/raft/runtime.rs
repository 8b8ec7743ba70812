//! The thread Raft runs on when `[server] raft_thread` is set (the default), and how Raft's
//! tasks find their runtime either way.
//!
//! **RaftOnItsOwnThread.** With the setting, openraft's core with its replication and
//! state-machine tasks, the peer RPC server and connections, the proposal batcher, the write
//! forwarders, early commit, expiry, compaction, snapshots and the read rounds run on one
//! current-thread tokio runtime driven by a thread of its own (named `raft`); client sessions
//! past the few beside it (below) stay on the worker threads. A write's hand-offs inside Raft
//! (a peer frame to the core, the core to replication and apply, apply back to the batcher)
//! then stay on one thread and never wake a second worker to steal the task (tokio's work
//! stealing woke ~4.4 threads per write), and a long command of a session on a worker cannot
//! hold up heartbeats. The cost: Raft's own work is bounded by one core, and a request of a
//! session on a worker that needs Raft (a write, a lease read on a follower, a watch event)
//! crosses from one thread to the other and back. Alone that was slower at one client, for
//! lease reads and for watch events and faster for writes under load
//! (`benches/results/2026-12-06-raft-thread/`); with the sessions beside Raft it is faster at
//! one client and under load, level for watch events, 7 % slower for lease reads on followers
//! and 13 % for linearizable reads at 256 clients (the leader's read rounds share the one
//! core; `benches/results/2026-12-06-sessions-beside-raft/`), so it is the default.
//!
//! Everything Raft spawns must land on that runtime: `raft::start` runs on it (so the tasks it
//! spawns, and those spawned by them, are its), and the tasks a session starts later (a
//! forwarder for a new leader, a read round) are spawned through the handle captured at start
//! ([`RaftTasks`]), not with `tokio::spawn` on the caller's runtime. Without the setting that
//! handle is the worker threads' runtime, so behaviour is as before.
//!
//! **SessionsBesideRaft.** With the setting, the first `[server] raft_thread_sessions` client
//! sessions (default [`crate::config::DEFAULT_RAFT_THREAD_SESSIONS`]) run on the `raft` thread
//! too, the rest on the workers; a session that ends frees its place for the next connection.
//! A session there hands its writes, lease reads and watch events to Raft without waking
//! another thread, as with one worker thread for everything: what a few clients (one writer,
//! a watcher) need. Under many connections most sessions still run on the workers, so client
//! I/O and parsing do not take Raft's one core. A long command of a session beside Raft (a
//! `KEYS *` over a large keyspace) holds up that node's heartbeats, as every session's does
//! with `raft_thread = false`.

use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// The stack of every thread that applies entries or runs client scripts (**ScriptStack**): the
/// `raft` thread, the runtimes' workers and their blocking pools (`main.rs`), so 8 MiB, what
/// Redis runs Lua with (its main thread's stack). A script's work recurses in Rust on that
/// stack (its reply's conversion, `cjson` at its depth limit of 1,000, the reply's encoding):
/// `cjson.encode` of a table nested past that limit overflowed the `raft` thread's default
/// 2 MiB in a debug build, on every node and at every replay of the entry. Only the pages a
/// thread touches are memory; the rest is address space (under `vm.overcommit_memory = 2`
/// each thread's whole stack counts against the commit limit).
pub const THREAD_STACK_BYTES: usize = 8 << 20;

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

/// The places for client sessions on the `raft` thread (SessionsBesideRaft): at most `limit`
/// sessions hold a [`HostedSession`] at once.
#[derive(Debug)]
pub struct SessionsBesideRaft {
    tasks: RaftTasks,
    hosted: Arc<AtomicUsize>,
    limit: usize,
}

/// A session's place on the `raft` thread, given back when dropped.
#[derive(Debug)]
pub struct HostedSession(Arc<AtomicUsize>);

impl Drop for HostedSession {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl SessionsBesideRaft {
    pub fn new(tasks: RaftTasks, limit: usize) -> Self {
        Self {
            tasks,
            hosted: Arc::new(AtomicUsize::new(0)),
            limit,
        }
    }

    /// A place for one more session on the `raft` thread, if one is free.
    pub fn claim(&self) -> Option<HostedSession> {
        self.hosted
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.limit).then_some(n + 1)
            })
            .ok()
            .map(|_| HostedSession(self.hosted.clone()))
    }

    /// Sessions running on the `raft` thread now (`INFO server` `raft_thread_sessions`).
    pub fn hosted(&self) -> usize {
        self.hosted.load(Ordering::Acquire)
    }

    /// Where a hosted session is spawned.
    pub fn tasks(&self) -> &RaftTasks {
        &self.tasks
    }
}

thread_local! {
    static ON_RAFT_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the caller runs on a `raft` thread (`raft_thread` on): a thread of Raft's alone,
/// where blocking holds up no other runtime's tasks (FollowerSyncsInline, `wal/sync.rs`).
pub fn on_raft_thread() -> bool {
    ON_RAFT_THREAD.with(std::cell::Cell::get)
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
            .thread_stack_size(THREAD_STACK_BYTES)
            .build()?;
        let tasks = RaftTasks(rt.handle().clone());
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("raft".into())
            .stack_size(THREAD_STACK_BYTES)
            .spawn(move || {
                ON_RAFT_THREAD.with(|on| on.set(true));
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

    /// SessionsBesideRaft: no more than the limit at once, and a place given back is free
    /// again.
    #[tokio::test]
    async fn sessions_beside_raft_are_bounded_and_their_places_reused() {
        let t = RaftThread::start().expect("raft thread");
        let places = SessionsBesideRaft::new(t.tasks().clone(), 2);
        let a = places.claim().expect("first place");
        let b = places.claim().expect("second place");
        assert!(
            places.claim().is_none(),
            "a third session past the limit of 2"
        );
        assert_eq!(places.hosted(), 2);
        drop(a);
        assert_eq!(places.hosted(), 1);
        let c = places.claim().expect("the freed place");
        assert!(places.claim().is_none());
        drop((b, c));
        assert_eq!(places.hosted(), 0);
        let none = SessionsBesideRaft::new(t.tasks().clone(), 0);
        assert!(none.claim().is_none(), "a limit of 0 hosts no session");
    }
}
