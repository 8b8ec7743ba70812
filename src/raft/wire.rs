//! The peer wire format: every message two nodes exchange, and how it is framed. Owns the
//! bytes between nodes (the handshake's proofs are in `handshake.rs`, the inbound server in
//! `rpc.rs`, the outbound connections in `peer_conn.rs`); knows nothing of RESP.
//!
//! # Framing
//!
//! Every message is `u32 big-endian length ++ PEER_PROTOCOL_VERSION ++ postcard(message)`.
//! A length over [`MAX_HANDSHAKE_FRAME`] before authentication, or over [`MAX_FRAME`] after, is
//! refused before anything is allocated, and a frame's buffer grows only as its bytes arrive
//! (**BoundedPeerAlloc**): a peer that declares a large frame and sends nothing costs nothing.
//!
//!
//! The handshake's messages ([`Hello`], [`HelloReply`], [`Proof`], [`Verdict`]) are drawn in
//! `handshake.rs`. After it, the client sends [`Envelope`]s of [`RpcRequest`] and the server
//! answers each with an `Envelope` of [`RpcResponse`] carrying the same id. Changing a
//! message here changes [`PEER_PROTOCOL_VERSION`], with one exception that keeps mixed
//! versions talking during a rolling upgrade: a request variant appended at the end of
//! [`RpcRequest`] (with its answer appended to [`RpcResponse`]). An older node cannot decode
//! it and answers [`RpcResponse::Refused`] with its id ([`read_request`]); the caller then
//! falls back to what older nodes serve (**AppendedRequestsFallBack**). Nodes built before
//! 2026-12-06 closed the connection on such a request instead, so a caller never falls back to
//! one of them (README, "Rolling upgrade").

use std::io;

use bytes::Bytes;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::append_encoded::AppendEncoded;
use super::error::AdminResult;
use super::typ::{LogId, SnapshotMeta, Vote};
use super::{PeerNode, TypeConfig};
use crate::store::{Request, Response};

/// The first byte of every peer frame body.
pub const PEER_PROTOCOL_VERSION: u8 = 3;
/// Largest frame accepted before the handshake completes.
pub const MAX_HANDSHAKE_FRAME: u32 = 64 * 1024;
/// Largest frame accepted from an authenticated peer (a whole snapshot travels in one frame).
pub const MAX_FRAME: u32 = 1024 * 1024 * 1024;
/// Bytes a peer connection's reading half buffers (`rpc.rs`, `peer_conn.rs`): frames up to this
/// size, and several small ones, cost one `read` between them.
pub const PEER_READ_BUFFER: usize = 64 * 1024;
/// **EntryBytesBound.** The largest encoded request proposed as one entry: one entry must fit
/// a peer frame ([`MAX_FRAME`], 1 GiB) with room for the AppendEntries around it, or no
/// follower could ever receive it and replication would stall. Redis's own query-buffer limit
/// is 1 GB, so every command Redis would accept from one client fits, apart from the extreme.
pub const MAX_ENTRY_BYTES: usize = MAX_FRAME as usize - (1 << 20);

/// The most entry bytes one AppendEntries frame carries (AppendBytesBound): openraft bounds a
/// batch by count (`max_payload_entries`), not by size, and 300 entries of a few MB each would
/// exceed the peer frame limit ([`MAX_FRAME`]), which the follower refuses — replication would
/// retry the same batch forever. Replication reads no more than this at a time either
/// (ReplicationReadBound, `log_store.rs`).
pub const MAX_APPEND_BYTES: usize = 64 << 20;

/// Who this node is, for the handshake.
#[derive(Clone, Debug)]
pub struct PeerIdentity {
    pub cluster: String,
    pub secret: Option<String>,
    pub node_id: u64,
    /// Peer traffic over mutual TLS (`[tls] peers`): its acceptor and connector.
    pub tls: Option<std::sync::Arc<crate::tls::TlsContext>>,
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
    /// Writes forwarded by a follower (`forward.rs`: one client's run, or the writes of
    /// several clients waiting there), to be proposed consecutively in this order (one
    /// request, so nothing can reorder them on the way; one batcher job on the leader);
    /// answered, one result per write in the same order, once each is applied or has failed.
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
    /// A follower in lease mode asks the leader for a read index fixed by the leader's lease
    /// (LeaseBound, `read.rs`), with no quorum round when the lease holds. Answered by
    /// [`RpcResponse::LeaseReadIndex`]; an older leader answers `Refused`
    /// (AppendedRequestsFallBack: the follower asks for a ReadIndex instead).
    LeaseReadIndex,
    /// The leader of `vote` has flushed its log up to `flushed`, an entry of its own term
    /// (`early_commit.rs`): a follower that flushed it too knows it committed. Answered by
    /// [`RpcResponse::LeaderFlushed`] at once; an older node answers `Refused`
    /// (AppendedRequestsFallBack: the leader stops announcing to it).
    LeaderFlushed {
        vote: Vote,
        flushed: LogId,
    },
    /// An AppendEntries whose requests travel as bytes (DecodeOnApply,
    /// `append_encoded.rs`). Answered by [`RpcResponse::AppendEntries`]; an older node answers
    /// `Refused` (AppendedRequestsFallBack: the leader sends it [`RpcRequest::AppendEntries`]).
    AppendEntriesEncoded(AppendEncoded),
}

/// What [`RpcRequest::LeaseReadIndex`] answers: the index to read at, and whether the leader's
/// lease fixed it (`false`: the lease could not be shown to hold, a ReadIndex round did).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseIndex {
    pub index: u64,
    pub by_lease: bool,
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
    LeaseReadIndex(Result<LeaseIndex, ForwardError>),
    /// A [`RpcRequest::LeaderFlushed`] was taken.
    LeaderFlushed,
}

/// A cluster administration request, served by the leader.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdminRequest {
    /// Adds `id` as a learner, waits until it caught up, then makes it a voter.
    AddNode { id: u64, node: PeerNode },
    /// Removes `id` (a voter through joint consensus, or a learner).
    RemoveNode { id: u64 },
    /// Transfers leadership to `to`, or to the most caught-up voter.
    Transfer { to: Option<u64> },
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

/// Reads one frame of at most `max` bytes. `Ok(None)` on a clean end of stream.
pub async fn read_frame<R, T>(r: &mut R, max: u32) -> io::Result<Option<T>>
where
    R: AsyncRead + Unpin,
    T: DeserializeOwned,
{
    let Some(body) = read_body(r, max).await? else {
        return Ok(None);
    };
    let rest = versioned(&body)?;
    postcard::from_bytes(rest)
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("bad peer frame: {e}")))
}

/// What [`read_request`] read.
#[derive(Debug)]
pub enum Incoming {
    Request(Envelope<RpcRequest>),
    /// A well-framed request whose body this node cannot decode: a request variant appended
    /// by a newer version. Answered [`RpcResponse::Refused`] with its id, and the connection
    /// goes on (AppendedRequestsFallBack).
    Undecodable {
        id: u64,
        why: String,
    },
}

/// Reads one request frame of at most `max` bytes (`Ok(None)` on a clean end of stream). A
/// frame whose body does not decode but starts with an id is [`Incoming::Undecodable`];
/// anything else that does not decode is an error, as in [`read_frame`].
pub async fn read_request<R>(r: &mut R, max: u32) -> io::Result<Option<Incoming>>
where
    R: AsyncRead + Unpin,
{
    let Some(body) = read_body(r, max).await? else {
        return Ok(None);
    };
    let rest = versioned(&body)?;
    match postcard::from_bytes::<Envelope<RpcRequest>>(rest) {
        Ok(req) => Ok(Some(Incoming::Request(req))),
        Err(e) => match postcard::take_from_bytes::<u64>(rest) {
            Ok((id, _)) => Ok(Some(Incoming::Undecodable {
                id,
                why: format!("cannot decode the request: {e}"),
            })),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("bad peer frame: {e}"),
            )),
        },
    }
}

/// The body of one frame of at most `max` bytes (BoundedPeerAlloc); `Ok(None)` on a clean end
/// of stream.
async fn read_body<R: AsyncRead + Unpin>(r: &mut R, max: u32) -> io::Result<Option<Vec<u8>>> {
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
    Ok(Some(body))
}

/// A frame body without its protocol version byte, which must be this node's.
fn versioned(body: &[u8]) -> io::Result<&[u8]> {
    match body.split_first() {
        Some((&PEER_PROTOCOL_VERSION, rest)) => Ok(rest),
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

/// The postcard-encoded length of `value`, counted without allocating the encoding.
pub fn encoded_len<T: Serialize>(value: &T) -> usize {
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

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;

    use super::*;

    /// AppendedRequestsFallBack: a request this node cannot decode (a variant a newer node
    /// appended) is read as undecodable with its id, to be refused, and the request after it
    /// on the same stream reads normally.
    #[tokio::test]
    async fn an_unknown_request_is_read_with_its_id_and_the_stream_goes_on() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        // Id 42, a variant index no build has (127), then bytes it would carry.
        let unknown = [PEER_PROTOCOL_VERSION, 42, 127, 9, 9, 9];
        a.write_all(&(unknown.len() as u32).to_be_bytes())
            .await
            .unwrap();
        a.write_all(&unknown).await.unwrap();
        let known = Envelope {
            id: 43,
            body: RpcRequest::Status,
        };
        a.write_all(&encode_frame(&known, MAX_FRAME).unwrap())
            .await
            .unwrap();
        drop(a);
        match read_request(&mut b, MAX_FRAME).await.unwrap() {
            Some(Incoming::Undecodable { id, why }) => {
                assert_eq!(id, 42);
                assert!(why.contains("cannot decode"), "{why}");
            }
            other => panic!("want an undecodable request, got {other:?}"),
        }
        match read_request(&mut b, MAX_FRAME).await.unwrap() {
            Some(Incoming::Request(req)) => {
                assert_eq!(req.id, 43);
                assert!(matches!(req.body, RpcRequest::Status));
            }
            other => panic!("want the Status request, got {other:?}"),
        }
        assert!(read_request(&mut b, MAX_FRAME).await.unwrap().is_none());
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

    /// Peer connections read through a buffer (PEER_READ_BUFFER): frames smaller and larger
    /// than it, arriving in pieces and several at once, come out whole and in order, then the
    /// end of the stream.
    #[tokio::test]
    async fn buffered_reads_return_every_frame_whole_and_in_order() {
        let sizes = [
            1usize,
            10,
            3 * PEER_READ_BUFFER + 7,
            5,
            PEER_READ_BUFFER,
            0,
            3,
        ];
        let (mut a, b) = tokio::io::duplex(1000);
        let writer = tokio::spawn(async move {
            for (i, &n) in sizes.iter().enumerate() {
                let body = vec![i as u8; n];
                a.write_all(&encode_frame(&body, MAX_FRAME).unwrap())
                    .await
                    .unwrap();
            }
        });
        let mut rd = tokio::io::BufReader::with_capacity(PEER_READ_BUFFER, b);
        for (i, &n) in sizes.iter().enumerate() {
            let got: Vec<u8> = read_frame(&mut rd, MAX_FRAME).await.unwrap().unwrap();
            assert_eq!(got, vec![i as u8; n], "frame {i}");
        }
        writer.await.unwrap();
        let end: Option<Vec<u8>> = read_frame(&mut rd, MAX_FRAME).await.unwrap();
        assert!(end.is_none());
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
