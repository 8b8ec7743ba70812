//! BatchAsEntries: a batch entry applies exactly as its requests would as separate entries.

use std::io;

use bytes::Bytes;
use futures::stream;
use openraft::entry::RaftEntry;
use openraft::storage::{EntryResponder, RaftStateMachine};
use openraft::vote::RaftLeaderIdExt;

use super::*;
use crate::raft::typ::Entry;
use crate::raft::TypeConfig;
use crate::store::{ClientSeq, Op, StoreError};

fn log_id(index: u64) -> LogId {
    let leader = <TypeConfig as openraft::RaftTypeConfig>::LeaderId::new_committed(1, 1);
    LogId::new(leader, index)
}

fn put(client_id: u64, seq: u64, key: &str, value: &str) -> Request {
    Request {
        client: Some(ClientSeq {
            client_id,
            seq,
            sent_ms: 1_000,
            retry: false,
        }),
        op: Op::Put {
            key: Bytes::copy_from_slice(key.as_bytes()),
            value: Bytes::copy_from_slice(value.as_bytes()),
        },
        at_ms: 1_000,
    }
}

/// Two clients' writes, a retry of one of them (answered from the dedup table) and a write
/// whose seq is below its client's last (refused as stale).
fn requests() -> Vec<Request> {
    vec![
        put(7, 1, "a", "1"),
        put(9, 1, "b", "1"),
        put(7, 2, "a", "2"),
        put(9, 1, "b", "1"),
        put(7, 1, "a", "stale"),
        put(9, 2, "c", "1"),
    ]
}

/// Applies each request as its own entry (log indexes 1, 2, ...).
async fn apply_one_by_one(sm: &mut StateMachineStore, reqs: Vec<Request>) {
    let entries: Vec<Result<EntryResponder<TypeConfig>, io::Error>> = reqs
        .into_iter()
        .enumerate()
        .map(|(i, req)| Ok((Entry::new_normal(log_id(i as u64 + 1), req.into()), None)))
        .collect();
    sm.apply(stream::iter(entries)).await.unwrap();
}

#[tokio::test]
async fn a_batch_applies_as_its_requests_would_one_entry_each() {
    let dir = tempfile::tempdir().unwrap();
    let batched = StateMachineStore::open(&dir.path().join("batched")).unwrap();
    let mut events = batched.subscribe();
    let mut earlier_deadline = false;
    let answer = batched
        .apply_inline(log_id(1), &requests(), true, &mut earlier_deadline)
        .expect("no script, no bound");
    assert!(!earlier_deadline);

    // The same requests one entry each, in a state machine and in a bare store.
    let mut single = StateMachineStore::open(&dir.path().join("single")).unwrap();
    apply_one_by_one(&mut single, requests()).await;
    let mut store = Store::new();
    let one_by_one: Vec<Response> = requests().iter().map(|r| store.apply(r).0).collect();

    assert_eq!(answer, Response::Batch(one_by_one.clone()));
    // Each new write its own revision, in order; the retry answers its recorded response.
    assert_eq!(one_by_one[0], Response::Put { revision: 1 });
    assert_eq!(one_by_one[1], Response::Put { revision: 2 });
    assert_eq!(one_by_one[2], Response::Put { revision: 3 });
    assert_eq!(one_by_one[3], Response::Put { revision: 2 });
    assert!(matches!(
        one_by_one[4],
        Response::Error(StoreError::StaleSequence { .. })
    ));
    assert_eq!(one_by_one[5], Response::Put { revision: 4 });
    // The same keyspace, history and dedup table.
    assert_eq!(batched.read().store, single.read().store);
    assert_eq!(batched.read().store, store);
    assert_eq!(batched.read().last_applied, Some(log_id(1)));
    // One published change per applied write, in revision order.
    let mut revisions = Vec::new();
    while let Ok(applied) = events.try_recv() {
        assert_eq!(applied.events.len(), 1, "one change per write");
        revisions.push(applied.events[0].kv.mod_revision);
    }
    assert_eq!(revisions, vec![1, 2, 3, 4]);
}

#[tokio::test]
async fn a_batch_inside_a_request_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut sm = StateMachineStore::open(dir.path()).unwrap();
    let nested = Request {
        client: None,
        at_ms: 1_000,
        op: Op::Txn {
            compares: vec![],
            ops: vec![Op::Batch(vec![put(1, 1, "k", "v")])],
            now_ms: 1_000,
        },
    };
    apply_one_by_one(&mut sm, vec![nested.clone()]).await;
    assert_eq!(sm.read().store.revision(), 0);
    let mut store = Store::new();
    let (answer, events) = store.apply(&nested);
    let Response::Txn {
        responses: Some(responses),
        ..
    } = &answer
    else {
        panic!("a transaction's answer: {answer:?}");
    };
    assert_eq!(responses, &vec![Response::Error(StoreError::NestedBatch)]);
    assert!(events.is_empty());
    // At the top level of a request (not an entry) too.
    let (answer, _) = store.apply(&Request {
        client: None,
        at_ms: 1_000,
        op: Op::Batch(vec![put(1, 1, "k", "v")]),
    });
    assert_eq!(answer, Response::Error(StoreError::NestedBatch));
    assert_eq!(store.revision(), 0);
}

/// A script entry making `calls` SETs of keys `{prefix}{i}`.
fn sets(prefix: &str, calls: usize) -> Request {
    Request {
        client: None,
        op: Op::Script {
            body: Bytes::from(format!(
                "for i = 1, tonumber(ARGV[1]) do redis.call('set', '{prefix}' .. i, i) end"
            )),
            keys: vec![],
            args: vec![Bytes::from(calls.to_string())],
            now_ms: 1_000,
        },
        at_ms: 1_000,
    }
}

/// ScriptsBoundedInline bounds a whole entry: two scripts each well within the bound but over
/// it together are given up on Raft's thread; either alone is applied there.
#[tokio::test]
async fn scripts_are_bounded_over_their_whole_entry() {
    crate::commands::install_script_host();
    let dir = tempfile::tempdir().unwrap();
    let sm = StateMachineStore::open(dir.path()).unwrap();
    // Each SET weighs the call and its key: 60 % of the bound per script.
    let calls = DETACH_ABOVE_ITEMS * 6 / 10 / (crate::store::SCRIPT_CALL_WEIGHT + 1);
    let mut earlier_deadline = false;
    assert!(sm
        .apply_inline(
            log_id(1),
            &[sets("x", calls), sets("y", calls)],
            true,
            &mut earlier_deadline
        )
        .is_none());
    assert_eq!(sm.read().store.len(), 0, "nothing of the entry kept");
    assert!(sm
        .apply_inline(log_id(1), &[sets("x", calls)], false, &mut earlier_deadline)
        .is_some());
    assert_eq!(sm.read().store.len(), calls);
}

/// ScriptsBoundedInline: a batch whose script makes more calls than the bound allows on
/// Raft's thread is tried there, given up whole (nothing applied, the applied index unmoved),
/// and applied whole off the thread, in order, as one entry.
#[tokio::test]
async fn a_script_past_its_bound_is_applied_whole_off_the_raft_thread() {
    crate::commands::install_script_host();
    let dir = tempfile::tempdir().unwrap();
    let mut sm = StateMachineStore::open(dir.path()).unwrap();
    let calls = DETACH_ABOVE_ITEMS + 1;
    let script = Request {
        client: None,
        op: Op::Script {
            body: Bytes::from_static(
                b"for i = 1, tonumber(ARGV[1]) do redis.call('set', 's' .. i, i) end \
                  redis.call('set', 'seen', redis.call('get', 'a'))",
            ),
            keys: vec![],
            args: vec![Bytes::from(calls.to_string())],
            now_ms: 1_000,
        },
        at_ms: 1_000,
    };
    let reqs = vec![put(7, 1, "a", "1"), script, put(7, 2, "a", "2")];
    let mut earlier_deadline = false;
    assert!(sm
        .apply_inline(log_id(1), &reqs, true, &mut earlier_deadline)
        .is_none());
    assert_eq!(sm.read().store.len(), 0, "nothing of the entry kept");
    assert_eq!(sm.read().last_applied, None);

    let batch = Request {
        client: None,
        op: Op::Batch(reqs),
        at_ms: 1_000,
    };
    let entry = Entry::new_normal(log_id(1), batch.into());
    sm.apply(stream::iter([Ok((entry, None))])).await.unwrap();
    let st = sm.read();
    assert_eq!(st.store.len(), 2 + calls, "a, seen and the script's keys");
    assert_eq!(st.store.get(b"a").unwrap().value, "2");
    assert_eq!(
        st.store.get(b"seen").unwrap().value,
        "1",
        "the script ran after the first put and before the second"
    );
    assert_eq!(st.last_applied, Some(log_id(1)));
}
