//! Reply helpers every command family shares: how a planned write turns the store's answer into
//! its reply ([`WriteReply`]), a command result as the session's [`Outcome`], Redis's `HELP`
//! reply, map fields and bulk strings, verbatim text, and the error replies the dispatcher
//! itself sends (unknown command, `NOAUTH`). Builds frames only: runs nothing.

use bytes::Bytes;

use super::{CommandError, CommandResult, Outcome, Parse};
use crate::protocol::Frame;
use crate::store::{Response, ScriptValue};

/// The reply to a command's result: its frame, or its error as a RESP error.
pub(crate) fn reply(result: CommandResult) -> Outcome {
    match result {
        Ok(frame) => frame.into(),
        Err(e) => Frame::Error(e.to_string()).into(),
    }
}

/// How a write command turns the store's [`Response`] into its reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WriteReply {
    /// `Put` → `+OK` (SET without options).
    Put,
    /// `Set` → with `get` the previous value or nil; else `+OK` if written, nil if not (SET
    /// with options, GETSET).
    Set { get: bool },
    /// `Set` → `:1` if written, `:0` if not (SETNX).
    SetNx,
    /// `Value` → bulk or nil (GETDEL, INCRBYFLOAT).
    Value,
    /// `Integer` → the new value (INCR and friends), the count (HSET, HDEL).
    Integer,
    /// `Integer` → `+OK` (HMSET).
    IntegerOk,
    /// `Length` → the new length (APPEND, SETRANGE).
    Length,
    /// `Deleted` → how many keys were deleted (DEL, UNLINK).
    Deleted,
    /// `Deleted` → `+OK` (FLUSHDB, FLUSHALL).
    Flushed,
    /// `Applied` → `:1`/`:0` if `as_integer` (MSETNX, RENAMENX, CAS), else `+OK` (MSET, RENAME).
    Applied { as_integer: bool },
    /// `Compacted` → `+OK` (COMPACT).
    Compacted,
    /// `Script` → the script's reply (EVAL, EVALSHA); `Noop` → `+OK` (SCRIPT FLUSH).
    Script,
}

impl WriteReply {
    /// The reply to the store's answer; a refusal (`Response::Error`) is an error reply.
    pub fn frame(self, response: Response) -> CommandResult {
        let bulk_or_nil = |value: Option<Bytes>| value.map_or(Frame::Null, Frame::Bulk);
        match (self, response) {
            (_, Response::Error(e)) => Err(CommandError::Reply(e.to_string())),
            (Self::Put, Response::Put { .. }) => Ok(Frame::ok()),
            (Self::Set { get: true }, Response::Set { prev, .. }) => Ok(bulk_or_nil(prev)),
            (Self::Set { get: false }, Response::Set { written, .. }) => {
                Ok(if written { Frame::ok() } else { Frame::Null })
            }
            (Self::SetNx, Response::Set { written, .. }) => Ok(Frame::Integer(i64::from(written))),
            (Self::Value, Response::Value { value, .. }) => Ok(bulk_or_nil(value)),
            (Self::Integer, Response::Integer { value, .. }) => Ok(Frame::Integer(value)),
            (Self::IntegerOk, Response::Integer { .. }) => Ok(Frame::ok()),
            (Self::Length, Response::Length { length, .. }) => Ok(Frame::Integer(length as i64)),
            (Self::Deleted, Response::Deleted { deleted, .. }) => {
                Ok(Frame::Integer(deleted as i64))
            }
            (Self::Flushed, Response::Deleted { .. }) => Ok(Frame::ok()),
            (Self::Compacted, Response::Compacted { .. }) => Ok(Frame::ok()),
            (Self::Script, Response::Script { value, .. }) => script_frame(value),
            (Self::Script, Response::Noop { .. }) => Ok(Frame::ok()),
            (Self::Applied { as_integer }, Response::Applied { applied, .. }) => {
                Ok(if as_integer {
                    Frame::Integer(i64::from(applied))
                } else {
                    Frame::ok()
                })
            }
            (_, other) => Err(CommandError::Reply(format!(
                "ERR unexpected store response {other:?}"
            ))),
        }
    }
}

/// A script's reply as the client sees it; an error reply is the command's error.
pub(crate) fn script_frame(value: ScriptValue) -> CommandResult {
    fn frame(v: ScriptValue) -> Frame {
        match v {
            ScriptValue::Nil => Frame::Null,
            ScriptValue::Integer(i) => Frame::Integer(i),
            ScriptValue::Bulk(b) => Frame::Bulk(b),
            ScriptValue::Status(s) => Frame::Simple(s),
            ScriptValue::Error(e) => Frame::Error(e),
            ScriptValue::Array(items) => Frame::Array(items.into_iter().map(frame).collect()),
        }
    }
    match value {
        ScriptValue::Error(e) => Err(CommandError::Reply(e)),
        v => Ok(frame(v)),
    }
}

/// Redis's `HELP` reply (`networking.c` `addReplyHelp`): a header naming the container, the
/// given lines, and the `HELP` entry, each a simple string.
pub(crate) fn help_reply(container: &str, lines: &[&str]) -> Frame {
    let mut out = Vec::with_capacity(lines.len() + 3);
    out.push(Frame::Simple(format!(
        "{container} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    )));
    out.extend(lines.iter().map(|l| Frame::Simple(l.to_string())));
    out.push(Frame::Simple("HELP".into()));
    out.push(Frame::Simple("    Prints this help.".into()));
    Frame::Array(out)
}

/// A map field named by a static string (`REVISION`, `GETMETA`).
pub(crate) fn field(name: &'static str, value: Frame) -> (Frame, Frame) {
    (Frame::Bulk(Bytes::from_static(name.as_bytes())), value)
}

/// A bulk string of text.
pub(crate) fn bulk(s: impl Into<String>) -> Frame {
    Frame::Bulk(Bytes::from(s.into()))
}

/// Text replies that Redis sends as verbatim strings in RESP3 (`txt`), bulk strings in RESP2.
pub(crate) fn verbatim(text: String) -> Frame {
    Frame::Verbatim {
        format: *b"txt",
        text: Bytes::from(text),
    }
}

/// At most `max` bytes of `arg`, as text (invalid UTF-8 replaced), as Redis's `%.128s`.
pub(crate) fn truncated(arg: &[u8], max: usize) -> String {
    String::from_utf8_lossy(&arg[..arg.len().min(max)]).into_owned()
}

/// Redis's reply to a command it does not know (`server.c` `processCommand`): the name as sent
/// and the first arguments, quoted, up to 128 bytes of them.
pub(crate) fn unknown_command(raw_name: &[u8], parse: &mut Parse) -> CommandError {
    let mut args: Vec<u8> = Vec::new();
    while args.len() < 128 {
        let Ok(a) = parse.next_bytes() else { break };
        let room = 128 - args.len();
        args.push(b'\'');
        args.extend_from_slice(&a[..a.len().min(room)]);
        args.extend_from_slice(b"' ");
    }
    CommandError::Reply(format!(
        "ERR unknown command '{}', with args beginning with: {}",
        truncated(raw_name, 128),
        String::from_utf8_lossy(&args)
    ))
}

/// Redis's reply to a command sent before `AUTH` that needs it.
pub(crate) fn noauth() -> CommandError {
    CommandError::Reply("NOAUTH Authentication required.".into())
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
