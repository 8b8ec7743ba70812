//! RENAME, RENAMENX, FLUSHALL and CAS through the string read-modify-write table.

use super::*;

#[test]
fn rename_and_renamenx() {
    use EventKind::{Delete, Put};
    let applied = |applied: bool, changed: bool| Response::Applied {
        applied,
        revision: GIVEN_REVISION + u64::from(changed),
    };
    must_run(vec![
        Case {
            name: "to a new key: delete src, put dst",
            op: rename("s", "t", false),
            want_response: applied(true, true),
            want_changes: &[(Delete, "s"), (Put, "t")],
            want_after: &[("s", None), ("t", Some("hello"))],
        },
        Case {
            name: "over an existing key",
            op: rename("s", "a", false),
            want_response: applied(true, true),
            want_changes: &[(Delete, "s"), (Put, "a")],
            want_after: &[("s", None), ("a", Some("hello"))],
        },
        Case {
            name: "nx over an existing key: refused",
            op: rename("s", "a", true),
            want_response: applied(false, false),
            want_changes: &[],
            want_after: &[("s", Some("hello")), ("a", Some("10"))],
        },
        Case {
            name: "nx to a new key",
            op: rename("s", "t", true),
            want_response: applied(true, true),
            want_changes: &[(Delete, "s"), (Put, "t")],
            want_after: &[("s", None), ("t", Some("hello"))],
        },
        Case {
            name: "onto itself: OK, nothing changes",
            op: rename("s", "s", false),
            want_response: applied(true, false),
            want_changes: &[],
            want_after: &[("s", Some("hello"))],
        },
        Case {
            name: "nx onto itself: 0",
            op: rename("s", "s", true),
            want_response: applied(false, false),
            want_changes: &[],
            want_after: &[("s", Some("hello"))],
        },
        Case {
            name: "missing source",
            op: rename("n", "t", false),
            want_response: Response::Error(StoreError::NoSuchKey),
            want_changes: &[],
            want_after: &[("t", None)],
        },
        Case {
            name: "missing source onto itself",
            op: rename("n", "n", true),
            want_response: Response::Error(StoreError::NoSuchKey),
            want_changes: &[],
            want_after: &[],
        },
    ]);
}

#[test]
fn flush_and_cas() {
    use EventKind::{Delete, Put};
    let applied = |applied: bool| Response::Applied {
        applied,
        revision: GIVEN_REVISION + u64::from(applied),
    };
    must_run(vec![
        Case {
            name: "flush: every key in one revision, byte order",
            op: Op::Flush,
            want_response: Response::Deleted {
                deleted: 2,
                revision: GIVEN_REVISION + 1,
            },
            want_changes: &[(Delete, "a"), (Delete, "s")],
            want_after: &[("a", None), ("s", None)],
        },
        Case {
            name: "cas on the current mod_revision",
            op: cas("a", 3, "x"),
            want_response: applied(true),
            want_changes: &[(Put, "a")],
            want_after: &[("a", Some("x"))],
        },
        Case {
            name: "cas on a stale mod_revision (the create revision)",
            op: cas("a", 1, "x"),
            want_response: applied(false),
            want_changes: &[],
            want_after: &[("a", Some("10"))],
        },
        Case {
            name: "cas 0 on an existing key",
            op: cas("s", 0, "x"),
            want_response: applied(false),
            want_changes: &[],
            want_after: &[("s", Some("hello"))],
        },
        Case {
            name: "cas 0 on a missing key creates it",
            op: cas("n", 0, "x"),
            want_response: applied(true),
            want_changes: &[(Put, "n")],
            want_after: &[("n", Some("x"))],
        },
        Case {
            name: "cas on a missing key with a revision",
            op: cas("n", 2, "x"),
            want_response: applied(false),
            want_changes: &[],
            want_after: &[("n", None)],
        },
    ]);
    // Flushing an empty store changes nothing.
    let mut s = Store::new();
    let (response, events) = s.apply(&Request {
        client: None,
        op: Op::Flush,
        at_ms: 0,
    });
    assert_eq!(
        (response, events.len(), s.revision()),
        (
            Response::Deleted {
                deleted: 0,
                revision: 0
            },
            0,
            0
        )
    );
}
