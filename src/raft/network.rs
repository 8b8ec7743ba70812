//! Outbound Raft RPC: openraft's `RaftNetworkV2` over the peer connections of `peer_conn.rs`
//! (AppendEntries pipelined: `pipeline.rs`; snapshots in chunks: `snapshot_transfer.rs`).

use std::future::Future;
use std::io;
use std::sync::Arc;

use futures::Stream;
use openraft::base::{BoxFuture, BoxStream};
use openraft::errors::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory, RaftNetworkV2};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, StreamAppendResult,
    TransferLeaderRequest, TransferLeaderResponse, VoteRequest, VoteResponse,
};

use super::append_encoded::AppendFormat;
use super::peer_conn::{PeerError, PeerSlot};
use super::pipeline::{append_request, cut_to_frame_budget, for_sent, CommitTold, Pipeline};
use super::snapshot_transfer::chunk_bytes;
use super::typ::{Snapshot, Vote};
use super::wire::{PeerIdentity, RpcRequest, RpcResponse};
use super::{PeerNode, TypeConfig};

/// Builds openraft's per-target network clients.
#[derive(Clone)]
pub struct NetworkFactory {
    me: PeerIdentity,
    /// Who tells followers of commits (ProbeSkippedWhenTold, `pipeline.rs`).
    told: Option<Arc<dyn CommitTold>>,
}

impl NetworkFactory {
    pub fn new(me: PeerIdentity, told: Option<Arc<dyn CommitTold>>) -> Self {
        Self { me, told }
    }
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerClient;

    async fn new_client(&mut self, target: u64, node: &PeerNode) -> Self::Network {
        PeerClient {
            target,
            slot: PeerSlot::new(node.raft_addr.clone(), target, self.me.clone()),
            format: AppendFormat::new(),
            sequential: failpoint_append_sequential(),
            told: self.told.clone(),
        }
    }
}

/// openraft's client for one target: its own connection, so heartbeats never queue behind a
/// snapshot transfer on another client.
pub struct PeerClient {
    target: u64,
    slot: PeerSlot,
    /// Encoded or older AppendEntries (AppendedRequestsFallBack, `append_encoded.rs`).
    format: AppendFormat,
    /// Failpoint `append_sequential`: openraft's one-at-a-time transport instead of the
    /// pipeline.
    sequential: bool,
    told: Option<Arc<dyn CommitTold>>,
}

/// Test-only failpoint `append_sequential` (`REDRAFT_FAILPOINTS`): replication sends one
/// AppendEntries per round trip (openraft's default transport) instead of pipelining them
/// (AppendPipelined), so that one build can be measured both ways.
fn failpoint_append_sequential() -> bool {
    std::env::var("REDRAFT_FAILPOINTS")
        .is_ok_and(|spec| spec.split(',').any(|f| f.trim() == "append_sequential"))
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
            Err(e) => Err(peer_error(e)),
        }
    }
}

fn peer_error<E: std::error::Error>(e: PeerError) -> RPCError<TypeConfig, E> {
    match e {
        PeerError::Unreachable(_) => RPCError::Unreachable(Unreachable::from_string(e.to_string())),
        e => RPCError::Network(NetworkError::from_string(e.to_string())),
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
        let cut = cut_to_frame_budget(&mut rpc, self.target);
        let req = append_request(&self.format, rpc);
        let resp = match self.slot.call(req, option.hard_ttl()).await {
            Ok(RpcResponse::Refused(why)) => {
                self.format.refused(self.target, &why);
                return Err(remote(self.target, format!("refused the request: {why}")));
            }
            Ok(RpcResponse::AppendEntries(r)) => r.map_err(|m| remote(self.target, m))?,
            Ok(_) => return Err(unexpected("append_entries")),
            Err(e) => return Err(peer_error(e)),
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
        if self.sequential {
            return openraft::network::stream_append_sequential(self, input, option);
        }
        Box::pin(async move {
            let conn = self
                .slot
                .get()
                .await
                .map_err(|e| RPCError::Unreachable(Unreachable::from_string(e.to_string())))?;
            let format = self.format.clone();
            let told = self.told.clone();
            let pipeline = Pipeline::new(conn, self.target, format, option.hard_ttl(), input, told);
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
