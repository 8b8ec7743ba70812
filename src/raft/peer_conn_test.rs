//! Tests of `peer_conn.rs` (a child module of it: they reach its private items).

use super::*;

/// The identity of node `node_id` in the test cluster "c" (also the pipeline tests').
pub(in crate::raft) fn ident(node_id: u64) -> PeerIdentity {
    PeerIdentity {
        cluster: "c".into(),
        secret: Some("s".into()),
        node_id,
        tls: None,
    }
}

/// A peer (node 1) that welcomes node 2, then never answers; with `reads` it still takes
/// every frame, else it takes nothing after the handshake. Returns its address and how
/// many connections it accepted.
async fn mute_peer(reads: bool) -> (String, Arc<AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let accepted = Arc::new(AtomicU64::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                super::super::handshake::accept_handshake(&mut s, &ident(1))
                    .await
                    .unwrap();
                if reads {
                    while let Ok(Some(_)) =
                        read_frame::<_, Envelope<RpcRequest>>(&mut s, MAX_FRAME).await
                    {
                    }
                } else {
                    std::future::pending::<()>().await;
                }
            });
        }
    });
    (addr, accepted)
}

/// NoStaleConn: a call whose caller gives up before the answer (openraft's heartbeat
/// worker does so after one heartbeat interval) leaves its connection unused: the next
/// call connects anew instead of queueing behind requests that were never answered.
#[tokio::test]
async fn a_call_given_up_by_its_caller_does_not_keep_its_connection() {
    let (addr, accepted) = mute_peer(true).await;
    let slot = PeerSlot::new(addr, 1, ident(2));
    for n in 1..=3 {
        let given_up = tokio::time::timeout(
            Duration::from_millis(200),
            slot.call(RpcRequest::Status, Duration::from_secs(60)),
        )
        .await;
        assert!(given_up.is_err(), "the mute peer answered: {given_up:?}");
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            n,
            "call {n} reused a connection on which a call went unanswered"
        );
    }
}

/// NoStaleConn: a call to a peer that takes no bytes ends (Lost) instead of waiting in its
/// write forever, and the connection is not used again.
#[tokio::test]
async fn a_write_the_peer_does_not_take_is_bounded() {
    let (addr, accepted) = mute_peer(false).await;
    let slot = PeerSlot::new(addr, 1, ident(2));
    // Far more than the socket buffers of both ends hold.
    let big = RpcRequest::SnapshotChunk {
        transfer: 1,
        offset: 0,
        data: vec![7; 64 << 20],
    };
    let r = tokio::time::timeout(
        MIN_WRITE_BOUND * 3,
        slot.call(big, Duration::from_millis(100)),
    )
    .await
    .expect("the write to a peer that takes nothing never ended");
    match r {
        Err(PeerError::Lost(why)) => assert!(why.contains("took no request"), "{why}"),
        other => panic!("want Lost, got {other:?}"),
    }
    let _ = tokio::time::timeout(
        Duration::from_millis(300),
        slot.call(RpcRequest::Status, Duration::from_millis(100)),
    )
    .await;
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        2,
        "the stuck connection was reused"
    );
}
