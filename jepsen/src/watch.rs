//! Watchers: clients that follow the whole keyspace through redraft's watch stream
//! (`XREAD BLOCK … STREAMS __watch__: <last id>`, DESIGN §6) for the length of a run, through
//! the faults, and record every event they see. `checker::watch` compares what they saw.
//!
//! Each watcher starts on a different node. When its connection fails or the node answers an
//! error (no leader, node stopped), it moves to the next node and resumes from the last entry
//! ID it received — the stream's resume contract, exercised across kill -9, pauses, partitions,
//! transfers and membership changes. After the run, [`Watchers::drain`] gives each watcher
//! until a deadline to reach the cluster's final revision.
//!
//! *Lagging* watchers (`--lagging-watchers`) also stop reading for 1-4 s now and then during
//! the workload, as a consumer that falls behind does. With history kept short
//! (`--history-revisions`), such a watcher resumes below the compact revision and must be told
//! `-COMPACTED … oldest available revision is R` (DESIGN §6: never a silent gap); it records
//! that ([`Compaction`]) and goes on from revision R, and the check allows exactly that gap.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use crate::resp::{Conn, Reply};

/// One event as a watcher received it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WatchEvent {
    pub revision: u64,
    pub sub: u64,
    /// `set`, `del`, `expired`, ...
    pub kind: String,
    pub key: String,
    /// `None` for a delete.
    pub value: Option<String>,
}

/// What one watcher saw.
#[derive(Clone, Debug, Default, Serialize)]
pub struct WatcherLog {
    pub watcher: usize,
    #[serde(skip)]
    pub events: Vec<WatchEvent>,
    /// Times it moved to another node (connection failure or error reply).
    pub moves: u64,
    /// Error replies that are not a reason to move on (a `COMPACTED` ends the watcher).
    pub errors: Vec<String>,
    /// The node it was reading from when it stopped.
    pub last_node: u64,
    /// Whether it stopped reading now and then (a lagging watcher).
    pub lagging: bool,
    /// Every `-COMPACTED` it was answered, in order; after each it resumed from `oldest`.
    pub compactions: Vec<Compaction>,
}

/// A `-COMPACTED` answer: the watcher had seen everything up to `seen` and asked for the
/// changes from revision `required` on; the oldest revision still available was `oldest`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Compaction {
    pub seen: u64,
    pub required: u64,
    pub oldest: u64,
}

/// Parses redraft's `COMPACTED required revision X has been compacted; oldest available
/// revision is R` into `(X, R)`.
pub fn parse_compacted(e: &str) -> Option<(u64, u64)> {
    let rest = e.strip_prefix("COMPACTED required revision ")?;
    let (required, rest) = rest.split_once(' ')?;
    let oldest = rest.rsplit_once("oldest available revision is ")?.1;
    Some((required.parse().ok()?, oldest.trim().parse().ok()?))
}

/// Parses an entry ID `<revision>-<sub>`.
pub fn parse_id(id: &str) -> Option<(u64, u64)> {
    let (r, s) = id.split_once('-')?;
    Some((r.parse().ok()?, s.parse().ok()?))
}

fn text(r: &Reply) -> Option<String> {
    match r {
        Reply::Bulk(Some(b)) => Some(String::from_utf8_lossy(b).into_owned()),
        Reply::Simple(s) => Some(s.clone()),
        _ => None,
    }
}

/// Parses an XREAD reply for one stream into events (empty for a nil reply). `Err` names what
/// was malformed.
pub fn parse_xread(reply: &Reply) -> Result<Vec<WatchEvent>, String> {
    let streams = match reply {
        Reply::Array(None) | Reply::Bulk(None) => return Ok(Vec::new()),
        Reply::Array(Some(s)) => s,
        other => return Err(format!("XREAD answered {other:?}")),
    };
    let mut out = Vec::new();
    for stream in streams {
        // RESP2: [name, entries]; RESP3 maps are flattened by the decoder to the same shape.
        let Reply::Array(Some(pair)) = stream else {
            return Err(format!("stream element {stream:?}"));
        };
        let Some(Reply::Array(Some(entries))) = pair.get(1) else {
            return Err(format!("stream entries {pair:?}"));
        };
        for entry in entries {
            let Reply::Array(Some(e)) = entry else {
                return Err(format!("entry {entry:?}"));
            };
            let id = e.first().and_then(text).ok_or("entry without id")?;
            let (revision, sub) = parse_id(&id).ok_or_else(|| format!("entry id {id:?}"))?;
            let Some(Reply::Array(Some(fields))) = e.get(1) else {
                return Err(format!("entry {id} without fields"));
            };
            let mut ev = WatchEvent {
                revision,
                sub,
                kind: String::new(),
                key: String::new(),
                value: None,
            };
            for kv in fields.chunks(2) {
                let (Some(k), Some(v)) = (kv.first().and_then(text), kv.get(1).and_then(text))
                else {
                    return Err(format!("entry {id}: odd field list"));
                };
                match k.as_str() {
                    "type" => ev.kind = v,
                    "key" => ev.key = v,
                    "value" => ev.value = Some(v),
                    _ => {}
                }
            }
            out.push(ev);
        }
    }
    Ok(out)
}

/// The watchers of a run.
pub struct Watchers {
    /// Each watcher stops once it has seen this revision (`u64::MAX`: keep going).
    stop_at: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<WatcherLog>>,
}

impl Watchers {
    /// Starts `n` watchers, watcher `i` first on node `addrs[i % len]`, of which the last
    /// `lagging` lag now and then (seeded by `seed`).
    pub fn start(n: usize, lagging: usize, addrs: Vec<(u64, String)>, seed: u64) -> Watchers {
        let stop_at = Arc::new(AtomicU64::new(u64::MAX));
        let tasks = (0..n)
            .map(|i| {
                let lag = (i + lagging >= n).then(|| seed ^ (i as u64 + 1));
                tokio::spawn(run(i, addrs.clone(), stop_at.clone(), lag))
            })
            .collect();
        Watchers { stop_at, tasks }
    }

    /// Lets every watcher run until it has seen `revision` or `timeout` passes, then returns
    /// what each saw.
    pub async fn drain(self, revision: u64, timeout: Duration) -> Vec<WatcherLog> {
        self.stop_at.store(revision, Ordering::SeqCst);
        let mut logs = Vec::new();
        for (i, t) in self.tasks.into_iter().enumerate() {
            let abort = t.abort_handle();
            match tokio::time::timeout(timeout, t).await {
                Ok(Ok(log)) => logs.push(log),
                Ok(Err(e)) => logs.push(WatcherLog {
                    watcher: i,
                    errors: vec![format!("watcher task failed: {e}")],
                    ..Default::default()
                }),
                Err(_) => {
                    abort.abort();
                    logs.push(WatcherLog {
                        watcher: i,
                        errors: vec![format!("did not reach revision {revision} in {timeout:?}")],
                        ..Default::default()
                    });
                }
            }
        }
        logs
    }
}

/// What a watcher has seen so far, shared so a timed-out drain still reports it.
type Shared = Arc<Mutex<WatcherLog>>;

async fn run(
    i: usize,
    addrs: Vec<(u64, String)>,
    stop_at: Arc<AtomicU64>,
    lag: Option<u64>,
) -> WatcherLog {
    let shared: Shared = Arc::new(Mutex::new(WatcherLog {
        watcher: i,
        lagging: lag.is_some(),
        ..Default::default()
    }));
    follow(i, &addrs, &stop_at, &shared, lag).await;
    let log = shared.lock().unwrap_or_else(|p| p.into_inner()).clone();
    log
}

async fn follow(
    i: usize,
    addrs: &[(u64, String)],
    stop_at: &AtomicU64,
    shared: &Shared,
    lag: Option<u64>,
) {
    use rand::{Rng, SeedableRng};
    let mut lag = lag.map(rand::rngs::StdRng::seed_from_u64);
    let io = Duration::from_secs(3);
    let mut node = i % addrs.len();
    let mut last = "0-0".to_string();
    let mut seen: u64 = 0;
    let mut conn: Option<Conn> = None;
    loop {
        if seen >= stop_at.load(Ordering::SeqCst) {
            return;
        }
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match Conn::connect(&addrs[node].1, Duration::from_millis(500)).await {
                Ok(c) => {
                    shared.lock().unwrap_or_else(|p| p.into_inner()).last_node = addrs[node].0;
                    conn.insert(c)
                }
                Err(_) => {
                    node = (node + 1) % addrs.len();
                    shared.lock().unwrap_or_else(|p| p.into_inner()).moves += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let args: [&[u8]; 8] = [
            b"XREAD",
            b"COUNT",
            b"1000",
            b"BLOCK",
            b"500",
            b"STREAMS",
            b"__watch__:",
            last.as_bytes(),
        ];
        let reply = match c.call(&args, io).await {
            Ok(Reply::Error(e)) => {
                if e.starts_with("COMPACTED") {
                    let mut s = shared.lock().unwrap_or_else(|p| p.into_inner());
                    let Some((required, oldest)) = parse_compacted(&e) else {
                        s.errors.push(format!("unparsable COMPACTED: {e}"));
                        return;
                    };
                    s.compactions.push(Compaction {
                        seen,
                        required,
                        oldest,
                    });
                    if oldest <= seen || s.compactions.len() > 1000 {
                        s.errors.push(format!("after revision {seen}: {e}"));
                        return;
                    }
                    // Everything from `oldest` on: all of revision oldest − 1 counts as seen.
                    last = format!("{}-{}", oldest - 1, u64::MAX);
                    continue;
                }
                // No leader, a stopped Raft, a removed node: read from the next node.
                conn = None;
                node = (node + 1) % addrs.len();
                shared.lock().unwrap_or_else(|p| p.into_inner()).moves += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            Ok(r) => r,
            Err(_) => {
                conn = None;
                node = (node + 1) % addrs.len();
                shared.lock().unwrap_or_else(|p| p.into_inner()).moves += 1;
                continue;
            }
        };
        match parse_xread(&reply) {
            Ok(events) => {
                if let Some(e) = events.last() {
                    last = format!("{}-{}", e.revision, e.sub);
                    seen = e.revision;
                }
                shared
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .events
                    .extend(events);
                // A lagging watcher stops reading for a while, during the workload only.
                if let Some(rng) = lag.as_mut() {
                    if stop_at.load(Ordering::SeqCst) == u64::MAX && rng.gen_bool(0.1) {
                        let pause = rng.gen_range(1000..4000);
                        tokio::time::sleep(Duration::from_millis(pause)).await;
                    }
                }
            }
            Err(why) => {
                let mut s = shared.lock().unwrap_or_else(|p| p.into_inner());
                s.errors.push(format!("unparsable XREAD reply: {why}"));
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Reply {
        Reply::Bulk(Some(s.as_bytes().to_vec()))
    }

    #[test]
    fn parses_an_xread_reply_and_a_timeout() {
        let reply = Reply::Array(Some(vec![Reply::Array(Some(vec![
            bulk("__watch__:"),
            Reply::Array(Some(vec![
                Reply::Array(Some(vec![
                    bulk("7-0"),
                    Reply::Array(Some(vec![
                        bulk("type"),
                        bulk("set"),
                        bulk("key"),
                        bulk("r1"),
                        bulk("value"),
                        bulk("42"),
                    ])),
                ])),
                Reply::Array(Some(vec![
                    bulk("8-1"),
                    Reply::Array(Some(vec![
                        bulk("type"),
                        bulk("del"),
                        bulk("key"),
                        bulk("r2"),
                    ])),
                ])),
            ])),
        ]))]));
        let evs = parse_xread(&reply).unwrap();
        assert_eq!(evs.len(), 2);
        assert_eq!(
            evs[0],
            WatchEvent {
                revision: 7,
                sub: 0,
                kind: "set".into(),
                key: "r1".into(),
                value: Some("42".into())
            }
        );
        assert_eq!(
            (evs[1].revision, evs[1].sub, evs[1].value.clone()),
            (8, 1, None)
        );
        assert!(parse_xread(&Reply::Array(None)).unwrap().is_empty());
        assert!(parse_xread(&Reply::Int(3)).is_err());
        assert_eq!(parse_id("12-3"), Some((12, 3)));
        assert_eq!(
            parse_compacted(
                "COMPACTED required revision 2 has been compacted; oldest available revision is 5"
            ),
            Some((2, 5))
        );
        assert_eq!(parse_compacted("COMPACTED something else"), None);
        assert_eq!(parse_id("12"), None);
    }
}
