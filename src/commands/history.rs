//! redraft's history commands (DESIGN §3, §5): reading a key as of a revision, listing its
//! versions, rolling it back, and compacting the history.
//!
//! Reads pass the read gate once and answer from the store's history window
//! (`store::Store::get_at`, `history`); below the compact revision they fail with
//! `-COMPACTED ... oldest available revision is <compact revision>`, above the current one with
//! `-ERR revision N is in the future ...`. ROLLBACK and COMPACT are one Raft entry each,
//! decided at apply (`store::Op::Rollback`, `Op::Compact`), so a rollback is atomic against
//! concurrent writes.
//!
//! # Format
//!
//! ```text
//! GETAT key revision       → bulk | nil (absent at that revision); revision 0 = latest; a
//!                            hash's version answers its fields as HGETALL does (a map)
//! HISTORY key [FROM rev] [TO rev] [COUNT n] [WITHAUTHORS]
//!                          → array of [revision (int), event (set|hset|hdel|del|expired),
//!                            value (a hash's: its fields, as HGETALL) | nil
//!                            (, author: the user who made the revision | nil, with
//!                            WITHAUTHORS)], oldest first; FROM 0 (default) = every stored version, TO 0
//!                            (default) = the current revision, COUNT 0 = none, default all
//! ROLLBACK key revision    → :revision after the rollback (a put of the value the key had at
//!                            revision, clearing its TTL; a delete if it was absent then, which
//!                            changes nothing, and writes no revision, if it is absent now)
//! COMPACT revision         → +OK | -COMPACTED (at or below the compact revision already)
//!                            | -ERR revision N is in the future ...
//! ```

use bytes::Bytes;

use super::{read_gate, CommandError, CommandResult, Plan, Session, WriteReply};
use crate::context::ServerContext;
use crate::protocol::{Frame, Parse, ParseError};
use crate::raft::DETACH_ABOVE_ITEMS;
use crate::store::{EventKind, Op};
use crate::store::{KeyValue, Store};
use crate::watch::stream::event_type_of;

/// A version's value as GETAT and HISTORY answer it: a string's bytes, or a hash's fields and
/// values as HGETALL answers them.
fn value_frame(kv: &KeyValue) -> Frame {
    match &kv.hash {
        Some(h) => Frame::Map(
            h.iter()
                .map(|(f, v)| (Frame::Bulk(f.clone()), Frame::Bulk(v.clone())))
                .collect(),
        ),
        None => Frame::Bulk(kv.value.clone()),
    }
}

fn store_error(e: crate::store::StoreError) -> CommandError {
    CommandError::Reply(e.to_string())
}

pub(super) async fn getat(
    ctx: &ServerContext,
    session: &mut Session,
    parse: &mut Parse,
) -> CommandResult {
    let key = parse.next_bytes()?;
    let revision = parse.next_u64()?;
    read_gate(ctx, session).await?;
    let kv = ctx
        .node
        .read_store(|store| store.get_at(&key, revision))
        .map_err(store_error)?;
    Ok(kv.map_or(Frame::Null, |kv| value_frame(&kv)))
}

pub(super) async fn history(
    ctx: &ServerContext,
    session: &mut Session,
    parse: &mut Parse,
) -> CommandResult {
    let key = parse.next_bytes()?;
    let (mut from, mut to, mut count) = (0u64, 0u64, usize::MAX);
    let mut with_authors = false;
    while parse.remaining() > 0 {
        let option = parse.next_string()?.to_ascii_uppercase();
        if option == "WITHAUTHORS" {
            with_authors = true;
            continue;
        }
        if parse.remaining() == 0 {
            return Err(ParseError::Syntax.into());
        }
        match option.as_str() {
            "FROM" => from = parse.next_u64()?,
            "TO" => to = parse.next_u64()?,
            "COUNT" => count = usize::try_from(parse.next_u64()?).unwrap_or(usize::MAX),
            _ => return Err(ParseError::Syntax.into()),
        }
    }
    read_gate(ctx, session).await?;
    let long = count > DETACH_ABOVE_ITEMS
        && ctx.node.read_store(|store| store.version_count(&key)) > DETACH_ABOVE_ITEMS;
    let read = move |store: &Store| {
        let events = store.history(&key, from, to, count)?;
        let authors: Vec<Option<Bytes>> = events
            .iter()
            .map(|e| store.author_of(e.revision.main).cloned())
            .collect();
        Ok((events, authors))
    };
    // LongReadsOffRaft (`raft/store_view.rs`): a key with a long history.
    let (events, authors) = if long {
        ctx.node.read_store_detached(read).await?
    } else {
        ctx.node.read_store(read)
    }
    .map_err(store_error)?;
    Ok(Frame::Array(
        events
            .iter()
            .zip(authors)
            .map(|(e, author)| {
                let value = match e.kind {
                    EventKind::Put => value_frame(&e.kv),
                    EventKind::Delete | EventKind::Expired => Frame::Null,
                };
                let mut entry = vec![
                    Frame::Integer(e.revision.main as i64),
                    Frame::Bulk(Bytes::from_static(event_type_of(e).as_bytes())),
                    value,
                ];
                if with_authors {
                    entry.push(author.map_or(Frame::Null, Frame::Bulk));
                }
                Frame::Array(entry)
            })
            .collect(),
    ))
}

pub(super) fn rollback(parse: &mut Parse) -> Result<Plan, CommandError> {
    let key = parse.next_bytes()?;
    let revision = parse.next_u64()?;
    Ok(Plan {
        op: Op::Rollback { key, revision },
        reply: WriteReply::Integer,
    })
}

pub(super) fn compact(parse: &mut Parse) -> Result<Plan, CommandError> {
    let revision = parse.next_u64()?;
    Ok(Plan {
        op: Op::Compact { revision },
        reply: WriteReply::Compacted,
    })
}
