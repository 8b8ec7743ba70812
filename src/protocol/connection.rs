//! Owns one client socket's buffers, in the style of mini-redis `src/connection.rs`: it reads
//! bytes until a whole command is framed, queues encoded replies, and writes them in one go. It
//! does not decide what a command means, when to close, or how to answer a framing error; the
//! session does.
//!
//! Pipelining: a client may send many commands in one packet. The session takes the first with
//! [`Connection::read_command`], the rest with [`Connection::try_next_buffered`] until it returns
//! `None`, queues every reply with [`Connection::write_frame`], and calls [`Connection::flush`]
//! once, so N pipelined commands cost one read and one write.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::framer::{FrameError, Framer, Limits};
use super::obuf::ReplyBuffer;
use super::reply::{encode_pieces, Frame, Protocol};

/// Spare read capacity kept before each read, and the initial size of both buffers.
const READ_CHUNK: usize = 16 * 1024;

/// The most the read buffer grows by in one step, whatever length a client declares: a bulk
/// announced as 500 MB is buffered as it arrives, never allocated on the client's word.
const MAX_UP_FRONT: usize = 1024 * 1024;

/// How much [`Connection::read_ahead`] reserves per read.
const READ_AHEAD_STEP: usize = 512;

/// The most unframed input [`Connection::read_ahead`] buffers.
pub const MAX_READ_AHEAD: usize = 1024 * 1024;

/// A buffered RESP connection over any async byte stream.
pub struct Connection<S> {
    stream: S,
    /// Bytes read but not yet framed. Framed commands are split off it without copying, so an
    /// argument may keep a chunk of this buffer alive until the command drops it.
    rbuf: BytesMut,
    /// Scan state for the frame at the front of `rbuf`; only `rbuf` is ever given to it.
    framer: Framer,
    /// Encoded replies not yet written; `flush` sends them in one `write_all`.
    wbuf: BytesMut,
    /// How Redis would hold `wbuf`'s replies (the output buffer limit, `CLIENT LIST`).
    obuf: ReplyBuffer,
    limits: Limits,
    /// The reply protocol; `HELLO 3` sets it to RESP3.
    pub proto: Protocol,
    /// Nothing has been read yet (TlsHandshakeRefused looks at the first byte).
    fresh: bool,
}

/// The first byte of a TLS handshake record: never the start of a RESP command.
pub const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// Why a connection cannot go on reading commands.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectionError {
    /// The client broke the protocol: reply `-ERR <text>`, flush, close.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The socket failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// **TlsHandshakeRefused.** The client's first byte opens a TLS handshake: a TLS client on
    /// the plain-text port. It could not read a RESP error, so the connection just closes
    /// (and the server logs why).
    #[error("a TLS handshake on the plain-text port")]
    TlsOnPlainPort,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    /// Wraps `stream`; replies start as RESP2.
    pub fn new(stream: S, limits: Limits) -> Self {
        Connection {
            stream,
            rbuf: BytesMut::with_capacity(READ_CHUNK),
            framer: Framer::new(),
            wbuf: BytesMut::with_capacity(READ_CHUNK),
            obuf: ReplyBuffer::new(std::time::Instant::now()),
            limits,
            proto: Protocol::default(),
            fresh: true,
        }
    }

    /// Returns the next command: from the buffer if one is complete, else after reading more.
    ///
    /// Returns `Ok(None)` on end of stream, also when it cuts a command short (Redis just closes).
    /// Cancel-safe: if the future is dropped, no input is lost and the next call resumes.
    pub async fn read_command(&mut self) -> Result<Option<Vec<Bytes>>, ConnectionError> {
        loop {
            if let Some(argv) = self.try_next_buffered()? {
                return Ok(Some(argv));
            }
            self.reserve_for_read();
            if self.stream.read_buf(&mut self.rbuf).await? == 0 {
                return Ok(None);
            }
            if std::mem::take(&mut self.fresh) && self.rbuf.first() == Some(&TLS_HANDSHAKE_RECORD) {
                return Err(ConnectionError::TlsOnPlainPort);
            }
        }
    }

    /// Reads more input into the buffer without framing it (the session watches a blocked
    /// client's socket with it). Returns the bytes read, 0 at end of stream. Cancel-safe.
    /// Stops reading (pending forever) once [`MAX_READ_AHEAD`] bytes wait unframed, so a
    /// client cannot grow the buffer while its command blocks.
    pub async fn read_ahead(&mut self) -> std::io::Result<usize> {
        if self.rbuf.len() >= MAX_READ_AHEAD {
            return std::future::pending().await;
        }
        // A small step: a blocked client usually sends nothing, so its buffer stays small.
        self.rbuf.reserve(READ_AHEAD_STEP);
        self.stream.read_buf(&mut self.rbuf).await
    }

    /// Gives back the memory of empty buffers (a command is about to block for long): an
    /// idle blocked client then holds no buffer. The next read or reply allocates again.
    pub fn release_idle_buffers(&mut self) {
        if self.rbuf.is_empty() {
            self.rbuf = BytesMut::new();
        }
        if self.wbuf.is_empty() {
            self.wbuf = BytesMut::new();
        }
    }

    /// Sets whether the client still has to authenticate, which applies the far smaller input
    /// caps of UnauthenticatedCaps (`framer.rs`) to the commands framed from now on.
    pub fn set_unauthenticated(&mut self, unauthenticated: bool) {
        self.limits.unauthenticated = unauthenticated;
    }

    /// Returns a command already complete in the buffer, without reading.
    pub fn try_next_buffered(&mut self) -> Result<Option<Vec<Bytes>>, ConnectionError> {
        Ok(self.framer.parse(&mut self.rbuf, &self.limits)?)
    }

    /// Appends the encoding of `frame` (in `self.proto`) to the output buffer; nothing is sent.
    pub fn write_frame(&mut self, frame: &Frame) {
        let obuf = &mut self.obuf;
        encode_pieces(frame, self.proto, &mut self.wbuf, &mut |n| obuf.append(n));
    }

    /// Writes everything queued with one `write_all`, then flushes the stream.
    pub async fn flush(&mut self) -> std::io::Result<()> {
        if !self.wbuf.is_empty() {
            self.stream.write_all(&self.wbuf).await?;
            self.wbuf.clear();
            self.obuf.written();
        }
        self.stream.flush().await
    }

    /// The read buffer: bytes received and not yet parsed, and its free capacity (`CLIENT
    /// LIST`'s `qbuf=` and `qbuf-free=`).
    pub fn read_buffer(&self) -> (usize, usize) {
        (self.rbuf.len(), self.rbuf.capacity() - self.rbuf.len())
    }

    /// The replies waiting for `flush`, as Redis would account them (output buffer limits,
    /// `CLIENT LIST`).
    pub fn reply_buffer(&self) -> &ReplyBuffer {
        &self.obuf
    }

    /// Replays Redis's periodic resizing of the reply buffer up to `now` ([`ReplyBuffer::cron`]).
    pub fn reply_buffer_cron(&mut self, now: std::time::Instant) {
        self.obuf.cron(now);
    }

    /// Keeps at least `READ_CHUNK` bytes free for the next read. While a large argument arrives
    /// the step follows the bytes it still needs, capped at `MAX_UP_FRONT` (LimitsBeforeAlloc).
    fn reserve_for_read(&mut self) {
        let spare = self.rbuf.capacity() - self.rbuf.len();
        if spare < READ_CHUNK {
            let wanted = self.framer.bytes_wanted(self.rbuf.len());
            self.rbuf.reserve(wanted.clamp(READ_CHUNK, MAX_UP_FRONT));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use tokio::io::{duplex, DuplexStream, ReadBuf};

    use super::*;

    /// A stream that counts the `poll_write` calls that accepted bytes.
    struct CountingStream {
        inner: DuplexStream,
        writes: usize,
    }

    impl AsyncRead for CountingStream {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.inner).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for CountingStream {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
            if let Poll::Ready(Ok(n)) = &poll {
                if *n > 0 {
                    self.writes += 1;
                }
            }
            poll
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.inner).poll_flush(cx)
        }

        fn poll_shutdown(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.inner).poll_shutdown(cx)
        }
    }

    fn argv(args: &[&str]) -> Vec<Bytes> {
        args.iter()
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect()
    }

    #[tokio::test]
    async fn pipelined_commands_are_answered_with_one_write() {
        let (mut client, server) = duplex(64 * 1024);
        let mut conn = Connection::new(
            CountingStream {
                inner: server,
                writes: 0,
            },
            Limits::default(),
        );

        client
            .write_all(b"*2\r\n$3\r\nGET\r\n$1\r\na\r\nPING\r\n")
            .await
            .unwrap();

        let first = conn.read_command().await.unwrap();
        assert_eq!(first, Some(argv(&["GET", "a"])));
        let second = conn.try_next_buffered().unwrap();
        assert_eq!(second, Some(argv(&["PING"])));
        assert_eq!(conn.try_next_buffered().unwrap(), None);

        conn.write_frame(&Frame::Null);
        conn.write_frame(&Frame::Simple("PONG".into()));
        assert_eq!(conn.wbuf.len(), b"$-1\r\n+PONG\r\n".len());
        assert_eq!(conn.reply_buffer().stats().obl, 12);
        conn.flush().await.unwrap();
        assert_eq!(conn.wbuf.len(), 0);
        assert_eq!(conn.reply_buffer().stats().obl, 0);
        assert_eq!(conn.stream.writes, 1);

        let mut got = vec![0u8; b"$-1\r\n+PONG\r\n".len()];
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(got, b"$-1\r\n+PONG\r\n");
    }

    #[tokio::test]
    async fn resp3_replies_follow_proto() {
        let (mut client, server) = duplex(1024);
        let mut conn = Connection::new(server, Limits::default());
        conn.proto = Protocol::Resp3;
        conn.write_frame(&Frame::Null);
        conn.write_frame(&Frame::Boolean(true));
        conn.flush().await.unwrap();
        let mut got = vec![0u8; 7];
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(got, b"_\r\n#t\r\n");
    }

    #[tokio::test]
    async fn eof_is_none_even_mid_frame() {
        let (mut client, server) = duplex(1024);
        let mut conn = Connection::new(server, Limits::default());
        client.write_all(b"*1\r\n$4\r\nPI").await.unwrap();
        drop(client);
        assert_eq!(conn.read_command().await.unwrap(), None);

        let (client, server) = duplex(1024);
        let mut conn = Connection::new(server, Limits::default());
        drop(client);
        assert_eq!(conn.read_command().await.unwrap(), None);
    }

    #[tokio::test]
    async fn framing_errors_surface_as_frame_errors() {
        let (mut client, server) = duplex(1024);
        let mut conn = Connection::new(server, Limits::default());
        client.write_all(b"*1\r\n$600000000\r\n").await.unwrap();
        let err = conn.read_command().await.unwrap_err();
        assert!(matches!(err, ConnectionError::Frame(_)), "{err:?}");
        assert_eq!(err.to_string(), "Protocol error: invalid bulk length");
    }

    #[tokio::test]
    async fn a_large_argument_arrives_in_pieces_without_up_front_allocation() {
        let (mut client, server) = duplex(256 * 1024);
        let mut conn = Connection::new(server, Limits::default());
        let payload = vec![b'x'; 3 * 1024 * 1024];
        let writer = tokio::spawn(async move {
            client
                .write_all(b"*2\r\n$3\r\nSET\r\n$3145728\r\n")
                .await
                .unwrap();
            client.write_all(&payload).await.unwrap();
            client.write_all(b"\r\n").await.unwrap();
            client
        });
        let got = conn.read_command().await.unwrap().unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].len(), 3 * 1024 * 1024);
        assert!(got[1].iter().all(|&b| b == b'x'));
        drop(writer.await.unwrap());
    }

    #[tokio::test]
    async fn declared_length_does_not_drive_allocation() {
        let (mut client, server) = duplex(1024);
        let mut conn = Connection::new(server, Limits::default());
        client.write_all(b"*1\r\n$536870912\r\nabc").await.unwrap();
        let pending =
            tokio::time::timeout(std::time::Duration::from_millis(50), conn.read_command());
        assert!(pending.await.is_err(), "must wait for the payload");
        assert!(
            conn.rbuf.capacity() <= 2 * MAX_UP_FRONT,
            "cap {}",
            conn.rbuf.capacity()
        );
    }
}
