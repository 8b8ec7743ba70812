//! The errors a script can catch, as Redis 7.0 hands them over: what `pcall` returns and what
//! an `xpcall` handler receives for an error raised by `redis.call` (a [`ReplyError`]), by a
//! library function written in Rust (a [`LibError`]), or by `error({err = ...})`.
//!
//! Redis 7 replaces `pcall` with its own (`luaRedisPcall`), which turns an error table into
//! its `err` string: `pcall(redis.call, 'nosuch')` gives `false, "ERR Unknown Redis command
//! called from script"`. An `xpcall` handler sees the table itself (`e.err`). An error raised
//! from Rust reaches Lua as an mlua error object (a userdata, which a script could neither read
//! nor return): it is never handed over as one.

use mlua::{Function, Lua, Value};

use super::fuel::{lib_error_text, LibError};

/// An error reply raised by `redis.call` (or by a `redis.*` helper that raises, as
/// `redis.log()` with no arguments): its text, code first.
#[derive(Debug)]
pub struct ReplyError(pub String);

impl std::fmt::Display for ReplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ReplyError {}

/// Raises `text` as `redis.call` raises an error reply.
pub fn raise(text: impl Into<String>) -> mlua::Error {
    mlua::Error::external(ReplyError(text.into()))
}

/// The [`ReplyError`] inside an error raised from Rust, if it is one.
pub fn reply_error(e: &mlua::Error) -> Option<String> {
    match e {
        mlua::Error::CallbackError { cause, .. } => reply_error(cause),
        mlua::Error::ExternalError(inner) => {
            inner.downcast_ref::<ReplyError>().map(|r| r.0.clone())
        }
        _ => None,
    }
}

/// A library function's error raised from Rust, with the script's line first as `luaL_error`
/// writes it (`user_script:3: Cannot serialise ...`), as the C function would have raised it.
pub fn lib_error(lua: &Lua, text: impl Into<String>) -> mlua::Error {
    let mut text = text.into();
    if let Some(d) = lua.inspect_stack(1) {
        if d.source().source.as_deref() == Some("@user_script") {
            text = format!("user_script:{}: {text}", d.curr_line());
        }
    }
    mlua::Error::external(LibError(text))
}

fn err_table(lua: &Lua, text: &str) -> mlua::Result<Value> {
    let t = lua.create_table()?;
    t.raw_set("err", text)?;
    Ok(Value::Table(t))
}

/// What `pcall` returns in place of an error (`luaRedisPcall`): the `err` string of an error
/// table or of a reply error, a library error's message; any other value unchanged.
pub fn caught_by_pcall(lua: &Lua) -> mlua::Result<Function> {
    lua.create_function(|lua, v: Value| {
        Ok(match &v {
            Value::Error(e) => match reply_error(e).or_else(|| lib_error_text(e).map(String::from))
            {
                Some(text) => Value::String(lua.create_string(text)?),
                None => v,
            },
            Value::Table(t) => match t.raw_get::<Value>("err")? {
                s @ Value::String(_) => s,
                // `lua_isstring` holds for a number too; its text is Lua's.
                n @ (Value::Integer(_) | Value::Number(_)) => {
                    let tostring: Function = lua.globals().raw_get("tostring")?;
                    tostring.call(n)?
                }
                _ => v,
            },
            _ => v,
        })
    })
}

/// What an `xpcall` handler receives: a reply error as its table `{err = ...}`, a library
/// error's message; any other value unchanged.
pub fn caught_by_handler(lua: &Lua) -> mlua::Result<Function> {
    lua.create_function(|lua, v: Value| {
        Ok(match &v {
            Value::Error(e) => match reply_error(e) {
                Some(text) => err_table(lua, &text)?,
                None => match lib_error_text(e) {
                    Some(text) => Value::String(lua.create_string(text)?),
                    None => v,
                },
            },
            _ => v,
        })
    })
}
