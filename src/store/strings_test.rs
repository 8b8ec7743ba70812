//! Table tests of the string read-modify-writes (`strings.rs`): for each op, the response, the
//! changes (RevisionMonotonic: one main revision, subs 0.., none for a no-op or an error) and
//! the keys afterwards.

use bytes::Bytes;

use super::*;

mod counters;
mod keys;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn set(key: &str, value: &str, when: SetWhen, get: bool) -> Op {
    Op::Set {
        key: b(key),
        value: b(value),
        when,
        get,
    }
}

fn incr_by(key: &str, delta: i64) -> Op {
    Op::IncrBy { key: b(key), delta }
}

fn incr_by_float(key: &str, increment: &str) -> Op {
    Op::IncrByFloat {
        key: b(key),
        increment: b(increment),
    }
}

fn append(key: &str, value: &str) -> Op {
    Op::Append {
        key: b(key),
        value: b(value),
    }
}

fn set_range(key: &str, offset: u64, value: &str) -> Op {
    Op::SetRange {
        key: b(key),
        offset,
        value: b(value),
    }
}

fn mset(pairs: &[(&str, &str)], if_none_exist: bool) -> Op {
    Op::MSet {
        pairs: pairs.iter().map(|(k, v)| (b(k), b(v))).collect(),
        if_none_exist,
    }
}

fn rename(src: &str, dst: &str, if_absent: bool) -> Op {
    Op::Rename {
        src: b(src),
        dst: b(dst),
        if_absent,
    }
}

fn cas(key: &str, expected_mod_revision: u64, value: &str) -> Op {
    Op::Cas {
        key: b(key),
        expected_mod_revision,
        value: b(value),
    }
}

/// The store revision after the `given` puts of every case.
const GIVEN_REVISION: u64 = 3;

/// One op on a store holding `a` = "1" (rev 1), `s` = "hello" (rev 2), `a` = "10" (rev 3):
///
/// ```text
///   rev:   1        2          3
///   a:   put(1)     .       put(10)      (create 1, version 2)
///   s:     .     put(hello)    .         (create 2, version 1)
/// ```
struct Case {
    name: &'static str,
    op: Op,
    want_response: Response,
    /// The changes, in sub order: (put?, key).
    want_changes: &'static [(EventKind, &'static str)],
    /// Keys and their values afterwards (`None`: absent).
    want_after: &'static [(&'static str, Option<&'static str>)],
}

fn must_given() -> Store {
    let mut s = Store::new();
    for (key, value) in [("a", "1"), ("s", "hello"), ("a", "10")] {
        let op = Op::Put {
            key: b(key),
            value: b(value),
        };
        s.apply(&Request {
            client: None,
            op,
            at_ms: 0,
        });
    }
    assert_eq!(s.revision(), GIVEN_REVISION);
    s
}

fn must_run(cases: Vec<Case>) {
    use EventKind::{Delete, Put};
    for c in cases {
        let mut s = must_given();
        let before = s.clone();
        let (response, events) = s.apply(&Request {
            client: None,
            op: c.op.clone(),
            at_ms: 0,
        });
        assert_eq!(response, c.want_response, "{}: response", c.name);
        let changes: Vec<(EventKind, String)> = events
            .iter()
            .map(|e| (e.kind, String::from_utf8(e.kv.key.to_vec()).unwrap()))
            .collect();
        let want_changes: Vec<(EventKind, String)> = c
            .want_changes
            .iter()
            .map(|(kind, key)| (*kind, key.to_string()))
            .collect();
        assert_eq!(changes, want_changes, "{}: changes", c.name);
        if events.is_empty() {
            // RevisionMonotonic: a request that changes nothing bumps nothing.
            assert_eq!(s, before, "{}: a no-op changed the store", c.name);
        } else {
            assert_eq!(
                s.revision(),
                GIVEN_REVISION + 1,
                "{}: one new revision",
                c.name
            );
            for (sub, e) in events.iter().enumerate() {
                assert_eq!(
                    e.revision,
                    Revision::new(GIVEN_REVISION + 1, sub as u64),
                    "{}: event {sub}",
                    c.name
                );
                // Every event agrees with what a reader sees at that revision.
                let read = s.get_at(&e.kv.key, e.revision.main).unwrap();
                if e.kind == Put && sub + 1 == events.len() {
                    assert_eq!(read.as_ref(), Some(&e.kv), "{}: event {sub}", c.name);
                }
                if e.kind == Delete {
                    assert!(e.prev.is_some(), "{}: a delete replaces a value", c.name);
                }
            }
        }
        for &(key, want) in c.want_after {
            let got = s.get(key.as_bytes()).map(|kv| kv.value);
            assert_eq!(got, want.map(b), "{}: {key} afterwards", c.name);
        }
    }
}

#[test]
fn set_with_conditions_and_get() {
    use EventKind::Put;
    let unchanged = |prev: Option<&str>| Response::Set {
        written: false,
        prev: prev.map(b),
        revision: GIVEN_REVISION,
    };
    let written = |prev: Option<&str>| Response::Set {
        written: true,
        prev: prev.map(b),
        revision: GIVEN_REVISION + 1,
    };
    must_run(vec![
        Case {
            name: "always, existing, get",
            op: set("a", "x", SetWhen::Always, true),
            want_response: written(Some("10")),
            want_changes: &[(Put, "a")],
            want_after: &[("a", Some("x"))],
        },
        Case {
            name: "always, missing, get",
            op: set("n", "x", SetWhen::Always, true),
            want_response: written(None),
            want_changes: &[(Put, "n")],
            want_after: &[("n", Some("x"))],
        },
        Case {
            name: "always, same value still bumps",
            op: set("a", "10", SetWhen::Always, false),
            want_response: written(None),
            want_changes: &[(Put, "a")],
            want_after: &[("a", Some("10"))],
        },
        Case {
            name: "NX on existing: refused",
            op: set("a", "x", SetWhen::Absent, false),
            want_response: unchanged(None),
            want_changes: &[],
            want_after: &[("a", Some("10"))],
        },
        Case {
            name: "NX GET on existing: refused, old value",
            op: set("a", "x", SetWhen::Absent, true),
            want_response: unchanged(Some("10")),
            want_changes: &[],
            want_after: &[("a", Some("10"))],
        },
        Case {
            name: "NX on missing",
            op: set("n", "x", SetWhen::Absent, false),
            want_response: written(None),
            want_changes: &[(Put, "n")],
            want_after: &[("n", Some("x"))],
        },
        Case {
            name: "XX on missing: refused",
            op: set("n", "x", SetWhen::Present, true),
            want_response: unchanged(None),
            want_changes: &[],
            want_after: &[("n", None)],
        },
        Case {
            name: "XX GET on existing",
            op: set("s", "x", SetWhen::Present, true),
            want_response: written(Some("hello")),
            want_changes: &[(Put, "s")],
            want_after: &[("s", Some("x"))],
        },
    ]);
}

#[test]
fn get_del() {
    use EventKind::Delete;
    must_run(vec![
        Case {
            name: "existing",
            op: Op::GetDel { key: b("s") },
            want_response: Response::Value {
                value: Some(b("hello")),
                revision: GIVEN_REVISION + 1,
            },
            want_changes: &[(Delete, "s")],
            want_after: &[("s", None), ("a", Some("10"))],
        },
        Case {
            name: "missing",
            op: Op::GetDel { key: b("n") },
            want_response: Response::Value {
                value: None,
                revision: GIVEN_REVISION,
            },
            want_changes: &[],
            want_after: &[],
        },
    ]);
}

#[test]
fn append_and_set_range() {
    use EventKind::Put;
    let length = |length| Response::Length {
        length,
        revision: GIVEN_REVISION + 1,
    };
    let unchanged = |length| Response::Length {
        length,
        revision: GIVEN_REVISION,
    };
    must_run(vec![
        Case {
            name: "append to existing",
            op: append("s", " world"),
            want_response: length(11),
            want_changes: &[(Put, "s")],
            want_after: &[("s", Some("hello world"))],
        },
        Case {
            name: "append creates",
            op: append("n", "x"),
            want_response: length(1),
            want_changes: &[(Put, "n")],
            want_after: &[("n", Some("x"))],
        },
        Case {
            name: "append nothing still creates the key",
            op: append("n", ""),
            want_response: length(0),
            want_changes: &[(Put, "n")],
            want_after: &[("n", Some(""))],
        },
        Case {
            name: "setrange inside",
            op: set_range("s", 1, "EL"),
            want_response: length(5),
            want_changes: &[(Put, "s")],
            want_after: &[("s", Some("hELlo"))],
        },
        Case {
            name: "setrange past the end pads with zeros",
            op: set_range("s", 7, "!"),
            want_response: length(8),
            want_changes: &[(Put, "s")],
            want_after: &[("s", Some("hello\0\0!"))],
        },
        Case {
            name: "setrange creates",
            op: set_range("n", 2, "x"),
            want_response: length(3),
            want_changes: &[(Put, "n")],
            want_after: &[("n", Some("\0\0x"))],
        },
        Case {
            name: "setrange of nothing on existing: length, no write",
            op: set_range("s", 100, ""),
            want_response: unchanged(5),
            want_changes: &[],
            want_after: &[("s", Some("hello"))],
        },
        Case {
            name: "setrange of nothing on missing: 0, no key",
            op: set_range("n", 0, ""),
            want_response: unchanged(0),
            want_changes: &[],
            want_after: &[("n", None)],
        },
        Case {
            name: "setrange beyond 512 MiB",
            op: set_range("s", MAX_STRING_LEN, "x"),
            want_response: Response::Error(StoreError::StringTooLong),
            want_changes: &[],
            want_after: &[("s", Some("hello"))],
        },
        Case {
            name: "setrange offset overflow",
            op: set_range("s", u64::MAX, "x"),
            want_response: Response::Error(StoreError::StringTooLong),
            want_changes: &[],
            want_after: &[("s", Some("hello"))],
        },
    ]);
}

#[test]
fn mset_and_msetnx() {
    use EventKind::Put;
    let applied = |applied: bool| Response::Applied {
        applied,
        revision: GIVEN_REVISION + u64::from(applied),
    };
    must_run(vec![
        Case {
            name: "three keys, one revision",
            op: mset(&[("x", "1"), ("a", "2"), ("y", "3")], false),
            want_response: applied(true),
            want_changes: &[(Put, "x"), (Put, "a"), (Put, "y")],
            want_after: &[("x", Some("1")), ("a", Some("2")), ("y", Some("3"))],
        },
        Case {
            name: "a key twice: the last value, one change",
            op: mset(&[("x", "1"), ("y", "2"), ("x", "3")], false),
            want_response: applied(true),
            want_changes: &[(Put, "y"), (Put, "x")],
            want_after: &[("x", Some("3")), ("y", Some("2"))],
        },
        Case {
            name: "nx, one exists: nothing",
            op: mset(&[("x", "1"), ("s", "2")], true),
            want_response: applied(false),
            want_changes: &[],
            want_after: &[("x", None), ("s", Some("hello"))],
        },
        Case {
            name: "nx, none exists",
            op: mset(&[("x", "1"), ("y", "2"), ("x", "3")], true),
            want_response: applied(true),
            want_changes: &[(Put, "y"), (Put, "x")],
            want_after: &[("x", Some("3")), ("y", Some("2"))],
        },
    ]);
}

#[test]
fn metadata_after_read_modify_writes() {
    // create_revision, mod_revision and version follow etcd's rules through every op.
    let mut s = Store::new();
    let ops = [
        incr_by("c", 1),                        // rev 1: c created, v1
        append("c", "0"),                       // rev 2: "10", v2
        mset(&[("c", "5"), ("d", "x")], false), // rev 3: c v3, d created
        rename("c", "e", false),                // rev 4: c deleted, e created (v1)
        cas("e", 4, "y"),                       // rev 5: e v2
        Op::GetDel { key: b("d") },             // rev 6: d deleted
        set("c", "z", SetWhen::Absent, false),  // rev 7: c recreated
    ];
    for op in ops {
        s.apply(&Request {
            client: None,
            op,
            at_ms: 0,
        });
    }
    let meta = |key: &str| {
        s.get(key.as_bytes())
            .map(|kv| (kv.create_revision, kv.mod_revision, kv.version))
    };
    assert_eq!(s.revision(), 7);
    assert_eq!(meta("c"), Some((7, 7, 1)));
    assert_eq!(meta("d"), None);
    assert_eq!(meta("e"), Some((4, 5, 2)));
    assert_eq!(
        s.get_at(b"c", 3).unwrap().map(|kv| (kv.value, kv.version)),
        Some((b("5"), 3))
    );
    let restored = Store::from_snapshot(&s.to_snapshot()).unwrap();
    assert_eq!(restored, s);
}

#[test]
fn scan_pages_cover_every_key_once() {
    let mut s = Store::new();
    let keys: Vec<Bytes> = (0..100u32)
        .map(|i| Bytes::from(format!("key:{i}")))
        .collect();
    let pairs = keys.iter().map(|k| (k.clone(), b("v"))).collect();
    s.apply(&Request {
        client: None,
        op: Op::MSet {
            pairs,
            if_none_exist: false,
        },
        at_ms: 0,
    });
    for count in [1, 7, 10, 100, 1000] {
        let (mut seen, mut cursor, mut pages) = (Vec::new(), 0, 0);
        loop {
            let (page, next) = s.scan(cursor, count);
            assert!(page.len() >= count.min(100 - seen.len()), "count {count}");
            seen.extend(page);
            pages += 1;
            if next == 0 {
                break;
            }
            assert!(next > cursor, "cursors grow");
            cursor = next;
        }
        assert_eq!(pages, 100usize.div_ceil(count), "count {count}");
        seen.sort();
        let mut want = keys.clone();
        want.sort();
        assert_eq!(seen, want, "count {count}");
    }
    // The snapshot rebuilds the scan order.
    let restored = Store::from_snapshot(&s.to_snapshot()).unwrap();
    assert_eq!(restored.scan(0, 1000), s.scan(0, 1000));
    assert_eq!(Store::new().scan(0, 10), (Vec::new(), 0));
}
