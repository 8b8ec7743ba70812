//! Fuzzes redraft's RESP input framer (`redraft::protocol::{parse_command, Framer}`) with
//! arbitrary bytes fed whole and in pieces. The invariants (NoPanicOnInput,
//! ConsumedWithinInput, RoundTrip, ChunkingIndependence) live in
//! `tests/common/framer_check.rs`, shared with the bounded property test in
//! `tests/resp/framing.rs`, so a failure here reproduces there as a plain test input.
//!
//! The first (up to) 8 bytes of each input choose the piece sizes; the rest is the client's
//! byte stream. Run from the repository root: `cargo +nightly fuzz run framer`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/common/framer_check.rs"]
mod framer_check;

fuzz_target!(|data: &[u8]| {
    framer_check::check(data);
});
