//! Pub/sub on this node: the channel and pattern subscriptions of SUBSCRIBE and PSUBSCRIBE,
//! PUBLISH's fan-out, and the keyspace notifier (Redis 7.0's `pubsub.c` and `notify.c`).
//!
//! Every subscribed session owns a [`Subscription`]: a bounded queue of [`Message`]s and the
//! set of its channels and patterns; the [`PubSub`] hub maps each channel and pattern to the
//! queues of its subscribers. Publishing never waits: a subscriber whose queue is full
//! ([`QUEUE_BOUND`] messages), or whose queued bytes pass the `client-output-buffer-limit
//! pubsub` class (Redis's default: 32 MB hard, or 8 MB for more than 60 seconds), is
//! disconnected, as Redis disconnects a subscriber past that limit, so a slow subscriber never
//! holds up the publisher, apply, or the others, and its backlog stays bounded in bytes, not
//! only in messages. A session with no subscription holds no queue.
//!
//! Keyspace notifications ([`notify_applied`]) come from applied entries (each entry's
//! [`Notice`]s, handed over by the state machine's notify hook in apply order), on every node,
//! filtered by this node's `notify-keyspace-events`. Like Redis's, they are best effort: a
//! subscriber whose queue is full is disconnected; the durable, resumable feed is the watch
//! stream (`stream.rs`).
//!
//! Invariants:
//! - **HubMatchesSessions.** A session's queue is in the hub under exactly the channels and
//!   patterns its [`Subscription`] lists; dropping the subscription removes them all.
//! - **PublishNeverBlocks.** [`PubSub::publish`] only `try_send`s.
//! - **QueuedBytesCounted.** A queue's `pending` bytes are the sizes of the messages in it:
//!   added before the send (taken back if it fails), taken when a message leaves the queue.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::config::NotifyKeyspaceEvents as F;
use crate::glob;
use crate::protocol::Frame;
use crate::store::{Applied, Notice, NoticeClass};

/// The most messages queued for one subscriber before it is disconnected.
pub const QUEUE_BOUND: usize = 16 * 1024;

/// Redis's `client-output-buffer-limit` defaults for the pubsub class: hard bytes, soft
/// bytes, soft seconds.
pub const PUBSUB_LIMITS_DEFAULT: [u64; 3] = [32 << 20, 8 << 20, 60];

/// A message for a subscriber.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// Published on a channel the subscriber subscribed to.
    Message { channel: Bytes, payload: Bytes },
    /// Published on a channel matching a pattern the subscriber subscribed to.
    PMessage {
        pattern: Bytes,
        channel: Bytes,
        payload: Bytes,
    },
}

impl Message {
    /// The bytes of its RESP2 frame: what it adds to the subscriber's backlog.
    fn size(&self) -> u64 {
        fn bulk(n: usize) -> u64 {
            // `$<n>\r\n<bytes>\r\n`
            let digits = n.checked_ilog10().map_or(1, |d| d as usize + 1);
            (1 + digits + 2 + n + 2) as u64
        }
        match self {
            Message::Message { channel, payload } => {
                4 + bulk(7) + bulk(channel.len()) + bulk(payload.len())
            }
            Message::PMessage {
                pattern,
                channel,
                payload,
            } => 4 + bulk(8) + bulk(pattern.len()) + bulk(channel.len()) + bulk(payload.len()),
        }
    }

    /// The push frame Redis sends: `message channel payload` or `pmessage pattern channel
    /// payload` (an array in RESP2, a push in RESP3).
    pub fn frame(&self) -> Frame {
        let bulk = |b: &Bytes| Frame::Bulk(b.clone());
        match self {
            Message::Message { channel, payload } => Frame::Push(vec![
                Frame::Bulk(Bytes::from_static(b"message")),
                bulk(channel),
                bulk(payload),
            ]),
            Message::PMessage {
                pattern,
                channel,
                payload,
            } => Frame::Push(vec![
                Frame::Bulk(Bytes::from_static(b"pmessage")),
                bulk(pattern),
                bulk(channel),
                bulk(payload),
            ]),
        }
    }
}

/// One subscriber's queue in the hub, and how to cut it off when it overflows.
#[derive(Clone)]
struct Queue {
    tx: mpsc::Sender<Message>,
    /// Closes the subscriber's connection (its queue overflowed).
    disconnect: Arc<dyn Fn() + Send + Sync>,
    /// What is queued, in bytes (QueuedBytesCounted), and since when it is over the soft limit.
    pending: Arc<Pending>,
}

#[derive(Default)]
struct Pending {
    bytes: AtomicU64,
    /// Unix seconds when the backlog first reached the soft limit; 0 while under it (Redis's
    /// `obuf_soft_limit_reached_time`).
    soft_since: AtomicU64,
}

impl Pending {
    /// Redis's `checkClientOutputBufferLimits` for a backlog of `used` bytes at `now` (unix
    /// seconds): over the hard limit, or over the soft limit for more than its seconds (0 turns
    /// a limit off).
    fn over(&self, used: u64, [hard, soft, soft_secs]: [u64; 3], now: u64) -> bool {
        if hard > 0 && used >= hard {
            return true;
        }
        if soft > 0 && used >= soft {
            let since = self.soft_since.load(Ordering::Relaxed);
            if since == 0 {
                self.soft_since.store(now, Ordering::Relaxed);
                return false;
            }
            return now.saturating_sub(since) > soft_secs;
        }
        self.soft_since.store(0, Ordering::Relaxed);
        false
    }
}

#[derive(Default)]
struct Inner {
    /// Channel → subscriber id → queue.
    channels: HashMap<Bytes, BTreeMap<u64, Queue>>,
    /// Pattern → subscriber id → queue.
    patterns: HashMap<Bytes, BTreeMap<u64, Queue>>,
}

/// The node's channels and patterns. One mutex: SUBSCRIBE and PUBLISH hold it for a map
/// update or one fan-out of `try_send`s, never across an await.
pub struct PubSub {
    inner: Mutex<Inner>,
    /// `client-output-buffer-limit pubsub`: hard bytes, soft bytes, soft seconds.
    limits: [AtomicU64; 3],
}

impl Default for PubSub {
    fn default() -> Self {
        PubSub {
            inner: Mutex::default(),
            limits: PUBSUB_LIMITS_DEFAULT.map(AtomicU64::new),
        }
    }
}

impl PubSub {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Sets the pubsub class's limits (`CONFIG SET client-output-buffer-limit "pubsub ..."`);
    /// they apply from the next message published.
    pub fn set_limits(&self, limits: [u64; 3]) {
        for (slot, v) in self.limits.iter().zip(limits) {
            slot.store(v, Ordering::Relaxed);
        }
    }

    /// The pubsub class's limits now: hard bytes, soft bytes, soft seconds.
    pub fn limits(&self) -> [u64; 3] {
        [0, 1, 2].map(|i| self.limits[i].load(Ordering::Relaxed))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Delivers `payload` to the subscribers of `channel` and then to those of each matching
    /// pattern, as Redis does; returns how many received it (PublishNeverBlocks).
    pub fn publish(&self, channel: &Bytes, payload: &Bytes) -> usize {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.publish_at(channel, payload, now)
    }

    /// [`PubSub::publish`] at `now`, unix seconds (the soft limit's clock).
    fn publish_at(&self, channel: &Bytes, payload: &Bytes, now: u64) -> usize {
        let inner = self.lock();
        if inner.channels.is_empty() && inner.patterns.is_empty() {
            return 0;
        }
        let limits = self.limits();
        let mut received = 0;
        if let Some(subs) = inner.channels.get(channel) {
            for q in subs.values() {
                let msg = Message::Message {
                    channel: channel.clone(),
                    payload: payload.clone(),
                };
                received += usize::from(deliver(q, msg, limits, now));
            }
        }
        for (pattern, subs) in &inner.patterns {
            if !glob::matches(pattern, channel) {
                continue;
            }
            for q in subs.values() {
                let msg = Message::PMessage {
                    pattern: pattern.clone(),
                    channel: channel.clone(),
                    payload: payload.clone(),
                };
                received += usize::from(deliver(q, msg, limits, now));
            }
        }
        received
    }

    /// Returns whether nobody subscribes to anything on this node.
    pub fn is_empty(&self) -> bool {
        let inner = self.lock();
        inner.channels.is_empty() && inner.patterns.is_empty()
    }

    /// PUBSUB CHANNELS: the channels with at least one subscriber, matching `pattern` if given.
    pub fn channels(&self, pattern: Option<&[u8]>) -> Vec<Bytes> {
        let inner = self.lock();
        let mut out: Vec<Bytes> = inner
            .channels
            .keys()
            .filter(|c| pattern.is_none_or(|p| glob::matches(p, c)))
            .cloned()
            .collect();
        out.sort();
        out
    }

    /// PUBSUB NUMSUB: the subscribers of `channel`.
    pub fn numsub(&self, channel: &[u8]) -> usize {
        self.lock().channels.get(channel).map_or(0, BTreeMap::len)
    }

    /// PUBSUB NUMPAT: the number of distinct patterns subscribed to (Redis 7's meaning).
    pub fn numpat(&self) -> usize {
        self.lock().patterns.len()
    }
}

/// Queues `msg`; a full queue, or a backlog over the pubsub class's `limits` at `now`,
/// disconnects its subscriber. Returns whether it was queued.
fn deliver(q: &Queue, msg: Message, limits: [u64; 3], now: u64) -> bool {
    let size = msg.size();
    let used = q.pending.bytes.fetch_add(size, Ordering::Relaxed) + size;
    let over = q.pending.over(used, limits, now);
    let sent = if over {
        Err(mpsc::error::TrySendError::Full(msg))
    } else {
        q.tx.try_send(msg)
    };
    match sent {
        Ok(()) => true,
        Err(e) => {
            q.pending.bytes.fetch_sub(size, Ordering::Relaxed);
            if let mpsc::error::TrySendError::Full(_) = e {
                tracing::warn!(
                    bound = QUEUE_BOUND,
                    queued_bytes = used - size,
                    limits = ?limits,
                    "pub/sub client closed for overcoming of output buffer limits"
                );
                (q.disconnect)();
            }
            // Closed: the session is gone; its subscription is being dropped.
            false
        }
    }
}

/// One session's subscriptions: its queue and the channels and patterns it listens to.
/// Dropping it unsubscribes from everything (HubMatchesSessions).
pub struct Subscription {
    hub: Arc<PubSub>,
    id: u64,
    queue: Queue,
    rx: mpsc::Receiver<Message>,
    /// In subscription order is not kept: Redis's order (its dict's) is unspecified too.
    channels: BTreeSet<Bytes>,
    patterns: BTreeSet<Bytes>,
    /// The keys the subscriber's ACL user may read, when not every key (KeysFiltered): a
    /// keyspace notification naming another key is not delivered to it.
    pub may_read: Option<crate::watch::tracking::KeyFilter>,
}

/// The key a keyspace notification names: the channel's suffix for `__keyspace@0__:<key>`,
/// the payload for `__keyevent@0__:<event>`; `None` for any other message.
fn notified_key(channel: &[u8], payload: &[u8]) -> Option<Vec<u8>> {
    if let Some(key) = channel.strip_prefix(b"__keyspace@0__:") {
        return Some(key.to_vec());
    }
    channel
        .starts_with(b"__keyevent@0__:")
        .then(|| payload.to_vec())
}

impl Subscription {
    /// Whether `m` may reach this subscriber (KeysFiltered).
    fn may_see(&self, m: &Message) -> bool {
        let Some(filter) = &self.may_read else {
            return true;
        };
        let (channel, payload) = match m {
            Message::Message { channel, payload } => (channel, payload),
            Message::PMessage {
                channel, payload, ..
            } => (channel, payload),
        };
        notified_key(channel, payload).is_none_or(|key| filter.allows(&key))
    }

    /// Creates an empty subscription for the session `id`; `disconnect` closes it when its
    /// queue overflows.
    pub fn new(hub: Arc<PubSub>, id: u64, disconnect: Arc<dyn Fn() + Send + Sync>) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE_BOUND);
        Self {
            hub,
            id,
            queue: Queue {
                tx,
                disconnect,
                pending: Arc::default(),
            },
            rx,
            channels: BTreeSet::new(),
            patterns: BTreeSet::new(),
            may_read: None,
        }
    }

    /// Channels plus patterns: the count Redis's (un)subscribe replies carry.
    pub fn count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    pub fn channels(&self) -> usize {
        self.channels.len()
    }

    pub fn patterns(&self) -> usize {
        self.patterns.len()
    }

    /// Subscribes to `channel`; returns whether it is new for this session.
    pub fn subscribe(&mut self, channel: &Bytes) -> bool {
        if !self.channels.insert(channel.clone()) {
            return false;
        }
        let mut inner = self.hub.lock();
        let subs = inner.channels.entry(channel.clone()).or_default();
        subs.insert(self.id, self.queue.clone());
        true
    }

    /// Unsubscribes from `channel`; returns whether it was subscribed.
    pub fn unsubscribe(&mut self, channel: &Bytes) -> bool {
        if !self.channels.remove(channel) {
            return false;
        }
        remove(&mut self.hub.lock().channels, channel, self.id);
        true
    }

    pub fn psubscribe(&mut self, pattern: &Bytes) -> bool {
        if !self.patterns.insert(pattern.clone()) {
            return false;
        }
        let mut inner = self.hub.lock();
        let subs = inner.patterns.entry(pattern.clone()).or_default();
        subs.insert(self.id, self.queue.clone());
        true
    }

    pub fn punsubscribe(&mut self, pattern: &Bytes) -> bool {
        if !self.patterns.remove(pattern) {
            return false;
        }
        remove(&mut self.hub.lock().patterns, pattern, self.id);
        true
    }

    /// The subscribed channels, in byte order.
    pub fn channel_list(&self) -> Vec<Bytes> {
        self.channels.iter().cloned().collect()
    }

    /// The subscribed patterns, in byte order.
    pub fn pattern_list(&self) -> Vec<Bytes> {
        self.patterns.iter().cloned().collect()
    }

    /// Waits for the next message (cancel-safe).
    pub async fn recv(&mut self) -> Option<Message> {
        loop {
            let m = self.rx.recv().await?;
            self.taken(&m);
            if self.may_see(&m) {
                return Some(m);
            }
        }
    }

    /// `m` left the queue (QueuedBytesCounted).
    fn taken(&self, m: &Message) {
        self.queue
            .pending
            .bytes
            .fetch_sub(m.size(), Ordering::Relaxed);
    }

    /// The bytes queued for this subscriber and not yet taken.
    pub fn queued_bytes(&self) -> u64 {
        self.queue.pending.bytes.load(Ordering::Relaxed)
    }

    /// Returns a message already queued, without waiting.
    pub fn try_recv(&mut self) -> Option<Message> {
        loop {
            let m = self.rx.try_recv().ok()?;
            self.taken(&m);
            if self.may_see(&m) {
                return Some(m);
            }
        }
    }
}

fn remove(map: &mut HashMap<Bytes, BTreeMap<u64, Queue>>, name: &Bytes, id: u64) {
    if let Some(subs) = map.get_mut(name) {
        subs.remove(&id);
        if subs.is_empty() {
            map.remove(name);
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut inner = self.hub.lock();
        for c in &self.channels {
            remove(&mut inner.channels, c, self.id);
        }
        for p in &self.patterns {
            remove(&mut inner.patterns, p, self.id);
        }
    }
}

/// Publishes one notice as Redis's `notifyKeyspaceEvent` does, if `flags` enable its class:
/// `__keyspace@0__:<key>` with the event name, then `__keyevent@0__:<event>` with the key.
pub fn notify(hub: &PubSub, flags: u32, notice: &Notice) {
    let class = match notice.class {
        NoticeClass::Generic => F::GENERIC,
        NoticeClass::String => F::STRING,
        NoticeClass::Hash => F::HASH,
        NoticeClass::Expired => F::EXPIRED,
        NoticeClass::New => F::NEW,
    };
    if flags & class == 0 {
        return;
    }
    let event = Bytes::from_static(notice.event.as_bytes());
    if flags & F::KEYSPACE != 0 {
        let mut channel = b"__keyspace@0__:".to_vec();
        channel.extend_from_slice(&notice.key);
        hub.publish(&Bytes::from(channel), &event);
    }
    if flags & F::KEYEVENT != 0 {
        let mut channel = b"__keyevent@0__:".to_vec();
        channel.extend_from_slice(notice.event.as_bytes());
        hub.publish(&Bytes::from(channel), &notice.key);
    }
}

/// Keyspace notifications for one applied entry: publishes each of its notices with this
/// node's `notify-keyspace-events` `flags`. Run by the state machine's notify hook, in apply
/// order (NotifyInApplyOrder); with notifications off or nobody subscribed it costs a check.
pub fn notify_applied(hub: &PubSub, flags: u32, applied: &Applied) {
    if flags & (F::KEYSPACE | F::KEYEVENT) == 0 || hub.is_empty() {
        return;
    }
    for notice in &applied.notices {
        notify(hub, flags, notice);
    }
}

#[cfg(test)]
#[path = "pubsub_test.rs"]
mod tests;
