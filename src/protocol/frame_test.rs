//! Tests for `frame.rs`: raw-byte framing cases with Redis's error texts, limits checked before
//! payloads (LimitsBeforeAlloc), byte-by-byte feeding, property tests (round trip, random splits,
//! byte soup; NoPanicOnInput), and the encoder checked byte-exactly and against the
//! `redis-protocol` reference decoders (ReplyFraming).

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use redis_protocol::resp2::types::OwnedFrame as Owned2;
use redis_protocol::resp3::types::OwnedFrame as Owned3;

use super::*;

fn argv(args: &[&[u8]]) -> Vec<Bytes> {
    args.iter().map(|a| Bytes::copy_from_slice(a)).collect()
}

fn multibulk(args: &[Vec<u8>]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn parse_bytes(input: &[u8], limits: &Limits) -> Result<Option<Vec<Bytes>>, FrameError> {
    parse_command(&mut BytesMut::from(input), limits)
}

fn must_parse_all(input: &[u8]) -> Vec<Vec<Bytes>> {
    let mut buf = BytesMut::from(input);
    let mut framer = Framer::new();
    let mut out = Vec::new();
    while let Some(cmd) = framer
        .parse(&mut buf, &Limits::default())
        .expect("valid input")
    {
        out.push(cmd);
    }
    assert!(buf.is_empty(), "left over: {buf:?}");
    out
}

fn protocol(text: &str) -> FrameError {
    FrameError::Protocol(text.to_string())
}

fn small_limits() -> Limits {
    Limits {
        max_bulk_len: 10,
        max_multibulk_len: 3,
        max_inline_len: 16,
        unauthenticated: false,
    }
}

// ---------------------------------------------------------------------------------------------
// Framing: error texts.

#[test]
fn error_texts_match_redis() {
    let big_count = format!("*{}", "1".repeat(64 * 1024 + 1));
    let big_bulk = format!("*1\r\n${}", "1".repeat(64 * 1024 + 1));
    let big_inline = "a".repeat(64 * 1024 + 1);
    let cases: Vec<(&[u8], &str)> = vec![
        (b"*2000000\r\n", "invalid multibulk length"),
        (b"*1048577\r\n", "invalid multibulk length"),
        (b"*abc\r\n", "invalid multibulk length"),
        (b"*\r\n", "invalid multibulk length"),
        (b"*01\r\n", "invalid multibulk length"),
        (b"*1\rX", "invalid multibulk length"),
        (b"*1\r\n$600000000\r\n", "invalid bulk length"),
        (b"*1\r\n$536870913\r\n", "invalid bulk length"),
        (b"*1\r\n$-1\r\n", "invalid bulk length"),
        (b"*1\r\n$abc\r\n", "invalid bulk length"),
        (b"*1\r\n$\r\n", "invalid bulk length"),
        (b"*1\r\n$99999999999999999999999\r\n", "invalid bulk length"),
        (b"*1\r\n$3\rX", "invalid bulk length"),
        (b"*1\r\n:5\r\n", "expected '$', got ':'"),
        (b"*2\r\n$1\r\na\r\n*1\r\n", "expected '$', got '*'"),
        (big_count.as_bytes(), "too big mbulk count string"),
        (big_bulk.as_bytes(), "too big bulk count string"),
        (big_inline.as_bytes(), "too big inline request"),
        (b"SET \"a\r\n", "unbalanced quotes in request"),
        (b"SET 'a\r\n", "unbalanced quotes in request"),
        (b"ECHO \"a\"b\r\n", "unbalanced quotes in request"),
        (b"ECHO 'a'b\r\n", "unbalanced quotes in request"),
    ];
    for (input, want) in cases {
        let got = parse_bytes(input, &Limits::default());
        assert_eq!(
            got,
            Err(protocol(want)),
            "input {:?}",
            String::from_utf8_lossy(input)
        );
    }
    assert_eq!(
        protocol("invalid bulk length").to_string(),
        "Protocol error: invalid bulk length"
    );
}

/// UnauthenticatedCaps: Redis's CVE-2021-32675 caps, in Redis's order (a count that is not a
/// number or is over INT_MAX is invalid first; the configured caps come after the
/// unauthenticated ones for counts, before them for bulk lengths).
#[test]
fn unauthenticated_caps_apply_on_the_header_line() {
    let unauth = Limits {
        unauthenticated: true,
        ..Limits::default()
    };
    let multibulk_err = Err(protocol("unauthenticated multibulk length"));
    let bulk_err = Err(protocol("unauthenticated bulk length"));
    assert_eq!(parse_bytes(b"*11\r\n", &unauth), multibulk_err);
    assert_eq!(parse_bytes(b"*2000\r\n", &unauth), multibulk_err);
    assert_eq!(parse_bytes(b"*2000000\r\n", &unauth), multibulk_err);
    assert_eq!(
        parse_bytes(b"*2147483648\r\n", &unauth),
        Err(protocol("invalid multibulk length"))
    );
    assert_eq!(parse_bytes(b"*1\r\n$16385\r\n", &unauth), bulk_err);
    assert_eq!(parse_bytes(b"*1\r\n$100000\r\n", &unauth), bulk_err);
    assert_eq!(
        parse_bytes(b"*1\r\n$600000000\r\n", &unauth),
        Err(protocol("invalid bulk length"))
    );
    // At the caps the frame is read (and waited for).
    assert_eq!(parse_bytes(b"*10\r\n", &unauth), Ok(None));
    assert_eq!(parse_bytes(b"*1\r\n$16384\r\n", &unauth), Ok(None));
    let ten: Vec<Vec<u8>> = (0..10).map(|i| vec![b'a' + i as u8; 16384]).collect();
    let got = parse_bytes(&multibulk(&ten), &unauth).unwrap().unwrap();
    assert_eq!(got.len(), 10);
    // Authenticated (the default), none of this applies.
    assert_eq!(parse_bytes(b"*2000\r\n", &Limits::default()), Ok(None));
    assert_eq!(
        parse_bytes(b"*1\r\n$100000\r\n", &Limits::default()),
        Ok(None)
    );
}

#[test]
fn header_lines_wait_up_to_the_inline_limit() {
    let limits = Limits::default();
    let count = format!("*{}", "1".repeat(64 * 1024 - 1));
    assert_eq!(parse_bytes(count.as_bytes(), &limits), Ok(None));
    let bulk = format!("*1\r\n${}", "1".repeat(64 * 1024 - 1));
    assert_eq!(parse_bytes(bulk.as_bytes(), &limits), Ok(None));
    let inline = "a".repeat(64 * 1024);
    assert_eq!(parse_bytes(inline.as_bytes(), &limits), Ok(None));
    let inline_line = format!("{}\n", "a".repeat(64 * 1024));
    let got = parse_bytes(inline_line.as_bytes(), &limits)
        .unwrap()
        .unwrap();
    assert_eq!(got[0].len(), 64 * 1024);
}

// ---------------------------------------------------------------------------------------------
// Framing: limits are enforced before the payload arrives.

#[test]
fn limits_are_checked_before_the_payload() {
    let limits = Limits::default();
    // Headers alone, no payload: the error is immediate, nothing is waited for.
    assert_eq!(
        parse_bytes(b"*2000000\r\n", &limits),
        Err(protocol("invalid multibulk length"))
    );
    assert_eq!(
        parse_bytes(b"*1\r\n$600000000\r\n", &limits),
        Err(protocol("invalid bulk length"))
    );
    // Within limits, a header alone is simply incomplete.
    assert_eq!(parse_bytes(b"*1048576\r\n", &limits), Ok(None));
    assert_eq!(parse_bytes(b"*1\r\n$536870912\r\n", &limits), Ok(None));
    // A later element's header is checked as soon as it arrives.
    assert_eq!(
        parse_bytes(b"*3\r\n$1\r\na\r\n$999999999\r\n", &limits),
        Err(protocol("invalid bulk length"))
    );
}

#[test]
fn custom_limits_apply() {
    let limits = small_limits();
    assert_eq!(
        parse_bytes(b"*4\r\n", &limits),
        Err(protocol("invalid multibulk length"))
    );
    assert_eq!(parse_bytes(b"*3\r\n", &limits), Ok(None));
    assert_eq!(
        parse_bytes(b"*1\r\n$11\r\n", &limits),
        Err(protocol("invalid bulk length"))
    );
    assert_eq!(
        parse_bytes(b"*1\r\n$10\r\n0123456789\r\n", &limits),
        Ok(Some(argv(&[b"0123456789"])))
    );
    assert_eq!(
        parse_bytes(b"0123456789abcdefg", &limits),
        Err(protocol("too big inline request"))
    );
    assert_eq!(parse_bytes(b"0123456789abcdef", &limits), Ok(None));
    assert_eq!(
        parse_bytes(b"0123456789abcdef\n", &limits),
        Ok(Some(argv(&[b"0123456789abcdef"])))
    );
    assert_eq!(
        parse_bytes(b"*11111111111111111", &limits),
        Err(protocol("too big mbulk count string"))
    );
    assert_eq!(
        parse_bytes(b"*1\r\n$11111111111111111", &limits),
        Err(protocol("too big bulk count string"))
    );
}

// ---------------------------------------------------------------------------------------------
// Framing: valid input.

#[test]
fn multibulk_arguments_are_binary_safe_and_zero_copy() {
    let input = multibulk(&[
        b"SET".to_vec(),
        b"k\r\n\0".to_vec(),
        vec![0xff; 100],
        Vec::new(),
    ]);
    let mut buf = BytesMut::from(&input[..]);
    let range = buf.as_ptr() as usize..buf.as_ptr() as usize + buf.len();
    let got = parse_command(&mut buf, &Limits::default())
        .unwrap()
        .unwrap();
    assert_eq!(got, argv(&[b"SET", b"k\r\n\0", &[0xff; 100], b""]));
    assert!(
        range.contains(&(got[2].as_ptr() as usize)),
        "argument was copied"
    );
    assert!(buf.is_empty());
}

#[test]
fn empty_multibulks_and_blank_lines_are_skipped() {
    assert_eq!(
        must_parse_all(b"*0\r\n*-1\r\n*-7\r\n\r\n\n   \t \r\nPING\r\n*0\r\n"),
        vec![argv(&[b"PING"])]
    );
    assert_eq!(parse_bytes(b"*0\r\n", &Limits::default()), Ok(None));
    assert_eq!(parse_bytes(b"\r\n\r\n", &Limits::default()), Ok(None));
}

#[test]
fn inline_commands_follow_sdssplitargs() {
    let cases: Vec<(&[u8], Vec<&[u8]>)> = vec![
        (b"PING\r\n", vec![b"PING"]),
        (b"PING\n", vec![b"PING"]),
        (b"  SET\tkey   value  \r\n", vec![b"SET", b"key", b"value"]),
        (
            b"SET key \"hello world\"\r\n",
            vec![b"SET", b"key", b"hello world"],
        ),
        (
            b"ECHO \"\\n\\r\\t\\b\\a\\\\\\\"\\q\"\r\n",
            vec![b"ECHO", b"\n\r\t\x08\x07\\\"q"],
        ),
        (
            b"ECHO \"\\x41\\x7a\\xff\\xZZ\"\r\n",
            vec![b"ECHO", b"Az\xffxZZ"],
        ),
        (
            b"ECHO 'it\\'s' 'a\\nb'\r\n",
            vec![b"ECHO", b"it's", b"a\\nb"],
        ),
        (b"ECHO \"\" ''\r\n", vec![b"ECHO", b"", b""]),
        (b"ECHO a\"b c\"\r\n", vec![b"ECHO", b"ab c"]),
        (b"ECHO \"a\"\tb\r\n", vec![b"ECHO", b"a", b"b"]),
        (b"ECHO a\0 ignored\r\n", vec![b"ECHO", b"a"]),
        (b"ECHO \xc3\xa9\r\n", vec![b"ECHO", b"\xc3\xa9"]),
        (b"ECHO a\rb\r\n", vec![b"ECHO", b"a", b"b"]),
    ];
    for (input, want) in cases {
        let got = parse_bytes(input, &Limits::default());
        assert_eq!(
            got,
            Ok(Some(argv(&want))),
            "input {:?}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn pipelined_commands_come_out_in_order() {
    let mut input = multibulk(&[b"SET".to_vec(), b"a".to_vec(), b"1".to_vec()]);
    input.extend_from_slice(b"PING\r\n");
    input.extend_from_slice(&multibulk(&[b"GET".to_vec(), b"a".to_vec()]));
    input.extend_from_slice(b"\r\nECHO \"x y\"\n");
    assert_eq!(
        must_parse_all(&input),
        vec![
            argv(&[b"SET", b"a", b"1"]),
            argv(&[b"PING"]),
            argv(&[b"GET", b"a"]),
            argv(&[b"ECHO", b"x y"]),
        ]
    );

    // A partial command after a complete one stays in the buffer.
    let mut buf = BytesMut::from(&b"PING\r\n*2\r\n$3\r\nGET"[..]);
    let mut framer = Framer::new();
    assert_eq!(
        framer.parse(&mut buf, &Limits::default()),
        Ok(Some(argv(&[b"PING"])))
    );
    assert_eq!(framer.parse(&mut buf, &Limits::default()), Ok(None));
    assert_eq!(&buf[..], b"*2\r\n$3\r\nGET");
    buf.extend_from_slice(b"\r\n$1\r\nk\r\n");
    assert_eq!(
        framer.parse(&mut buf, &Limits::default()),
        Ok(Some(argv(&[b"GET", b"k"])))
    );
}

#[test]
fn a_command_split_at_every_byte_is_incomplete_until_its_last_byte() {
    let commands: Vec<(Vec<u8>, Vec<Bytes>)> = vec![
        (
            multibulk(&[
                b"SET".to_vec(),
                b"k\r\n".to_vec(),
                b"".to_vec(),
                b"\xff\x00".to_vec(),
            ]),
            argv(&[b"SET", b"k\r\n", b"", b"\xff\x00"]),
        ),
        (
            b"SET k \"a b\\x41\" 'c'\r\n".to_vec(),
            argv(&[b"SET", b"k", b"a bA", b"c"]),
        ),
        (b"*0\r\n\r\nPING\n".to_vec(), argv(&[b"PING"])),
    ];
    for (input, want) in commands {
        // Resumable framer and stateless function must agree.
        let mut buf = BytesMut::new();
        let mut framer = Framer::new();
        for (i, &byte) in input.iter().enumerate() {
            buf.extend_from_slice(&[byte]);
            let stateless = parse_command(&mut buf.clone(), &Limits::default());
            let got = framer.parse(&mut buf, &Limits::default());
            assert_eq!(got, stateless, "byte {i}");
            if i + 1 < input.len() {
                assert_eq!(
                    got,
                    Ok(None),
                    "byte {i} of {:?}",
                    String::from_utf8_lossy(&input)
                );
            } else {
                assert_eq!(got, Ok(Some(want.clone())));
            }
        }
        assert!(buf.is_empty());
    }
}

#[test]
fn the_framer_skips_payloads_while_they_arrive() {
    let mut buf = BytesMut::from(&b"*2\r\n$3\r\nSET\r\n$100000\r\n"[..]);
    let mut framer = Framer::new();
    assert_eq!(framer.parse(&mut buf, &Limits::default()), Ok(None));
    assert_eq!(framer.bytes_wanted(buf.len()), 100_002);
    buf.extend_from_slice(&[b'v'; 50_000]);
    assert_eq!(framer.parse(&mut buf, &Limits::default()), Ok(None));
    assert_eq!(framer.bytes_wanted(buf.len()), 50_002);
    buf.extend_from_slice(&[b'v'; 50_000]);
    buf.extend_from_slice(b"\r\nPING\r\n");
    let got = framer.parse(&mut buf, &Limits::default()).unwrap().unwrap();
    assert_eq!(got[1].len(), 100_000);
    assert_eq!(
        framer.parse(&mut buf, &Limits::default()),
        Ok(Some(argv(&[b"PING"])))
    );
}

#[test]
fn garbage_never_panics() {
    let nasty: Vec<&[u8]> = vec![
        b"*",
        b"*\r",
        b"*\r\n",
        b"*-",
        b"*-1",
        b"*-1\r\n",
        b"*1\r\n$",
        b"*1\r\n$-",
        b"*1\r\n$0\r\n",
        b"*1\r\n$0\r\nXY",
        b"*1\r\n$1\r\n\r",
        b"$",
        b"$1\r\na\r\n",
        b"\r",
        b"\n",
        b"\0",
        b"\"",
        b"'",
        b"\"\\",
        b"\"\\x",
        b"\"\\x4",
        b"\"\\x41",
        b"*9223372036854775807\r\n",
        b"*-9223372036854775808\r\n",
        b"*1\r\n$9223372036854775807\r\n",
        b"\xff\xfe\r\n",
        b"*2\r\n$1\r\na\r\n$1\r\n",
        b"*1\r\n\r\n",
    ];
    for input in nasty {
        for limits in [Limits::default(), small_limits()] {
            let _ = parse_bytes(input, &limits);
            let mut buf = BytesMut::new();
            let mut framer = Framer::new();
            for &b in input {
                buf.extend_from_slice(&[b]);
                if framer.parse(&mut buf, &limits).is_err() {
                    break;
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Framing: properties.

fn drain(framer: &mut Framer, buf: &mut BytesMut, limits: &Limits, out: &mut Vec<Vec<Bytes>>) {
    // Every `Some` consumes at least one byte, so this terminates; the cap is a safety net.
    for _ in 0..10_000 {
        match framer.parse(buf, limits) {
            Ok(Some(cmd)) => out.push(cmd),
            Ok(None) | Err(_) => return,
        }
    }
    panic!("framer made no progress");
}

fn resp_soup() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        Just(b"*".to_vec()),
        Just(b"$".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"-".to_vec()),
        Just(b" ".to_vec()),
        Just(b"\"".to_vec()),
        Just(b"'".to_vec()),
        Just(b"\\".to_vec()),
        (0u32..20).prop_map(|n| n.to_string().into_bytes()),
        proptest::collection::vec(any::<u8>(), 1..4),
    ];
    proptest::collection::vec(token, 0..40).prop_map(|t| t.concat())
}

proptest! {
    #[test]
    fn multibulk_round_trips_through_random_splits(
        commands in proptest::collection::vec(
            proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..6),
            1..4,
        ),
        splits in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let wire: Vec<u8> = commands.iter().flat_map(|c| multibulk(c)).collect();
        let mut cuts: Vec<usize> = splits.iter().map(|i| i.index(wire.len() + 1)).collect();
        cuts.push(0);
        cuts.push(wire.len());
        cuts.sort_unstable();

        let mut framer = Framer::new();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for pair in cuts.windows(2) {
            buf.extend_from_slice(&wire[pair[0]..pair[1]]);
            drain(&mut framer, &mut buf, &Limits::default(), &mut got);
        }
        let want: Vec<Vec<Bytes>> = commands
            .iter()
            .map(|c| c.iter().map(|a| Bytes::copy_from_slice(a)).collect())
            .collect();
        prop_assert_eq!(got, want);
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn random_bytes_never_panic(soup in proptest::collection::vec(any::<u8>(), 0..600)) {
        for limits in [Limits::default(), small_limits()] {
            let mut buf = BytesMut::from(&soup[..]);
            drain(&mut Framer::new(), &mut buf, &limits, &mut Vec::new());
        }
    }

    #[test]
    fn resp_like_soup_never_panics_and_scan_agrees_with_decoder(
        soup in resp_soup(),
        split in any::<prop::sample::Index>(),
    ) {
        for limits in [Limits::default(), small_limits()] {
            let mut framer = Framer::new();
            let mut buf = BytesMut::new();
            let cut = split.index(soup.len() + 1);
            for chunk in [&soup[..cut], &soup[cut..]] {
                buf.extend_from_slice(chunk);
                loop {
                    match framer.parse(&mut buf, &limits) {
                        Ok(Some(_)) => continue,
                        Ok(None) => break,
                        Err(e) => {
                            // The header scan must never accept what the decoder rejects.
                            prop_assert_ne!(e, protocol("invalid multibulk format"));
                            break;
                        }
                    }
                }
            }
        }
    }
}

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
