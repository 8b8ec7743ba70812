//! The permission check every command passes before it runs (Redis 7.0's
//! `ACLSelectorCheckCmd` for a user's root selector): the command (its bit, or an allowed first
//! argument), then every key its key specs find against the user's key patterns, with a
//! key spec's `access` flag needing read and `insert`/`delete`/`update` needing write, then
//! the channels of PUBLISH, SUBSCRIBE and PSUBSCRIBE against the channel patterns.
//!
//! Commands without key specs (KEYS, SCAN, FLUSHALL, DBSIZE) touch no named key, so key
//! patterns do not restrict them, as in Redis.

use bytes::Bytes;

use super::{rules, CompiledUser};
use crate::commands::table::{CmdId, CommandSpec};
use crate::glob;

/// Why a command was refused, with the argv index of the key or channel that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denied {
    Command,
    Key(usize),
    Channel(usize),
}

impl Denied {
    /// The error a client gets at top level (Redis 7.0's `processCommand` texts).
    pub fn reply(self, fullname: &str) -> String {
        match self {
            Denied::Command => {
                format!("NOPERM this user has no permissions to run the '{fullname}' command")
            }
            Denied::Key(_) => "NOPERM this user has no permissions to access one of the keys \
                               used as arguments"
                .into(),
            Denied::Channel(_) => "NOPERM this user has no permissions to access one of the \
                                   channels used as arguments"
                .into(),
        }
    }

    /// The end of a script's error (`The user executing the script ...`, Redis 7.0's
    /// `getAclErrorMessage`).
    pub fn script_reason(self) -> &'static str {
        match self {
            Denied::Command => "can't run this command or subcommand",
            Denied::Key(_) => {
                "can't access at least one of the keys mentioned in the command arguments"
            }
            Denied::Channel(_) => "can't publish to the channel mentioned in the command",
        }
    }

    /// `ACL DRYRUN`'s answer for a refusal (Redis 7.0's texts); `argv` is the command's.
    pub fn dryrun(self, fullname: &str, argv: &[Bytes]) -> String {
        let arg = |i: usize| String::from_utf8_lossy(argv.get(i).map_or(&[][..], |a| &a[..]));
        match self {
            Denied::Command => {
                format!("This user has no permissions to run the '{fullname}' command")
            }
            Denied::Key(i) => format!(
                "This user has no permissions to access the '{}' key",
                arg(i)
            ),
            Denied::Channel(i) => format!(
                "This user has no permissions to access the '{}' channel",
                arg(i)
            ),
        }
    }
}

/// The channels of a pub/sub command and whether each is a pattern (Redis's
/// `getChannelsFromCommand` for the commands redraft has): argv indexes.
pub fn channels_of(spec: &CommandSpec, argv: &[Bytes]) -> Vec<(usize, bool)> {
    match spec.name {
        "publish" => vec![(1, false)],
        "subscribe" => (1..argv.len()).map(|i| (i, false)).collect(),
        "psubscribe" => (1..argv.len()).map(|i| (i, true)).collect(),
        _ => Vec::new(),
    }
}

/// Checks `argv` (the command's name at 0), a call of `spec` (whose id is `id`), against
/// `user`'s permissions.
pub fn check_command(
    user: &CompiledUser,
    spec: &CommandSpec,
    id: CmdId,
    argv: &[Bytes],
) -> Result<(), Denied> {
    if user.unrestricted() {
        return Ok(());
    }
    if !user.perms.all && !spec.has_flag("no_auth") {
        let index = rules::index_of(id).ok_or(Denied::Command)?;
        if !user.perms.allows(index) {
            let first = if rules::entries()[index].parent { 2 } else { 1 };
            let allowed = argv.len() >= 2
                && argv.get(first).is_some_and(|arg| {
                    user.perms
                        .firstargs(index)
                        .iter()
                        .any(|a| a.as_bytes().eq_ignore_ascii_case(arg))
                });
            if !allowed {
                return Err(Denied::Command);
            }
        }
    }
    if !user.user.allkeys && !spec.key_specs.is_empty() {
        // SET's key spec has variable flags: it reads the key only with GET (Redis's
        // `setGetKeys`).
        let set_without_get =
            spec.name == "set" && !argv.iter().skip(3).any(|a| a.eq_ignore_ascii_case(b"get"));
        for (pos, flags) in spec.key_positions(argv) {
            let read = flags.contains(&"access") && !set_without_get;
            let write = flags
                .iter()
                .any(|f| matches!(*f, "insert" | "delete" | "update"));
            // KeysFiltered: a watch stream is read by any user; what it shows is cut to the
            // keys the user may read (`commands/stream.rs`).
            let watch_read = !write && argv[pos].starts_with(crate::watch::stream::STREAM_PREFIX);
            let ok = watch_read
                || user.user.keys.iter().any(|p| {
                    (p.read || !read)
                        && (p.write || !write)
                        && glob::matches(&p.pattern, &argv[pos])
                });
            if !ok {
                return Err(Denied::Key(pos));
            }
        }
    }
    if !user.user.allchannels {
        for (pos, is_pattern) in channels_of(spec, argv) {
            let channel = &argv[pos];
            let ok = user.user.channels.iter().any(|p| {
                if is_pattern {
                    p == channel
                } else {
                    glob::matches(p, channel)
                }
            });
            if !ok {
                return Err(Denied::Channel(pos));
            }
        }
    }
    Ok(())
}
