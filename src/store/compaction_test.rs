//! Compaction and the history window (HistoryWindow): what stays readable, what is refused.

use super::test_util::*;
use super::*;

/// (key, revision, the value read, or `Err(())` for `Compacted`).
type WantRead = (&'static str, u64, Result<Option<&'static str>, ()>);

//   rev:  1       2       3       4
//   a:  put(1) put(2)    .     del
//   b:    .       .    put(3)    .
#[test]
fn compaction_edges() {
    struct Case {
        name: &'static str,
        compacts: &'static [u64],
        want_response: Response,
        want_compact_revision: u64,
        want_reads: &'static [WantRead],
        want_history_a: &'static [u64],
    }
    let compacted = |requested, compact_revision| {
        Response::Error(StoreError::Compacted {
            requested,
            compact_revision,
        })
    };
    let cases = [
        Case {
            name: "zero on a fresh store",
            compacts: &[0],
            want_response: compacted(0, 0),
            want_compact_revision: 0,
            want_reads: &[("a", 1, Ok(Some("1")))],
            want_history_a: &[1, 2, 4],
        },
        Case {
            name: "future",
            compacts: &[5],
            want_response: Response::Error(StoreError::FutureRevision {
                requested: 5,
                current: 4,
            }),
            want_compact_revision: 0,
            want_reads: &[("a", 1, Ok(Some("1")))],
            want_history_a: &[1, 2, 4],
        },
        Case {
            name: "keeps the value at the compact revision",
            compacts: &[3],
            want_response: Response::Compacted {
                compact_revision: 3,
            },
            want_compact_revision: 3,
            want_reads: &[
                ("a", 2, Err(())),
                ("a", 3, Ok(Some("2"))),
                ("b", 3, Ok(Some("3"))),
                ("a", 4, Ok(None)),
            ],
            want_history_a: &[2, 4],
        },
        Case {
            name: "tombstone at the compact revision stays in history",
            compacts: &[4],
            want_response: Response::Compacted {
                compact_revision: 4,
            },
            want_compact_revision: 4,
            want_reads: &[
                ("a", 3, Err(())),
                ("a", 4, Ok(None)),
                ("b", 4, Ok(Some("3"))),
            ],
            want_history_a: &[4],
        },
        Case {
            name: "again at the same revision",
            compacts: &[3, 3],
            want_response: compacted(3, 3),
            want_compact_revision: 3,
            want_reads: &[("a", 3, Ok(Some("2")))],
            want_history_a: &[2, 4],
        },
        Case {
            name: "below the compact revision",
            compacts: &[3, 2],
            want_response: compacted(2, 3),
            want_compact_revision: 3,
            want_reads: &[("a", 2, Err(()))],
            want_history_a: &[2, 4],
        },
    ];
    for c in cases {
        let mut s = Store::new();
        for op in [put("a", "1"), put("a", "2"), put("b", "3"), del(&["a"])] {
            must_apply(&mut s, op);
        }
        let mut response = None;
        for &revision in c.compacts {
            response = Some(must_apply(&mut s, Op::Compact { revision }));
        }
        assert_eq!(response, Some(c.want_response), "{}", c.name);
        assert_eq!(s.compact_revision(), c.want_compact_revision, "{}", c.name);
        assert_eq!(s.revision(), 4, "{}: compaction bumps nothing", c.name);
        for &(key, revision, want) in c.want_reads {
            let got = s.get_at(key.as_bytes(), revision);
            let got = match got {
                Ok(kv) => Ok(kv.map(|kv| String::from_utf8(kv.value.to_vec()).unwrap())),
                Err(StoreError::Compacted {
                    requested,
                    compact_revision,
                }) => {
                    assert_eq!(
                        (requested, compact_revision),
                        (revision, s.compact_revision())
                    );
                    Err(())
                }
                Err(e) => panic!("{}: {key}@{revision}: {e}", c.name),
            };
            assert_eq!(
                got,
                want.map(|v| v.map(str::to_owned)),
                "{}: {key}@{revision}",
                c.name
            );
        }
        let history: Vec<u64> = s
            .history(b"a", 0, 0, usize::MAX)
            .unwrap()
            .iter()
            .map(|e| e.revision.main)
            .collect();
        assert_eq!(history, c.want_history_a, "{}", c.name);
        let from = s.compact_revision();
        if from > 1 {
            assert_eq!(
                s.history(b"a", from - 1, 0, 10),
                Err(StoreError::Compacted {
                    requested: from - 1,
                    compact_revision: from
                }),
                "{}",
                c.name
            );
        }
    }
}

#[test]
fn history_bounds() {
    let mut s = Store::new();
    for v in ["1", "2", "3"] {
        must_apply(&mut s, put("a", v));
    }
    let mains = |r: Result<Vec<Event>, StoreError>| {
        r.map(|events| events.iter().map(|e| e.revision.main).collect::<Vec<_>>())
    };
    assert_eq!(mains(s.history(b"a", 2, 0, 10)), Ok(vec![2, 3]));
    assert_eq!(mains(s.history(b"a", 1, 2, 10)), Ok(vec![1, 2]));
    assert_eq!(mains(s.history(b"a", 1, 0, 2)), Ok(vec![1, 2]));
    assert_eq!(mains(s.history(b"a", 3, 1, 10)), Ok(vec![]));
    assert_eq!(mains(s.history(b"a", 9, 0, 10)), Ok(vec![]));
    assert_eq!(mains(s.history(b"zz", 0, 0, 10)), Ok(vec![]));
    assert_eq!(
        mains(s.history(b"a", 0, 4, 10)),
        Err(StoreError::FutureRevision {
            requested: 4,
            current: 3
        })
    );
}
