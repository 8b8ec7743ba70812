//! Revisions, versions, generations and events of puts and deletes; no panic and RESP-prefixed
//! error texts on odd requests.

use super::test_util::*;
use super::*;

//   rev:   1        2        3          4          5        6
//   a:   put(x) - put(x) - put(y) -   del[a,a,b] - .   -  put(z)
//   b:     .        .        .       (absent)   put(w)     .
//   a's generations: [c1 v1, c1 v2, c1 v3, tomb@4] then [c6 v1]
#[test]
fn revisions_versions_and_generations() {
    struct Step {
        op: Op,
        want_response: Response,
        want_events: usize,
    }
    let steps = [
        Step {
            op: put("a", "x"),
            want_response: Response::Put { revision: 1 },
            want_events: 1,
        },
        Step {
            op: put("a", "x"),
            want_response: Response::Put { revision: 2 },
            want_events: 1,
        },
        Step {
            op: put("a", "y"),
            want_response: Response::Put { revision: 3 },
            want_events: 1,
        },
        Step {
            op: del(&["a", "a", "b"]),
            want_response: Response::Deleted {
                deleted: 1,
                revision: 4,
            },
            want_events: 1,
        },
        Step {
            op: del(&["a", "b"]),
            want_response: Response::Deleted {
                deleted: 0,
                revision: 4,
            },
            want_events: 0,
        },
        Step {
            op: put("b", "w"),
            want_response: Response::Put { revision: 5 },
            want_events: 1,
        },
        Step {
            op: put("a", "z"),
            want_response: Response::Put { revision: 6 },
            want_events: 1,
        },
    ];
    let mut s = Store::new();
    assert_eq!((s.revision(), s.get_at(b"a", 0)), (0, Ok(None)));
    for (i, step) in steps.into_iter().enumerate() {
        let (response, events) = s.apply(&Request {
            client: None,
            op: step.op,
            at_ms: 0,
        });
        assert_eq!(response, step.want_response, "step {i}");
        assert_eq!(events.len(), step.want_events, "step {i}");
    }
    struct Read {
        key: &'static str,
        revision: u64,
        want: Option<(&'static str, u64, u64, u64)>,
    }
    let reads = [
        Read {
            key: "a",
            revision: 1,
            want: Some(("x", 1, 1, 1)),
        },
        Read {
            key: "a",
            revision: 2,
            want: Some(("x", 1, 2, 2)),
        },
        Read {
            key: "a",
            revision: 3,
            want: Some(("y", 1, 3, 3)),
        },
        Read {
            key: "a",
            revision: 4,
            want: None,
        },
        Read {
            key: "a",
            revision: 5,
            want: None,
        },
        Read {
            key: "a",
            revision: 6,
            want: Some(("z", 6, 6, 1)),
        },
        Read {
            key: "a",
            revision: 0,
            want: Some(("z", 6, 6, 1)),
        },
        Read {
            key: "b",
            revision: 4,
            want: None,
        },
        Read {
            key: "b",
            revision: 5,
            want: Some(("w", 5, 5, 1)),
        },
        Read {
            key: "c",
            revision: 6,
            want: None,
        },
    ];
    for r in reads {
        let want = r.want.map(|(v, c, m, n)| (v.to_owned(), c, m, n));
        assert_eq!(
            must_read(&s, r.key, r.revision),
            want,
            "{}@{}",
            r.key,
            r.revision
        );
    }
    assert_eq!(s.len(), 2);
    assert_eq!(s.keys().cloned().collect::<Vec<_>>(), vec![b("a"), b("b")]);
    assert_eq!(
        s.get_at(b"a", 7),
        Err(StoreError::FutureRevision {
            requested: 7,
            current: 6
        })
    );
}

#[test]
fn delete_events_number_subs_and_carry_prev() {
    let mut s = Store::new();
    must_apply(&mut s, put("a", "1"));
    must_apply(&mut s, put("b", "2"));
    let (response, events) = s.apply(&Request {
        client: None,
        op: del(&["b", "x", "a", "b"]),
        at_ms: 0,
    });
    assert_eq!(
        response,
        Response::Deleted {
            deleted: 2,
            revision: 3
        }
    );
    let got: Vec<(Revision, EventKind, Bytes, u64, Option<u64>)> = events
        .iter()
        .map(|e| {
            let prev = e.prev.as_ref().map(|p| p.mod_revision);
            (
                e.revision,
                e.kind,
                e.kv.key.clone(),
                e.kv.mod_revision,
                prev,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (Revision::new(3, 0), EventKind::Delete, b("b"), 3, Some(2)),
            (Revision::new(3, 1), EventKind::Delete, b("a"), 3, Some(1)),
        ]
    );
    assert_eq!((events[0].kv.version, events[0].kv.create_revision), (0, 0));
    assert!(events[0].kv.value.is_empty());
    assert!(s.is_empty());
    // The apply events and history agree.
    assert_eq!(s.history(b"b", 3, 3, 10).unwrap(), vec![events[0].clone()]);
}

#[test]
fn never_panics_on_odd_requests() {
    let mut s = Store::new();
    let huge: Vec<Bytes> = (0..10_000u32)
        .map(|i| Bytes::from(i.to_be_bytes().to_vec()))
        .collect();
    let ops = [
        put("", ""),
        del(&[""]),
        del(&[]),
        Op::Delete { keys: huge },
        Op::Put {
            key: Bytes::from(vec![0xff; 1 << 16]),
            value: Bytes::from(vec![0; 1 << 16]),
        },
        Op::Compact { revision: u64::MAX },
        Op::Compact { revision: 3 },
        Op::SetRange {
            key: b("a"),
            offset: u64::MAX,
            value: b("x"),
        },
        Op::MSet {
            pairs: Vec::new(),
            if_none_exist: true,
        },
        Op::IncrByFloat {
            key: b(""),
            increment: Bytes::from(vec![b'9'; 5000]),
        },
        Op::IncrByFloat {
            key: b(""),
            increment: b("0x1p99999999999999999999"),
        },
        Op::IncrByFloat {
            key: b(""),
            increment: b("-0x1p-99999999999999999999"),
        },
        Op::Rename {
            src: b("a"),
            dst: b("a"),
            if_absent: false,
        },
        Op::Flush,
    ];
    for op in ops {
        must_apply(&mut s, op);
    }
    assert_eq!((s.revision(), s.compact_revision(), s.len()), (4, 3, 0));
    must_apply_as(&mut s, u64::MAX, u64::MAX, put("a", "b"));
    must_apply_as(&mut s, u64::MAX, 0, put("a", "b"));
    assert!(s.get_at(b"", u64::MAX).is_err());
    assert!(s.history(b"", u64::MAX, u64::MAX, usize::MAX).is_err());
}

#[test]
fn error_texts_start_with_resp_prefix() {
    let cases = [
        (
            StoreError::Compacted {
                requested: 2,
                compact_revision: 5,
            },
            "COMPACTED required revision 2 has been compacted; oldest available revision is 5",
        ),
        (
            StoreError::FutureRevision {
                requested: 9,
                current: 4,
            },
            "ERR revision 9 is in the future; current revision is 4",
        ),
        (
            StoreError::StaleSequence {
                client_id: 7,
                seq: 1,
                last: 3,
            },
            "ERR stale request: sequence 1 of client 7 is older than the last applied 3",
        ),
        (
            StoreError::NotInteger,
            "ERR value is not an integer or out of range",
        ),
        (
            StoreError::Overflow,
            "ERR increment or decrement would overflow",
        ),
        (StoreError::NotFloat, "ERR value is not a valid float"),
        (
            StoreError::NanOrInfinity,
            "ERR increment would produce NaN or Infinity",
        ),
        (
            StoreError::StringTooLong,
            "ERR string exceeds maximum allowed size (proto-max-bulk-len)",
        ),
        (StoreError::NoSuchKey, "ERR no such key"),
    ];
    for (error, want) in cases {
        assert_eq!(error.to_string(), want);
    }
}
