//! Typed operations over [`resp`](crate::resp), and the classification of every reply into an
//! [`Outcome`] (SEMANTICS.md §2).
//!
//! A [`Client`] holds at most one connection, to a node it picks at random; any outcome other
//! than `ok` drops the connection, so the next operation reconnects to a random node. A
//! [`Client::pinned`] one always reconnects to the same node: it stays on a node a partition cut
//! off, as a client of one server does.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::Rng;

use crate::history::Outcome;
use crate::resp::{Conn, IoError, Reply};

/// Whether an operation can change state (decides what an error means).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    ReadOnly,
    Write,
}

/// Error replies that mean "refused before execution": the command never ran.
const REFUSED_PREFIXES: &[&str] = &[
    "ERR unknown command",
    "ERR wrong number of arguments",
    "ERR syntax error",
    "NOAUTH",
    "WRONGPASS",
];

/// The one reply that says a write was never accepted by a leader (`src/raft/write.rs`).
const NOT_APPLIED: &str = "TRYAGAIN no raft leader available";

/// Classifies an error reply (SEMANTICS.md §2).
pub fn classify_error(effect: Effect, msg: &str) -> Outcome {
    if effect == Effect::ReadOnly {
        return Outcome::Fail;
    }
    if msg.starts_with(NOT_APPLIED)
        || REFUSED_PREFIXES.iter().any(|p| msg.starts_with(p))
        || (msg.starts_with("ERR ") && msg.contains("not supported yet"))
    {
        return Outcome::Fail;
    }
    // "UNCERTAIN …", "ERR raft stopped…", anything unknown: may have happened.
    Outcome::Info
}

/// Classifies an I/O failure: nothing sent is a `fail`; after sending, a write is `info`.
pub fn classify_io(effect: Effect, e: &IoError) -> Outcome {
    match (e, effect) {
        (IoError::NotSent(_), _) | (_, Effect::ReadOnly) => Outcome::Fail,
        (IoError::AfterSend(_), Effect::Write) => Outcome::Info,
    }
}

/// A failed operation: its outcome (`fail` or `info`) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpError {
    pub outcome: Outcome,
    pub message: String,
    /// The reply had a shape the command does not document.
    pub unexpected: bool,
}

/// The result of one operation and the node it went to.
pub struct Done<T> {
    pub node: u64,
    pub result: Result<T, OpError>,
}

/// `GETMETA`'s answer: the value and its `mod_revision`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Meta {
    pub value: String,
    pub mod_revision: u64,
}

/// One worker's connection to the cluster.
pub struct Client {
    nodes: Vec<(u64, String)>,
    conn: Option<(u64, Conn)>,
    /// The index in `nodes` every connection goes to (a pinned client), or `None` (random).
    home: Option<usize>,
    /// `READMODE` sent on every new connection (`None`: the node's `[server] read_mode`).
    read_mode: Option<String>,
    pub op_timeout: Duration,
    pub connect_timeout: Duration,
}

impl Client {
    /// `nodes`: (id, redis address) of every node.
    pub fn new(nodes: Vec<(u64, String)>, op_timeout: Duration) -> Self {
        Self {
            nodes,
            conn: None,
            home: None,
            read_mode: None,
            op_timeout,
            connect_timeout: op_timeout,
        }
    }

    /// A client that connects only to `nodes[home % nodes.len()]`, after any failure too.
    pub fn pinned(nodes: Vec<(u64, String)>, home: usize, op_timeout: Duration) -> Self {
        let home = Some(home % nodes.len().max(1));
        Self {
            home,
            ..Self::new(nodes, op_timeout)
        }
    }

    /// Every connection of this client first sends `READMODE mode` (a per-connection read
    /// mode, whatever the node's default).
    pub fn with_read_mode(mut self, mode: Option<String>) -> Self {
        self.read_mode = mode;
        self
    }

    /// Closes the current connection; the next operation picks a random node (a pinned client:
    /// its node again).
    pub fn reset(&mut self) {
        self.conn = None;
    }

    /// Sends `args` and returns the reply, classifying any failure by `effect`.
    pub async fn call(&mut self, rng: &mut StdRng, effect: Effect, args: &[&[u8]]) -> Done<Reply> {
        if self.conn.is_none() {
            let i = match self.home {
                Some(home) => home,
                None => rng.gen_range(0..self.nodes.len()),
            };
            let (id, addr) = self.nodes[i].clone();
            match Conn::connect(&addr, self.connect_timeout).await {
                Ok(mut c) => {
                    if let Some(mode) = &self.read_mode {
                        // Before the operation is sent: a failure here is the operation's
                        // `fail` (it never reached the node).
                        let r = c
                            .call(&[b"READMODE", mode.as_bytes()], self.op_timeout)
                            .await;
                        if !matches!(&r, Ok(Reply::Simple(ok)) if ok == "OK") {
                            return Done {
                                node: id,
                                result: Err(OpError {
                                    outcome: Outcome::Fail,
                                    message: format!("READMODE {mode}: {r:?}"),
                                    unexpected: false,
                                }),
                            };
                        }
                    }
                    self.conn = Some((id, c))
                }
                Err(e) => {
                    return Done {
                        node: id,
                        result: Err(OpError {
                            outcome: classify_io(effect, &e),
                            message: e.to_string(),
                            unexpected: false,
                        }),
                    }
                }
            }
        }
        let (node, conn) = self.conn.as_mut().expect("connected");
        let node = *node;
        let result = match conn.call(args, self.op_timeout).await {
            Ok(Reply::Error(msg)) => Err(OpError {
                outcome: classify_error(effect, &msg),
                message: msg,
                unexpected: false,
            }),
            Ok(r) => Ok(r),
            Err(e) => Err(OpError {
                outcome: classify_io(effect, &e),
                message: e.to_string(),
                unexpected: false,
            }),
        };
        if result.is_err() {
            self.conn = None;
        }
        Done { node, result }
    }

    /// Maps an `ok` reply through `parse`; a reply of the wrong shape is `unexpected`.
    fn shape<T>(
        &mut self,
        done: Done<Reply>,
        effect: Effect,
        parse: impl FnOnce(Reply) -> Result<T, Reply>,
    ) -> Done<T> {
        let result = done.result.and_then(|r| {
            parse(r).map_err(|r| OpError {
                outcome: if effect == Effect::ReadOnly {
                    Outcome::Fail
                } else {
                    Outcome::Info
                },
                message: format!("unexpected reply {r:?}"),
                unexpected: true,
            })
        });
        if result.is_err() {
            self.conn = None;
        }
        Done {
            node: done.node,
            result,
        }
    }

    /// `GET key`.
    pub async fn get(&mut self, rng: &mut StdRng, key: &str) -> Done<Option<String>> {
        let d = self
            .call(rng, Effect::ReadOnly, &[b"GET", key.as_bytes()])
            .await;
        self.shape(d, Effect::ReadOnly, |r| match r {
            Reply::Bulk(None) => Ok(None),
            Reply::Bulk(Some(b)) => String::from_utf8(b)
                .map(Some)
                .map_err(|e| Reply::Bulk(Some(e.into_bytes()))),
            other => Err(other),
        })
    }

    /// `SET key value`.
    pub async fn set(&mut self, rng: &mut StdRng, key: &str, value: &str) -> Done<()> {
        let args: [&[u8]; 3] = [b"SET", key.as_bytes(), value.as_bytes()];
        let d = self.call(rng, Effect::Write, &args).await;
        self.shape(d, Effect::Write, |r| match r {
            Reply::Simple(s) if s == "OK" => Ok(()),
            other => Err(other),
        })
    }

    /// `MSET key value [key value ...]`: every pair in one write.
    pub async fn mset(&mut self, rng: &mut StdRng, pairs: &[(&str, &str)]) -> Done<()> {
        let mut args: Vec<&[u8]> = vec![b"MSET"];
        for (k, v) in pairs {
            args.push(k.as_bytes());
            args.push(v.as_bytes());
        }
        let d = self.call(rng, Effect::Write, &args).await;
        self.shape(d, Effect::Write, |r| match r {
            Reply::Simple(s) if s == "OK" => Ok(()),
            other => Err(other),
        })
    }

    /// `GETMETA key`: `None` if absent.
    pub async fn getmeta(&mut self, rng: &mut StdRng, key: &str) -> Done<Option<Meta>> {
        let d = self
            .call(rng, Effect::ReadOnly, &[b"GETMETA", key.as_bytes()])
            .await;
        self.shape(d, Effect::ReadOnly, parse_getmeta)
    }

    /// `CAS key expected_mod_revision value`: whether it applied.
    pub async fn cas(&mut self, rng: &mut StdRng, key: &str, rev: u64, value: &str) -> Done<bool> {
        let rev = rev.to_string();
        let args: [&[u8]; 4] = [b"CAS", key.as_bytes(), rev.as_bytes(), value.as_bytes()];
        let d = self.call(rng, Effect::Write, &args).await;
        self.shape(d, Effect::Write, |r| match r {
            Reply::Int(1) => Ok(true),
            Reply::Int(0) => Ok(false),
            other => Err(other),
        })
    }

    /// A compare-and-set in Lua: one `EVAL` that sets `key` to `value` only if it holds
    /// `expected` (`None`: absent). Returns whether it set.
    pub async fn script_cas(
        &mut self,
        rng: &mut StdRng,
        key: &str,
        expected: Option<&str>,
        value: &str,
    ) -> Done<bool> {
        const SCRIPT: &[u8] = b"local cur = redis.call('get', KEYS[1]) \
            if (ARGV[3] == '1' and cur == false) or (ARGV[3] == '0' and cur == ARGV[1]) then \
            redis.call('set', KEYS[1], ARGV[2]) return 1 end return 0";
        let absent: &[u8] = if expected.is_none() { b"1" } else { b"0" };
        let args: [&[u8]; 7] = [
            b"EVAL",
            SCRIPT,
            b"1",
            key.as_bytes(),
            expected.unwrap_or("").as_bytes(),
            value.as_bytes(),
            absent,
        ];
        let d = self.call(rng, Effect::Write, &args).await;
        self.shape(d, Effect::Write, |r| match r {
            Reply::Int(1) => Ok(true),
            Reply::Int(0) => Ok(false),
            other => Err(other),
        })
    }

    /// The first half of Redis's optimistic compare-and-set: `WATCH key`, then `GET key` on the
    /// same connection. Neither has an effect.
    pub async fn watch_get(&mut self, rng: &mut StdRng, key: &str) -> Done<Option<String>> {
        let watch = self
            .call(rng, Effect::ReadOnly, &[b"WATCH", key.as_bytes()])
            .await;
        let watch = self.shape(watch, Effect::ReadOnly, |r| match r {
            Reply::Simple(s) if s == "OK" => Ok(None),
            other => Err(other),
        });
        if watch.result.is_err() {
            return watch;
        }
        self.get(rng, key).await
    }

    /// The second half, on the connection [`Self::watch_get`] used: `MULTI`, `SET key value`,
    /// `EXEC`. Returns whether EXEC applied (`false`: aborted, a watched key changed). A failure
    /// before EXEC is a `fail` (the connection is closed, which discards the transaction).
    pub async fn multi_set_exec(&mut self, rng: &mut StdRng, key: &str, value: &str) -> Done<bool> {
        self.multi_exec(rng, &[(key, value)]).await
    }

    /// `MULTI`, `SET key value` for each pair, `EXEC`: every pair in one transaction (one
    /// revision). Returns whether EXEC applied (`false`: aborted, a watched key changed). A
    /// failure before EXEC is a `fail` (the connection is closed, which discards the
    /// transaction).
    pub async fn multi_exec(&mut self, rng: &mut StdRng, pairs: &[(&str, &str)]) -> Done<bool> {
        let mut queue: Vec<(Vec<&[u8]>, &str)> = vec![(vec![b"MULTI"], "OK")];
        for (k, v) in pairs {
            queue.push((vec![b"SET", k.as_bytes(), v.as_bytes()], "QUEUED"));
        }
        for (args, want) in queue {
            let d = self.call(rng, Effect::ReadOnly, &args).await;
            let d = self.shape(d, Effect::ReadOnly, |r| match r {
                Reply::Simple(s) if s == want => Ok(false),
                other => Err(other),
            });
            if d.result.is_err() {
                return d;
            }
        }
        let d = self.call(rng, Effect::Write, &[b"EXEC"]).await;
        let n = pairs.len();
        self.shape(d, Effect::Write, |r| match r {
            Reply::Array(Some(replies))
                if replies.len() == n
                    && replies.iter().all(|r| *r == Reply::Simple("OK".into())) =>
            {
                Ok(true)
            }
            Reply::Array(None) | Reply::Bulk(None) => Ok(false),
            other => Err(other),
        })
    }

    /// `DBSIZE`.
    pub async fn dbsize(&mut self, rng: &mut StdRng) -> Done<i64> {
        let d = self.call(rng, Effect::ReadOnly, &[b"DBSIZE"]).await;
        self.shape(d, Effect::ReadOnly, |r| match r {
            Reply::Int(n) => Ok(n),
            other => Err(other),
        })
    }

    /// `GET` of many keys in pipelined batches, on one connection; any failure fails it all.
    pub async fn get_many(
        &mut self,
        rng: &mut StdRng,
        keys: &[String],
    ) -> Result<Vec<Option<Vec<u8>>>, String> {
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(200) {
            if self.conn.is_none() {
                // Reuse call()'s connect logic with a PING.
                let d = self.call(rng, Effect::ReadOnly, &[b"PING"]).await;
                d.result.map_err(|e| e.message)?;
            }
            let (_, conn) = self.conn.as_mut().expect("connected");
            let cmds: Vec<Vec<&[u8]>> = chunk
                .iter()
                .map(|k| vec![&b"GET"[..], k.as_bytes()])
                .collect();
            let replies = match conn.pipeline(&cmds, self.op_timeout * 4).await {
                Ok(r) => r,
                Err(e) => {
                    self.conn = None;
                    return Err(e.to_string());
                }
            };
            for r in replies {
                match r {
                    Reply::Bulk(b) => out.push(b),
                    other => {
                        self.conn = None;
                        return Err(format!("GET answered {other:?}"));
                    }
                }
            }
        }
        Ok(out)
    }

    /// Whether the server knows `cmd` (an unknown command is refused with Redis's text).
    pub async fn supports(&mut self, rng: &mut StdRng, args: &[&[u8]]) -> Result<bool, String> {
        let d = self.call(rng, Effect::ReadOnly, args).await;
        match d.result {
            Ok(_) => Ok(true),
            Err(e) if e.message.starts_with("ERR unknown command") => Ok(false),
            Err(e) if e.message.starts_with("ERR wrong number") => Ok(true),
            Err(e) => Err(e.message),
        }
    }
}

/// Parses `GETMETA`'s map (RESP3) or flat array (RESP2) of field names and values.
pub fn parse_getmeta(r: Reply) -> Result<Option<Meta>, Reply> {
    let items = match r {
        Reply::Bulk(None) | Reply::Array(None) => return Ok(None),
        Reply::Array(Some(items)) if items.len() % 2 == 0 => items,
        other => return Err(other),
    };
    let text = |r: &Reply| match r {
        Reply::Simple(s) => Some(s.clone()),
        Reply::Bulk(Some(b)) => String::from_utf8(b.clone()).ok(),
        Reply::Int(n) => Some(n.to_string()),
        _ => None,
    };
    let mut value = None;
    let mut rev = None;
    for pair in items.chunks(2) {
        match text(&pair[0]).as_deref() {
            Some("value") => value = text(&pair[1]),
            Some("mod_revision") => rev = text(&pair[1]).and_then(|s| s.parse().ok()),
            _ => {}
        }
    }
    match (value, rev) {
        (Some(value), Some(mod_revision)) => Ok(Some(Meta {
            value,
            mod_revision,
        })),
        _ => Err(Reply::Array(Some(items))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_replies_are_classified_as_semantics_says() {
        use Effect::*;
        use Outcome::*;
        let cases = [
            (Write, "TRYAGAIN no raft leader available (election in progress or quorum lost); not applied, retry", Fail),
            (Write, "UNCERTAIN the leader was lost or stopped before answering; the write may or may not have been applied", Info),
            (Write, "UNCERTAIN the write was proposed but not answered within 5000 ms (a long write applied ahead of it, a slow disk, or the leader lost); it may or may not have been applied", Info),
            (ReadOnly, "TRYAGAIN this node has not applied up to the read's index 7 within 5000 ms (a long write is being applied ahead of it); not served, retry", Fail),
            (Write, "TRYAGAIN the leader was lost before answering; the write may or may not have been applied", Info),
            (Write, "ERR raft stopped on this node: storage error", Info),
            (Write, "ERR unknown command 'CAS', with args beginning with: ", Fail),
            (Write, "ERR wrong number of arguments for 'set' command", Fail),
            (Write, "ERR SET option EX is not supported yet", Fail),
            (Write, "LOADING something new", Info),
            (Write, "ERR something nobody documented", Info),
            (ReadOnly, "TRYAGAIN the leader was lost before answering", Fail),
            (ReadOnly, "UNCERTAIN the leader was lost or stopped before answering", Fail),
            (ReadOnly, "ERR raft stopped on this node", Fail),
        ];
        for (effect, msg, want) in cases {
            assert_eq!(classify_error(effect, msg), want, "{effect:?} {msg}");
        }
    }

    #[test]
    fn io_failures_are_fail_only_when_nothing_was_sent() {
        let not_sent = IoError::NotSent("refused".into());
        let after = IoError::AfterSend("reset".into());
        assert_eq!(classify_io(Effect::Write, &not_sent), Outcome::Fail);
        assert_eq!(classify_io(Effect::Write, &after), Outcome::Info);
        assert_eq!(classify_io(Effect::ReadOnly, &after), Outcome::Fail);
    }

    #[test]
    fn getmeta_replies_parse_in_both_shapes() {
        let b = |s: &str| Reply::Bulk(Some(s.as_bytes().to_vec()));
        let flat = Reply::Array(Some(vec![
            b("value"),
            b("42"),
            b("create_revision"),
            Reply::Int(3),
            b("mod_revision"),
            Reply::Int(9),
            b("version"),
            Reply::Int(2),
            b("ttl"),
            Reply::Int(-1),
        ]));
        let want = Meta {
            value: "42".into(),
            mod_revision: 9,
        };
        assert_eq!(parse_getmeta(flat), Ok(Some(want)));
        assert_eq!(parse_getmeta(Reply::Bulk(None)), Ok(None));
        assert_eq!(parse_getmeta(Reply::Array(None)), Ok(None));
        assert!(parse_getmeta(Reply::Int(1)).is_err());
        assert!(parse_getmeta(Reply::Array(Some(vec![b("value"), b("1")]))).is_err());
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_fail_and_the_client_moves_on() {
        use rand::SeedableRng;
        let mut rng = StdRng::seed_from_u64(1);
        let mut c = Client::new(vec![(1, "127.0.0.1:1".into())], Duration::from_millis(200));
        let d = c.set(&mut rng, "k", "v").await;
        assert_eq!(d.node, 1);
        assert_eq!(d.result.unwrap_err().outcome, Outcome::Fail);
    }

    #[tokio::test]
    async fn a_pinned_client_reconnects_to_its_node_after_every_failure() {
        use rand::SeedableRng;
        let nodes = vec![
            (1, "127.0.0.1:1".to_string()),
            (2, "127.0.0.1:2".to_string()),
        ];
        let timeout = Duration::from_millis(200);
        let mut rng = StdRng::seed_from_u64(7);
        let mut pinned = Client::pinned(nodes.clone(), 1, timeout);
        let mut random = Client::new(nodes, timeout);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..20 {
            assert_eq!(pinned.set(&mut rng, "k", "v").await.node, 2);
            seen.insert(random.set(&mut rng, "k", "v").await.node);
        }
        // The same failures move an unpinned client between both nodes.
        assert_eq!(seen, [1, 2].into());
    }
}
