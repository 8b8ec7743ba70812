//! Connection and server commands: routes each to its file, `connection.rs` (PING ECHO HELLO
//! AUTH SELECT RESET READONLY READWRITE READMODE CLIENT), `cluster.rs` (RAFT.* and SHUTDOWN) or
//! `server.rs` (COMMAND CONFIG INFO ROLE TIME). `QUIT` is answered by the dispatcher itself,
//! since it closes the connection.
//!
//! Helpers both files share live here: Redis's `HELP` reply and the arity error.

use super::{cluster, connection, server, CommandError, CommandResult, Session};
use crate::protocol::{Frame, Parse, ParseError};
use crate::server::ServerContext;

/// The Redis version redraft speaks for (`HELLO`'s `version`, `INFO`'s `redis_version`).
pub const REDIS_VERSION: &str = "7.2.0";

/// Runs `name` if it belongs to this family.
pub async fn execute(
    ctx: &ServerContext,
    session: &mut Session,
    name: &str,
    parse: &mut Parse,
) -> Option<CommandResult> {
    if let Some(result) = connection::execute(ctx, session, name, parse) {
        return Some(result);
    }
    if let Some(result) = cluster::execute(ctx, session, name, parse).await {
        return Some(result);
    }
    server::execute(ctx, session, name, parse)
}

/// The arity error for `name` (`client|setname` for a subcommand).
pub fn arity(name: &str) -> CommandError {
    CommandError::Parse(ParseError::WrongArity(name.to_string()))
}

/// Redis's `HELP` reply (`networking.c` `addReplyHelp`): a header naming the container, the
/// given lines, and the `HELP` entry, each a simple string.
pub fn help_reply(container: &str, lines: &[&str]) -> Frame {
    let mut out = Vec::with_capacity(lines.len() + 3);
    out.push(Frame::Simple(format!(
        "{container} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    )));
    out.extend(lines.iter().map(|l| Frame::Simple(l.to_string())));
    out.push(Frame::Simple("HELP".into()));
    out.push(Frame::Simple("    Prints this help.".into()));
    Frame::Array(out)
}

/// Redis-style glob (`*`, `?`, `[...]` with ranges and `^`, `\` escapes), ASCII case-insensitive
/// when `nocase`, as Redis's `stringmatchlen`. Iterative, so no pattern can exhaust the stack.
pub fn glob_match(pattern: &[u8], s: &[u8], nocase: bool) -> bool {
    let eq = |a: u8, b: u8| {
        if nocase {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    // Backtracking over the last `*` only: linear in practice, bounded by |p| × |s|.
    let (mut p, mut i) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        let step = match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, i));
                p += 1;
                continue;
            }
            Some(b'?') => Some(p + 1),
            Some(b'[') => match_class(pattern, p, s[i], nocase),
            Some(b'\\') if p + 1 < pattern.len() => eq(pattern[p + 1], s[i]).then_some(p + 2),
            Some(&c) => eq(c, s[i]).then_some(p + 1),
            None => None,
        };
        match step {
            Some(next) => {
                p = next;
                i += 1;
            }
            None => match star {
                Some((sp, si)) => {
                    p = sp + 1;
                    i = si + 1;
                    star = Some((sp, si + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|&c| c == b'*')
}

/// Matches `c` against the class starting at `pattern[p] == b'['`; returns the index after it.
fn match_class(pattern: &[u8], p: usize, c: u8, nocase: bool) -> Option<usize> {
    let mut j = p + 1;
    let negate = pattern.get(j) == Some(&b'^');
    if negate {
        j += 1;
    }
    let fold = |b: u8| if nocase { b.to_ascii_lowercase() } else { b };
    let c = fold(c);
    let mut matched = false;
    loop {
        match pattern.get(j) {
            None => break, // Unterminated class: Redis treats the end as closing it.
            Some(b']') => {
                j += 1;
                break;
            }
            Some(b'\\') if j + 1 < pattern.len() => {
                matched |= fold(pattern[j + 1]) == c;
                j += 2;
            }
            Some(&lo) if pattern.get(j + 1) == Some(&b'-') && j + 2 < pattern.len() => {
                let hi = pattern[j + 2];
                let (lo, hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
                matched |= (fold(lo)..=fold(hi)).contains(&c) || (lo..=hi).contains(&c);
                j += 3;
            }
            Some(&b) => {
                matched |= fold(b) == c;
                j += 1;
            }
        }
    }
    (matched != negate).then_some(j)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_like_stringmatchlen() {
        let cases: &[(&str, &str, bool, bool)] = &[
            ("*", "", false, true),
            ("*", "anything", false, true),
            ("max*", "maxclients", false, true),
            ("*max*", "proto-max-bulk-len", false, true),
            ("MAX*", "maxclients", true, true),
            ("MAX*", "maxclients", false, false),
            ("h?llo", "hello", false, true),
            ("h?llo", "hllo", false, false),
            ("h[ae]llo", "hallo", false, true),
            ("h[^e]llo", "hello", false, false),
            ("h[a-c]llo", "hbllo", false, true),
            ("h\\*llo", "h*llo", false, true),
            ("h\\*llo", "hello", false, false),
            ("a*b*c", "axxbyyc", false, true),
            ("a*b*c", "axxbyy", false, false),
            ("get*", "getrange", false, true),
            ("client|*", "client|list", false, true),
        ];
        for &(p, s, nocase, want) in cases {
            assert_eq!(
                glob_match(p.as_bytes(), s.as_bytes(), nocase),
                want,
                "{p:?} {s:?} nocase={nocase}"
            );
        }
        let evil = "*a".repeat(50);
        assert!(!glob_match(evil.as_bytes(), &[b'b'; 200], false));
    }

    #[test]
    fn help_reply_shape() {
        let Frame::Array(lines) = help_reply("CLIENT", &["ID", "    Return the ID."]) else {
            panic!("array")
        };
        assert_eq!(
            lines[0],
            Frame::Simple("CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:".into())
        );
        assert_eq!(
            lines.last(),
            Some(&Frame::Simple("    Prints this help.".into()))
        );
    }
}
