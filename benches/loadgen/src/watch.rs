//! The `watch-latency` workload: a writer puts one key on the first endpoint every
//! `watch_interval`; a watcher on the second endpoint (another node) receives each change, and
//! the latency is from just before the put was sent to the event's arrival. Both run in this
//! process, so one monotonic clock times both ends.
//!
//! Mechanisms:
//! - redraft `xread`: `XREAD BLOCK 1000 STREAMS __watch__:<prefix> <last-id>` from `$`,
//!   entries `<revision>-<sub>` with fields type/key/value/prev; the put's index is in the
//!   value.
//! - `keyspace` (redraft and Redis): `CONFIG SET notify-keyspace-events KEA` on the watcher's
//!   node, then `SUBSCRIBE __keyspace@0__:<key>`; the n-th message answers the n-th put (puts
//!   are sequential).
//! - etcd `watch`: the Watch API on the key; the put's index is in the value.
//!
//! A server that answers the watch set-up with an error gives an `unsupported` result, not a
//! failure of the whole comparison.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use hdrhistogram::Histogram;
use tokio::sync::oneshot;

use crate::args::{RunArgs, System};
use crate::client::{etcd_connect, Kv, CONNECT_TIMEOUT};
use crate::resp::{Conn, Reply};
use crate::result::{self, cdf, Latency, RunResult};

/// State shared by the writer and the watcher.
struct Shared {
    start: Instant,
    /// When put `i` was sent, µs since `start` (0: not yet).
    sent_us: Vec<AtomicU64>,
    hist: Mutex<Histogram<u64>>,
    received: AtomicU64,
}

impl Shared {
    fn event(&self, index: usize) {
        let Some(sent) = self.sent_us.get(index).map(|s| s.load(Ordering::SeqCst)) else {
            return;
        };
        if sent == 0 {
            return;
        }
        let now = self.start.elapsed().as_micros() as u64;
        result::record(&mut self.hist.lock().unwrap(), now.saturating_sub(sent));
        self.received.fetch_add(1, Ordering::SeqCst);
    }
}

/// Parses the put index from a value `"<index>:<padding>"`.
pub fn index_of(value: &[u8]) -> Option<usize> {
    let end = value.iter().position(|&b| b == b':')?;
    std::str::from_utf8(&value[..end]).ok()?.parse().ok()
}

/// The value of put `i`: its index, then padding up to `size` bytes.
pub fn value_of(i: usize, size: usize) -> Vec<u8> {
    let mut v = format!("{i}:").into_bytes();
    v.resize(size.max(v.len()), b'x');
    v
}

/// Extracts `(entry id, value field)` pairs from an XREAD reply: `[[stream, [[id, [f, v,
/// ...]], ...]], ...]`.
pub fn xread_entries(reply: &Reply) -> Vec<(String, Option<Vec<u8>>)> {
    let mut out = Vec::new();
    for stream in reply.items().unwrap_or_default() {
        let Some(entries) = stream.items().and_then(|s| s.get(1)).and_then(Reply::items) else {
            continue;
        };
        for e in entries {
            let Some(parts) = e.items() else { continue };
            let Some(id) = parts.first().and_then(Reply::text) else {
                continue;
            };
            let fields = parts.get(1).and_then(Reply::items).unwrap_or_default();
            let value = fields
                .chunks(2)
                .find(|kv| kv[0].text().as_deref() == Some("value"))
                .and_then(|kv| match kv.get(1) {
                    Some(Reply::Bulk(Some(b))) => Some(b.clone()),
                    _ => None,
                });
            out.push((id, value));
        }
    }
    out
}

/// Runs the watcher until aborted; signals `ready` once the watch is registered, or sends the
/// server's refusal.
async fn watcher(
    args: Arc<RunArgs>,
    key: Vec<u8>,
    prefix: Vec<u8>,
    shared: Arc<Shared>,
    ready: oneshot::Sender<Result<(), String>>,
) -> anyhow::Result<()> {
    let endpoint = &args.endpoints[1 % args.endpoints.len()];
    let mut ready = Some(ready);
    let mut signal = |r: Result<(), String>| {
        if let Some(tx) = ready.take() {
            let _ = tx.send(r);
        }
    };
    match (args.system, args.mode.as_str()) {
        (System::Etcd, _) => {
            let mut client = etcd_connect(endpoint).await?;
            // Returns once etcd has confirmed the watch (it reads the "created" response).
            let (_watcher, mut stream) = client.watch(key.clone(), None).await?;
            signal(Ok(()));
            while let Some(resp) = stream.message().await? {
                for ev in resp.events() {
                    if let Some(i) = ev.kv().and_then(|kv| index_of(kv.value())) {
                        shared.event(i);
                    }
                }
            }
            bail!("etcd watch stream ended");
        }
        (_, "xread") => {
            let mut c = Conn::connect(endpoint, CONNECT_TIMEOUT).await?;
            let mut stream = b"__watch__:".to_vec();
            stream.extend_from_slice(&prefix);
            let mut last = b"$".to_vec();
            let mut first = true;
            loop {
                c.send(&crate::resp::encode(&[
                    b"XREAD", b"BLOCK", b"1000", b"STREAMS", &stream, &last,
                ]))
                .await?;
                let reply = if first {
                    // A refusal comes at once; a blocked read (registered from "now") does
                    // not, and only then may the writer start. Conn::read is cancel-safe.
                    first = false;
                    match tokio::time::timeout(Duration::from_millis(200), c.read()).await {
                        Ok(reply) => reply?,
                        Err(_) => {
                            signal(Ok(()));
                            c.read().await?
                        }
                    }
                } else {
                    c.read().await?
                };
                if let Reply::Error(e) = &reply {
                    signal(Err(format!("XREAD: {e}")));
                    bail!("XREAD: {e}");
                }
                signal(Ok(()));
                for (id, value) in xread_entries(&reply) {
                    if let Some(i) = value.as_deref().and_then(index_of) {
                        shared.event(i);
                    }
                    last = id.into_bytes();
                }
            }
        }
        (_, _) => {
            let mut c = Conn::connect(endpoint, CONNECT_TIMEOUT).await?;
            if let Reply::Error(e) = c
                .request(&[b"CONFIG", b"SET", b"notify-keyspace-events", b"KEA"])
                .await?
            {
                signal(Err(format!("CONFIG SET notify-keyspace-events: {e}")));
                bail!("CONFIG SET: {e}");
            }
            let mut channel = b"__keyspace@0__:".to_vec();
            channel.extend_from_slice(&key);
            let confirm = c.request(&[b"SUBSCRIBE", &channel]).await?;
            let kind = confirm
                .items()
                .and_then(|v| v.first())
                .and_then(Reply::text);
            if kind.as_deref() != Some("subscribe") {
                let why = match &confirm {
                    Reply::Error(e) => e.clone(),
                    other => format!("unexpected reply {other:?}"),
                };
                signal(Err(format!("SUBSCRIBE: {why}")));
                bail!("SUBSCRIBE: {why}");
            }
            signal(Ok(()));
            let mut n = 0;
            loop {
                let msg = c.read().await?;
                let items = msg.items().unwrap_or_default();
                if items.first().and_then(Reply::text).as_deref() == Some("message") {
                    shared.event(n);
                    n += 1;
                }
            }
        }
    }
}

/// Runs the watch-latency workload.
pub async fn run(args: RunArgs) -> anyhow::Result<RunResult> {
    let args = Arc::new(args);
    let prefix = format!("bench:watch:{}:{}:", std::process::id(), args.rep).into_bytes();
    let mut key = prefix.clone();
    key.extend_from_slice(b"k");
    let max_puts = (args.duration.as_secs_f64() / args.watch_interval.as_secs_f64()) as usize + 1;
    let shared = Arc::new(Shared {
        start: Instant::now(),
        sent_us: (0..max_puts).map(|_| AtomicU64::new(0)).collect(),
        hist: Mutex::new(result::histogram()),
        received: AtomicU64::new(0),
    });
    let mut out = RunResult {
        system: args.label(),
        workload: args.workload.to_string(),
        mode: args.mode.clone(),
        value_size: args.value_size,
        concurrency: 1,
        pipeline: 1,
        rep: args.rep,
        ..RunResult::default()
    };
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(watcher(
        args.clone(),
        key.clone(),
        prefix,
        shared.clone(),
        tx,
    ));
    let ready = tokio::time::timeout(Duration::from_secs(10), rx).await;
    match ready {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(refusal))) => {
            task.abort();
            out.status = "unsupported".into();
            out.note = refusal;
            return Ok(out);
        }
        _ => {
            let why = if task.is_finished() {
                match task.await {
                    Ok(Err(e)) => format!("{e:#}"),
                    other => format!("{other:?}"),
                }
            } else {
                task.abort();
                "the watch was not registered within 10 s".to_string()
            };
            out.status = "failed".into();
            out.note = why;
            return Ok(out);
        }
    }
    let mut writer = Kv::connect(args.system, &args.endpoints[0], "")
        .await
        .context("writer")?;
    let begin = Instant::now();
    let mut sent = 0usize;
    let mut next = begin;
    while begin.elapsed() < args.duration && sent < max_puts {
        shared.sent_us[sent].store(shared.start.elapsed().as_micros() as u64, Ordering::SeqCst);
        writer.put(&key, &value_of(sent, args.value_size)).await?;
        sent += 1;
        next += args.watch_interval;
        tokio::time::sleep_until(next.into()).await;
    }
    // Grace for the last events.
    let grace = Instant::now() + Duration::from_secs(3);
    while (shared.received.load(Ordering::SeqCst) as usize) < sent && Instant::now() < grace {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    task.abort();
    let received = shared.received.load(Ordering::SeqCst);
    let hist = shared.hist.lock().unwrap().clone();
    out.duration_s = begin.elapsed().as_secs_f64();
    out.ops = received;
    out.errors = sent as u64 - received.min(sent as u64);
    out.throughput = received as f64 / out.duration_s;
    out.latency_ms = Latency::from_histogram(&hist);
    out.cdf = cdf(&hist);
    out.status = if received > 0 { "ok" } else { "failed" }.into();
    if out.errors > 0 {
        out.note = format!("{} of {sent} events never arrived", out.errors);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_carry_their_index() {
        let v = value_of(42, 256);
        assert_eq!(v.len(), 256);
        assert_eq!(index_of(&v), Some(42));
        assert_eq!(value_of(123456, 2), b"123456:".to_vec());
        assert_eq!(index_of(b"nope"), None);
        assert_eq!(index_of(b"x1:"), None);
    }

    fn bulk(s: &str) -> Reply {
        Reply::Bulk(Some(s.as_bytes().to_vec()))
    }

    #[test]
    fn reads_xread_replies() {
        // XREAD ... STREAMS __watch__:p 5-0 → two entries, the second a delete (no value).
        let reply = Reply::Array(Some(vec![Reply::Array(Some(vec![
            bulk("__watch__:p"),
            Reply::Array(Some(vec![
                Reply::Array(Some(vec![
                    bulk("6-0"),
                    Reply::Array(Some(vec![
                        bulk("type"),
                        bulk("set"),
                        bulk("key"),
                        bulk("p:k"),
                        bulk("value"),
                        bulk("7:xx"),
                    ])),
                ])),
                Reply::Array(Some(vec![
                    bulk("7-1"),
                    Reply::Array(Some(vec![
                        bulk("type"),
                        bulk("del"),
                        bulk("key"),
                        bulk("p:k"),
                    ])),
                ])),
            ])),
        ]))]));
        let got = xread_entries(&reply);
        assert_eq!(
            got,
            vec![
                ("6-0".to_string(), Some(b"7:xx".to_vec())),
                ("7-1".to_string(), None)
            ]
        );
        assert_eq!(index_of(got[0].1.as_ref().unwrap()), Some(7));
        // A timeout is a nil array: no entries.
        assert!(xread_entries(&Reply::Array(None)).is_empty());
    }

    #[test]
    fn events_are_timed_once_sent() {
        let shared = Shared {
            start: Instant::now() - Duration::from_millis(50),
            sent_us: (0..3).map(|_| AtomicU64::new(0)).collect(),
            hist: Mutex::new(result::histogram()),
            received: AtomicU64::new(0),
        };
        shared.sent_us[0].store(10_000, Ordering::SeqCst);
        shared.event(0); // about 40 ms
        shared.event(1); // never sent: ignored
        shared.event(9); // out of range: ignored
        assert_eq!(shared.received.load(Ordering::SeqCst), 1);
        let h = shared.hist.lock().unwrap();
        assert!(h.max() >= 40_000 && h.max() < 1_000_000, "{}", h.max());
    }
}
