//! The registry of live client connections, for `CLIENT LIST`, `CLIENT INFO`, `CLIENT KILL` and
//! `INFO clients`. It owns what one session shows to the others; it does not run commands or
//! touch sockets.
//!
//! Cost model: a session updates its own [`ClientHandle`] with relaxed atomic stores once per
//! command batch (no lock, no shared cache line with other sessions). The registry map's lock is
//! taken only at connect, at disconnect, and by the commands that walk every client. A client's
//! name and library fields sit behind a mutex of their own, touched by `CLIENT SETNAME`,
//! `CLIENT SETINFO`, `HELLO SETNAME`, `RESET` and the listing commands, never per command.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::{mpsc, Notify};

use crate::commands::table::CmdId;
use crate::protocol::{Frame, ReplyStats};

/// The most pushes (client-tracking invalidations) waiting for one client before it is
/// disconnected, as Redis disconnects a client past its output buffer limit.
pub const PUSH_QUEUE_BOUND: usize = 16 * 1024;

/// One client connection as the other sessions see it. The session that owns it is the only
/// writer of everything but `kill`.
#[derive(Debug)]
pub struct ClientHandle {
    /// `CLIENT ID`: unique on this node, grows with every connection.
    pub id: u64,
    pub addr: SocketAddr,
    /// The local address the client connected to (`laddr=`).
    pub laddr: SocketAddr,
    /// The socket's file descriptor (`fd=`), -1 where there is none.
    pub fd: i64,
    created: Instant,
    /// Milliseconds from `created` to the end of the last command batch (`idle=`).
    last_interaction_ms: AtomicU64,
    /// The last command run (`cmd=`).
    last_cmd: AtomicU32,
    /// 2 or 3 (`resp=`).
    resp: AtomicU8,
    /// Flag bits, `FLAG_*` (`flags=`).
    flags: AtomicU8,
    /// The reply buffer and list as Redis would hold the replies being written (`rbs=`,
    /// `rbp=`, `obl=`, `oll=`, `omem=`; `protocol::obuf`): a batch's replies while they are
    /// flushed, nothing pending between batches.
    rbs: AtomicU64,
    rbp: AtomicU64,
    obl: AtomicU64,
    oll: AtomicU64,
    omem: AtomicU64,
    /// The read buffer's unparsed bytes and free capacity (`qbuf=`, `qbuf-free=`), and the
    /// argument bytes of the batch being answered (`argv-mem=`), as of the last batch start or
    /// end.
    qbuf: AtomicU64,
    qbuf_free: AtomicU64,
    argv_mem: AtomicU64,
    /// Subscriptions and transaction state for `sub=`, `psub=`, `ssub=`, `multi=`; kept by the
    /// pub/sub and MULTI issues (0 and -1 until then).
    pub subscriptions: AtomicU64,
    pub pattern_subscriptions: AtomicU64,
    pub multi_queued: AtomicI64,
    names: Mutex<ClientNames>,
    /// Set by `CLIENT KILL`; the session closes as soon as it sees it.
    killed: AtomicBool,
    kill: Notify,
    /// A command of this client waits for data (XREAD BLOCK): the session then watches the
    /// socket for the client going away (`server::session`). Set and cleared by the command.
    blocked: AtomicBool,
    block_started: Notify,
    /// The client closed its end while a command was blocked; the command gives up.
    gone: AtomicBool,
    gone_notify: Notify,
    /// Frames other parts of the node push to this client between its replies (client
    /// tracking's invalidations); the session owns the receiving end.
    pushes: mpsc::Sender<Frame>,
    push_receiver: Mutex<Option<mpsc::Receiver<Frame>>>,
    /// `CLIENT TRACKING ... REDIRECT` target while tracking (`redir=`), -1 when not tracking.
    redirect: AtomicI64,
}

/// The fields a client sets about itself.
#[derive(Debug, Default, Clone)]
pub struct ClientNames {
    /// `CLIENT SETNAME`; None when unset (or set to "").
    pub name: Option<String>,
    /// `CLIENT SETINFO LIB-NAME`, `LIB-VER`.
    pub lib_name: Option<String>,
    pub lib_ver: Option<String>,
    /// The ACL user the connection is authenticated as (`user=`); None is `default`.
    pub user: Option<String>,
}

/// `flags=r`: `READONLY` is on.
pub const FLAG_READONLY: u8 = 1 << 0;
/// `flags=e`: `CLIENT NO-EVICT on`.
pub const FLAG_NO_EVICT: u8 = 1 << 1;
/// `flags=T`: `CLIENT NO-TOUCH on`.
pub const FLAG_NO_TOUCH: u8 = 1 << 2;
/// `flags=t`: `CLIENT TRACKING on`.
pub const FLAG_TRACKING: u8 = 1 << 3;
/// `flags=R`: the tracking redirect target has gone.
pub const FLAG_TRACKING_BROKEN_REDIR: u8 = 1 << 4;
/// `flags=B`: tracking in BCAST mode.
pub const FLAG_TRACKING_BCAST: u8 = 1 << 5;

impl ClientHandle {
    pub fn new(id: u64, addr: SocketAddr, laddr: SocketAddr, fd: i64) -> Self {
        let (pushes, push_receiver) = mpsc::channel(PUSH_QUEUE_BOUND);
        ClientHandle {
            id,
            addr,
            laddr,
            fd,
            created: Instant::now(),
            last_interaction_ms: AtomicU64::new(0),
            last_cmd: AtomicU32::new(CmdId::NONE.0),
            resp: AtomicU8::new(2),
            flags: AtomicU8::new(0),
            rbs: AtomicU64::new(crate::protocol::obuf::REPLY_CHUNK_BYTES as u64),
            rbp: AtomicU64::new(crate::protocol::obuf::REPLY_CHUNK_BYTES as u64),
            obl: AtomicU64::new(0),
            oll: AtomicU64::new(0),
            omem: AtomicU64::new(0),
            qbuf: AtomicU64::new(0),
            qbuf_free: AtomicU64::new(0),
            argv_mem: AtomicU64::new(0),
            subscriptions: AtomicU64::new(0),
            pattern_subscriptions: AtomicU64::new(0),
            multi_queued: AtomicI64::new(-1),
            names: Mutex::new(ClientNames::default()),
            killed: AtomicBool::new(false),
            kill: Notify::new(),
            blocked: AtomicBool::new(false),
            block_started: Notify::new(),
            gone: AtomicBool::new(false),
            gone_notify: Notify::new(),
            pushes,
            push_receiver: Mutex::new(Some(push_receiver)),
            redirect: AtomicI64::new(-1),
        }
    }

    /// The receiving end of this client's pushes, for its session (once; `None` after).
    pub fn take_push_receiver(&self) -> Option<mpsc::Receiver<Frame>> {
        self.push_receiver
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// Queues `frame` to be written to this client between its replies. Never waits: a client
    /// whose queue is full ([`PUSH_QUEUE_BOUND`]) is disconnected instead. Returns whether
    /// the frame was queued.
    pub fn push(&self, frame: Frame) -> bool {
        match self.pushes.try_send(frame) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(
                    client = self.id,
                    bound = PUSH_QUEUE_BOUND,
                    "client closed for overcoming of output buffer limits (pushes)"
                );
                self.kill();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// The reply protocol, 2 or 3 (`resp=`).
    pub fn resp(&self) -> u8 {
        self.resp.load(Ordering::Relaxed)
    }

    /// Records the tracking redirect (`redir=`): -1 when not tracking, 0 for none.
    pub fn set_redirect(&self, redirect: i64) {
        self.redirect.store(redirect, Ordering::Relaxed);
    }

    /// Records the command about to run (`cmd=`).
    pub fn set_last_cmd(&self, cmd: CmdId) {
        self.last_cmd.store(cmd.0, Ordering::Relaxed);
    }

    /// The command recorded last (`cmd=`).
    pub fn last_cmd(&self) -> CmdId {
        CmdId(self.last_cmd.load(Ordering::Relaxed))
    }

    pub fn set_resp(&self, resp: u8) {
        self.resp.store(resp, Ordering::Relaxed);
    }

    /// Sets or clears one `FLAG_*` bit.
    pub fn set_flag(&self, flag: u8, on: bool) {
        if on {
            self.flags.fetch_or(flag, Ordering::Relaxed);
        } else {
            self.flags.fetch_and(!flag, Ordering::Relaxed);
        }
    }

    /// Records an interaction (a batch run, or its replies written) and the replies still
    /// being written.
    pub fn touch(&self, now: Instant, replies: ReplyStats) {
        let ms = now.saturating_duration_since(self.created).as_millis() as u64;
        self.last_interaction_ms.store(ms, Ordering::Relaxed);
        self.touch_replies(replies);
    }

    /// Records the replies being written, as Redis would hold them.
    pub fn touch_replies(&self, replies: ReplyStats) {
        self.rbs.store(replies.rbs, Ordering::Relaxed);
        self.rbp.store(replies.rbp, Ordering::Relaxed);
        self.obl.store(replies.obl, Ordering::Relaxed);
        self.oll.store(replies.oll, Ordering::Relaxed);
        self.omem.store(replies.omem, Ordering::Relaxed);
    }

    /// Records the query buffer (`qbuf=`: bytes received and not yet parsed, `qbuf-free=`: its
    /// free capacity) and the argument bytes of the commands being answered (`argv-mem=`, 0
    /// between batches).
    pub fn set_query_buffer(&self, qbuf: usize, qbuf_free: usize, argv_mem: usize) {
        self.qbuf.store(qbuf as u64, Ordering::Relaxed);
        self.qbuf_free.store(qbuf_free as u64, Ordering::Relaxed);
        self.argv_mem.store(argv_mem as u64, Ordering::Relaxed);
    }

    /// Locks the name fields (held briefly; never across an await).
    pub fn names(&self) -> MutexGuard<'_, ClientNames> {
        self.names
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Asks the owning session to close the connection.
    pub fn kill(&self) {
        self.killed.store(true, Ordering::Relaxed);
        // notify_one keeps a permit when the session is not waiting right now.
        self.kill.notify_one();
    }

    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::Relaxed)
    }

    /// Marks a command of this client as blocked (or no longer); the session watches the
    /// socket while it is.
    pub fn set_blocked(&self, on: bool) {
        self.blocked.store(on, Ordering::Relaxed);
        if on {
            self.block_started.notify_one();
        }
    }

    pub fn is_blocked(&self) -> bool {
        self.blocked.load(Ordering::Relaxed)
    }

    /// Resolves when a command calls `set_blocked(true)` (or did since the last call).
    pub async fn block_started(&self) {
        self.block_started.notified().await;
    }

    /// Records that the client closed its end (seen while a command was blocked).
    pub fn set_gone(&self) {
        self.gone.store(true, Ordering::Relaxed);
        self.gone_notify.notify_one();
    }

    /// Resolves once the client has gone ([`ClientHandle::set_gone`]).
    pub async fn gone(&self) {
        if self.gone.load(Ordering::Relaxed) {
            return;
        }
        self.gone_notify.notified().await;
    }

    /// Resolves when [`ClientHandle::kill`] has been called.
    pub async fn killed(&self) {
        if self.is_killed() {
            return;
        }
        self.kill.notified().await;
    }

    /// Returns the `flags=` letters, in Redis's order (`N` when none).
    fn flag_letters(&self) -> String {
        let flags = self.flags.load(Ordering::Relaxed);
        let mut out = String::new();
        if self.subscriptions.load(Ordering::Relaxed) > 0
            || self.pattern_subscriptions.load(Ordering::Relaxed) > 0
        {
            out.push('P');
        }
        if self.multi_queued.load(Ordering::Relaxed) >= 0 {
            out.push('x');
        }
        for (bit, letter) in [
            (FLAG_TRACKING, 't'),
            (FLAG_TRACKING_BROKEN_REDIR, 'R'),
            (FLAG_TRACKING_BCAST, 'B'),
            (FLAG_READONLY, 'r'),
            (FLAG_NO_EVICT, 'e'),
            (FLAG_NO_TOUCH, 'T'),
        ] {
            if flags & bit != 0 {
                out.push(letter);
            }
        }
        if out.is_empty() {
            out.push('N');
        }
        out
    }

    /// Whether the client is a pub/sub client (`CLIENT LIST TYPE pubsub`) rather than a normal
    /// one.
    pub fn is_pubsub(&self) -> bool {
        self.subscriptions.load(Ordering::Relaxed) > 0
            || self.pattern_subscriptions.load(Ordering::Relaxed) > 0
    }

    /// Seconds since the connection was accepted (`age=`).
    pub fn age_secs(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.created).as_secs()
    }

    /// Seconds since the last command batch ended (`idle=`).
    pub fn idle_secs(&self, now: Instant) -> u64 {
        let since_created = now.saturating_duration_since(self.created).as_millis() as u64;
        since_created.saturating_sub(self.last_interaction_ms.load(Ordering::Relaxed)) / 1000
    }

    /// Appends this client's `CLIENT LIST` line (with its `\n`), with Redis 7.2's fields in
    /// Redis's order (`networking.c` `catClientInfoString`). `db` is always 0; the memory fields
    /// tracked are `qbuf`/`qbuf-free` (the read buffer), `argv-mem` (the arguments of the batch
    /// being answered) and `rbs`/`rbp`/`obl`/`oll`/`omem` (pending replies as Redis would hold
    /// them, `protocol::obuf`); `tot-mem` is the sum of those Redis adds up.
    pub fn write_info_line(&self, now: Instant, out: &mut String) {
        let names = self.names().clone();
        let [rbs, rbp, obl, oll, omem] = [&self.rbs, &self.rbp, &self.obl, &self.oll, &self.omem]
            .map(|a| a.load(Ordering::Relaxed));
        let multi = self.multi_queued.load(Ordering::Relaxed);
        let qbuf = self.qbuf.load(Ordering::Relaxed);
        let qbuf_free = self.qbuf_free.load(Ordering::Relaxed);
        let argv_mem = self.argv_mem.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db=0 sub={} psub={} \
             ssub=0 multi={} qbuf={qbuf} qbuf-free={qbuf_free} argv-mem={argv_mem} multi-mem=0 \
             rbs={rbs} rbp={rbp} obl={obl} oll={oll} omem={omem} tot-mem={} events=r cmd={} user={} redir={} \
             resp={} \
             lib-name={} lib-ver={}",
            self.id,
            self.addr,
            self.laddr,
            self.fd,
            names.name.as_deref().unwrap_or(""),
            self.age_secs(now),
            self.idle_secs(now),
            self.flag_letters(),
            self.subscriptions.load(Ordering::Relaxed),
            self.pattern_subscriptions.load(Ordering::Relaxed),
            multi,
            qbuf + qbuf_free + argv_mem + rbs + omem,
            CmdId(self.last_cmd.load(Ordering::Relaxed)).name(),
            names.user.as_deref().unwrap_or("default"),
            self.redirect.load(Ordering::Relaxed),
            self.resp.load(Ordering::Relaxed),
            names.lib_name.as_deref().unwrap_or(""),
            names.lib_ver.as_deref().unwrap_or(""),
        );
    }
}

/// Every live client of this node, by id (so listing order is connection order, as in Redis).
#[derive(Debug, Default)]
pub struct ClientRegistry {
    /// Locked at connect, disconnect, and by `CLIENT LIST`/`KILL`; never per command.
    clients: Mutex<BTreeMap<u64, Arc<ClientHandle>>>,
}

impl ClientRegistry {
    fn map(&self) -> MutexGuard<'_, BTreeMap<u64, Arc<ClientHandle>>> {
        self.clients
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds a client; it stays listed until the returned guard is dropped.
    pub fn register(self: &Arc<Self>, handle: Arc<ClientHandle>) -> Registration {
        let id = handle.id;
        self.map().insert(id, handle);
        Registration {
            registry: self.clone(),
            id,
        }
    }

    /// Returns every live client, in id order. A killed client is gone at once, as in Redis
    /// (which frees it inside `CLIENT KILL`), even while its task is still closing the socket.
    pub fn list(&self) -> Vec<Arc<ClientHandle>> {
        self.map()
            .values()
            .filter(|h| !h.is_killed())
            .cloned()
            .collect()
    }

    /// The live client `id`; `None` once it was killed (see [`ClientRegistry::list`]).
    pub fn get(&self, id: u64) -> Option<Arc<ClientHandle>> {
        self.map().get(&id).filter(|h| !h.is_killed()).cloned()
    }

    pub fn len(&self) -> usize {
        self.map().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Keeps a client listed in its registry while alive.
#[derive(Debug)]
pub struct Registration {
    registry: Arc<ClientRegistry>,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry.map().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handle(id: u64) -> Arc<ClientHandle> {
        Arc::new(ClientHandle::new(
            id,
            "127.0.0.1:5000".parse().unwrap(),
            "127.0.0.1:6379".parse().unwrap(),
            7,
        ))
    }

    #[test]
    fn registration_lists_in_id_order_until_dropped() {
        let registry = Arc::new(ClientRegistry::default());
        let b = registry.register(handle(2));
        let a = registry.register(handle(1));
        let ids: Vec<u64> = registry.list().iter().map(|c| c.id).collect();
        assert_eq!(ids, [1, 2]);
        drop(b);
        assert_eq!(registry.len(), 1);
        assert!(registry.get(2).is_none());
        drop(a);
        assert!(registry.is_empty());
    }

    #[test]
    fn info_line_has_redis_fields_in_order() {
        let h = handle(9);
        h.names().name = Some("worker".into());
        h.set_flag(FLAG_READONLY, true);
        h.set_flag(FLAG_NO_TOUCH, true);
        let mut line = String::new();
        h.write_info_line(Instant::now(), &mut line);
        assert!(line.ends_with('\n'));
        let fields: Vec<&str> = line
            .trim_end()
            .split(' ')
            .map(|kv| kv.split_once('=').unwrap().0)
            .collect();
        let want = "id addr laddr fd name age idle flags db sub psub ssub multi qbuf qbuf-free \
                    argv-mem multi-mem rbs rbp obl oll omem tot-mem events cmd user redir resp \
                    lib-name lib-ver";
        assert_eq!(fields, want.split_whitespace().collect::<Vec<_>>());
        assert!(line.starts_with("id=9 addr=127.0.0.1:5000 laddr=127.0.0.1:6379 fd=7 name=worker "));
        assert!(line.contains(" flags=rT "), "{line}");
        assert!(line.contains(" cmd=NULL "), "{line}");
    }

    /// Regression (resp_sessions `client_kill_closes_the_named_connection`, flaky under load):
    /// a killed client stayed in CLIENT LIST / CLIENT KILL ID until its task closed the socket.
    #[test]
    fn a_killed_client_leaves_the_registry_at_once() {
        let reg = Arc::new(ClientRegistry::default());
        let (a, b) = (handle(1), handle(2));
        let _ra = reg.register(a.clone());
        let _rb = reg.register(b.clone());
        a.kill();
        assert!(reg.get(1).is_none());
        assert_eq!(reg.list().iter().map(|h| h.id).collect::<Vec<_>>(), [2]);
        assert!(reg.get(2).is_some());
    }

    #[tokio::test]
    async fn kill_before_waiting_is_not_lost() {
        let h = handle(1);
        h.kill();
        assert!(h.is_killed());
        tokio::time::timeout(std::time::Duration::from_secs(1), h.killed())
            .await
            .expect("killed() resolves");
    }
}
