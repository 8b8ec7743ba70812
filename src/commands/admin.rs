//! Connection and server commands: routes each to its file, `connection.rs` (PING ECHO HELLO
//! AUTH SELECT RESET READONLY READWRITE READMODE CLIENT), `cluster.rs` (RAFT.* and SHUTDOWN) or
//! `server.rs` (COMMAND CONFIG INFO ROLE TIME). `QUIT` is answered by the dispatcher itself,
//! since it closes the connection.
//!
//! Helpers both files share live here: Redis's `HELP` reply and the arity error.

use super::{cluster, connection, server, CommandError, CommandResult, Session};
use crate::context::ServerContext;
use crate::protocol::{Frame, Parse, ParseError};

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

#[cfg(test)]
mod tests {
    use super::*;

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
