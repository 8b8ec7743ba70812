//! One key-value client over either protocol, with the operations the workloads need: SET and
//! GET in a read mode, a pipeline of them (RESP), finding the leader, and a local read on one
//! chosen node (for catch-up).

use std::time::Duration;

use anyhow::{bail, Context};
use etcd_client::{GetOptions, KvClient};

use crate::args::{Protocol, System};
use crate::resp::{encode_into, Conn, Reply};

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// One operation of a key-value workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Set(u64),
    Get(u64),
    /// `EVALSHA` of [`LOCK_RELEASE`] on lock key `n` (no lock there: it answers 0).
    Release(u64),
    /// `HSET` of field `n` of [`HASH`].
    HSet(u64),
    /// `HGET` of field `n` of [`HASH`].
    HGet(u64),
}

/// redis-py's `Lock.LUA_RELEASE_SCRIPT`: the compare-and-delete every lock library sends.
pub const LOCK_RELEASE: &str = "local token = redis.call('get', KEYS[1])
if not token or token ~= ARGV[1] then
    return 0
end
redis.call('del', KEYS[1])
return 1";

/// The one hash of the `hset` and `hget` workloads.
pub const HASH: &[u8] = b"bench:hash";

pub fn lock_key(n: u64) -> Vec<u8> {
    format!("bench:lock:{n:06}").into_bytes()
}

pub fn field(n: u64) -> Vec<u8> {
    format!("field:{n:06}").into_bytes()
}

pub fn key(n: u64) -> Vec<u8> {
    format!("bench:{n:06}").into_bytes()
}

/// The etcd-client URL for `endpoint` (`http://` added when it has no scheme).
pub fn etcd_url(endpoint: &str) -> String {
    if endpoint.contains("://") {
        endpoint.to_string()
    } else {
        format!("http://{endpoint}")
    }
}

pub async fn etcd_connect(endpoint: &str) -> anyhow::Result<etcd_client::Client> {
    let opts = etcd_client::ConnectOptions::new()
        .with_connect_timeout(CONNECT_TIMEOUT)
        .with_timeout(Duration::from_secs(10));
    tokio::time::timeout(
        CONNECT_TIMEOUT * 2,
        etcd_client::Client::connect([etcd_url(endpoint)], Some(opts)),
    )
    .await
    .with_context(|| format!("connect to etcd {endpoint}: timed out"))?
    .with_context(|| format!("connect to etcd {endpoint}"))
}

/// A connection to one node.
pub enum Kv {
    Resp {
        conn: Conn,
        /// The SHA1 of [`LOCK_RELEASE`] once `SCRIPT LOAD` answered it (evalsha workload).
        release_sha: Vec<u8>,
    },
    Etcd {
        kv: KvClient,
        serializable: bool,
    },
}

impl Kv {
    /// Connects to `endpoint` and sets the read mode: `READMODE mode` on redraft, a
    /// serializable range option on etcd. Fails if the server refuses the mode.
    pub async fn connect(system: System, endpoint: &str, mode: &str) -> anyhow::Result<Kv> {
        match system.protocol() {
            Protocol::Resp => {
                let mut c = Conn::connect(endpoint, CONNECT_TIMEOUT).await?;
                if system == System::Redraft && !mode.is_empty() {
                    c.request_ok(&[b"READMODE", mode.as_bytes()]).await?;
                }
                Ok(Kv::Resp {
                    conn: c,
                    release_sha: Vec::new(),
                })
            }
            Protocol::Etcd => Ok(Kv::Etcd {
                kv: etcd_connect(endpoint).await?.kv_client(),
                serializable: mode == "serializable",
            }),
        }
    }

    /// Runs `ops` (several in one round trip over RESP; one at a time over etcd, which is
    /// only ever given one). Returns one outcome per op: `Ok` or the error text. A broken
    /// connection is an `Err` of the whole call.
    pub async fn run(
        &mut self,
        ops: &[Op],
        value: &[u8],
        out: &mut Vec<Result<(), String>>,
        req: &mut Vec<u8>,
    ) -> anyhow::Result<()> {
        out.clear();
        match self {
            Kv::Resp {
                conn: c,
                release_sha,
            } => {
                if release_sha.is_empty() && ops.iter().any(|o| matches!(o, Op::Release(_))) {
                    match c
                        .request(&[b"SCRIPT", b"LOAD", LOCK_RELEASE.as_bytes()])
                        .await?
                    {
                        Reply::Bulk(Some(sha)) => *release_sha = sha,
                        other => bail!("SCRIPT LOAD: unexpected reply {other:?}"),
                    }
                }
                req.clear();
                for op in ops {
                    match *op {
                        Op::Set(k) => encode_into(req, &[b"SET", &key(k), value]),
                        Op::Get(k) => encode_into(req, &[b"GET", &key(k)]),
                        Op::Release(k) => encode_into(
                            req,
                            &[b"EVALSHA", release_sha, b"1", &lock_key(k), b"token"],
                        ),
                        Op::HSet(k) => encode_into(req, &[b"HSET", HASH, &field(k), value]),
                        Op::HGet(k) => encode_into(req, &[b"HGET", HASH, &field(k)]),
                    }
                }
                c.send(req).await?;
                for _ in ops {
                    out.push(match c.read().await? {
                        Reply::Error(e) => Err(e),
                        _ => Ok(()),
                    });
                }
            }
            Kv::Etcd { kv, serializable } => {
                for op in ops {
                    let r = match *op {
                        Op::Set(k) => kv.put(key(k), value, None).await.map(|_| ()),
                        Op::Get(k) => {
                            let opts = serializable.then(|| GetOptions::new().with_serializable());
                            kv.get(key(k), opts).await.map(|_| ())
                        }
                        // RunArgs::validate refuses these workloads for etcd.
                        Op::Release(_) | Op::HSet(_) | Op::HGet(_) => {
                            bail!("{op:?} has no etcd counterpart")
                        }
                    };
                    match r {
                        Ok(()) => out.push(Ok(())),
                        // A transport failure ends the connection, as a broken socket does.
                        Err(etcd_client::Error::TransportError(e)) => bail!("transport: {e}"),
                        Err(e) => out.push(Err(e.to_string())),
                    }
                }
            }
        }
        Ok(())
    }

    /// Writes `key = value`, failing on an error reply.
    pub async fn put(&mut self, key: &[u8], value: &[u8]) -> anyhow::Result<()> {
        match self {
            Kv::Resp { conn: c, .. } => {
                c.request_ok(&[b"SET", key, value]).await?;
                Ok(())
            }
            Kv::Etcd { kv, .. } => kv
                .put(key, value, None)
                .await
                .map(|_| ())
                .map_err(Into::into),
        }
    }

    /// Reads `key` (in the connection's read mode); `None` if absent.
    pub async fn get(&mut self, key: &[u8]) -> anyhow::Result<Option<Vec<u8>>> {
        match self {
            Kv::Resp { conn: c, .. } => match c.request(&[b"GET", key]).await? {
                Reply::Bulk(v) => Ok(v),
                Reply::Error(e) => bail!("GET: {e}"),
                other => bail!("GET: unexpected reply {other:?}"),
            },
            Kv::Etcd { kv, serializable } => {
                let opts = serializable.then(|| GetOptions::new().with_serializable());
                let r = kv.get(key, opts).await?;
                Ok(r.kvs().first().map(|kv| kv.value().to_vec()))
            }
        }
    }
}

/// Returns the index in `endpoints` of the current leader.
pub async fn find_leader(system: System, endpoints: &[String]) -> anyhow::Result<usize> {
    for attempt in 0..50 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        match system {
            System::Redraft | System::Redis => {
                for (i, ep) in endpoints.iter().enumerate() {
                    let Ok(mut c) = Conn::connect(ep, CONNECT_TIMEOUT).await else {
                        continue;
                    };
                    if let Ok(r) = c.request(&[b"ROLE"]).await {
                        if r.items().and_then(|v| v.first()).and_then(Reply::text)
                            == Some("master".into())
                        {
                            return Ok(i);
                        }
                    }
                }
            }
            System::Etcd => {
                for (i, ep) in endpoints.iter().enumerate() {
                    let Ok(mut c) = etcd_connect(ep).await else {
                        continue;
                    };
                    if let Ok(s) = c.status().await {
                        if s.header().map(|h| h.member_id()) == Some(s.leader()) {
                            return Ok(i);
                        }
                    }
                }
            }
        }
    }
    bail!("no leader found among {endpoints:?} in 5 s")
}
