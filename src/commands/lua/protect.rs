//! `pcall` and `xpcall` that never push past their Lua frame.
//!
//! Lua 5.1's own (`luaB_pcall`, `luaB_xpcall`) push the status after `lua_pcall` has returned
//! every result of the call: when the results fill the C function's frame (`L->top ==
//! L->ci->top`; a recursion such as `local function f() return pcall(f) end return f()`
//! returns 200), the push lands past the frame's reserved top, which a build with Lua's API
//! checks (a debug build) aborts on, killing the node, and a release build writes into slots
//! the frame never reserved. These push the status first and overwrite it in place, as Lua 5.2
//! does and Redis 7's `luaRedisPcall` does for `pcall`; neither raises a Lua error.

use std::os::raw::c_int;

use mlua::{ffi, Function, Lua};

/// `pcall(f, ...)`: `true` and `f`'s results, or `false` and the error. Called with no
/// argument it answers as Redis 7.0 does (`false, "attempt to call a boolean value"`: Redis
/// calls its own status slot).
unsafe extern "C-unwind" fn pcall(state: *mut ffi::lua_State) -> c_int {
    let argc = ffi::lua_gettop(state);
    // A C function is called with LUA_MINSTACK (20) free slots: this one pushes one.
    ffi::lua_pushboolean(state, 1);
    if argc == 0 {
        // [true] -> [error]
        ffi::lua_pcall(state, 0, ffi::LUA_MULTRET, 0);
        ffi::lua_pushboolean(state, 0);
        ffi::lua_insert(state, 1);
        return 2;
    }
    ffi::lua_insert(state, 1);
    // [true, f, args...] -> [true, results...] or [true, error]
    if ffi::lua_pcall(state, argc - 1, ffi::LUA_MULTRET, 0) != 0 {
        // [true, error] holds two slots of the twenty: room for one more.
        ffi::lua_pushboolean(state, 0);
        ffi::lua_replace(state, 1);
    }
    ffi::lua_gettop(state)
}

/// `xpcall(f, handler)` (the caller checks that both were given): `true` and `f`'s results,
/// or `false` and what the handler made of the error.
unsafe extern "C-unwind" fn xpcall(state: *mut ffi::lua_State) -> c_int {
    ffi::lua_settop(state, 2);
    // [f, handler] -> [handler, true, f]
    ffi::lua_pushboolean(state, 1);
    ffi::lua_insert(state, 1);
    ffi::lua_insert(state, 1);
    if ffi::lua_pcall(state, 0, ffi::LUA_MULTRET, 1) != 0 {
        // [handler, true, error]: three slots of the twenty.
        ffi::lua_pushboolean(state, 0);
        ffi::lua_replace(state, 2);
    }
    ffi::lua_remove(state, 1);
    ffi::lua_gettop(state)
}

/// The `pcall` and `xpcall` above as Lua functions, and the script runner: `run(f, handler)`
/// is `xpcall(f, handler)` cut to its first two values. mlua's `Function::call` reads the
/// results where they lie and copies a table or string one slot past them without making
/// room, so a call must not return a frame's worth (`return unpack(t)` with 8,000 values
/// tripped the same API check in `lua_pushvalue`).
pub fn functions(lua: &Lua) -> mlua::Result<(Function, Function, Function)> {
    // SAFETY: both only move values within their frame (at most one push, into the free
    // slots every C function is called with) and call through `lua_pcall`: neither raises.
    let (pcall, xpcall) = unsafe {
        (
            lua.create_c_function(pcall)?,
            lua.create_c_function(xpcall)?,
        )
    };
    let run = lua
        .load(
            "local xpcall = ... return function(f, h) local ok, v = xpcall(f, h) return ok, v end",
        )
        .set_name("=run")
        .call::<Function>(xpcall.clone())?;
    Ok((pcall, xpcall, run))
}
