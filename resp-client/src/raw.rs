//! Raw RESP over TCP for black-box tests: a sync client that sends exact bytes and reads exact
//! replies (as parsed values or as their raw text), and a strict RESP2/RESP3 reply reader.
//!
//! It must not interpret commands, and it never sleeps for correctness: every read has a
//! deadline, and every `must_*` helper panics saying what it waited for and what it had.
use std::fmt::Write as _;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

pub use crate::encode::{encode, multibulk};

/// How long a `must_*` read waits by default.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// A reply value as it came off the wire, RESP2 and RESP3. Its `Debug` shows bytes escaped.
#[derive(Clone, PartialEq)]
pub enum Reply {
    /// `+text`.
    Simple(Vec<u8>),
    /// `-text`, and RESP3 `!len` blob errors.
    Error(Vec<u8>),
    /// `:n`.
    Integer(i64),
    /// `$len` bytes; `None` for `$-1`.
    Bulk(Option<Vec<u8>>),
    /// `*n` items; `None` for `*-1`.
    Array(Option<Vec<Reply>>),
    /// RESP3 `_`.
    Null,
    /// RESP3 `,text`.
    Double(Vec<u8>),
    /// RESP3 `#t` / `#f`.
    Boolean(bool),
    /// RESP3 `(digits`.
    BigNumber(Vec<u8>),
    /// RESP3 `=len fmt:text` (the whole payload, format included).
    Verbatim(Vec<u8>),
    /// RESP3 `%n` pairs.
    Map(Vec<(Reply, Reply)>),
    /// RESP3 `~n` items.
    Set(Vec<Reply>),
    /// RESP3 `>n` items.
    Push(Vec<Reply>),
}

impl Reply {
    /// Returns `+OK`.
    pub fn ok() -> Reply {
        Reply::Simple(b"OK".to_vec())
    }

    /// Returns a bulk reply of `bytes`.
    pub fn bulk(bytes: impl AsRef<[u8]>) -> Reply {
        Reply::Bulk(Some(bytes.as_ref().to_vec()))
    }

    /// Returns an error reply of `text` (prefix word included).
    pub fn error(text: &str) -> Reply {
        Reply::Error(text.as_bytes().to_vec())
    }
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = |name: &str, b: &[u8], f: &mut std::fmt::Formatter<'_>| {
            write!(f, "{name}(\"{}\")", escape(b))
        };
        match self {
            Reply::Simple(b) => text("Simple", b, f),
            Reply::Error(b) => text("Error", b, f),
            Reply::Integer(n) => write!(f, "Integer({n})"),
            Reply::Bulk(Some(b)) => text("Bulk", b, f),
            Reply::Bulk(None) => write!(f, "NullBulk"),
            Reply::Array(Some(items)) => f.debug_list().entries(items).finish(),
            Reply::Array(None) => write!(f, "NullArray"),
            Reply::Null => write!(f, "Null"),
            Reply::Double(b) => text("Double", b, f),
            Reply::Boolean(v) => write!(f, "Boolean({v})"),
            Reply::BigNumber(b) => text("BigNumber", b, f),
            Reply::Verbatim(b) => text("Verbatim", b, f),
            Reply::Map(pairs) => f
                .debug_map()
                .entries(pairs.iter().map(|(k, v)| (k, v)))
                .finish(),
            Reply::Set(items) => write!(f, "Set{items:?}"),
            Reply::Push(items) => write!(f, "Push{items:?}"),
        }
    }
}

/// Parses one reply from the front of `buf`.
///
/// Returns `Ok(None)` when `buf` holds only part of a reply, `Ok(Some((reply, len)))` with the
/// number of bytes it took, and `Err` when the bytes are not RESP (strictly: every line ends in
/// `\r\n`, lengths are decimal, payloads are followed by `\r\n`).
pub fn parse_reply(buf: &[u8]) -> Result<Option<(Reply, usize)>, String> {
    parse_at(buf, 0, 0)
}

/// Nesting deeper than this is treated as malformed (keeps the parser's stack bounded).
const MAX_DEPTH: usize = 64;

fn parse_at(buf: &[u8], pos: usize, depth: usize) -> Result<Option<(Reply, usize)>, String> {
    if depth > MAX_DEPTH {
        return Err("reply nested too deeply".into());
    }
    let Some(line_end) = find_crlf(buf, pos)? else {
        return Ok(None);
    };
    let kind = buf[pos];
    let line = &buf[pos + 1..line_end];
    let next = line_end + 2;
    let int = |what: &str| -> Result<i64, String> {
        std::str::from_utf8(line)
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
            .ok_or_else(|| format!("{what}: {:?} is not an integer", escape(line)))
    };
    let simple = |r: Reply| Ok(Some((r, next - pos)));
    match kind {
        b'+' => simple(Reply::Simple(line.to_vec())),
        b'-' => simple(Reply::Error(line.to_vec())),
        b':' => simple(Reply::Integer(int("integer")?)),
        b',' => simple(Reply::Double(line.to_vec())),
        b'(' => simple(Reply::BigNumber(line.to_vec())),
        b'_' if line.is_empty() => simple(Reply::Null),
        b'#' if line == b"t" => simple(Reply::Boolean(true)),
        b'#' if line == b"f" => simple(Reply::Boolean(false)),
        b'$' | b'!' | b'=' => {
            let len = int("bulk length")?;
            if len == -1 && kind == b'$' {
                return simple(Reply::Bulk(None));
            }
            let len = usize::try_from(len).map_err(|_| format!("bulk length {len}"))?;
            let end = next + len;
            if buf.len() < end + 2 {
                return Ok(None);
            }
            if &buf[end..end + 2] != b"\r\n" {
                return Err(format!("bulk of {len} bytes not followed by CRLF"));
            }
            let data = buf[next..end].to_vec();
            let reply = match kind {
                b'$' => Reply::Bulk(Some(data)),
                b'!' => Reply::Error(data),
                _ => Reply::Verbatim(data),
            };
            Ok(Some((reply, end + 2 - pos)))
        }
        b'*' | b'~' | b'>' | b'%' => {
            let n = int("aggregate length")?;
            if n == -1 && kind == b'*' {
                return simple(Reply::Array(None));
            }
            let n = usize::try_from(n).map_err(|_| format!("aggregate length {n}"))?;
            let count = if kind == b'%' { n.saturating_mul(2) } else { n };
            let mut items = Vec::new();
            let mut at = next;
            for _ in 0..count {
                match parse_at(buf, at, depth + 1)? {
                    Some((item, used)) => {
                        items.push(item);
                        at += used;
                    }
                    None => return Ok(None),
                }
            }
            let reply = match kind {
                b'*' => Reply::Array(Some(items)),
                b'~' => Reply::Set(items),
                b'>' => Reply::Push(items),
                _ => {
                    let mut pairs = Vec::with_capacity(n);
                    let mut it = items.into_iter();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        pairs.push((k, v));
                    }
                    Reply::Map(pairs)
                }
            };
            Ok(Some((reply, at - pos)))
        }
        other => Err(format!(
            "unknown reply type byte {:?} at offset {pos}",
            char::from(other)
        )),
    }
}

/// Finds the `\r\n` ending the line that starts at `pos`; a `\r` followed by anything else, or
/// a bare `\n`, is malformed.
fn find_crlf(buf: &[u8], pos: usize) -> Result<Option<usize>, String> {
    let Some(rest) = buf.get(pos..).filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    match rest.iter().position(|&b| b == b'\r' || b == b'\n') {
        None => Ok(None),
        Some(i) if rest[i] == b'\n' => Err(format!("bare LF at offset {}", pos + i)),
        Some(i) => match rest.get(i + 1) {
            None => Ok(None),
            Some(b'\n') => Ok(Some(pos + i)),
            Some(_) => Err(format!("CR not followed by LF at offset {}", pos + i)),
        },
    }
}

/// Parses every reply in `buf`; `Err` if the bytes are not a whole number of replies.
pub fn parse_all(buf: &[u8]) -> Result<Vec<Reply>, String> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        match parse_at(buf, at, 0)? {
            Some((r, used)) => {
                out.push(r);
                at += used;
            }
            None => return Err(format!("incomplete reply at offset {at}")),
        }
    }
    Ok(out)
}

/// Splits a command line on spaces (no quoting) into a multibulk command.
pub fn line(text: &str) -> Vec<u8> {
    let args: Vec<&[u8]> = text.split(' ').map(str::as_bytes).collect();
    encode(&args)
}

/// Shows bytes as a Rust-like string literal: printable ASCII as is, the rest escaped, long
/// runs shortened.
pub fn escape(bytes: &[u8]) -> String {
    const SHOW: usize = 600;
    let mut s = String::new();
    for &b in bytes.iter().take(SHOW) {
        match b {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            b'\\' => s.push_str("\\\\"),
            b'"' => s.push_str("\\\""),
            0x20..=0x7e => s.push(char::from(b)),
            _ => {
                let _ = write!(s, "\\x{b:02x}");
            }
        }
    }
    if bytes.len() > SHOW {
        let _ = write!(s, "... ({} bytes in all)", bytes.len());
    }
    s
}

/// How a connection ended while a test waited for it to close.
#[derive(Debug, PartialEq, Eq)]
pub enum Closed {
    /// A clean end of stream (FIN).
    Eof,
    /// The server closed with input unread, so the kernel sent a reset.
    Reset,
}

/// One client connection speaking raw bytes.
pub struct RawConn {
    stream: TcpStream,
    /// Bytes received and not yet handed out.
    pending: Vec<u8>,
    /// Every byte received since the connection opened (for failure messages).
    seen: usize,
    addr: String,
}

impl RawConn {
    /// Connects to `addr` with `TCP_NODELAY`, so every `send` leaves at once.
    pub fn must_connect(addr: &str) -> RawConn {
        let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        stream.set_nodelay(true).expect("set TCP_NODELAY");
        RawConn {
            stream,
            pending: Vec::new(),
            seen: 0,
            addr: addr.to_string(),
        }
    }

    /// Writes all of `bytes`; panics on an I/O error.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("write {} bytes to {}: {e}", bytes.len(), self.addr));
    }

    /// Writes all of `bytes`, returning the error instead of panicking (the server may have
    /// closed the connection already).
    pub fn try_send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Reads once into `pending` within `deadline`. Returns `Ok(0)` at end of stream,
    /// `Err(TimedOut)` at the deadline.
    fn fill(&mut self, deadline: Instant) -> std::io::Result<usize> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ErrorKind::TimedOut.into());
        }
        self.stream.set_read_timeout(Some(left))?;
        let mut chunk = [0u8; 64 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(n) => {
                self.pending.extend_from_slice(&chunk[..n]);
                self.seen += n;
                Ok(n)
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                Err(ErrorKind::TimedOut.into())
            }
            Err(e) => Err(e),
        }
    }

    /// Reads exactly `n` bytes, or panics after `timeout` or at end of stream showing what came.
    pub fn must_read_bytes(&mut self, n: usize, timeout: Duration) -> Vec<u8> {
        let deadline = Instant::now() + timeout;
        while self.pending.len() < n {
            match self.fill(deadline) {
                Ok(0) => panic!(
                    "{}: connection closed after {} of {n} expected bytes: \"{}\"",
                    self.addr,
                    self.pending.len(),
                    escape(&self.pending)
                ),
                Ok(_) => {}
                Err(e) => panic!(
                    "{}: {e} waiting for {n} bytes; got {}: \"{}\"",
                    self.addr,
                    self.pending.len(),
                    escape(&self.pending)
                ),
            }
        }
        self.pending.drain(..n).collect()
    }

    /// Reads up to `n` bytes: returns early, with what came, when the connection closes or
    /// `timeout` passes.
    pub fn read_up_to(&mut self, n: usize, timeout: Duration) -> Vec<u8> {
        let deadline = Instant::now() + timeout;
        while self.pending.len() < n {
            match self.fill(deadline) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        let take = n.min(self.pending.len());
        self.pending.drain(..take).collect()
    }

    /// Reads one whole reply, or panics after `timeout` showing what came.
    pub fn must_read_reply(&mut self, timeout: Duration) -> Reply {
        let deadline = Instant::now() + timeout;
        loop {
            match parse_reply(&self.pending) {
                Ok(Some((reply, used))) => {
                    self.pending.drain(..used);
                    return reply;
                }
                Ok(None) => {}
                Err(e) => panic!(
                    "{}: malformed reply ({e}): \"{}\"",
                    self.addr,
                    escape(&self.pending)
                ),
            }
            match self.fill(deadline) {
                Ok(0) => panic!(
                    "{}: connection closed while waiting for a reply; have \"{}\"",
                    self.addr,
                    escape(&self.pending)
                ),
                Ok(_) => {}
                Err(e) => panic!(
                    "{}: {e} waiting for a reply; have \"{}\"",
                    self.addr,
                    escape(&self.pending)
                ),
            }
        }
    }

    /// Reads `n` whole replies.
    pub fn must_read_replies(&mut self, n: usize, timeout: Duration) -> Vec<Reply> {
        let deadline = Instant::now() + timeout;
        (0..n)
            .map(|_| self.must_read_reply(deadline.saturating_duration_since(Instant::now())))
            .collect()
    }

    /// Sends `args` as a multibulk and reads its reply.
    pub fn must_call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Reply {
        self.send(&multibulk(args));
        self.must_read_reply(REPLY_TIMEOUT)
    }

    /// Reads until the server closes the connection and returns every byte it sent first.
    /// Panics if it is still open after `timeout`.
    pub fn must_closed(&mut self, timeout: Duration) -> (Vec<u8>, Closed) {
        let deadline = Instant::now() + timeout;
        loop {
            match self.fill(deadline) {
                Ok(0) => return (std::mem::take(&mut self.pending), Closed::Eof),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                    return (std::mem::take(&mut self.pending), Closed::Reset)
                }
                Err(e) => panic!(
                    "{}: connection still open after {timeout:?} ({e}); it sent \"{}\"",
                    self.addr,
                    escape(&self.pending)
                ),
            }
        }
    }

    /// Reads for `wait` and returns whatever arrived (empty if nothing did), and whether the
    /// connection closed meanwhile.
    pub fn drain_for(&mut self, wait: Duration) -> (Vec<u8>, bool) {
        let deadline = Instant::now() + wait;
        let closed = loop {
            match self.fill(deadline) {
                Ok(0) => break true,
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::TimedOut => break false,
                Err(_) => break true,
            }
        };
        (std::mem::take(&mut self.pending), closed)
    }

    /// Bytes received but not yet read by the test.
    pub fn pending(&self) -> &[u8] {
        &self.pending
    }

    /// Checks, without waiting, whether any byte arrived that the test has not read.
    pub fn has_unread(&mut self) -> bool {
        if !self.pending.is_empty() {
            return true;
        }
        self.stream.set_nonblocking(true).expect("set_nonblocking");
        let mut chunk = [0u8; 4096];
        let got = match self.stream.read(&mut chunk) {
            Ok(n) => {
                self.pending.extend_from_slice(&chunk[..n]);
                n > 0
            }
            Err(_) => false,
        };
        self.stream.set_nonblocking(false).expect("set_nonblocking");
        got
    }
}

/// The text view: replies as their raw bytes (lossy UTF-8), for tests that compare exact
/// RESP2/RESP3 bytes with a real Redis.
impl RawConn {
    /// Sends one command (space-separated words) and returns its raw reply.
    pub fn call(&mut self, text: &str) -> String {
        self.send(&line(text));
        self.must_reply()
    }

    /// Sends one command given as arguments and returns its raw reply.
    pub fn call_args(&mut self, args: &[&[u8]]) -> String {
        self.send(&encode(args));
        self.must_reply()
    }

    /// Reads one whole reply and returns its bytes (lossy text), or panics after
    /// [`REPLY_TIMEOUT`] or at end of stream.
    pub fn must_reply(&mut self) -> String {
        let deadline = Instant::now() + REPLY_TIMEOUT;
        loop {
            match parse_reply(&self.pending) {
                Ok(Some((_, used))) => {
                    let reply: Vec<u8> = self.pending.drain(..used).collect();
                    return String::from_utf8_lossy(&reply).into_owned();
                }
                Ok(None) => {}
                Err(e) => panic!(
                    "{}: not a RESP reply ({e}): {:?}",
                    self.addr,
                    String::from_utf8_lossy(&self.pending)
                ),
            }
            match self.fill(deadline) {
                Ok(0) => panic!(
                    "connection closed mid-reply; have {:?}",
                    String::from_utf8_lossy(&self.pending)
                ),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::TimedOut => panic!(
                    "no whole reply within {REPLY_TIMEOUT:?}; have {:?}",
                    String::from_utf8_lossy(&self.pending)
                ),
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    /// Waits up to `within` for the server to close the connection, discarding anything it
    /// sends first. Returns how long it took and how many bytes came before the close, or None
    /// if the connection is still open.
    pub fn wait_closed(&mut self, within: Duration) -> Option<(Duration, usize)> {
        let start = Instant::now();
        let deadline = start + within;
        let mut received = self.pending.len();
        self.pending.clear();
        loop {
            match self.fill(deadline) {
                Ok(0) => return Some((start.elapsed(), received)),
                Ok(n) => {
                    received += n;
                    self.pending.clear();
                }
                Err(e) if e.kind() == ErrorKind::TimedOut => return None,
                // A reset also means the server closed it.
                Err(_) => return Some((start.elapsed(), received)),
            }
        }
    }
}
