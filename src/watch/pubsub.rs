//! Pub/sub on this node: the channel and pattern subscriptions of SUBSCRIBE and PSUBSCRIBE,
//! PUBLISH's fan-out, and the keyspace notifier (Redis 7.0's `pubsub.c` and `notify.c`).
//!
//! Every subscribed session owns a [`Subscription`]: a bounded queue of [`Message`]s and the
//! set of its channels and patterns; the [`PubSub`] hub maps each channel and pattern to the
//! queues of its subscribers. Publishing never waits: a subscriber whose queue is full
//! ([`QUEUE_BOUND`] messages) is disconnected, as Redis disconnects a client past its pubsub
//! output buffer limit, so a slow subscriber never holds up the publisher, apply, or the
//! others. A session with no subscription holds no queue.
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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::config::NotifyKeyspaceEvents as F;
use crate::glob;
use crate::protocol::Frame;
use crate::store::{Applied, Notice, NoticeClass};

/// The most messages queued for one subscriber before it is disconnected.
pub const QUEUE_BOUND: usize = 16 * 1024;

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
#[derive(Default)]
pub struct PubSub {
    inner: Mutex<Inner>,
}

impl PubSub {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Delivers `payload` to the subscribers of `channel` and then to those of each matching
    /// pattern, as Redis does; returns how many received it (PublishNeverBlocks).
    pub fn publish(&self, channel: &Bytes, payload: &Bytes) -> usize {
        let inner = self.lock();
        if inner.channels.is_empty() && inner.patterns.is_empty() {
            return 0;
        }
        let mut received = 0;
        if let Some(subs) = inner.channels.get(channel) {
            for q in subs.values() {
                let msg = Message::Message {
                    channel: channel.clone(),
                    payload: payload.clone(),
                };
                received += usize::from(deliver(q, msg));
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
                received += usize::from(deliver(q, msg));
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

/// Queues `msg`; a full queue disconnects its subscriber. Returns whether it was queued.
fn deliver(q: &Queue, msg: Message) -> bool {
    match q.tx.try_send(msg) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(_)) => {
            tracing::warn!(
                bound = QUEUE_BOUND,
                "pub/sub client closed for overcoming of output buffer limits"
            );
            (q.disconnect)();
            false
        }
        // The session is gone; its subscription is being dropped.
        Err(mpsc::error::TrySendError::Closed(_)) => false,
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
            queue: Queue { tx, disconnect },
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
            if self.may_see(&m) {
                return Some(m);
            }
        }
    }

    /// Returns a message already queued, without waiting.
    pub fn try_recv(&mut self) -> Option<Message> {
        loop {
            let m = self.rx.try_recv().ok()?;
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
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    fn sub(hub: &Arc<PubSub>, id: u64) -> Subscription {
        Subscription::new(hub.clone(), id, Arc::new(|| {}))
    }

    #[test]
    fn publish_reaches_channels_then_patterns_and_drop_unsubscribes() {
        let hub = PubSub::new();
        let mut a = sub(&hub, 1);
        let mut c = sub(&hub, 2);
        assert!(a.subscribe(&b("news")));
        assert!(!a.subscribe(&b("news")));
        assert!(a.psubscribe(&b("n*")));
        assert!(c.psubscribe(&b("n*")));
        assert_eq!((a.count(), hub.numsub(b"news"), hub.numpat()), (2, 1, 1));
        assert_eq!(hub.publish(&b("news"), &b("hi")), 3);
        assert_eq!(
            a.try_recv(),
            Some(Message::Message {
                channel: b("news"),
                payload: b("hi")
            })
        );
        assert!(matches!(a.try_recv(), Some(Message::PMessage { .. })));
        assert!(a.try_recv().is_none());
        assert_eq!(hub.channels(None), vec![b("news")]);
        assert_eq!(hub.channels(Some(b"x*")), Vec::<Bytes>::new());
        drop(a);
        assert_eq!((hub.numsub(b"news"), hub.numpat()), (0, 1));
        assert_eq!(hub.publish(&b("news"), &b("hi")), 1);
        assert!(c.punsubscribe(&b("n*")));
        assert!(hub.is_empty());
    }

    #[test]
    fn a_full_queue_disconnects_its_subscriber_only() {
        let hub = PubSub::new();
        let cut = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = cut.clone();
        let mut slow = Subscription::new(
            hub.clone(),
            1,
            Arc::new(move || flag.store(true, std::sync::atomic::Ordering::Relaxed)),
        );
        let mut fast = sub(&hub, 2);
        slow.subscribe(&b("c"));
        fast.subscribe(&b("c"));
        for _ in 0..QUEUE_BOUND {
            assert_eq!(hub.publish(&b("c"), &b("m")), 2);
            fast.try_recv().unwrap();
        }
        assert!(!cut.load(std::sync::atomic::Ordering::Relaxed));
        assert_eq!(
            hub.publish(&b("c"), &b("m")),
            1,
            "the fast one still gets it"
        );
        assert!(cut.load(std::sync::atomic::Ordering::Relaxed));
    }

    #[test]
    fn notify_follows_the_flags() {
        let hub = PubSub::new();
        let mut s = sub(&hub, 1);
        s.psubscribe(&b("*"));
        let n = Notice {
            class: NoticeClass::String,
            event: "set",
            key: b("k"),
        };
        notify(&hub, F::KEYSPACE | F::GENERIC, &n);
        assert!(s.try_recv().is_none(), "class $ is off");
        notify(&hub, F::KEYSPACE | F::KEYEVENT | F::STRING, &n);
        let got: Vec<(Bytes, Bytes)> = std::iter::from_fn(|| s.try_recv())
            .map(|m| match m {
                Message::PMessage {
                    channel, payload, ..
                } => (channel, payload),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (b("__keyspace@0__:k"), b("set")),
                (b("__keyevent@0__:set"), b("k"))
            ]
        );
    }
}
