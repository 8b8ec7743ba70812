//! Unit tests of the pub/sub hub (`pubsub.rs`): fan-out, unsubscribe on drop, the queue's
//! bounds in messages and in bytes (the pubsub class's hard and soft limits), notifications.

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
        Arc::new(move || flag.store(true, Ordering::Relaxed)),
    );
    let mut fast = sub(&hub, 2);
    slow.subscribe(&b("c"));
    fast.subscribe(&b("c"));
    for _ in 0..QUEUE_BOUND {
        assert_eq!(hub.publish(&b("c"), &b("m")), 2);
        fast.try_recv().unwrap();
    }
    assert!(!cut.load(Ordering::Relaxed));
    assert_eq!(
        hub.publish(&b("c"), &b("m")),
        1,
        "the fast one still gets it"
    );
    assert!(cut.load(Ordering::Relaxed));
}

fn cut_flag(hub: &Arc<PubSub>, id: u64) -> (Subscription, Arc<std::sync::atomic::AtomicBool>) {
    let cut = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = cut.clone();
    let s = Subscription::new(
        hub.clone(),
        id,
        Arc::new(move || flag.store(true, Ordering::Relaxed)),
    );
    (s, cut)
}

#[test]
fn the_limits_default_to_redis_pubsub_class() {
    assert_eq!(PubSub::new().limits(), [32 << 20, 8 << 20, 60]);
}

#[test]
fn a_message_counts_its_resp2_frame() {
    for n in [0usize, 9, 10, 99, 100, 65_536] {
        let m = Message::Message {
            channel: b("ch"),
            payload: Bytes::from(vec![b'x'; n]),
        };
        let mut frame = Vec::new();
        for part in [&b"message"[..], b"ch", &vec![b'x'; n]] {
            frame.extend(format!("${}\r\n", part.len()).into_bytes());
            frame.extend_from_slice(part);
            frame.extend_from_slice(b"\r\n");
        }
        assert_eq!(m.size(), 4 + frame.len() as u64, "payload of {n}");
    }
    let m = Message::Message {
        channel: b("c"),
        payload: b("hello"),
    };
    assert_eq!(
        m.size(),
        b"*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$5\r\nhello\r\n".len() as u64
    );
    let p = Message::PMessage {
        pattern: b("c*"),
        channel: b("c1"),
        payload: b(""),
    };
    assert_eq!(
        p.size(),
        b"*4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$2\r\nc1\r\n$0\r\n\r\n".len() as u64
    );
}

/// The backlog is bounded in bytes (the pubsub class's hard limit), not only in messages:
/// a subscriber that does not read is cut when a message would take it to the limit.
#[test]
fn the_hard_limit_in_bytes_disconnects_a_slow_subscriber_only() {
    let hub = PubSub::new();
    hub.set_limits([1000, 0, 0]);
    let (mut slow, cut) = cut_flag(&hub, 1);
    let mut fast = sub(&hub, 2);
    slow.subscribe(&b("c"));
    fast.subscribe(&b("c"));
    let payload = Bytes::from(vec![b'x'; 300]); // 332 bytes a message
    for _ in 0..3 {
        assert_eq!(hub.publish(&b("c"), &payload), 2);
        fast.try_recv().unwrap();
    }
    assert_eq!(slow.queued_bytes(), 996);
    assert!(!cut.load(Ordering::Relaxed));
    assert_eq!(
        hub.publish(&b("c"), &payload),
        1,
        "the fast one still gets it"
    );
    assert!(cut.load(Ordering::Relaxed));
    assert_eq!(
        slow.queued_bytes(),
        996,
        "the refused message is not counted"
    );
    assert_eq!(fast.queued_bytes(), 332);
    for _ in 0..3 {
        slow.try_recv().unwrap();
    }
    assert_eq!(slow.queued_bytes(), 0);
}

/// Redis's soft limit: over it for more than its seconds, counted in whole seconds from
/// the message that first took the backlog over it; a backlog back under it starts over.
#[test]
fn the_soft_limit_cuts_only_after_its_seconds() {
    let hub = PubSub::new();
    hub.set_limits([0, 500, 2]);
    let (mut s, cut) = cut_flag(&hub, 1);
    s.subscribe(&b("c"));
    let payload = Bytes::from(vec![b'x'; 300]);
    let is_cut = || cut.load(Ordering::Relaxed);
    assert_eq!(hub.publish_at(&b("c"), &payload, 100), 1); // 332: under
    assert_eq!(hub.publish_at(&b("c"), &payload, 100), 1); // 664: over since 100
    assert_eq!(hub.publish_at(&b("c"), &payload, 102), 1); // 2 s over: not more than 2
    assert!(!is_cut());
    // Drained back under the soft limit: the clock starts over.
    for _ in 0..3 {
        s.try_recv().unwrap();
    }
    assert_eq!(hub.publish_at(&b("c"), &payload, 200), 1); // 332: under, reset
    assert_eq!(hub.publish_at(&b("c"), &payload, 200), 1); // over since 200
    assert_eq!(hub.publish_at(&b("c"), &payload, 202), 1);
    assert!(!is_cut());
    assert_eq!(hub.publish_at(&b("c"), &payload, 203), 0, "3 s over its 2");
    assert!(is_cut());
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
