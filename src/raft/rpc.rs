//! The inbound peer RPC server: accepts peer connections, runs the handshake
//! (`handshake.rs`), then serves the [`RpcRequest`]s of `wire.rs` concurrently on each
//! connection (one connection multiplexes many forwarded writes). Raft's own RPCs go to
//! openraft; forwarded client writes and read indexes go to the leader-side helpers
//! (`leader.rs`); administration to `membership.rs`; snapshot chunks to `snapshot_transfer.rs`.
//!
//! Knows nothing of RESP.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use super::batcher::Batcher;
use super::early_commit::EarlyCommit;
use super::handshake::{accept_handshake, HANDSHAKE_TIMEOUT};
use super::health::Liveness;
use super::leader;
use super::membership;
use super::snapshot_transfer;
use super::state_machine::StateMachineStore;
use super::typ::Raft;
use super::wire::{
    encode_frame, read_request, Envelope, ForwardError, Incoming, LeaseIndex, PeerIdentity,
    PeerStatus, RpcRequest, RpcResponse, MAX_FRAME, PEER_READ_BUFFER,
};
use super::TypeConfig;
use crate::tls::MaybeTls;
use crate::watch::pubsub::PubSub;

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

/// What this node needs to answer a follower's lease read index (FollowerLeaseReads): its id
/// and its lease (`max_quorum_ack_age`, LeaseBound).
#[derive(Clone, Copy)]
struct LeaderLease {
    id: u64,
    lease: Duration,
}

/// Serves peer RPCs on `listener` until `shutdown` turns true.
#[allow(clippy::too_many_arguments)]
pub async fn serve(
    listener: TcpListener,
    raft: Raft,
    batcher: Batcher,
    me: PeerIdentity,
    liveness: Arc<Liveness>,
    pubsub: Arc<PubSub>,
    sm: StateMachineStore,
    lease: Duration,
    early: Arc<EarlyCommit>,
    mut shutdown: watch::Receiver<bool>,
) {
    let lease = LeaderLease {
        id: me.node_id,
        lease,
    };
    let me = Arc::new(me);
    loop {
        let (stream, addr) = tokio::select! {
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
        let batcher = batcher.clone();
        let me = me.clone();
        let shutdown = shutdown.clone();
        let liveness = liveness.clone();
        let pubsub = pubsub.clone();
        let sm = sm.clone();
        let early = early.clone();
        tokio::spawn(async move {
            let mut stream = match me.tls.as_ref().and_then(|t| t.peer_acceptor()) {
                Some(tls) => {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(stream)).await {
                        Ok(Ok(s)) => MaybeTls::from(s),
                        // A dialler that gave up mid-handshake (its timeout, a fault) is
                        // routine; a refused certificate is not.
                        Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                            tracing::debug!(%addr, error = %e, "peer TLS handshake cut short");
                            return;
                        }
                        Ok(Err(e)) => {
                            tracing::warn!(%addr, error = %e, "peer TLS handshake refused");
                            return;
                        }
                        Err(_) => {
                            tracing::warn!(%addr, "peer TLS handshake timed out");
                            return;
                        }
                    }
                }
                None => MaybeTls::from(stream),
            };
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
            // PeerIsANode, PeerNamesChecked (`tls/mod.rs`): now that the dialler said which
            // node it is, its certificate must be that node's.
            if let (Some(tls), Some(chain)) = (me.tls.as_ref(), stream.peer_certificates()) {
                let member = {
                    use openraft::async_runtime::WatchReceiver;
                    let rx = raft.metrics();
                    let m = rx.borrow_watched();
                    m.membership_config
                        .membership()
                        .get_node(&peer)
                        .map(|n| n.raft_addr.clone())
                };
                if let Err(why) = tls.check_peer(chain, member.as_deref()) {
                    tracing::warn!(%addr, peer, "peer refused: {why}");
                    return;
                }
            }
            tracing::debug!(%addr, peer, "peer connected");
            if let Err(e) = serve_conn(
                stream, raft, batcher, peer, liveness, pubsub, sm, lease, early, shutdown,
            )
            .await
            {
                tracing::debug!(%addr, peer, error = %e, "peer connection closed");
            }
        });
    }
}

#[allow(clippy::too_many_arguments)]
async fn serve_conn(
    stream: MaybeTls,
    raft: Raft,
    batcher: Batcher,
    peer: u64,
    liveness: Arc<Liveness>,
    pubsub: Arc<PubSub>,
    sm: StateMachineStore,
    lease: LeaderLease,
    early: Arc<EarlyCommit>,
    mut shutdown: watch::Receiver<bool>,
) -> io::Result<()> {
    let (rd, wr) = tokio::io::split(stream);
    // Buffered: a frame's length and body, and every frame already received, come out of one
    // `read` (unbuffered, each frame cost a read for its length, one for its body and an
    // `EAGAIN`). Only `read_request` reads this half.
    let mut rd = tokio::io::BufReader::with_capacity(PEER_READ_BUFFER, rd);
    // The snapshot transfer in progress on this connection (`snapshot_transfer.rs`).
    let mut incoming = None;
    // Bounded: a peer that stops reading its answers stops being served, not the node.
    let (tx, rx) = mpsc::channel::<Envelope<RpcResponse>>(1024);
    let writer = tokio::spawn(write_replies(wr, rx, MAX_FRAME));
    // AppendInOrder: this connection's AppendEntries, handed to Raft in arrival order.
    let (appends, lane_rx) = mpsc::channel(APPEND_LANE);
    let lane = tokio::spawn(append_lane(
        raft.clone(),
        liveness.clone(),
        lane_rx,
        tx.clone(),
    ));
    loop {
        let req: Envelope<RpcRequest> = tokio::select! {
            r = read_request(&mut rd, MAX_FRAME) => match r? {
                Some(Incoming::Request(req)) => req,
                Some(Incoming::Undecodable { id, why }) => {
                    // AppendedRequestsFallBack: a newer node's request; it falls back.
                    tracing::debug!(peer, %why, "refusing a request this node cannot decode");
                    let body = RpcResponse::Refused(why);
                    if tx.send(Envelope { id, body }).await.is_err() {
                        break;
                    }
                    continue;
                }
                None => break,
            },
            _ = shutdown.changed() => break,
        };
        let raft = raft.clone();
        let batcher = batcher.clone();
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
            RpcRequest::LeaderFlushed { vote, flushed } => {
                // Answered at once: the leader keeps one in flight (AnnounceQuietly).
                early.leader_flushed(vote, flushed);
                let body = RpcResponse::LeaderFlushed;
                let _ = tx.send(Envelope { id: req.id, body }).await;
                continue;
            }
            RpcRequest::AppendEntries(rpc) => {
                if appends.send((req.id, rpc)).await.is_err() {
                    break;
                }
                continue;
            }
            RpcRequest::AppendEntriesEncoded(rpc) => {
                match rpc.into_request() {
                    Ok(rpc) => {
                        if appends.send((req.id, rpc)).await.is_err() {
                            break;
                        }
                    }
                    Err(why) => {
                        // CheckedInTransit: refused before it reaches the log; sent again.
                        tracing::warn!(peer, %why, "append refused");
                        let body = RpcResponse::AppendEntries(Err(why));
                        let _ = tx.send(Envelope { id: req.id, body }).await;
                    }
                }
                continue;
            }
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
                        snapshot_transfer::install_transfer(
                            &raft, taken, transfer, len, vote, meta,
                        )
                        .await,
                    );
                    let _ = tx.send(Envelope { id: req.id, body }).await;
                });
                continue;
            }
            RpcRequest::FullSnapshot { vote, meta, data } => {
                let sm = sm.clone();
                tokio::spawn(async move {
                    let body = RpcResponse::FullSnapshot(
                        snapshot_transfer::install_whole(&raft, &sm, vote, meta, data).await,
                    );
                    let _ = tx.send(Envelope { id: req.id, body }).await;
                });
                continue;
            }
            _ => {}
        }
        let early = early.clone();
        tokio::spawn(async move {
            let body = handle(&raft, &batcher, peer, &liveness, lease, &early, req.body).await;
            let _ = tx.send(Envelope { id: req.id, body }).await;
        });
    }
    drop(tx);
    lane.abort();
    writer.abort();
    Ok(())
}

/// AppendEntries a connection may have waiting for its lane.
const APPEND_LANE: usize = 64;

/// **AppendInOrder.** Serves one connection's AppendEntries: each is handed to Raft before the
/// next is taken (the first poll of `Raft::append_entries` queues it for openraft's core, which
/// takes its queue in order), and its answer is sent when Raft gives it, while later ones are
/// already queued. A leader keeps several in flight on one connection (AppendPipelined,
/// `pipeline.rs`); served each on a task of its own, as other requests are, a later one could
/// reach Raft first and be refused for a log id the earlier one brings.
async fn append_lane(
    raft: Raft,
    liveness: Arc<Liveness>,
    mut rx: mpsc::Receiver<(u64, AppendEntriesRequest<TypeConfig>)>,
    tx: mpsc::Sender<Envelope<RpcResponse>>,
) {
    use futures::StreamExt;
    let mut waiting = futures::stream::FuturesUnordered::new();
    loop {
        tokio::select! {
            biased;
            Some((id, body)) = waiting.next(), if !waiting.is_empty() => {
                if tx.send(Envelope { id, body }).await.is_err() {
                    return;
                }
            }
            req = rx.recv() => {
                let Some((id, rpc)) = req else { break };
                let (raft, liveness) = (raft.clone(), liveness.clone());
                let mut answer =
                    Box::pin(async move { (id, append_entries(&raft, &liveness, rpc).await) });
                // Queued for the core by this first poll, before the next request is read.
                match futures::poll!(answer.as_mut()) {
                    std::task::Poll::Ready((id, body)) => {
                        if tx.send(Envelope { id, body }).await.is_err() {
                            return;
                        }
                    }
                    std::task::Poll::Pending => waiting.push(answer),
                }
            }
        }
    }
    while let Some((id, body)) = waiting.next().await {
        if tx.send(Envelope { id, body }).await.is_err() {
            return;
        }
    }
}

/// Raft's answer to an AppendEntries; an accepted one is a contact from the leader.
async fn append_entries(
    raft: &Raft,
    liveness: &Liveness,
    rpc: AppendEntriesRequest<TypeConfig>,
) -> RpcResponse {
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

async fn handle(
    raft: &Raft,
    batcher: &Batcher,
    peer: u64,
    liveness: &Liveness,
    lease: LeaderLease,
    early: &EarlyCommit,
    req: RpcRequest,
) -> RpcResponse {
    // ReadFloor (`early_commit.rs`): read indexes given to followers cover what was announced.
    let floor = |index: u64| {
        use openraft::async_runtime::WatchReceiver;
        index.max(early.read_floor(&raft.metrics().borrow_watched()))
    };
    match req {
        RpcRequest::AppendEntries(rpc) => append_entries(raft, liveness, rpc).await,
        RpcRequest::AppendEntriesEncoded(rpc) => match rpc.into_request() {
            Ok(rpc) => append_entries(raft, liveness, rpc).await,
            Err(why) => RpcResponse::AppendEntries(Err(why)),
        },
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
            let answer = batcher.propose(vec![req]).await.into_iter().next();
            RpcResponse::ClientWrite(
                answer.unwrap_or_else(|| {
                    Err(ForwardError::Fatal("no answer from the batcher".into()))
                }),
            )
        }
        // One job for the batcher: proposed consecutively, in this order (JobOrder).
        RpcRequest::ClientWriteMany(reqs) => {
            RpcResponse::ClientWriteMany(batcher.propose(reqs).await)
        }
        RpcRequest::ReadIndex => RpcResponse::ReadIndex(leader::read_index(raft).await.map(floor)),
        RpcRequest::LeaseReadIndex => RpcResponse::LeaseReadIndex(
            leader::lease_read_index(raft, lease.id, liveness, lease.lease)
                .await
                .map(|l| LeaseIndex {
                    index: floor(l.index),
                    ..l
                }),
        ),
        // Answered in `serve_conn`, at once.
        RpcRequest::LeaderFlushed { .. } => RpcResponse::LeaderFlushed,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::wire::read_frame;

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
}
