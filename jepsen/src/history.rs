//! The history: one [`Op`] per operation, written as JSON lines (SEMANTICS.md §1-§2).
//!
//! Owns the record format and the outcome words; knows nothing of RESP, processes or checking.

use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// What an operation's outcome says about its effect (SEMANTICS.md §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Took effect exactly once, between invocation and completion.
    Ok,
    /// Definitely did not take effect.
    Fail,
    /// Indeterminate: may take effect at any time after invocation, or never.
    Info,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Fail => "fail",
            Outcome::Info => "info",
        }
    }
}

/// The operation and its result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "f", rename_all = "lowercase")]
pub enum Call {
    /// `GET`/`GETMETA`; `value` is the result (`None` = nil), meaningful only when `ok`.
    Read { value: Option<String> },
    /// `SET key value`; with `with`, one of the `SET`s of a `MULTI` … `EXEC` that also set
    /// each `(key, value)` of `with`: one entry, so one revision (DESIGN §6, *atomic*). Each key
    /// of the transaction has its own op, with the same outcome and times.
    Write {
        value: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        with: Vec<(String, String)>,
    },
    /// `CAS key expected_rev value`, where `expected` is the value `GETMETA` returned with
    /// `expected_rev` (`None` and 0 for an absent key); `result` is `:1` / `:0` when `ok`.
    /// With `watch`, the same compare-and-set done Redis's way: `WATCH key`, `GET key`
    /// (`expected`), `MULTI`, `SET key value`, `EXEC`; `expected_rev` is 0 (the server
    /// compares the revision WATCH read). An applied EXEC (`result` true) means no write
    /// between WATCH and EXEC, so the value read was current: a successful CAS of it. An
    /// aborted EXEC is recorded as a `fail` (no effect): a write may have landed between WATCH
    /// and GET, so "changed since the value read" does not follow.
    Cas {
        expected: Option<String>,
        expected_rev: u64,
        value: String,
        result: Option<bool>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        watch: bool,
    },
    /// Set workload: `SET set:<element> 1`, or with `with`, one `MSET` of `set:<element> 1`
    /// and `set:<other> 1` for each other element: one entry, so one revision (DESIGN §6,
    /// *atomic*). Each element of an `MSET` has its own op, with the same outcome and times,
    /// and the others in `with`.
    Add {
        element: u64,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        with: Vec<u64>,
    },
    /// A cache reader answered from its client-side cache (`src/cache.rs`): `value` is what
    /// the `read` `fill_id`, invoked at `fill_invoke_ns`, returned. Not linearizable; checked
    /// by `checker::cache` against the README's guarantee.
    #[serde(rename = "cached-read")]
    CachedRead {
        value: Option<String>,
        fill_id: u64,
        fill_invoke_ns: u64,
    },
}

impl Call {
    pub fn name(&self) -> &'static str {
        match self {
            Call::Read { .. } => "read",
            Call::Write { .. } => "write",
            Call::Cas { .. } => "cas",
            Call::Add { .. } => "add",
            Call::CachedRead { .. } => "cached-read",
        }
    }
}

/// One operation of one client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    /// Unique in the run, in invocation order.
    pub id: u64,
    /// The client (worker) that ran it; `u64::MAX - n` for the harness's final reads.
    pub process: u64,
    /// The node the request was sent to.
    pub node: u64,
    pub key: String,
    #[serde(flatten)]
    pub call: Call,
    /// Nanoseconds since the run started.
    pub invoke_ns: u64,
    pub complete_ns: u64,
    pub outcome: Outcome,
    /// The error reply or I/O error behind a `fail` or `info`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The run's clock and the list of completed operations, shared by every client.
#[derive(Clone)]
pub struct Recorder {
    start: Instant,
    inner: Arc<Mutex<Vec<Op>>>,
    next_id: Arc<std::sync::atomic::AtomicU64>,
}

impl Recorder {
    pub fn new(start: Instant) -> Self {
        Self {
            start,
            inner: Arc::default(),
            next_id: Arc::default(),
        }
    }

    /// Nanoseconds since the run started.
    pub fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    pub fn start(&self) -> Instant {
        self.start
    }

    /// A fresh operation id (invocation order).
    pub fn next_id(&self) -> u64 {
        self.next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    pub fn record(&self, op: Op) {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(op);
    }

    /// Every recorded operation, sorted by id.
    pub fn snapshot(&self) -> Vec<Op> {
        let mut ops = self.inner.lock().unwrap_or_else(|p| p.into_inner()).clone();
        ops.sort_by_key(|o| o.id);
        ops
    }
}

/// Writes `ops` as JSON lines.
pub fn write_jsonl(path: &Path, ops: &[Op]) -> std::io::Result<()> {
    let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
    for op in ops {
        serde_json::to_writer(&mut w, op)?;
        w.write_all(b"\n")?;
    }
    w.flush()
}

/// Reads a history written by [`write_jsonl`].
pub fn read_jsonl(path: &Path) -> anyhow::Result<Vec<Op>> {
    let r = std::io::BufReader::new(std::fs::File::open(path)?);
    let mut ops = Vec::new();
    for (i, line) in r.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        ops.push(
            serde_json::from_str(&line)
                .map_err(|e| anyhow::anyhow!("{}:{}: {e}", path.display(), i + 1))?,
        );
    }
    Ok(ops)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_round_trip_as_json_lines() {
        let ops = vec![
            Op {
                id: 0,
                process: 3,
                node: 2,
                key: "r0".into(),
                call: Call::Cas {
                    expected: None,
                    expected_rev: 0,
                    watch: false,
                    value: "7".into(),
                    result: Some(true),
                },
                invoke_ns: 10,
                complete_ns: 20,
                outcome: Outcome::Ok,
                error: None,
            },
            Op {
                id: 1,
                process: 4,
                node: 1,
                key: "r1".into(),
                call: Call::Read { value: None },
                invoke_ns: 11,
                complete_ns: 21,
                outcome: Outcome::Info,
                error: Some("timeout".into()),
            },
        ];
        let dir = std::env::temp_dir().join(format!("jepsen-hist-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("h.jsonl");
        write_jsonl(&path, &ops).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.lines().next().unwrap().contains("\"f\":\"cas\""),
            "{text}"
        );
        assert_eq!(read_jsonl(&path).unwrap(), ops);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
