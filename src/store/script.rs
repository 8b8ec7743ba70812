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
//!   remembered by the host, on every node, so `EVALSHA` finds it on any node; the cache is
//!   process memory, not part of snapshots (as Redis's is not part of its RDB).

use std::sync::OnceLock;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::notify::{self, Notice};
use super::{Changes, Op, Response, Store, StoreError};

/// A script's reply, in RESP2's terms (Redis converts a script's result to RESP2 types).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ScriptValue {
    Nil,
    Integer(i64),
    Bulk(Bytes),
    Status(String),
    Error(String),
    Array(Vec<ScriptValue>),
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
            Op::Txn { .. } | Op::Batch(_) | Op::Script { .. } | Op::ScriptLoad { .. }
        ) {
            return Response::Error(StoreError::Script(
                "ERR This Redis command is not allowed from script".into(),
            ));
        }
        let before = self.changes.len();
        match self.store.apply_in(self.changes, op) {
            Ok(response) => {
                let events = &self.changes.events[before..];
                notify::notices(op, &response, events, self.notices);
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
            ScriptEnd::Reply(value) => Ok(Response::Script {
                value,
                revision: self.revision_with(c),
            }),
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
        Ok(Response::Noop {
            revision: self.revision,
        })
    }

    /// SCRIPT FLUSH's entry: forgets every script on this node. Changes no key.
    pub(super) fn script_flush(&mut self) -> Result<Response, StoreError> {
        host()?.flush();
        Ok(Response::Noop {
            revision: self.revision,
        })
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
