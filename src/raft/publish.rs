//! PUBLISH across the cluster: a message published on any node reaches the subscribers of
//! every node, as in Redis Cluster.
//!
//! The publishing node delivers to its own subscribers, then hands the message to one
//! forwarder per peer, which sends it as [`RpcRequest::Publish`] over the peer connection;
//! the peer delivers it to its subscribers (and forwards nothing). Not through the Raft log:
//! pub/sub is fire-and-forget in Redis (no persistence, no replay), and a log entry would make
//! every PUBLISH a replicated, fsynced write for nothing.
//!
//! - **PublishOrdered.** One forwarder per peer sends one message at a time, in the order they
//!   were published on this node, so subscribers on a peer see one publisher's messages in
//!   order.
//! - **PublishBounded.** A forwarder queues at most [`FORWARD_QUEUE`] messages; past that (a
//!   peer down or slow) messages for that peer are dropped and logged, never the publisher
//!   blocked. PUBLISH answers the receivers on this node, as Redis Cluster does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use openraft::async_runtime::WatchReceiver;
use tokio::sync::mpsc;

use super::peer_conn::Peers;
use super::wire::RpcRequest;
use super::RaftNode;

/// The most messages waiting for one peer (PublishBounded).
pub const FORWARD_QUEUE: usize = 4096;
/// How long one forward may take before it is given up.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(2);

/// A message to forward: channel and payload.
type Published = (Bytes, Bytes);

/// The per-peer forwarders, created on the first PUBLISH for each peer address.
#[derive(Default)]
pub struct Forwarders {
    /// (peer id, peer address) → that peer's forwarder queue.
    queues: Mutex<HashMap<(u64, String), mpsc::Sender<Published>>>,
}

impl Forwarders {
    fn send(&self, peers: &Arc<Peers>, id: u64, addr: &str, msg: (Bytes, Bytes)) {
        let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        let tx = queues.entry((id, addr.to_string())).or_insert_with(|| {
            let (tx, rx) = mpsc::channel(FORWARD_QUEUE);
            tokio::spawn(forward(peers.clone(), id, addr.to_string(), rx));
            tx
        });
        if tx.try_send(msg).is_err() {
            tracing::warn!(
                peer = id,
                "PUBLISH forward queue full: message dropped for that peer"
            );
        }
    }
}

async fn forward(peers: Arc<Peers>, id: u64, addr: String, mut rx: mpsc::Receiver<(Bytes, Bytes)>) {
    let slot = peers.slot(id, &addr);
    while let Some((channel, message)) = rx.recv().await {
        if let Err(e) = slot
            .call(RpcRequest::Publish { channel, message }, FORWARD_TIMEOUT)
            .await
        {
            tracing::debug!(peer = id, error = %e, "PUBLISH not forwarded");
        }
    }
}

impl RaftNode {
    /// PUBLISH: delivers to this node's subscribers and forwards to every other member.
    /// Returns the receivers on this node.
    pub fn publish(&self, channel: Bytes, message: Bytes) -> usize {
        let received = self.pubsub.publish(&channel, &message);
        let others: Vec<(u64, String)> = {
            let rx = self.raft.metrics();
            let m = rx.borrow_watched();
            m.membership_config
                .membership()
                .nodes()
                .filter(|(id, _)| **id != self.id)
                .map(|(id, n)| (*id, n.raft_addr.clone()))
                .collect()
        };
        for (id, addr) in others {
            let msg = (channel.clone(), message.clone());
            self.forwarders.send(&self.peers, id, &addr, msg);
        }
        received
    }
}
