//! The peer port of a cluster with a secret serves nobody who cannot prove it
//! (MutualPeerAuth, `src/raft/handshake.rs`).
//!
//! An intruder that reaches a real node's `raft_addr` without the secret (none, or a wrong one,
//! with the right cluster name and a member's id) is refused at the handshake, so it cannot
//! forward a write (`FLUSHALL` would bypass `requirepass`), remove a node or install a
//! snapshot: every such request travels only on an authenticated connection. Frames sent
//! without a handshake get no answer and the connection is closed. Afterwards the cluster
//! still has its three members and its data, and the node logged the refusals.

use crate::common;

use std::time::Duration;

use common::{phase, Cluster};
use redraft::raft::peer_conn::PeerConn;
use redraft::raft::wire::{
    self as rpc, Envelope, PeerIdentity, RpcRequest, RpcResponse, MAX_FRAME,
};
use tokio::io::AsyncWriteExt;

fn intruder(secret: Option<&str>) -> PeerIdentity {
    PeerIdentity {
        cluster: "sec".into(),
        secret: secret.map(Into::into),
        node_id: 2,
        tls: None,
    }
}

#[test]
fn a_peer_without_the_secret_is_refused_and_changes_nothing() {
    let mut c = Cluster::builder().name("sec").secret("right").start();
    let leader = c.must_leader(Duration::from_secs(20));
    c.must_set(leader, "k", "v");
    let addr = c.raft_addr(leader);
    let rt = tokio::runtime::Runtime::new().unwrap();

    rt.block_on(async {
        for secret in [None, Some("wrong")] {
            phase(&format!("handshake with secret {secret:?} is refused"));
            match PeerConn::connect(&addr, &intruder(secret), leader).await {
                Ok(_) => panic!("node {leader} welcomed a peer with secret {secret:?}"),
                Err(e) => assert!(e.to_string().contains("did not prove"), "{e}"),
            }
        }

        phase("requests sent without a handshake get no answer");
        for body in [RpcRequest::Status, RpcRequest::ReadIndex] {
            let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
            rpc::write_frame(&mut s, &Envelope { id: 1, body })
                .await
                .unwrap();
            s.flush().await.unwrap();
            let got = tokio::time::timeout(
                Duration::from_secs(10),
                rpc::read_frame::<_, Envelope<RpcResponse>>(&mut s, MAX_FRAME),
            )
            .await
            .expect("the node neither answered nor closed within 10 s");
            assert!(
                !matches!(got, Ok(Some(_))),
                "node {leader} answered a request sent without a handshake: {got:?}"
            );
        }
    });

    phase("the cluster is intact: three members, the data, the refusals logged");
    let info = c.must_info(leader, "raft");
    assert_eq!(
        info.get("raft_voters").map(String::as_str),
        Some("1,2,3"),
        "{info:?}"
    );
    c.must_set(leader, "k2", "v2");
    assert!(
        c.log_contains(leader, "did not prove the cluster secret"),
        "node {leader} did not log the refusal"
    );
}
