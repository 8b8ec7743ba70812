//! A raw RESP client for tests that need the exact bytes of a reply (RESP2 or RESP3) or the
//! moment a server closes a connection: it sends commands as multibulk and reads back exactly
//! one reply at a time, with every wait bounded.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// How long one reply may take.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

pub struct RawClient {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

/// Encodes `args` as one RESP multibulk command.
pub fn command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Splits a command line on spaces (no quoting) into a multibulk command.
pub fn line(text: &str) -> Vec<u8> {
    let args: Vec<&[u8]> = text.split(' ').map(str::as_bytes).collect();
    command(&args)
}

impl RawClient {
    /// Connects to `addr`, or panics saying where.
    pub fn must_connect(addr: &str) -> RawClient {
        let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        stream.set_nodelay(true).expect("nodelay");
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("read timeout");
        RawClient {
            stream,
            buf: Vec::new(),
        }
    }

    /// Sends raw bytes.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// Sends one command (space-separated words) and returns its raw reply.
    pub fn call(&mut self, text: &str) -> String {
        self.send(&line(text));
        self.must_reply()
    }

    /// Sends one command given as arguments and returns its raw reply.
    pub fn call_args(&mut self, args: &[&[u8]]) -> String {
        self.send(&command(args));
        self.must_reply()
    }

    /// Reads one whole reply and returns its bytes (lossy text), or panics after
    /// [`REPLY_TIMEOUT`] or at end of stream.
    pub fn must_reply(&mut self) -> String {
        let deadline = Instant::now() + REPLY_TIMEOUT;
        loop {
            if let Some(n) = reply_len(&self.buf) {
                let reply: Vec<u8> = self.buf.drain(..n).collect();
                return String::from_utf8_lossy(&reply).into_owned();
            }
            assert!(
                Instant::now() < deadline,
                "no whole reply within {REPLY_TIMEOUT:?}; have {:?}",
                String::from_utf8_lossy(&self.buf)
            );
            match self.read_some() {
                Ok(0) => panic!(
                    "connection closed mid-reply; have {:?}",
                    String::from_utf8_lossy(&self.buf)
                ),
                Ok(_) => {}
                Err(e) if is_timeout(&e) => {}
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    /// Waits up to `within` for the server to close the connection, discarding anything it
    /// sends first. Returns how long it took and how many bytes came before the close, or None
    /// if the connection is still open.
    pub fn wait_closed(&mut self, within: Duration) -> Option<(Duration, usize)> {
        let start = Instant::now();
        let mut received = self.buf.len();
        self.buf.clear();
        while start.elapsed() < within {
            match self.read_some() {
                Ok(0) => return Some((start.elapsed(), received)),
                Ok(n) => {
                    received += n;
                    self.buf.clear();
                }
                Err(e) if is_timeout(&e) => {}
                // A reset also means the server closed it.
                Err(_) => return Some((start.elapsed(), received)),
            }
        }
        None
    }

    fn read_some(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 64 * 1024];
        let n = self.stream.read(&mut chunk)?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Returns the length of the first whole RESP2/RESP3 reply in `buf`, if it is complete.
pub fn reply_len(buf: &[u8]) -> Option<usize> {
    let (&kind, _) = buf.split_first()?;
    let end = buf.windows(2).position(|w| w == b"\r\n")?;
    let header = std::str::from_utf8(&buf[1..end]).ok()?;
    let after = end + 2;
    match kind {
        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => Some(after),
        b'$' | b'=' | b'!' => {
            let n: i64 = header.parse().ok()?;
            if n < 0 {
                return Some(after);
            }
            let total = after + n as usize + 2;
            (buf.len() >= total).then_some(total)
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let n: i64 = header.parse().ok()?;
            let items = if kind == b'%' || kind == b'|' {
                n * 2
            } else {
                n
            };
            let mut at = after;
            for _ in 0..items.max(0) {
                at += reply_len(&buf[at..])?;
            }
            Some(at)
        }
        _ => panic!("not a RESP reply: {:?}", String::from_utf8_lossy(buf)),
    }
}
