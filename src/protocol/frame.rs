//! Owns the wire format in both directions: splitting client input into commands (multibulk and
//! inline, with Redis's size limits and error texts) and encoding reply [`Frame`]s as RESP2 or
//! RESP3. It must not interpret commands: input comes out as a plain argv of [`Bytes`].
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
//! # Output
//!
//! [`encode`] is hand-written (no allocation per value) and downgrades RESP3-only types for RESP2
//! clients exactly as Redis's `networking.c` `addReply*` functions do.

use std::fmt::{self, Write as _};

use bytes::{Buf, BufMut, Bytes, BytesMut};
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
/// for the C original.
fn split_args(line: &[u8]) -> Option<Vec<Bytes>> {
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

/// A reply value. RESP3-only variants are downgraded by [`encode`] for RESP2 clients.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    /// `+text`.
    Simple(String),
    /// `-text`; the text carries its own prefix word (`ERR ...`, `WRONGTYPE ...`).
    Error(String),
    /// `:n`.
    Integer(i64),
    /// `$len` and the bytes.
    Bulk(Bytes),
    /// A missing value: `$-1` in RESP2, `_` in RESP3.
    Null,
    /// A missing aggregate: `*-1` in RESP2, `_` in RESP3.
    NullArray,
    /// `*n` and the items.
    Array(Vec<Frame>),
    /// `%n` in RESP3; a flat `k1 v1 k2 v2 ...` array in RESP2.
    Map(Vec<(Frame, Frame)>),
    /// `~n` in RESP3; an array in RESP2.
    Set(Vec<Frame>),
    /// `,repr` in RESP3; a bulk string in RESP2. Formatted as Redis's `d2string`.
    Double(f64),
    /// `#t`/`#f` in RESP3; `:1`/`:0` in RESP2.
    Boolean(bool),
    /// `=len\r\nfmt:text` in RESP3; a bulk string of `text` in RESP2.
    Verbatim { format: [u8; 3], text: Bytes },
    /// `>n` in RESP3 (out-of-band data); an array in RESP2.
    Push(Vec<Frame>),
    /// `(digits` in RESP3; a bulk string in RESP2.
    BigNumber(String),
}

impl Frame {
    /// Returns `+OK`.
    pub fn ok() -> Frame {
        Frame::Simple("OK".to_string())
    }

    /// Returns an error reply; `msg` starts with its prefix word, e.g. `"ERR syntax error"`.
    pub fn error(msg: impl Into<String>) -> Frame {
        Frame::Error(msg.into())
    }

    /// Returns a bulk string reply.
    pub fn bulk(data: impl Into<Bytes>) -> Frame {
        Frame::Bulk(data.into())
    }
}

/// The reply protocol a connection speaks; `HELLO 3` switches it to RESP3.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Protocol {
    #[default]
    Resp2,
    Resp3,
}

/// Appends the encoding of `frame` in `proto` to `out`.
pub fn encode(frame: &Frame, proto: Protocol, out: &mut BytesMut) {
    let resp3 = proto == Protocol::Resp3;
    match frame {
        Frame::Simple(text) => put_line(out, b'+', text.as_bytes()),
        Frame::Error(text) => put_line(out, b'-', text.as_bytes()),
        Frame::Integer(n) => put_int_line(out, b':', *n),
        Frame::Bulk(data) => put_bulk(out, data),
        Frame::Null if resp3 => out.extend_from_slice(b"_\r\n"),
        Frame::Null => out.extend_from_slice(b"$-1\r\n"),
        Frame::NullArray if resp3 => out.extend_from_slice(b"_\r\n"),
        Frame::NullArray => out.extend_from_slice(b"*-1\r\n"),
        Frame::Array(items) => put_aggregate(out, b'*', items, proto),
        Frame::Set(items) => put_aggregate(out, if resp3 { b'~' } else { b'*' }, items, proto),
        Frame::Push(items) => put_aggregate(out, if resp3 { b'>' } else { b'*' }, items, proto),
        Frame::Map(pairs) => {
            if resp3 {
                put_len_line(out, b'%', pairs.len());
            } else {
                put_len_line(out, b'*', pairs.len().saturating_mul(2));
            }
            for (key, value) in pairs {
                encode(key, proto, out);
                encode(value, proto, out);
            }
        }
        Frame::Double(value) => {
            let mut text = StackStr::new();
            format_double(*value, &mut text);
            if resp3 {
                put_line(out, b',', text.as_bytes());
            } else {
                put_bulk(out, text.as_bytes());
            }
        }
        Frame::Boolean(value) => out.extend_from_slice(match (resp3, value) {
            (true, true) => b"#t\r\n",
            (true, false) => b"#f\r\n",
            (false, true) => b":1\r\n",
            (false, false) => b":0\r\n",
        }),
        Frame::Verbatim { format, text } => {
            if resp3 {
                put_len_line(out, b'=', text.len() + 4);
                out.reserve(text.len() + 6);
                out.extend_from_slice(format);
                out.put_u8(b':');
                out.extend_from_slice(text);
                out.extend_from_slice(b"\r\n");
            } else {
                put_bulk(out, text);
            }
        }
        Frame::BigNumber(digits) => {
            if resp3 {
                put_line(out, b'(', digits.as_bytes());
            } else {
                put_bulk(out, digits.as_bytes());
            }
        }
    }
}

fn put_aggregate(out: &mut BytesMut, kind: u8, items: &[Frame], proto: Protocol) {
    put_len_line(out, kind, items.len());
    for item in items {
        encode(item, proto, out);
    }
}

/// Writes `kind text \r\n`, replacing CR and LF in `text` with spaces (ReplyFraming).
fn put_line(out: &mut BytesMut, kind: u8, text: &[u8]) {
    out.reserve(text.len() + 3);
    out.put_u8(kind);
    if text.iter().any(|&b| b == b'\r' || b == b'\n') {
        out.extend(
            text.iter()
                .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
        );
    } else {
        out.extend_from_slice(text);
    }
    out.extend_from_slice(b"\r\n");
}

fn put_bulk(out: &mut BytesMut, data: &[u8]) {
    put_len_line(out, b'$', data.len());
    out.reserve(data.len() + 2);
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

fn put_len_line(out: &mut BytesMut, kind: u8, len: usize) {
    let mut digits = [0u8; 20];
    let text = format_u64(len as u64, &mut digits);
    out.reserve(text.len() + 3);
    out.put_u8(kind);
    out.extend_from_slice(text);
    out.extend_from_slice(b"\r\n");
}

fn put_int_line(out: &mut BytesMut, kind: u8, n: i64) {
    let mut digits = [0u8; 20];
    let text = format_u64(n.unsigned_abs(), &mut digits);
    out.reserve(text.len() + 4);
    out.put_u8(kind);
    if n < 0 {
        out.put_u8(b'-');
    }
    out.extend_from_slice(text);
    out.extend_from_slice(b"\r\n");
}

/// Formats `n` in decimal into the tail of `buf` and returns that tail.
fn format_u64(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

/// A fixed-capacity string on the stack, for formatting a double without allocating.
struct StackStr {
    buf: [u8; 48],
    len: usize,
}

impl StackStr {
    fn new() -> Self {
        StackStr {
            buf: [0; 48],
            len: 0,
        }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    fn push(&mut self, b: u8) {
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
    }

    fn push_all(&mut self, bytes: &[u8]) {
        bytes.iter().for_each(|&b| self.push(b));
    }
}

impl fmt::Write for StackStr {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.len + s.len() > self.buf.len() {
            return Err(fmt::Error);
        }
        self.push_all(s.as_bytes());
        Ok(())
    }
}

/// Formats a double as Redis's `d2string` does: `nan`, `inf`, `-inf`, `0`, `-0`; integers in
/// `[-2^62, 2^62]` as plain integers; everything else as the shortest round-trip digits laid out
/// by Redis's `fpconv_dtoa` (`emit_digits`): `1.5`, `0.001`, `1e+20`, `1.5e-7`.
fn format_double(value: f64, out: &mut StackStr) {
    const LL_HALF: f64 = 4_611_686_018_427_387_904.0; // (double)(LLONG_MAX / 2) == 2^62
    if value.is_nan() {
        return out.push_all(b"nan");
    }
    if value.is_infinite() {
        return out.push_all(if value < 0.0 { b"-inf" } else { b"inf" });
    }
    if value == 0.0 {
        return out.push_all(if value.is_sign_negative() {
            b"-0"
        } else {
            b"0"
        });
    }
    if (-LL_HALF..=LL_HALF).contains(&value) && value.fract() == 0.0 {
        let n = value as i64;
        let mut digits = [0u8; 20];
        if n < 0 {
            out.push(b'-');
        }
        return out.push_all(format_u64(n.unsigned_abs(), &mut digits));
    }
    // Shortest round-trip digits from `{:e}`: "d.ddde-N" / "dE".
    let mut sci = StackStr::new();
    if write!(sci, "{:e}", value.abs()).is_err() {
        return out.push_all(b"nan");
    }
    let sci = sci.as_bytes();
    let e_at = sci.iter().position(|&b| b == b'e').unwrap_or(sci.len());
    let mut digits = [0u8; 24];
    let mut ndigits = 0usize;
    for &b in sci[..e_at].iter().filter(|b| b.is_ascii_digit()) {
        if let Some(slot) = digits.get_mut(ndigits) {
            *slot = b;
            ndigits += 1;
        }
    }
    let exp10: i32 = std::str::from_utf8(sci.get(e_at + 1..).unwrap_or_default())
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let neg = value < 0.0;
    if neg {
        out.push(b'-');
    }
    emit_digits(
        &digits[..ndigits.max(1)],
        exp10 - (ndigits as i32 - 1),
        neg,
        out,
    );
}

/// Lays out `digits * 10^k` as Redis's `fpconv_dtoa` `emit_digits` does.
fn emit_digits(digits: &[u8], k: i32, neg: bool, out: &mut StackStr) {
    let nd = digits.len() as i32;
    let exp = (k + nd - 1).abs();
    if k >= 0 && exp < nd + 7 {
        out.push_all(digits);
        (0..k).for_each(|_| out.push(b'0'));
        return;
    }
    if k < 0 && (k > -7 || exp < 4) {
        let offset = nd - k.abs();
        if offset <= 0 {
            out.push_all(b"0.");
            (0..-offset).for_each(|_| out.push(b'0'));
            out.push_all(digits);
        } else {
            let (int_part, frac) = digits.split_at(offset as usize);
            out.push_all(int_part);
            out.push(b'.');
            out.push_all(frac);
        }
        return;
    }
    let nd = digits.len().min(if neg { 17 } else { 18 });
    out.push(digits[0]);
    if nd > 1 {
        out.push(b'.');
        out.push_all(&digits[1..nd]);
    }
    out.push(b'e');
    out.push(if k + nd as i32 - 1 < 0 { b'-' } else { b'+' });
    let mut exp = exp;
    let mut cent = 0;
    if exp > 99 {
        cent = exp / 100;
        out.push(b'0' + cent as u8);
        exp -= cent * 100;
    }
    if exp > 9 {
        let dec = exp / 10;
        out.push(b'0' + dec as u8);
        exp -= dec * 10;
    } else if cent != 0 {
        out.push(b'0');
    }
    out.push(b'0' + (exp % 10) as u8);
}

#[cfg(test)]
#[path = "frame_test.rs"]
mod tests;
