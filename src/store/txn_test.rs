//! Transactions ([`Op::Txn`]) and expiry ([`Op::SetEx`], [`Op::Expire`], [`Op::Persist`],
//! [`Op::GetEx`], [`Op::ExpireDue`]) in the store: table-driven cases citing the invariants
//! they check (RevisionMonotonic, DeadlineLive, SnapshotFaithful, ExpiryIdempotent).

use bytes::Bytes;

use super::*;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn apply(s: &mut Store, op: Op) -> (Response, Vec<Event>) {
    s.apply(&Request {
        client: None,
        op,
        at_ms: 0,
    })
}

fn put(key: &str, value: &str) -> Op {
    Op::Put {
        key: b(key),
        value: b(value),
    }
}

fn incr(key: &str) -> Op {
    Op::IncrBy {
        key: b(key),
        delta: 1,
    }
}

fn expire_at(key: &str, at: i64, cond: ExpireCond, now_ms: i64) -> Op {
    Op::Expire {
        key: b(key),
        expiry: Expiry::At(at),
        cond,
        now_ms,
    }
}

fn compare(s: &Store, key: &str) -> Compare {
    Compare {
        key: b(key),
        mod_revision: s.last_change(key.as_bytes()),
        watched_at: s.revision(),
    }
}

fn txn(compares: Vec<Compare>, ops: Vec<Op>, now_ms: i64) -> Op {
    Op::Txn {
        compares,
        ops,
        now_ms,
    }
}

/// Every snapshot of a store loads back equal (SnapshotFaithful), whatever a transaction did.
fn must_round_trip(s: &Store) {
    let restored = Store::from_snapshot(&s.to_snapshot()).expect("snapshot loads");
    assert_eq!(&restored, s);
    assert_eq!(restored.next_deadline(), s.next_deadline());
}

//   rev 1: put a=1
//   rev 2: txn [incr a, put b, incr a, get a, del a, incr a (recreates), read b]
//          subs:  0      1      2            3      4
#[test]
fn a_transaction_is_one_revision_with_a_sub_per_change() {
    let mut s = Store::new();
    apply(&mut s, put("a", "1"));
    let ops = vec![
        incr("a"),
        put("b", "x"),
        incr("a"),
        Op::Read(ReadOp::Get {
            keys: vec![b("a"), b("b")],
        }),
        Op::Delete { keys: vec![b("a")] },
        incr("a"),
        Op::IncrBy {
            key: b("b"),
            delta: 1,
        },
        Op::Read(ReadOp::Meta { key: b("a") }),
    ];
    let watch = compare(&s, "a");
    let (response, events) = apply(&mut s, txn(vec![watch], ops, 0));
    let Response::Txn {
        responses: Some(responses),
        revision: 2,
    } = response
    else {
        panic!("{response:?}")
    };
    assert_eq!(responses.len(), 8);
    assert_eq!(
        responses[3],
        Response::Values {
            values: vec![Some(b("3")), Some(b("x"))],
            revision: 1
        },
        "a read sees the transaction's own writes"
    );
    assert_eq!(responses[6], Response::Error(StoreError::NotInteger));
    let Response::Meta { kv: Some(kv), .. } = &responses[7] else {
        panic!("{:?}", responses[7])
    };
    assert_eq!((kv.create_revision, kv.version), (2, 1));
    // RevisionMonotonic: one main revision, subs 0..n, the failed op changed nothing.
    let revs: Vec<Revision> = events.iter().map(|e| e.revision).collect();
    assert_eq!(
        revs,
        (0..5).map(|sub| Revision::new(2, sub)).collect::<Vec<_>>()
    );
    assert_eq!(s.revision(), 2);
    assert_eq!(
        s.history(b"a", 0, 0, 10)
            .unwrap()
            .iter()
            .map(|e| (e.revision.main, e.kind))
            .collect::<Vec<_>>(),
        vec![
            (1, EventKind::Put),
            (2, EventKind::Put),
            (2, EventKind::Put),
            (2, EventKind::Delete),
            (2, EventKind::Put),
        ]
    );
    must_round_trip(&s);
    // A key put several times in the revision that created it, compacted: still loads.
    let mut t = Store::new();
    apply(
        &mut t,
        txn(vec![], vec![put("k", "1"), incr("k"), incr("k")], 0),
    );
    apply(&mut t, put("other", "v"));
    apply(&mut t, Op::Compact { revision: 2 });
    assert_eq!(t.get(b"k").map(|kv| kv.version), Some(3));
    must_round_trip(&t);
}

#[test]
fn compares_abort_the_whole_transaction() {
    struct Case {
        name: &'static str,
        /// Applied after the WATCH (the compare is read before them).
        between: Vec<Op>,
        watched: &'static str,
        now_ms: i64,
        want_applied: bool,
    }
    let cases = [
        Case {
            name: "unchanged",
            between: vec![put("other", "v")],
            watched: "w",
            now_ms: 0,
            want_applied: true,
        },
        Case {
            name: "put of the same value",
            between: vec![put("w", "1")],
            watched: "w",
            now_ms: 0,
            want_applied: false,
        },
        Case {
            name: "deleted",
            between: vec![Op::Delete { keys: vec![b("w")] }],
            watched: "w",
            now_ms: 0,
            want_applied: false,
        },
        Case {
            name: "TTL changed",
            between: vec![expire_at("w", 500, ExpireCond::default(), 0)],
            watched: "w",
            now_ms: 0,
            want_applied: false,
        },
        Case {
            name: "absent key created and deleted again",
            between: vec![
                put("none", "1"),
                Op::Delete {
                    keys: vec![b("none")],
                },
            ],
            watched: "none",
            now_ms: 0,
            want_applied: false,
        },
        Case {
            name: "absent key, a compaction past the watch may hide a change",
            between: vec![put("x", "1"), Op::Compact { revision: 3 }],
            watched: "none",
            now_ms: 0,
            want_applied: false,
        },
        Case {
            name: "absent key, a delete of it changes nothing",
            between: vec![Op::Delete {
                keys: vec![b("none")],
            }],
            watched: "none",
            now_ms: 0,
            want_applied: true,
        },
        Case {
            name: "watched key due to expire (Redis aborts EXEC on an expired watched key)",
            between: vec![],
            watched: "ttl",
            now_ms: 1_000,
            want_applied: false,
        },
        Case {
            name: "watched key with a deadline not yet due",
            between: vec![],
            watched: "ttl",
            now_ms: 999,
            want_applied: true,
        },
    ];
    for c in cases {
        let mut s = Store::new();
        apply(&mut s, put("w", "1"));
        apply(
            &mut s,
            Op::SetEx {
                key: b("ttl"),
                value: b("v"),
                when: SetWhen::Always,
                get: false,
                ttl: PutTtl::Expire(Expiry::At(1_000)),
                now_ms: 0,
            },
        );
        let watch = compare(&s, c.watched);
        for op in c.between {
            apply(&mut s, op);
        }
        let before = s.clone();
        let (response, events) = apply(
            &mut s,
            txn(
                vec![watch],
                vec![put("w", "txn"), put("z", "txn")],
                c.now_ms,
            ),
        );
        let Response::Txn { responses, .. } = response else {
            panic!("{}: {response:?}", c.name)
        };
        assert_eq!(responses.is_some(), c.want_applied, "{}", c.name);
        if !c.want_applied {
            assert!(events.is_empty(), "{}", c.name);
            assert_eq!(
                s, before,
                "{}: an aborted transaction changes nothing",
                c.name
            );
        }
    }
}

#[test]
fn expire_follows_redis_conditions_and_past_deadlines_delete() {
    let (nx, xx, gt, lt) = (
        ExpireCond {
            nx: true,
            ..Default::default()
        },
        ExpireCond {
            xx: true,
            ..Default::default()
        },
        ExpireCond {
            gt: true,
            ..Default::default()
        },
        ExpireCond {
            lt: true,
            ..Default::default()
        },
    );
    // (starting deadline, new deadline, cond, want applied, want deadline after)
    type Case = (Option<i64>, i64, ExpireCond, bool, Option<i64>);
    let cases: &[Case] = &[
        (None, 500, ExpireCond::default(), true, Some(500)),
        (None, 500, nx, true, Some(500)),
        (Some(400), 500, nx, false, Some(400)),
        (None, 500, xx, false, None),
        (Some(400), 500, xx, true, Some(500)),
        (None, 500, gt, false, None),
        (Some(400), 500, gt, true, Some(500)),
        (Some(500), 500, gt, false, Some(500)),
        (None, 500, lt, true, Some(500)),
        (Some(600), 500, lt, true, Some(500)),
        (Some(500), 500, lt, false, Some(500)),
    ];
    for &(start, at, cond, want_applied, want_deadline) in cases {
        let mut s = Store::new();
        apply(&mut s, put("k", "v"));
        if let Some(d) = start {
            apply(&mut s, expire_at("k", d, ExpireCond::default(), 0));
        }
        let revision = s.revision();
        let (response, _) = apply(&mut s, expire_at("k", at, cond, 100));
        let case = format!("{start:?} -> {at} {cond:?}");
        assert!(
            matches!(response, Response::Applied { applied, .. } if applied == want_applied),
            "{case}: {response:?}"
        );
        assert_eq!(s.deadline(b"k"), want_deadline, "{case}");
        // Setting a deadline is a put of the same value; a refusal bumps nothing.
        assert_eq!(s.revision(), revision + u64::from(want_applied), "{case}");
        assert_eq!(s.get(b"k").map(|kv| kv.value), Some(b("v")), "{case}");
    }
    let mut s = Store::new();
    apply(&mut s, put("k", "v"));
    let (response, events) = apply(&mut s, expire_at("k", 100, ExpireCond::default(), 100));
    assert!(matches!(response, Response::Applied { applied: true, .. }));
    assert_eq!((events[0].kind, s.get(b"k")), (EventKind::Delete, None));
    assert_eq!(s.expiring(), 0, "DeadlineLive");
    let (response, _) = apply(&mut s, expire_at("k", 500, ExpireCond::default(), 100));
    assert!(matches!(response, Response::Applied { applied: false, .. }));
}

#[test]
fn which_writes_keep_clear_or_move_a_deadline() {
    struct Case {
        name: &'static str,
        op: Op,
        /// The deadline of (k, k2) afterwards; k starts with 1000, k2 is absent.
        want: (Option<i64>, Option<i64>),
    }
    let set_ex = |ttl| Op::SetEx {
        key: b("k"),
        value: b("9"),
        when: SetWhen::Always,
        get: false,
        ttl,
        now_ms: 100,
    };
    let cases = [
        Case {
            name: "SET clears",
            op: put("k", "2"),
            want: (None, None),
        },
        Case {
            name: "SET KEEPTTL keeps",
            op: set_ex(PutTtl::Keep),
            want: (Some(1000), None),
        },
        Case {
            name: "SET EX replaces",
            op: set_ex(PutTtl::Expire(Expiry::At(2000))),
            want: (Some(2000), None),
        },
        Case {
            name: "INCR keeps",
            op: incr("k"),
            want: (Some(1000), None),
        },
        Case {
            name: "APPEND keeps",
            op: Op::Append {
                key: b("k"),
                value: b("0"),
            },
            want: (Some(1000), None),
        },
        Case {
            name: "MSET clears",
            op: Op::MSet {
                pairs: vec![(b("k"), b("1"))],
                if_none_exist: false,
            },
            want: (None, None),
        },
        Case {
            name: "RENAME moves",
            op: Op::Rename {
                src: b("k"),
                dst: b("k2"),
                if_absent: false,
            },
            want: (None, Some(1000)),
        },
        Case {
            name: "PERSIST removes",
            op: Op::Persist { key: b("k") },
            want: (None, None),
        },
        Case {
            name: "GETEX PERSIST removes",
            op: Op::GetEx {
                key: b("k"),
                action: GetExAction::Persist,
                now_ms: 100,
            },
            want: (None, None),
        },
        Case {
            name: "GETEX PXAT replaces",
            op: Op::GetEx {
                key: b("k"),
                action: GetExAction::Expire(Expiry::At(3000)),
                now_ms: 100,
            },
            want: (Some(3000), None),
        },
        Case {
            name: "CAS EX replaces",
            op: Op::CasEx {
                key: b("k"),
                expected_mod_revision: 2,
                value: b("w"),
                expiry: Expiry::At(4000),
                now_ms: 100,
            },
            want: (Some(4000), None),
        },
        Case {
            name: "an unstamped relative deadline is refused, nothing changes",
            op: set_ex(PutTtl::Expire(Expiry::After(5))),
            want: (Some(1000), None),
        },
        Case {
            name: "DEL removes",
            op: Op::Delete { keys: vec![b("k")] },
            want: (None, None),
        },
    ];
    for c in cases {
        let mut s = Store::new();
        apply(&mut s, put("k", "1"));
        apply(&mut s, expire_at("k", 1000, ExpireCond::default(), 0));
        apply(&mut s, c.op);
        assert_eq!((s.deadline(b"k"), s.deadline(b"k2")), c.want, "{}", c.name);
        must_round_trip(&s);
    }
}

#[test]
fn expire_due_deletes_only_what_is_still_due() {
    let mut s = Store::new();
    for (key, at) in [("a", 100), ("b", 200), ("c", 300)] {
        apply(
            &mut s,
            Op::SetEx {
                key: b(key),
                value: b("v"),
                when: SetWhen::Always,
                get: false,
                ttl: PutTtl::Expire(Expiry::At(at)),
                now_ms: 0,
            },
        );
    }
    apply(&mut s, put("plain", "v"));
    assert_eq!(s.due(250, 10), vec![b("a"), b("b")]);
    assert_eq!(s.due(250, 1), vec![b("a")]);
    assert_eq!(s.next_deadline(), Some(100));
    // The leader saw a and b due; meanwhile b got a later deadline (ExpiryIdempotent).
    apply(&mut s, expire_at("b", 900, ExpireCond::default(), 0));
    let listed = vec![b("a"), b("b"), b("a"), b("plain"), b("missing")];
    let (response, events) = apply(
        &mut s,
        Op::ExpireDue {
            keys: listed.clone(),
            now_ms: 250,
        },
    );
    assert_eq!(
        response,
        Response::Deleted {
            deleted: 1,
            revision: 6
        }
    );
    assert_eq!(
        events
            .iter()
            .map(|e| (e.kind, e.kv.key.clone(), e.revision))
            .collect::<Vec<_>>(),
        vec![(EventKind::Expired, b("a"), Revision::new(6, 0))]
    );
    assert_eq!(
        s.history(b"a", 0, 0, 10).unwrap().last().map(|e| e.kind),
        Some(EventKind::Expired)
    );
    // A duplicate entry (a retry, an old leader's) deletes nothing and bumps nothing.
    let before = s.clone();
    let (response, events) = apply(
        &mut s,
        Op::ExpireDue {
            keys: listed,
            now_ms: 250,
        },
    );
    assert!(events.is_empty());
    assert!(matches!(response, Response::Deleted { deleted: 0, .. }));
    assert_eq!(s, before);
    assert_eq!((s.next_deadline(), s.expiring()), (Some(300), 2));
    must_round_trip(&s);
}

#[test]
fn stamping_makes_every_relative_deadline_absolute() {
    let mut op = txn(
        vec![],
        vec![
            Op::SetEx {
                key: b("k"),
                value: b("v"),
                when: SetWhen::Always,
                get: false,
                ttl: PutTtl::Expire(Expiry::After(5_000)),
                now_ms: 0,
            },
            Op::Expire {
                key: b("k"),
                expiry: Expiry::After(-10),
                cond: ExpireCond::default(),
                now_ms: 0,
            },
            Op::GetEx {
                key: b("k"),
                action: GetExAction::Expire(Expiry::After(i64::MAX)),
                now_ms: 0,
            },
        ],
        0,
    );
    op.stamp(1_000);
    let Op::Txn { ops, now_ms, .. } = &op else {
        panic!()
    };
    assert_eq!(*now_ms, 1_000);
    assert!(matches!(
        ops[0],
        Op::SetEx {
            ttl: PutTtl::Expire(Expiry::At(6_000)),
            now_ms: 1_000,
            ..
        }
    ));
    assert!(matches!(
        ops[1],
        Op::Expire {
            expiry: Expiry::At(990),
            now_ms: 1_000,
            ..
        }
    ));
    assert!(matches!(
        ops[2],
        Op::GetEx {
            action: GetExAction::Expire(Expiry::At(i64::MAX)),
            ..
        }
    ));
    // Applied: set, then an EXPIRE in the past deletes it within the same revision.
    let mut s = Store::new();
    let (response, events) = apply(&mut s, op);
    assert!(matches!(
        response,
        Response::Txn {
            responses: Some(_),
            revision: 1
        }
    ));
    assert_eq!(
        events.iter().map(|e| e.kind).collect::<Vec<_>>(),
        vec![EventKind::Put, EventKind::Delete]
    );
    assert_eq!((s.get(b"k"), s.expiring()), (None, 0));
}
