//! The proposal batcher's pure parts: how a round is cut into entries (EntryBytesBound) and
//! how an entry's answer becomes one answer per request (OneAnswerPerRequest).

use super::*;

#[test]
fn a_round_is_cut_by_count_and_bytes_in_order() {
    assert_eq!(cut(&[]), Vec::<usize>::new());
    assert_eq!(cut(&[10; 5]), vec![5]);
    // By count.
    assert_eq!(
        cut(&vec![1; MAX_BATCH_REQUESTS * 2 + 3]),
        vec![MAX_BATCH_REQUESTS, MAX_BATCH_REQUESTS, 3]
    );
    // By bytes: a request that would cross the bound opens the next entry.
    let half = MAX_BATCH_BYTES / 2;
    assert_eq!(cut(&[half, half, 1, half]), vec![2, 2]);
    // A request larger than the bound travels alone, and the next one opens a new entry.
    assert_eq!(cut(&[5, MAX_BATCH_BYTES * 3, 5, 5]), vec![1, 1, 2]);
    // Every request is in exactly one entry.
    let sizes: Vec<usize> = (0..5000)
        .map(|i| (i * 7919) % (MAX_BATCH_BYTES / 100))
        .collect();
    let counts = cut(&sizes);
    assert_eq!(counts.iter().sum::<usize>(), sizes.len());
    let mut at = 0;
    for n in counts {
        let bytes: usize = sizes[at..at + n].iter().sum();
        assert!(n <= MAX_BATCH_REQUESTS);
        assert!(
            n == 1 || bytes <= MAX_BATCH_BYTES,
            "entry of {n} requests, {bytes} bytes"
        );
        at += n;
    }
}

type Delivered = Result<
    Result<openraft::raft::ClientWriteResponse<TypeConfig>, ClientWriteError<TypeConfig>>,
    (),
>;

fn written(data: Response) -> Delivered {
    use openraft::vote::RaftLeaderIdExt;
    let leader = <TypeConfig as openraft::RaftTypeConfig>::LeaderId::new_committed(1, 1);
    Ok(Ok(openraft::raft::ClientWriteResponse {
        log_id: crate::raft::typ::LogId::new(leader, 1),
        data,
        membership: None,
    }))
}

#[test]
fn an_entry_answers_each_of_its_requests() {
    let put = |revision| Response::Put { revision };
    assert_eq!(
        entry_results(false, 2, written(Response::Batch(vec![put(1), put(2)]))),
        vec![Ok(put(1)), Ok(put(2))]
    );
    assert_eq!(entry_results(true, 1, written(put(3))), vec![Ok(put(3))]);
    // Not appended (another node leads): every request may be retried.
    let mut to = openraft::errors::ForwardToLeader::empty();
    to.leader_id = Some(2);
    let fwd = ClientWriteError::ForwardToLeader(to);
    assert_eq!(
        entry_results::<()>(false, 3, Ok(Err(fwd))),
        vec![Err(ForwardError::NotLeader { leader: Some(2) }); 3]
    );
    // Raft stopped before answering: the outcome is not known.
    assert_eq!(
        entry_results(false, 2, Err(())),
        vec![Err(ForwardError::Fatal("raft stopped".into())); 2]
    );
    // An answer of the wrong shape is never handed out as a success.
    let wrong = entry_results(false, 3, written(Response::Batch(vec![put(1)])));
    assert!(wrong
        .iter()
        .all(|r| matches!(r, Err(ForwardError::Fatal(_)))));
}

/// An entry's encoding fits the buffer made for it (its requests' sizes as `sized` counts
/// them, before stamping, plus STAMP_BYTES each and BATCH_ENVELOPE_BYTES), for one request
/// and for a full batch, with relative expiries, so it never grows.
#[test]
fn an_entry_encodes_within_the_size_counted_for_it() {
    for n in [1usize, 2, MAX_BATCH_REQUESTS] {
        let reqs: Vec<Request> = (0..n)
            .map(|i| {
                let op = if i % 2 == 0 {
                    Op::Put {
                        key: bytes::Bytes::from(format!("key:{i}")),
                        value: bytes::Bytes::from(vec![b'v'; i % 300]),
                    }
                } else {
                    Op::Expire {
                        key: bytes::Bytes::from(format!("key:{i}")),
                        expiry: crate::store::Expiry::After(0),
                        cond: crate::store::ExpireCond::default(),
                        now_ms: 0,
                    }
                };
                let client = crate::store::ClientSeq {
                    client_id: u64::MAX - i as u64,
                    seq: u64::MAX,
                    sent_ms: i64::MIN,
                    retry: true,
                };
                Request::new(Some(client), op)
            })
            .collect();
        let bytes: usize = reqs.iter().map(encoded_len).sum();
        let mut batch = Request {
            client: None,
            at_ms: 0,
            op: Op::Batch(reqs),
        };
        batch.stamp(i64::MIN);
        let enc = EncodedRequest::encode(&batch).unwrap();
        assert!(
            enc.len() <= bytes + n * STAMP_BYTES + BATCH_ENVELOPE_BYTES,
            "{n} requests: {} of {bytes} counted",
            enc.len()
        );
    }
}
