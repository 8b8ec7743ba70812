//! The `redis` table's helpers other than `call` and `pcall`, with Redis 7.0's argument
//! checks and texts (`script_lua.c`): `sha1hex`, `error_reply`, `status_reply`, `log`,
//! `set_repl`, `replicate_commands`, `breakpoint`, `debug`, `REDIS_VERSION` and
//! `REDIS_VERSION_NUM`.
//!
//! A helper that Redis makes raise (`redis.log()` with no arguments) raises as `redis.call`
//! does ([`errors::raise`]): the script's line is in the reply and `pcall` gives the text. The
//! helpers are Rust functions, not Lua ones: `return redis.log()` would otherwise be a tail
//! call that drops the script's frame, and with it the line.

use mlua::{Lua, MultiValue, Table, Value};

use super::errors::raise;
use crate::commands::scripting::body::sha1hex;
use crate::commands::REDIS_VERSION;

/// `lua_isnumber` and `lua_tonumber`: a number, or a string Lua converts to one.
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Integer(i) => Some(*i as f64),
        Value::Number(n) => Some(*n),
        Value::String(s) => {
            let s = s.to_str().ok()?;
            let t = s.trim();
            match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                Some(hex) => u64::from_str_radix(hex, 16).ok().map(|n| n as f64),
                None => t.parse::<f64>().ok().filter(|_| {
                    // Rust accepts "inf" and "nan", Lua's strtod on glibc too; both are fine.
                    !t.is_empty()
                }),
            }
        }
        _ => None,
    }
}

/// `lua_tolstring`: a string's bytes, a number's Lua text; nothing for any other value.
fn bytes(v: &Value) -> Vec<u8> {
    match v {
        Value::String(s) => s.as_bytes().to_vec(),
        Value::Integer(i) => i.to_string().into_bytes(),
        Value::Number(n) => super::libs::number_text(*n).into_bytes(),
        _ => Vec::new(),
    }
}

/// Sets the helpers on `redis`.
pub(super) fn install(lua: &Lua, redis: &Table) -> mlua::Result<()> {
    redis.raw_set(
        "sha1hex",
        lua.create_function(|_, args: MultiValue| {
            if args.len() != 1 {
                return Err(raise("ERR wrong number of arguments"));
            }
            Ok(sha1hex(&bytes(&args[0])))
        })?,
    )?;
    redis.raw_set(
        "log",
        lua.create_function(|_, args: MultiValue| {
            if args.len() < 2 {
                return Err(raise("ERR redis.log() requires two arguments or more."));
            }
            let Some(level) = number(&args[0]) else {
                return Err(raise("ERR First argument must be a number (log level)."));
            };
            if !(0..=3).contains(&(level as i32)) {
                return Err(raise("ERR Invalid debug level."));
            }
            // Nothing is logged: every node would log every script's lines.
            Ok(())
        })?,
    )?;
    redis.raw_set(
        "set_repl",
        lua.create_function(|_, args: MultiValue| {
            if args.len() != 1 {
                return Err(raise("ERR redis.set_repl() requires two arguments."));
            }
            let flags = number(&args[0]).unwrap_or(0.0) as i32;
            if flags & !3 != 0 {
                return Err(raise(
                    "ERR Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.",
                ));
            }
            // A script is one entry applied by every node: there is nothing to choose.
            Ok(())
        })?,
    )?;
    redis.raw_set(
        "replicate_commands",
        lua.create_function(|_, _: MultiValue| Ok(true))?,
    )?;
    // Outside the debugger (which redraft does not have) these do nothing.
    redis.raw_set(
        "breakpoint",
        lua.create_function(|_, _: MultiValue| Ok(false))?,
    )?;
    redis.raw_set("debug", lua.create_function(|_, _: MultiValue| Ok(()))?)?;
    redis.raw_set("REDIS_VERSION", REDIS_VERSION)?;
    let num = REDIS_VERSION
        .split('.')
        .map(|p| p.parse::<i64>().unwrap_or(0))
        .fold(0, |acc, p| (acc << 8) | p);
    redis.raw_set("REDIS_VERSION_NUM", num)?;
    // `error_reply` and `status_reply` return (never raise) a table, so they may stay Lua: a
    // wrong argument is the returned error `ERR wrong number or type of arguments`. An error
    // text gets Redis's form: `-CODE msg` keeps its code, anything else gets `ERR `, and the
    // message loses its leading and trailing CR and LF.
    lua.load(
        r#"
        local redis, select, type = ...
        local sub, find, gsub = string.sub, string.find, string.gsub
        local wrong = 'ERR wrong number or type of arguments'
        redis.error_reply = function(...)
            local msg = ...
            if select('#', ...) ~= 1 or type(msg) ~= 'string' then return {err = wrong} end
            if sub(msg, 1, 1) ~= '-' then msg = '-' .. msg end
            local code, text = 'ERR', sub(msg, 2)
            local space = find(msg, ' ', 1, true)
            if space then code, text = sub(msg, 2, space - 1), sub(msg, space + 1) end
            text = gsub(gsub(text, '^[\r\n]+', ''), '[\r\n]+$', '')
            return {err = code .. ' ' .. text}
        end
        redis.status_reply = function(...)
            local msg = ...
            if select('#', ...) ~= 1 or type(msg) ~= 'string' then return {err = wrong} end
            return {ok = msg}
        end
        "#,
    )
    .set_name("=redis")
    .call::<()>((
        redis.clone(),
        lua.globals().raw_get::<Value>("select")?,
        lua.globals().raw_get::<Value>("type")?,
    ))
}
