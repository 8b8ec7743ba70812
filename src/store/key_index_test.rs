//! `KeyIndex`: reading, appending, compacting and validating one key's versions.

use super::*;

fn rev(main: u64) -> Revision {
    Revision::new(main, 0)
}

/// Builds a key index from `(main, Some(value))` puts and `(main, None)` deletes.
fn must_build(ops: &[(u64, Option<&str>)]) -> KeyIndex {
    let key = Bytes::from_static(b"k");
    let mut ki = KeyIndex::default();
    for &(main, value) in ops {
        match value {
            Some(v) => {
                ki.put(
                    &key,
                    &Stored::String(Bytes::copy_from_slice(v.as_bytes())),
                    rev(main),
                    Touched::default(),
                );
            }
            None => {
                ki.tombstone(&key, rev(main), false)
                    .expect("delete of a live key");
            }
        }
    }
    ki
}

//   put@2 "a"   put@3 "b"   del@5   put@7 "c"
//   [c2 v1] --- [c2 v2] --- [tomb] | [c7 v1]
const OPS: &[(u64, Option<&str>)] = &[(2, Some("a")), (3, Some("b")), (5, None), (7, Some("c"))];

#[test]
fn at_reads_generations() {
    struct Case {
        main: u64,
        want: Option<(&'static str, u64, u64, u64)>, // value, create, mod, version
    }
    let cases = [
        Case {
            main: 0,
            want: None,
        },
        Case {
            main: 1,
            want: None,
        },
        Case {
            main: 2,
            want: Some(("a", 2, 2, 1)),
        },
        Case {
            main: 3,
            want: Some(("b", 2, 3, 2)),
        },
        Case {
            main: 4,
            want: Some(("b", 2, 3, 2)),
        },
        Case {
            main: 5,
            want: None,
        },
        Case {
            main: 6,
            want: None,
        },
        Case {
            main: 7,
            want: Some(("c", 7, 7, 1)),
        },
        Case {
            main: 100,
            want: Some(("c", 7, 7, 1)),
        },
    ];
    let ki = must_build(OPS);
    let key = Bytes::from_static(b"k");
    for c in cases {
        let got = ki.at(&key, c.main).map(|kv| {
            let value = std::str::from_utf8(&kv.value).unwrap().to_owned();
            (value, kv.create_revision, kv.mod_revision, kv.version)
        });
        let want = c.want.map(|(v, cr, mr, n)| (v.to_owned(), cr, mr, n));
        assert_eq!(got, want, "at({})", c.main);
    }
    ki.validate(7, 0).unwrap();
}

#[test]
fn compact_keeps_value_at_compact_revision() {
    struct Case {
        at: u64,
        want_mains: &'static [u64],
        want_left: bool,
    }
    let cases = [
        // Nothing below 1 or 2.
        Case {
            at: 1,
            want_mains: &[2, 3, 5, 7],
            want_left: true,
        },
        Case {
            at: 2,
            want_mains: &[2, 3, 5, 7],
            want_left: true,
        },
        // put@2 is superseded by put@3 at 3.
        Case {
            at: 3,
            want_mains: &[3, 5, 7],
            want_left: true,
        },
        // put@3 is the value at 4.
        Case {
            at: 4,
            want_mains: &[3, 5, 7],
            want_left: true,
        },
        // The tombstone at exactly 5 stays, for history from 5.
        Case {
            at: 5,
            want_mains: &[5, 7],
            want_left: true,
        },
        // A tombstone below the compact revision goes with its generation.
        Case {
            at: 6,
            want_mains: &[7],
            want_left: true,
        },
        Case {
            at: 7,
            want_mains: &[7],
            want_left: true,
        },
        Case {
            at: 9,
            want_mains: &[7],
            want_left: true,
        },
    ];
    for c in cases {
        let mut ki = must_build(OPS);
        assert_eq!(ki.compact(c.at), c.want_left, "compact({})", c.at);
        let mains: Vec<u64> = ki.versions.iter().map(|v| v.revision.main).collect();
        assert_eq!(mains, c.want_mains, "compact({})", c.at);
        ki.validate(9, c.at).unwrap();
    }
}

#[test]
fn compact_drops_a_deleted_key_entirely() {
    let mut ki = must_build(&[(1, Some("a")), (2, None)]);
    assert!(ki.compact(2), "the tombstone at the compact revision stays");
    assert!(!ki.compact(3), "and goes at the next compaction");
}

#[test]
fn history_prev_after_compaction() {
    let key = Bytes::from_static(b"k");
    let mut ki = must_build(OPS);
    ki.compact(4);
    let events = ki.history(&key, 0, 100, usize::MAX);
    let got: Vec<(u64, EventKind, Option<u64>)> = events
        .iter()
        .map(|e| {
            (
                e.revision.main,
                e.kind,
                e.prev.as_ref().map(|p| p.mod_revision),
            )
        })
        .collect();
    // put@3's predecessor is compacted; the delete replaced put@3; put@7 follows a tombstone.
    assert_eq!(
        got,
        vec![
            (3, EventKind::Put, None),
            (5, EventKind::Delete, Some(3)),
            (7, EventKind::Put, None)
        ]
    );
    assert_eq!(ki.history(&key, 5, 6, usize::MAX).len(), 1);
    assert_eq!(ki.history(&key, 6, 5, usize::MAX).len(), 0);
    assert_eq!(ki.history(&key, 0, 100, 2).len(), 2);
    assert_eq!(ki.history(&key, 0, 100, 0).len(), 0);
}

#[test]
fn validate_rejects_broken_generations() {
    let put = |main, create_revision, version| Version {
        revision: rev(main),
        change: Change::Put {
            value: Bytes::new(),
            create_revision,
            version,
        },
    };
    let tomb = |main| Version {
        revision: rev(main),
        change: Change::Tombstone,
    };
    struct Case {
        name: &'static str,
        versions: Vec<Version>,
        compact: u64,
        want_ok: bool,
    }
    let cases = [
        Case {
            name: "empty",
            versions: vec![],
            compact: 0,
            want_ok: false,
        },
        Case {
            name: "create",
            versions: vec![put(1, 1, 1)],
            compact: 0,
            want_ok: true,
        },
        Case {
            name: "zero rev",
            versions: vec![put(0, 0, 1)],
            compact: 0,
            want_ok: false,
        },
        Case {
            name: "future",
            versions: vec![put(11, 11, 1)],
            compact: 0,
            want_ok: false,
        },
        Case {
            name: "out of order",
            versions: vec![put(3, 3, 1), put(2, 3, 2)],
            compact: 0,
            want_ok: false,
        },
        Case {
            name: "version skips",
            versions: vec![put(1, 1, 1), put(2, 1, 3)],
            compact: 0,
            want_ok: false,
        },
        Case {
            name: "double tombstone",
            versions: vec![put(1, 1, 1), tomb(2), tomb(3)],
            compact: 0,
            want_ok: false,
        },
        Case {
            name: "regeneration",
            versions: vec![put(1, 1, 1), tomb(2), put(3, 3, 1)],
            compact: 0,
            want_ok: true,
        },
        Case {
            name: "compacted first put",
            versions: vec![put(4, 2, 3)],
            compact: 6,
            want_ok: true,
        },
        Case {
            name: "two below compact",
            versions: vec![put(4, 2, 3), put(5, 2, 4)],
            compact: 6,
            want_ok: false,
        },
        Case {
            name: "tomb at compact",
            versions: vec![tomb(6)],
            compact: 6,
            want_ok: true,
        },
        Case {
            name: "tomb after compact",
            versions: vec![tomb(7)],
            compact: 6,
            want_ok: false,
        },
    ];
    for c in cases {
        let ki = KeyIndex {
            versions: c.versions.into_iter().collect(),
        };
        assert_eq!(ki.validate(10, c.compact).is_ok(), c.want_ok, "{}", c.name);
    }
}
