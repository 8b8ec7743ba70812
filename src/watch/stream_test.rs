//! The watch stream's reads and entries (`stream.rs`).

use super::*;
use crate::store::{Op, Request};

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn apply(s: &mut Store, op: Op) {
    s.apply(&Request {
        client: None,
        op,
        at_ms: 0,
    });
}

fn read_all(s: &Store, mut c: Cursor) -> Result<Vec<(u64, u64, Bytes)>, StoreError> {
    while !c.done {
        c.step(s)?;
    }
    Ok(c.events
        .iter()
        .map(|e| (e.revision.main, e.revision.sub, e.kv.key.clone()))
        .collect())
}

fn after(r: Revision) -> (Bound<Revision>, Bound<Revision>) {
    (Bound::Excluded(r), Bound::Unbounded)
}

#[test]
fn ids_parse_as_redis() {
    assert_eq!(parse_id(b"5", 0), Some(Revision::new(5, 0)));
    assert_eq!(parse_id(b"5", u64::MAX), Some(Revision::new(5, u64::MAX)));
    assert_eq!(parse_id(b"5-3", u64::MAX), Some(Revision::new(5, 3)));
    for bad in [
        "",
        "-",
        "5-",
        "-3",
        "a",
        "5-x",
        "1-2-3",
        "+5",
        " 5",
        "99999999999999999999",
    ] {
        assert_eq!(parse_id(bad.as_bytes(), 0), None, "{bad:?}");
    }
}

//   rev 1: a=1   rev 2: MSET b/x=1 b/y=2 (subs 0, 1)   rev 3: del a   rev 4: b/x=3
fn sample() -> Store {
    let mut s = Store::new();
    apply(
        &mut s,
        Op::Put {
            key: b("a"),
            value: b("1"),
        },
    );
    apply(
        &mut s,
        Op::MSet {
            pairs: vec![(b("b/x"), b("1")), (b("b/y"), b("2"))],
            if_none_exist: false,
        },
    );
    apply(&mut s, Op::Delete { keys: vec![b("a")] });
    apply(
        &mut s,
        Op::Put {
            key: b("b/x"),
            value: b("3"),
        },
    );
    s
}

#[test]
fn reads_in_order_filtered_and_never_split_a_revision() {
    let s = sample();
    let all = read_all(
        &s,
        Cursor::new(after(Revision::new(0, 0)), false, 100, true, b("")),
    )
    .unwrap();
    assert_eq!(
        all,
        vec![
            (1, 0, b("a")),
            (2, 0, b("b/x")),
            (2, 1, b("b/y")),
            (3, 0, b("a")),
            (4, 0, b("b/x"))
        ]
    );
    // COUNT 2 from revision 1 on would end inside revision 2: rounded up (Atomic).
    let two = read_all(
        &s,
        Cursor::new(after(Revision::new(1, u64::MAX)), false, 1, true, b("")),
    )
    .unwrap();
    assert_eq!(two, vec![(2, 0, b("b/x")), (2, 1, b("b/y"))]);
    // Not atomic (XRANGE): exactly COUNT.
    let one = read_all(
        &s,
        Cursor::new(after(Revision::new(1, u64::MAX)), false, 1, false, b("")),
    )
    .unwrap();
    assert_eq!(one, vec![(2, 0, b("b/x"))]);
    let prefixed = read_all(
        &s,
        Cursor::new(after(Revision::new(2, 0)), false, 100, true, b("b/")),
    )
    .unwrap();
    assert_eq!(prefixed, vec![(2, 1, b("b/y")), (4, 0, b("b/x"))]);
    let reversed = read_all(
        &s,
        Cursor::new((Bound::Unbounded, Bound::Unbounded), true, 2, false, b("")),
    )
    .unwrap();
    assert_eq!(reversed, vec![(4, 0, b("b/x")), (3, 0, b("a"))]);
}

#[test]
fn compaction_is_refused_not_skipped() {
    let mut s = sample();
    apply(&mut s, Op::Compact { revision: 3 });
    for (id, ok) in [
        (Revision::new(1, u64::MAX), false),
        (Revision::new(2, u64::MAX), true),
        (Revision::new(2, 1), false),
        (Revision::new(3, 0), true),
        (Revision::new(0, 0), false),
    ] {
        let got = check_not_compacted(&s, id);
        assert_eq!(got.is_ok(), ok, "{id:?}: {got:?}");
    }
    let rest = read_all(
        &s,
        Cursor::new(after(Revision::new(2, u64::MAX)), false, 100, true, b("")),
    )
    .unwrap();
    assert_eq!(rest, vec![(3, 0, b("a")), (4, 0, b("b/x"))]);
    // The index holds nothing below the compact revision (ChangeIndex), also after a
    // snapshot round trip.
    let restored = Store::from_snapshot(&s.to_snapshot()).unwrap();
    let oldest = (Bound::Unbounded, Bound::Unbounded);
    let again = read_all(&restored, Cursor::new(oldest, false, 100, true, b(""))).unwrap();
    assert_eq!(again, rest);
    assert!(read_all(
        &restored,
        Cursor::new(after(Revision::new(0, 0)), false, 9, true, b(""))
    )
    .is_err());
}

#[test]
fn long_scans_go_in_chunks() {
    let mut s = Store::new();
    for i in 0..(SCAN_CHUNK * 2 + 10) {
        apply(
            &mut s,
            Op::Put {
                key: b(if i % 1000 == 7 { "hit" } else { "miss" }),
                value: b("v"),
            },
        );
    }
    let mut c = Cursor::new(after(Revision::new(0, 0)), false, 1000, true, b("hit"));
    c.step(&s).unwrap();
    assert!(!c.done, "one chunk does not cover the history");
    let got = read_all(&s, c).unwrap();
    assert_eq!(got.len(), (SCAN_CHUNK * 2 + 10).div_ceil(1000));
}

#[test]
fn entries_carry_type_key_value_prev() {
    let s = sample();
    let events = read_all(
        &s,
        Cursor::new(after(Revision::new(2, u64::MAX)), false, 100, true, b("")),
    );
    assert!(events.is_ok());
    let del = s.event_at(b"a", Revision::new(3, 0)).unwrap();
    let frame = entry_frame(&del, None);
    let want = Frame::Array(vec![
        Frame::Bulk(b("3-0")),
        Frame::Array(vec![
            Frame::Bulk(b("type")),
            Frame::Bulk(b("del")),
            Frame::Bulk(b("key")),
            Frame::Bulk(b("a")),
            Frame::Bulk(b("prev")),
            Frame::Bulk(b("1")),
        ]),
    ]);
    assert_eq!(frame, want);
}

/// The stream entry's fields as text pairs.
fn entry_fields(frame: Frame) -> Vec<(String, String)> {
    let Frame::Array(mut parts) = frame else {
        panic!()
    };
    let Some(Frame::Array(items)) = parts.pop() else {
        panic!()
    };
    items
        .chunks(2)
        .map(|p| match p {
            [Frame::Bulk(k), Frame::Bulk(v)] => (
                String::from_utf8_lossy(k).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            ),
            other => panic!("{other:?}"),
        })
        .collect()
}

#[test]
fn hash_entries_name_the_fields_that_changed() {
    let mut s = Store::new();
    let hset = |pairs: &[(&str, &str)]| Op::HSet {
        key: b("h"),
        pairs: pairs.iter().map(|(f, v)| (b(f), b(v))).collect(),
        if_absent: false,
    };
    let hdel = |fields: &[&str]| Op::HDel {
        key: b("h"),
        fields: fields.iter().map(|f| b(f)).collect(),
    };
    for op in [
        hset(&[("a", "1"), ("b", "2")]),
        hset(&[("a", "1"), ("b", "3"), ("c", "4")]),
        hdel(&["a"]),
        Op::Delete { keys: vec![b("h")] },
    ] {
        s.apply(&Request {
            client: None,
            op,
            at_ms: 0,
        });
    }
    let entry = |main| {
        entry_fields(entry_frame(
            &s.event_at(b"h", Revision::new(main, 0)).unwrap(),
            None,
        ))
    };
    let pairs = |p: &[(&str, &str)]| -> Vec<(String, String)> {
        p.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    assert_eq!(
        entry(1),
        pairs(&[
            ("type", "hset"),
            ("key", "h"),
            ("set:a", "1"),
            ("set:b", "2")
        ])
    );
    assert_eq!(
        entry(2),
        pairs(&[
            ("type", "hset"),
            ("key", "h"),
            ("set:b", "3"),
            ("prev:b", "2"),
            ("set:c", "4")
        ]),
        "only the changed fields, a unchanged is not listed"
    );
    assert_eq!(
        entry(3),
        pairs(&[("type", "hdel"), ("key", "h"), ("del:a", "1")])
    );
    assert_eq!(
        entry(4),
        pairs(&[
            ("type", "del"),
            ("key", "h"),
            ("del:b", "3"),
            ("del:c", "4")
        ])
    );
}

#[test]
fn entries_name_the_author_of_their_revision() {
    let mut s = Store::new();
    apply(
        &mut s,
        Op::Authored {
            author: b("alice"),
            op: Box::new(Op::Put {
                key: b("k"),
                value: b("1"),
            }),
        },
    );
    apply(
        &mut s,
        Op::Put {
            key: b("k"),
            value: b("2"),
        },
    );
    let mut c = Cursor::new(after(Revision::new(0, 0)), false, 100, true, b(""));
    while !c.done {
        c.step(&s).unwrap();
    }
    let fields: Vec<Vec<(String, String)>> =
        c.events.iter().map(|e| entry_fields(e.frame())).collect();
    assert_eq!(fields.len(), 2);
    assert_eq!(
        fields[0].last(),
        Some(&("author".to_string(), "alice".to_string()))
    );
    assert!(
        fields[1].iter().all(|(k, _)| k != "author"),
        "a write with no author names none: {:?}",
        fields[1]
    );
}

#[test]
fn a_gray_reader_follows_its_view_of_each_key() {
    let mut s = Store::new();
    let put = |k: &str, v: &str| Op::Put {
        key: b(k),
        value: b(v),
    };
    for op in [
        put("cfg/x", "old"),                  // 1
        put("__gray__/canary/cfg/x", "new"),  // 2: staged
        put("cfg/x", "old2"),                 // 3: hidden from canary
        put("__gray__/canary/cfg/x", "new2"), // 4: staged again
        Op::Delete {
            keys: vec![b("__gray__/canary/cfg/x")], // 5: aborted
        },
        put("__gray__/canary/cfg/x", "new3"),  // 6
        put("__gray__/other/cfg/x", "theirs"), // 7: another label's
        Op::Rename {
            src: b("__gray__/canary/cfg/x"),
            dst: b("cfg/x"),
            if_absent: false,
        }, // 8: promoted
        put("__gray__/canary/cfg/y", "fresh"), // 9: staged for a key that does not exist
        Op::Delete {
            keys: vec![b("__gray__/canary/cfg/y")], // 10: aborted: the key is absent
        },
    ] {
        apply(&mut s, op);
    }
    let view = |label: Option<&str>, prefix: &str| -> Vec<(u64, Vec<(String, String)>)> {
        let mut c = Cursor::new(after(Revision::new(0, 0)), false, 100, true, b(prefix))
            .seen_by(label.map(b));
        while !c.done {
            c.step(&s).unwrap();
        }
        c.events
            .iter()
            .map(|e| (e.revision.main, entry_fields(e.frame())))
            .collect()
    };
    let f = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    let set = |v: &str, prev: Option<&str>| {
        let mut e = f(&[("type", "set"), ("key", "cfg/x"), ("value", v)]);
        e.extend(prev.map(|p| ("prev".to_string(), p.to_string())));
        e
    };
    assert_eq!(
        view(Some("canary"), "cfg/"),
        vec![
            (1, set("old", None)),
            (2, set("new", Some("old"))),
            (4, set("new2", Some("new"))),
            (5, set("old2", Some("new2"))),
            (6, set("new3", Some("old2"))),
            (8, set("new3", Some("new3"))),
            (
                9,
                f(&[("type", "set"), ("key", "cfg/y"), ("value", "fresh")])
            ),
            (
                10,
                f(&[("type", "del"), ("key", "cfg/y"), ("prev", "fresh")])
            ),
        ]
    );
    // Everyone else: the key's own changes only.
    let plain: Vec<u64> = view(None, "cfg/").iter().map(|e| e.0).collect();
    assert_eq!(plain, vec![1, 3, 8]);
    let other: Vec<u64> = view(Some("other"), "cfg/").iter().map(|e| e.0).collect();
    // other: its own stage (7) shows; its candidate then hides the promote of canary's.
    assert_eq!(other, vec![1, 3, 7]);
    // The whole keyspace: canary sees other labels' candidate keys as keys, not its own.
    let all: Vec<u64> = view(Some("canary"), "").iter().map(|e| e.0).collect();
    assert_eq!(all, vec![1, 2, 4, 5, 6, 7, 8, 9, 10]);
}
