//! The Redis listener: accepts client connections, enforces the connection limit, and runs one
//! [`session`] per connection until shutdown; `http.rs` serves the metrics and health endpoints.
//! What every session shares (the [`ServerContext`], the client registry, the settings `CONFIG
//! SET` changes) is `crate::context`'s, below both this module and `commands`.
//!
//! Knows RESP framing only through `protocol::Connection`, and commands only through
//! `commands::Batch` (a pipeline batch, answered command by command).

pub mod console;
pub mod http;
pub mod session;
mod stall;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub use crate::context::ServerContext;
use crate::protocol::connection::TLS_HANDSHAKE_RECORD;
use crate::tls::MaybeTls;

/// Accepts clients until `shutdown` turns true.
/// How long shutdown waits for sessions to finish the batch they are running and send its
/// replies (RepliesBeforeExit).
const SHUTDOWN_DRAIN: std::time::Duration = std::time::Duration::from_secs(1);

/// **RepliesBeforeExit.** At shutdown, waits (up to [`SHUTDOWN_DRAIN`]) until every session has
/// ended: an idle one ends at once, a busy one after its batch's replies are flushed. So a
/// node that stops (SHUTDOWN, a signal, or FailStop after a failed flush) still sends the
/// replies it computed, such as the `UNCERTAIN` of the write whose flush failed, instead of
/// the process exiting under them.
async fn drain(ctx: &ServerContext) {
    let deadline = tokio::time::Instant::now() + SHUTDOWN_DRAIN;
    while ctx.connected.load(Ordering::Relaxed) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// What a listener speaks: `redis_addr` plain RESP, `tls_addr` RESP inside TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Plain,
    Tls,
}

/// How long a client may take to complete its TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// **TlsPortRefusesPlain.** Opens the TLS session of a client on `tls_addr`. A client that
/// speaks plain RESP there gets a plain `-ERR` saying so (it could not read a TLS alert), a
/// failed handshake (bad or missing client certificate, no common version) is logged with
/// the client's address and rustls's reason; either way only this connection closes.
async fn accept_tls(
    stream: TcpStream,
    addr: std::net::SocketAddr,
    ctx: &ServerContext,
) -> Option<MaybeTls> {
    let acceptor = ctx.tls.as_ref().and_then(|t| t.client_acceptor())?;
    let handshake = async {
        let mut first = [0u8; 1];
        if stream.peek(&mut first).await? == 0 {
            return Ok(None);
        }
        if first[0] != TLS_HANDSHAKE_RECORD {
            let mut stream = stream;
            tracing::warn!(%addr, "plain-text client on the TLS port; closed");
            let _ = stream
                .write_all(b"-ERR this port speaks TLS: connect with TLS (redis-cli --tls)\r\n")
                .await;
            return Ok(None);
        }
        acceptor.accept(stream).await.map(Some)
    };
    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, handshake).await {
        Ok(Ok(s)) => s.map(MaybeTls::from),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            tracing::debug!(%addr, error = %e, "client TLS handshake cut short");
            None
        }
        Ok(Err(e)) => {
            tracing::warn!(%addr, error = %e, "client TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::warn!(%addr, "client TLS handshake timed out");
            None
        }
    }
}

pub async fn run(
    listener: TcpListener,
    ctx: Arc<ServerContext>,
    mut shutdown: watch::Receiver<bool>,
    transport: Transport,
) {
    loop {
        let (mut stream, addr) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => {
                drain(&ctx).await;
                return;
            }
        };
        let _ = stream.set_nodelay(true);
        if ctx.connected.load(Ordering::Relaxed) >= ctx.settings.max_clients() {
            // Redis's reply and behaviour: say why, then close.
            ctx.rejected_connections.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(async move {
                let _ = stream
                    .write_all(b"-ERR max number of clients reached\r\n")
                    .await;
            });
            continue;
        }
        ctx.connected.fetch_add(1, Ordering::Relaxed);
        ctx.total_connections.fetch_add(1, Ordering::Relaxed);
        // Assigned here, in accept order, so ids grow with connection order (as in Redis).
        let id = ctx.next_client_id.fetch_add(1, Ordering::Relaxed);
        let ctx = ctx.clone();
        let shutdown = shutdown.clone();
        // SessionsBesideRaft (`raft/runtime.rs`): while the `raft` thread has a free place, the
        // session runs there, its socket moved to that thread's runtime.
        let hosted = ctx.beside_raft.as_ref().and_then(|places| {
            let place = places.claim()?;
            Some((places.tasks().clone(), place))
        });
        match hosted {
            None => {
                tokio::spawn(serve(stream, addr, id, ctx, shutdown, transport));
            }
            Some((tasks, place)) => match stream.into_std() {
                Ok(socket) => {
                    tasks.spawn(async move {
                        let _place = place;
                        match TcpStream::from_std(socket) {
                            Ok(stream) => serve(stream, addr, id, ctx, shutdown, transport).await,
                            Err(e) => {
                                tracing::warn!(%addr, error = %e, "client connection not registered on the raft thread; closed");
                                ctx.connected.fetch_sub(1, Ordering::Relaxed);
                            }
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(%addr, error = %e, "client connection not moved to the raft thread; closed");
                    ctx.connected.fetch_sub(1, Ordering::Relaxed);
                }
            },
        }
    }
}

/// One client connection, from its TLS handshake (on the TLS port) to its end.
async fn serve(
    stream: TcpStream,
    addr: std::net::SocketAddr,
    id: u64,
    ctx: Arc<ServerContext>,
    shutdown: watch::Receiver<bool>,
    transport: Transport,
) {
    let stream = match transport {
        Transport::Plain => Some(MaybeTls::from(stream)),
        Transport::Tls => accept_tls(stream, addr, &ctx).await,
    };
    if let Some(stream) = stream {
        session::run(stream, addr, id, &ctx, shutdown).await;
    }
    ctx.connected.fetch_sub(1, Ordering::Relaxed);
}
