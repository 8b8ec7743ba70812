//! Script bodies: their SHA-1 (Redis's script names), this node's cache of them
//! (ScriptsRemembered, `store/script.rs`), and Redis 7's shebang line and compile check.
//! Used by the script commands (`scripting/mod.rs`) and the interpreter (`lua/`); runs no
//! script.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use bytes::Bytes;
use mlua::{Lua, LuaOptions, StdLib};

/// The most script bodies a node remembers (as many as the cluster keeps,
/// `store::MAX_SCRIPTS`); past it, an arbitrary old one is forgotten (its EVALSHA then answers
/// NOSCRIPT, which clients handle by sending the body).
pub const MAX_CACHED_SCRIPTS: usize = crate::store::MAX_SCRIPTS;

pub(crate) use super::shebang::shebang;
pub(crate) use crate::store::sha1hex;

fn cache() -> &'static Mutex<HashMap<String, Bytes>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Bytes>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

pub(crate) fn lookup(sha: &str) -> Option<Bytes> {
    let cache = cache().lock().unwrap_or_else(|p| p.into_inner());
    cache.get(&sha.to_ascii_lowercase()).cloned()
}

pub(crate) fn remember(body: &Bytes) -> String {
    let sha = sha1hex(body);
    let mut cache = cache().lock().unwrap_or_else(|p| p.into_inner());
    if !cache.contains_key(&sha) {
        if cache.len() >= MAX_CACHED_SCRIPTS {
            if let Some(old) = cache.keys().next().cloned() {
                cache.remove(&old);
            }
        }
        cache.insert(sha.clone(), body.clone());
    }
    sha
}

/// Forgets every body (SCRIPT FLUSH).
pub(crate) fn forget_all() {
    cache().lock().unwrap_or_else(|p| p.into_inner()).clear();
}

/// Checks `body`'s shebang and compiles it without running it (SCRIPT LOAD): Redis's error
/// text if either fails.
pub(crate) fn compile(body: &[u8]) -> Result<(), String> {
    let skip = shebang(body)?.skip;
    let lua = Lua::new_with(StdLib::NONE, LuaOptions::default()).map_err(|e| format!("ERR {e}"))?;
    match lua
        .load(&body[skip..])
        .set_name("@user_script")
        .into_function()
    {
        Ok(_) => Ok(()),
        Err(mlua::Error::SyntaxError { message, .. }) => Err(format!(
            "ERR Error compiling script (new function): {message}"
        )),
        Err(e) => Err(format!("ERR {e}")),
    }
}
