//! The Lua 5.1 interpreter behind EVAL (`mlua`, vendored and patched: `vendor/lua-src`): a run
//! of a script on this thread's long-lived interpreter (`interpreter.rs`), Redis 7.0's `redis`
//! API and conversions, and the limits that keep apply bounded and deterministic.
//!
//! A run is deterministic (DeterministicApply): the libraries are base, table, string, math,
//! `cjson` and `bit` (`libs.rs`) only (no `os`, `io`, `debug`, `package`, `load*` of files),
//! `math.random` is a generator reset to the same seed for every run (as Redis 7 does),
//! `print` is gone, the globals and libraries are read-only (Redis's "Attempt to modify a
//! readonly table"), and the limits count rather than time: [`MAX_INSTRUCTIONS`] VM
//! instructions (bytes allocated and the worst case of pattern calls charged to the same
//! budget: `fuel.rs`) and [`MAX_MEMORY`] bytes allocated, the same on every node. A run past
//! either is aborted (ScriptEnd::Aborted), which the store undoes entirely
//! (AbortLeavesNothing).
//!
//! - **ReusedStateIsClean.** A run on an interpreter that has run thousands of scripts, with a
//!   full function cache, ends exactly as on one built a moment ago (a restarted node): the
//!   reply, the calls, and whether and why it is aborted are a function of (body, KEYS, ARGV,
//!   keyspace) only. What a script can reach is reset or read-only (`interpreter.rs`). The
//!   limit decisions read no quantity that depends on the interpreter's history:
//!   - instructions: the hook's countdown restarts each run, and a cached function is the
//!     same bytecode as a fresh compile;
//!   - compiling is charged to no run (a cache hit and a miss cost the same); it is bounded on
//!     its own by [`MAX_MEMORY`] charged bytes, a function of the body;
//!   - memory: the live heap of a reused interpreter depends on what ran before (cached
//!     functions, garbage not yet collected, Lua interning a string the script makes when an
//!     equal one is still alive, the string table and the concatenation buffer already
//!     grown), so it is not what is bounded. The bound is the bytes the run *asks for*,
//!     counted by Lua itself (`luaM_charge`, `vendor/lua-src/redraft.patch`): every string
//!     the script makes is charged its length whether it was interned already or not;
//!     tables, closures and upvalues what they allocate; never Lua's own bookkeeping (string
//!     table, buffers, stacks) or mlua's userdata, whose size depends on history. Past
//!     [`MAX_MEMORY`] charged bytes the allocation fails at the same point on every node;
//!   - the collector is stopped during runs (and collects between runs once garbage passes a
//!     threshold): no weak table can see when it ran, and the run's heap is at most what it
//!     was charged plus that bookkeeping (the string table and the concatenation buffer grow
//!     in proportion to the strings charged, stacks are bounded by Lua's call-depth limit,
//!     mlua makes one error object per error and the error's message is charged). The heap
//!     cap mlua enforces stays, at 1 GiB, as a safety net that the charged limit reaches
//!     first;
//!   - a run that is aborted, or that fails inside mlua, drops the interpreter: the next run
//!     on the thread builds a new one (cheap correctness; it is rare).
//!
//!   Outside this invariant, as with a fresh interpreter per run: `tostring` of a table or a
//!   function, and `pairs` over a table keyed by tables or functions, show heap addresses,
//!   which differ between nodes.
//!
//! Errors read as Redis 7.0's: an error raised by the script or by `redis.call` is answered
//! `<error> script: <sha1>, on @user_script:<line>.`, a compile error `ERR Error compiling
//! script (new function): user_script:<line>: <message>`.

use std::cell::RefCell;

use bytes::Bytes;
use mlua::{Lua, MultiValue, Table, Value};

use super::calls::redis_call;
use super::errors::{self, reply_error};
use super::fuel;
use super::interpreter::Interpreter;
use crate::acl::CompiledUser;
use crate::commands::scripting::body::{sha1hex, shebang};
use crate::commands::scripting::shebang::WRITE_FLAG_RO;
use crate::store::{Op, Response, ScriptCalls, ScriptEnd, ScriptRun, ScriptValue, StoreError};

pub use super::interpreter::{MAX_INSTRUCTIONS, MAX_MEMORY};

thread_local! {
    /// This thread's interpreter; `None` until the first run, and after a run that dropped it.
    static INTERPRETER: RefCell<Option<Interpreter>> = const { RefCell::new(None) };
}

/// Runs `run`, each `redis.call` through `calls`, on this thread's interpreter.
pub(super) fn run(run: &ScriptRun<'_>, calls: &mut dyn ScriptCalls) -> ScriptEnd {
    let sha = sha1hex(run.body);
    INTERPRETER.with(|cell| {
        let Ok(mut slot) = cell.try_borrow_mut() else {
            // Not reached (a script cannot start a script); a new interpreter is as good.
            return match new_interpreter() {
                Ok(mut fresh) => run_on(&mut fresh, run, calls, &sha).0,
                Err(e) => ScriptEnd::Reply(ScriptValue::Error(format!("ERR {e}"))),
            };
        };
        if slot.is_none() {
            match new_interpreter() {
                Ok(fresh) => *slot = Some(fresh),
                Err(e) => return ScriptEnd::Reply(ScriptValue::Error(format!("ERR {e}"))),
            }
        }
        let Some(interpreter) = slot.as_mut() else {
            unreachable!("just built");
        };
        let (end, keep) = run_on(interpreter, run, calls, &sha);
        if !keep || interpreter.after_run().is_err() {
            *slot = None;
        }
        end
    })
}

/// Runs `run` on `interpreter`: how it ended, and whether the interpreter may be reused.
pub(super) fn run_on(
    interpreter: &mut Interpreter,
    run: &ScriptRun<'_>,
    calls: &mut dyn ScriptCalls,
    sha: &str,
) -> (ScriptEnd, bool) {
    match run_lua(interpreter, run, calls, sha) {
        Ok(ended) => ended,
        Err(e) => (
            ScriptEnd::Reply(ScriptValue::Error(format!("ERR {e}"))),
            false,
        ),
    }
}

fn run_lua(
    interpreter: &mut Interpreter,
    run: &ScriptRun<'_>,
    calls: &mut dyn ScriptCalls,
    sha: &str,
) -> mlua::Result<(ScriptEnd, bool)> {
    // ShebangFromBytes: refused (or not) alike on every node, before anything runs.
    let flags = match shebang(run.body) {
        Ok(flags) => flags,
        Err(e) => return Ok((ScriptEnd::Reply(ScriptValue::Error(e)), true)),
    };
    let f = match interpreter.function(sha, &run.body[flags.skip..]) {
        Ok(f) => f,
        Err(mlua::Error::SyntaxError { message, .. }) => {
            return Ok((
                ScriptEnd::Reply(ScriptValue::Error(format!(
                    "ERR Error compiling script (new function): {message}"
                ))),
                true,
            ))
        }
        Err(e) => return Err(e),
    };
    // Redis checks the flags after compiling: a compile error comes first.
    if run.read_only && flags.declared && !flags.no_writes {
        let refusal = ScriptValue::Error(WRITE_FLAG_RO.into());
        return Ok((ScriptEnd::Reply(refusal), true));
    }
    interpreter.begin(run.keys, run.args)?;

    let (read_only, now_ms) = (run.read_only || flags.no_writes, run.now_ms);
    let user = run.user.map(|u| CompiledUser::new(Bytes::new(), u.clone()));
    let user = user.as_ref();
    let calls = RefCell::new(calls);
    let lua = &interpreter.lua;
    let charge = interpreter.charge;
    let mut exceeded = false;
    let end = lua.scope(|scope| {
        // `redis.call` raises an error reply from Rust, so that the script's own frame is
        // still on the stack for the error's line even after `return redis.call(...)` (a
        // tail call to a Lua wrapper would have dropped it).
        let call = scope.create_function(|lua, args: MultiValue| {
            let mut calls = calls.borrow_mut();
            let v = redis_call(lua, &mut **calls, args, read_only, now_ms, user)?;
            match &v {
                Value::Table(t) => match t.raw_get::<Value>("err")? {
                    Value::String(e) => Err(errors::raise(e.to_string_lossy())),
                    _ => Ok(v),
                },
                _ => Ok(v),
            }
        })?;
        let pcall = scope.create_function(|lua, args: MultiValue| {
            let mut calls = calls.borrow_mut();
            redis_call(lua, &mut **calls, args, read_only, now_ms, user)
        })?;
        interpreter.set_calls(call, pcall)?;
        let handler = lua.create_function(error_handler)?;
        // From here on every byte the script asks for is charged (AllocationFuel).
        charge.start(MAX_MEMORY);
        let out = interpreter.run.call::<MultiValue>((f, handler));
        exceeded = charge.exceeded();
        charge.start(0);
        let mut out = out?.into_iter();
        let ok = matches!(out.next(), Some(Value::Boolean(true)));
        let value = out.next().unwrap_or(Value::Nil);
        if ok {
            return Ok(ScriptEnd::Reply(to_reply(&value)));
        }
        Ok(ScriptEnd::Reply(ScriptValue::Error(error_text(
            &value, sha,
        ))))
    });
    if interpreter.limits.over.get() {
        return Ok((
            ScriptEnd::Aborted(format!(
                "ERR script aborted: it ran past the limit of {MAX_INSTRUCTIONS} instructions; \
                 nothing it did was applied"
            )),
            false,
        ));
    }
    let out_of_memory = || {
        ScriptEnd::Aborted(format!(
            "ERR script aborted: it used more than {} MiB of memory; nothing it did was applied",
            MAX_MEMORY >> 20
        ))
    };
    if exceeded {
        return Ok((out_of_memory(), false));
    }
    match end {
        // The safety net (mlua's heap cap), or a script that raised this text itself.
        Err(mlua::Error::MemoryError(_)) => Ok((out_of_memory(), false)),
        Ok(ScriptEnd::Reply(ScriptValue::Error(e))) if e.contains("not enough memory") => {
            Ok((out_of_memory(), false))
        }
        Ok(end) => Ok((end, true)),
        Err(e) => Err(e),
    }
}

/// Builds an interpreter and warms it up.
pub(super) fn new_interpreter() -> mlua::Result<Interpreter> {
    let mut interpreter = Interpreter::new()?;
    warm_up(&mut interpreter)?;
    interpreter.collect()?;
    Ok(interpreter)
}

/// Runs scripts that take every path a run can take once (replies, errors raised from Rust
/// and from Lua, pcall, xpcall, the wrapped library functions), so that nothing mlua sets up
/// lazily on first use is set up during a real run: a new interpreter is, for the runs that
/// follow, the same as one that has run before (ReusedStateIsClean).
fn warm_up(interpreter: &mut Interpreter) -> mlua::Result<()> {
    struct Refusing;
    impl ScriptCalls for Refusing {
        fn call(&mut self, _: &Op) -> Response {
            Response::Error(StoreError::Script("ERR warm-up".into()))
        }
    }
    for body in [
        "local ok, e = pcall(redis.call, 'get', KEYS[1]) redis.pcall('get', 'k') \
         pcall(error, {}) pcall(string.rep) pcall(function() x = 1 end) \
         xpcall(function() error('x') end, function(e) return e end) \
         local s = cjson.encode(cjson.decode('[1,{\"a\":\"b\"}]')) \
         local b = bit.band(1, 3) + math.random() + #tostring(1.5) \
         local f = string.find('ab', 'b') local m = ('ab'):match('(a)') \
         local g = string.gsub('a b', '%s', '-') local u = ('x'):rep(3):upper() \
         local c = table.concat({'a', 'b'}) .. string.format('%d', 1) \
         return {1, 'a', {ok = 'x'}, redis.error_reply('e'), redis.sha1hex('')}",
        "return redis.call('get', KEYS[1])",
        "error('warm-up')",
        "error({err = 'warm-up'})",
        "return nope",
    ] {
        let (_, keep) = run_on(
            interpreter,
            &ScriptRun {
                body: body.as_bytes(),
                keys: &[Bytes::from_static(b"k")],
                args: &[Bytes::from_static(b"a")],
                now_ms: 0,
                read_only: true,
                user: None,
            },
            &mut Refusing,
            &sha1hex(body.as_bytes()),
        );
        if !keep {
            return Err(mlua::Error::runtime("the interpreter failed its warm-up"));
        }
    }
    Ok(())
}

/// The `xpcall` handler (Redis 7's `__redis__err__handler`): turns any error into a table with
/// `err`, and the script's `source` and `line` where it happened.
fn error_handler(lua: &Lua, err: Value) -> mlua::Result<Table> {
    let t = match &err {
        Value::Table(t) if t.raw_get::<Value>("err").is_ok_and(|v| !v.is_nil()) => t.clone(),
        // A table without `err` (`error({})`, which crashes Redis 7.0): "ERR unknown error".
        Value::Table(_) => lua.create_table()?,
        other => {
            let t = lua.create_table()?;
            let text = match other {
                Value::Error(e) => match reply_error(e) {
                    Some(reply) => reply,
                    None => match fuel::lib_error_text(e) {
                        Some(text) => format!("ERR {text}"),
                        None => format!("ERR {e}"),
                    },
                },
                // Redis's handler: `'ERR ' .. tostring(err)` (`ERR nil`, `ERR true`).
                v => {
                    let tostring: mlua::Function = lua.globals().raw_get("tostring")?;
                    let text: mlua::String = tostring.call(v.clone())?;
                    format!("ERR {}", text.to_string_lossy())
                }
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

/// The text of an error that ended a script, as Redis 7.0 writes it.
fn error_text(value: &Value, sha: &str) -> String {
    let Value::Table(t) = value else {
        // Not reached: the handler always gives a table.
        return format!("ERR unknown error script: {sha}");
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

/// How deep [`to_reply`] follows tables nested in tables (**ReplyDepthBound**). A reply is a
/// Raft entry's result on every node, kept in the dedup table when small (and so in
/// snapshots), and every step that handles it (this conversion, its encoding and decoding, the
/// RESP frame, its drop) recurses once per level: a script returning a table nested 100,000 deep overflowed the
/// `raft` thread's stack on every node, and again at every restart's replay of that entry
/// (one EVAL took the whole cluster down for good). Redis stops where its Lua stack runs out,
/// after about 8,000 levels, with the same error element; this stops sooner, where every step
/// fits half of a default 2 MiB thread stack in a debug build (`lua_test.rs`), and no reply a
/// script could mean to send nests this deep.
pub(super) const MAX_REPLY_DEPTH: usize = 500;

/// Redis's Lua-to-RESP conversion: numbers truncate to integers, `true` is 1, `false` and
/// `nil` are nil, a table with `err` or `ok` is an error or status reply, any other table an
/// array up to its first nil; a table nested past [`MAX_REPLY_DEPTH`] is the error Redis
/// gives where its Lua stack runs out, `ERR reached lua stack limit`.
pub(super) fn to_reply(v: &Value) -> ScriptValue {
    to_reply_at(v, 0)
}

/// `(long long)n` as Redis's conversion does it on x86-64 (`cvttsd2si`): truncated toward
/// zero, and `i64::MIN` for NaN, the infinities and anything outside the `i64` range (`return
/// 1/0` and `return 2^63` both answer `:-9223372036854775808`).
fn lua_number_to_integer(n: f64) -> i64 {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if n.is_nan() || !(-TWO_63..TWO_63).contains(&n) {
        i64::MIN
    } else {
        n as i64
    }
}

fn to_reply_at(v: &Value, depth: usize) -> ScriptValue {
    match v {
        Value::Nil | Value::Boolean(false) => ScriptValue::Nil,
        Value::Boolean(true) => ScriptValue::Integer(1),
        Value::Integer(i) => ScriptValue::Integer(*i),
        Value::Number(n) => ScriptValue::Integer(lua_number_to_integer(*n)),
        Value::String(s) => ScriptValue::Bulk(Bytes::copy_from_slice(&s.as_bytes())),
        Value::Table(_) if depth >= MAX_REPLY_DEPTH => {
            ScriptValue::Error("ERR reached lua stack limit".into())
        }
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
                    Ok(v) => items.push(to_reply_at(&v, depth + 1)),
                }
            }
            ScriptValue::Array(items)
        }
        _ => ScriptValue::Nil,
    }
}
