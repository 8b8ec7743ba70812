//! The Lua 5.1 interpreter behind EVAL (`mlua`, vendored: CI builds it from source with the C
//! compiler it already has): a fresh state per run, Redis 7.0's `redis` API and conversions,
//! and the limits that keep apply bounded and deterministic.
//!
//! A run is deterministic (DeterministicApply): the libraries are base, table, string, math,
//! `cjson` and `bit` (`libs.rs`) only (no `os`, `io`, `debug`, `package`, `load*` of files), `math.random` is a generator
//! reset to the same seed for every run (as Redis 7 does), `print` is gone, globals are
//! read-only once the script starts (Redis's "Attempt to modify a readonly table"), and the
//! limits count rather than time: [`MAX_INSTRUCTIONS`] VM instructions (bytes allocated and the
//! worst case of pattern calls charged to the same budget: `fuel.rs`) and [`MAX_MEMORY`]
//! bytes of Lua heap, the same on every node. A run past either is aborted (ScriptEnd::Aborted),
//! which the store undoes entirely (AbortLeavesNothing).
//!
//! Errors read as Redis 7.0's: an error raised by the script or by `redis.call` is answered
//! `<error> script: <sha1>, on @user_script:<line>.`, a compile error `ERR Error compiling
//! script (new function): user_script:<line>: <message>`.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use mlua::{HookTriggers, Lua, LuaOptions, MultiValue, StdLib, Table, Value, VmState};

use super::calls::redis_call;
use super::fuel;
use crate::acl::CompiledUser;
use crate::commands::scripting::body::{sha1hex, shebang};
use crate::store::{ScriptCalls, ScriptEnd, ScriptRun, ScriptValue};

/// VM instructions a run may execute: tens of milliseconds of pure Lua in a release build. A
/// script runs inside apply, so this bounds how long one entry can hold the state machine.
pub const MAX_INSTRUCTIONS: u64 = 10_000_000;
/// Bytes of Lua heap a run may hold.
pub const MAX_MEMORY: usize = 64 << 20;
/// The hook runs every this many instructions.
const HOOK_EVERY: u32 = 1000;

/// Runs `run`, each `redis.call` through `calls`.
pub(super) fn run(run: &ScriptRun<'_>, calls: &mut dyn ScriptCalls) -> ScriptEnd {
    let sha = sha1hex(run.body);
    match run_lua(run, calls, &sha) {
        Ok(end) => end,
        Err(e) => ScriptEnd::Reply(ScriptValue::Error(format!("ERR {e}"))),
    }
}

fn run_lua(run: &ScriptRun<'_>, calls: &mut dyn ScriptCalls, sha: &str) -> mlua::Result<ScriptEnd> {
    let lua = Lua::new_with(
        StdLib::TABLE | StdLib::STRING | StdLib::MATH,
        LuaOptions::default(),
    )?;
    lua.set_memory_limit(MAX_MEMORY)?;
    let over_limit = Arc::new(AtomicBool::new(false));
    let executed = Rc::new(Cell::new(0u64));
    // Bytes allocated by the script (AllocationFuel, `fuel.rs`), charged to the same budget.
    let allocated = Rc::new(Cell::new(0u64));
    let spent = {
        let (executed, allocated) = (executed.clone(), allocated.clone());
        move || executed.get() + allocated.get() / fuel::BYTES_PER_INSTRUCTION
    };
    {
        let over_limit = over_limit.clone();
        let executed = executed.clone();
        let spent = spent.clone();
        let counter = move |_: &Lua, _: mlua::Debug| {
            executed.set(executed.get() + u64::from(HOOK_EVERY));
            if spent() > MAX_INSTRUCTIONS {
                over_limit.store(true, Ordering::Relaxed);
                return Err(mlua::Error::runtime(
                    "script exceeded the instruction limit",
                ));
            }
            Ok(VmState::Continue)
        };
        // Deterministic: a count of VM instructions, the same on every node.
        lua.set_hook(
            HookTriggers::new().every_nth_instruction(HOOK_EVERY),
            counter,
        );
    }
    let globals = lua.globals();
    for name in [
        "print",
        "dofile",
        "loadfile",
        "load",
        "loadstring",
        "getfenv",
        "setfenv",
        "module",
        "require",
        "collectgarbage",
        "newproxy",
        "gcinfo",
    ] {
        globals.raw_set(name, Value::Nil)?;
    }
    install_random(&lua)?;
    super::libs::install(&lua)?;
    {
        // PatternWorstCase (`fuel.rs`): a pattern call is charged its worst case first.
        let (over_limit, executed, spent) = (over_limit.clone(), executed.clone(), spent.clone());
        let charge = move |cost: u64| {
            executed.set(executed.get().saturating_add(cost));
            if spent() > MAX_INSTRUCTIONS {
                over_limit.store(true, Ordering::Relaxed);
                return Err(mlua::Error::runtime(
                    "script exceeded the instruction limit",
                ));
            }
            Ok(())
        };
        let charge: Rc<dyn Fn(u64) -> mlua::Result<()>> = Rc::new(charge);
        fuel::guard_patterns(&lua, charge.clone())?;
        fuel::guard_copies(&lua, charge)?;
    }
    // The instruction limit cannot be caught: once it is hit, every pcall/xpcall that caught
    // it raises it again, up to the top.
    let raw_xpcall: mlua::Function = globals.raw_get("xpcall")?;
    {
        let over_limit = over_limit.clone();
        let over = lua.create_function(move |_, ()| Ok(over_limit.load(Ordering::Relaxed)))?;
        lua.load(
            r#"
            local over, rawpcall, rawxpcall, error, caught, type = ...
            local function pass(ok, ...)
                if ok then return ok, ... end
                if over() then error('script exceeded the instruction limit', 0) end
                return ok, caught((...))
            end
            pcall = function(...) return pass(rawpcall(...)) end
            xpcall = function(f, h)
                if type(h) == 'function' then
                    local handler = h
                    h = function(e) return handler(caught(e)) end
                end
                return pass(rawxpcall(f, h))
            end
            "#,
        )
        .set_name("=limits")
        .call::<()>((
            over,
            globals.raw_get::<mlua::Function>("pcall")?,
            raw_xpcall.clone(),
            globals.raw_get::<mlua::Function>("error")?,
            fuel::caught_value(&lua)?,
            globals.raw_get::<mlua::Function>("type")?,
        ))?;
    }
    let keys = lua.create_sequence_from(
        run.keys
            .iter()
            .map(|k| lua.create_string(k))
            .collect::<mlua::Result<Vec<_>>>()?,
    )?;
    let argv = lua.create_sequence_from(
        run.args
            .iter()
            .map(|a| lua.create_string(a))
            .collect::<mlua::Result<Vec<_>>>()?,
    )?;
    globals.raw_set("KEYS", keys)?;
    globals.raw_set("ARGV", argv)?;

    let (chunk, no_writes) = shebang(run.body);
    let f = match lua
        .load(&chunk[..])
        .set_name("@user_script")
        .into_function()
    {
        Ok(f) => f,
        Err(mlua::Error::SyntaxError { message, .. }) => {
            return Ok(ScriptEnd::Reply(ScriptValue::Error(format!(
                "ERR Error compiling script (new function): {message}"
            ))))
        }
        Err(e) => return Err(e),
    };

    let (read_only, now_ms) = (run.read_only || no_writes, run.now_ms);
    let user = run.user.map(|u| CompiledUser::new(Bytes::new(), u.clone()));
    let user = user.as_ref();
    let calls = RefCell::new(calls);
    let end = lua.scope(|scope| {
        // `redis.call` raises an error reply from Rust, so that the script's own frame is
        // still on the stack for the error's line even after `return redis.call(...)` (a
        // tail call to a Lua wrapper would have dropped it).
        let call = scope.create_function(|lua, args: MultiValue| {
            let mut calls = calls.borrow_mut();
            let v = redis_call(lua, &mut **calls, args, read_only, now_ms, user)?;
            match &v {
                Value::Table(t) => match t.raw_get::<Value>("err")? {
                    Value::String(e) => Err(mlua::Error::external(ReplyError(e.to_string_lossy()))),
                    _ => Ok(v),
                },
                _ => Ok(v),
            }
        })?;
        let pcall = scope.create_function(|lua, args: MultiValue| {
            let mut calls = calls.borrow_mut();
            redis_call(lua, &mut **calls, args, read_only, now_ms, user)
        })?;
        let redis = redis_table(&lua, call, pcall)?;
        lua.globals().raw_set("redis", redis)?;
        seal_globals(&lua)?;
        // From here on every byte the script allocates is counted; dropped (the allocator
        // put back) when the run ends.
        let _fuel = fuel::AllocationFuel::install(&lua, allocated.clone())?;
        let handler = lua.create_function(error_handler)?;
        let out: MultiValue = raw_xpcall.call((f, handler))?;
        let mut out = out.into_iter();
        let ok = matches!(out.next(), Some(Value::Boolean(true)));
        let value = out.next().unwrap_or(Value::Nil);
        if ok {
            return Ok(ScriptEnd::Reply(to_reply(&value)));
        }
        Ok(ScriptEnd::Reply(ScriptValue::Error(error_text(
            &value, sha,
        ))))
    });
    if over_limit.load(Ordering::Relaxed) {
        return Ok(ScriptEnd::Aborted(format!(
            "ERR script aborted: it ran past the limit of {MAX_INSTRUCTIONS} instructions; \
             nothing it did was applied"
        )));
    }
    match end {
        Err(mlua::Error::MemoryError(_)) => Ok(ScriptEnd::Aborted(format!(
            "ERR script aborted: it used more than {} MiB of memory; nothing it did was applied",
            MAX_MEMORY >> 20
        ))),
        Ok(ScriptEnd::Reply(ScriptValue::Error(e))) if e.contains("not enough memory") => {
            Ok(ScriptEnd::Aborted(format!(
                "ERR script aborted: it used more than {} MiB of memory; nothing it did was \
                 applied",
                MAX_MEMORY >> 20
            )))
        }
        other => other,
    }
}

/// Builds the `redis` table: `call`/`pcall` around `raw` (which answers an error reply as a
/// `{err=...}` table), the reply helpers and the constants scripts use.
fn redis_table(lua: &Lua, call: mlua::Function, pcall: mlua::Function) -> mlua::Result<Table> {
    let redis = lua.create_table()?;
    redis.raw_set("call", call)?;
    redis.raw_set("pcall", pcall)?;
    redis.raw_set(
        "sha1hex",
        lua.create_function(|_, s: mlua::String| Ok(sha1hex(&s.as_bytes())))?,
    )?;
    redis.raw_set("log", lua.create_function(|_, _: MultiValue| Ok(()))?)?;
    redis.raw_set("set_repl", lua.create_function(|_, _: MultiValue| Ok(()))?)?;
    redis.raw_set("replicate_commands", lua.create_function(|_, ()| Ok(true))?)?;
    for (name, v) in [
        ("LOG_DEBUG", 0),
        ("LOG_VERBOSE", 1),
        ("LOG_NOTICE", 2),
        ("LOG_WARNING", 3),
        ("REPL_NONE", 0),
        ("REPL_AOF", 1),
        ("REPL_SLAVE", 2),
        ("REPL_REPLICA", 2),
        ("REPL_ALL", 3),
    ] {
        redis.raw_set(name, v)?;
    }
    lua.load(
        r#"
        local redis = ...
        redis.error_reply = function(msg)
            if type(msg) ~= 'string' then error('wrong number or type of arguments') end
            return {err = msg}
        end
        redis.status_reply = function(msg)
            if type(msg) ~= 'string' then error('wrong number or type of arguments') end
            return {ok = msg}
        end
        "#,
    )
    .set_name("=redis")
    .call::<()>(redis.clone())?;
    Ok(redis)
}

/// Redis 7's `math.random`/`math.randomseed`: Redis's `redisLrand48` (the 48-bit linear
/// congruential generator of `rand48`), reset with seed 0 before every run, so every run sees
/// the same sequence (as Redis does since scripts replicate by effects).
fn install_random(lua: &Lua) -> mlua::Result<()> {
    const MAX: f64 = i32::MAX as f64;
    let math: Table = lua.globals().raw_get("math")?;
    let state = Rc::new(Cell::new(seeded(0)));
    let next = {
        let state = state.clone();
        move || {
            let x = state.get().wrapping_mul(0x5_deec_e66d).wrapping_add(0xb) & 0xffff_ffff_ffff;
            state.set(x);
            ((x >> 17) as f64 % MAX) / MAX
        }
    };
    math.raw_set(
        "random",
        lua.create_function(move |_, args: MultiValue| {
            let r = next();
            let nums: Vec<f64> = args
                .iter()
                .filter_map(|v| match v {
                    Value::Integer(i) => Some(*i as f64),
                    Value::Number(n) => Some(*n),
                    _ => None,
                })
                .collect();
            Ok(match nums.as_slice() {
                [] => r,
                [m] => (r * m.floor()).floor() + 1.0,
                [l, u, ..] => (r * (u - l + 1.0)).floor() + l,
            })
        })?,
    )?;
    math.raw_set(
        "randomseed",
        lua.create_function(move |_, s: f64| {
            state.set(seeded(s as i64 as i32));
            Ok(())
        })?,
    )?;
    Ok(())
}

/// `redisSrand48(seed)`: the high 32 bits from the seed, the low 16 fixed.
fn seeded(seed: i32) -> u64 {
    0x330e | (u64::from(seed as u32) << 16)
}

/// Makes `_G` read-only from here on, as Redis 7 does before running a script.
fn seal_globals(lua: &Lua) -> mlua::Result<()> {
    lua.load(
        r#"
        setmetatable(_G, {
            __newindex = function() error('Attempt to modify a readonly table', 2) end,
            __index = function(_, k) error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2) end,
        })
        "#,
    )
    .set_name("=seal")
    .exec()
}

/// The `xpcall` handler (Redis 7's `__redis__err__handler`): turns any error into a table with
/// `err`, and the script's `source` and `line` where it happened.
fn error_handler(lua: &Lua, err: Value) -> mlua::Result<Table> {
    let t = match &err {
        Value::Table(t) if t.raw_get::<Value>("err").is_ok_and(|v| !v.is_nil()) => t.clone(),
        other => {
            let t = lua.create_table()?;
            let text = match other {
                Value::String(s) => format!("ERR {}", s.to_string_lossy()),
                Value::Error(e) => match reply_error(e) {
                    Some(reply) => reply,
                    None => format!("ERR {e}"),
                },
                v => format!("ERR {v:?}"),
            };
            t.raw_set("err", text)?;
            t
        }
    };
    for level in 0..8 {
        let Some(d) = lua.inspect_stack(level) else {
            break;
        };
        let source = d.source().source.map(|s| s.into_owned());
        if source.as_deref() == Some("@user_script") {
            t.raw_set("source", "@user_script")?;
            t.raw_set("line", d.curr_line())?;
            break;
        }
    }
    Ok(t)
}

/// An error reply raised by `redis.call`: its text is the reply's, code first.
#[derive(Debug)]
struct ReplyError(String);

impl std::fmt::Display for ReplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ReplyError {}

/// The [`ReplyError`] inside an error raised from Rust, if it is one.
fn reply_error(e: &mlua::Error) -> Option<String> {
    match e {
        mlua::Error::CallbackError { cause, .. } => reply_error(cause),
        mlua::Error::ExternalError(inner) => match inner.downcast_ref::<ReplyError>() {
            Some(r) => Some(r.0.clone()),
            None => fuel::lib_error_text(e).map(|t| format!("ERR {t}")),
        },
        _ => None,
    }
}

/// The text of an error that ended a script, as Redis 7.0 writes it.
fn error_text(value: &Value, sha: &str) -> String {
    let Value::Table(t) = value else {
        return format!("ERR {value:?} script: {sha}");
    };
    let err: String = t
        .raw_get::<mlua::String>("err")
        .map(|s| s.to_string_lossy())
        .unwrap_or_else(|_| "ERR unknown error".into());
    let source: Option<String> = t.raw_get("source").ok();
    let line: Option<i64> = t.raw_get("line").ok();
    match (source, line) {
        (Some(s), Some(l)) => format!("{err} script: {sha}, on {s}:{l}."),
        _ => format!("{err} script: {sha}"),
    }
}

/// Redis's Lua-to-RESP conversion: numbers truncate to integers, `true` is 1, `false` and
/// `nil` are nil, a table with `err` or `ok` is an error or status reply, any other table an
/// array up to its first nil.
pub(super) fn to_reply(v: &Value) -> ScriptValue {
    match v {
        Value::Nil | Value::Boolean(false) => ScriptValue::Nil,
        Value::Boolean(true) => ScriptValue::Integer(1),
        Value::Integer(i) => ScriptValue::Integer(*i),
        Value::Number(n) => ScriptValue::Integer(if n.is_finite() { *n as i64 } else { 0 }),
        Value::String(s) => ScriptValue::Bulk(Bytes::copy_from_slice(&s.as_bytes())),
        Value::Table(t) => {
            if let Ok(Value::String(e)) = t.raw_get::<Value>("err") {
                return ScriptValue::Error(e.to_string_lossy());
            }
            if let Ok(Value::String(s)) = t.raw_get::<Value>("ok") {
                return ScriptValue::Status(s.to_string_lossy());
            }
            let mut items = Vec::new();
            for i in 1.. {
                match t.raw_get::<Value>(i) {
                    Ok(Value::Nil) | Err(_) => break,
                    Ok(v) => items.push(to_reply(&v)),
                }
            }
            ScriptValue::Array(items)
        }
        _ => ScriptValue::Nil,
    }
}
