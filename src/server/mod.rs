//! The Redis listener: accepts client connections, enforces the connection limit, and runs one
//! [`session`] per connection until shutdown; `http.rs` serves the metrics and health endpoints.
//! What every session shares (the [`ServerContext`], the client registry, the settings `CONFIG
//! SET` changes) is `crate::context`'s, below both this module and `commands`.
//!
//! Knows RESP framing only through `protocol::Connection`, and commands only through
//! `commands::Batch` (a pipeline batch, answered command by command).

pub mod http;
pub mod session;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use crate::context::ServerContext;

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

pub async fn run(
    listener: TcpListener,
    ctx: Arc<ServerContext>,
    mut shutdown: watch::Receiver<bool>,
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
        tokio::spawn(async move {
            session::run(stream, addr, id, &ctx, shutdown).await;
            ctx.connected.fetch_sub(1, Ordering::Relaxed);
        });
    }
}
