//! Peer wire format and the inbound peer RPC server.
//!
//! Owns the bytes between nodes; knows nothing of RESP.
//!
//! # Framing
//!
//! Every message is `u32 big-endian length ++ PEER_PROTOCOL_VERSION ++ postcard(message)`.
//! A length over [`MAX_HANDSHAKE_FRAME`] before authentication, or over [`MAX_FRAME`] after, is
//! refused before anything is allocated, and a frame's buffer grows only as its bytes arrive
//! (**BoundedPeerAlloc**): a peer that declares a large frame and sends nothing costs nothing.
//!
//! # Handshake (once per TCP connection, mutual: **MutualPeerAuth**)
//!
//! ```text
//! client ── Hello { cluster, from, to, nonce: c } ─────────▶ server  refuses another cluster
//! client ◀── Challenge { nonce: s, mac: S } | Refused ────── server  name or a `to` not itself
//! client ── Proof { mac: C } ──────────────────────────────▶ server
//! client ◀── Welcome | Refused(reason) ───────────────────── server
//!
//! S = HMAC-SHA256(secret, "server" | cluster | from | to | c | s)   checked by the client
//! C = HMAC-SHA256(secret, "client" | cluster | from | to | c | s)   checked by the server
//! ```
//!
//! Each side proves the secret over a nonce the other chose, so neither a replayed proof nor a
//! fake node without the secret passes (a follower must not forward writes to, nor take a read
//! index from, an impostor). With no `secret` configured (allowed only when every peer address
//! is loopback: `config.rs`, SecretOffLoopback) the macs are empty and not checked; the cluster
//! name and target id still are. After `Welcome`, the client sends [`Envelope`]s of
//! [`RpcRequest`] and the server answers each with an `Envelope` of [`RpcResponse`] carrying
//! the same id. Requests are served concurrently, so one connection multiplexes many forwarded
//! writes. The secret authenticates the peers; it does not encrypt their traffic.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use hmac::{Hmac, Mac};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};
use openraft::{ReadPolicy, TryAsRef};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

use super::error::AdminResult;
use super::health::Liveness;
use super::membership::{self, AdminRequest};
use super::snapshot_transfer;
use super::state_machine::StateMachineStore;
use super::typ::{Raft, Snapshot, SnapshotMeta, Vote};
use super::{stamp, TypeConfig};
use bytes::Bytes;

use crate::store::{Request, Response};
use crate::watch::pubsub::PubSub;

/// The first byte of every peer frame body.
pub const PEER_PROTOCOL_VERSION: u8 = 3;
/// Largest frame accepted before the handshake completes.
pub const MAX_HANDSHAKE_FRAME: u32 = 64 * 1024;
/// Largest frame accepted from an authenticated peer (a whole snapshot travels in one frame).
pub const MAX_FRAME: u32 = 1024 * 1024 * 1024;
/// How long a peer may take to complete the handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Who this node is, for the handshake.
#[derive(Clone, Debug)]
pub struct PeerIdentity {
    pub cluster: String,
    pub secret: Option<String>,
    pub node_id: u64,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Hello {
    pub cluster: String,
    pub from: u64,
    pub to: u64,
    /// The client's challenge to the server.
    pub nonce: [u8; 32],
}

#[derive(Debug, Serialize, Deserialize)]
pub enum HelloReply {
    /// The server's challenge to the client, and its own proof over both nonces.
    Challenge {
        nonce: [u8; 32],
        mac: Vec<u8>,
    },
    Refused(String),
}

/// Which side of the handshake a mac proves: the two proofs over the same nonces differ, so
/// neither can be reflected back as the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Client,
    Server,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Proof {
    pub mac: Vec<u8>,
}

#[derive(Debug, Serialize, Deserialize)]
pub enum Verdict {
    Welcome,
    Refused(String),
}

/// A request or response with the id that pairs them on a multiplexed connection.
#[derive(Debug, Serialize, Deserialize)]
pub struct Envelope<T> {
    pub id: u64,
    pub body: T,
}

/// What a peer asks.
#[derive(Debug, Serialize, Deserialize)]
pub enum RpcRequest {
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<TypeConfig>),
    PreVote(VoteRequest<TypeConfig>),
    FullSnapshot {
        vote: Vote,
        meta: SnapshotMeta,
        data: Vec<u8>,
    },
    TransferLeader(TransferLeaderRequest<TypeConfig>),
    /// A client write forwarded by a follower; answered once applied on the leader.
    ClientWrite(Request),
    /// A follower asks the leader for a linearizable read index (ReadIndex).
    ReadIndex,
    /// A run of one client's writes forwarded by a follower, to be appended in this order
    /// (one request, so nothing can reorder them on the way); answered, one result per write in
    /// the same order, once each is applied or has failed on the leader.
    ClientWriteMany(Vec<Request>),
    /// Cluster administration (RAFT.ADDNODE, RAFT.REMOVENODE, RAFT.TRANSFER) forwarded to the
    /// leader; answered when done.
    Admin(AdminRequest),
    /// Whether this node is initialised: a pristine node asks its peers before it initialises
    /// (`node.rs`, "Initialisation is safe").
    Status,
    /// A PUBLISH on another node, for this node's subscribers (`publish.rs`).
    Publish {
        channel: Bytes,
        message: Bytes,
    },
    /// One chunk of a snapshot transfer (`snapshot_transfer.rs`): `data` belongs at `offset`
    /// of the store bytes of transfer `transfer`; offset 0 starts it. Answered by
    /// [`RpcResponse::SnapshotChunk`].
    SnapshotChunk {
        transfer: u64,
        offset: u64,
        data: Vec<u8>,
    },
    /// The end of a snapshot transfer: `len` store bytes, to install with `meta` under
    /// `vote`. Answered by [`RpcResponse::FullSnapshot`].
    SnapshotEnd {
        transfer: u64,
        len: u64,
        vote: Vote,
        meta: SnapshotMeta,
    },
}

/// What [`RpcRequest::Status`] answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerStatus {
    /// Whether the node has any Raft log or vote: it belongs to a cluster already.
    pub initialized: bool,
    /// The leader it knows, if any.
    pub leader: Option<u64>,
}

/// Why a leader-only request was not served.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ForwardError {
    /// This node is not the leader; `leader` is who it believes is.
    NotLeader { leader: Option<u64> },
    /// The node's Raft stopped.
    Fatal(String),
}

/// What a peer answers. Remote errors travel as text: the caller only logs them.
#[derive(Debug, Serialize, Deserialize)]
pub enum RpcResponse {
    AppendEntries(Result<AppendEntriesResponse<TypeConfig>, String>),
    Vote(Result<VoteResponse<TypeConfig>, String>),
    FullSnapshot(Result<SnapshotResponse<TypeConfig>, String>),
    TransferLeader(Result<TransferLeaderResponse<TypeConfig>, String>),
    ClientWrite(Result<Response, ForwardError>),
    ReadIndex(Result<u64, ForwardError>),
    /// The request could not be decoded or served.
    Refused(String),
    ClientWriteMany(Vec<Result<Response, ForwardError>>),
    Admin(AdminResult),
    Status(PeerStatus),
    /// How many subscribers on this node received a [`RpcRequest::Publish`].
    Published(u64),
    /// Whether a [`RpcRequest::SnapshotChunk`] was taken.
    SnapshotChunk(Result<(), String>),
}

/// Encodes one frame of at most `max` body bytes; `Err` (nothing to send) when it is larger.
pub fn encode_frame<T: Serialize>(msg: &T, max: u32) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 4];
    buf.push(PEER_PROTOCOL_VERSION);
    let mut buf =
        postcard::to_extend(msg, buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    let len = u32::try_from(buf.len() - 4).ok().filter(|l| *l <= max);
    let Some(len) = len else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "peer frame of {} bytes exceeds the {max} byte limit",
                buf.len() - 4
            ),
        ));
    };
    buf[..4].copy_from_slice(&len.to_be_bytes());
    Ok(buf)
}

/// Writes one frame.
pub async fn write_frame<W, T>(w: &mut W, msg: &T) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
    T: Serialize,
{
    let buf = encode_frame(msg, MAX_FRAME)?;
    w.write_all(&buf).await
}

/// Writes the answers of one peer connection as they come, until `rx` closes or the socket
/// fails. **OversizeReplyRefused**: an answer over `max` bytes (a forwarded `GETDEL` or `EXEC`
/// of several huge values) is replaced by [`RpcResponse::Refused`] with the same id, so that
/// caller gets an error at once and the connection, with every other call in flight on it,
/// lives.
async fn write_replies<W: AsyncWrite + Unpin>(
    mut wr: W,
    mut rx: mpsc::Receiver<Envelope<RpcResponse>>,
    max: u32,
) -> io::Result<()> {
    while let Some(resp) = rx.recv().await {
        let buf = match encode_frame(&resp, max) {
            Ok(buf) => buf,
            Err(e) => {
                tracing::warn!(id = resp.id, error = %e, "peer reply refused: too large");
                let refused = Envelope {
                    id: resp.id,
                    body: RpcResponse::Refused(format!(
                        "the reply does not fit a peer frame ({e}); the request was served, \
                         its answer is lost"
                    )),
                };
                encode_frame(&refused, max)?
            }
        };
        wr.write_all(&buf).await?;
    }
    Ok(())
}

/// Reads one frame of at most `max` bytes. `Ok(None)` on a clean end of stream.
pub async fn read_frame<R, T>(r: &mut R, max: u32) -> io::Result<Option<T>>
where
    R: AsyncRead + Unpin,
    T: DeserializeOwned,
{
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len);
    if len == 0 || len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("peer frame length {len} outside 1..={max}"),
        ));
    }
    // BoundedPeerAlloc: grows with the bytes that arrive, not with the declared length.
    let mut body = Vec::with_capacity((len as usize).min(64 * 1024));
    let got = r.take(u64::from(len)).read_to_end(&mut body).await?;
    if got != len as usize {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("peer frame cut short: {got} of {len} bytes"),
        ));
    }
    match body.split_first() {
        Some((&PEER_PROTOCOL_VERSION, rest)) => postcard::from_bytes(rest).map(Some).map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidData, format!("bad peer frame: {e}"))
        }),
        Some((v, _)) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("peer speaks protocol version {v}, this node speaks {PEER_PROTOCOL_VERSION}"),
        )),
        None => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "empty peer frame",
        )),
    }
}

/// HMAC-SHA256 keyed with the cluster secret over what the handshake binds: the protocol,
/// the proving side, the cluster name, both node ids and both nonces of this connection.
fn handshake_hmac(secret: &str, side: Side, hello: &Hello, nonce: &[u8; 32]) -> Hmac<Sha256> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(b"redraft-peer/2\0");
    mac.update(match side {
        Side::Client => b"client\0",
        Side::Server => b"server\0",
    });
    mac.update(hello.cluster.as_bytes());
    mac.update(b"\0");
    mac.update(&hello.from.to_be_bytes());
    mac.update(&hello.to.to_be_bytes());
    mac.update(&hello.nonce);
    mac.update(nonce);
    mac
}

/// The proof that `side` knows the cluster secret, bound to this connection's nonces (`nonce`
/// is the server's; the client's is in `hello`), or empty without a secret.
pub fn handshake_mac(secret: Option<&str>, side: Side, hello: &Hello, nonce: &[u8; 32]) -> Vec<u8> {
    match secret {
        Some(secret) => handshake_hmac(secret, side, hello, nonce)
            .finalize()
            .into_bytes()
            .to_vec(),
        None => Vec::new(),
    }
}

fn verify_mac(secret: &str, side: Side, hello: &Hello, nonce: &[u8; 32], got: &[u8]) -> bool {
    // Constant-time comparison.
    handshake_hmac(secret, side, hello, nonce)
        .verify_slice(got)
        .is_ok()
}

/// Server side of the handshake. Returns the peer's node id when it is welcome.
pub(super) async fn accept_handshake(stream: &mut TcpStream, me: &PeerIdentity) -> io::Result<u64> {
    let hello: Hello = read_frame(stream, MAX_HANDSHAKE_FRAME)
        .await?
        .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "closed before hello"))?;
    let refuse = |why: String| io::Error::new(io::ErrorKind::PermissionDenied, why);
    if hello.cluster != me.cluster {
        let why = format!(
            "refused peer node {} of cluster {:?}: this node belongs to cluster {:?}",
            hello.from, hello.cluster, me.cluster
        );
        write_frame(stream, &HelloReply::Refused(why.clone())).await?;
        return Err(refuse(why));
    }
    if hello.to != me.node_id {
        let why = format!(
            "refused peer node {}: it addressed node {} but this is node {}",
            hello.from, hello.to, me.node_id
        );
        write_frame(stream, &HelloReply::Refused(why.clone())).await?;
        return Err(refuse(why));
    }
    let nonce: [u8; 32] = rand::random();
    let mac = handshake_mac(me.secret.as_deref(), Side::Server, &hello, &nonce);
    write_frame(stream, &HelloReply::Challenge { nonce, mac }).await?;
    let proof: Proof = read_frame(stream, MAX_HANDSHAKE_FRAME)
        .await?
        .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "closed before proof"))?;
    if let Some(secret) = &me.secret {
        if !verify_mac(secret, Side::Client, &hello, &nonce, &proof.mac) {
            let why = format!(
                "refused peer node {}: it did not prove the cluster secret",
                hello.from
            );
            write_frame(stream, &Verdict::Refused(why.clone())).await?;
            return Err(refuse(why));
        }
    }
    write_frame(stream, &Verdict::Welcome).await?;
    Ok(hello.from)
}

/// Client side of the handshake.
pub async fn connect_handshake(
    stream: &mut TcpStream,
    me: &PeerIdentity,
    target: u64,
) -> io::Result<()> {
    let hello = Hello {
        cluster: me.cluster.clone(),
        from: me.node_id,
        to: target,
        nonce: rand::random(),
    };
    write_frame(stream, &hello).await?;
    let reply: HelloReply = read_frame(stream, MAX_HANDSHAKE_FRAME)
        .await?
        .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "peer closed"))?;
    let (nonce, server_mac) = match reply {
        HelloReply::Challenge { nonce, mac } => (nonce, mac),
        HelloReply::Refused(why) => {
            return Err(io::Error::new(io::ErrorKind::PermissionDenied, why));
        }
    };
    // MutualPeerAuth: the node we dialled must prove the secret before we send it anything.
    if let Some(secret) = &me.secret {
        if !verify_mac(secret, Side::Server, &hello, &nonce, &server_mac) {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("refused node {target}: it did not prove the cluster secret"),
            ));
        }
    }
    let mac = handshake_mac(me.secret.as_deref(), Side::Client, &hello, &nonce);
    write_frame(stream, &Proof { mac }).await?;
    let verdict: Verdict = read_frame(stream, MAX_HANDSHAKE_FRAME)
        .await?
        .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "peer closed"))?;
    match verdict {
        Verdict::Welcome => Ok(()),
        Verdict::Refused(why) => Err(io::Error::new(io::ErrorKind::PermissionDenied, why)),
    }
}

/// Serves peer RPCs on `listener` until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    raft: Raft,
    me: PeerIdentity,
    liveness: Arc<Liveness>,
    pubsub: Arc<PubSub>,
    sm: StateMachineStore,
    mut shutdown: watch::Receiver<bool>,
) {
    let me = Arc::new(me);
    loop {
        let (mut stream, addr) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "peer accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let _ = stream.set_nodelay(true);
        let raft = raft.clone();
        let me = me.clone();
        let shutdown = shutdown.clone();
        let liveness = liveness.clone();
        let pubsub = pubsub.clone();
        let sm = sm.clone();
        tokio::spawn(async move {
            let peer =
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, accept_handshake(&mut stream, &me))
                    .await
                {
                    Ok(Ok(peer)) => peer,
                    Ok(Err(e)) => {
                        tracing::warn!(%addr, error = %e, "peer handshake refused");
                        return;
                    }
                    Err(_) => {
                        tracing::warn!(%addr, "peer handshake timed out");
                        return;
                    }
                };
            tracing::debug!(%addr, peer, "peer connected");
            if let Err(e) = serve_conn(stream, raft, peer, liveness, pubsub, sm, shutdown).await {
                tracing::debug!(%addr, peer, error = %e, "peer connection closed");
            }
        });
    }
}

async fn serve_conn(
    stream: TcpStream,
    raft: Raft,
    peer: u64,
    liveness: Arc<Liveness>,
    pubsub: Arc<PubSub>,
    sm: StateMachineStore,
    mut shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    let (mut rd, wr) = stream.into_split();
    // The snapshot transfer in progress on this connection (`snapshot_transfer.rs`).
    let mut incoming = None;
    // Bounded: a peer that stops reading its answers stops being served, not the node.
    let (tx, rx) = mpsc::channel::<Envelope<RpcResponse>>(1024);
    let writer = tokio::spawn(write_replies(wr, rx, MAX_FRAME));
    loop {
        let req: Envelope<RpcRequest> = tokio::select! {
            r = read_frame(&mut rd, MAX_FRAME) => match r? {
                Some(req) => req,
                None => break,
            },
            _ = shutdown.changed() => break,
        };
        let raft = raft.clone();
        let tx = tx.clone();
        let liveness = liveness.clone();
        if let RpcRequest::Publish { channel, message } = &req.body {
            // Delivered in arrival order, before the next request is read (PublishOrdered).
            let received = pubsub.publish(channel, message) as u64;
            let _ = tx
                .send(Envelope {
                    id: req.id,
                    body: RpcResponse::Published(received),
                })
                .await;
            continue;
        }
        match req.body {
            RpcRequest::SnapshotChunk {
                transfer,
                offset,
                data,
            } => {
                // In arrival order, before the next request is read (the leader waits for
                // each answer anyway).
                let r = snapshot_transfer::take_chunk(&sm, &mut incoming, transfer, offset, &data);
                let body = RpcResponse::SnapshotChunk(r);
                let _ = tx.send(Envelope { id: req.id, body }).await;
                continue;
            }
            RpcRequest::SnapshotEnd {
                transfer,
                len,
                vote,
                meta,
            } => {
                let taken = incoming.take();
                tokio::spawn(async move {
                    let body = RpcResponse::FullSnapshot(
                        install_transfer(&raft, taken, transfer, len, vote, meta).await,
                    );
                    let _ = tx.send(Envelope { id: req.id, body }).await;
                });
                continue;
            }
            RpcRequest::FullSnapshot { vote, meta, data } => {
                let sm = sm.clone();
                tokio::spawn(async move {
                    let body = RpcResponse::FullSnapshot(
                        install_whole(&raft, &sm, vote, meta, data).await,
                    );
                    let _ = tx.send(Envelope { id: req.id, body }).await;
                });
                continue;
            }
            _ => {}
        }
        tokio::spawn(async move {
            let body = handle(&raft, peer, &liveness, req.body).await;
            let _ = tx.send(Envelope { id: req.id, body }).await;
        });
    }
    drop(tx);
    writer.abort();
    Ok(())
}

/// Why a vote request from `peer` is refused without asking Raft:
/// - this node started less than its follower lease ago (VoteAfterRestart, `health.rs`): it may
///   have acknowledged a leader just before it stopped, and that leader may still serve lease
///   reads;
/// - `peer` is not in this node's membership (NoDisruptiveRemoved). A node removed from the
///   cluster keeps its old membership and may campaign with ever higher terms; its requests
///   never reach Raft here, so it cannot depose the leader. A pristine node (no membership
///   yet) answers everyone.
fn refuse_vote(raft: &Raft, liveness: &Liveness, peer: u64) -> Option<String> {
    use openraft::async_runtime::WatchReceiver;
    if let Some(left) = liveness.votes_refused_for() {
        return Some(format!(
            "refuses the vote request of node {peer}: restarted recently, no vote for another \
             {} ms (a leader it acknowledged before the restart may still hold its lease)",
            left.as_millis()
        ));
    }
    let rx = raft.metrics();
    let m = rx.borrow_watched();
    let membership = m.membership_config.membership();
    let known = membership.nodes().next().is_some();
    (known && membership.get_node(&peer).is_none()).then(|| {
        format!(
            "node {} refuses the vote request of node {peer}: it is not a member of the cluster",
            m.id
        )
    })
}

async fn handle(raft: &Raft, peer: u64, liveness: &Liveness, req: RpcRequest) -> RpcResponse {
    match req {
        RpcRequest::AppendEntries(rpc) => {
            let resp = raft.append_entries(rpc).await.map_err(|e| e.to_string());
            if matches!(
                resp,
                Ok(AppendEntriesResponse::Success
                    | AppendEntriesResponse::PartialSuccess(_)
                    | AppendEntriesResponse::Conflict)
            ) {
                liveness.leader_contact();
            }
            RpcResponse::AppendEntries(resp)
        }
        RpcRequest::Vote(rpc) => match refuse_vote(raft, liveness, peer) {
            Some(why) => RpcResponse::Vote(Err(why)),
            None => RpcResponse::Vote(raft.vote(rpc).await.map_err(|e| e.to_string())),
        },
        RpcRequest::PreVote(rpc) => match refuse_vote(raft, liveness, peer) {
            Some(why) => RpcResponse::Vote(Err(why)),
            None => RpcResponse::Vote(raft.pre_vote(rpc).await.map_err(|e| e.to_string())),
        },
        // Answered in `serve_conn`, which holds the connection's transfer.
        RpcRequest::FullSnapshot { .. }
        | RpcRequest::SnapshotChunk { .. }
        | RpcRequest::SnapshotEnd { .. } => {
            RpcResponse::Refused("snapshot request out of place".into())
        }
        RpcRequest::TransferLeader(rpc) => RpcResponse::TransferLeader(
            raft.handle_transfer_leader(rpc)
                .await
                .map_err(|e| e.to_string()),
        ),
        RpcRequest::ClientWrite(req) => {
            RpcResponse::ClientWrite(match raft.client_write(stamp(req)).await {
                Ok(resp) => Ok(resp.data),
                Err(e) => Err(forward_error(&e)),
            })
        }
        RpcRequest::ClientWriteMany(reqs) => {
            RpcResponse::ClientWriteMany(client_write_many(raft, reqs).await)
        }
        RpcRequest::ReadIndex => RpcResponse::ReadIndex(
            match raft.get_read_linearizer(ReadPolicy::ReadIndex).await {
                Ok(lin) => Ok(lin.read_log_id().index()),
                Err(e) => Err(forward_error(&e)),
            },
        ),
        RpcRequest::Admin(req) => {
            RpcResponse::Admin(membership::serve_local(raft, liveness, req).await)
        }
        RpcRequest::Status => {
            use openraft::async_runtime::WatchReceiver;
            let initialized = raft.is_initialized().await.unwrap_or(true);
            let leader = raft.metrics().borrow_watched().current_leader;
            RpcResponse::Status(PeerStatus {
                initialized,
                leader,
            })
        }
        // Answered in `serve_conn`, in arrival order.
        RpcRequest::Publish { .. } => RpcResponse::Published(0),
    }
}

/// Ends a chunked snapshot transfer: checks the received bytes (off the runtime) and, only if
/// they are a complete, valid store, hands them to openraft to install (TransferLosesNothing).
async fn install_transfer(
    raft: &Raft,
    incoming: Option<snapshot_transfer::Incoming>,
    transfer: u64,
    len: u64,
    vote: Vote,
    meta: SnapshotMeta,
) -> Result<SnapshotResponse<TypeConfig>, String> {
    let incoming =
        incoming.ok_or_else(|| format!("snapshot transfer {transfer} was not started"))?;
    let file =
        tokio::task::spawn_blocking(move || snapshot_transfer::finish(incoming, transfer, len))
            .await
            .map_err(|e| e.to_string())??;
    let snapshot = Snapshot {
        meta,
        snapshot: file,
    };
    raft.install_full_snapshot(vote, snapshot)
        .await
        .map_err(|e| e.to_string())
}

/// Installs a snapshot sent whole in one frame (a peer of an older build), checked first.
async fn install_whole(
    raft: &Raft,
    sm: &StateMachineStore,
    vote: Vote,
    meta: SnapshotMeta,
    data: Vec<u8>,
) -> Result<SnapshotResponse<TypeConfig>, String> {
    let sm = sm.clone();
    let file = tokio::task::spawn_blocking(move || snapshot_transfer::receive_whole(&sm, &data))
        .await
        .map_err(|e| e.to_string())??;
    let snapshot = Snapshot {
        meta,
        snapshot: file,
    };
    raft.install_full_snapshot(vote, snapshot)
        .await
        .map_err(|e| e.to_string())
}

/// Appends `reqs` in order as consecutive entries (openraft `client_write_many`) and returns
/// one result per request, in order: the store's response once applied, or why not. A request
/// with an error may still be applied (the follower retries it with the same `(client_id, seq)`).
async fn client_write_many(raft: &Raft, reqs: Vec<Request>) -> Vec<Result<Response, ForwardError>> {
    let n = reqs.len();
    let mut results = Vec::with_capacity(n);
    append_many(raft, reqs, &mut results).await;
    // Fewer results only when Raft stopped: the rest share the last failure.
    let last = match results.last() {
        Some(Err(e)) => e.clone(),
        _ => ForwardError::NotLeader { leader: None },
    };
    results.resize(n, Err(last));
    results
}

/// Appends `reqs` in order as consecutive entries on this node, as leader, and pushes each
/// one's result onto `results` as it arrives (so a caller that gives up keeps what came).
/// Stops early only if Raft stopped.
pub(super) async fn append_many(
    raft: &Raft,
    reqs: Vec<Request>,
    results: &mut Vec<Result<Response, ForwardError>>,
) {
    let reqs = reqs.into_iter().map(stamp).collect::<Vec<_>>();
    let mut stream = match raft.client_write_many(reqs).await {
        Ok(stream) => stream,
        Err(fatal) => {
            results.push(Err(ForwardError::Fatal(fatal.to_string())));
            return;
        }
    };
    while let Some(item) = stream.next().await {
        results.push(match item {
            Ok(Ok(written)) => Ok(written.response),
            // ForwardToLeader (not appended) or LogEntryDiscarded (outcome unknown).
            Ok(Err(e)) => Err(ForwardError::NotLeader {
                leader: e.try_as_ref().and_then(|f| f.leader_id),
            }),
            Err(fatal) => Err(ForwardError::Fatal(fatal.to_string())),
        });
    }
}

/// Turns a raft API error into what a forwarding follower needs to know.
pub fn forward_error<E>(e: &openraft::errors::RaftError<TypeConfig, E>) -> ForwardError
where
    E: std::error::Error + TryAsRef<openraft::errors::ForwardToLeader<TypeConfig>>,
{
    match e {
        openraft::errors::RaftError::Fatal(f) => ForwardError::Fatal(f.to_string()),
        openraft::errors::RaftError::APIError(api) => match api.try_as_ref() {
            Some(fwd) => ForwardError::NotLeader {
                leader: fwd.leader_id,
            },
            None => ForwardError::NotLeader { leader: None },
        },
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;

    use super::*;

    fn ident(cluster: &str, secret: Option<&str>, node_id: u64) -> PeerIdentity {
        PeerIdentity {
            cluster: cluster.into(),
            secret: secret.map(Into::into),
            node_id,
        }
    }

    /// Runs one handshake: `server` accepts, `client` dials node `target`.
    async fn handshake(
        server: PeerIdentity,
        client: PeerIdentity,
        target: u64,
    ) -> (io::Result<u64>, io::Result<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let srv = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            accept_handshake(&mut s, &server).await
        });
        let mut c = TcpStream::connect(addr).await.unwrap();
        let cli = connect_handshake(&mut c, &client, target).await;
        // A client that gave up closes its end, so the server is not left waiting.
        drop(c);
        (srv.await.unwrap(), cli)
    }

    #[tokio::test]
    async fn same_cluster_and_secret_is_welcome() {
        let (s, c) = handshake(ident("a", Some("k"), 1), ident("a", Some("k"), 2), 1).await;
        assert_eq!(s.unwrap(), 2);
        c.unwrap();
        let (s, c) = handshake(ident("a", None, 1), ident("a", None, 2), 1).await;
        assert_eq!(s.unwrap(), 2);
        c.unwrap();
    }

    #[tokio::test]
    async fn another_cluster_is_refused_with_both_names() {
        let (s, c) = handshake(ident("a", None, 1), ident("b", None, 2), 1).await;
        let msg = s.unwrap_err().to_string();
        assert!(msg.contains("\"b\"") && msg.contains("\"a\""), "{msg}");
        let cmsg = c.unwrap_err().to_string();
        assert!(cmsg.contains("cluster"), "{cmsg}");
    }

    #[tokio::test]
    async fn wrong_target_node_is_refused() {
        let (s, c) = handshake(ident("a", None, 1), ident("a", None, 2), 3).await;
        assert!(s
            .unwrap_err()
            .to_string()
            .contains("addressed node 3 but this is node 1"));
        assert_eq!(c.unwrap_err().kind(), io::ErrorKind::PermissionDenied);
    }

    #[tokio::test]
    async fn wrong_or_missing_secret_is_refused() {
        // Without a secret the client sends an empty proof: the server refuses it.
        let (s, c) = handshake(ident("a", Some("k"), 1), ident("a", None, 2), 1).await;
        assert!(s
            .unwrap_err()
            .to_string()
            .contains("node 2: it did not prove the cluster secret"));
        assert_eq!(c.unwrap_err().kind(), io::ErrorKind::PermissionDenied);
        // With another secret the server's proof fails first: the client leaves, and the
        // server never welcomes it.
        let (s, c) = handshake(ident("a", Some("k"), 1), ident("a", Some("wrong"), 2), 1).await;
        assert!(s.is_err(), "{s:?}");
        let c = c.unwrap_err();
        assert_eq!(c.kind(), io::ErrorKind::PermissionDenied);
        assert!(c.to_string().contains("node 1: it did not prove"), "{c}");
    }

    #[test]
    fn mac_binds_side_cluster_nodes_and_both_nonces() {
        let hello = Hello {
            cluster: "a".into(),
            from: 2,
            to: 1,
            nonce: [5u8; 32],
        };
        let nonce = [7u8; 32];
        let mac = handshake_mac(Some("k"), Side::Client, &hello, &nonce);
        assert!(verify_mac("k", Side::Client, &hello, &nonce, &mac));
        assert!(
            !verify_mac("k", Side::Server, &hello, &nonce, &mac),
            "a client proof is not a server proof (no reflection)"
        );
        let nonce2 = [8u8; 32];
        assert!(
            !verify_mac("k", Side::Client, &hello, &nonce2, &mac),
            "another nonce"
        );
        assert!(
            !verify_mac("other", Side::Client, &hello, &nonce, &mac),
            "another secret"
        );
        let other = Hello { from: 3, ..hello };
        assert!(
            !verify_mac("k", Side::Client, &other, &nonce, &mac),
            "another sender"
        );
        let other = Hello {
            nonce: [6u8; 32],
            ..other
        };
        assert!(
            !verify_mac("k", Side::Client, &other, &nonce, &mac),
            "another client nonce"
        );
        assert!(handshake_mac(None, Side::Client, &other, &nonce).is_empty());
    }

    /// MutualPeerAuth: a node without the secret that answers on a peer's address (an
    /// impostor, or a node of a cluster that runs without one) is refused by the dialling node
    /// before it sends any request.
    #[tokio::test]
    async fn a_server_without_the_secret_is_refused_by_the_client() {
        for server_secret in [None, Some("wrong")] {
            let (s, c) = handshake(ident("a", server_secret, 1), ident("a", Some("k"), 2), 1).await;
            let c = c.unwrap_err();
            assert_eq!(c.kind(), io::ErrorKind::PermissionDenied, "{c}");
            assert!(
                c.to_string()
                    .contains("node 1: it did not prove the cluster secret"),
                "{c}"
            );
            // The client left without a proof: the server saw the connection end.
            assert!(s.is_err(), "{s:?}");
        }
    }

    /// BoundedPeerAlloc: a frame that declares the largest length but sends a few bytes
    /// allocates what arrived, and ends as a short frame.
    #[tokio::test]
    async fn a_declared_length_is_not_allocated_before_its_bytes_arrive() {
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&MAX_FRAME.to_be_bytes()).await.unwrap();
        a.write_all(&[PEER_PROTOCOL_VERSION, 1, 2, 3])
            .await
            .unwrap();
        drop(a);
        let r: io::Result<Option<Hello>> = read_frame(&mut b, MAX_FRAME).await;
        let e = r.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{e}");
        assert!(e.to_string().contains("4 of 1073741824 bytes"), "{e}");
    }

    #[tokio::test]
    async fn oversized_and_garbage_frames_are_errors_not_panics() {
        // A declared length over the limit is refused before reading (or allocating) the body.
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&(MAX_HANDSHAKE_FRAME + 1).to_be_bytes())
            .await
            .unwrap();
        let r: io::Result<Option<Hello>> = read_frame(&mut b, MAX_HANDSHAKE_FRAME).await;
        assert_eq!(r.unwrap_err().kind(), io::ErrorKind::InvalidData);

        // Another protocol version.
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&[0, 0, 0, 2, PEER_PROTOCOL_VERSION + 1, 0])
            .await
            .unwrap();
        let r: io::Result<Option<Hello>> = read_frame(&mut b, MAX_FRAME).await;
        assert!(r.unwrap_err().to_string().contains("protocol version"));

        // Random bodies never panic.
        for seed in 0u8..=255 {
            let body: Vec<u8> = (0..40u8)
                .map(|i| i.wrapping_mul(31).wrapping_add(seed))
                .collect();
            let (mut a, mut b) = tokio::io::duplex(256);
            a.write_all(&(body.len() as u32 + 1).to_be_bytes())
                .await
                .unwrap();
            a.write_all(&[PEER_PROTOCOL_VERSION]).await.unwrap();
            a.write_all(&body).await.unwrap();
            let _: io::Result<Option<Envelope<RpcRequest>>> = read_frame(&mut b, MAX_FRAME).await;
        }

        // A clean end of stream is not an error.
        let (a, mut b) = tokio::io::duplex(64);
        drop(a);
        let r: io::Result<Option<Hello>> = read_frame(&mut b, MAX_FRAME).await;
        assert!(r.unwrap().is_none());
    }

    /// OversizeReplyRefused: the caller of an answer too large for a frame gets a refusal with
    /// its id, and the answers after it still arrive on the same connection.
    #[tokio::test]
    async fn an_oversize_reply_is_refused_and_the_connection_lives() {
        let (a, mut b) = tokio::io::duplex(1 << 16);
        let (tx, rx) = mpsc::channel(8);
        let writer = tokio::spawn(write_replies(a, rx, 1000));
        let big = RpcResponse::Refused("x".repeat(5000));
        tx.send(Envelope { id: 1, body: big }).await.unwrap();
        tx.send(Envelope {
            id: 2,
            body: RpcResponse::Published(7),
        })
        .await
        .unwrap();
        let first: Envelope<RpcResponse> = read_frame(&mut b, MAX_FRAME).await.unwrap().unwrap();
        assert_eq!(first.id, 1);
        match first.body {
            RpcResponse::Refused(why) => {
                assert!(why.contains("does not fit a peer frame"), "{why}");
                assert!(why.contains("1000 byte limit"), "{why}");
            }
            other => panic!("want Refused, got {other:?}"),
        }
        let second: Envelope<RpcResponse> =
            tokio::time::timeout(Duration::from_secs(5), read_frame(&mut b, MAX_FRAME))
                .await
                .expect("the answer after the oversize one never came: the writer died")
                .unwrap()
                .unwrap();
        assert_eq!(second.id, 2);
        assert!(matches!(second.body, RpcResponse::Published(7)));
        drop(tx);
        writer.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn frames_round_trip() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        let sent = Envelope {
            id: 42,
            body: RpcRequest::ReadIndex,
        };
        write_frame(&mut a, &sent).await.unwrap();
        let got: Envelope<RpcRequest> = read_frame(&mut b, MAX_FRAME).await.unwrap().unwrap();
        assert_eq!(got.id, 42);
        assert!(matches!(got.body, RpcRequest::ReadIndex));
    }
}
