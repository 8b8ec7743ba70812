use std::net::SocketAddr;

use tokio::sync::mpsc;

use super::*;
use crate::context::clients::{ClientHandle, Registration};
use crate::store::{Event, EventKind, KeyValue, Revision};

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// A registered client speaking `resp`, with its push queue.
struct TestClient {
    _reg: Registration,
    handle: Arc<ClientHandle>,
    rx: mpsc::Receiver<Frame>,
}

impl TestClient {
    fn new(registry: &Arc<ClientRegistry>, id: u64, resp: u8) -> Self {
        let addr: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let handle = Arc::new(ClientHandle::new(id, addr, addr, -1));
        handle.set_resp(resp);
        let rx = handle.take_push_receiver().unwrap();
        Self {
            _reg: registry.register(handle.clone()),
            handle,
            rx,
        }
    }

    fn pushes(&mut self) -> Vec<Frame> {
        let mut out = Vec::new();
        while let Ok(f) = self.rx.try_recv() {
            out.push(f);
        }
        out
    }
}

fn applied(keys: &[&str], origin: Option<u64>) -> Applied {
    let events = keys
        .iter()
        .map(|k| Event {
            kind: EventKind::Put,
            revision: Revision::default(),
            kv: KeyValue {
                key: b(k),
                value: Bytes::new(),
                create_revision: 1,
                mod_revision: 1,
                version: 1,
                hash: None,
            },
            prev: None,
        })
        .collect();
    Applied {
        events,
        origin,
        ..Applied::default()
    }
}

fn invalidate(keys: &[&str]) -> Frame {
    Frame::Push(vec![
        Frame::Bulk(b("invalidate")),
        Frame::Array(keys.iter().map(|k| Frame::Bulk(b(k))).collect()),
    ])
}

fn setup() -> (Arc<ClientRegistry>, Arc<Tracker>) {
    let registry = Arc::new(ClientRegistry::default());
    let tracker = Tracker::new(registry.clone(), DEFAULT_MAX_KEYS);
    (registry, tracker)
}

#[test]
fn a_remembered_key_is_invalidated_once_then_forgotten() {
    let (registry, tracker) = setup();
    let mut c = TestClient::new(&registry, 1, 3);
    tracker.enable(1, 100, &TrackingOptions::default()).unwrap();
    tracker.remember(1, [b("k"), b("other")]);
    assert_eq!(tracker.stats().keys, 2);
    tracker.invalidate(&applied(&["k", "k", "unrelated"], Some(7)));
    assert_eq!(c.pushes(), vec![invalidate(&["k"])]);
    tracker.invalidate(&applied(&["k"], Some(7)));
    assert!(c.pushes().is_empty(), "a key is forgotten once invalidated");
    assert_eq!(
        tracker.stats(),
        TrackingStats {
            clients: 1,
            keys: 1,
            items: 1,
            prefixes: 0
        }
    );
    assert!(c.handle.resp() == 3);
}

#[test]
fn noloop_skips_the_clients_own_changes_only() {
    let (registry, tracker) = setup();
    let mut c = TestClient::new(&registry, 1, 3);
    let opts = TrackingOptions {
        noloop: true,
        ..TrackingOptions::default()
    };
    tracker.enable(1, 100, &opts).unwrap();
    tracker.remember(1, [b("k")]);
    tracker.invalidate(&applied(&["k"], Some(100)));
    assert!(c.pushes().is_empty());
    tracker.remember(1, [b("k")]);
    tracker.invalidate(&applied(&["k"], None));
    assert_eq!(c.pushes(), vec![invalidate(&["k"])]);
}

#[test]
fn bcast_sends_each_prefix_its_changed_keys_in_byte_order() {
    let (registry, tracker) = setup();
    let mut c = TestClient::new(&registry, 1, 3);
    let opts = TrackingOptions {
        bcast: true,
        prefixes: vec![b("b"), b("a")],
        ..TrackingOptions::default()
    };
    tracker.enable(1, 100, &opts).unwrap();
    tracker.invalidate(&applied(&["b2", "a9", "b1", "c"], None));
    assert_eq!(
        c.pushes(),
        vec![invalidate(&["a9"]), invalidate(&["b1", "b2"])]
    );
    assert_eq!(tracker.state(1).unwrap().prefixes, vec![b("a"), b("b")]);
    let err = tracker
        .enable(
            1,
            100,
            &TrackingOptions {
                bcast: true,
                prefixes: vec![b("ab")],
                ..TrackingOptions::default()
            },
        )
        .unwrap_err();
    assert!(err.starts_with("Prefix 'ab' overlaps with an existing prefix 'a'"));
}

#[test]
fn a_flush_sends_nil_to_every_tracking_client_and_empties_the_table() {
    let (registry, tracker) = setup();
    let mut c = TestClient::new(&registry, 1, 3);
    tracker.enable(1, 100, &TrackingOptions::default()).unwrap();
    tracker.remember(1, [b("k")]);
    tracker.invalidate(&Applied {
        flushed: true,
        ..Applied::default()
    });
    assert_eq!(
        c.pushes(),
        vec![Frame::Push(vec![Frame::Bulk(b("invalidate")), Frame::Null])]
    );
    assert_eq!(tracker.stats().keys, 0);
}

#[test]
fn resp2_redirects_go_to_a_subscribed_client_and_a_gone_target_breaks_the_redirect() {
    let (registry, tracker) = setup();
    let mut tracking = TestClient::new(&registry, 1, 3);
    let mut target = TestClient::new(&registry, 2, 2);
    let opts = TrackingOptions {
        redirect: 2,
        ..TrackingOptions::default()
    };
    tracker.enable(1, 100, &opts).unwrap();
    tracker.remember(1, [b("k")]);
    tracker.invalidate(&applied(&["k"], None));
    assert!(
        target.pushes().is_empty(),
        "a RESP2 target that subscribes to nothing gets nothing, as in Redis"
    );
    target.handle.subscriptions.store(1, Ordering::Relaxed);
    tracker.remember(1, [b("k")]);
    tracker.invalidate(&applied(&["k"], None));
    assert_eq!(
        target.pushes(),
        vec![Frame::Push(vec![
            Frame::Bulk(b("message")),
            Frame::Bulk(b(INVALIDATE_CHANNEL)),
            Frame::Array(vec![Frame::Bulk(b("k"))]),
        ])]
    );
    drop(target);
    tracker.remember(1, [b("k")]);
    tracker.invalidate(&applied(&["k"], None));
    assert_eq!(
        tracking.pushes(),
        vec![Frame::Push(vec![
            Frame::Bulk(b("tracking-redir-broken")),
            Frame::Integer(2)
        ])]
    );
    assert!(tracker.state(1).unwrap().broken_redirect);
}

#[test]
fn the_table_stays_within_its_bound_and_tells_the_clients_of_forgotten_keys() {
    let (registry, tracker) = setup();
    let mut c = TestClient::new(&registry, 1, 3);
    tracker.enable(1, 100, &TrackingOptions::default()).unwrap();
    tracker.set_max_keys(3);
    tracker.remember(1, (0..5).map(|i| b(&format!("k{i}"))));
    assert_eq!(tracker.stats().keys, 3);
    let told = c.pushes();
    assert_eq!(
        told.len(),
        2,
        "one invalidation per forgotten key: {told:?}"
    );
    tracker.set_max_keys(0);
    tracker.remember(1, (0..50).map(|i| b(&format!("n{i}"))));
    assert_eq!(tracker.stats().keys, 53, "0 means no limit");
    tracker.set_max_keys(10);
    assert_eq!(
        tracker.stats().keys,
        10,
        "lowering the bound applies at once"
    );
}

#[test]
fn a_disabled_or_gone_client_is_sent_nothing_and_dropped_lazily() {
    let (registry, tracker) = setup();
    let mut c = TestClient::new(&registry, 1, 3);
    tracker.enable(1, 100, &TrackingOptions::default()).unwrap();
    tracker.remember(1, [b("k")]);
    tracker.disable(1);
    assert_eq!(tracker.stats().clients, 0);
    // Another client keeps the table in use.
    let mut other = TestClient::new(&registry, 2, 3);
    tracker.enable(2, 200, &TrackingOptions::default()).unwrap();
    tracker.invalidate(&applied(&["k"], None));
    assert!(c.pushes().is_empty());
    assert!(other.pushes().is_empty());
    assert_eq!(tracker.stats().items, 0, "the stale id went with the key");
}

/// GrayInvalidates: staging, promoting or aborting a gray candidate changes what its label
/// reads at the key it stands for, so a client caching that key is told.
#[test]
fn a_gray_candidates_change_invalidates_the_key_it_stands_for() {
    let (registry, tracker) = setup();
    let mut c = TestClient::new(&registry, 1, 3);
    tracker.enable(1, 100, &TrackingOptions::default()).unwrap();
    tracker.remember(1, [b("cfg/x")]);
    tracker.invalidate(&applied(&["__gray__/canary/cfg/x"], Some(7)));
    assert_eq!(c.pushes(), vec![invalidate(&["cfg/x"])]);
}
