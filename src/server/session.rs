//! One client connection: reads commands, answers each in order, flushes once per batch.
//!
//! Pipelining: every command already complete in the read buffer is answered before the
//! replies are written, so a pipeline of N commands costs one write syscall. Commands of one
//! connection run one at a time, in order (Redis's guarantee).
//!
//! A framing error gets `-ERR Protocol error: …` and closes the connection (Redis behaviour);
//! a command error gets an error reply and the connection lives.

use std::net::SocketAddr;

use tokio::net::TcpStream;
use tokio::sync::watch;

use super::ServerContext;
use crate::commands::{self, Session};
use crate::protocol::{Connection, ConnectionError, Frame};

/// Serves one client until it quits, disconnects, sends a malformed frame, or shutdown.
pub async fn run(
    stream: TcpStream,
    addr: SocketAddr,
    ctx: &ServerContext,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut conn = Connection::new(stream, ctx.limits.clone());
    let mut session = Session::new(ctx, addr);
    loop {
        let argv = tokio::select! {
            r = conn.read_command() => r,
            _ = shutdown.changed() => return,
        };
        let mut next = match argv {
            Ok(Some(argv)) => Some(argv),
            Ok(None) => return,
            Err(e) => {
                reply_protocol_error(&mut conn, e).await;
                return;
            }
        };
        while let Some(argv) = next.take() {
            let out = commands::execute(ctx, &mut session, argv).await;
            conn.proto = session.proto;
            conn.write_frame(&out.frame);
            if out.close {
                let _ = conn.flush().await;
                return;
            }
            match conn.try_next_buffered() {
                Ok(n) => next = n,
                Err(e) => {
                    reply_protocol_error(&mut conn, e).await;
                    return;
                }
            }
        }
        if conn.flush().await.is_err() {
            return;
        }
    }
}

async fn reply_protocol_error<S>(conn: &mut Connection<S>, e: ConnectionError)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    if let ConnectionError::Frame(f) = e {
        tracing::debug!(error = %f, "closing connection after a protocol error");
        conn.write_frame(&Frame::Error(format!("ERR {f}")));
        let _ = conn.flush().await;
    }
}
