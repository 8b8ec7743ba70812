//! What a script's instruction count cannot see, charged to the same budget: bytes allocated
//! (the `..` operator, `string.rep`, `table.concat` copy whole strings in one VM instruction)
//! and the worst case of Lua's pattern matcher (`string.find`, `match`, `gmatch`, `gsub`
//! backtrack in C, without allocating: `('a'):rep(3000):find('.-.-.-b')` runs for minutes).
//!
//! - **AllocationFuel.** Every byte a run asks the Lua heap for is charged, and
//!   [`BYTES_PER_INSTRUCTION`] bytes cost one instruction of the budget. The count is kept by
//!   Lua itself (`vendor/lua-src/redraft.patch`, `luaM_charge`) so that it depends only on
//!   what the script does, never on the interpreter's history (ReusedStateIsClean, in
//!   `engine.rs`): a string is charged its length each time the script makes it, whether Lua
//!   finds it already interned or not (so `big .. 'z'` producing an existing string is charged
//!   too); tables, closures and upvalues are charged what they allocate; Lua's own bookkeeping
//!   (the string table, the concatenation and lexer buffers, stacks) and mlua's userdata are
//!   not. Past [`super::interpreter::MAX_MEMORY`] charged bytes the allocation fails with Lua's
//!   memory error, at the same point on every node.
//! - **CopyCharge.** The C functions that copy strings are charged the bytes they produce
//!   ([`guard_copies`]), on top of AllocationFuel; `string.rep` before it copies, so a huge
//!   repeat is refused before any work.
//! - **PatternWorstCase.** A pattern call on a subject of `n` bytes is charged its worst case
//!   before it runs: `(n+1)^(k+1)` for a pattern with `k` repetition items (`*`, `+`, `-`,
//!   `%b`), one power less when anchored with `^`, `n·m` for a plain find of an `m`-byte
//!   string. A call whose worst case exceeds what is left of the budget aborts the script
//!   before it starts, as the instruction limit does.

use std::os::raw::c_int;
use std::rc::Rc;

use mlua::{ffi, Lua, MultiValue, Value};

/// Allocated bytes that cost one instruction: the 10,000,000-instruction budget allows about
/// 320 MB of allocation, some 100-400 ms of copying in a release build (a script that builds
/// a 64 MiB table allocates about 128 MB: 4,000,000 of the budget).
pub const BYTES_PER_INSTRUCTION: u64 = 32;

// The charge and read-only tables of the patched Lua (`vendor/lua-src/redraft.patch`). None
// of them raises a Lua error or touches the stack.
extern "C" {
    fn lua_enablereadonlytable(state: *mut ffi::lua_State, idx: c_int, enabled: c_int);
    fn lua_setchargelimit(state: *mut ffi::lua_State, limit: usize);
    fn lua_charged(state: *mut ffi::lua_State) -> usize;
    fn lua_chargeexceeded(state: *mut ffi::lua_State) -> c_int;
}

/// A Lua state's global data, reached through its main thread: the charge counter.
#[derive(Clone, Copy)]
pub struct Charge(*mut ffi::lua_State);

impl Charge {
    /// The charge of `lua` (its main thread's pointer, valid while `lua` lives).
    pub fn of(lua: &Lua) -> mlua::Result<Charge> {
        let mut state: *mut ffi::lua_State = std::ptr::null_mut();
        // SAFETY: reads the state pointer only; nothing is pushed.
        unsafe { lua.exec_raw::<()>((), |s| state = s)? };
        Ok(Charge(state))
    }

    /// Starts counting from zero, allocations past `limit` bytes failing (0: no limit).
    pub fn start(self, limit: usize) {
        // SAFETY: the state is alive (see `of`); sets four counters of its global data.
        unsafe { lua_setchargelimit(self.0, limit) }
    }

    /// Bytes charged since [`Charge::start`].
    pub fn charged(self) -> u64 {
        // SAFETY: as `start`; a read.
        unsafe { lua_charged(self.0) as u64 }
    }

    /// Whether an allocation failed on the limit since [`Charge::start`].
    pub fn exceeded(self) -> bool {
        // SAFETY: as `start`; a read.
        unsafe { lua_chargeexceeded(self.0) != 0 }
    }

    /// Makes `table` read-only (Redis 7's "Attempt to modify a readonly table") or writable.
    pub fn set_readonly(self, lua: &Lua, table: &mlua::Table, readonly: bool) -> mlua::Result<()> {
        // SAFETY: `table` is pushed as the only argument, so it is at index -1.
        unsafe {
            lua.exec_raw::<()>(table, |s| {
                lua_enablereadonlytable(s, -1, c_int::from(readonly))
            })
        }
    }
}

/// The worst-case cost of a pattern call (PatternWorstCase), saturating.
pub fn pattern_cost(subject: &[u8], pattern: &[u8], plain: bool) -> u64 {
    let n = subject.len() as u64 + 1;
    let specials = pattern.iter().any(|b| b"^$*+?.([%-".contains(b));
    if plain || !specials {
        return n.saturating_mul(pattern.len().max(1) as u64);
    }
    let anchored = pattern.first() == Some(&b'^');
    let k = repetitions(pattern);
    let power = if anchored { k } else { k + 1 }.max(1);
    (0..power).fold(1u64, |acc, _| acc.saturating_mul(n))
}

/// Counts the repetition items of a Lua 5.1 pattern: a single-character class followed by
/// `*`, `+` or `-`, and each `%b`.
fn repetitions(p: &[u8]) -> u32 {
    let mut k = 0u32;
    let mut i = 0;
    while i < p.len() {
        // One single-character class (or a capture mark, an anchor, %b, %f).
        let class_end = match p[i] {
            b'(' | b')' | b'^' | b'$' => {
                i += 1;
                continue;
            }
            b'%' => match p.get(i + 1) {
                Some(b'b') => {
                    k += 1;
                    i += 4;
                    continue;
                }
                Some(b'f') => {
                    i = set_end(p, i + 2);
                    continue;
                }
                Some(_) => i + 2,
                None => p.len(),
            },
            b'[' => set_end(p, i),
            _ => i + 1,
        };
        if matches!(p.get(class_end), Some(b'*' | b'+' | b'-')) {
            k += 1;
            i = class_end + 1;
        } else if p.get(class_end) == Some(&b'?') {
            i = class_end + 1;
        } else {
            i = class_end;
        }
    }
    k
}

/// The index after the set `[...]` starting at `start` (Lua's `classEnd`).
fn set_end(p: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    if p.get(i) == Some(&b'^') {
        i += 1;
    }
    // The first `]` is part of the set.
    let mut first = true;
    while i < p.len() {
        match p[i] {
            b'%' => i += 2,
            b']' if !first => return i + 1,
            _ => i += 1,
        }
        first = false;
    }
    p.len()
}

/// A library function's own error (`bad argument #1 to 'rep' ...`), raised again from a
/// wrapper with the text and position the unwrapped function would have given.
#[derive(Debug)]
pub struct LibError(pub String);

impl std::fmt::Display for LibError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LibError {}

/// The text of a [`LibError`] inside an error raised from Rust, if it is one.
pub fn lib_error_text(e: &mlua::Error) -> Option<&str> {
    match e {
        mlua::Error::CallbackError { cause, .. } => lib_error_text(cause),
        mlua::Error::ExternalError(inner) => inner.downcast_ref::<LibError>().map(|e| e.0.as_str()),
        _ => None,
    }
}

/// The error of the wrapped `name` as the script would have seen it from the function itself:
/// the innermost message, the function named as its caller named it, and the script's line
/// first, as `luaL_where` writes it.
fn relabel(lua: &Lua, err: mlua::Error) -> mlua::Error {
    fn innermost(e: &mlua::Error) -> String {
        match e {
            mlua::Error::CallbackError { cause, .. } => innermost(cause),
            // `Function::call` appends a traceback; the script never sees one.
            mlua::Error::RuntimeError(m) => m
                .split("\nstack traceback:")
                .next()
                .unwrap_or_default()
                .to_string(),
            other => other.to_string(),
        }
    }
    // `luaL_argerror` names the function as its caller did (`string.rep(...)` is 'rep', a
    // local `r = string.rep; r()` is 'r'), and '?' when a C function such as `pcall` called
    // it.
    let (called, method) = lua.inspect_stack(0).map_or((None, false), |d| {
        let names = d.names();
        (
            names.name.map(|n| n.into_owned()),
            names.name_what == Some("method"),
        )
    });
    let called = called.unwrap_or_else(|| "?".to_string());
    let mut text = innermost(&err).replace("to '?'", &format!("to '{called}'"));
    // Called as a method (`s:rep(n)`), Lua numbers the arguments after `self`, as
    // `luaL_argerror` does for the function called directly.
    if method {
        text = renumber_for_method(&text, &called);
    }
    if let Some(d) = lua.inspect_stack(1) {
        let source = d.source().source.map(|s| s.into_owned());
        if source.as_deref() == Some("@user_script") && !text.starts_with("user_script:") {
            text = format!("user_script:{}: {text}", d.curr_line());
        }
    }
    mlua::Error::external(LibError(text))
}

/// `luaL_argerror`'s message for a method call: `bad argument #n` counts from the argument
/// after `self`, and a bad `self` is `calling 'name' on bad self (...)`.
fn renumber_for_method(text: &str, name: &str) -> String {
    let Some(rest) = text.strip_prefix("bad argument #") else {
        return text.to_string();
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let Ok(n) = rest[..digits].parse::<u32>() else {
        return text.to_string();
    };
    let after = &rest[digits..];
    if n > 1 {
        return format!("bad argument #{}{after}", n - 1);
    }
    let why = after.find(" (").map_or("", |i| &after[i + 1..]);
    format!("calling '{name}' on bad self {why}")
}

/// Replaces `string.find`, `match`, `gmatch` and `gsub` (also as methods: strings index the
/// `string` table) with wrappers that call `charge` with the worst case first.
pub fn guard_patterns(lua: &Lua, charge: Rc<dyn Fn(u64) -> mlua::Result<()>>) -> mlua::Result<()> {
    let string: mlua::Table = lua.globals().raw_get("string")?;
    for name in ["find", "match", "gmatch", "gsub"] {
        let original: mlua::Function = string.raw_get(name)?;
        let charge = charge.clone();
        let wrapped = lua.create_function(move |lua, args: MultiValue| {
            let text = |v: Option<&Value>| match v {
                Some(Value::String(s)) => s.as_bytes().to_vec(),
                Some(Value::Integer(i)) => i.to_string().into_bytes(),
                Some(Value::Number(n)) => n.to_string().into_bytes(),
                _ => Vec::new(),
            };
            let (subject, pattern) = (text(args.front()), text(args.get(1)));
            let plain = name == "find"
                && args
                    .get(3)
                    .is_some_and(|v| !matches!(v, Value::Nil | Value::Boolean(false)));
            charge(pattern_cost(&subject, &pattern, plain))?;
            original
                .call::<MultiValue>(args)
                .map_err(|e| relabel(lua, e))
        })?;
        string.raw_set(name, wrapped)?;
    }
    Ok(())
}

/// Replaces the C functions that copy strings (`string.rep`, `format`, `upper`, `lower`,
/// `reverse`, `sub`, `table.concat`) with wrappers that charge the bytes they produce
/// (CopyCharge): `string.rep` before it runs (`n × len`), the others after, by the length of
/// their result (at most the memory limit, so the work done before the charge is bounded).
pub fn guard_copies(lua: &Lua, charge: Rc<dyn Fn(u64) -> mlua::Result<()>>) -> mlua::Result<()> {
    let string: mlua::Table = lua.globals().raw_get("string")?;
    let table: mlua::Table = lua.globals().raw_get("table")?;
    let byte_len = |v: &Value| match v {
        Value::String(s) => s.as_bytes().len() as u64,
        _ => 0,
    };
    let targets = [
        (&string, "rep"),
        (&string, "format"),
        (&string, "upper"),
        (&string, "lower"),
        (&string, "reverse"),
        (&string, "sub"),
        (&table, "concat"),
    ];
    for (lib, name) in targets {
        let original: mlua::Function = lib.raw_get(name)?;
        let charge = charge.clone();
        let wrapped = lua.create_function(move |lua, args: MultiValue| {
            if name == "rep" {
                let len = args.front().map_or(0, byte_len);
                let n = match args.get(1) {
                    Some(Value::Integer(n)) => (*n).max(0) as u64,
                    Some(Value::Number(n)) if *n > 0.0 => *n as u64,
                    _ => 0,
                };
                charge(len.saturating_mul(n) / BYTES_PER_INSTRUCTION)?;
            }
            let out = original
                .call::<MultiValue>(args)
                .map_err(|e| relabel(lua, e))?;
            if name != "rep" {
                charge(out.iter().map(byte_len).sum::<u64>() / BYTES_PER_INSTRUCTION)?;
            }
            Ok(out)
        })?;
        lib.raw_set(name, wrapped)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repetitions_count_as_lua_patterns_read() {
        for (p, k) in [
            ("abc", 0),
            ("a*", 1),
            ("^(%w+)=(%w+)$", 2),
            (".-.-.-b", 3),
            ("[%]*]+", 1),
            ("[]]*x", 1),
            ("%b()", 1),
            ("%f[%w]%w+", 1),
            ("a?b?", 0),
            ("%%*", 1),
            ("%s+", 1),
        ] {
            assert_eq!(repetitions(p.as_bytes()), k, "{p}");
        }
    }

    #[test]
    fn worst_cases_grow_with_repetitions_and_anchors() {
        let s = vec![b'a'; 999];
        assert_eq!(pattern_cost(&s, b":", false), 1000);
        assert_eq!(pattern_cost(&s, b"a.b", true), 3000);
        assert_eq!(pattern_cost(&s, b"%s+", false), 1_000_000);
        assert_eq!(pattern_cost(&s, b"^(%d+):(%d+)$", false), 1_000_000);
        assert_eq!(pattern_cost(&s, b".-.-.-b", false), 1_000_000_000_000);
        assert_eq!(
            pattern_cost(&vec![b'a'; 1 << 20], b".-.-.-.-.-.-b", false),
            u64::MAX
        );
    }
}
