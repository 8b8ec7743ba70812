//! A small RESP2 client: command encoding, a reply decoder over a byte buffer (resumable: it
//! returns `None` until a whole reply is buffered), and a pipelining TCP connection.
//!
//! Our own rather than a client library so every system sees exactly the same bytes and the
//! same client-side costs (no hidden retries, no connection pool), and so pub/sub pushes and
//! stream replies arrive as plain values.

use std::time::Duration;

use anyhow::{bail, Context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A decoded reply (RESP3 maps and pushes are read as arrays, in case a server sends one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    /// A bulk string; `None` is nil.
    Bulk(Option<Vec<u8>>),
    /// An array; `None` is a nil array.
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

/// Largest bulk string or array accepted from a server.
const MAX_LEN: i64 = 512 * 1024 * 1024;

/// Appends the encoding of `args` as a RESP array of bulk strings to `out`.
pub fn encode_into(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.push(b'*');
    out.extend_from_slice(args.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in args {
        out.push(b'$');
        out.extend_from_slice(a.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// Returns the encoding of `args` as a RESP array of bulk strings.
pub fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_into(&mut out, args);
    out
}

/// Decodes one reply from the front of `buf`: `Ok(Some((reply, bytes used)))`, `Ok(None)` if
/// the reply is not complete yet, or an error for bytes that are not RESP.
pub fn decode(buf: &[u8]) -> anyhow::Result<Option<(Reply, usize)>> {
    decode_at(buf, 0, 0)
}

fn line(buf: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    let rest = buf.get(pos..)?;
    let i = rest.windows(2).position(|w| w == b"\r\n")?;
    Some((&rest[..i], pos + i + 2))
}

fn int(s: &[u8]) -> anyhow::Result<i64> {
    std::str::from_utf8(s)
        .ok()
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad integer {:?}", String::from_utf8_lossy(s)))
}

fn decode_at(buf: &[u8], pos: usize, depth: usize) -> anyhow::Result<Option<(Reply, usize)>> {
    if depth > 64 {
        bail!("reply nested deeper than 64 levels");
    }
    let Some((l, next)) = line(buf, pos) else {
        return Ok(None);
    };
    let (kind, rest) = match l.split_first() {
        Some((k, r)) => (*k, r),
        None => bail!("empty reply line"),
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
                bail!("bulk string of {n} bytes");
            } else {
                let end = next + n as usize;
                if buf.len() < end + 2 {
                    return Ok(None);
                }
                if &buf[end..end + 2] != b"\r\n" {
                    bail!("bulk string without CRLF");
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
                bail!("array of {n} items");
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
        other => bail!("unknown reply type byte {:?}", other as char),
    }))
}

/// One client connection: requests are written whole, replies decoded from a read buffer.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Bytes of `buf` already consumed by decoded replies.
    start: usize,
}

impl Conn {
    /// Connects to `addr` (TCP_NODELAY, as Redis clients do), giving up after `timeout`.
    pub async fn connect(addr: &str, timeout: Duration) -> anyhow::Result<Conn> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .with_context(|| format!("connect to {addr}: timed out"))?
            .with_context(|| format!("connect to {addr}"))?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(16 * 1024),
            start: 0,
        })
    }

    /// Writes already-encoded requests (one or a pipeline).
    pub async fn send(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.stream.write_all(bytes).await?;
        Ok(())
    }

    /// Reads the next reply.
    pub async fn read(&mut self) -> anyhow::Result<Reply> {
        loop {
            if let Some((reply, used)) = decode(&self.buf[self.start..])? {
                self.start += used;
                if self.start == self.buf.len() {
                    self.buf.clear();
                    self.start = 0;
                }
                return Ok(reply);
            }
            if self.start > 0 {
                self.buf.drain(..self.start);
                self.start = 0;
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                bail!("connection closed by the server");
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Sends one command and reads its reply.
    pub async fn call(&mut self, args: &[&[u8]]) -> anyhow::Result<Reply> {
        self.send(&encode(args)).await?;
        self.read().await
    }

    /// Sends one command and fails unless the reply is not an error.
    pub async fn call_ok(&mut self, args: &[&[u8]]) -> anyhow::Result<Reply> {
        match self.call(args).await? {
            Reply::Error(e) => bail!("{}: {e}", String::from_utf8_lossy(args[0])),
            r => Ok(r),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_bulk_arrays() {
        assert_eq!(
            encode(&[b"SET", b"k", b"hello"]),
            b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n".to_vec()
        );
        assert_eq!(
            encode(&[b"GET", b""]),
            b"*2\r\n$3\r\nGET\r\n$0\r\n\r\n".to_vec()
        );
    }

    #[test]
    fn decodes_every_reply_type() {
        let cases: Vec<(&[u8], Reply)> = vec![
            (b"+OK\r\n", Reply::Simple("OK".into())),
            (b"-ERR nope\r\n", Reply::Error("ERR nope".into())),
            (b":-42\r\n", Reply::Int(-42)),
            (b"$5\r\nhe\r\no\r\n", Reply::Bulk(Some(b"he\r\no".to_vec()))),
            (b"$-1\r\n", Reply::Bulk(None)),
            (b"*-1\r\n", Reply::Array(None)),
            (b"_\r\n", Reply::Bulk(None)),
            (
                b"*2\r\n$1\r\na\r\n*1\r\n:1\r\n",
                Reply::Array(Some(vec![
                    Reply::Bulk(Some(b"a".to_vec())),
                    Reply::Array(Some(vec![Reply::Int(1)])),
                ])),
            ),
            (
                b"%1\r\n+k\r\n:2\r\n",
                Reply::Array(Some(vec![Reply::Simple("k".into()), Reply::Int(2)])),
            ),
        ];
        for (bytes, want) in cases {
            let (got, used) = decode(bytes).unwrap().unwrap();
            assert_eq!(got, want, "{:?}", String::from_utf8_lossy(bytes));
            assert_eq!(used, bytes.len());
        }
    }

    /// A reply split at any byte is incomplete until its last byte arrives, and two replies in
    /// one buffer (a pipeline) are decoded one after the other.
    #[test]
    fn decodes_partial_and_pipelined_input() {
        let whole = b"*2\r\n$3\r\nfoo\r\n:7\r\n+OK\r\n";
        let first_len = whole.len() - 5;
        for cut in 0..first_len {
            assert_eq!(decode(&whole[..cut]).unwrap(), None, "cut at {cut}");
        }
        let (first, used) = decode(whole).unwrap().unwrap();
        assert_eq!(used, first_len);
        assert_eq!(first.items().unwrap()[0].text().unwrap(), "foo");
        let (second, _) = decode(&whole[used..]).unwrap().unwrap();
        assert_eq!(second, Reply::Simple("OK".into()));
    }

    #[test]
    fn refuses_garbage() {
        assert!(decode(b"?what\r\n").is_err());
        assert!(decode(b":12x\r\n").is_err());
        assert!(decode(b"$3\r\nabcXY").is_err());
    }

    #[tokio::test]
    async fn pipelines_over_a_socket() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut got = Vec::new();
            let mut chunk = [0u8; 256];
            while got.len() < 2 * encode(&[b"PING"]).len() {
                let n = s.read(&mut chunk).await.unwrap();
                got.extend_from_slice(&chunk[..n]);
            }
            // Both replies in two writes, the first split inside a bulk string.
            s.write_all(b"$4\r\nPO").await.unwrap();
            s.flush().await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
            s.write_all(b"NG\r\n+PONG\r\n").await.unwrap();
            got
        });
        let mut c = Conn::connect(&addr, Duration::from_secs(5)).await.unwrap();
        let mut req = Vec::new();
        encode_into(&mut req, &[b"PING"]);
        encode_into(&mut req, &[b"PING"]);
        c.send(&req).await.unwrap();
        assert_eq!(c.read().await.unwrap().text().unwrap(), "PONG");
        assert_eq!(c.read().await.unwrap(), Reply::Simple("PONG".into()));
        assert_eq!(server.await.unwrap(), req);
    }
}
