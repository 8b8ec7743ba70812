//! The async RESP client connection of the jepsen harness and the load generator: a reply
//! decoder over a byte buffer (resumable: it returns `None` until a whole reply is buffered)
//! and a pipelining TCP connection.
//!
//! Our own rather than the `redis` crate because its callers must see exactly what happened on
//! the wire: the raw error text (its first words decide fail vs. info, jepsen's SEMANTICS.md
//! §2), whether a request was written before an I/O error, and no hidden reconnect, retry or
//! connection pool (which would turn one invocation into two, or add client-side costs that
//! differ between the systems a benchmark compares). Pub/sub pushes and stream replies arrive
//! as plain values.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::encode::encode;

/// A decoded reply (RESP3 maps, sets and pushes are read as arrays, booleans as integers,
/// doubles and big numbers as simple strings, in case a server sends one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    /// A bulk string; `None` is nil (also RESP3 `_`).
    Bulk(Option<Vec<u8>>),
    /// An array (also a RESP3 map, flattened); `None` is a nil array.
    Array(Option<Vec<Reply>>),
}

impl Reply {
    /// The reply's text if it is a simple or bulk string.
    pub fn text(&self) -> Option<String> {
        match self {
            Reply::Simple(s) => Some(s.clone()),
            Reply::Bulk(Some(b)) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        }
    }

    /// The items if the reply is a (non-nil) array.
    pub fn items(&self) -> Option<&[Reply]> {
        match self {
            Reply::Array(Some(v)) => Some(v),
            _ => None,
        }
    }
}

/// Why a request got no reply.
#[derive(Debug)]
pub enum IoError {
    /// Nothing was written: the request cannot have reached the server.
    NotSent(String),
    /// The request was (perhaps partly) written; the reply never came.
    AfterSend(String),
}

impl std::fmt::Display for IoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IoError::NotSent(e) => write!(f, "not sent: {e}"),
            IoError::AfterSend(e) => write!(f, "after send: {e}"),
        }
    }
}

impl std::error::Error for IoError {}

/// Largest bulk string or array accepted from a server.
const MAX_LEN: i64 = 512 * 1024 * 1024;

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Decodes one reply from the front of `buf`: `Ok(Some((reply, bytes used)))`, `Ok(None)` if
/// the reply is not complete yet, or an error for bytes that are not RESP.
pub fn decode(buf: &[u8]) -> io::Result<Option<(Reply, usize)>> {
    decode_at(buf, 0, 0)
}

fn line(buf: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    let rest = buf.get(pos..)?;
    let i = rest.windows(2).position(|w| w == b"\r\n")?;
    Some((&rest[..i], pos + i + 2))
}

fn int(s: &[u8]) -> io::Result<i64> {
    std::str::from_utf8(s)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(format!("bad integer {:?}", String::from_utf8_lossy(s))))
}

fn decode_at(buf: &[u8], pos: usize, depth: usize) -> io::Result<Option<(Reply, usize)>> {
    if depth > 64 {
        return Err(bad("reply nested deeper than 64 levels"));
    }
    let Some((l, next)) = line(buf, pos) else {
        return Ok(None);
    };
    let (kind, rest) = match l.split_first() {
        Some((k, r)) => (*k, r),
        None => return Err(bad("empty reply line")),
    };
    let text = || String::from_utf8_lossy(rest).into_owned();
    Ok(Some(match kind {
        b'+' => (Reply::Simple(text()), next),
        b'-' => (Reply::Error(text()), next),
        b':' => (Reply::Int(int(rest)?), next),
        b'_' => (Reply::Bulk(None), next),
        b'#' => (Reply::Int((rest == b"t") as i64), next),
        b'(' | b',' => (Reply::Simple(text()), next),
        b'$' | b'=' => {
            let n = int(rest)?;
            if n < 0 {
                (Reply::Bulk(None), next)
            } else if n > MAX_LEN {
                return Err(bad(format!("bulk string of {n} bytes")));
            } else {
                let end = next + n as usize;
                if buf.len() < end + 2 {
                    return Ok(None);
                }
                if &buf[end..end + 2] != b"\r\n" {
                    return Err(bad("bulk string without CRLF"));
                }
                (Reply::Bulk(Some(buf[next..end].to_vec())), end + 2)
            }
        }
        b'*' | b'%' | b'~' | b'>' => {
            let n = int(rest)?;
            if n < 0 {
                return Ok(Some((Reply::Array(None), next)));
            }
            if n > MAX_LEN {
                return Err(bad(format!("array of {n} items")));
            }
            let n = if kind == b'%' { n * 2 } else { n } as usize;
            let mut items = Vec::with_capacity(n.min(1024));
            let mut at = next;
            for _ in 0..n {
                match decode_at(buf, at, depth + 1)? {
                    Some((item, used)) => {
                        items.push(item);
                        at = used;
                    }
                    None => return Ok(None),
                }
            }
            (Reply::Array(Some(items)), at)
        }
        other => return Err(bad(format!("unknown reply type byte {:?}", other as char))),
    }))
}

/// Reads the next reply from `r` into `buf`, whose first `*start` bytes are already consumed.
/// The end of the stream before a whole reply is an error.
async fn read_reply<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
    start: &mut usize,
) -> io::Result<Reply> {
    loop {
        if let Some((reply, used)) = decode(&buf[*start..])? {
            *start += used;
            if *start == buf.len() {
                buf.clear();
                *start = 0;
            }
            return Ok(reply);
        }
        if *start > 0 {
            buf.drain(..*start);
            *start = 0;
        }
        let mut chunk = [0u8; 16 * 1024];
        let n = r.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed by the server",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Whether the frame at the front of `buf` is a RESP3 push (`>`): an out-of-band message
/// (client tracking's `invalidate`, pub/sub) rather than the reply to a request.
pub fn is_push(buf: &[u8]) -> bool {
    buf.first() == Some(&b'>')
}

/// One client connection: requests are written whole, replies decoded from a read buffer. A
/// failed or timed-out bounded call poisons it: the caller must drop it.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Bytes of `buf` already consumed by decoded replies.
    start: usize,
}

impl Conn {
    /// Connects to `addr` (TCP_NODELAY, as Redis clients do), giving up after `timeout`.
    pub async fn connect(addr: &str, timeout: Duration) -> Result<Conn, IoError> {
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                Ok(Conn {
                    stream,
                    buf: Vec::with_capacity(16 * 1024),
                    start: 0,
                })
            }
            Ok(Err(e)) => Err(IoError::NotSent(format!("connect {addr}: {e}"))),
            Err(_) => Err(IoError::NotSent(format!("connect {addr}: timed out"))),
        }
    }

    /// Writes already-encoded requests (one or a pipeline).
    pub async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// Reads the next reply, waiting as long as it takes.
    pub async fn read(&mut self) -> io::Result<Reply> {
        read_reply(&mut self.stream, &mut self.buf, &mut self.start).await
    }

    /// Reads the next frame, waiting as long as it takes: a push (RESP3 `>`, its items as an
    /// array) is `(frame, true)`, a reply `(frame, false)`.
    pub async fn read_frame(&mut self) -> io::Result<(Reply, bool)> {
        loop {
            if self.start < self.buf.len() {
                let push = is_push(&self.buf[self.start..]);
                if let Some((reply, used)) = decode(&self.buf[self.start..])? {
                    self.consume(used);
                    return Ok((reply, push));
                }
            }
            self.fill().await?;
        }
    }

    /// The frames already received, without waiting: reads what the socket has ready and
    /// decodes every whole frame in it (see [`Conn::read_frame`]). An end of stream is an
    /// error, so a caller learns that the server went away.
    pub fn read_ready(&mut self) -> io::Result<Vec<(Reply, bool)>> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match self.stream.try_read(&mut chunk) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "connection closed by the server",
                    ))
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        let mut out = Vec::new();
        while self.start < self.buf.len() {
            let push = is_push(&self.buf[self.start..]);
            match decode(&self.buf[self.start..])? {
                Some((reply, used)) => {
                    self.consume(used);
                    out.push((reply, push));
                }
                None => break,
            }
        }
        Ok(out)
    }

    fn consume(&mut self, used: usize) {
        self.start += used;
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
    }

    /// Reads more bytes into the buffer (compacting it first); the end of the stream is an
    /// error.
    async fn fill(&mut self) -> io::Result<()> {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed by the server",
            ));
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    /// Sends one command and reads its reply, waiting as long as it takes.
    pub async fn request(&mut self, args: &[&[u8]]) -> io::Result<Reply> {
        self.send(&encode(args)).await?;
        self.read().await
    }

    /// Sends one command and fails unless the reply is not an error; the error names the
    /// command.
    pub async fn request_ok(&mut self, args: &[&[u8]]) -> io::Result<Reply> {
        match self.request(args).await? {
            Reply::Error(e) => Err(io::Error::other(format!(
                "{}: {e}",
                String::from_utf8_lossy(args[0])
            ))),
            r => Ok(r),
        }
    }

    /// Sends one command and reads its reply, all within `timeout`.
    pub async fn call(&mut self, args: &[&[u8]], timeout: Duration) -> Result<Reply, IoError> {
        let mut replies = self.pipeline(&[args.to_vec()], timeout).await?;
        Ok(replies.pop().expect("one reply"))
    }

    /// Sends several commands at once and reads their replies, all within `timeout`.
    pub async fn pipeline(
        &mut self,
        cmds: &[Vec<&[u8]>],
        timeout: Duration,
    ) -> Result<Vec<Reply>, IoError> {
        let mut bytes = Vec::new();
        for c in cmds {
            bytes.extend(encode(c));
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let wrote = tokio::time::timeout_at(deadline, async {
            self.stream.write_all(&bytes).await?;
            self.stream.flush().await
        })
        .await;
        match wrote {
            Ok(Ok(())) => {}
            // Part of the request may have left: not "not sent".
            Ok(Err(e)) => return Err(IoError::AfterSend(format!("write: {e}"))),
            Err(_) => return Err(IoError::AfterSend("timed out writing".into())),
        }
        let mut out = Vec::with_capacity(cmds.len());
        for _ in cmds {
            match tokio::time::timeout_at(deadline, self.read()).await {
                Ok(Ok(r)) => out.push(r),
                Ok(Err(e)) => return Err(IoError::AfterSend(format!("read: {e}"))),
                Err(_) => return Err(IoError::AfterSend(format!("timed out after {timeout:?}"))),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
#[path = "conn_test.rs"]
mod tests;
