//! Redis 7's shebang line (`#!lua flags=no-writes,allow-oom`), checked as Redis 7.0's
//! `evalExtractShebangFlags` checks it, with the same error texts: the line is split as
//! `sdssplitargs` splits (quotes and escapes included), its words compared as C strings (up to
//! a NUL byte, as `strcmp` compares). Decided from the body's bytes alone, so every node that
//! checks an entry decides alike (ShebangFromBytes). Used by the script commands (before a
//! script is proposed or run) and by the interpreter (`lua/engine.rs`). The line is split by the
//! inline-command framer's `sdssplitargs` port.

use crate::protocol::framer::split_args;

/// The flags Redis 7.0 knows (`scripts_flags_def`). Only `no-writes` changes what a redraft
/// script may do; the others are accepted and mean nothing here (no OOM, stale or cluster
/// modes to relax).
const FLAGS: [&[u8]; 5] = [
    b"no-writes",
    b"allow-oom",
    b"allow-stale",
    b"no-cluster",
    b"allow-cross-slot-keys",
];

/// What a script's first line says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Shebang {
    /// Bytes of the body before the code: the shebang line without its `\n`, so the code's
    /// line numbers hold (0 without a shebang).
    pub skip: usize,
    /// The body starts with a shebang: it runs by its flags (no flags: it may write, and
    /// `EVAL_RO` refuses it), not in Redis's compatibility mode.
    pub declared: bool,
    /// `flags=no-writes`: the script refuses writes.
    pub no_writes: bool,
}

/// Redis's refusal of a script run read-only (`EVAL_RO`, `EVALSHA_RO`) whose shebang does not
/// say `no-writes`.
pub(crate) const WRITE_FLAG_RO: &str =
    "ERR Can not execute a script with write flag using *_ro command.";

/// Checks `body`'s shebang line: what it says, or Redis's error text (`ERR ...`).
pub(crate) fn shebang(body: &[u8]) -> Result<Shebang, String> {
    if !body.starts_with(b"#!") {
        return Ok(Shebang {
            skip: 0,
            declared: false,
            no_writes: false,
        });
    }
    // `strchr(body, '\n')`: a NUL byte ends the search as the end of the body does.
    let end = match body.iter().position(|&b| b == b'\n' || b == 0) {
        Some(i) if body[i] == b'\n' => i,
        _ => return Err("ERR Invalid script shebang".into()),
    };
    let Some(parts) = split_args(&body[..end]) else {
        return Err("ERR Invalid engine in script shebang".into());
    };
    let text = |b: &[u8]| String::from_utf8_lossy(c_str(b)).into_owned();
    let engine = parts.first().map(|b| &b[..]).unwrap_or_default();
    if c_str(engine) != b"#!lua" {
        return Err(format!(
            "ERR Unexpected engine in script shebang: {}",
            text(engine)
        ));
    }
    let mut no_writes = false;
    for part in &parts[1..] {
        if !c_str(part).starts_with(b"flags=") {
            return Err(format!("ERR Unknown lua shebang option: {}", text(part)));
        }
        // `sdssplitlen` over the whole word (past a NUL too); nothing after `=`, no flags.
        let list = &part[6..];
        if list.is_empty() {
            continue;
        }
        for flag in list.split(|&b| b == b',') {
            let name = c_str(flag);
            if !FLAGS.contains(&name) {
                return Err(format!(
                    "ERR Unexpected flag in script shebang: {}",
                    text(flag)
                ));
            }
            no_writes |= name == b"no-writes";
        }
    }
    Ok(Shebang {
        skip: end,
        declared: true,
        no_writes,
    })
}

/// `s` up to its first NUL byte, as C's string functions read it.
fn c_str(s: &[u8]) -> &[u8] {
    s.iter().position(|&b| b == 0).map_or(s, |i| &s[..i])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(body: &str) -> String {
        shebang(body.as_bytes()).unwrap_err()
    }

    #[test]
    fn flags_and_words_as_redis_splits_them() {
        let ok = |body: &str| shebang(body.as_bytes()).unwrap();
        assert!(!ok("return 1").declared);
        assert_eq!(ok("#!lua\nreturn 1").skip, 5);
        assert!(!ok("#!lua flags=\nreturn 1").no_writes);
        assert!(ok("#!lua flags=allow-oom,no-writes\nreturn 1").no_writes);
        assert!(ok("#!lua\tflags=no-writes\r\nreturn 1").no_writes);
        assert!(ok("#!\"lua\" 'flags=no-writes'\nreturn 1").no_writes);
        assert!(ok("#!lua flags=\"no-\\x77rites\\x00z\"\nreturn 1").no_writes);
        assert_eq!(
            err("#!lua flags=a,\nx"),
            "ERR Unexpected flag in script shebang: a"
        );
        assert_eq!(
            err("#!lua flags=no-writes,\nx"),
            "ERR Unexpected flag in script shebang: "
        );
        assert_eq!(
            err("#!lua \"x\\x00y\"\nx"),
            "ERR Unknown lua shebang option: x"
        );
        assert_eq!(
            err("#!lua\x0bflags=\nx"),
            "ERR Unexpected engine in script shebang: #!lua\x0bflags="
        );
        assert_eq!(err("#!lua 'a'b\nx"), "ERR Invalid engine in script shebang");
        assert_eq!(
            err("#!lua \"a\nx\""),
            "ERR Invalid engine in script shebang"
        );
        assert_eq!(err("#!lua\0\nx"), "ERR Invalid script shebang");
        assert_eq!(err("#!lua"), "ERR Invalid script shebang");
    }
}
