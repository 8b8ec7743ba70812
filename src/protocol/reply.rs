//! Reply encoding: [`Frame`], the reply value, and [`encode`], which writes it as RESP2 or RESP3.
//!
//! [`encode`] is hand-written (no allocation per value) and downgrades RESP3-only types for RESP2
//! clients exactly as Redis's `networking.c` `addReply*` functions do.

use std::fmt::{self, Write as _};

use bytes::{BufMut, Bytes, BytesMut};

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
    /// An array of two-item arrays in RESP3, a flat `a1 b1 a2 b2 ...` array in RESP2 (Redis's
    /// replies of pairs that may repeat, such as HRANDFIELD WITHVALUES).
    Pairs(Vec<(Frame, Frame)>),
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
    encode_pieces(frame, proto, out, &mut |_| {});
}

/// [`encode`], telling `piece` the length of each part Redis would queue on its own: an
/// aggregate's header line, then each of its items (for the output buffer accounting,
/// `obuf`).
pub fn encode_pieces<F: FnMut(usize)>(
    frame: &Frame,
    proto: Protocol,
    out: &mut BytesMut,
    piece: &mut F,
) {
    let resp3 = proto == Protocol::Resp3;
    let start = out.len();
    match frame {
        Frame::Simple(text) => put_line(out, b'+', text.as_bytes()),
        Frame::Error(text) => put_line(out, b'-', text.as_bytes()),
        Frame::Integer(n) => put_int_line(out, b':', *n),
        Frame::Bulk(data) => put_bulk(out, data),
        Frame::Null if resp3 => out.extend_from_slice(b"_\r\n"),
        Frame::Null => out.extend_from_slice(b"$-1\r\n"),
        Frame::NullArray if resp3 => out.extend_from_slice(b"_\r\n"),
        Frame::NullArray => out.extend_from_slice(b"*-1\r\n"),
        Frame::Array(items) => return put_aggregate(out, b'*', items, proto, piece),
        Frame::Set(items) => {
            let kind = if resp3 { b'~' } else { b'*' };
            return put_aggregate(out, kind, items, proto, piece);
        }
        Frame::Push(items) => {
            let kind = if resp3 { b'>' } else { b'*' };
            return put_aggregate(out, kind, items, proto, piece);
        }
        Frame::Pairs(pairs) => {
            if resp3 {
                put_len_line(out, b'*', pairs.len());
            } else {
                put_len_line(out, b'*', pairs.len().saturating_mul(2));
            }
            piece(out.len() - start);
            for (a, b) in pairs {
                if resp3 {
                    put_len_line(out, b'*', 2);
                    piece(4);
                }
                encode_pieces(a, proto, out, piece);
                encode_pieces(b, proto, out, piece);
            }
            return;
        }
        Frame::Map(pairs) => {
            if resp3 {
                put_len_line(out, b'%', pairs.len());
            } else {
                put_len_line(out, b'*', pairs.len().saturating_mul(2));
            }
            piece(out.len() - start);
            for (key, value) in pairs {
                encode_pieces(key, proto, out, piece);
                encode_pieces(value, proto, out, piece);
            }
            return;
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
    piece(out.len() - start);
}

fn put_aggregate<F: FnMut(usize)>(
    out: &mut BytesMut,
    kind: u8,
    items: &[Frame],
    proto: Protocol,
    piece: &mut F,
) {
    let start = out.len();
    put_len_line(out, kind, items.len());
    piece(out.len() - start);
    for item in items {
        encode_pieces(item, proto, out, piece);
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
#[path = "reply_test.rs"]
mod tests;
