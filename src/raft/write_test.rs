//! Tests of `write.rs` (a child module of it: they reach its private items).

use super::*;

const ME: ClientSeq = ClientSeq {
    client_id: 7,
    seq: 5,
    sent_ms: 0,
    retry: false,
};

fn stale(client_id: u64, seq: u64, last: u64) -> Response {
    Response::Error(StoreError::StaleSequence {
        client_id,
        seq,
        last,
    })
}

/// One client's dedup entry as `store::DedupTable` keeps it (last applied seq; a retry of
/// it gets its response back, an older seq is refused as stale), behind a fake `write`
/// that can fail at one seq.
struct Model {
    last: Option<u64>,
    fail_at: Option<(u64, RaftError)>,
    /// The seqs `write` was called with, in order.
    calls: Vec<u64>,
    /// Whether each call was marked a retry (`ClientSeq::retry`).
    retry_flags: Vec<bool>,
}

impl Model {
    fn write(&mut self, req: Request) -> Result<Response, RaftError> {
        let client = req.client.expect("a client seq");
        let seq = client.seq;
        self.calls.push(seq);
        self.retry_flags.push(client.retry);
        if let Some((at, e)) = &self.fail_at {
            if *at == seq {
                return Err(e.clone());
            }
        }
        match self.last {
            Some(last) if seq < last => Ok(stale(ME.client_id, seq, last)),
            Some(last) if seq == last => Ok(put(seq)),
            _ => {
                self.last = Some(seq);
                Ok(put(seq))
            }
        }
    }
}

fn put(seq: u64) -> Response {
    Response::Put {
        revision: 100 + seq,
    }
}

/// Run requests with seqs 1..=4:
///
/// ```text
/// first attempt:  ok? per seq ─▶ retry the others in order through `write` (the model)
///                                  New → applied now, Duplicate → recorded answer,
///                                  Stale → Unknown (and skip the seqs below `last`)
/// ```
#[test]
fn requests_under_the_entry_bound_pass() {
    let req = Request {
        client: Some(ME),
        op: crate::store::Op::Put {
            key: bytes::Bytes::from_static(b"k"),
            value: bytes::Bytes::from(vec![0u8; 1 << 20]),
        },
        at_ms: 0,
    };
    assert_eq!(too_large(&req), None);
    let len = encoded_len(&req);
    assert!(len > 1 << 20 && len < (1 << 20) + 64, "{len}");
}

#[test]
fn settle_run_retries_in_order_and_never_acknowledges_the_unknown() {
    use RaftError::{NoLeader, Unknown};
    struct Case {
        name: &'static str,
        /// The store's last applied seq of this client when the retries start.
        last: Option<u64>,
        /// Which seqs came back applied from the first attempt.
        first_ok: [bool; 4],
        maybe_sent: bool,
        fail_at: Option<(u64, RaftError)>,
        want: [Result<Response, RaftError>; 4],
        want_calls: &'static [u64],
    }
    let fatal = || RaftError::Fatal("stopped".into());
    let cases = [
        Case {
            name: "every write came back applied: no retry",
            last: Some(4),
            first_ok: [true; 4],
            maybe_sent: true,
            fail_at: None,
            want: [Ok(put(1)), Ok(put(2)), Ok(put(3)), Ok(put(4))],
            want_calls: &[],
        },
        Case {
            name: "nothing applied: each retry applies, in order",
            last: None,
            first_ok: [false; 4],
            maybe_sent: true,
            fail_at: None,
            want: [Ok(put(1)), Ok(put(2)), Ok(put(3)), Ok(put(4))],
            want_calls: &[1, 2, 3, 4],
        },
        Case {
            name: "all applied, no answer came: only the last one's answer is known",
            last: Some(4),
            first_ok: [false; 4],
            maybe_sent: true,
            fail_at: None,
            want: [Err(Unknown), Err(Unknown), Err(Unknown), Ok(put(4))],
            want_calls: &[1, 4],
        },
        Case {
            name: "seq 2 applied unanswered: its retry gets the recorded answer",
            last: Some(2),
            first_ok: [true, false, false, false],
            maybe_sent: true,
            fail_at: None,
            want: [Ok(put(1)), Ok(put(2)), Ok(put(3)), Ok(put(4))],
            want_calls: &[2, 3, 4],
        },
        Case {
            name: "a retry finds no leader after the run may have reached one",
            last: Some(1),
            first_ok: [true, false, false, false],
            maybe_sent: true,
            fail_at: Some((2, NoLeader)),
            want: [Ok(put(1)), Err(Unknown), Err(Unknown), Err(Unknown)],
            want_calls: &[2],
        },
        Case {
            name: "a retry finds no leader and the run was never sent",
            last: None,
            first_ok: [false; 4],
            maybe_sent: false,
            fail_at: Some((2, NoLeader)),
            want: [Ok(put(1)), Err(NoLeader), Err(NoLeader), Err(NoLeader)],
            want_calls: &[1, 2],
        },
        Case {
            name: "an unknown retry of a never-sent run: the rest were never sent",
            last: None,
            first_ok: [false; 4],
            maybe_sent: false,
            fail_at: Some((2, Unknown)),
            want: [Ok(put(1)), Err(Unknown), Err(NoLeader), Err(NoLeader)],
            want_calls: &[1, 2],
        },
        Case {
            name: "raft stopped after the run may have reached a leader: uncertain",
            last: None,
            first_ok: [false; 4],
            maybe_sent: true,
            fail_at: Some((1, fatal())),
            want: [Err(Unknown), Err(Unknown), Err(Unknown), Err(Unknown)],
            want_calls: &[1],
        },
        Case {
            name: "raft stopped and the run was never sent",
            last: None,
            first_ok: [false; 4],
            maybe_sent: false,
            fail_at: Some((1, fatal())),
            want: [Err(fatal()), Err(fatal()), Err(fatal()), Err(fatal())],
            want_calls: &[1],
        },
    ];
    for c in cases {
        let reqs: Vec<Request> = (1..=4)
            .map(|seq| Request {
                client: Some(ClientSeq { seq, ..ME }),
                op: crate::store::Op::Put {
                    key: format!("k{seq}").into(),
                    value: "v".into(),
                },
                at_ms: 0,
            })
            .collect();
        let first = (1..=4)
            .zip(c.first_ok)
            .map(|(seq, ok)| ok.then(|| put(seq)))
            .collect();
        let mut model = Model {
            last: c.last,
            fail_at: c.fail_at,
            calls: Vec::new(),
            retry_flags: Vec::new(),
        };
        let got = futures::executor::block_on(settle_run(reqs, first, c.maybe_sent, |req| {
            std::future::ready(model.write(req))
        }));
        assert_eq!(got, c.want, "{}", c.name);
        assert_eq!(model.calls, c.want_calls, "{}: write calls", c.name);
        // A request the first attempt may have proposed is resent as a retry
        // (NoDoubleApplyAfterEviction); one never sent is resent as a first attempt.
        assert!(
            model.retry_flags.iter().all(|&r| r == c.maybe_sent),
            "{}: retry flags {:?}",
            c.name,
            model.retry_flags
        );
    }
}

#[test]
fn settle_turns_only_our_own_stale_sequence_into_unknown() {
    struct Case {
        name: &'static str,
        client: Option<ClientSeq>,
        response: Response,
        applied_through: Option<u64>,
        want: Result<Response, RaftError>,
        want_applied_through: Option<u64>,
    }
    let cases = [
        Case {
            name: "applied",
            client: Some(ME),
            response: Response::Put { revision: 9 },
            applied_through: None,
            want: Ok(Response::Put { revision: 9 }),
            want_applied_through: None,
        },
        Case {
            name: "a later request of ours was applied",
            client: Some(ME),
            response: stale(7, 5, 8),
            applied_through: None,
            want: Err(RaftError::Unknown),
            want_applied_through: Some(8),
        },
        Case {
            name: "keeps the highest last seq seen",
            client: Some(ME),
            response: stale(7, 5, 6),
            applied_through: Some(8),
            want: Err(RaftError::Unknown),
            want_applied_through: Some(8),
        },
        Case {
            name: "another client's refusal is an answer, not ours to judge",
            client: Some(ME),
            response: stale(8, 5, 6),
            applied_through: None,
            want: Ok(stale(8, 5, 6)),
            want_applied_through: None,
        },
        Case {
            name: "a request without a client id",
            client: None,
            response: stale(7, 5, 6),
            applied_through: None,
            want: Ok(stale(7, 5, 6)),
            want_applied_through: None,
        },
    ];
    for c in cases {
        let mut applied_through = c.applied_through;
        let got = settle(c.client, c.response, &mut applied_through);
        assert_eq!(got, c.want, "{}", c.name);
        assert_eq!(applied_through, c.want_applied_through, "{}", c.name);
    }
}
