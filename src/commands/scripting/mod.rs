//! Scripting: `EVAL EVALSHA EVAL_RO EVALSHA_RO SCRIPT LOAD|EXISTS|FLUSH|KILL|HELP`, Redis 7.0's
//! replies, with the interpreter in `engine.rs` and `redis.call` in `calls.rs`.
//!
//! - EVAL and EVALSHA are writes: one `store::Op::Script` entry carrying the body, KEYS and
//!   ARGV, run at apply on every node (ScriptAtomic, AbortLeavesNothing: `store/script.rs`).
//!   They batch, forward and queue in MULTI as every write does. EVALSHA looks the body up on
//!   the node the client talks to and proposes the body, so any node can run it.
//! - EVAL_RO, EVALSHA_RO and scripts whose first line is `#!lua flags=no-writes` refuse writes;
//!   the `_RO` commands run on the node the client talks to, after the connection's read gate,
//!   against an O(1) copy of the store, off the async runtime, and refuse a script whose
//!   shebang lacks `no-writes` before running it.
//! - A shebang line Redis refuses (`shebang.rs`) is refused here before the script is
//!   proposed, cached or run (ShebangBeforeProposing); the interpreter checks it again from the
//!   entry's bytes, so an entry an older build proposed is refused alike on every node.
//! - The script cache (ScriptsRemembered) holds every body applied on this node (by EVAL,
//!   EVALSHA or SCRIPT LOAD, which is itself an entry so every node learns it) and every body
//!   an `_RO` command ran here, and the node a client sends EVAL or SCRIPT LOAD to knows the
//!   body as soon as it answers (a follower answers before it applied the entry itself);
//!   SCRIPT FLUSH is an entry too. It lives in process memory, at most [`MAX_CACHED_SCRIPTS`]
//!   bodies, mirroring the store's script set (ScriptsReplicated, `store/script.rs`), which
//!   is in snapshots: a node restarted or caught up from a snapshot refills it from there, so
//!   EVALSHA of a script loaded before still works (Redis answers `NOSCRIPT` after a restart).
//!   A body only an `_RO` command ran is this node's alone and is forgotten then.
//!
//! # Format
//!
//! ```text
//! EVAL script numkeys [key ...] [arg ...]        → the script's reply
//! EVALSHA sha1 numkeys [key ...] [arg ...]       → the script's reply | -NOSCRIPT ...
//! EVAL_RO / EVALSHA_RO (same arguments)          → the script's reply (writes refused)
//! SCRIPT LOAD script                             → sha1 (bulk)
//! SCRIPT EXISTS sha1 [sha1 ...]                  → array of 1/0
//! SCRIPT FLUSH [ASYNC|SYNC]                      → +OK
//! SCRIPT KILL                                    → -NOTBUSY (scripts are bounded, see engine.rs)
//! ```

pub(super) mod body;
pub(super) mod shebang;

use super::reply::{help_reply, script_frame, WriteReply};
use super::{read_gate, write, CommandError, CommandResult, Plan, Session};
use crate::context::ServerContext;
use crate::protocol::{Frame, Parse};
use crate::store::{Op, ScriptRun};
use bytes::Bytes;

use body::{compile, forget_all, lookup, remember, sha1hex, shebang};

/// EVAL's and EVALSHA's `numkeys key... arg...`, checked as Redis's `evalGenericCommand`.
fn keys_and_args(parse: &mut Parse) -> Result<(Vec<Bytes>, Vec<Bytes>), CommandError> {
    let numkeys = parse.next_i64()?;
    let left = parse.remaining() as i64;
    if numkeys > left {
        return Err(CommandError::Reply(
            "ERR Number of keys can't be greater than number of args".into(),
        ));
    }
    if numkeys < 0 {
        return Err(CommandError::Reply(
            "ERR Number of keys can't be negative".into(),
        ));
    }
    let mut keys = Vec::with_capacity(numkeys as usize);
    for _ in 0..numkeys {
        keys.push(parse.next_bytes()?);
    }
    let mut args = Vec::with_capacity(parse.remaining());
    while parse.remaining() > 0 {
        args.push(parse.next_bytes()?);
    }
    Ok((keys, args))
}

fn noscript() -> CommandError {
    CommandError::Reply("NOSCRIPT No matching script. Please use EVAL.".into())
}

/// EVALSHA's SHA-1, checked for length as Redis's `evalShaCommand` does before anything else.
fn sha_of(parse: &mut Parse) -> Result<Bytes, CommandError> {
    let sha = parse.next_bytes()?;
    if sha.len() != 40 {
        return Err(noscript());
    }
    Ok(sha)
}

/// The body `sha` names, from this node's cache (any case, as Redis matches it).
fn body_of(sha: &[u8]) -> Result<Bytes, CommandError> {
    let sha = std::str::from_utf8(sha).map_err(|_| noscript())?;
    lookup(sha).ok_or_else(noscript)
}

/// A script's body, KEYS and ARGV in Redis's order of checks: EVALSHA's SHA-1 length, the
/// key count, the cache, then the shebang line and, for a body this node has not cached, the
/// compiler (ShebangBeforeProposing: a script Redis refuses before running it is refused here,
/// never proposed nor cached; the interpreter checks both again at apply).
fn script_call(
    parse: &mut Parse,
    by_sha: bool,
) -> Result<(Bytes, Vec<Bytes>, Vec<Bytes>), CommandError> {
    let named = if by_sha {
        sha_of(parse)?
    } else {
        parse.next_bytes()?
    };
    let (keys, args) = keys_and_args(parse)?;
    let body = if by_sha { body_of(&named)? } else { named };
    if by_sha || lookup(&sha1hex(&body)).is_some() {
        shebang(&body).map_err(CommandError::Reply)?;
    } else {
        compile(&body).map_err(CommandError::Reply)?;
    }
    Ok((body, keys, args))
}

fn plan_script(parse: &mut Parse, by_sha: bool) -> Result<Plan, CommandError> {
    let (body, keys, args) = script_call(parse, by_sha)?;
    if !by_sha {
        // Known here at once: a follower answers before it applied the entry itself.
        remember(&body);
    }
    Ok(Plan {
        op: Op::Script {
            body,
            keys,
            args,
            now_ms: 0,
        },
        reply: WriteReply::Script,
    })
}

/// Plans EVAL: one entry run at apply on every node.
pub(super) fn eval(parse: &mut Parse) -> Result<Plan, CommandError> {
    plan_script(parse, false)
}

/// Plans EVALSHA: the cached body, proposed as EVAL's.
pub(super) fn evalsha(parse: &mut Parse) -> Result<Plan, CommandError> {
    plan_script(parse, true)
}

/// EVAL_RO and EVALSHA_RO: through the read gate, then on this node, writes refused.
pub(super) async fn eval_ro(
    ctx: &ServerContext,
    session: &mut Session,
    parse: &mut Parse,
    by_sha: bool,
) -> CommandResult {
    {
        let (body, keys, args) = script_call(parse, by_sha)?;
        remember(&body);
        read_gate(ctx, session).await?;
        // ScriptCallsChecked: the calls are checked against the session's user as it is now.
        let user = ctx
            .acl
            .user(&session.user)
            .filter(|u| !u.unrestricted())
            .map(|u| u.user.clone());
        // An O(1) copy (CheapClone): the script runs without holding the state machine.
        let store = ctx.node.read_store(Clone::clone);
        let value = tokio::task::spawn_blocking(move || {
            store.run_script_read_only(&ScriptRun {
                body: &body,
                keys: &keys,
                args: &args,
                now_ms: crate::raft::unix_ms(),
                read_only: true,
                user: user.as_ref(),
            })
        })
        .await
        .map_err(|e| CommandError::Reply(format!("ERR script task failed: {e}")))?
        .map_err(|e| CommandError::Reply(e.to_string()))?;
        script_frame(value)
    }
}

/// SCRIPT LOAD, EXISTS, FLUSH, KILL, HELP.
pub(super) async fn script(
    ctx: &ServerContext,
    session: &mut Session,
    parse: &mut Parse,
) -> CommandResult {
    {
        let sub = parse.next_string()?.to_ascii_lowercase();
        match sub.as_str() {
            "load" => {
                let body = parse.next_bytes()?;
                if let Err(e) = compile(&body) {
                    return Err(CommandError::Reply(e));
                }
                let sha = sha1hex(&body);
                let plan = Plan {
                    op: Op::ScriptLoad { body: body.clone() },
                    reply: WriteReply::Script,
                };
                write(ctx, session, plan).await?;
                // A follower answers before it applied the entry: its EVALSHA must find the
                // body right after this reply.
                remember(&body);
                Ok(Frame::Bulk(Bytes::from(sha)))
            }
            "exists" => {
                let mut out = Vec::with_capacity(parse.remaining());
                while parse.remaining() > 0 {
                    let sha = parse.next_bytes()?;
                    let known = std::str::from_utf8(&sha)
                        .ok()
                        .is_some_and(|s| lookup(s).is_some());
                    out.push(Frame::Integer(i64::from(known)));
                }
                Ok(Frame::Array(out))
            }
            "flush" => {
                match parse.next_string() {
                    Err(_) => {}
                    Ok(mode)
                        if mode.eq_ignore_ascii_case("sync")
                            || mode.eq_ignore_ascii_case("async") => {}
                    Ok(_) => {
                        return Err(CommandError::Reply(
                            "ERR SCRIPT FLUSH only support SYNC|ASYNC option".into(),
                        ))
                    }
                }
                if parse.remaining() > 0 {
                    return Err(CommandError::Reply(
                        "ERR SCRIPT FLUSH only support SYNC|ASYNC option".into(),
                    ));
                }
                let plan = Plan {
                    op: Op::ScriptFlush,
                    reply: WriteReply::Script,
                };
                let done = write(ctx, session, plan).await?;
                // As for LOAD: gone here as soon as the reply says so.
                forget_all();
                Ok(done)
            }
            "kill" => Err(CommandError::Reply(
                "NOTBUSY No scripts in execution right now.".into(),
            )),
            "help" => Ok(help_reply(
                "SCRIPT",
                &[
                    "DEBUG (YES|SYNC|NO)",
                    "    Set the debug mode for subsequent scripts executed.",
                    "EXISTS <sha1> [<sha1> ...]",
                    "    Return information about the existence of the scripts in the script cache.",
                    "FLUSH [ASYNC|SYNC]",
                    "    Flush the Lua scripts cache. Very dangerous on replicas.",
                    "    When called without the optional mode argument, the behavior is determined by the",
                    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
                    "    * ASYNC: Asynchronously flush the scripts cache.",
                    "    * SYNC: Synchronously flush the scripts cache.",
                    "KILL",
                    "    Kill the currently executing Lua script.",
                    "LOAD <script>",
                    "    Load a script into the scripts cache without executing it.",
                ],
            )),
            other => Err(CommandError::Reply(format!(
                "ERR unknown subcommand '{other}'. Try SCRIPT HELP."
            ))),
        }
    }
}
