//! A reused interpreter answers as a fresh one (ReusedStateIsClean): the limit decisions at
//! their exact boundary, after thousands of runs, a full function cache and garbage left
//! alive; nothing a script changes reaches the next run; aborted runs leave the thread's
//! interpreter usable; the function cache is bounded and SCRIPT FLUSH empties it.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::engine::{new_interpreter, run, run_on};
use super::interpreter::{forget_functions, Interpreter, MAX_CACHED_FUNCTIONS};
use crate::commands::scripting::body::sha1hex;
use crate::store::{Op, Response, ScriptCalls, ScriptEnd, ScriptRun, ScriptValue, StoreError};

/// Answers every call with an error reply: these scripts make none that matter.
struct NoStore;

impl ScriptCalls for NoStore {
    fn call(&mut self, _: &Op) -> Response {
        Response::Error(StoreError::Script("ERR no store in this test".into()))
    }
}

fn script_run<'a>(body: &'a str, args: &'a [Bytes]) -> ScriptRun<'a> {
    ScriptRun {
        body: body.as_bytes(),
        keys: &[],
        args,
        now_ms: 0,
        read_only: false,
        user: None,
    }
}

/// Runs `body` with ARGV[1] = `n` on `interpreter`, as `run` would but without the cleanup
/// between runs (garbage stays alive). An interpreter the run dropped is built again.
fn must_run_on(interpreter: &mut Interpreter, body: &str, n: u64) -> ScriptEnd {
    let args = [Bytes::from(n.to_string())];
    let (end, keep) = run_on(
        interpreter,
        &script_run(body, &args),
        &mut NoStore,
        &sha1hex(body.as_bytes()),
    );
    if !keep {
        *interpreter = new_interpreter().expect("a new interpreter");
    }
    end
}

fn aborted(end: &ScriptEnd) -> bool {
    matches!(end, ScriptEnd::Aborted(_))
}

/// The smallest `n` in `1..=high` for which `body` is aborted on a fresh interpreter.
fn boundary(body: &str, high: u64) -> u64 {
    let (mut lo, mut hi) = (1, high);
    assert!(aborted(&must_run_on(
        &mut new_interpreter().unwrap(),
        body,
        hi
    )));
    while lo < hi {
        let mid = (lo + hi) / 2;
        if aborted(&must_run_on(&mut new_interpreter().unwrap(), body, mid)) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    lo
}

/// An interpreter that has run many scripts: its cache overflowed and refilled, garbage of
/// `body`'s own strings alive (so Lua finds them interned), the concatenation buffer and the
/// string table grown.
fn dirtied(body: &str, n: u64) -> Interpreter {
    let mut i = new_interpreter().unwrap();
    for k in 0..(MAX_CACHED_FUNCTIONS as u64 + 300) {
        let distinct = format!("local s = 'constant {k}' .. ARGV[1] return #s");
        must_run_on(&mut i, &distinct, k);
    }
    must_run_on(
        &mut i,
        "local s = ('y'):rep(4000000) .. ('z'):rep(4000000) return #s",
        0,
    );
    must_run_on(&mut i, body, n / 2);
    must_run_on(&mut i, body, n - 1);
    i
}

/// ReusedStateIsClean: a script that allocates up to the memory bound is aborted at exactly
/// the same size on a fresh interpreter and on a dirtied one.
#[test]
fn the_memory_bound_is_the_same_on_a_fresh_and_a_reused_interpreter() {
    let body = "local t = {} for i = 1, tonumber(ARGV[1]) do t[i] = ('x'):rep(5000) .. i end \
                return #t";
    let n = boundary(body, 20_000);
    let mut fresh = new_interpreter().unwrap();
    let mut reused = dirtied(body, n);
    for k in [n - 1, n] {
        let want = must_run_on(&mut fresh, body, k);
        assert_eq!(must_run_on(&mut reused, body, k), want, "n = {k}");
        assert_eq!(aborted(&want), k == n);
        if let ScriptEnd::Aborted(why) = &want {
            assert!(why.contains("memory"), "{why}");
        }
    }
}

/// ReusedStateIsClean: the instruction budget (instructions plus bytes allocated) runs out at
/// exactly the same point on a fresh interpreter and on a dirtied one.
#[test]
fn the_instruction_limit_is_the_same_on_a_fresh_and_a_reused_interpreter() {
    let body = "local n = 0 for i = 1, tonumber(ARGV[1]) do local s = 'k' .. (i % 1000) \
                local a = i * 2 local b = a + 1 local c = b - a n = n + #s + c end return n";
    let n = boundary(body, 1_500_000);
    let mut fresh = new_interpreter().unwrap();
    let mut reused = dirtied(body, n);
    for k in [n - 1, n] {
        let want = must_run_on(&mut fresh, body, k);
        assert_eq!(must_run_on(&mut reused, body, k), want, "n = {k}");
        assert_eq!(aborted(&want), k == n);
        if let ScriptEnd::Aborted(why) = &want {
            assert!(why.contains("instruction"), "{why}");
        }
    }
}

/// Redis 7's read-only tables: no write to the globals, the libraries or their metatables
/// reaches the next run, and each is refused with Redis's text.
#[test]
fn a_script_cannot_change_what_the_next_run_sees() {
    let mut i = new_interpreter().unwrap();
    for body in [
        "string.rep = nil",
        "rawset(string, 'rep', nil)",
        "table.insert(string, 'x')",
        "math.random = function() return 4 end",
        "rawset(_G, 'x', 1)",
        "setmetatable(_G, nil)",
        "getmetatable(_G).__index = nil",
        "getmetatable('').__index = {}",
        "redis.call = nil",
        "cjson.encode = nil",
        "bit.band = nil",
        "table.insert(math, 1)",
    ] {
        let ScriptEnd::Reply(ScriptValue::Error(e)) = must_run_on(&mut i, body, 0) else {
            panic!("{body} was not refused");
        };
        assert!(
            e.contains("Attempt to modify a readonly table"),
            "{body}: {e}"
        );
    }
    let check = "return {type(string.rep), rawget(_G, 'x') == nil, math.random(100), \
                 ('a'):rep(2), #getmetatable('') == 0, pcall(function() return y end)}";
    assert_eq!(
        must_run_on(&mut i, check, 0),
        must_run_on(&mut new_interpreter().unwrap(), check, 0)
    );
}

/// AbortLeavesNothing for the interpreter: after a run aborted on either limit (caught by
/// pcall or not) or stopped by an error, the thread's next run answers as on a new one.
#[test]
fn an_aborted_run_leaves_the_interpreter_usable() {
    let next = "local t = {} for i = 1, 5 do t[i] = math.random(1000) end \
                return {#KEYS, ARGV[1], t[1], t[5]}";
    let args = [Bytes::from_static(b"7")];
    let want = run_on(
        &mut new_interpreter().unwrap(),
        &script_run(next, &args),
        &mut NoStore,
        &sha1hex(next.as_bytes()),
    )
    .0;
    for body in [
        "while true do end",
        "while true do pcall(function() while true do end end) end",
        "local s = 'x' for i = 1, 40 do s = s .. s end",
        "local s = 'x' for i = 1, 40 do pcall(function() s = s .. s end) end",
        "error('stop')",
        "return redis.call('get', 'k')",
    ] {
        run(&script_run(body, &[]), &mut NoStore);
        assert_eq!(
            run(&script_run(next, &args), &mut NoStore),
            want,
            "after {body}"
        );
    }
}

/// The `..` operator is charged: doubling a string is aborted at the memory bound, and
/// re-making a large string that already exists (Lua interns it, so nothing is allocated) is
/// charged its length each time, so neither holds apply for long.
#[test]
fn concatenation_is_charged_even_when_the_result_exists() {
    for body in [
        "local s = 'x' for i = 1, 40 do s = s .. s end return #s",
        "local big = ('x'):rep(1000000) local keep = big .. 'z' \
         for i = 1, 1000000 do local y = big .. 'z' end return 1",
    ] {
        let started = Instant::now();
        let end = run(&script_run(body, &[]), &mut NoStore);
        assert!(aborted(&end), "{body}: {end:?}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{body}: {:?}",
            started.elapsed()
        );
    }
}

/// The cache of compiled functions stays bounded however many distinct bodies run, and
/// SCRIPT FLUSH empties it.
#[test]
fn the_function_cache_is_bounded_and_flushed() {
    let mut i = new_interpreter().unwrap();
    for k in 0..(2 * MAX_CACHED_FUNCTIONS + 10) {
        let body = format!("return {k}");
        assert_eq!(
            must_run_on(&mut i, &body, 0),
            ScriptEnd::Reply(ScriptValue::Integer(k as i64))
        );
        assert!(i.cached() <= MAX_CACHED_FUNCTIONS);
    }
    forget_functions();
    must_run_on(&mut i, "return 1", 0);
    assert_eq!(i.cached(), 1);
}
