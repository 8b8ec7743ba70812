//! A minimal RESP2 client for the binary's own work against a running node: `--join` sends
//! `RAFT.ADDNODE`, `redraft backup` reads `RAFT.BACKUP`. One command at a time, no pipelining.
//!
//! Owns nothing but a connection; replies are decoded with `redis-protocol`'s RESP2 decoder,
//! and a reply larger than [`MAX_REPLY`] is refused before it is buffered whole.

use std::time::Duration;

use redis_protocol::resp2::decode::decode;
pub use redis_protocol::resp2::types::OwnedFrame as Reply;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest reply accepted (a backup of the whole keyspace travels as one bulk string).
pub const MAX_REPLY: usize = 4 * 1024 * 1024 * 1024 - 1;

/// One connection to a node's Redis port.
pub struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
    addr: String,
}

impl Client {
    /// Connects to `addr` ("host:port") within `timeout`.
    pub async fn connect(addr: &str, timeout: Duration) -> std::io::Result<Self> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("connect {addr}: timed out"),
                )
            })??;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            buf: Vec::new(),
            addr: addr.to_string(),
        })
    }

    /// Sends `args` as one command and returns its reply. `progress` is called with the number
    /// of bytes received so far (for a progress bar on large replies).
    pub async fn call(
        &mut self,
        args: &[&[u8]],
        mut progress: impl FnMut(usize),
    ) -> std::io::Result<Reply> {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        self.stream.write_all(&out).await?;
        let mut chunk = vec![0u8; 256 * 1024];
        loop {
            match decode(&self.buf) {
                Ok(Some((frame, used))) => {
                    self.buf.drain(..used);
                    return Ok(frame);
                }
                Ok(None) => {}
                Err(e) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("{}: bad reply: {e:?}", self.addr),
                    ))
                }
            }
            if self.buf.len() > MAX_REPLY {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: reply over {MAX_REPLY} bytes", self.addr),
                ));
            }
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("{}: connection closed before the reply", self.addr),
                ));
            }
            self.buf.extend_from_slice(&chunk[..n]);
            progress(self.buf.len());
        }
    }
}
