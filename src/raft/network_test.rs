//! Tests of `network.rs` (a child module of it: they reach its private items).

use bytes::Bytes;
use openraft::entry::RaftEntry;
use openraft::vote::RaftLeaderId;

use super::*;
use crate::store::{Op, Request};

fn entry(index: u64, value_len: usize) -> Entry {
    let req = Request {
        client: None,
        op: Op::Put {
            key: Bytes::from_static(b"k"),
            value: Bytes::from(vec![b'x'; value_len]),
        },
        at_ms: 0,
    };
    let leader = openraft::impls::leader_id_adv::LeaderId::<u64, u64>::new(1, 1);
    Entry::new_normal(openraft::LogId::new(leader.to_committed(), index), req)
}

fn ident(node_id: u64) -> PeerIdentity {
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

#[test]
fn append_entries_are_cut_to_the_byte_budget() {
    let entries: Vec<Entry> = (1..=10).map(|i| entry(i, 1000)).collect();
    let one = encoded_len(&entries[0]);
    assert!(one > 1000 && one < 1100, "{one}");
    assert_eq!(entries_within(&entries, 100 * one), 10, "all fit");
    assert_eq!(entries_within(&entries, 3 * one), 3);
    assert_eq!(entries_within(&entries, 3 * one - 1), 2);
    assert_eq!(
        entries_within(&entries, 10),
        1,
        "an entry over the budget still travels, alone"
    );
    assert_eq!(entries_within(&[], 10), 0);
}

#[test]
fn a_success_for_a_prefix_is_a_partial_success() {
    let last = Some(entry(3, 1).log_id);
    assert_eq!(
        for_sent(Some(last), AppendEntriesResponse::Success),
        AppendEntriesResponse::PartialSuccess(last)
    );
    assert_eq!(
        for_sent(None, AppendEntriesResponse::Success),
        AppendEntriesResponse::Success
    );
    assert_eq!(
        for_sent(Some(last), AppendEntriesResponse::Conflict),
        AppendEntriesResponse::Conflict
    );
}
