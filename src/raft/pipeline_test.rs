//! Tests of `pipeline.rs`: a scripted peer that holds its answers back and gives them out of
//! order, so that what the pipeline sends before any answer, and the order it yields in, show.

use std::sync::Mutex as StdMutex;

use bytes::Bytes;
use openraft::entry::RaftEntry;
use openraft::raft::StreamAppendError;
use openraft::vote::RaftLeaderId;

use super::*;
use crate::raft::handshake::accept_handshake;
use crate::raft::peer_conn::tests::ident;
use crate::raft::typ::{Entry, Vote};
use crate::raft::wire::{read_frame, write_frame, Envelope, RpcRequest, MAX_FRAME};
use crate::store::{Op, Request};

/// A pipeline to peer 1 in the current format, with every commit probe sent (no [`CommitTold`]).
fn untold<S>(conn: Arc<PeerConn>, timeout: Duration, input: S) -> Pipeline<S>
where
    S: Stream<Item = AppendEntriesRequest<TypeConfig>> + Unpin,
{
    Pipeline::new(conn, 1, AppendFormat::new(), timeout, input, None)
}

fn log_id(index: u64) -> LogId {
    let leader = openraft::impls::leader_id_adv::LeaderId::<u64, u64>::new(1, 1);
    openraft::LogId::new(leader.to_committed(), index)
}

fn sized_entry(index: u64, value_len: usize) -> Entry {
    let req = Request {
        client: None,
        op: Op::Put {
            key: Bytes::from_static(b"k"),
            value: Bytes::from(vec![b'x'; value_len]),
        },
        at_ms: 0,
    };
    Entry::new_normal(log_id(index), req.into())
}

fn entry(index: u64) -> Entry {
    sized_entry(index, 1)
}

/// The request that appends entry `index` after `index - 1`.
fn append(index: u64) -> AppendEntriesRequest<TypeConfig> {
    AppendEntriesRequest {
        vote: Vote::new_committed(1, 1),
        prev_log_id: (index > 1).then(|| log_id(index - 1)),
        leader_commit: None,
        entries: vec![entry(index)],
    }
}

/// A peer on a loopback port: accepts one connection, completes the handshake and runs
/// `serve` on it with a log the test reads back. Returns its address and that log.
async fn scripted_peer<T, F, Fut>(serve: F) -> (String, Arc<StdMutex<Vec<T>>>)
where
    T: Send + 'static,
    F: FnOnce(tokio::net::TcpStream, Arc<StdMutex<Vec<T>>>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(StdMutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        accept_handshake(&mut s, &ident(1)).await.unwrap();
        serve(s, log).await;
    });
    (addr, seen)
}

/// A peer that reads `hold` AppendEntries before it answers any, then answers them last to
/// first, the request that appends entry `conflict_at` (if any) with a conflict and the others
/// with a success. Records the entry index of every request in the order it arrived.
async fn holding_peer(hold: usize, conflict_at: Option<u64>) -> (String, Arc<StdMutex<Vec<u64>>>) {
    scripted_peer(move |mut s, log| async move {
        let mut held = Vec::new();
        while held.len() < hold {
            let Ok(Some(req)) = read_frame::<_, Envelope<RpcRequest>>(&mut s, MAX_FRAME).await
            else {
                return;
            };
            let RpcRequest::AppendEntriesEncoded(rpc) = req.body else {
                panic!("want AppendEntriesEncoded")
            };
            let index = rpc.entries[0].log_id.index;
            log.lock().unwrap().push(index);
            held.push((req.id, index));
        }
        for (id, index) in held.into_iter().rev() {
            let resp = if Some(index) == conflict_at {
                AppendEntriesResponse::Conflict
            } else {
                AppendEntriesResponse::Success
            };
            let body = RpcResponse::AppendEntries(Ok(resp));
            write_frame(&mut s, &Envelope { id, body }).await.unwrap();
        }
        // Keep the connection open until the client is done with it.
        let _ = read_frame::<_, Envelope<RpcRequest>>(&mut s, MAX_FRAME).await;
    })
    .await
}

/// AppendPipelined: with the peer answering nothing until it has three requests, all three
/// were sent (one at a time, the pipeline would wait forever for the first answer), and the
/// answers, given last to first, are yielded first to last.
#[tokio::test]
async fn requests_go_out_before_answers_and_answers_come_back_in_order() {
    let (addr, seen) = holding_peer(3, None).await;
    let conn = Arc::new(PeerConn::connect(&addr, &ident(2), 1).await.unwrap());
    let input = futures::stream::iter(vec![append(1), append(2), append(3)]);
    let out: Vec<_> = tokio::time::timeout(
        Duration::from_secs(10),
        untold(conn, Duration::from_secs(5), input)
            .into_stream()
            .collect(),
    )
    .await
    .expect("the pipeline waited for an answer before sending the next request");
    assert_eq!(*seen.lock().unwrap(), vec![1, 2, 3]);
    let acked: Vec<_> = out.into_iter().map(|r| r.unwrap().unwrap()).collect();
    assert_eq!(
        acked,
        vec![Some(log_id(1)), Some(log_id(2)), Some(log_id(3))]
    );
}

/// PipelineStopsAtFirstRefusal: the second request's conflict is the last item, although the
/// third was answered with a success, and the connection with an abandoned request on it is
/// not used again (NoStaleConn).
#[tokio::test]
async fn a_conflict_ends_the_stream_and_retires_the_connection() {
    let (addr, _seen) = holding_peer(3, Some(2)).await;
    let conn = Arc::new(PeerConn::connect(&addr, &ident(2), 1).await.unwrap());
    let input = futures::stream::iter(vec![append(1), append(2), append(3)]);
    let out: Vec<_> = tokio::time::timeout(
        Duration::from_secs(10),
        untold(conn.clone(), Duration::from_secs(5), input)
            .into_stream()
            .collect(),
    )
    .await
    .expect("the stream did not end");
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(out[0].as_ref().unwrap(), &Ok(Some(log_id(1))));
    assert_eq!(
        out[1].as_ref().unwrap(),
        &Err(StreamAppendError::Conflict(log_id(1)))
    );
    assert!(
        !conn.is_alive(),
        "a connection with an abandoned request stayed in use"
    );
}

/// A pipeline whose peer never answers ends with an error once the oldest request's answer
/// is overdue, instead of waiting forever.
#[tokio::test]
async fn an_overdue_answer_ends_the_stream() {
    let (addr, seen) = holding_peer(usize::MAX, None).await;
    let conn = Arc::new(PeerConn::connect(&addr, &ident(2), 1).await.unwrap());
    let input = futures::stream::iter(vec![append(1), append(2)]);
    let out: Vec<_> = tokio::time::timeout(
        Duration::from_secs(10),
        untold(conn.clone(), Duration::from_millis(200), input)
            .into_stream()
            .collect(),
    )
    .await
    .expect("an unanswered pipeline never ended");
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(matches!(out[0], Err(RPCError::Network(_))), "{out:?}");
    assert_eq!(*seen.lock().unwrap(), vec![1, 2]);
    assert!(!conn.is_alive());
}

/// A peer from before encoded appends: it answers an `AppendEntriesEncoded` with `Refused`
/// (as an older node answers a request it cannot decode) and an `AppendEntries` with a
/// success. Records which kind each request was (`true`: encoded).
async fn older_peer() -> (String, Arc<StdMutex<Vec<bool>>>) {
    scripted_peer(|mut s, log| async move {
        while let Ok(Some(req)) = read_frame::<_, Envelope<RpcRequest>>(&mut s, MAX_FRAME).await {
            let body = match req.body {
                RpcRequest::AppendEntriesEncoded(_) => {
                    log.lock().unwrap().push(true);
                    RpcResponse::Refused("unknown variant".into())
                }
                RpcRequest::AppendEntries(_) => {
                    log.lock().unwrap().push(false);
                    RpcResponse::AppendEntries(Ok(AppendEntriesResponse::Success))
                }
                other => panic!("want an append, got {other:?}"),
            };
            write_frame(&mut s, &Envelope { id: req.id, body })
                .await
                .unwrap();
        }
    })
    .await
}

/// AppendedRequestsFallBack: an older peer's refusal of an encoded append ends the stream with
/// an error, and the next stream to it sends the older AppendEntries, which it takes.
#[tokio::test]
async fn an_older_peer_gets_the_older_append_after_its_refusal() {
    let (addr, seen) = older_peer().await;
    let conn = Arc::new(PeerConn::connect(&addr, &ident(2), 1).await.unwrap());
    let format = AppendFormat::new();
    let run = |input: Vec<AppendEntriesRequest<TypeConfig>>| {
        let pipeline = Pipeline::new(
            conn.clone(),
            1,
            format.clone(),
            Duration::from_secs(5),
            futures::stream::iter(input),
            None,
        );
        tokio::time::timeout(
            Duration::from_secs(10),
            pipeline.into_stream().collect::<Vec<_>>(),
        )
    };
    let first = run(vec![append(1)]).await.expect("the stream did not end");
    assert_eq!(first.len(), 1, "{first:?}");
    assert!(matches!(first[0], Err(RPCError::Network(_))), "{first:?}");
    let second = run(vec![append(1), append(2)])
        .await
        .expect("the stream did not end");
    let acked: Vec<_> = second.into_iter().map(|r| r.unwrap().unwrap()).collect();
    assert_eq!(acked, vec![Some(log_id(1)), Some(log_id(2))]);
    assert_eq!(*seen.lock().unwrap(), vec![true, false, false]);
}

/// The size a normal entry is counted at (no decode) is its encoded size.
#[test]
fn an_entry_is_sized_without_decoding_as_it_encodes() {
    for entry in [
        sized_entry(3, 1),
        sized_entry(300, 70_000),
        Entry::new_blank(log_id(9)),
    ] {
        assert_eq!(entry_len(&entry), encoded_len(&entry));
    }
}

#[test]
fn append_entries_are_cut_to_the_byte_budget() {
    let entries: Vec<Entry> = (1..=10).map(|i| sized_entry(i, 1000)).collect();
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
    let last = Some(entry(3).log_id);
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

/// A peer that answers every AppendEntries with a success at once. Records each request as
/// (index of its first entry, or `None` for none; its commit index).
async fn answering_peer() -> (String, Arc<StdMutex<Vec<(Option<u64>, Option<u64>)>>>) {
    scripted_peer(|mut s, log| async move {
        while let Ok(Some(req)) = read_frame::<_, Envelope<RpcRequest>>(&mut s, MAX_FRAME).await {
            let RpcRequest::AppendEntriesEncoded(rpc) = req.body else {
                panic!("want AppendEntriesEncoded")
            };
            let first = rpc.entries.first().map(|e| e.log_id.index);
            log.lock()
                .unwrap()
                .push((first, rpc.leader_commit.map(|c| c.index)));
            let body = RpcResponse::AppendEntries(Ok(AppendEntriesResponse::Success));
            write_frame(&mut s, &Envelope { id: req.id, body })
                .await
                .unwrap();
        }
    })
    .await
}

/// Early commit's answer for the tests: always `told`; counts the questions.
struct Told {
    told: bool,
    asked: std::sync::atomic::AtomicUsize,
}

impl CommitTold for Told {
    fn skip_commit_probe(&self, _target: u64, _vote: &Vote, _commit: &LogId) -> bool {
        self.asked
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.told
    }
}

/// The commit probe after entry `index`: no entries, the commit at `index`.
fn probe(index: u64) -> AppendEntriesRequest<TypeConfig> {
    AppendEntriesRequest {
        vote: Vote::new_committed(1, 1),
        prev_log_id: Some(log_id(index)),
        leader_commit: Some(log_id(index)),
        entries: Vec::new(),
    }
}

/// One step of a scripted session: a request openraft makes, or a wait for the next answer.
enum Step {
    Make(AppendEntriesRequest<TypeConfig>),
    Answer,
}

/// Runs `steps` through a pipeline to an answering peer, with early commit answering `told`.
/// Returns the answers yielded (acknowledged log indexes), what the peer saw, and how often
/// early commit was asked.
async fn session(
    told: bool,
    steps: Vec<Step>,
) -> (Vec<Option<u64>>, Vec<(Option<u64>, Option<u64>)>, usize) {
    let (addr, seen) = answering_peer().await;
    let conn = Arc::new(PeerConn::connect(&addr, &ident(2), 1).await.unwrap());
    let told = Arc::new(Told {
        told,
        asked: Default::default(),
    });
    let (tx, rx) = futures::channel::mpsc::unbounded();
    let pipeline = Pipeline::new(
        conn,
        1,
        AppendFormat::new(),
        Duration::from_secs(5),
        rx,
        Some(told.clone() as Arc<dyn CommitTold>),
    );
    let mut out = Box::pin(pipeline.into_stream());
    let mut acked = Vec::new();
    for step in steps {
        match step {
            Step::Make(req) => tx.unbounded_send(req).unwrap(),
            Step::Answer => {
                let item = tokio::time::timeout(Duration::from_secs(10), out.next())
                    .await
                    .expect("no answer came")
                    .expect("the stream ended");
                acked.push(item.unwrap().unwrap().map(|l| l.index));
            }
        }
    }
    drop(tx);
    let rest: Vec<_> = tokio::time::timeout(Duration::from_secs(10), out.collect::<Vec<_>>())
        .await
        .expect("the stream did not end");
    acked.extend(
        rest.into_iter()
            .map(|i| i.unwrap().unwrap().map(|l| l.index)),
    );
    let seen = seen.lock().unwrap().clone();
    let asked = told.asked.load(std::sync::atomic::Ordering::Relaxed);
    (acked, seen, asked)
}

/// ProbeSkippedWhenTold: a follower told of the commit gets no probe and the pipeline yields
/// no answer for it; the next request carries the commit and its answer covers both.
#[tokio::test]
async fn a_probe_the_follower_was_told_of_is_not_sent() {
    use Step::*;
    let steps = vec![
        Make(append(1)),
        Answer,
        Make(probe(1)),
        Make(append(2)),
        Answer,
    ];
    let (acked, seen, asked) = session(true, steps).await;
    assert_eq!(acked, vec![Some(1), Some(2)]);
    assert_eq!(seen, vec![(Some(1), None), (Some(2), None)]);
    assert_eq!(asked, 1);
}

/// Without early commit's word, or before the session has entries acknowledged, or with a
/// request still in flight, the probe goes out and is answered.
#[tokio::test]
async fn a_probe_goes_out_unless_the_follower_was_told() {
    use Step::*;
    let untold = vec![Make(append(1)), Answer, Make(probe(1)), Answer];
    let (acked, seen, asked) = session(false, untold).await;
    assert_eq!(acked, vec![Some(1), Some(1)]);
    assert_eq!(seen, vec![(Some(1), None), (None, Some(1))]);
    assert_eq!(asked, 1);

    // A session that starts with a probe: nothing acknowledged yet.
    let first = vec![Make(probe(1)), Answer];
    let (acked, seen, asked) = session(true, first).await;
    assert_eq!(acked, vec![Some(1)]);
    assert_eq!(seen, vec![(None, Some(1))]);
    assert_eq!(
        asked, 0,
        "early commit is not asked about the session's first request"
    );

    // The probe made while append(2) is still unanswered.
    let in_flight = vec![Make(append(1)), Answer, Make(append(2)), Make(probe(2))];
    let (acked, seen, asked) = session(true, in_flight).await;
    assert_eq!(acked, vec![Some(1), Some(2), Some(2)]);
    assert_eq!(
        seen,
        vec![(Some(1), None), (Some(2), None), (None, Some(2))]
    );
    assert_eq!(asked, 0);
}
