//! A minimal RESP client connection: encodes commands as arrays of bulk strings, decodes RESP2
//! replies (and the few RESP3 types a server might send).
//!
//! Our own rather than the `redis` crate because the harness must see exactly what happened on
//! the wire: the raw error text (its first words decide fail vs. info, SEMANTICS.md §2), whether
//! a request was written before an I/O error, and no hidden reconnect or retry (which would turn
//! one invocation into two). It is small enough to test completely here.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// A decoded reply.
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

/// Largest bulk string or array accepted from a server (the harness's values are tiny).
const MAX_LEN: i64 = 64 * 1024 * 1024;

/// Encodes `args` as a RESP array of bulk strings.
pub fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Reads one reply from `r`.
pub async fn read_reply<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R) -> std::io::Result<Reply> {
    let mut stack: Vec<(Vec<Reply>, usize)> = Vec::new();
    loop {
        let mut reply = read_one(r).await?;
        // Containers are read iteratively: push, then fill from the following replies.
        loop {
            if let ReplyOrOpen::Open(n) = reply {
                if n == 0 {
                    reply = ReplyOrOpen::Done(Reply::Array(Some(Vec::new())));
                } else {
                    stack.push((Vec::with_capacity(n.min(1024)), n));
                    break;
                }
            }
            let ReplyOrOpen::Done(done) = reply else {
                unreachable!()
            };
            match stack.last_mut() {
                None => return Ok(done),
                Some((items, n)) => {
                    items.push(done);
                    if items.len() < *n {
                        break;
                    }
                    let (items, _) = stack.pop().expect("non-empty");
                    reply = ReplyOrOpen::Done(Reply::Array(Some(items)));
                }
            }
        }
    }
}

enum ReplyOrOpen {
    Done(Reply),
    /// An array (or map, as 2n items) of this many items follows.
    Open(usize),
}

fn bad(msg: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.into())
}

async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R) -> std::io::Result<String> {
    let mut line = Vec::new();
    let n = r.read_until(b'\n', &mut line).await?;
    if n == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "connection closed by the server",
        ));
    }
    if !line.ends_with(b"\r\n") {
        return Err(bad("reply line without CRLF"));
    }
    line.truncate(line.len() - 2);
    String::from_utf8(line).map_err(|_| bad("reply line is not UTF-8"))
}

async fn read_one<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R) -> std::io::Result<ReplyOrOpen> {
    let line = read_line(r).await?;
    let (kind, rest) = line.split_at(line.len().min(1));
    let int = |s: &str| {
        s.parse::<i64>()
            .map_err(|_| bad(format!("bad length {s:?}")))
    };
    Ok(ReplyOrOpen::Done(match kind {
        "+" => Reply::Simple(rest.to_string()),
        "-" => Reply::Error(rest.to_string()),
        ":" => Reply::Int(int(rest)?),
        "_" => Reply::Bulk(None),
        "#" => Reply::Int((rest == "t") as i64),
        "$" => {
            let n = int(rest)?;
            if n < 0 {
                Reply::Bulk(None)
            } else if n > MAX_LEN {
                return Err(bad(format!("bulk of {n} bytes")));
            } else {
                let mut buf = vec![0; n as usize + 2];
                r.read_exact(&mut buf).await?;
                if !buf.ends_with(b"\r\n") {
                    return Err(bad("bulk without CRLF"));
                }
                buf.truncate(n as usize);
                Reply::Bulk(Some(buf))
            }
        }
        "*" | "%" => {
            let n = int(rest)?;
            if n < 0 {
                Reply::Array(None)
            } else if n > MAX_LEN {
                return Err(bad(format!("array of {n} items")));
            } else {
                let n = if kind == "%" { 2 * n } else { n } as usize;
                return Ok(ReplyOrOpen::Open(n));
            }
        }
        _ => return Err(bad(format!("unknown reply type {line:?}"))),
    }))
}

/// One client connection. A failed or timed-out request poisons it: the caller must drop it.
pub struct Conn {
    stream: BufReader<TcpStream>,
}

impl Conn {
    /// Connects within `timeout`.
    pub async fn connect(addr: &str, timeout: Duration) -> Result<Conn, IoError> {
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                let _ = s.set_nodelay(true);
                Ok(Conn {
                    stream: BufReader::new(s),
                })
            }
            Ok(Err(e)) => Err(IoError::NotSent(format!("connect {addr}: {e}"))),
            Err(_) => Err(IoError::NotSent(format!("connect {addr}: timed out"))),
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
            self.stream.get_mut().write_all(&bytes).await?;
            self.stream.get_mut().flush().await
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
            match tokio::time::timeout_at(deadline, read_reply(&mut self.stream)).await {
                Ok(Ok(r)) => out.push(r),
                Ok(Err(e)) => return Err(IoError::AfterSend(format!("read: {e}"))),
                Err(_) => return Err(IoError::AfterSend(format!("timed out after {timeout:?}"))),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn decode(bytes: &[u8]) -> std::io::Result<Reply> {
        let mut r = BufReader::new(bytes);
        read_reply(&mut r).await
    }

    #[tokio::test]
    async fn decodes_every_reply_type() {
        let s = |x: &str| Reply::Bulk(Some(x.as_bytes().to_vec()));
        let cases: Vec<(&[u8], Reply)> = vec![
            (b"+OK\r\n", Reply::Simple("OK".into())),
            (
                b"-TRYAGAIN no leader\r\n",
                Reply::Error("TRYAGAIN no leader".into()),
            ),
            (b":-12\r\n", Reply::Int(-12)),
            (b"$3\r\na\r\n\r\n", s("a\r\n")),
            (b"$0\r\n\r\n", s("")),
            (b"$-1\r\n", Reply::Bulk(None)),
            (b"_\r\n", Reply::Bulk(None)),
            (b"*-1\r\n", Reply::Array(None)),
            (b"*0\r\n", Reply::Array(Some(vec![]))),
            (
                b"*2\r\n*1\r\n:1\r\n$1\r\nx\r\n",
                Reply::Array(Some(vec![Reply::Array(Some(vec![Reply::Int(1)])), s("x")])),
            ),
            (
                b"%1\r\n+value\r\n$1\r\n7\r\n",
                Reply::Array(Some(vec![Reply::Simple("value".into()), s("7")])),
            ),
            (
                b"*3\r\n*0\r\n*1\r\n*0\r\n:5\r\n",
                Reply::Array(Some(vec![
                    Reply::Array(Some(vec![])),
                    Reply::Array(Some(vec![Reply::Array(Some(vec![]))])),
                    Reply::Int(5),
                ])),
            ),
        ];
        for (bytes, want) in cases {
            assert_eq!(
                decode(bytes).await.unwrap(),
                want,
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    #[tokio::test]
    async fn rejects_malformed_and_truncated_replies() {
        for bytes in [
            &b"?x\r\n"[..],
            b"+OK\n",
            b"$5\r\nab\r\n",
            b":x\r\n",
            b"",
            b"*2\r\n:1\r\n",
        ] {
            assert!(
                decode(bytes).await.is_err(),
                "{:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    #[test]
    fn encodes_bulk_arrays() {
        assert_eq!(
            encode(&[b"SET", b"k", b""]),
            b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n"
        );
    }

    #[tokio::test]
    async fn talks_to_a_fake_server_and_times_out() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0; 1024];
            let n = s.read(&mut buf).await.unwrap();
            assert!(buf[..n].starts_with(b"*1\r\n$4\r\nPING"));
            s.write_all(b"+PONG\r\n").await.unwrap();
            // The second request is never answered.
            let _ = s.read(&mut buf).await;
            tokio::time::sleep(Duration::from_secs(5)).await;
        });
        let mut c = Conn::connect(&addr, Duration::from_secs(1)).await.unwrap();
        let r = c.call(&[b"PING"], Duration::from_secs(1)).await.unwrap();
        assert_eq!(r, Reply::Simple("PONG".into()));
        let err = c
            .call(&[b"GET", b"k"], Duration::from_millis(100))
            .await
            .unwrap_err();
        assert!(matches!(err, IoError::AfterSend(_)), "{err}");
        // Nobody listens on port 1: nothing can be sent.
        let err = Conn::connect("127.0.0.1:1", Duration::from_secs(1))
            .await
            .err()
            .unwrap();
        assert!(matches!(err, IoError::NotSent(_)), "{err}");
    }
}
