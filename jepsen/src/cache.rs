//! Cache readers: clients that keep a local copy of the register keys the way redis-py's
//! `cache_config` and node-redis's client-side cache do (README "Client-side caching"), for the
//! length of a run, through the faults.
//!
//! Each reader holds one RESP3 connection to a node with `CLIENT TRACKING ON` (default mode:
//! the node remembers the keys this connection reads). A read first takes whatever the socket
//! already holds without waiting (as redis-py does before it answers from its cache) and drops
//! every key an `invalidate` push names (a `nil` one drops everything); then a cached key is
//! answered locally (recorded as [`Call::CachedRead`]) and any other is read with `GET` on the
//! connection (recorded as an ordinary `read`, so the linearizability check covers it) and
//! cached with its reply, whatever pushes came before that reply. A connection that fails
//! throws the whole cache away (tracking ends with the connection) and the next read connects
//! to a random node.
//!
//! After the run, before the final restart, [`CacheReaders::converge`] checks the liveness half
//! of the guarantee: once the cluster is healed, every reader's cache must come to agree with
//! the cluster's value of every key (a value cached for good — an invalidation lost or sent
//! before the reply it should follow — never would). `checker::cache` checks the safety half on
//! the history.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::client::Client;
use crate::history::{Call, Op, Outcome, Recorder};
use crate::resp::{encode, Conn, Reply};

/// Process numbers of cache readers: `CACHE_PROCESS + i`.
pub const CACHE_PROCESS: u64 = 1_000_000;
/// Whether `process` is a cache reader's.
pub fn is_cache_reader(process: u64) -> bool {
    (CACHE_PROCESS..CACHE_PROCESS + 1_000_000).contains(&process)
}

/// Process number of the linearizable reads [`CacheReaders::converge`] compares the caches to.
pub const TRUTH_PROCESS: u64 = u64::MAX - 1;

/// One cached value and the read that filled it.
#[derive(Clone, Debug)]
struct Entry {
    value: Option<String>,
    fill_id: u64,
    fill_invoke_ns: u64,
}

/// One reader: its connection (node id, connection) and its cache.
pub struct CacheReader {
    process: u64,
    addrs: Vec<(u64, String)>,
    op_timeout: Duration,
    conn: Option<(u64, Conn)>,
    cache: HashMap<String, Entry>,
    stats: ReaderStats,
}

/// What a reader did, for the report.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ReaderStats {
    pub hits: u64,
    pub fills: u64,
    pub invalidated_keys: u64,
    pub flushes: u64,
    pub reconnects: u64,
    /// Replies that arrived with no request waiting, or pushes of an unknown shape.
    pub protocol_errors: Vec<String>,
}

/// Applies one push to `cache`; `Err` for a push that is not an invalidation.
fn apply_push(cache: &mut HashMap<String, Entry>, push: &Reply) -> Result<u64, String> {
    let items = push.items().ok_or_else(|| format!("push {push:?}"))?;
    match (items.first().and_then(Reply::text).as_deref(), items.get(1)) {
        (Some("invalidate"), Some(Reply::Bulk(None) | Reply::Array(None))) => {
            let n = cache.len() as u64;
            cache.clear();
            Ok(n)
        }
        (Some("invalidate"), Some(Reply::Array(Some(keys)))) => {
            let mut n = 0;
            for k in keys {
                let k = k.text().ok_or_else(|| format!("invalidated key {k:?}"))?;
                n += u64::from(cache.remove(&k).is_some());
            }
            Ok(n)
        }
        _ => Err(format!("push {push:?}")),
    }
}

impl CacheReader {
    pub fn new(process: u64, addrs: Vec<(u64, String)>, op_timeout: Duration) -> Self {
        Self {
            process,
            addrs,
            op_timeout,
            conn: None,
            cache: HashMap::new(),
            stats: ReaderStats::default(),
        }
    }

    /// Drops the connection and, with it, the cache (the node forgets the keys it tracked).
    fn disconnect(&mut self) {
        self.conn = None;
        if !self.cache.is_empty() {
            self.stats.flushes += 1;
        }
        self.cache.clear();
    }

    /// A connection with tracking on, to a random node.
    async fn connect(&mut self, rng: &mut StdRng) -> Option<u64> {
        if let Some((node, _)) = &self.conn {
            return Some(*node);
        }
        let (node, addr) = self.addrs[rng.gen_range(0..self.addrs.len())].clone();
        self.stats.reconnects += 1;
        let mut conn = Conn::connect(&addr, self.op_timeout).await.ok()?;
        let setup = [
            vec![&b"HELLO"[..], b"3"],
            vec![&b"CLIENT"[..], b"TRACKING", b"ON"],
        ];
        match conn.pipeline(&setup, self.op_timeout).await {
            Ok(replies) if replies.iter().all(|r| !matches!(r, Reply::Error(_))) => {
                self.conn = Some((node, conn));
                Some(node)
            }
            _ => None,
        }
    }

    /// Applies every push already received; `false` if the connection is gone.
    fn take_ready_pushes(&mut self) -> bool {
        let Some((_, conn)) = self.conn.as_mut() else {
            return false;
        };
        match conn.read_ready() {
            Ok(frames) => {
                for (frame, push) in frames {
                    if !push {
                        self.stats
                            .protocol_errors
                            .push(format!("reply with no request: {frame:?}"));
                        self.disconnect();
                        return false;
                    }
                    match apply_push(&mut self.cache, &frame) {
                        Ok(n) => self.stats.invalidated_keys += n,
                        Err(e) => self.stats.protocol_errors.push(e),
                    }
                }
                true
            }
            Err(_) => {
                self.disconnect();
                false
            }
        }
    }

    /// `GET key` on the tracking connection, applying the pushes that arrive before its reply.
    async fn fill(&mut self, key: &str) -> Result<Option<String>, String> {
        let Some((_, conn)) = self.conn.as_mut() else {
            return Err("not connected".into());
        };
        let deadline = tokio::time::Instant::now() + self.op_timeout;
        conn.send(&encode(&[b"GET", key.as_bytes()]))
            .await
            .map_err(|e| format!("write: {e}"))?;
        loop {
            let frame = tokio::time::timeout_at(deadline, conn.read_frame()).await;
            match frame {
                Ok(Ok((push, true))) => match apply_push(&mut self.cache, &push) {
                    Ok(n) => self.stats.invalidated_keys += n,
                    Err(e) => self.stats.protocol_errors.push(e),
                },
                Ok(Ok((Reply::Bulk(None), false))) => return Ok(None),
                Ok(Ok((Reply::Bulk(Some(v)), false))) => {
                    return String::from_utf8(v).map(Some).map_err(|e| e.to_string())
                }
                Ok(Ok((Reply::Error(e), false))) => return Err(e),
                Ok(Ok((other, false))) => return Err(format!("unexpected reply {other:?}")),
                Ok(Err(e)) => return Err(format!("read: {e}")),
                Err(_) => return Err(format!("timed out after {:?}", self.op_timeout)),
            }
        }
    }

    /// One read of `key`: from the cache if it holds the key, else a fill. Recorded in `rec`;
    /// returns the value read, `None` when the read failed.
    pub async fn read(
        &mut self,
        rng: &mut StdRng,
        rec: &Recorder,
        key: &str,
    ) -> Option<Option<String>> {
        let invoke = rec.now();
        let Some(node) = self.connect(rng).await else {
            self.disconnect();
            return None;
        };
        if !self.take_ready_pushes() {
            return None;
        }
        if let Some(e) = self.cache.get(key) {
            self.stats.hits += 1;
            let value = e.value.clone();
            rec.record(Op {
                id: rec.next_id(),
                process: self.process,
                node,
                key: key.to_string(),
                call: Call::CachedRead {
                    value: value.clone(),
                    fill_id: e.fill_id,
                    fill_invoke_ns: e.fill_invoke_ns,
                },
                invoke_ns: invoke,
                complete_ns: rec.now(),
                outcome: Outcome::Ok,
                error: None,
            });
            return Some(value);
        }
        self.stats.fills += 1;
        let id = rec.next_id();
        let result = self.fill(key).await;
        let (outcome, value, error) = match &result {
            Ok(v) => (Outcome::Ok, v.clone(), None),
            Err(e) => (Outcome::Fail, None, Some(e.clone())),
        };
        rec.record(Op {
            id,
            process: self.process,
            node,
            key: key.to_string(),
            call: Call::Read {
                value: value.clone(),
            },
            invoke_ns: invoke,
            complete_ns: rec.now(),
            outcome,
            error,
        });
        match result {
            Ok(v) => {
                self.cache.insert(
                    key.to_string(),
                    Entry {
                        value: v.clone(),
                        fill_id: id,
                        fill_invoke_ns: invoke,
                    },
                );
                Some(v)
            }
            Err(_) => {
                self.disconnect();
                None
            }
        }
    }
}

/// How the caches came to agree with the cluster after the heal.
#[derive(Clone, Debug, Serialize)]
pub struct Convergence {
    /// Seconds from the start of the check until every cache agreed (`None`: never did).
    pub seconds: Option<f64>,
    /// What still disagreed at the deadline.
    pub disagreements: Vec<String>,
    pub readers: Vec<ReaderStats>,
}

/// The cache readers of a run.
pub struct CacheReaders {
    tasks: Vec<tokio::task::JoinHandle<CacheReader>>,
}

impl CacheReaders {
    /// Starts `n` readers of `keys` until `until` (run clock, ns), each at `rate` reads per
    /// second.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        n: usize,
        addrs: Vec<(u64, String)>,
        keys: Vec<String>,
        op_timeout: Duration,
        rate: f64,
        seed: u64,
        rec: Recorder,
        until: u64,
    ) -> CacheReaders {
        let tasks = (0..n as u64)
            .map(|i| {
                let (addrs, keys, rec) = (addrs.clone(), keys.clone(), rec.clone());
                tokio::spawn(async move {
                    let process = CACHE_PROCESS + i;
                    let mut rng = StdRng::seed_from_u64(seed ^ process.wrapping_mul(0x2545_f491));
                    let mut reader = CacheReader::new(process, addrs, op_timeout);
                    let period = Duration::from_secs_f64(1.0 / rate.max(0.001));
                    while rec.now() < until {
                        let key = &keys[rng.gen_range(0..keys.len())];
                        if reader.read(&mut rng, &rec, key).await.is_none() {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        tokio::time::sleep(period.mul_f64(rng.gen_range(0.5..1.5))).await;
                    }
                    reader
                })
            })
            .collect();
        CacheReaders { tasks }
    }

    /// After the heal: reads every key linearizably (recorded as [`TRUTH_PROCESS`]) and through
    /// every reader's cache, again and again until they agree for every key and reader or
    /// `timeout` passes. Each round reads the truth again: a write left indeterminate by a
    /// fault may still commit after the heal.
    pub async fn converge(
        self,
        addrs: Vec<(u64, String)>,
        keys: &[String],
        rec: &Recorder,
        timeout: Duration,
        seed: u64,
    ) -> Convergence {
        let mut readers = Vec::new();
        for t in self.tasks {
            if let Ok(r) = t.await {
                readers.push(r);
            }
        }
        let mut rng = StdRng::seed_from_u64(seed ^ 0xcace);
        let mut truth_client = Client::new(addrs, Duration::from_secs(2));
        let started = tokio::time::Instant::now();
        let mut disagreements = Vec::new();
        let seconds = loop {
            disagreements.clear();
            let mut truth = BTreeMap::new();
            for key in keys {
                let t = rec.now();
                let d = truth_client.get(&mut rng, key).await;
                if let Ok(v) = &d.result {
                    rec.record(Op {
                        id: rec.next_id(),
                        process: TRUTH_PROCESS,
                        node: d.node,
                        key: key.clone(),
                        call: Call::Read { value: v.clone() },
                        invoke_ns: t,
                        complete_ns: rec.now(),
                        outcome: Outcome::Ok,
                        error: None,
                    });
                    truth.insert(key.clone(), v.clone());
                }
            }
            if truth.len() < keys.len() {
                disagreements.push("the cluster did not answer every linearizable read".into());
            }
            for r in readers.iter_mut() {
                for key in keys {
                    let got = r.read(&mut rng, rec, key).await;
                    let want = truth.get(key);
                    let show = |v: Option<&Option<String>>| match v {
                        None => "no answer".to_string(),
                        Some(None) => "nil".to_string(),
                        Some(Some(v)) => format!("{v:?}"),
                    };
                    match (got, want) {
                        (Some(got), Some(want)) if &got == want => {}
                        (got, want) => disagreements.push(format!(
                            "cache reader {} (node {}) read {key} = {}; the cluster holds {}",
                            r.process - CACHE_PROCESS,
                            r.conn
                                .as_ref()
                                .map_or("none".to_string(), |(n, _)| n.to_string()),
                            show(got.as_ref()),
                            show(want)
                        )),
                    }
                }
            }
            if disagreements.is_empty() {
                break Some(started.elapsed().as_secs_f64());
            }
            if started.elapsed() > timeout {
                break None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        Convergence {
            seconds,
            disagreements,
            readers: readers.into_iter().map(|r| r.stats).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Reply {
        Reply::Bulk(Some(s.as_bytes().to_vec()))
    }

    fn entry(v: &str) -> Entry {
        Entry {
            value: Some(v.into()),
            fill_id: 1,
            fill_invoke_ns: 0,
        }
    }

    #[test]
    fn invalidations_drop_the_keys_they_name_and_nil_drops_all() {
        let mut cache: HashMap<String, Entry> = ["a", "b", "c"]
            .iter()
            .map(|k| (k.to_string(), entry(k)))
            .collect();
        let push = Reply::Array(Some(vec![
            bulk("invalidate"),
            Reply::Array(Some(vec![bulk("a"), bulk("zz")])),
        ]));
        assert_eq!(apply_push(&mut cache, &push), Ok(1));
        assert!(!cache.contains_key("a") && cache.contains_key("b"));
        let flush = Reply::Array(Some(vec![bulk("invalidate"), Reply::Bulk(None)]));
        assert_eq!(apply_push(&mut cache, &flush), Ok(2));
        assert!(cache.is_empty());
        let other = Reply::Array(Some(vec![bulk("message"), bulk("ch"), bulk("x")]));
        assert!(apply_push(&mut cache, &other).is_err());
    }
}
