//! Scripts at apply (EVAL, EVALSHA): the seam between the store and the Lua engine, and how a
//! script's calls change the keyspace.
//!
//! A script that may write is one Raft entry ([`Op::Script`]: the body, KEYS, ARGV and the
//! proposing leader's clock), run at apply on every node by the [`ScriptHost`] the process
//! installed at start-up (`script/`, Lua 5.1). Each `redis.call` the script makes comes back
//! here as one [`Op`] and is applied in the script's [`Changes`], so the whole script is one
//! revision with one `sub` per change and one atomic batch of events and notifications, as an
//! EXEC. The store itself still runs no interpreter and reads no clock: the host is handed in,
//! and it must be deterministic (DeterministicApply): the same body and inputs give the same
//! calls and the same reply on every node (no wall clock but the entry's, no randomness but a
//! seed fixed by the entry, instruction and memory limits counted, not timed).
//!
//! - **ScriptAtomic.** A script's changes share one main revision; nothing else is applied
//!   between two of its calls.
//! - **AbortLeavesNothing.** A script the host aborts (instruction or memory limit) leaves the
//!   store exactly as before it ran: the store is cloned before (O(1), CheapClone) and put back.
//!   A script that stops on an error it raised or that a `redis.call` raised keeps the changes
//!   made before it, as in Redis.
//! - **ScriptsRemembered.** Every body applied ([`Op::Script`], [`Op::ScriptLoad`]) is
//!   remembered by the host, on every node, so `EVALSHA` finds it on any node.
//! - **ScriptsReplicated.** The bodies applied are also cluster state ([`Scripts`], in the
//!   store and so in snapshots and backups; `SCRIPT FLUSH` empties it, at apply), and a node
//!   that loads a snapshot (a restart, a catch-up) refills its host's cache from it, so
//!   `EVALSHA` of a script loaded before the snapshot works on every node after a restart
//!   (where Redis, whose RDB keeps no scripts, answers NOSCRIPT). The set is bounded
//!   ([`MAX_SCRIPTS`]); past it the body with the smallest SHA-1 goes, the same one on every
//!   node.
//! - **ScriptsBoundedInline.** Inside [`bounded_inline`] (Raft's thread applying an entry), the
//!   calls of every script in the entry together ([`SCRIPT_CALL_WEIGHT`] each, plus the keys,
//!   fields or revisions each visits, `weight.rs`) may not pass the bound: the call that would
//!   pass it fails, and so does every call after it, and the caller learns that the run
//!   overran. The caller then puts back the state it saved before the entry and applies it
//!   again where there is no bound (off Raft's thread, LongAppliesOffRaft): the bounded run's
//!   result is never kept, so every node ends with the state the unbounded run gives
//!   (DeterministicApply).

use std::cell::Cell;
use std::sync::OnceLock;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};

use super::notify::{self, Notice};
use super::weight::reply_weight;
use super::{Changes, Op, Response, Store, StoreError};

/// The most script bodies the cluster keeps (ScriptsReplicated); past it, an old one is
/// forgotten (its EVALSHA then answers NOSCRIPT, which clients handle by sending the body).
pub const MAX_SCRIPTS: usize = 10_000;

/// Redis's lowercase hex SHA-1 of a script body (its name for EVALSHA).
pub fn sha1hex(body: &[u8]) -> String {
    let digest = Sha1::digest(body);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The script bodies applied, by SHA-1 (ScriptsReplicated). A persistent map: the store's
/// O(1) clone (CheapClone) stays O(1).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scripts(
    #[serde(deserialize_with = "super::cautious::ord_map")] imbl::OrdMap<String, Bytes>,
);

impl Scripts {
    /// Keeps `body`; past [`MAX_SCRIPTS`], forgets the body with the smallest SHA-1.
    fn insert(&mut self, body: &[u8]) {
        let sha = sha1hex(body);
        if self.0.contains_key(&sha) {
            return;
        }
        self.0.insert(sha, Bytes::copy_from_slice(body));
        while self.0.len() > MAX_SCRIPTS {
            let Some(first) = self.0.keys().next().cloned() else {
                break;
            };
            self.0.remove(&first);
        }
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The body named `sha`, if kept.
    pub fn get(&self, sha: &str) -> Option<&Bytes> {
        self.0.get(sha)
    }
}

/// A script's reply, in RESP2's terms (Redis converts a script's result to RESP2 types).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScriptValue {
    Nil,
    Integer(i64),
    Bulk(Bytes),
    Status(String),
    Error(String),
    Array(#[serde(deserialize_with = "super::decode_depth::nested")] Vec<ScriptValue>),
}

/// One run of a script.
pub struct ScriptRun<'a> {
    pub body: &'a [u8],
    pub keys: &'a [Bytes],
    pub args: &'a [Bytes],
    /// The proposing leader's clock (unix ms), the script's only time; 0 for a read-only run.
    pub now_ms: i64,
    /// Refuse writes (EVAL_RO, EVALSHA_RO, `no-writes` scripts).
    pub read_only: bool,
    /// The ACL user each call is checked against (ScriptCallsChecked); `None`: no check (the
    /// `default` user of a node's `requirepass`, which may run everything).
    pub user: Option<&'a super::AclUser>,
}

/// How a script ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScriptEnd {
    /// Its reply (an error reply included).
    Reply(ScriptValue),
    /// Stopped by a limit: every change it made is undone (AbortLeavesNothing).
    Aborted(String),
}

/// What a script's `redis.call` reaches: one op at a time, in the script's changes.
pub trait ScriptCalls {
    /// Applies `op` (a write, or [`Op::Read`]) and returns its response.
    fn call(&mut self, op: &Op) -> Response;
}

/// The interpreter, installed once per process ([`install_host`]).
pub trait ScriptHost: Send + Sync {
    /// Runs `run`, sending each call to `calls`.
    fn run(&self, run: &ScriptRun<'_>, calls: &mut dyn ScriptCalls) -> ScriptEnd;
    /// Remembers a body applied on this node (ScriptsRemembered).
    fn remember(&self, body: &Bytes);
    /// Forgets every remembered body (SCRIPT FLUSH).
    fn flush(&self);
}

static HOST: OnceLock<Box<dyn ScriptHost>> = OnceLock::new();

/// Installs the process's script host; a second call is ignored (one interpreter per process).
pub fn install_host(host: Box<dyn ScriptHost>) {
    let _ = HOST.set(host);
}

fn host() -> Result<&'static dyn ScriptHost, StoreError> {
    HOST.get()
        .map(|h| h.as_ref())
        .ok_or_else(|| StoreError::Script("ERR scripting is not available on this node".into()))
}

/// What one `redis.call` weighs besides what its op visits (ScriptsBoundedInline): converting
/// its arguments and reply, looking up, checking and planning the command. A call costs about
/// ten times a key's change: 50 µs in a debug build, where a bound of 10,000 calls held Raft's
/// thread half a second and cost an election in `tests/cluster/long_commands.rs`.
pub const SCRIPT_CALL_WEIGHT: usize = 10;

/// Where [`bounded_inline`] keeps what is left of its bound, and whether a run went past it.
#[derive(Clone, Copy)]
struct Bound {
    left: usize,
    overran: bool,
}

thread_local! {
    /// This thread's bound (ScriptsBoundedInline); `None` outside [`bounded_inline`].
    static BOUND: Cell<Option<Bound>> = const { Cell::new(None) };
}

/// Runs `f` with the scripts it applies on this thread bounded to `limit` weight in all
/// (ScriptsBoundedInline), and says whether one of them overran. When it did, the state `f`
/// left is not a state any node may keep: the caller puts back what it saved.
pub fn bounded_inline<R>(limit: usize, f: impl FnOnce() -> R) -> (R, bool) {
    /// Clears the bound however `f` ends.
    struct Clear;
    impl Drop for Clear {
        fn drop(&mut self) {
            BOUND.with(|b| b.set(None));
        }
    }
    BOUND.with(|b| {
        b.set(Some(Bound {
            left: limit,
            overran: false,
        }))
    });
    let _clear = Clear;
    let result = f();
    let overran = BOUND.with(|b| b.get().is_some_and(|b| b.overran));
    (result, overran)
}

/// Charges `weight` to this thread's bound: `false` once the bound is passed (and for every
/// charge after), always `true` without a bound.
fn charge(weight: usize) -> bool {
    BOUND.with(|cell| {
        let Some(mut bound) = cell.get() else {
            return true;
        };
        if !bound.overran {
            match bound.left.checked_sub(weight) {
                Some(left) => bound.left = left,
                None => bound.overran = true,
            }
            cell.set(Some(bound));
        }
        !bound.overran
    })
}

/// The calls of a script that may write: each op applied in the script's changes.
struct Applying<'a> {
    store: &'a mut Store,
    changes: &'a mut Changes,
    notices: &'a mut Vec<Notice>,
}

impl ScriptCalls for Applying<'_> {
    fn call(&mut self, op: &Op) -> Response {
        if matches!(
            op,
            Op::Txn { .. }
                | Op::Batch(_)
                | Op::Script { .. }
                | Op::ScriptLoad { .. }
                | Op::AclSetUser { .. }
                | Op::AclDelUser { .. }
                | Op::AsUser { .. }
        ) {
            return Response::Error(StoreError::Script(
                "ERR This Redis command is not allowed from script".into(),
            ));
        }
        // ScriptsBoundedInline: this run's result will be thrown away; stop doing work.
        if !charge(SCRIPT_CALL_WEIGHT.saturating_add(self.store.weight(op))) {
            return Response::Error(StoreError::Script(
                "ERR script moved off the raft thread".into(),
            ));
        }
        let before = self.changes.len();
        match self.store.apply_in(self.changes, op) {
            Ok(response) => {
                let events = &self.changes.events[before..];
                notify::notices(op, &response, events, self.notices);
                charge(reply_weight(&response));
                response
            }
            Err(e) => Response::Error(e),
        }
    }
}

/// The calls of a read-only script: reads only.
struct Reading<'a> {
    store: &'a Store,
}

impl ScriptCalls for Reading<'_> {
    fn call(&mut self, op: &Op) -> Response {
        match op {
            Op::Read(read) => self.store.read(read),
            _ => Response::Error(StoreError::Script(
                "ERR Write commands are not allowed from read-only scripts.".into(),
            )),
        }
    }
}

impl Store {
    /// Runs a script at apply, in `c` (ScriptAtomic), its notices into `notices`.
    pub(super) fn script_in(
        &mut self,
        c: &mut Changes,
        run: &ScriptRun<'_>,
        notices: &mut Vec<Notice>,
    ) -> Result<Response, StoreError> {
        let host = host()?;
        host.remember(&Bytes::copy_from_slice(run.body));
        // AbortLeavesNothing: O(1) clones of the persistent maps.
        let saved = self.clone();
        let (events_before, notices_before) = (c.len(), notices.len());
        let end = host.run(
            run,
            &mut Applying {
                store: self,
                changes: c,
                notices,
            },
        );
        match end {
            ScriptEnd::Reply(value) => {
                self.scripts.insert(run.body);
                Ok(Response::Script {
                    value,
                    revision: self.revision_with(c),
                })
            }
            // The store exactly as before, its script set included (the host remembers the
            // body all the same).
            ScriptEnd::Aborted(why) => {
                *self = saved;
                c.events.truncate(events_before);
                notices.truncate(notices_before);
                Err(StoreError::Script(why))
            }
        }
    }

    /// SCRIPT LOAD's entry: remembers `body` on this node. Changes no key.
    pub(super) fn script_load(&mut self, body: &Bytes) -> Result<Response, StoreError> {
        host()?.remember(body);
        self.scripts.insert(body);
        Ok(Response::Noop {
            revision: self.revision,
        })
    }

    /// SCRIPT FLUSH's entry: forgets every script on this node. Changes no key.
    pub(super) fn script_flush(&mut self) -> Result<Response, StoreError> {
        host()?.flush();
        self.scripts = Scripts::default();
        Ok(Response::Noop {
            revision: self.revision,
        })
    }

    /// The script bodies the cluster keeps (ScriptsReplicated).
    pub fn scripts(&self) -> &Scripts {
        &self.scripts
    }

    /// Makes the host's cache this store's scripts (ScriptsReplicated): after a snapshot
    /// replaced the store, the bodies forgotten by a `SCRIPT FLUSH` it includes go, the ones
    /// loaded before it come back. Without a host (no scripting), nothing to do.
    pub fn reload_script_cache(&self) {
        if let Ok(host) = host() {
            host.flush();
            for body in self.scripts.0.values() {
                host.remember(body);
            }
        }
    }

    /// Runs a read-only script (EVAL_RO, EVALSHA_RO, `no-writes`) against the current state:
    /// its reply, or the error that stopped it. Changes nothing.
    pub fn run_script_read_only(&self, run: &ScriptRun<'_>) -> Result<ScriptValue, StoreError> {
        match host()?.run(run, &mut Reading { store: self }) {
            ScriptEnd::Reply(value) => Ok(value),
            ScriptEnd::Aborted(why) => Err(StoreError::Script(why)),
        }
    }
}
