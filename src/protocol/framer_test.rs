//! Tests for `framer.rs`: raw-byte framing cases with Redis's error texts, limits checked before
//! payloads (LimitsBeforeAlloc), byte-by-byte feeding, and property tests (round trip, random
//! splits, byte soup; NoPanicOnInput).

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

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
