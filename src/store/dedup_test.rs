//! Client deduplication through the store (ExactlyOnce, DedupWindow, DedupBounded,
//! NoDoubleApplyAfterEviction): retries answered from the record, refused past the window.

use super::test_util::*;
use super::*;

#[test]
fn dedup_same_seq_returns_cached_older_seq_refused() {
    let mut s = Store::new();
    let (first, events) = must_apply_as(&mut s, 1, 5, put("a", "x"));
    assert_eq!(
        (first.clone(), events.len()),
        (Response::Put { revision: 1 }, 1)
    );
    let before = s.clone();
    struct Case {
        seq: u64,
        op: Op,
        want: Response,
    }
    let cases = [
        // A retry, even with a different body, answers the recorded response.
        Case {
            seq: 5,
            op: put("a", "x"),
            want: first.clone(),
        },
        Case {
            seq: 5,
            op: del(&["a"]),
            want: first.clone(),
        },
        Case {
            seq: 4,
            op: put("a", "old"),
            want: Response::Error(StoreError::StaleSequence {
                client_id: 1,
                seq: 4,
                last: 5,
            }),
        },
    ];
    for c in cases {
        let (response, events) = must_apply_as(&mut s, 1, c.seq, c.op);
        assert_eq!(response, c.want, "seq {}", c.seq);
        assert!(events.is_empty());
        assert_eq!(s, before, "seq {} changed nothing", c.seq);
    }
    // A refused request is recorded too, and its retry answers the same error.
    let (compact, _) = must_apply_as(&mut s, 1, 6, Op::Compact { revision: 9 });
    assert!(matches!(
        compact,
        Response::Error(StoreError::FutureRevision { .. })
    ));
    assert_eq!(
        must_apply_as(&mut s, 1, 6, Op::Compact { revision: 1 }).0,
        compact
    );
    // Another client and requests without a client are independent.
    assert_eq!(
        must_apply_as(&mut s, 2, 1, put("a", "y")).0,
        Response::Put { revision: 2 }
    );
    assert_eq!(
        must_apply(&mut s, put("a", "z")),
        Response::Put { revision: 3 }
    );
    assert_eq!(
        must_apply(&mut s, put("a", "z")),
        Response::Put { revision: 4 }
    );
}

/// DedupBounded is a memory valve only: past it, a retry of an evicted client is refused as
/// uncertain and changes nothing (NoDoubleApplyAfterEviction), where it used to apply
/// again; a first attempt of an unknown client still applies.
#[test]
fn dedup_valve_refuses_an_evicted_clients_retry_instead_of_applying_it_twice() {
    let mut s = Store::new();
    let t = 1_000_000;
    assert_eq!(
        apply_stamped(&mut s, t, (0, 1, t, false), incr("n")),
        Response::Integer {
            value: 1,
            revision: 1
        }
    );
    for client_id in 1..MAX_DEDUP_CLIENTS as u64 {
        apply_stamped(&mut s, t + 1, (client_id, 1, t, false), del(&["missing"]));
    }
    assert_eq!(s.dedup.len(), MAX_DEDUP_CLIENTS);
    // Full: client 0's retry is still answered from the table.
    let one = Response::Integer {
        value: 1,
        revision: 1,
    };
    assert_eq!(
        apply_stamped(&mut s, t + 2, (0, 1, t, true), incr("n")),
        one
    );
    // One more client evicts client 0, the oldest stamp.
    apply_stamped(
        &mut s,
        t + 3,
        (u64::MAX, 1, t + 3, false),
        del(&["missing"]),
    );
    assert_eq!(s.dedup.len(), MAX_DEDUP_CLIENTS);
    let before = s.clone();
    assert_eq!(
        apply_stamped(&mut s, t + 4, (0, 1, t, true), incr("n")),
        retry_expired(4)
    );
    assert!(s == before, "the refused retry changed nothing");
    // A first attempt is never a duplicate: it applies (and evicts client 1).
    assert_eq!(
        apply_stamped(&mut s, t + 5, (0, 2, t + 5, false), incr("n")),
        Response::Integer {
            value: 2,
            revision: 2
        }
    );
    let restored = Store::from_snapshot(&s.to_snapshot()).unwrap();
    assert!(restored == s);
}

/// DedupWindow: an entry is kept for the window of leader time however many other clients
/// write meanwhile, and is evicted by the first entry stamped past it; a retry then is
/// refused as uncertain, never applied twice. A late first attempt still applies.
#[test]
fn dedup_window_keeps_entries_through_churn_and_refuses_retries_past_it() {
    let mut s = Store::new();
    let t0 = 1_700_000_000_000;
    let one = Response::Integer {
        value: 1,
        revision: 1,
    };
    assert_eq!(
        apply_stamped(&mut s, t0, (1, 7, t0 - 3, false), incr("n")),
        one
    );
    // Churn: 50,000 one-write clients over the window (each a new connection without
    // reuse), and expiry entries without a client.
    let churn = 50_000;
    for i in 0..churn {
        let at = t0 + 1 + DEDUP_WINDOW_MS * i / churn;
        apply_stamped(&mut s, at, (1_000 + i as u64, 1, at, false), del(&["x"]));
    }
    assert_eq!(s.dedup.len(), 1 + churn as usize);
    s.apply(&Request {
        client: None,
        op: del(&["x"]),
        at_ms: t0 + DEDUP_WINDOW_MS,
    });
    // Exactly the window after: kept, the retry is answered from the table.
    assert_eq!(
        apply_stamped(
            &mut s,
            t0 + DEDUP_WINDOW_MS,
            (1, 7, t0 - 3, true),
            incr("n")
        ),
        one
    );
    // One ms later (a leader's clock, by the stamp of the entry applied): evicted.
    s.apply(&Request {
        client: None,
        op: del(&["x"]),
        at_ms: t0 + DEDUP_WINDOW_MS + 1,
    });
    assert_eq!(
        s.dedup.len(),
        churn as usize,
        "client 1 evicted, churn kept"
    );
    let late = t0 + DEDUP_WINDOW_MS + 2;
    s.apply(&Request {
        client: None,
        op: del(&["x"]),
        at_ms: late,
    });
    let before = s.clone();
    assert_eq!(
        apply_stamped(&mut s, late, (1, 7, t0 - 3, true), incr("n")),
        retry_expired(DEDUP_WINDOW_MS + 5)
    );
    assert!(s == before, "refused: not applied, not recorded");
    // Client 1's next write, a first attempt, applies; its retry is deduplicated.
    let two = Response::Integer {
        value: 2,
        revision: 2,
    };
    assert_eq!(
        apply_stamped(&mut s, late, (1, 8, late, false), incr("n")),
        two
    );
    assert_eq!(
        apply_stamped(&mut s, late, (1, 8, late, true), incr("n")),
        two
    );
    // Every entry older than the window goes at once, by stamp, not by count.
    s.apply(&Request {
        client: None,
        op: del(&["x"]),
        at_ms: late + 2 * DEDUP_WINDOW_MS,
    });
    assert_eq!(s.dedup.len(), 0);
}

/// NoDoubleApplyAfterEviction under clock skew: the forwarder's clock may run ahead of the
/// leaders' by up to MAX_CLOCK_SKEW_MS and its retry is still refused; a leader whose
/// clock runs behind the last one's evicts nothing early.
#[test]
fn dedup_window_tolerates_the_assumed_clock_skew() {
    let mut s = Store::new();
    let t0 = 1_700_000_000_000;
    // Leader A, clock 30 s behind the forwarder's, applies client 1's write.
    let forwarder = t0 + 30_000;
    apply_stamped(&mut s, t0, (1, 1, forwarder, false), incr("n"));
    // Leader B's clock is 40 s behind A's: a write stamped by it evicts nothing early.
    apply_stamped(&mut s, t0 - 40_000, (2, 1, t0, false), incr("m"));
    assert_eq!(s.dedup.len(), 2);
    // Much later a leader evicts both.
    let late = t0 + DEDUP_WINDOW_MS + 1;
    s.apply(&Request {
        client: None,
        op: del(&["x"]),
        at_ms: late,
    });
    assert_eq!(s.dedup.len(), 0);
    let before = s.clone();
    let refused = apply_stamped(&mut s, late, (1, 1, forwarder, true), incr("n"));
    assert!(
        matches!(refused, Response::Error(StoreError::RetryExpired { .. })),
        "{refused:?}"
    );
    assert_eq!(s, before);
    // A retry first sent more than the skew bound after the newest evicted stamp cannot
    // be of an evicted write: it is new.
    let fresh = t0 + MAX_CLOCK_SKEW_MS + 1;
    assert_eq!(
        apply_stamped(&mut s, late, (3, 1, fresh, true), incr("n")),
        Response::Integer {
            value: 2,
            revision: 3
        }
    );
}

/// SnapshotFaithful for the window: stamps and the newest evicted stamp survive a
/// snapshot, so a restored node evicts the same entries at the same stamps and refuses the
/// same retries.
#[test]
fn dedup_window_survives_snapshot_and_restore() {
    let mut s = Store::new();
    let t0 = 1_700_000_000_000;
    for (client_id, at) in [(1, t0), (2, t0 + 60_000), (3, t0 + 120_000)] {
        apply_stamped(&mut s, at, (client_id, 1, at, false), incr("n"));
    }
    // Client 1 ages out.
    s.apply(&Request {
        client: None,
        op: del(&["x"]),
        at_ms: t0 + DEDUP_WINDOW_MS + 1,
    });
    let mut restored = Store::from_snapshot(&s.to_snapshot()).unwrap();
    assert_eq!(restored, s);
    for store in [&mut s, &mut restored] {
        assert_eq!(store.dedup.len(), 2);
        let at = t0 + DEDUP_WINDOW_MS + 60_001;
        assert!(matches!(
            apply_stamped(store, at, (1, 1, t0, true), incr("n")),
            Response::Error(StoreError::RetryExpired { .. })
        ));
        // Client 2 ages out at the same stamp on both; client 3 is still answered.
        assert_eq!(store.dedup.len(), 1);
        assert_eq!(
            apply_stamped(store, at, (3, 1, t0 + 120_000, true), incr("n")),
            Response::Integer {
                value: 3,
                revision: 3
            }
        );
    }
    assert_eq!(restored, s);
}
