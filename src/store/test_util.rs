//! Helpers shared by the store's unit tests: ops and requests built from strings.

use bytes::Bytes;

use super::*;

pub(super) fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

pub(super) fn put(key: &str, value: &str) -> Op {
    Op::Put {
        key: b(key),
        value: b(value),
    }
}

pub(super) fn del(keys: &[&str]) -> Op {
    Op::Delete {
        keys: keys.iter().map(|k| b(k)).collect(),
    }
}

pub(super) fn must_apply(store: &mut Store, op: Op) -> Response {
    store
        .apply(&Request {
            client: None,
            op,
            at_ms: 0,
        })
        .0
}

pub(super) fn must_apply_as(
    store: &mut Store,
    client_id: u64,
    seq: u64,
    op: Op,
) -> (Response, Vec<Event>) {
    store.apply(&Request {
        client: Some(ClientSeq {
            client_id,
            seq,
            ..Default::default()
        }),
        op,
        at_ms: 0,
    })
}

/// Returns (value, create_revision, mod_revision, version) of `key` at `revision`.
pub(super) fn must_read(
    store: &Store,
    key: &str,
    revision: u64,
) -> Option<(String, u64, u64, u64)> {
    let kv = store
        .get_at(key.as_bytes(), revision)
        .expect("readable revision")?;
    let value = String::from_utf8(kv.value.to_vec()).unwrap();
    Some((value, kv.create_revision, kv.mod_revision, kv.version))
}

/// Applies `op` in an entry stamped `at_ms`, as client `client_id`'s write `seq` first sent
/// at `sent_ms`, a retry or a first attempt.
pub(super) fn apply_stamped(
    store: &mut Store,
    at_ms: i64,
    (client_id, seq, sent_ms, retry): (u64, u64, i64, bool),
    op: Op,
) -> Response {
    let client = ClientSeq {
        client_id,
        seq,
        sent_ms,
        retry,
    };
    store
        .apply(&Request {
            client: Some(client),
            op,
            at_ms,
        })
        .0
}

pub(super) fn incr(key: &str) -> Op {
    Op::IncrBy {
        key: b(key),
        delta: 1,
    }
}

pub(super) fn retry_expired(age_ms: i64) -> Response {
    Response::Error(StoreError::RetryExpired {
        age_ms,
        window_ms: DEDUP_WINDOW_MS,
    })
}
