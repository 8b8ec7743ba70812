//! `redis.call` and `redis.pcall` inside a script: Redis's argument rules, the command's checks
//! (unknown, arity, not allowed from scripts, writes in read-only scripts), then the same
//! planners the dispatcher uses (`route.rs`, `reads.rs`), the op applied through the store's
//! [`ScriptCalls`], and the reply converted to Lua as Redis does (RESP2 types).
//!
//! Only commands that plan to one store op run inside scripts (the keyspace's reads and
//! writes); connection, server, pub/sub, stream and cluster commands answer Redis's "This Redis
//! command is not allowed from script", except PING and ECHO. So every call is deterministic.

use bytes::Bytes;
use mlua::{Lua, MultiValue, Value};

use crate::acl::{check_command, CompiledUser};
use crate::commands::route::{self, Route};
use crate::commands::table::{self, Lookup};
use crate::commands::{connection, reads};
use crate::protocol::{Frame, Parse};
use crate::store::{Op, ScriptCalls};

/// One `redis.call`/`redis.pcall`: the reply as a Lua value, an error reply as `{err=...}`
/// (which `redis.call` raises and `redis.pcall` returns).
pub(super) fn redis_call(
    lua: &Lua,
    calls: &mut dyn ScriptCalls,
    args: MultiValue,
    read_only: bool,
    now_ms: i64,
    user: Option<&CompiledUser>,
) -> mlua::Result<Value> {
    match call(calls, args, read_only, now_ms, user) {
        Ok(frame) => to_lua(lua, frame),
        Err(text) => err_table(lua, &text),
    }
}

fn call(
    calls: &mut dyn ScriptCalls,
    args: MultiValue,
    read_only: bool,
    now_ms: i64,
    user: Option<&CompiledUser>,
) -> Result<Frame, String> {
    if args.is_empty() {
        return Err("ERR Please specify at least one argument for this redis lib call".into());
    }
    let mut argv = Vec::with_capacity(args.len());
    for a in args {
        argv.push(match a {
            Value::String(s) => Bytes::copy_from_slice(&s.as_bytes()),
            // mlua hands integral numbers over as integers; past 17 digits `%.17g` rounds.
            Value::Integer(i) if i.unsigned_abs() < 100_000_000_000_000_000 => {
                Bytes::from(i.to_string())
            }
            Value::Integer(i) => Bytes::from(super::libs::call_argument_text(i as f64)),
            Value::Number(n) => Bytes::from(super::libs::call_argument_text(n)),
            _ => {
                return Err(
                    "ERR Lua redis lib command arguments must be strings or integers".into(),
                )
            }
        });
    }
    let name = String::from_utf8_lossy(&argv[0]).to_ascii_lowercase();
    let (spec, id) = match table::lookup(&name, argv.get(1).map(|a| &a[..])) {
        Lookup::Found(spec, id) => (spec, id),
        _ => return Err("ERR Unknown Redis command called from script".into()),
    };
    let argc = argv.len() as i64;
    if (spec.arity > 0 && spec.arity != argc) || argc < -spec.arity {
        return Err("ERR Wrong number of args calling Redis command from script".into());
    }
    if spec.has_flag("noscript") {
        return Err("ERR This Redis command is not allowed from script".into());
    }
    // ScriptCallsChecked (`store/acl.rs`): Redis's `scriptVerifyACL`.
    if let Some(user) = user {
        if let Err(denied) = check_command(user, spec, id, &argv) {
            return Err(format!(
                "ERR The user executing the script {}",
                denied.script_reason()
            ));
        }
    }
    if read_only && spec.has_flag("write") {
        return Err("ERR Write commands are not allowed from read-only scripts.".into());
    }
    // A script that may write runs on every node: a random answer would differ between them.
    if !read_only && name == "hrandfield" {
        return Err("ERR This Redis command is not allowed from script".into());
    }
    let mut parse = Parse::new(argv);
    let name = parse.command_name();
    let text = |e: crate::commands::CommandError| e.to_string();
    match route::route(&name) {
        Some(Route::Write(planner)) => {
            let mut plan = planner(&mut parse).map_err(text)?;
            // Relative deadlines (PEXPIRE, SET EX) count from the entry's clock, as the
            // leader stamps a write it proposes.
            plan.op.stamp(now_ms);
            let response = calls.call(&plan.op);
            plan.reply.frame(response).map_err(text)
        }
        Some(Route::Read(shape)) => {
            let plan = reads::plan(shape, &mut parse).map_err(text)?;
            let response = calls.call(&Op::Read(plan.op));
            plan.reply.frame(response, now_ms).map_err(text)
        }
        // As outside a script: PING takes at most one message.
        _ if name == "ping" => connection::ping(&mut parse).map_err(text),
        _ if name == "echo" => connection::echo(&mut parse).map_err(text),
        _ => Err("ERR This Redis command is not allowed from script".into()),
    }
}

fn err_table(lua: &Lua, text: &str) -> mlua::Result<Value> {
    let t = lua.create_table()?;
    t.raw_set("err", text)?;
    Ok(Value::Table(t))
}

/// Redis's RESP-to-Lua conversion (RESP2): integers to numbers, bulk strings to strings, nil
/// to `false`, a status to `{ok=...}`, an error to `{err=...}`, arrays to tables.
fn to_lua(lua: &Lua, frame: Frame) -> mlua::Result<Value> {
    Ok(match frame {
        Frame::Integer(i) => Value::Number(i as f64),
        Frame::Bulk(b) => Value::String(lua.create_string(&b)?),
        Frame::Verbatim { text, .. } => Value::String(lua.create_string(&text)?),
        Frame::BigNumber(s) => Value::String(lua.create_string(&s)?),
        Frame::Double(d) => Value::String(lua.create_string(d.to_string())?),
        Frame::Null | Frame::NullArray => Value::Boolean(false),
        Frame::Boolean(b) => Value::Number(if b { 1.0 } else { 0.0 }),
        Frame::Simple(s) => {
            let t = lua.create_table()?;
            t.raw_set("ok", s)?;
            Value::Table(t)
        }
        Frame::Error(e) => return err_table(lua, &e),
        Frame::Array(items) | Frame::Set(items) | Frame::Push(items) => {
            let t = lua.create_table()?;
            for (i, item) in items.into_iter().enumerate() {
                t.raw_set(i + 1, to_lua(lua, item)?)?;
            }
            Value::Table(t)
        }
        Frame::Map(pairs) | Frame::Pairs(pairs) => {
            let t = lua.create_table()?;
            for (i, (k, v)) in pairs.into_iter().enumerate() {
                t.raw_set(2 * i + 1, to_lua(lua, k)?)?;
                t.raw_set(2 * i + 2, to_lua(lua, v)?)?;
            }
            Value::Table(t)
        }
    })
}
