//! Outbound peer RPC: openraft's `RaftNetworkV2` over TCP, and the forwarding pool.
//!
//! Owns client-side peer connections. Connections are made lazily on the first RPC (no eager
//! connect), authenticated by the handshake in `handshake.rs`, and dropped on any error; the next RPC
//! reconnects. A peer that cannot be reached is reported as `Unreachable`, so openraft backs
//! off before trying again.
//!
//! **NoStaleConn**: a call that did not get its answer drops its connection, whether it timed
//! out here or its caller gave up (openraft's heartbeat worker drops the call future after one
//! heartbeat interval), and every call is bounded, its write included. Across a partition made
//! by dropped packets a connection stays open on both ends while the sender's TCP backs off
//! its retransmissions (tens of seconds); a connection kept after a lost answer would carry the
//! next requests into that backoff after the partition heals, and a request cut off in the
//! middle of its frame would leave the stream unframed.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::Stream;
use openraft::base::{BoxFuture, BoxStream};
use openraft::errors::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory, RaftNetworkV2};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, StreamAppendResult,
    TransferLeaderRequest, TransferLeaderResponse, VoteRequest, VoteResponse,
};
use tokio::net::TcpStream;

use crate::tls::MaybeTls;
use tokio::sync::{oneshot, Mutex as AsyncMutex};

use super::handshake::connect_handshake;
use super::pipeline::Pipeline;
use super::snapshot_transfer::chunk_bytes;
use super::typ::{Entry, LogId, Snapshot, Vote};
use super::wire::{
    read_frame, write_frame, Envelope, PeerIdentity, RpcRequest, RpcResponse, MAX_APPEND_BYTES,
    MAX_FRAME, PEER_READ_BUFFER,
};
use super::{PeerNode, TypeConfig};

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
            self.conn.broken.store(true, Ordering::SeqCst);
            self.conn
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&self.id);
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
        let reader = tokio::spawn(async move {
            while let Ok(Some(env)) =
                read_frame::<_, Envelope<RpcResponse>>(&mut rd, MAX_FRAME).await
            {
                let tx = p.lock().unwrap_or_else(|e| e.into_inner()).remove(&env.id);
                if let Some(tx) = tx {
                    let _ = tx.send(env.body);
                }
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
            self.conn.broken.store(true, Ordering::SeqCst);
            self.conn
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&self.id);
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

/// Builds openraft's per-target network clients.
#[derive(Clone)]
pub struct NetworkFactory {
    me: PeerIdentity,
}

impl NetworkFactory {
    pub fn new(me: PeerIdentity) -> Self {
        Self { me }
    }
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerClient;

    async fn new_client(&mut self, target: u64, node: &PeerNode) -> Self::Network {
        PeerClient {
            target,
            slot: PeerSlot::new(node.raft_addr.clone(), target, self.me.clone()),
        }
    }
}

/// openraft's client for one target: its own connection, so heartbeats never queue behind a
/// snapshot transfer on another client.
pub struct PeerClient {
    target: u64,
    slot: PeerSlot,
}

impl PeerClient {
    async fn rpc<E: std::error::Error>(
        &self,
        req: RpcRequest,
        option: &RPCOption,
    ) -> Result<RpcResponse, RPCError<TypeConfig, E>> {
        let timeout = option.hard_ttl();
        match self.slot.call(req, timeout).await {
            Ok(RpcResponse::Refused(why)) => Err(RPCError::Network(NetworkError::from_string(
                format!("node {} refused the request: {why}", self.target),
            ))),
            Ok(r) => Ok(r),
            Err(e @ PeerError::Unreachable(_)) => Err(RPCError::Unreachable(
                Unreachable::from_string(e.to_string()),
            )),
            Err(e) => Err(RPCError::Network(NetworkError::from_string(e.to_string()))),
        }
    }
}

impl PeerClient {
    /// Sends `snapshot`'s store bytes as chunks, then the end; returns the answer to the end.
    async fn send_snapshot(
        &self,
        vote: Vote,
        snapshot: Snapshot,
        option: &RPCOption,
    ) -> Result<RpcResponse, RPCError<TypeConfig, std::convert::Infallible>> {
        use tokio::io::AsyncReadExt;
        let io_err = |e: io::Error| RPCError::Network(NetworkError::new(&e));
        let len = snapshot.snapshot.len();
        let mut reader =
            tokio::fs::File::from_std(snapshot.snapshot.reader().map_err(io_err)?.into_inner());
        // `reader()` positioned the file at the store bytes; read exactly `len` of them.
        let mut reader = (&mut reader).take(len);
        let transfer: u64 = rand::random();
        let chunk = chunk_bytes();
        let mut offset = 0u64;
        let mut chunks = 0u64;
        loop {
            let mut data =
                Vec::with_capacity(chunk.min(usize::try_from(len - offset).unwrap_or(chunk)));
            (&mut reader)
                .take(chunk as u64)
                .read_to_end(&mut data)
                .await
                .map_err(io_err)?;
            let n = data.len() as u64;
            if n == 0 && offset > 0 {
                break;
            }
            let req = RpcRequest::SnapshotChunk {
                transfer,
                offset,
                data,
            };
            match self.rpc::<std::convert::Infallible>(req, option).await? {
                RpcResponse::SnapshotChunk(Ok(())) => {}
                RpcResponse::SnapshotChunk(Err(m)) => return Err(remote(self.target, m)),
                _ => return Err(unexpected("snapshot chunk")),
            }
            offset += n;
            chunks += 1;
            if offset >= len {
                break;
            }
        }
        if offset != len {
            return Err(RPCError::Network(NetworkError::from_string(format!(
                "snapshot file ended at {offset} of {len} bytes"
            ))));
        }
        tracing::info!(
            target_node = self.target,
            bytes = len,
            chunks,
            "snapshot sent in chunks"
        );
        let end = RpcRequest::SnapshotEnd {
            transfer,
            len,
            vote,
            meta: snapshot.meta,
        };
        self.rpc::<std::convert::Infallible>(end, option).await
    }
}

/// How many of `entries`, from the first, fit in `budget` encoded bytes; always at least one
/// (a single entry larger than the budget travels alone; `write.rs` refuses entries that
/// could not fit a frame at all).
pub fn entries_within(entries: &[Entry], budget: usize) -> usize {
    let mut total = 0usize;
    for (i, e) in entries.iter().enumerate() {
        total = total.saturating_add(encoded_len(e));
        if total > budget {
            return i.max(1);
        }
    }
    entries.len()
}

/// The follower's answer to an AppendEntries of which only a prefix, ending at `cut`, was sent
/// (`None`: all of it): a plain success then covers the prefix only.
pub(super) fn for_sent(
    cut: Option<Option<LogId>>,
    resp: AppendEntriesResponse<TypeConfig>,
) -> AppendEntriesResponse<TypeConfig> {
    match (cut, resp) {
        (Some(last), AppendEntriesResponse::Success) => AppendEntriesResponse::PartialSuccess(last),
        (_, resp) => resp,
    }
}

/// The postcard-encoded length of `value`, counted without allocating the encoding.
pub fn encoded_len<T: serde::Serialize>(value: &T) -> usize {
    struct Count(usize);
    impl io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    postcard::to_io(value, Count(0)).map_or(usize::MAX, |c| c.0)
}

fn unexpected<E: std::error::Error>(what: &str) -> RPCError<TypeConfig, E> {
    RPCError::Network(NetworkError::from_string(format!(
        "unexpected answer to {what}"
    )))
}

fn remote<E: std::error::Error>(target: u64, msg: String) -> RPCError<TypeConfig, E> {
    RPCError::Network(NetworkError::from_string(format!("node {target}: {msg}")))
}

impl RaftNetworkV2<TypeConfig> for PeerClient {
    type SnapshotData = super::state_machine::SnapshotFile;

    async fn append_entries(
        &mut self,
        mut rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        // AppendBytesBound: send at most MAX_APPEND_BYTES of entries per frame; a follower that
        // took the prefix answers for the prefix only (PartialSuccess), and openraft sends the
        // rest next.
        let kept = entries_within(&rpc.entries, MAX_APPEND_BYTES);
        let cut = (kept < rpc.entries.len()).then(|| {
            tracing::info!(
                target = self.target,
                sent = kept,
                of = rpc.entries.len(),
                "append entries cut to the frame budget"
            );
            rpc.entries.truncate(kept);
            rpc.entries.last().map(|e| e.log_id)
        });
        let resp = match self.rpc(RpcRequest::AppendEntries(rpc), &option).await? {
            RpcResponse::AppendEntries(r) => r.map_err(|m| remote(self.target, m))?,
            _ => return Err(unexpected("append_entries")),
        };
        Ok(for_sent(cut, resp))
    }

    /// AppendPipelined (`pipeline.rs`): several requests in flight on this client's connection.
    fn stream_append<'s, S>(
        &'s mut self,
        input: S,
        option: RPCOption,
    ) -> BoxFuture<
        's,
        Result<
            BoxStream<'s, Result<StreamAppendResult<TypeConfig>, RPCError<TypeConfig>>>,
            RPCError<TypeConfig>,
        >,
    >
    where
        S: Stream<Item = AppendEntriesRequest<TypeConfig>> + Send + Unpin + 'static,
    {
        Box::pin(async move {
            let conn = self
                .slot
                .get()
                .await
                .map_err(|e| RPCError::Unreachable(Unreachable::from_string(e.to_string())))?;
            let pipeline = Pipeline::new(conn, self.target, option.hard_ttl(), input);
            let strm: BoxStream<'s, _> = Box::pin(pipeline.into_stream());
            Ok(strm)
        })
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self.rpc(RpcRequest::Vote(rpc), &option).await? {
            RpcResponse::Vote(r) => r.map_err(|m| remote(self.target, m)),
            _ => Err(unexpected("vote")),
        }
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self.rpc(RpcRequest::PreVote(rpc), &option).await? {
            RpcResponse::Vote(r) => r.map_err(|m| remote(self.target, m)),
            _ => Err(unexpected("pre_vote")),
        }
    }

    /// Sends the snapshot in chunks (`snapshot_transfer.rs`): each chunk read from the file
    /// and answered before the next is read, so at most one chunk is in memory (ChunkBounded).
    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let send = self.send_snapshot(vote, snapshot, &option);
        let resp = tokio::select! {
            r = send => r,
            closed = cancel => return Err(StreamingError::Closed(closed)),
        };
        match resp {
            Ok(RpcResponse::FullSnapshot(Ok(r))) => Ok(r),
            Ok(RpcResponse::FullSnapshot(Err(m))) => Err(StreamingError::Network(
                NetworkError::from_string(format!("node {}: {m}", self.target)),
            )),
            Ok(_) => Err(StreamingError::Network(NetworkError::from_string(
                "unexpected answer to full_snapshot",
            ))),
            Err(RPCError::Unreachable(u)) => Err(StreamingError::Unreachable(u)),
            Err(RPCError::Network(n)) => Err(StreamingError::Network(n)),
            Err(RPCError::Timeout(t)) => Err(StreamingError::Timeout(t)),
            Err(RPCError::RemoteError(e)) => Err(StreamingError::Network(
                NetworkError::from_string(e.to_string()),
            )),
        }
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<TransferLeaderResponse<TypeConfig>, RPCError<TypeConfig>> {
        match self.rpc(RpcRequest::TransferLeader(req), &option).await? {
            RpcResponse::TransferLeader(r) => r.map_err(|m| remote(self.target, m)),
            _ => Err(unexpected("transfer_leader")),
        }
    }
}

#[cfg(test)]
#[path = "network_test.rs"]
mod tests;
