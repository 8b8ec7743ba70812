//! `DedupTable`: the last request of each client and its (small) response, kept for a
//! time-bounded window, so a retried write applies once.
//!
//! A client session numbers its writes (`ClientSeq::seq`: one write, or one ordered run of
//! pipelined writes proposed together, in flight at a time; seqs reach the log in order). For a
//! request whose client is known, `seq == last` is a retry and gets the recorded response back,
//! `seq < last` is a stale duplicate and is refused, and `seq > last` is new. The table is part
//! of the snapshot, times included, so a restored node deduplicates exactly as before.
//!
//! Time here is only ever the proposing leader's clock stamped in the entry being applied
//! (`Request::at_ms`) and the session node's clock stamped in the request when it was first
//! sent (`ClientSeq::sent_ms`); the table reads no clock (DeterministicApply).
//!
//! This file owns the table, its window and its bound. It must not look at the keyspace.
//!
//! Invariants:
//! - **DedupWindow.** An entry is kept for at least [`DEDUP_WINDOW_MS`] of leader time: it is
//!   evicted by the apply of the first entry stamped more than the window after it
//!   ([`DedupTable::expire`]), whatever else is written meanwhile, so connection churn cannot
//!   evict a retrying forwarder's entry within the window.
//! - **DedupBounded.** At most [`MAX_DEDUP_CLIENTS`] entries, a memory safety valve only:
//!   recording a new client into a full table evicts the entry with the oldest stamp (ties: the
//!   least recently recorded). Every node records the same requests in the same order with the
//!   same stamps, so every node evicts the same client (DeterministicApply).
//! - **NoDoubleApplyAfterEviction.** `evicted_ms` is the newest stamp of any entry evicted (by
//!   the window or the valve). A retry (`ClientSeq::retry`) of a client the table does not know,
//!   first sent no later than `evicted_ms + MAX_CLOCK_SKEW_MS`, may be a retry of a write that
//!   was applied and whose entry is gone: it is refused as uncertain
//!   ([`StoreError::RetryExpired`]), never applied. Proof sketch: if its first attempt was
//!   applied, it was stamped by a leader at or after it was first sent, so its entry's stamp is
//!   at least `sent_ms - MAX_CLOCK_SKEW_MS` (clocks agree within the skew); had that entry been
//!   evicted, `evicted_ms` would be at least that stamp. A first attempt (`retry == false`) is
//!   in the log at most once, so an unknown client's first attempt is always new.
//! - **AgeIndexed.** `by_age` maps each entry's `(at_ms, recorded)` to its client, one to one.
//!   It is derived state: not serialised, rebuilt by [`DedupTable::restore`].
//! - **DedupEntrySmall.** An entry keeps the response only if its encoding is at most
//!   [`MAX_KEPT_RESPONSE_BYTES`]; a larger one (a `GETDEL` of a big value, an `EXEC` with many
//!   results) is kept as [`StoreError::ReplyNotKept`], which is what a retry of it is answered:
//!   the write is still applied once, only its reply is lost. An entry is its seq, that reply,
//!   its stamp and a counter, so the table, which is in every snapshot, holds at most about
//!   [`MAX_DEDUP_CLIENTS`] x 300 bytes (~20 MB), whatever the clients wrote. The size is the
//!   postcard encoding's, the same on every node (DeterministicApply).

use imbl::OrdMap;
use serde::{Deserialize, Serialize};

use super::{ClientSeq, Response, StoreError};

/// How long (leader time, ms) an entry is kept at least (DedupWindow): 5 minutes. A forwarder
/// retries a write for seconds (the write timeout, 5 s by default; a pipelined run retries its
/// writes one after another), so a retry finds its entry unless the window is far exceeded.
pub const DEDUP_WINDOW_MS: i64 = 5 * 60 * 1000;

/// The assumed bound on the difference between any two nodes' wall clocks (NTP-synchronised
/// hosts are within milliseconds). Used only to refuse, never to accept: a larger real skew can
/// make a retry past [`DEDUP_WINDOW_MS`] minus this bound be applied again
/// (NoDoubleApplyAfterEviction).
pub const MAX_CLOCK_SKEW_MS: i64 = 60 * 1000;

/// The most clients the dedup table remembers (DedupBounded): a memory safety valve, above the
/// default `max_clients` (10,000 per node) summed over five nodes.
pub const MAX_DEDUP_CLIENTS: usize = 65_536;

/// The largest encoded response an entry keeps (DedupEntrySmall): every reply of a plain write
/// (`+OK`, an integer, a revision) and a `GET`-style previous value of up to about 240 bytes.
pub const MAX_KEPT_RESPONSE_BYTES: usize = 256;

/// Returns what the table keeps of `response` (DedupEntrySmall).
fn kept(response: Response) -> Response {
    let bytes = encoded_len(&response);
    if bytes <= MAX_KEPT_RESPONSE_BYTES {
        response
    } else {
        Response::Error(StoreError::ReplyNotKept {
            bytes: bytes as u64,
        })
    }
}

/// The postcard-encoded length of `value`, counted without allocating the encoding (a large
/// value is one `write` of its length).
fn encoded_len<T: Serialize>(value: &T) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    postcard::to_io(value, Count(0)).map_or(usize::MAX, |c| c.0)
}

/// What the table says about an incoming request.
#[derive(Debug, PartialEq)]
pub(super) enum Dedup<'a> {
    /// Not seen: apply it and record it.
    New,
    /// A retry of the client's last request: answer this, change nothing.
    Duplicate(&'a Response),
    /// Older than the client's last request: refuse it, change nothing.
    Stale { last: u64 },
    /// A retry whose first attempt may have been applied and forgotten
    /// (NoDoubleApplyAfterEviction): refuse it as uncertain, change nothing.
    Forgotten,
}

/// One client's last recorded request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    seq: u64,
    response: Response,
    /// The stamp (`Request::at_ms`, the proposing leader's clock) of the entry that recorded it.
    at_ms: i64,
    /// The table's `recorded` counter when this request was recorded (orders equal stamps).
    recorded: u64,
}

/// The last request and response of each client written within the window, up to
/// [`MAX_DEDUP_CLIENTS`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct DedupTable {
    /// By client id; an ordered map so the snapshot encoding is the same on every node, and a
    /// persistent one so the store clones in O(1) (CheapClone, `kv.rs`).
    #[serde(deserialize_with = "super::cautious::ord_map")]
    clients: OrdMap<u64, Entry>,
    /// How many requests have been recorded; numbers entries (AgeIndexed).
    recorded: u64,
    /// The newest stamp of any evicted entry; `None` while none was (NoDoubleApplyAfterEviction).
    evicted_ms: Option<i64>,
    /// `(at_ms, recorded)` -> client id, oldest first (AgeIndexed).
    #[serde(skip)]
    by_age: OrdMap<(i64, u64), u64>,
}

impl DedupTable {
    /// Classifies a request of client `client`.
    pub fn check(&self, client: ClientSeq) -> Dedup<'_> {
        match self.clients.get(&client.client_id) {
            None if client.retry && self.maybe_forgotten(client.sent_ms) => Dedup::Forgotten,
            None => Dedup::New,
            Some(e) if client.seq > e.seq => Dedup::New,
            Some(e) if client.seq == e.seq => Dedup::Duplicate(&e.response),
            Some(e) => Dedup::Stale { last: e.seq },
        }
    }

    /// Whether a write first sent at `sent_ms` (its session node's clock) may have been applied
    /// with a stamp no newer than an evicted entry's (NoDoubleApplyAfterEviction).
    fn maybe_forgotten(&self, sent_ms: i64) -> bool {
        self.evicted_ms
            .is_some_and(|evicted| sent_ms.saturating_sub(MAX_CLOCK_SKEW_MS) <= evicted)
    }

    /// Evicts every entry stamped more than [`DEDUP_WINDOW_MS`] before `now_ms`, the stamp of
    /// the entry being applied (DedupWindow). Apply calls it for every entry, before
    /// [`Self::check`].
    pub fn expire(&mut self, now_ms: i64) {
        let horizon = now_ms.saturating_sub(DEDUP_WINDOW_MS);
        while let Some(((at_ms, _), _)) = self.by_age.get_min() {
            if *at_ms >= horizon {
                break;
            }
            self.evict_oldest();
        }
    }

    /// Evicts the entry with the oldest stamp and remembers its stamp
    /// (NoDoubleApplyAfterEviction).
    fn evict_oldest(&mut self) {
        let Some((age, client_id)) = self.by_age.get_min().copied() else {
            return;
        };
        self.by_age.remove(&age);
        self.clients.remove(&client_id);
        self.evicted_ms = Some(self.evicted_ms.map_or(age.0, |e| e.max(age.0)));
    }

    /// Records `response` as the answer to `client`'s request, applied in an entry stamped
    /// `at_ms` (or, if the response is large, that its reply is not kept: DedupEntrySmall),
    /// evicting the oldest client if the table is full (DedupBounded).
    pub fn record(&mut self, client: ClientSeq, response: Response, at_ms: i64) {
        let response = kept(response);
        self.recorded += 1;
        let entry = Entry {
            seq: client.seq,
            response,
            at_ms,
            recorded: self.recorded,
        };
        let age = (at_ms, self.recorded);
        // A known client (the common case): its entry is replaced in place, one descent.
        if let Some(old) = self.clients.get_mut(&client.client_id) {
            let old_age = (old.at_ms, old.recorded);
            *old = entry;
            self.by_age.remove(&old_age);
            self.by_age.insert(age, client.client_id);
            debug_assert_eq!(self.clients.len(), self.by_age.len(), "AgeIndexed");
            return;
        }
        if self.clients.len() >= MAX_DEDUP_CLIENTS {
            self.evict_oldest();
            tracing::debug!("dedup table full: evicted the oldest client");
        }
        self.clients.insert(client.client_id, entry);
        self.by_age.insert(age, client.client_id);
        debug_assert_eq!(self.clients.len(), self.by_age.len(), "AgeIndexed");
        debug_assert!(self.clients.len() <= MAX_DEDUP_CLIENTS, "DedupBounded");
    }

    /// Returns the number of clients remembered.
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    /// Checks a table loaded from a snapshot and rebuilds `by_age` (AgeIndexed).
    pub fn restore(&mut self) -> Result<(), String> {
        if self.clients.len() > MAX_DEDUP_CLIENTS {
            return Err(format!(
                "dedup table holds {} clients; the bound is {MAX_DEDUP_CLIENTS}",
                self.clients.len()
            ));
        }
        let mut by_age = OrdMap::new();
        let mut numbers = std::collections::BTreeSet::new();
        for (&client_id, entry) in &self.clients {
            if entry.recorded == 0 || entry.recorded > self.recorded {
                return Err(format!("dedup entry of client {client_id} has a bad stamp"));
            }
            if !numbers.insert(entry.recorded) {
                return Err(format!(
                    "dedup entry of client {client_id} shares its stamp"
                ));
            }
            by_age.insert((entry.at_ms, entry.recorded), client_id);
        }
        self.by_age = by_age;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cs(client_id: u64, seq: u64) -> ClientSeq {
        ClientSeq {
            client_id,
            seq,
            ..Default::default()
        }
    }

    fn resp(revision: u64) -> Response {
        Response::Put { revision }
    }

    #[test]
    fn check_classifies_by_seq() {
        let mut t = DedupTable::default();
        t.record(cs(7, 5), resp(1), 0);
        struct Case<'a> {
            client: ClientSeq,
            want: Dedup<'a>,
        }
        let r = &resp(1);
        let cases = [
            Case {
                client: cs(8, 1),
                want: Dedup::New,
            },
            Case {
                client: cs(7, 6),
                want: Dedup::New,
            },
            Case {
                client: cs(7, 5),
                want: Dedup::Duplicate(r),
            },
            Case {
                client: cs(7, 4),
                want: Dedup::Stale { last: 5 },
            },
            Case {
                client: cs(7, 0),
                want: Dedup::Stale { last: 5 },
            },
        ];
        for c in cases {
            assert_eq!(t.check(c.client), c.want, "{:?}", c.client);
        }
    }

    #[test]
    fn evicts_least_recently_recorded_at_the_bound() {
        let mut t = DedupTable::default();
        for id in 0..MAX_DEDUP_CLIENTS as u64 {
            t.record(cs(id, 1), resp(id), 0);
        }
        // Client 0 writes again, so client 1 is now the oldest.
        t.record(cs(0, 2), resp(0), 0);
        assert_eq!(t.len(), MAX_DEDUP_CLIENTS);
        t.record(cs(u64::MAX, 1), resp(9), 0);
        assert_eq!(t.len(), MAX_DEDUP_CLIENTS);
        assert_eq!(t.check(cs(1, 1)), Dedup::New, "client 1 was evicted");
        assert_eq!(t.check(cs(0, 2)), Dedup::Duplicate(&resp(0)));
        assert_eq!(t.check(cs(2, 1)), Dedup::Duplicate(&resp(2)));
        assert_eq!(t.check(cs(u64::MAX, 1)), Dedup::Duplicate(&resp(9)));

        let mut restored = t.clone();
        restored.by_age.clear();
        restored.restore().unwrap();
        assert_eq!(restored, t);
    }

    /// DedupEntrySmall: a large reply is not copied into the table (and so into every
    /// snapshot); a retry of it learns it was applied, not what it answered. A small one is kept.
    #[test]
    fn large_replies_are_not_kept_and_the_table_stays_small() {
        let value = |n: usize| Response::Value {
            value: Some(bytes::Bytes::from(vec![b'v'; n])),
            revision: 9,
        };
        let mut t = DedupTable::default();
        t.record(cs(1, 1), value(200), 0);
        assert_eq!(
            t.check(cs(1, 1)),
            Dedup::Duplicate(&value(200)),
            "small: kept"
        );
        t.record(cs(2, 1), value(100_000), 0);
        // Tag, option, length varint, 100,000 bytes, revision: 100,006 bytes encoded.
        let not_kept = Response::Error(StoreError::ReplyNotKept { bytes: 100_006 });
        assert_eq!(t.check(cs(2, 1)), Dedup::Duplicate(&not_kept));
        assert!(not_kept_text(&not_kept).starts_with("UNCERTAIN the write was applied"));
        // 1,000 clients whose GETDELs answered 100 KB each: the table encodes in ~10 KB, not 100 MB.
        for id in 10..1_010 {
            t.record(cs(id, 1), value(100_000), 0);
        }
        let encoded = postcard::to_allocvec(&t).unwrap().len();
        assert!(
            encoded < 1_010 * 32,
            "dedup table encodes in {encoded} bytes"
        );
        let mut restored: DedupTable =
            postcard::from_bytes(&postcard::to_allocvec(&t).unwrap()).expect("decodes");
        restored.restore().unwrap();
        assert_eq!(restored, t);
    }

    fn not_kept_text(r: &Response) -> String {
        match r {
            Response::Error(e) => e.to_string(),
            other => panic!("{other:?}"),
        }
    }

    fn retry(client_id: u64, seq: u64, sent_ms: i64) -> ClientSeq {
        ClientSeq {
            client_id,
            seq,
            sent_ms,
            retry: true,
        }
    }

    /// NoDoubleApplyAfterEviction: only a retry of an unknown client, first sent no later than
    /// the newest evicted stamp plus the skew bound, is `Forgotten`; a known client's retry is
    /// answered, a first attempt is new.
    #[test]
    fn check_classifies_retries_after_eviction() {
        let mut t = DedupTable::default();
        t.record(cs(1, 1), resp(1), 1_000);
        t.record(cs(2, 1), resp(2), 2_000);
        assert_eq!(t.check(retry(9, 1, 0)), Dedup::New, "nothing evicted yet");
        t.expire(1_000 + DEDUP_WINDOW_MS);
        assert_eq!(t.len(), 2, "kept for the whole window");
        t.expire(1_001 + DEDUP_WINDOW_MS);
        assert_eq!((t.len(), t.evicted_ms), (1, Some(1_000)));
        let edge = 1_000 + MAX_CLOCK_SKEW_MS;
        let cases = [
            (retry(1, 1, 900), Dedup::Forgotten),
            (retry(9, 1, edge), Dedup::Forgotten),
            (retry(9, 1, edge + 1), Dedup::New),
            (cs(1, 1), Dedup::New),
            (retry(2, 1, 0), Dedup::Duplicate(&resp(2))),
            (retry(2, 0, 0), Dedup::Stale { last: 1 }),
        ];
        for (client, want) in cases {
            assert_eq!(t.check(client), want, "{client:?}");
        }
        let mut restored: DedupTable =
            postcard::from_bytes(&postcard::to_allocvec(&t).unwrap()).expect("decodes");
        restored.restore().unwrap();
        assert_eq!(restored, t);
        assert_eq!(restored.check(retry(1, 1, 900)), Dedup::Forgotten);
    }

    #[test]
    fn restore_rejects_bad_stamps() {
        let mut t = DedupTable::default();
        t.record(cs(1, 1), resp(1), 0);
        t.record(cs(2, 1), resp(2), 0);
        let mut shared = t.clone();
        shared.clients.get_mut(&2).unwrap().recorded = 1;
        assert!(shared.restore().is_err());
        let mut future = t.clone();
        future.clients.get_mut(&2).unwrap().recorded = 3;
        assert!(future.restore().is_err());
    }
}
