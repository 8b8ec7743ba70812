//! The long-lived Lua interpreter a thread runs scripts in (Redis 7's design): built once per
//! thread with the libraries, the limit wrappers and the `redis` table, every shared table
//! made read-only, and the functions compiled from script bodies cached by SHA-1, so a run
//! costs a function call rather than a new interpreter and a parse. Owns what a run may
//! reuse and how it is reset; `engine.rs` owns the run itself.
//!
//! ReusedStateIsClean (the reason a reused interpreter answers as a fresh one would, stated in
//! full in `engine.rs`): nothing a script can reach survives its run. The globals, the
//! libraries (`string`, `table`, `math`, `cjson`, `bit`, `redis`), their metatables and the
//! string metatable are read-only (Redis 7's patch, `vendor/lua-src/redraft.patch`: a write,
//! `rawset`, `table.insert` or `setmetatable` on them raises "Attempt to modify a readonly
//! table"); KEYS, ARGV, `redis.call` and `redis.pcall` are replaced before every run;
//! `math.random`'s state, the instruction count, the hook's countdown and the allocation
//! charge are reset before every run; the collector never runs during a run (weak tables
//! cannot observe when it ran); compiled functions are immutable (no `setfenv`, no `debug`).

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use mlua::{Function, HookTriggers, Lua, LuaOptions, MultiValue, StdLib, Table, Value, VmState};

use super::errors;
use super::fuel::{self, Charge};
use super::protect;

/// VM instructions a run may execute: tens of milliseconds of pure Lua in a release build. A
/// script runs inside apply, so this bounds how long one entry can hold the state machine.
pub const MAX_INSTRUCTIONS: u64 = 10_000_000;
/// Bytes a run may allocate (charged, AllocationFuel in `fuel.rs`); the collector does not
/// run during a run, so this bounds its heap too.
pub const MAX_MEMORY: usize = 64 << 20;
/// The most compiled functions an interpreter keeps; past it (or past
/// [`MAX_CACHED_BODY_BYTES`]) the cache is emptied, as Redis 7 empties its EVAL cache.
pub const MAX_CACHED_FUNCTIONS: usize = 1000;
/// The most script body bytes the cached functions were compiled from.
pub const MAX_CACHED_BODY_BYTES: usize = 8 << 20;
/// Heap growth between full collections: garbage left by runs is collected between two runs,
/// once it passes this (the collector is stopped otherwise).
const GC_SLACK: usize = 4 << 20;
/// The heap the allocator refuses past: a safety net, never the limit a script meets (the
/// deterministic limit is [`MAX_MEMORY`] bytes charged; what a run can hold uncharged, Lua's
/// bookkeeping and mlua's userdata, is bounded by what it is charged, see `engine.rs`).
const BACKSTOP_MEMORY: usize = 1 << 30;
/// The hook runs every this many instructions.
pub const HOOK_EVERY: u32 = 1000;

/// SCRIPT FLUSHes seen by this process: an interpreter whose count is older empties its
/// cache before its next run (each thread has its own interpreter).
static FLUSHES: AtomicU64 = AtomicU64::new(0);

/// Empties every thread's function cache before its next run (SCRIPT FLUSH, a snapshot
/// installed).
pub fn forget_functions() {
    FLUSHES.fetch_add(1, Ordering::Relaxed);
}

/// What a run counts, reset before each.
#[derive(Default)]
pub struct Limits {
    /// VM instructions executed, plus pattern and copy charges.
    pub executed: Cell<u64>,
    /// The instruction limit was hit (cannot be caught).
    pub over: Cell<bool>,
    /// `math.random`'s state.
    random: Cell<u64>,
}

impl Limits {
    /// The budget spent: instructions plus AllocationFuel.
    pub fn spent(&self, charge: Charge) -> u64 {
        self.executed.get() + charge.charged() / fuel::BYTES_PER_INSTRUCTION
    }
}

/// One thread's interpreter.
pub struct Interpreter {
    pub lua: Lua,
    pub charge: Charge,
    pub limits: Rc<Limits>,
    /// Runs the script: `xpcall(f, handler)`'s first two values (`protect::functions`; the
    /// global `xpcall` re-raises the limits).
    pub run: Function,
    redis: Table,
    globals: Table,
    /// Compiled functions by SHA-1 of the body, and the body bytes they hold.
    cache: HashMap<String, Function>,
    cached_bytes: usize,
    flushes: u64,
    /// Heap after the last full collection.
    idle_heap: usize,
}

impl Interpreter {
    /// Builds an interpreter: libraries, wrappers, the `redis` table, read-only tables (not warmed
    /// up: `engine::new_interpreter` does that).
    pub fn new() -> mlua::Result<Interpreter> {
        let lua = Lua::new_with(
            StdLib::TABLE | StdLib::STRING | StdLib::MATH,
            LuaOptions::default(),
        )?;
        lua.set_memory_limit(BACKSTOP_MEMORY)?;
        lua.gc_stop();
        let charge = Charge::of(&lua)?;
        let limits = Rc::new(Limits::default());
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
            // Its threads run outside the instruction hook, which mlua sets on the main
            // thread only: a loop in a coroutine would never be stopped.
            "coroutine",
        ] {
            globals.raw_set(name, Value::Nil)?;
        }
        install_random(&lua, limits.clone())?;
        super::libs::install(&lua)?;
        {
            // PatternWorstCase and CopyCharge (`fuel.rs`): charged to the same budget.
            let limits = limits.clone();
            let charge_fn = move |cost: u64| {
                limits
                    .executed
                    .set(limits.executed.get().saturating_add(cost));
                if limits.spent(charge) > MAX_INSTRUCTIONS {
                    limits.over.set(true);
                    return Err(mlua::Error::runtime(
                        "script exceeded the instruction limit",
                    ));
                }
                Ok(())
            };
            let charge_fn: Rc<dyn Fn(u64) -> mlua::Result<()>> = Rc::new(charge_fn);
            fuel::guard_patterns(&lua, charge_fn.clone())?;
            fuel::guard_copies(&lua, charge_fn)?;
        }
        let (raw_pcall, raw_xpcall, run) = protect::functions(&lua)?;
        install_uncatchable_limits(&lua, limits.clone(), charge, raw_pcall, raw_xpcall)?;
        let redis = redis_table(&lua)?;
        globals.raw_set("redis", redis.clone())?;
        let string_meta: Table = lua.load("return getmetatable('')").eval()?;
        seal_globals(&lua)?;
        // Everything reachable from the globals, their metatables and the strings' one.
        let mut seen = HashSet::new();
        make_readonly(&lua, charge, &globals, &mut seen)?;
        make_readonly(&lua, charge, &string_meta, &mut seen)?;
        Ok(Interpreter {
            lua,
            charge,
            limits,
            run,
            redis,
            globals,
            cache: HashMap::new(),
            cached_bytes: 0,
            flushes: FLUSHES.load(Ordering::Relaxed),
            idle_heap: 0,
        })
    }

    /// The function compiled from `chunk` (the body named `sha`, its shebang line blanked),
    /// from the cache or compiled now. Compiling is charged to no run (the same run costs
    /// the same whether its function was cached or not); it is bounded by [`MAX_MEMORY`]
    /// bytes charged on its own, which depends only on the body.
    pub fn function(&mut self, sha: &str, chunk: &[u8]) -> mlua::Result<Function> {
        let flushes = FLUSHES.load(Ordering::Relaxed);
        if flushes != self.flushes {
            self.flushes = flushes;
            self.forget();
        }
        if let Some(f) = self.cache.get(sha) {
            return Ok(f.clone());
        }
        self.charge.start(MAX_MEMORY);
        let compiled = self
            .lua
            .load(chunk)
            .set_name("@user_script")
            .into_function();
        self.charge.start(0);
        let f = compiled?;
        if chunk.len() <= MAX_CACHED_BODY_BYTES {
            if self.cache.len() >= MAX_CACHED_FUNCTIONS
                || self.cached_bytes + chunk.len() > MAX_CACHED_BODY_BYTES
            {
                self.forget();
            }
            self.cache.insert(sha.to_string(), f.clone());
            self.cached_bytes += chunk.len();
        }
        Ok(f)
    }

    /// Empties the function cache (the functions go at the next collection).
    fn forget(&mut self) {
        self.cache.clear();
        self.cached_bytes = 0;
    }

    /// How many functions are cached.
    #[cfg(test)]
    pub fn cached(&self) -> usize {
        self.cache.len()
    }

    /// Resets what a run counts and sets its KEYS and ARGV (ReusedStateIsClean).
    pub fn begin(&self, keys: &[Bytes], args: &[Bytes]) -> mlua::Result<()> {
        self.limits.executed.set(0);
        self.limits.over.set(false);
        self.limits.random.set(seeded(0));
        let lua = &self.lua;
        let keys = lua.create_sequence_from(
            keys.iter()
                .map(|k| lua.create_string(k))
                .collect::<mlua::Result<Vec<_>>>()?,
        )?;
        let argv = lua.create_sequence_from(
            args.iter()
                .map(|a| lua.create_string(a))
                .collect::<mlua::Result<Vec<_>>>()?,
        )?;
        self.charge.set_readonly(lua, &self.globals, false)?;
        let set = self
            .globals
            .raw_set("KEYS", keys)
            .and_then(|()| self.globals.raw_set("ARGV", argv));
        self.charge.set_readonly(lua, &self.globals, true)?;
        set?;
        // Setting the hook again restarts its countdown: the first hook of every run comes
        // after HOOK_EVERY instructions, whatever the last run left.
        let (limits, charge) = (self.limits.clone(), self.charge);
        lua.set_hook(
            HookTriggers::new().every_nth_instruction(HOOK_EVERY),
            move |_, _| {
                limits
                    .executed
                    .set(limits.executed.get() + u64::from(HOOK_EVERY));
                if limits.spent(charge) > MAX_INSTRUCTIONS {
                    limits.over.set(true);
                    return Err(mlua::Error::runtime(
                        "script exceeded the instruction limit",
                    ));
                }
                if charge.exceeded() {
                    return Err(mlua::Error::MemoryError("not enough memory".into()));
                }
                Ok(VmState::Continue)
            },
        );
        Ok(())
    }

    /// Makes `call` and `pcall` this run's `redis.call` and `redis.pcall`.
    pub fn set_calls(&self, call: Function, pcall: Function) -> mlua::Result<()> {
        self.charge.set_readonly(&self.lua, &self.redis, false)?;
        let set = self
            .redis
            .raw_set("call", call)
            .and_then(|()| self.redis.raw_set("pcall", pcall));
        self.charge.set_readonly(&self.lua, &self.redis, true)?;
        set
    }

    /// After a run that ended cleanly: collects the garbage of past runs once it passes
    /// [`GC_SLACK`]. Outside any run, so it decides nothing a script can see.
    pub fn after_run(&mut self) -> mlua::Result<()> {
        if self.lua.used_memory() > self.idle_heap + GC_SLACK {
            self.collect()?;
        }
        Ok(())
    }

    /// Collects all garbage now, and stops the collector again.
    pub fn collect(&mut self) -> mlua::Result<()> {
        self.lua.gc_collect()?;
        // A full collection restarts the collector in Lua 5.1.
        self.lua.gc_stop();
        self.idle_heap = self.lua.used_memory();
        Ok(())
    }
}

/// The limits cannot be caught: once one is hit, every `pcall`/`xpcall` that caught it
/// raises it again, up to the top, and no `xpcall` handler runs (the error raised from the
/// instruction hook reaches the handler with hooks off, where `local function h(e) return
/// h(e) end` looped for good). Other errors reach the script as Redis 7 hands them over
/// (`errors.rs`: `pcall` gives an error table's `err` string). `raw_pcall` and `raw_xpcall`
/// are `protect.rs`'s, which never push past their frame.
fn install_uncatchable_limits(
    lua: &Lua,
    limits: Rc<Limits>,
    charge: Charge,
    raw_pcall: Function,
    raw_xpcall: Function,
) -> mlua::Result<()> {
    let globals = lua.globals();
    let over = lua.create_function(move |_, ()| Ok(limits.over.get() || charge.exceeded()))?;
    lua.load(
        r#"
        local over, rawpcall, rawxpcall, error, for_pcall, for_handler, type, select = ...
        local function pass(convert, ok, ...)
            if ok then return ok, ... end
            if over() then error('script exceeded the instruction limit', 0) end
            return ok, convert((...))
        end
        pcall = function(...) return pass(for_pcall, rawpcall(...)) end
        xpcall = function(...)
            local f, h = ...
            if select('#', ...) < 2 then
                error("bad argument #2 to 'xpcall' (value expected)", 2)
            end
            if type(h) == 'function' then
                local handler = h
                h = function(e)
                    if over() then return e end
                    return handler(for_handler(e))
                end
            end
            return pass(for_handler, rawxpcall(f, h))
        end
        "#,
    )
    .set_name("=limits")
    .call::<()>((
        over,
        raw_pcall,
        raw_xpcall,
        globals.raw_get::<Function>("error")?,
        errors::caught_by_pcall(lua)?,
        errors::caught_by_handler(lua)?,
        globals.raw_get::<Function>("type")?,
        globals.raw_get::<Function>("select")?,
    ))
}

/// Marks `table`, the tables it holds and their metatables read-only.
fn make_readonly(
    lua: &Lua,
    charge: Charge,
    table: &Table,
    seen: &mut HashSet<usize>,
) -> mlua::Result<()> {
    if !seen.insert(table.to_pointer() as usize) {
        return Ok(());
    }
    let mut inner = Vec::new();
    for pair in table.clone().pairs::<Value, Value>() {
        if let (_, Value::Table(t)) = pair? {
            inner.push(t);
        }
    }
    inner.extend(table.metatable());
    for t in &inner {
        make_readonly(lua, charge, t, seen)?;
    }
    charge.set_readonly(lua, table, true)
}

/// Builds the `redis` table (`call` and `pcall` are set for each run): the reply helpers and
/// the constants scripts use, with Redis 7.0's argument checks and error texts (`helpers.rs`).
fn redis_table(lua: &Lua) -> mlua::Result<Table> {
    let redis = lua.create_table()?;
    super::helpers::install(lua, &redis)?;
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
    Ok(redis)
}

/// Redis 7's `math.random`/`math.randomseed`: Redis's `redisLrand48` (the 48-bit linear
/// congruential generator of `rand48`), reset with seed 0 before every run
/// ([`Interpreter::begin`]), so every run sees the same sequence.
fn install_random(lua: &Lua, limits: Rc<Limits>) -> mlua::Result<()> {
    const MAX: f64 = i32::MAX as f64;
    let math: Table = lua.globals().raw_get("math")?;
    let next = {
        let limits = limits.clone();
        move || {
            let x = limits
                .random
                .get()
                .wrapping_mul(0x5_deec_e66d)
                .wrapping_add(0xb)
                & 0xffff_ffff_ffff;
            limits.random.set(x);
            ((x >> 17) as f64 % MAX) / MAX
        }
    };
    // Lua 5.1's `math_random` and `math_randomseed` around the generator: `luaL_checkint`
    // arguments (truncated), "interval is empty", at most two arguments.
    math.raw_set(
        "random",
        lua.create_function(move |lua, args: MultiValue| {
            let r = next();
            let int = |n: usize| int_arg(lua, "random", n, args.get(n - 1));
            match args.len() {
                0 => Ok(r),
                1 => {
                    let u = int(1)?;
                    if u < 1.0 {
                        return Err(errors::lib_error(
                            lua,
                            "bad argument #1 to 'random' (interval is empty)",
                        ));
                    }
                    Ok((r * u).floor() + 1.0)
                }
                2 => {
                    let (l, u) = (int(1)?, int(2)?);
                    if l > u {
                        return Err(errors::lib_error(
                            lua,
                            "bad argument #2 to 'random' (interval is empty)",
                        ));
                    }
                    Ok((r * (u - l + 1.0)).floor() + l)
                }
                _ => Err(errors::lib_error(lua, "wrong number of arguments")),
            }
        })?,
    )?;
    math.raw_set(
        "randomseed",
        lua.create_function(move |lua, args: MultiValue| {
            let seed = int_arg(lua, "randomseed", 1, args.front())?;
            limits.random.set(seeded(seed as i32));
            Ok(())
        })?,
    )?;
    Ok(())
}

/// `luaL_checkint`: a number (or numeric string) truncated to an integer, or the error for
/// argument `n` of `name`.
fn int_arg(lua: &Lua, name: &str, n: usize, v: Option<&Value>) -> mlua::Result<f64> {
    let x = match v {
        Some(Value::Integer(i)) => Some(*i as f64),
        Some(Value::Number(x)) => Some(*x),
        Some(Value::String(s)) => s.to_str().ok().and_then(|s| s.trim().parse::<f64>().ok()),
        _ => None,
    };
    match x {
        // `(int)(ptrdiff_t)x` on x86-64: to 64 bits (i64::MIN when out of range), then wrapped.
        Some(x) if x.is_nan() || x.abs() >= 9_223_372_036_854_775_808.0 => Ok(0.0),
        Some(x) => Ok(f64::from(x as i64 as i32)),
        None => {
            let got = v.map_or("no value", |v| v.type_name());
            Err(errors::lib_error(
                lua,
                format!("bad argument #{n} to '{name}' (number expected, got {got})"),
            ))
        }
    }
}

/// `redisSrand48(seed)`: the high 32 bits from the seed, the low 16 fixed.
fn seeded(seed: i32) -> u64 {
    0x330e | (u64::from(seed as u32) << 16)
}

/// Gives `_G` Redis 7's metatable: a write is refused (before the table is marked read-only,
/// which refuses it first with the same text), a read of a missing global is an error.
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
