//! Input framing: splitting client bytes into commands (multibulk and inline, with Redis's size
//! limits and error texts). It must not interpret commands: input comes out as a plain argv of
//! [`Bytes`]. Replies are encoded in `reply.rs`.
//!
//! # Input
//!
//! A command starting with `*` is a multibulk (`*N\r\n$len\r\n<len bytes>\r\n...`). Its header
//! lines are scanned here first, checking every declared length against [`Limits`] as soon as the
//! line is complete (LimitsBeforeAlloc), and skipping over payloads by their declared length, so a
//! large bulk still arriving costs O(1) per call. Once the whole frame is present it is decoded by
//! `redis_protocol::resp2::decode::decode_bytes_mut`, which splits it off the buffer so every
//! argument is a zero-copy slice of the bytes read. Anything else is an inline command: one line,
//! split with Redis's `sdssplitargs` quoting rules. The error texts are Redis's
//! (`src/networking.c`, `processMultibulkBuffer` / `processInlineBuffer`).
//!
//! **UnauthenticatedCaps**: while [`Limits::unauthenticated`] is set (the server has a
//! `requirepass` and the connection has not authenticated), a multibulk may declare at most
//! [`UNAUTHENTICATED_MAX_MULTIBULK_LEN`] arguments and each at most
//! [`UNAUTHENTICATED_MAX_BULK_LEN`] bytes, checked on the header line as every other limit is:
//! Redis's fix for CVE-2021-32675, with its error texts. So a client that does not know the
//! password can make the server buffer at most one ~160 KB frame.
//!
//! Deviation from Redis, on purpose: a header line must end in `\r\n` (Redis skips whatever byte
//! follows the `\r`); a bare `\r` is reported as an invalid length instead.
//!

use bytes::{Buf, Bytes, BytesMut};
use redis_protocol::resp2::decode::decode_bytes_mut;
use redis_protocol::resp2::types::BytesFrame;

/// The most arguments an unauthenticated multibulk may declare (Redis's `authRequired` cap).
pub const UNAUTHENTICATED_MAX_MULTIBULK_LEN: i64 = 10;

/// The longest argument an unauthenticated multibulk may declare (Redis's `authRequired` cap).
pub const UNAUTHENTICATED_MAX_BULK_LEN: usize = 16 * 1024;

/// Input size limits, with Redis's defaults (`proto-max-bulk-len`, the multibulk count cap and
/// `PROTO_INLINE_MAX_SIZE`).
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest accepted `$len` of one argument.
    pub max_bulk_len: usize,
    /// Largest accepted `*N` element count.
    pub max_multibulk_len: usize,
    /// Longest inline line, and longest `*N` / `$len` header line, without its line ending.
    pub max_inline_len: usize,
    /// Whether the connection still has to authenticate: then the far smaller caps of
    /// UnauthenticatedCaps apply as well. Set per connection by the session, never by config.
    pub unauthenticated: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bulk_len: 512 * 1024 * 1024,
            max_multibulk_len: 1024 * 1024,
            max_inline_len: 64 * 1024,
            unauthenticated: false,
        }
    }
}

/// A malformed request. The connection replies `-ERR <Display>` and closes, as Redis does.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// The client broke the protocol; the text is Redis's, after "Protocol error: ".
    #[error("Protocol error: {0}")]
    Protocol(String),
}

fn protocol_error(text: impl Into<String>) -> FrameError {
    FrameError::Protocol(text.into())
}

/// Parses one client command from the front of `buf`.
///
/// Returns `Ok(None)` when the buffer holds no complete command yet (nothing that belongs to an
/// unfinished command is consumed; empty inline lines and `*0`/`*-1` are consumed and skipped),
/// and `Ok(Some(argv))` with the command's bytes removed from `buf`. Stateless: a caller that calls
/// this repeatedly while a large frame arrives should use a [`Framer`], which resumes its scan.
pub fn parse_command(
    buf: &mut BytesMut,
    limits: &Limits,
) -> Result<Option<Vec<Bytes>>, FrameError> {
    Framer::new().parse(buf, limits)
}

/// A resumable command scanner over one connection's read buffer.
///
/// It remembers how far the current frame has been validated, so a call while a 100 MB
/// argument trickles in checks one length and returns. The state refers to offsets in the buffer
/// it was last given: use one `Framer` per buffer and consume from that buffer only through it.
#[derive(Debug, Default)]
pub struct Framer {
    scan: Scan,
}

/// How much of the frame at the front of the buffer has been validated.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Scan {
    /// Nothing scanned: the next byte starts a command.
    #[default]
    Start,
    /// A multibulk whose `*N` line and some elements are valid: `pending` elements remain, and
    /// the next one starts at byte `pos`, which may lie past the end of the buffer while the
    /// previous element's payload is still arriving.
    Multibulk { pending: usize, pos: usize },
    /// An inline command: bytes `..scanned` hold no `\n`.
    Inline { scanned: usize },
}

/// The result of looking for a `\r\n`-terminated header line.
enum Line {
    /// The line is `buf[start..cr]` and the next line starts at `cr + 2`.
    Found {
        cr: usize,
    },
    Incomplete,
    /// A `\r` not followed by `\n`.
    Malformed,
    TooLong,
}

impl Framer {
    /// Returns a framer with nothing scanned.
    pub fn new() -> Self {
        Framer::default()
    }

    /// Parses the next command from the front of `buf`; see [`parse_command`].
    ///
    /// After an error the framer is reset, but the buffer is left as it was: the caller is
    /// expected to reply with the error and close the connection.
    pub fn parse(
        &mut self,
        buf: &mut BytesMut,
        limits: &Limits,
    ) -> Result<Option<Vec<Bytes>>, FrameError> {
        let result = self.parse_inner(buf, limits);
        if result.is_err() {
            self.scan = Scan::Start;
        }
        result
    }

    /// Returns how many more bytes the frame being scanned is known to need (0 if unknown).
    /// A read-buffer sizing hint only; it is never trusted beyond the caller's own cap.
    pub fn bytes_wanted(&self, buffered: usize) -> usize {
        match self.scan {
            Scan::Multibulk { pos, .. } => pos.saturating_sub(buffered),
            _ => 0,
        }
    }

    fn parse_inner(
        &mut self,
        buf: &mut BytesMut,
        limits: &Limits,
    ) -> Result<Option<Vec<Bytes>>, FrameError> {
        loop {
            match self.scan {
                Scan::Start => {
                    let Some(&first) = buf.first() else {
                        return Ok(None);
                    };
                    if first != b'*' {
                        self.scan = Scan::Inline { scanned: 0 };
                        continue;
                    }
                    let cr = match find_line(buf, 0, limits.max_inline_len) {
                        Line::Found { cr } => cr,
                        Line::Incomplete => return Ok(None),
                        Line::TooLong => return Err(protocol_error("too big mbulk count string")),
                        Line::Malformed => return Err(protocol_error("invalid multibulk length")),
                    };
                    // Redis's order: not a number (or over INT_MAX) first, then the
                    // unauthenticated cap, then the configured one.
                    let count = buf
                        .get(1..cr)
                        .and_then(string2ll)
                        .filter(|&n| n <= i64::from(i32::MAX))
                        .ok_or_else(|| protocol_error("invalid multibulk length"))?;
                    if limits.unauthenticated && count > UNAUTHENTICATED_MAX_MULTIBULK_LEN {
                        return Err(protocol_error("unauthenticated multibulk length"));
                    }
                    if count > limits.max_multibulk_len as i64 {
                        return Err(protocol_error("invalid multibulk length"));
                    }
                    if count <= 0 {
                        // `*0` and `*-1` (any count <= 0, as in Redis) carry no command.
                        buf.advance(cr + 2);
                        continue;
                    }
                    self.scan = Scan::Multibulk {
                        pending: count as usize,
                        pos: cr + 2,
                    };
                }
                Scan::Multibulk { pending, pos } => {
                    return self.scan_multibulk(buf, limits, pending, pos)
                }
                Scan::Inline { scanned } => match self.scan_inline(buf, limits, scanned)? {
                    Some(argv) if argv.is_empty() => continue,
                    other => return Ok(other),
                },
            }
        }
    }

    /// Validates element headers from `pos` on, then decodes the whole frame once it is present.
    fn scan_multibulk(
        &mut self,
        buf: &mut BytesMut,
        limits: &Limits,
        mut pending: usize,
        mut pos: usize,
    ) -> Result<Option<Vec<Bytes>>, FrameError> {
        while pending > 0 {
            let cr = match find_line(buf, pos, limits.max_inline_len) {
                Line::Found { cr } => cr,
                Line::Incomplete => {
                    self.scan = Scan::Multibulk { pending, pos };
                    return Ok(None);
                }
                Line::TooLong => return Err(protocol_error("too big bulk count string")),
                Line::Malformed => return Err(protocol_error("invalid bulk length")),
            };
            // `find_line` only finds a line that starts inside the buffer, so `buf[pos]` exists.
            let kind = buf.get(pos).copied().unwrap_or(b'$');
            if kind != b'$' {
                return Err(protocol_error(format!(
                    "expected '$', got '{}'",
                    char::from(kind)
                )));
            }
            let len = buf
                .get(pos + 1..cr)
                .and_then(string2ll)
                .and_then(|n| usize::try_from(n).ok())
                .filter(|&n| n <= limits.max_bulk_len)
                .ok_or_else(|| protocol_error("invalid bulk length"))?;
            if limits.unauthenticated && len > UNAUTHENTICATED_MAX_BULK_LEN {
                return Err(protocol_error("unauthenticated bulk length"));
            }
            // The payload and its trailing CRLF are skipped by length, never read here.
            pos = cr.saturating_add(2).saturating_add(len).saturating_add(2);
            pending -= 1;
        }
        if buf.len() < pos {
            self.scan = Scan::Multibulk { pending: 0, pos };
            return Ok(None);
        }
        self.scan = Scan::Start;
        decode_multibulk(buf, pos).map(Some)
    }

    /// Looks for the end of an inline line; returns `Some(vec![])` for a blank line (consumed).
    fn scan_inline(
        &mut self,
        buf: &mut BytesMut,
        limits: &Limits,
        scanned: usize,
    ) -> Result<Option<Vec<Bytes>>, FrameError> {
        // A line may hold up to `max_inline_len` bytes before its `\n`.
        let window = buf.len().min(limits.max_inline_len.saturating_add(1));
        let found = buf
            .get(scanned.min(window)..window)
            .and_then(|w| w.iter().position(|&b| b == b'\n'))
            .map(|i| i + scanned.min(window));
        let Some(nl) = found else {
            if buf.len() > limits.max_inline_len {
                return Err(protocol_error("too big inline request"));
            }
            self.scan = Scan::Inline { scanned: window };
            return Ok(None);
        };
        let line = &buf[..nl];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let argv =
            split_args(line).ok_or_else(|| protocol_error("unbalanced quotes in request"))?;
        buf.advance(nl + 1);
        self.scan = Scan::Start;
        Ok(Some(argv))
    }
}

/// Finds the `\r\n` ending the header line that starts at `start`, looking no further than
/// `max_len` bytes of content.
fn find_line(buf: &[u8], start: usize, max_len: usize) -> Line {
    let Some(rest) = buf.get(start..).filter(|r| !r.is_empty()) else {
        return Line::Incomplete;
    };
    let window = &rest[..rest.len().min(max_len.saturating_add(1))];
    match window.iter().position(|&b| b == b'\r') {
        Some(i) => match rest.get(i + 1) {
            Some(b'\n') => Line::Found { cr: start + i },
            Some(_) => Line::Malformed,
            None => Line::Incomplete,
        },
        None if rest.len() > max_len => Line::TooLong,
        None => Line::Incomplete,
    }
}

/// Splits the validated `total`-byte multibulk off `buf` and returns its arguments, each a
/// zero-copy slice of the frame.
fn decode_multibulk(buf: &mut BytesMut, total: usize) -> Result<Vec<Bytes>, FrameError> {
    // The scan above accepted a strict subset of what the RESP2 decoder accepts, so anything but
    // an array of `total` bytes holding only bulk strings would be a disagreement between the two;
    // it is reported as a protocol error rather than trusted.
    let disagreement = || protocol_error("invalid multibulk format");
    match decode_bytes_mut(buf) {
        Ok(Some((BytesFrame::Array(items), amt, _))) if amt == total => items
            .into_iter()
            .map(|item| match item {
                BytesFrame::BulkString(bytes) => Ok(bytes),
                _ => Err(disagreement()),
            })
            .collect(),
        _ => Err(disagreement()),
    }
}

/// Parses a decimal `i64` exactly as Redis's `string2ll` does: no sign other than a leading `-`,
/// no leading zeros, no spaces, at most 20 characters.
pub(crate) fn string2ll(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() >= 21 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (negative, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    if negative && digits.first() == Some(&b'0') {
        return None; // "-0" and "-01" are not numbers to string2ll.
    }
    let magnitude = parse_u64_digits(digits)?;
    if negative {
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// Parses a non-empty run of decimal digits with no leading zero (except `0` itself).
pub(crate) fn parse_u64_digits(digits: &[u8]) -> Option<u64> {
    match digits {
        [] => None,
        [b'0'] => Some(0),
        [b'0', ..] => None,
        _ => digits.iter().try_fold(0u64, |acc, &b| {
            if b.is_ascii_digit() {
                acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
            } else {
                None
            }
        }),
    }
}

/// Splits an inline line as Redis's `sdssplitargs` does. Returns `None` for unbalanced quotes or
/// a closing quote followed by something other than a space. A NUL byte ends the line, as it does
/// for the C original. Also splits a script's shebang line (`commands::scripting::shebang`).
pub(crate) fn split_args(line: &[u8]) -> Option<Vec<Bytes>> {
    let line = match line.iter().position(|&b| b == 0) {
        Some(nul) => &line[..nul],
        None => line,
    };
    // Reading past the end yields 0, like the C string terminator.
    let at = |i: usize| line.get(i).copied().unwrap_or(0);
    let is_space = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c);
    let mut argv = Vec::new();
    let mut p = 0;
    loop {
        while p < line.len() && is_space(line[p]) {
            p += 1;
        }
        if p >= line.len() {
            return Some(argv);
        }
        let mut current = Vec::new();
        let (mut in_dq, mut in_sq, mut done) = (false, false, false);
        while !done {
            let c = at(p);
            if in_dq {
                if c == b'\\' && at(p + 1) == b'x' && is_hex(at(p + 2)) && is_hex(at(p + 3)) {
                    current.push(hex_val(at(p + 2)) * 16 + hex_val(at(p + 3)));
                    p += 3;
                } else if c == b'\\' && at(p + 1) != 0 {
                    p += 1;
                    current.push(match at(p) {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                } else if c == b'"' {
                    if at(p + 1) != 0 && !is_space(at(p + 1)) {
                        return None;
                    }
                    done = true;
                } else if c == 0 {
                    return None;
                } else {
                    current.push(c);
                }
            } else if in_sq {
                if c == b'\\' && at(p + 1) == b'\'' {
                    p += 1;
                    current.push(b'\'');
                } else if c == b'\'' {
                    if at(p + 1) != 0 && !is_space(at(p + 1)) {
                        return None;
                    }
                    done = true;
                } else if c == 0 {
                    return None;
                } else {
                    current.push(c);
                }
            } else {
                match c {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => done = true,
                    b'"' => in_dq = true,
                    b'\'' => in_sq = true,
                    _ => current.push(c),
                }
            }
            if at(p) != 0 {
                p += 1;
            }
        }
        argv.push(Bytes::from(current));
    }
}

fn is_hex(b: u8) -> bool {
    b.is_ascii_hexdigit()
}

fn hex_val(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        b'A'..=b'F' => b - b'A' + 10,
        _ => 0,
    }
}

#[cfg(test)]
#[path = "framer_test.rs"]
mod tests;
