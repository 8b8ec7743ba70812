//! INCR, INCRBY, DECRBY and INCRBYFLOAT: integer and float arithmetic, overflow and refusals.

use super::*;

#[test]
fn incr_by_integers() {
    use EventKind::Put;
    let integer = |value| Response::Integer {
        value,
        revision: GIVEN_REVISION + 1,
    };
    let error = Response::Error;
    let cases = vec![
        Case {
            name: "existing",
            op: incr_by("a", 5),
            want_response: integer(15),
            want_changes: &[(Put, "a")],
            want_after: &[("a", Some("15"))],
        },
        Case {
            name: "missing is 0",
            op: incr_by("n", -7),
            want_response: integer(-7),
            want_changes: &[(Put, "n")],
            want_after: &[("n", Some("-7"))],
        },
        Case {
            name: "zero still writes",
            op: incr_by("a", 0),
            want_response: integer(10),
            want_changes: &[(Put, "a")],
            want_after: &[("a", Some("10"))],
        },
        Case {
            name: "not a number",
            op: incr_by("s", 1),
            want_response: error(StoreError::NotInteger),
            want_changes: &[],
            want_after: &[("s", Some("hello"))],
        },
        Case {
            name: "overflow",
            op: incr_by("a", i64::MAX),
            want_response: error(StoreError::Overflow),
            want_changes: &[],
            want_after: &[("a", Some("10"))],
        },
    ];
    // string2ll is strict: only the canonical form of an i64 is an integer.
    for (i, bad) in [
        "01",
        "+1",
        "-0",
        " 1",
        "1 ",
        "1.0",
        "",
        "9223372036854775808",
    ]
    .into_iter()
    .enumerate()
    {
        let mut s = must_given();
        s.apply(&Request {
            client: None,
            op: Op::Put {
                key: b("x"),
                value: b(bad),
            },
            at_ms: 0,
        });
        let (response, events) = s.apply(&Request {
            client: None,
            op: incr_by("x", 1),
            at_ms: 0,
        });
        assert_eq!(response, error(StoreError::NotInteger), "case {i}: {bad:?}");
        assert!(events.is_empty());
    }
    for (value, delta, want) in [
        ("-9223372036854775808", -1, Err(StoreError::Overflow)),
        ("-9223372036854775808", 1, Ok(i64::MIN + 1)),
        ("9223372036854775806", 1, Ok(i64::MAX)),
        ("0", i64::MIN, Ok(i64::MIN)),
    ] {
        let mut s = Store::new();
        let put = Op::Put {
            key: b("x"),
            value: b(value),
        };
        s.apply(&Request {
            client: None,
            op: put,
            at_ms: 0,
        });
        let (response, _) = s.apply(&Request {
            client: None,
            op: incr_by("x", delta),
            at_ms: 0,
        });
        let want = match want {
            Ok(value) => Response::Integer { value, revision: 2 },
            Err(e) => Response::Error(e),
        };
        assert_eq!(response, want, "{value} + {delta}");
    }
    must_run(cases);
}

#[test]
fn incr_by_float_numbers() {
    use EventKind::Put;
    let value = |v: &str| Response::Value {
        value: Some(b(v)),
        revision: GIVEN_REVISION + 1,
    };
    must_run(vec![
        Case {
            name: "existing integer",
            op: incr_by_float("a", "0.5"),
            want_response: value("10.5"),
            want_changes: &[(Put, "a")],
            want_after: &[("a", Some("10.5"))],
        },
        Case {
            name: "missing, exponent form",
            op: incr_by_float("n", "5.0e3"),
            want_response: value("5000"),
            want_changes: &[(Put, "n")],
            want_after: &[("n", Some("5000"))],
        },
        Case {
            name: "extended precision shows",
            op: incr_by_float("a", "4990.1"),
            want_response: value("5000.10000000000000009"),
            want_changes: &[(Put, "a")],
            want_after: &[("a", Some("5000.10000000000000009"))],
        },
        Case {
            name: "value not a float",
            op: incr_by_float("s", "1"),
            want_response: Response::Error(StoreError::NotFloat),
            want_changes: &[],
            want_after: &[("s", Some("hello"))],
        },
        Case {
            name: "increment not a float",
            op: incr_by_float("a", "nan"),
            want_response: Response::Error(StoreError::NotFloat),
            want_changes: &[],
            want_after: &[("a", Some("10"))],
        },
        Case {
            name: "infinity",
            op: incr_by_float("a", "-inf"),
            want_response: Response::Error(StoreError::NanOrInfinity),
            want_changes: &[],
            want_after: &[("a", Some("10"))],
        },
    ]);
}
