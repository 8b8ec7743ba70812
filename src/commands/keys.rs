//! Strings and keys: GET, SET, DEL/UNLINK, EXISTS, DBSIZE.
//!
//! # Format
//!
//! ```text
//! GET key                 → bulk value | nil
//! SET key value           → +OK      (options NX XX GET EX PX EXAT PXAT KEEPTTL: not yet,
//!                                     answered with an error, never ignored)
//! DEL key [key ...]       → :deleted count        (UNLINK is the same)
//! EXISTS key [key ...]    → :count (a key named twice counts twice, as Redis)
//! DBSIZE                  → :number of live keys
//! ```

use super::{read_gate, write, CommandError, CommandResult, Session};

/// Runs `name` if it belongs to this family.
pub async fn execute(
    ctx: &ServerContext,
    session: &mut Session,
    name: &str,
    parse: &mut Parse,
) -> Option<CommandResult> {
    Some(match name {
        "get" => get(ctx, session, parse).await,
        "set" => set(ctx, session, parse).await,
        "del" | "unlink" => del(ctx, session, parse).await,
        "exists" => exists(ctx, session, parse).await,
        "dbsize" => dbsize(ctx, session, parse).await,
        _ => return None,
    })
}
use crate::protocol::{Frame, Parse, ParseError};
use crate::server::ServerContext;
use crate::store::{Op, Response};

pub async fn get(ctx: &ServerContext, session: &mut Session, parse: &mut Parse) -> CommandResult {
    let key = parse.next_bytes().map_err(|_| arity("get"))?;
    parse.finish().map_err(|_| arity("get"))?;
    read_gate(ctx, session).await?;
    let st = ctx.node.sm.read();
    Ok(match st.store.get(&key) {
        Some(kv) => Frame::Bulk(kv.value),
        None => Frame::Null,
    })
}

pub async fn set(ctx: &ServerContext, session: &mut Session, parse: &mut Parse) -> CommandResult {
    let key = parse.next_bytes().map_err(|_| arity("set"))?;
    let value = parse.next_bytes().map_err(|_| arity("set"))?;
    if parse.remaining() > 0 {
        let opt = parse.peek_upper().unwrap_or_default();
        return Err(match opt.as_str() {
            "NX" | "XX" | "GET" | "EX" | "PX" | "EXAT" | "PXAT" | "KEEPTTL" => {
                CommandError::Reply(format!("ERR SET option {opt} is not supported yet"))
            }
            _ => CommandError::Parse(ParseError::Syntax),
        });
    }
    match write(ctx, session, Op::Put { key, value }).await? {
        Response::Put { .. } => Ok(Frame::ok()),
        other => Err(unexpected(other)),
    }
}

pub async fn del(ctx: &ServerContext, session: &mut Session, parse: &mut Parse) -> CommandResult {
    let name = parse.command_name();
    let mut keys = Vec::new();
    while let Ok(k) = parse.next_bytes() {
        keys.push(k);
    }
    if keys.is_empty() {
        return Err(arity(&name));
    }
    match write(ctx, session, Op::Delete { keys }).await? {
        Response::Deleted { deleted, .. } => Ok(Frame::Integer(deleted as i64)),
        other => Err(unexpected(other)),
    }
}

pub async fn exists(
    ctx: &ServerContext,
    session: &mut Session,
    parse: &mut Parse,
) -> CommandResult {
    let mut keys = Vec::new();
    while let Ok(k) = parse.next_bytes() {
        keys.push(k);
    }
    if keys.is_empty() {
        return Err(arity("exists"));
    }
    read_gate(ctx, session).await?;
    let st = ctx.node.sm.read();
    let n = keys.iter().filter(|k| st.store.get(k).is_some()).count();
    Ok(Frame::Integer(n as i64))
}

pub async fn dbsize(
    ctx: &ServerContext,
    session: &mut Session,
    parse: &mut Parse,
) -> CommandResult {
    parse.finish().map_err(|_| arity("dbsize"))?;
    read_gate(ctx, session).await?;
    Ok(Frame::Integer(ctx.node.sm.read().store.len() as i64))
}

fn arity(name: &str) -> CommandError {
    CommandError::Parse(ParseError::WrongArity(name.to_string()))
}

fn unexpected(r: Response) -> CommandError {
    CommandError::Reply(format!("ERR unexpected store response {r:?}"))
}
