//! The Lua 5.1 interpreter as the store's script host (`store::ScriptHost`): `engine.rs` runs a
//! script on the thread's long-lived interpreter (`interpreter.rs`: built once, read-only
//! libraries, compiled functions cached by SHA-1), `calls.rs` answers its `redis.call`s through the dispatcher's planners, `libs.rs`
//! adds `cjson` and `bit`, `fuel.rs` charges allocation and pattern matching to the script's
//! instruction budget. Installed
//! once per process at start-up ([`install`]), before the log replays.

mod calls;
mod engine;
mod errors;
mod fuel;
mod helpers;
mod interpreter;
mod libs;
mod protect;

#[cfg(test)]
mod lua_test;
#[cfg(test)]
mod reuse_test;
#[cfg(test)]
mod stack_test;

use bytes::Bytes;

use crate::commands::scripting::body::{forget_all, remember};
use crate::store::{ScriptCalls, ScriptEnd, ScriptHost, ScriptRun};

/// The Lua interpreter as the store's script host.
struct LuaHost;

impl ScriptHost for LuaHost {
    fn run(&self, run: &ScriptRun<'_>, calls: &mut dyn ScriptCalls) -> ScriptEnd {
        engine::run(run, calls)
    }

    fn remember(&self, body: &Bytes) {
        remember(body);
    }

    fn flush(&self) {
        forget_all();
        interpreter::forget_functions();
    }
}

/// Installs the Lua interpreter as this process's script host (once, at start-up).
pub fn install() {
    crate::store::install_host(Box::new(LuaHost));
}
