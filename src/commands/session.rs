//! One connection's command state ([`Session`]): its protocol, authentication, read mode, the
//! identity and sequence of its writes, the read barrier of its batch, its transaction and its
//! subscriptions. Owned by the connection loop (`server::session`), changed only by commands.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::txn;
use crate::acl::{CompiledUser, LogContext, LogReason};
use crate::config::ReadMode;
use crate::context::clients::{FLAG_NO_EVICT, FLAG_NO_TOUCH, FLAG_READONLY};
use crate::context::{ClientHandle, DedupIdPool, ServerContext};
use crate::protocol::{Frame, Protocol};
use crate::store::{ClientSeq, Op, Request};
use crate::watch::tracking::{KeyFilter, Tracker};

/// Redis's user behind `requirepass` (and of every connection until ACL users exist).
pub const DEFAULT_USER: &[u8] = b"default";

/// Per-connection state.
pub struct Session {
    /// `CLIENT ID`: unique on this node, grows.
    pub id: u64,
    pub addr: SocketAddr,
    pub proto: Protocol,
    pub authenticated: bool,
    /// The ACL user the connection acts as (`default` until `AUTH` names another); its
    /// permissions are looked up per command, so ACL changes apply from the next command. It is
    /// also the author recorded for the session's writes (AuthorPerRevision,
    /// `store/audit.rs`).
    pub user: Bytes,
    /// Set while EXEC checks its queued commands again (their refusals say the ACL changed).
    pub(super) exec_running: bool,
    pub read_mode: ReadMode,
    /// What other sessions see of this one (name, flags, last command); shared with the
    /// client registry.
    pub handle: Arc<ClientHandle>,
    /// Deduplication identity of this connection's writes (random, cluster-unique), taken from
    /// the node's pool of ended sessions' identities when there is one (DedupIdsReused).
    client_id: u64,
    /// Where `(client_id, seq)` goes back when the session ends.
    dedup_ids: Arc<DedupIdPool>,
    /// Sequence number of this connection's last write.
    seq: u64,
    /// Whether a read barrier already covers the rest of the current pipeline batch
    /// (BatchBarrier, see [`read_gate`]). Cleared at each new batch and by every write.
    pub(super) barrier_valid: bool,
    /// Whether a reply made since the last flush read this node's state (it passed
    /// [`read_gate`]): the flush then waits until the durable committed index covers what
    /// this node has applied (DurableReads, `raft/commit_gate.rs`).
    pub(super) read_fence: bool,
    /// MULTI's queue and the WATCHed keys (`txn.rs`).
    pub(super) txn: txn::TxnState,
    /// The channels and patterns this connection subscribes to, with its message queue;
    /// `None` while it subscribes to nothing (`pubsub.rs`).
    pub subscription: Option<crate::watch::pubsub::Subscription>,
    /// `CLIENT REPLY`: whether replies are switched off, and how many of the next replies
    /// to drop (SKIP drops its own and the next command's).
    reply_off: bool,
    replies_to_skip: u8,
    /// `CLIENT TRACKING`'s mode, mirrored from the node's tracker so that a read decides
    /// without its lock whether to remember its keys (`tracking.rs`); `None` while off.
    pub(super) tracking: Option<TrackingMode>,
    /// `CLIENT CACHING YES|NO`, for the next command or transaction only (Redis's
    /// `CLIENT_TRACKING_CACHING`). Atomic because commands are prepared from `&Session`.
    pub(super) tracking_caching: AtomicBool,
    /// The node's tracking tables: this session leaves them when it ends.
    pub(super) tracker: Arc<Tracker>,
    /// Frames pushed to this connection between replies (client-tracking invalidations);
    /// the connection loop writes them (`server::session`).
    pub pushes: Option<mpsc::Receiver<Frame>>,
    /// Pushes taken from `pushes` by a command whose reply must follow them
    /// (RevisionAfterInvalidations, `keys::revision`); the connection loop writes them right
    /// before that reply.
    pub pushes_before_reply: Vec<Frame>,
}

/// What a read needs to know of the session's `CLIENT TRACKING` options.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct TrackingMode {
    pub bcast: bool,
    pub optin: bool,
    pub optout: bool,
}

impl Session {
    pub fn new(ctx: &ServerContext, handle: Arc<ClientHandle>) -> Self {
        let (client_id, seq) = ctx.dedup_ids.take();
        let pushes = handle.take_push_receiver();
        let mut session = Self {
            id: handle.id,
            addr: handle.addr,
            proto: Protocol::Resp2,
            authenticated: ctx.acl.default_is_open(),
            user: Bytes::from_static(DEFAULT_USER),
            exec_running: false,
            read_mode: ctx.settings.read_mode(),
            handle,
            client_id,
            seq,
            dedup_ids: ctx.dedup_ids.clone(),
            barrier_valid: false,
            read_fence: false,
            txn: txn::TxnState::default(),
            subscription: None,
            reply_off: false,
            replies_to_skip: 0,
            tracking: None,
            tracking_caching: AtomicBool::new(false),
            tracker: ctx.tracker.clone(),
            pushes,
            pushes_before_reply: Vec::new(),
        };
        session.set_read_mode(ctx.settings.read_mode());
        session
    }

    /// The request for this connection's next write. Seqs grow by one per write, in command
    /// order; a connection has one write, or one ordered run of them (`RaftNode::write_many`),
    /// in flight at a time. So `(client_id, seq)` identifies a write across retries and
    /// forwarding, and the store refuses one older than the last it applied. The leader stamps
    /// `at_ms`; the forwarder marks its retries (`RaftNode::write`).
    pub(super) fn request(&mut self, op: Op) -> Request {
        let op = self.as_user(op);
        self.seq += 1;
        Request {
            client: Some(ClientSeq {
                client_id: self.client_id,
                seq: self.seq,
                // Made now, sent from now on: never later than its first send
                // (NoDoubleApplyAfterEviction needs it no later).
                sent_ms: crate::raft::unix_ms(),
                retry: false,
            }),
            // AuthorPerRevision: the author travels in the entry, so every node records it.
            op: Op::Authored {
                author: self.user.clone(),
                op: Box::new(op),
            },
            at_ms: 0,
        }
    }

    /// The session's user when its key patterns do not cover every key: the user whose
    /// [`crate::acl::CompiledUser::may_read_key`] cuts what `KEYS`, `SCAN` and the watch
    /// streams show (KeysFiltered); `None` when nothing is to be cut.
    pub(super) fn key_limits(&self, ctx: &ServerContext) -> Option<Arc<CompiledUser>> {
        ctx.acl.user(&self.user).filter(|u| !u.user.allkeys)
    }

    /// The test that tracking and pub/sub apply to the keys they name for this session
    /// (KeysFiltered), or `None` when no ACL user limits keys. It asks the user's key patterns
    /// **as they are at each message** (FilterFollowsTheUser): an `ACL SETUSER` that narrows
    /// them, or deletes the user, holds for a subscription or a tracking session made before.
    /// Always `Some` (a user with every key today may lose some later).
    pub(super) fn key_filter(&self, ctx: &ServerContext) -> Option<KeyFilter> {
        let acl = ctx.acl.clone();
        let name = self.user.clone();
        Some(KeyFilter(Arc::new(move |key: &[u8]| {
            acl.user(&name).is_some_and(|u| u.may_read_key(key))
        })))
    }

    /// Wraps each script of `op` (alone or in EXEC) in `Op::AsUser`, so that its calls are
    /// checked against this session's user at apply (ScriptCallsChecked, `store/acl.rs`).
    fn as_user(&self, op: Op) -> Op {
        match op {
            Op::Script { .. } => Op::AsUser {
                user: self.user.clone(),
                op: Box::new(op),
            },
            Op::Txn {
                compares,
                ops,
                now_ms,
            } => Op::Txn {
                compares,
                ops: ops.into_iter().map(|op| self.as_user(op)).collect(),
                now_ms,
            },
            op => op,
        }
    }

    /// `CLIENT REPLY ON|OFF|SKIP` (Redis's `CLIENT_REPLY_OFF`/`CLIENT_REPLY_SKIP`): OFF drops
    /// every reply from this command on, SKIP this one and the next (ignored while OFF), ON
    /// answers `+OK` and sends every reply again.
    pub(super) fn set_reply(&mut self, mode: ReplyMode) {
        match mode {
            ReplyMode::On => {
                self.reply_off = false;
                self.replies_to_skip = 0;
            }
            ReplyMode::Off => self.reply_off = true,
            ReplyMode::Skip if !self.reply_off => self.replies_to_skip = 2,
            ReplyMode::Skip => {}
        }
    }

    /// Called once per command answered, in order: whether its reply must be dropped
    /// (`CLIENT REPLY`). Messages pushed to a subscriber are not replies: they still go out.
    /// The gray-release label this client declared by its name, `gray:<label>`
    /// (`CLIENT SETNAME`, `HELLO ... SETNAME`, a client library's `client_name`): its reads see
    /// the candidates staged for that label (`store/gray.rs`).
    pub fn gray_label(&self) -> Option<Bytes> {
        let names = self.handle.names();
        let label = names.name.as_deref()?.strip_prefix("gray:")?;
        (!label.is_empty()).then(|| Bytes::copy_from_slice(label.as_bytes()))
    }

    /// Whether the replies queued since the last call include a read's (DurableReads): the
    /// caller waits for [`crate::raft::state_machine::StateMachineStore::wait_applied_durable`]
    /// before it sends them.
    pub fn take_read_fence(&mut self) -> bool {
        std::mem::take(&mut self.read_fence)
    }

    pub fn reply_muted(&mut self) -> bool {
        if self.replies_to_skip > 0 {
            self.replies_to_skip -= 1;
            return true;
        }
        self.reply_off
    }

    /// Switches the reply protocol (HELLO, RESET).
    pub fn set_proto(&mut self, proto: Protocol) {
        self.proto = proto;
        self.handle.set_resp(match proto {
            Protocol::Resp2 => 2,
            Protocol::Resp3 => 3,
        });
    }

    /// Sets the read mode; stale mode shows as `flags=r` in `CLIENT LIST`, as `READONLY` does in
    /// Redis.
    pub fn set_read_mode(&mut self, mode: ReadMode) {
        self.read_mode = mode;
        self.barrier_valid = false;
        self.handle.set_flag(FLAG_READONLY, mode == ReadMode::Stale);
    }

    /// `RESET`: back to a new connection's state (Redis's `clearClientConnectionState`): RESP2,
    /// no name, the default read mode, no CLIENT flags, unauthenticated when a password is
    /// configured. The library name and version stay, as in Redis: they still describe the
    /// client behind the connection.
    pub fn reset(&mut self, ctx: &ServerContext) {
        self.reset_transaction_and_subscriptions();
        self.set_proto(Protocol::Resp2);
        self.handle.names().name = None;
        self.set_read_mode(ctx.settings.read_mode());
        self.handle.set_flag(FLAG_NO_EVICT, false);
        self.handle.set_flag(FLAG_NO_TOUCH, false);
        self.set_reply(ReplyMode::On);
        self.disable_tracking();
        self.user = Bytes::from_static(b"default");
        self.handle.names().user = None;
        self.authenticated = ctx.acl.default_is_open();
    }

    /// Authenticated as `user` from now on (AUTH, HELLO ... AUTH).
    pub(super) fn log_in(&mut self, user: Arc<CompiledUser>) {
        self.authenticated = true;
        self.handle.names().user = (&user.name[..] != b"default")
            .then(|| String::from_utf8_lossy(&user.name).into_owned());
        self.user = user.name.clone();
    }

    /// Whether the user this session authenticated as was deleted or switched off since
    /// (the connection then closes, as Redis closes a deleted user's clients).
    pub fn user_revoked(&self, ctx: &ServerContext) -> bool {
        self.authenticated && ctx.acl.user(&self.user).is_none_or(|u| !u.user.enabled)
    }

    /// Adds an entry to this node's ACL LOG for this client (`username`: the session's user
    /// when `None`).
    pub(super) fn log_refusal(
        &self,
        ctx: &ServerContext,
        reason: LogReason,
        context: LogContext,
        object: String,
        username: Option<String>,
    ) {
        let mut info = String::new();
        self.handle
            .write_info_line(std::time::Instant::now(), &mut info);
        let info = info.trim_end().to_string();
        let username = username.unwrap_or_else(|| String::from_utf8_lossy(&self.user).into_owned());
        ctx.acl
            .log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .add(reason, context, object, username, info);
    }

    /// The deduplication identity of this connection's writes (client tracking's NOLOOP
    /// recognises its own changes by it).
    pub(super) fn dedup_client_id(&self) -> u64 {
        self.client_id
    }

    /// Moves the pushes already queued for this connection to [`Session::pushes_before_reply`].
    pub(super) fn take_queued_pushes(&mut self) {
        if let Some(rx) = self.pushes.as_mut() {
            while let Ok(push) = rx.try_recv() {
                self.pushes_before_reply.push(push);
            }
        }
    }

    /// `CLIENT TRACKING OFF`, RESET, the end of the connection.
    pub(super) fn disable_tracking(&mut self) {
        if self.tracking.take().is_some() {
            self.tracker.disable(self.id);
        }
        self.tracking_caching.store(false, Ordering::Relaxed);
    }

    /// RESET leaves MULTI (queued commands and WATCHed keys are discarded) and every pub/sub
    /// subscription.
    fn reset_transaction_and_subscriptions(&mut self) {
        self.txn = txn::TxnState::default();
        self.subscription = None;
        self.handle.subscriptions.store(0, Ordering::Relaxed);
        self.handle
            .pattern_subscriptions
            .store(0, Ordering::Relaxed);
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.disable_tracking();
        self.dedup_ids.give_back(self.client_id, self.seq);
    }
}

/// The argument of `CLIENT REPLY`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ReplyMode {
    On,
    Off,
    Skip,
}
