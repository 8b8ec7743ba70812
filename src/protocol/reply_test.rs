//! Tests for `reply.rs`: the encoder checked byte-exactly and against the `redis-protocol`
//! reference decoders (ReplyFraming).

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use redis_protocol::resp2::types::OwnedFrame as Owned2;
use redis_protocol::resp3::types::OwnedFrame as Owned3;

use super::*;

// ---------------------------------------------------------------------------------------------
// Encoder: exact bytes.

fn enc(frame: &Frame, proto: Protocol) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode(frame, proto, &mut out);
    out.to_vec()
}

fn bulk(s: &str) -> Frame {
    Frame::bulk(Bytes::copy_from_slice(s.as_bytes()))
}

#[test]
fn encodes_exact_bytes() {
    use Protocol::{Resp2, Resp3};
    let map = Frame::Map(vec![
        (bulk("a"), Frame::Integer(1)),
        (bulk("b"), Frame::Null),
    ]);
    let cases: Vec<(Frame, Protocol, &[u8])> = vec![
        (Frame::ok(), Resp2, b"+OK\r\n"),
        (
            Frame::error("ERR bad\r\nthing"),
            Resp2,
            b"-ERR bad  thing\r\n",
        ),
        (Frame::Simple("a\nb".into()), Resp3, b"+a b\r\n"),
        (Frame::Integer(0), Resp2, b":0\r\n"),
        (Frame::Integer(-42), Resp2, b":-42\r\n"),
        (
            Frame::Integer(i64::MIN),
            Resp3,
            b":-9223372036854775808\r\n",
        ),
        (Frame::Integer(i64::MAX), Resp3, b":9223372036854775807\r\n"),
        (bulk("hello"), Resp2, b"$5\r\nhello\r\n"),
        (bulk(""), Resp3, b"$0\r\n\r\n"),
        (Frame::Null, Resp2, b"$-1\r\n"),
        (Frame::NullArray, Resp2, b"*-1\r\n"),
        (Frame::Null, Resp3, b"_\r\n"),
        (Frame::NullArray, Resp3, b"_\r\n"),
        (Frame::Array(vec![]), Resp2, b"*0\r\n"),
        (
            Frame::Array(vec![bulk("x"), Frame::Integer(2)]),
            Resp3,
            b"*2\r\n$1\r\nx\r\n:2\r\n",
        ),
        (
            map.clone(),
            Resp2,
            b"*4\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n$-1\r\n",
        ),
        (map, Resp3, b"%2\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n_\r\n"),
        (Frame::Set(vec![bulk("x")]), Resp2, b"*1\r\n$1\r\nx\r\n"),
        (Frame::Set(vec![bulk("x")]), Resp3, b"~1\r\n$1\r\nx\r\n"),
        (Frame::Double(1.5), Resp2, b"$3\r\n1.5\r\n"),
        (Frame::Double(1.5), Resp3, b",1.5\r\n"),
        (Frame::Double(f64::INFINITY), Resp2, b"$3\r\ninf\r\n"),
        (Frame::Double(f64::NEG_INFINITY), Resp3, b",-inf\r\n"),
        (Frame::Double(f64::NAN), Resp3, b",nan\r\n"),
        (Frame::Double(10.0), Resp3, b",10\r\n"),
        (Frame::Boolean(true), Resp2, b":1\r\n"),
        (Frame::Boolean(false), Resp2, b":0\r\n"),
        (Frame::Boolean(true), Resp3, b"#t\r\n"),
        (Frame::Boolean(false), Resp3, b"#f\r\n"),
        (
            Frame::Verbatim {
                format: *b"txt",
                text: Bytes::from_static(b"hi"),
            },
            Resp3,
            b"=6\r\ntxt:hi\r\n",
        ),
        (
            Frame::Verbatim {
                format: *b"txt",
                text: Bytes::from_static(b"hi"),
            },
            Resp2,
            b"$2\r\nhi\r\n",
        ),
        (Frame::Push(vec![bulk("m")]), Resp3, b">1\r\n$1\r\nm\r\n"),
        (Frame::Push(vec![bulk("m")]), Resp2, b"*1\r\n$1\r\nm\r\n"),
        (
            Frame::BigNumber("12345678901234567890".into()),
            Resp3,
            b"(12345678901234567890\r\n",
        ),
        (Frame::BigNumber("123".into()), Resp2, b"$3\r\n123\r\n"),
    ];
    for (frame, proto, want) in cases {
        assert_eq!(
            enc(&frame, proto),
            want,
            "{frame:?} {proto:?}: got {:?}",
            String::from_utf8_lossy(&enc(&frame, proto))
        );
    }
}

#[test]
fn doubles_are_formatted_like_redis_d2string() {
    let cases: &[(f64, &str)] = &[
        (0.0, "0"),
        (-0.0, "-0"),
        (1.0, "1"),
        (-2.5, "-2.5"),
        (0.1, "0.1"),
        (1.5, "1.5"),
        (123.456, "123.456"),
        (0.001, "0.001"),
        (1e-5, "0.00001"),
        (1e-7, "1e-7"),
        (1.5e-7, "1.5e-7"),
        (3.0e-300, "3e-300"),
        (1e7, "10000000"),
        (1e20, "1e+20"),
        (1e21, "1e+21"),
        (1.5e300, "1.5e+300"),
        (1_000_000_000_000_000.5, "1000000000000000.5"),
        (4_611_686_018_427_387_904.0, "4611686018427387904"),
        (-4_611_686_018_427_387_904.0, "-4611686018427387904"),
        (9_223_372_036_854_775_808.0, "9223372036854776000"),
        (1.2345678901234568e20, "123456789012345680000"),
        (f64::MAX, "1.7976931348623157e+308"),
        (f64::MIN_POSITIVE, "2.2250738585072014e-308"),
        (5e-324, "5e-324"),
        (f64::INFINITY, "inf"),
        (f64::NEG_INFINITY, "-inf"),
        (f64::NAN, "nan"),
    ];
    for &(value, want) in cases {
        let mut text = StackStr::new();
        format_double(value, &mut text);
        assert_eq!(
            std::str::from_utf8(text.as_bytes()).unwrap(),
            want,
            "{value:e}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Encoder: agreement with the reference decoders.

fn double_value() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(f64::NAN),
        Just(-0.0),
        (-1_000_000i64..1_000_000).prop_map(|n| n as f64 / 8.0),
    ]
}

/// Non-aggregate frames, which RESP3 allows as map keys and set members. Doubles are left out
/// of keys: the reference decoder hashes them by bits but compares them by value.
fn key_frame() -> impl Strategy<Value = Frame> {
    prop_oneof![
        "[ -~\r\n]{0,12}".prop_map(Frame::Simple),
        "[ -~\r\n]{0,12}".prop_map(Frame::Error),
        any::<i64>().prop_map(Frame::Integer),
        proptest::collection::vec(any::<u8>(), 0..24).prop_map(|b| Frame::Bulk(b.into())),
        Just(Frame::Null),
        Just(Frame::NullArray),
        any::<bool>().prop_map(Frame::Boolean),
        (
            prop_oneof![Just(*b"txt"), Just(*b"mkd")],
            proptest::collection::vec(any::<u8>(), 0..24)
        )
            .prop_map(|(format, text)| Frame::Verbatim {
                format,
                text: text.into()
            }),
        "-?[1-9][0-9]{0,40}".prop_map(Frame::BigNumber),
    ]
}

fn scalar_frame() -> impl Strategy<Value = Frame> {
    prop_oneof![4 => key_frame(), 1 => double_value().prop_map(Frame::Double)]
}

/// Drops members whose RESP3 encoding repeats an earlier one, since the reference decoder keeps
/// map keys and set members in hash containers.
fn distinct(items: Vec<Frame>) -> Vec<Frame> {
    let mut seen = std::collections::HashSet::new();
    items
        .into_iter()
        .filter(|f| seen.insert(enc(f, Protocol::Resp3)))
        .collect()
}

fn any_frame() -> impl Strategy<Value = Frame> {
    scalar_frame().prop_recursive(3, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Frame::Array),
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Frame::Push),
            proptest::collection::vec(key_frame(), 0..6).prop_map(|s| Frame::Set(distinct(s))),
            (
                proptest::collection::vec(key_frame(), 0..6),
                proptest::collection::vec(inner, 6)
            )
                .prop_map(|(keys, values)| {
                    Frame::Map(distinct(keys).into_iter().zip(values).collect())
                }),
        ]
    })
}

fn sanitized(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

fn same_double(text: &[u8], want: f64) -> bool {
    let got: f64 = match std::str::from_utf8(text).ok().and_then(|s| s.parse().ok()) {
        Some(v) => v,
        None => return false,
    };
    (got.is_nan() && want.is_nan())
        || (got == want && got.is_sign_negative() == want.is_sign_negative())
}

/// Checks a RESP2 reference decoding against the downgrade rules.
fn check_resp2(ours: &Frame, theirs: &Owned2) -> bool {
    match (ours, theirs) {
        (Frame::Simple(s), Owned2::SimpleString(t)) => sanitized(s).as_bytes() == &t[..],
        (Frame::Error(s), Owned2::Error(t)) => &sanitized(s) == t,
        (Frame::Integer(n), Owned2::Integer(m)) => n == m,
        (Frame::Bulk(b), Owned2::BulkString(t)) => b[..] == t[..],
        (Frame::Null | Frame::NullArray, Owned2::Null) => true,
        (Frame::Array(items) | Frame::Set(items) | Frame::Push(items), Owned2::Array(t)) => {
            items.len() == t.len() && items.iter().zip(t).all(|(a, b)| check_resp2(a, b))
        }
        (Frame::Map(pairs), Owned2::Array(t)) => {
            pairs.len() * 2 == t.len()
                && pairs
                    .iter()
                    .zip(t.chunks(2))
                    .all(|((k, v), kv)| check_resp2(k, &kv[0]) && check_resp2(v, &kv[1]))
        }
        (Frame::Double(d), Owned2::BulkString(t)) => same_double(t, *d),
        (Frame::Boolean(b), Owned2::Integer(n)) => *n == i64::from(*b),
        (Frame::Verbatim { text, .. }, Owned2::BulkString(t)) => text[..] == t[..],
        (Frame::BigNumber(s), Owned2::BulkString(t)) => s.as_bytes() == &t[..],
        _ => false,
    }
}

/// Checks a RESP3 reference decoding against our native RESP3 value.
fn check_resp3(ours: &Frame, theirs: &Owned3) -> bool {
    match (ours, theirs) {
        (Frame::Simple(s), Owned3::SimpleString { data, .. }) => {
            sanitized(s).as_bytes() == &data[..]
        }
        (Frame::Error(s), Owned3::SimpleError { data, .. }) => &sanitized(s) == data,
        (Frame::Integer(n), Owned3::Number { data, .. }) => n == data,
        (Frame::Bulk(b), Owned3::BlobString { data, .. }) => b[..] == data[..],
        (Frame::Null | Frame::NullArray, Owned3::Null) => true,
        (Frame::Array(items), Owned3::Array { data, .. })
        | (Frame::Push(items), Owned3::Push { data, .. }) => {
            items.len() == data.len() && items.iter().zip(data).all(|(a, b)| check_resp3(a, b))
        }
        (Frame::Set(items), Owned3::Set { data, .. }) => {
            items.len() == data.len()
                && items.iter().all(|a| data.iter().any(|b| check_resp3(a, b)))
        }
        (Frame::Map(pairs), Owned3::Map { data, .. }) => {
            pairs.len() == data.len()
                && pairs.iter().all(|(k, v)| {
                    data.iter()
                        .any(|(tk, tv)| check_resp3(k, tk) && check_resp3(v, tv))
                })
        }
        (Frame::Double(d), Owned3::Double { data, .. }) => {
            (d.is_nan() && data.is_nan())
                || (d == data && d.is_sign_negative() == data.is_sign_negative())
        }
        (Frame::Boolean(b), Owned3::Boolean { data, .. }) => b == data,
        (
            Frame::Verbatim { format, text },
            Owned3::VerbatimString {
                data, format: f, ..
            },
        ) => {
            let want = match format {
                b"txt" => redis_protocol::resp3::types::VerbatimStringFormat::Text,
                _ => redis_protocol::resp3::types::VerbatimStringFormat::Markdown,
            };
            text[..] == data[..] && *f == want
        }
        (Frame::BigNumber(s), Owned3::BigNumber { data, .. }) => s.as_bytes() == &data[..],
        _ => false,
    }
}

proptest! {
    #[test]
    fn encodings_agree_with_reference_decoders(frame in any_frame()) {
        let wire2 = enc(&frame, Protocol::Resp2);
        let (decoded2, used2) = redis_protocol::resp2::decode::decode(&wire2)
            .expect("valid RESP2")
            .expect("complete RESP2");
        prop_assert_eq!(used2, wire2.len());
        prop_assert!(check_resp2(&frame, &decoded2), "RESP2 {:?} -> {:?}", frame, decoded2);

        let wire3 = enc(&frame, Protocol::Resp3);
        let (decoded3, used3) = redis_protocol::resp3::decode::complete::decode(&wire3)
            .expect("valid RESP3")
            .expect("complete RESP3");
        prop_assert_eq!(used3, wire3.len());
        prop_assert!(check_resp3(&frame, &decoded3), "RESP3 {:?} -> {:?}", frame, decoded3);
    }

    #[test]
    fn doubles_round_trip(value in any::<f64>()) {
        let mut text = StackStr::new();
        format_double(value, &mut text);
        prop_assert!(same_double(text.as_bytes(), value), "{} -> {:?}", value, text.as_bytes());
    }
}
