//! The invariants of the RESP input framer (`redraft::protocol::{parse_command, Framer}`),
//! checked on any byte string. Shared by the in-process property test in
//! `tests/resp/framing.rs` and the fuzz target `fuzz/fuzz_targets/framer.rs`, so both check the
//! same rules:
//!
//! - **NoPanicOnInput**: no input makes the framer panic (the fuzzer's and proptest's job).
//! - **ConsumedWithinInput**: a call never consumes more than the buffer held, and a returned
//!   command consumed at least the bytes of its arguments.
//! - **RoundTrip**: a returned argv, encoded as a multibulk, parses back to the same argv and
//!   consumes exactly its encoding (or is refused by the limits it exceeds).
//! - **ChunkingIndependence**: feeding the input in arbitrary pieces to one resumable [`Framer`]
//!   yields the same commands, and the same error, as parsing it all at once.
//!
//! It must not depend on anything but `bytes` and redraft's `protocol` module.
#![allow(dead_code)]

use bytes::{Bytes, BytesMut};
use redraft::protocol::{parse_command, FrameError, Framer, Limits};

/// Small limits, so short inputs reach every limit branch.
pub fn small_limits() -> Limits {
    Limits {
        max_bulk_len: 64,
        max_multibulk_len: 8,
        max_inline_len: 32,
        unauthenticated: false,
    }
}

/// What one pass over an input produced.
#[derive(Debug, PartialEq, Eq)]
pub struct Run {
    /// Every command returned, in order.
    pub commands: Vec<Vec<Bytes>>,
    /// The error that stopped the pass, if any.
    pub error: Option<FrameError>,
    /// Bytes left unconsumed at the end (meaningful only without an error).
    pub leftover: usize,
}

/// Parses `data` as one buffer with the stateless [`parse_command`], checking
/// ConsumedWithinInput and RoundTrip on every command.
pub fn run_whole(data: &[u8], limits: &Limits) -> Run {
    let mut buf = BytesMut::from(data);
    let mut commands = Vec::new();
    loop {
        let before = buf.len();
        match parse_command(&mut buf, limits) {
            Ok(Some(argv)) => {
                check_command(&argv, before, buf.len(), limits, data);
                commands.push(argv);
            }
            Ok(None) => {
                assert!(buf.len() <= before, "Ok(None) grew the buffer");
                return Run {
                    commands,
                    error: None,
                    leftover: buf.len(),
                };
            }
            Err(e) => {
                // Blank lines and `*0` before the bad frame may have been consumed.
                assert!(
                    buf.len() <= before,
                    "an error grew the buffer; input {data:?}"
                );
                return Run {
                    commands,
                    error: Some(e),
                    leftover: buf.len(),
                };
            }
        }
    }
}

/// Feeds `data` to one [`Framer`] in pieces whose sizes cycle through `sizes` (each taken as
/// 1 + size), parsing everything complete after each piece.
pub fn run_in_pieces(data: &[u8], sizes: &[u8], limits: &Limits) -> Run {
    let mut framer = Framer::new();
    let mut buf = BytesMut::new();
    let mut commands = Vec::new();
    let mut fed = 0;
    let mut piece = 0;
    while fed < data.len() {
        let size = 1 + usize::from(sizes.get(piece % sizes.len().max(1)).copied().unwrap_or(0));
        piece += 1;
        let end = (fed + size).min(data.len());
        buf.extend_from_slice(&data[fed..end]);
        fed = end;
        loop {
            let before = buf.len();
            match framer.parse(&mut buf, limits) {
                Ok(Some(argv)) => {
                    check_command(&argv, before, buf.len(), limits, data);
                    commands.push(argv);
                }
                Ok(None) => {
                    assert!(buf.len() <= before, "Ok(None) grew the buffer");
                    break;
                }
                Err(e) => {
                    return Run {
                        commands,
                        error: Some(e),
                        leftover: buf.len(),
                    }
                }
            }
        }
    }
    Run {
        commands,
        error: None,
        leftover: buf.len(),
    }
}

/// ConsumedWithinInput and RoundTrip for one returned command.
fn check_command(argv: &[Bytes], before: usize, after: usize, limits: &Limits, data: &[u8]) {
    assert!(after <= before, "parse grew the buffer; input {data:?}");
    assert!(
        !argv.is_empty(),
        "an empty argv was returned; input {data:?}"
    );
    let arg_bytes: usize = argv.iter().map(Bytes::len).sum();
    assert!(
        before - after >= arg_bytes,
        "consumed {} bytes but returned {arg_bytes} bytes of arguments; input {data:?}",
        before - after
    );
    let mut encoded = BytesMut::new();
    encoded.extend_from_slice(format!("*{}\r\n", argv.len()).as_bytes());
    for a in argv {
        encoded.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        encoded.extend_from_slice(a);
        encoded.extend_from_slice(b"\r\n");
    }
    let total = encoded.len();
    let fits = argv.len() <= limits.max_multibulk_len
        && argv.iter().all(|a| a.len() <= limits.max_bulk_len)
        && argv.len().to_string().len() < limits.max_inline_len;
    match parse_command(&mut encoded, limits) {
        Ok(Some(again)) if fits => {
            assert_eq!(
                again, argv,
                "re-encoded argv parsed differently; input {data:?}"
            );
            assert!(
                encoded.is_empty(),
                "re-encoded argv of {total} bytes left {} unconsumed; input {data:?}",
                encoded.len()
            );
        }
        Err(_) if !fits => {}
        other => panic!(
            "re-encoded argv {argv:?} (within limits: {fits}) parsed as {other:?}; input {data:?}"
        ),
    }
}

/// Checks every invariant on `data`: the first bytes (up to 8) choose the piece sizes, the rest
/// is the input. Runs with Redis's default limits and with [`small_limits`].
pub fn check(data: &[u8]) {
    let (sizes, input) = data.split_at(data.len().min(8));
    for limits in [Limits::default(), small_limits()] {
        let whole = run_whole(input, &limits);
        let pieces = run_in_pieces(input, sizes, &limits);
        assert_eq!(
            whole.commands, pieces.commands,
            "commands differ when fed in pieces of {sizes:?}; input {input:?}"
        );
        assert_eq!(
            whole.error, pieces.error,
            "errors differ when fed in pieces of {sizes:?}; input {input:?}"
        );
        if whole.error.is_none() {
            assert_eq!(
                whole.leftover, pieces.leftover,
                "leftover differs when fed in pieces of {sizes:?}; input {input:?}"
            );
        }
    }
}
