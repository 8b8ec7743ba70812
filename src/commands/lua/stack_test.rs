//! Scripts that run `pcall`/`xpcall` to the end of the Lua stack, the C call depth or the
//! instruction limit (`protect.rs`). Each runs on a thread with an 8 MiB stack, the `raft`
//! thread's, bounded in time: a script that hangs fails the test instead of the run.
//! (Kept apart from `lua_test.rs`, which is at the file-length bound.)

use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;

use crate::store::{Op, Request, Response, ScriptValue, Store};

/// What each of `bodies` answers, one store, on an 8 MiB thread; panics past two minutes.
fn answers(bodies: &[&'static str]) -> Vec<ScriptValue> {
    let (tx, rx) = mpsc::channel();
    let bodies = bodies.to_vec();
    let n = bodies.len();
    std::thread::Builder::new()
        .stack_size(8 << 20)
        .spawn(move || {
            super::install();
            let mut s = Store::new();
            for body in bodies {
                let op = Op::Script {
                    body: Bytes::copy_from_slice(body.as_bytes()),
                    keys: vec![],
                    args: vec![],
                    now_ms: 1_000,
                };
                let got = match s.apply(&Request::new(None, op)).0 {
                    Response::Script { value, .. } => value,
                    // An aborted script: its error, to read.
                    other => ScriptValue::Error(format!("{other:?}")),
                };
                let _ = tx.send(got);
            }
        })
        .unwrap();
    (0..n)
        .map(|i| {
            rx.recv_timeout(Duration::from_secs(120))
                .unwrap_or_else(|_| panic!("script {i} answered in time (or its thread died)"))
        })
        .collect()
}

fn bulk(s: &str) -> ScriptValue {
    ScriptValue::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

/// `local function f() return pcall(f) end return f()` returns 200 values through Lua's own
/// `pcall`, whose status push then landed past the C function's frame: a debug build aborted
/// on Lua's API check in `lua_pushboolean` (the node process died, on every node that
/// applied the entry), a release build wrote past the frame. Now Redis's `1`, as for xpcall,
/// and a script's many results returned at the top level.
#[test]
fn pcall_recursion_returns_as_redis_does() {
    let got = answers(&[
        "local function f() return pcall(f) end return f()",
        "local function f() return xpcall(f, function(e) return e end) end return f()",
        "local function f() return pcall(f) end local t = {f()} return t[#t]",
        "local function f() return xpcall(f, f) end local t = {f()} return {t[1], t[2]}",
        "local function f() return pcall(pcall, pcall, f) end local t = {f()} return t[#t]",
        "local function f() return select(2, pcall(f)) end return f()",
        "local function f() return pcall(string.gsub, 'a', 'a', f) end return {f()}",
        "local function f() return pcall(table.sort, {1, 2}, f) end return {f()}",
        "local function f(n) if n == 0 then error({err = 'ERR deep'}) end \
         return pcall(f, n - 1) end local t = {f(150)} return {#t, t[#t]}",
        "local t = {} for i = 1, 7000 do t[i] = i end return #{pcall(unpack, t)}",
        "local t = {} for i = 1, 7000 do t[i] = i end \
         return #{xpcall(function() return unpack(t) end, function(e) return e end)}",
        "local t = {} for i = 1, 7000 do t[i] = 'x' .. i end return unpack(t)",
    ]);
    let one = ScriptValue::Integer(1);
    assert_eq!(got[0], one);
    assert_eq!(got[1], one);
    assert_eq!(got[2], bulk("C stack overflow"));
    assert_eq!(got[3], ScriptValue::Array(vec![one.clone(), one.clone()]));
    assert_eq!(got[4], bulk("C stack overflow"));
    assert_eq!(got[5], bulk("C stack overflow"));
    let gsub = vec![one.clone(), bulk("a"), one.clone()];
    assert_eq!(got[6], ScriptValue::Array(gsub));
    assert_eq!(got[7], ScriptValue::Array(vec![one.clone()]));
    let deep = vec![ScriptValue::Integer(151), bulk("ERR deep")];
    assert_eq!(got[8], ScriptValue::Array(deep));
    assert_eq!(got[9], ScriptValue::Integer(7001));
    assert_eq!(got[10], ScriptValue::Integer(7001));
    assert_eq!(got[11], bulk("x1"));
}

/// An `xpcall` handler that never returns (`local function h(e) return h(e) end`) is stopped
/// by the instruction limit; it ran for good before (the error raised from the instruction
/// hook reached the handler again with hooks off), holding the state machine.
#[test]
fn an_endless_xpcall_handler_is_stopped_by_the_limit() {
    let got = answers(&[
        "local function h(e) return h(e) end return xpcall(function() error('x') end, h)",
        "local function h(e) while true do end end return xpcall(error, h)",
        "return xpcall(function() while true do end end, function(e) while true do end end)",
    ]);
    for g in got {
        let ScriptValue::Error(e) = g else {
            panic!("an error: {g:?}");
        };
        assert!(e.contains("ran past the limit of"), "{e}");
    }
}

/// Redis 7.0's `pcall()` calls its own status slot; `xpcall(f)` is Lua's argument error (it
/// was `true` and `f`'s results, and `pcall()` an error naming redraft's internals). Not in
/// a tail call, whose caller's line Lua has dropped (a difference the README lists).
#[test]
fn pcall_and_xpcall_without_arguments_answer_as_redis_does() {
    let got = answers(&[
        "return {pcall()}",
        "local ok = xpcall(function() return 1 end) return ok",
    ]);
    let want = vec![ScriptValue::Nil, bulk("attempt to call a boolean value")];
    assert_eq!(got[0], ScriptValue::Array(want));
    let ScriptValue::Error(e) = &got[1] else {
        panic!("an error: {:?}", got[1]);
    };
    let want = "ERR user_script:1: bad argument #2 to 'xpcall' (value expected) script: ";
    assert!(e.starts_with(want), "{e}");
}
