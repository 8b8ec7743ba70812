//! Client-side peer connections: lazily made, authenticated, multiplexed, self-healing.
//!
//! Connections are made lazily on the first RPC (no eager connect), authenticated by the
//! handshake in `handshake.rs`, and dropped on any error; the next RPC reconnects. A peer that
//! cannot be reached is reported as `Unreachable`, so openraft backs off before trying again.
//! One connection carries many requests at once, each paired with its answer by id
//! (forwarded writes; pipelined AppendEntries, `pipeline.rs`).
//!
//! **NoStaleConn**: a call that did not get its answer drops its connection, whether it timed
//! out here or its caller gave up (openraft's heartbeat worker drops the call future after one
//! heartbeat interval), and every call is bounded, its write included. Across a partition made
//! by dropped packets a connection stays open on both ends while the sender's TCP backs off
//! its retransmissions (tens of seconds); a connection kept after a lost answer would carry the
//! next requests into that backoff after the partition heals, and a request cut off in the
//! middle of its frame would leave the stream unframed.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::{oneshot, Mutex as AsyncMutex};

use super::handshake::connect_handshake;
use super::wire::{
    read_frame, write_frame, Envelope, PeerIdentity, RpcRequest, RpcResponse, MAX_FRAME,
    PEER_READ_BUFFER,
};
use crate::tls::MaybeTls;

/// How long to wait for a TCP connect plus handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The least time a call may take to write its request: a frame may be large (an AppendEntries
/// batch of up to [`MAX_APPEND_BYTES`]), and a call's own timeout may be one heartbeat interval.
/// A peer that takes no more of a frame for this long is treated as gone (NoStaleConn).
pub(super) const MIN_WRITE_BOUND: Duration = Duration::from_secs(10);

/// Why a peer call failed.
#[derive(Clone, Debug, thiserror::Error)]
pub enum PeerError {
    /// The request was never sent: the peer could not be reached or refused us.
    #[error("peer unreachable: {0}")]
    Unreachable(String),
    /// The request may have been sent; its outcome is unknown.
    #[error("peer connection failed: {0}")]
    Lost(String),
    #[error("peer did not answer within {0:?}")]
    Timeout(Duration),
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<RpcResponse>>>>;

/// One authenticated, multiplexed connection to a peer.
pub struct PeerConn {
    writer: AsyncMutex<tokio::io::WriteHalf<MaybeTls>>,
    pending: Pending,
    next_id: AtomicU64,
    reader: tokio::task::JoinHandle<()>,
    /// Set when a call ended without its answer (NoStaleConn): no further call may use it.
    broken: AtomicBool,
}

/// Marks the connection broken and forgets the call's answer unless [`InFlight::answered`]:
/// runs when the call returns and also when its future is dropped mid-way (NoStaleConn).
struct InFlight<'a> {
    conn: &'a PeerConn,
    id: u64,
    answered: bool,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if !self.answered {
            self.conn.abandon(self.id);
        }
    }
}

impl Drop for PeerConn {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl PeerConn {
    /// Connects to `addr` and proves membership of the cluster to node `target`.
    pub async fn connect(addr: &str, me: &PeerIdentity, target: u64) -> Result<Self, PeerError> {
        let fut = async {
            let tcp = TcpStream::connect(addr).await?;
            tcp.set_nodelay(true)?;
            let mut stream = match me.tls.as_ref().and_then(|t| t.peer_connector()) {
                // PeerNamesChecked: the certificate must name the IP dialled.
                Some(tls) => {
                    let name = crate::tls::peer_server_name(addr).map_err(io::Error::other)?;
                    let s = tls.connect(name, tcp).await.map_err(|e| {
                        io::Error::new(io::ErrorKind::PermissionDenied, format!("TLS: {e}"))
                    })?;
                    MaybeTls::from(s)
                }
                None => MaybeTls::from(tcp),
            };
            connect_handshake(&mut stream, me, target).await?;
            io::Result::Ok(stream)
        };
        let stream = match tokio::time::timeout(CONNECT_TIMEOUT, fut).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                if e.kind() == io::ErrorKind::PermissionDenied {
                    tracing::warn!(target_node = target, %addr, error = %e, "peer refused us");
                }
                return Err(PeerError::Unreachable(format!("{addr}: {e}")));
            }
            Err(_) => return Err(PeerError::Unreachable(format!("{addr}: connect timed out"))),
        };
        let (rd, wr) = tokio::io::split(stream);
        // Buffered, as the serving side (`rpc.rs`): one `read` for a frame's length and body.
        let mut rd = tokio::io::BufReader::with_capacity(PEER_READ_BUFFER, rd);
        let pending: Pending = Arc::default();
        let p = pending.clone();
        let delay = failpoint_answer_delay();
        let reader = tokio::spawn(async move {
            // The failpoint's delay line, if armed: answers in arrival order, each held until
            // `delay` after it arrived.
            let (line, held) = match delay {
                Some(d) => {
                    let (tx, mut rx) =
                        tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, _)>();
                    let p = p.clone();
                    let held = tokio::spawn(async move {
                        while let Some((at, env)) = rx.recv().await {
                            tokio::time::sleep_until(at + d).await;
                            deliver(&p, env);
                        }
                    });
                    (Some(tx), Some(held))
                }
                None => (None, None),
            };
            while let Ok(Some(env)) =
                read_frame::<_, Envelope<RpcResponse>>(&mut rd, MAX_FRAME).await
            {
                match &line {
                    Some(tx) => drop(tx.send((tokio::time::Instant::now(), env))),
                    None => deliver(&p, env),
                }
            }
            drop(line);
            if let Some(held) = held {
                let _ = held.await;
            }
            // Fail every caller still waiting: dropping the senders wakes them.
            p.lock().unwrap_or_else(|e| e.into_inner()).clear();
        });
        Ok(Self {
            writer: AsyncMutex::new(wr),
            pending,
            next_id: AtomicU64::new(1),
            reader,
            broken: AtomicBool::new(false),
        })
    }

    /// Whether the connection can still carry requests.
    pub fn is_alive(&self) -> bool {
        !self.reader.is_finished() && !self.broken.load(Ordering::SeqCst)
    }

    /// Sends one request and waits for its answer: the answer within `timeout` of the request
    /// being written, the write itself within `timeout` or [`MIN_WRITE_BOUND`], the longer.
    /// Any other end, a dropped future included, breaks the connection (NoStaleConn).
    pub async fn call(&self, req: RpcRequest, timeout: Duration) -> Result<RpcResponse, PeerError> {
        let (id, rx) = self.register();
        let mut in_flight = InFlight {
            conn: self,
            id,
            answered: false,
        };
        self.write_request(id, req, timeout.max(MIN_WRITE_BOUND))
            .await?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(resp)) => {
                in_flight.answered = true;
                Ok(resp)
            }
            Ok(Err(_)) => Err(PeerError::Lost("connection closed".into())),
            Err(_) => Err(PeerError::Timeout(timeout)),
        }
    }
}

impl PeerConn {
    /// Forgets request `id`'s answer and retires the connection (NoStaleConn): what the guards
    /// of an unanswered call do when they are dropped.
    fn abandon(&self, id: u64) {
        self.broken.store(true, Ordering::SeqCst);
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    /// A fresh request id, registered for its answer.
    fn register(&self) -> (u64, oneshot::Receiver<RpcResponse>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, tx);
        (id, rx)
    }

    /// Writes request `id`, within `write_bound` (NoStaleConn: the caller's guard breaks the
    /// connection if this fails or is dropped mid-way).
    async fn write_request(
        &self,
        id: u64,
        req: RpcRequest,
        write_bound: Duration,
    ) -> Result<(), PeerError> {
        let sent = tokio::time::timeout(write_bound, async {
            let mut w = self.writer.lock().await;
            write_frame(&mut *w, &Envelope { id, body: req }).await
        })
        .await;
        match sent {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(PeerError::Lost(e.to_string())),
            Err(_) => Err(PeerError::Lost(format!(
                "the peer took no request for {write_bound:?}"
            ))),
        }
    }

    /// Writes `req` and returns at once with the handle its answer comes to (AppendPipelined:
    /// several requests in flight on one connection). The handle breaks the connection if it is
    /// dropped unanswered, as [`PeerConn::call`] does (NoStaleConn).
    pub(super) async fn send(
        self: &Arc<Self>,
        req: RpcRequest,
        write_bound: Duration,
    ) -> Result<Awaiting, PeerError> {
        let (id, rx) = self.register();
        let awaiting = Awaiting {
            conn: self.clone(),
            id,
            rx,
            answered: false,
        };
        self.write_request(id, req, write_bound).await?;
        Ok(awaiting)
    }
}

/// Hands an answer to the call waiting for it (none: the call gave up; the answer is dropped).
fn deliver(pending: &Pending, env: Envelope<RpcResponse>) {
    let tx = pending
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&env.id);
    if let Some(tx) = tx {
        let _ = tx.send(env.body);
    }
}

/// Test-only failpoint `peer_answer_delay_us=N` (`REDRAFT_FAILPOINTS`): every answer from a
/// peer reaches its caller N µs after it arrived (a delay line: answers keep their order and
/// none waits longer than N), as if the network's round trip were N µs longer. Only for
/// benchmarks on loopback, where this kernel offers no `netem` (`benches/results/
/// 2026-12-05-pipelined-appends`); a warning is logged.
fn failpoint_answer_delay() -> Option<Duration> {
    let spec = std::env::var("REDRAFT_FAILPOINTS").ok()?;
    let us: u64 = spec
        .split(',')
        .find_map(|kv| kv.trim().strip_prefix("peer_answer_delay_us="))?
        .parse()
        .ok()?;
    static WARNED: std::sync::Once = std::sync::Once::new();
    WARNED.call_once(|| {
        tracing::warn!(
            us,
            "FAILPOINT peer_answer_delay_us ARMED: peer answers are held back"
        );
    });
    Some(Duration::from_micros(us))
}

/// A request written by [`PeerConn::send`] whose answer has not been taken.
pub(super) struct Awaiting {
    conn: Arc<PeerConn>,
    id: u64,
    rx: oneshot::Receiver<RpcResponse>,
    answered: bool,
}

impl Awaiting {
    /// The answer, or [`PeerError`] if none came by `deadline` (`timeout` after the request
    /// was written) or the connection closed.
    pub(super) async fn answer(
        &mut self,
        deadline: tokio::time::Instant,
        timeout: Duration,
    ) -> Result<RpcResponse, PeerError> {
        match tokio::time::timeout_at(deadline, &mut self.rx).await {
            Ok(Ok(resp)) => {
                self.answered = true;
                Ok(resp)
            }
            Ok(Err(_)) => Err(PeerError::Lost("connection closed".into())),
            Err(_) => Err(PeerError::Timeout(timeout)),
        }
    }
}

impl Drop for Awaiting {
    fn drop(&mut self) {
        if !self.answered {
            self.conn.abandon(self.id);
        }
    }
}

/// A lazily connected, self-healing connection slot to one peer.
pub struct PeerSlot {
    addr: String,
    target: u64,
    me: PeerIdentity,
    conn: AsyncMutex<Option<Arc<PeerConn>>>,
}

impl PeerSlot {
    pub fn new(addr: String, target: u64, me: PeerIdentity) -> Self {
        Self {
            addr,
            target,
            me,
            conn: AsyncMutex::new(None),
        }
    }

    pub(super) async fn get(&self) -> Result<Arc<PeerConn>, PeerError> {
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref() {
            if c.is_alive() {
                return Ok(c.clone());
            }
        }
        let c = Arc::new(PeerConn::connect(&self.addr, &self.me, self.target).await?);
        *slot = Some(c.clone());
        Ok(c)
    }

    async fn reset(&self) {
        *self.conn.lock().await = None;
    }

    /// Calls the peer, dropping the connection on failure so the next call reconnects.
    pub async fn call(&self, req: RpcRequest, timeout: Duration) -> Result<RpcResponse, PeerError> {
        let conn = self.get().await?;
        let r = conn.call(req, timeout).await;
        if r.is_err() {
            self.reset().await;
        }
        r
    }
}

/// Shared connections for forwarded writes and read-index requests, one per peer address.
pub struct Peers {
    me: PeerIdentity,
    slots: Mutex<HashMap<(u64, String), Arc<PeerSlot>>>,
}

impl Peers {
    pub fn new(me: PeerIdentity) -> Self {
        Self {
            me,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// The slot for node `id` at `addr` (created on first use).
    pub fn slot(&self, id: u64, addr: &str) -> Arc<PeerSlot> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots
            .entry((id, addr.to_string()))
            .or_insert_with(|| Arc::new(PeerSlot::new(addr.to_string(), id, self.me.clone())))
            .clone()
    }
}

#[cfg(test)]
#[path = "peer_conn_test.rs"]
pub(super) mod tests;
