//! The watch stream's commands (DESIGN §6): XREAD, XRANGE and XREVRANGE on the read-only
//! virtual streams `__watch__:<prefix>` (`watch/stream.rs` reads them from the store's
//! history), with Redis 7.0's syntax, reply shapes and error texts. Any other stream name is
//! an empty stream (redraft stores strings only); the stream writes (XADD, XDEL, XTRIM, ...)
//! are refused with a clear error.
//!
//! Departures from Redis streams, each required by the watch semantics:
//! - **Bare IDs in XREAD mean whole revisions.** `XREAD ... STREAMS __watch__: 42` reads the
//!   changes after revision 42 (as if `42-<max>`), so a revision from REVISION or a bookmark
//!   resumes without repeating revision 42's changes; Redis reads `42` as `42-0`. An explicit
//!   `42-0` reads after sub 0. XRANGE's bare IDs are Redis's (`42` = `42-0` as a start,
//!   `42-<max>` as an end).
//! - **XREAD's COUNT never splits a revision** (Atomic): the reply is rounded up to the end
//!   of the last revision it reached. Without COUNT a reply holds at most
//!   `watch::stream::MAX_READ_ENTRIES` entries (rounded up the same way); read again from the
//!   last ID for more.
//! - **Compaction is an error, never a gap.** Reading after an ID whose rest lies below the
//!   compact revision fails with `-COMPACTED ... oldest available revision is N`; XRANGE `-`
//!   starts at the oldest revision still available.
//!
//! # Format
//!
//! ```text
//! XREAD [COUNT n] [BLOCK ms] STREAMS key [key ...] id [id ...]
//!     → RESP2 [[key, [[id, [field, value, ...]], ...]], ...] | RESP3 {key: [...], ...}
//!       | nil (nothing new; BLOCK timed out); `$` = after the current revision
//! XRANGE key start end [COUNT n]     → [[id, [field, value, ...]], ...] (`-`, `+`, `(id`)
//! XREVRANGE key end start [COUNT n]  → the same, newest first
//! entry fields: type (set|del|expired), key, value (not for del/expired), prev (if any)
//! ```

use std::ops::Bound;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{read_gate, CommandError, CommandResult, Session};
use crate::context::ServerContext;
use crate::protocol::{Frame, Parse, ParseError, Protocol};
use crate::store::Revision;
use crate::watch::stream::{parse_id, watch_prefix, Cursor, Entry, MAX_READ_ENTRIES};

const INVALID_ID: &str = "ERR Invalid stream ID specified as stream command argument";

/// The stream commands that would write a stream (XADD XDEL XTRIM ...): refused.
pub(super) fn refused(parse: &mut Parse) -> CommandResult {
    Err(read_only(&parse.command_name()))
}

fn read_only(name: &str) -> CommandError {
    CommandError::Reply(format!(
        "ERR {} is not supported: redraft's streams are the read-only watch streams \
         __watch__:<prefix>, which follow the keyspace; write the keys instead",
        name.to_uppercase()
    ))
}

fn reply_err(text: &str) -> CommandError {
    CommandError::Reply(text.to_string())
}

/// One stream named in XREAD: its name, the key prefix it watches (`None`: not a watch
/// stream, always empty), and the position to read after (`None` until `$` is resolved).
struct ReadStream {
    name: Bytes,
    prefix: Option<Bytes>,
    after: Option<Revision>,
}

pub(super) async fn xread(
    ctx: &ServerContext,
    session: &mut Session,
    parse: &mut Parse,
) -> CommandResult {
    let mut args = Vec::with_capacity(parse.remaining());
    while parse.remaining() > 0 {
        args.push(parse.next_bytes()?);
    }
    let (mut count, mut block) = (0usize, None::<u64>);
    let mut streams_at = None;
    let mut i = 0;
    while i < args.len() {
        let more = args.len() - i - 1;
        let opt = String::from_utf8_lossy(&args[i]).to_ascii_uppercase();
        match opt.as_str() {
            "BLOCK" if more > 0 => {
                i += 1;
                let ms: i64 = std::str::from_utf8(&args[i])
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| reply_err("ERR timeout is not an integer or out of range"))?;
                if ms < 0 {
                    return Err(reply_err("ERR timeout is negative"));
                }
                block = Some(ms as u64);
            }
            "COUNT" if more > 0 => {
                i += 1;
                let n: i64 = std::str::from_utf8(&args[i])
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or(ParseError::NotInteger)?;
                count = usize::try_from(n.max(0)).unwrap_or(usize::MAX);
            }
            "STREAMS" if more > 0 => {
                streams_at = Some(i + 1);
                break;
            }
            "GROUP" if more >= 2 => {
                return Err(reply_err(
                    "ERR The GROUP option is only supported by XREADGROUP. You called XREAD \
                     instead.",
                ))
            }
            "NOACK" => {
                return Err(reply_err(
                    "ERR The NOACK option is only supported by XREADGROUP. You called XREAD \
                     instead.",
                ))
            }
            _ => return Err(ParseError::Syntax.into()),
        }
        i += 1;
    }
    let Some(at) = streams_at else {
        return Err(ParseError::Syntax.into());
    };
    let rest = &args[at..];
    if rest.len() % 2 != 0 {
        return Err(reply_err(
            "ERR Unbalanced 'xread' list of streams: for each stream key an ID or '$' must be \
             specified.",
        ));
    }
    let n = rest.len() / 2;
    let mut streams = Vec::with_capacity(n);
    for (name, id) in rest[..n].iter().zip(&rest[n..]) {
        let after = if id.as_ref() == b"$" {
            None
        } else {
            // A bare revision means all of it (module doc).
            Some(parse_id(id, u64::MAX).ok_or_else(|| reply_err(INVALID_ID))?)
        };
        streams.push(ReadStream {
            name: name.clone(),
            prefix: watch_prefix(name),
            after,
        });
    }
    // DurableReads: the watch stream's events do not wait for this node's committed index to
    // be durable: a watcher names its position by revision and resumes there, so a node that
    // comes back from a power cut behind it delivers nothing twice, only later
    // (`raft/commit_gate.rs`). A read earlier in the batch still fences the flush.
    let fenced = session.read_fence;
    read_gate(ctx, session).await?;
    session.read_fence = fenced;
    // Subscribed before the first read, so a change applied after it wakes the wait below.
    let mut revisions = ctx.node.sm.revision_watch();
    {
        let current = ctx.node.read_store(|store| store.revision());
        for s in &mut streams {
            s.after.get_or_insert(Revision::new(current, u64::MAX));
        }
    }
    let limit = if count == 0 { MAX_READ_ENTRIES } else { count };
    let deadline = block
        .filter(|ms| *ms > 0)
        .map(|ms| Instant::now() + Duration::from_millis(ms));
    let gray = session.gray_label();
    loop {
        // FilterFollowsTheUser: a blocked read asks the user's patterns as they are now.
        let limits = session.key_limits(ctx);
        let mut found = Vec::new();
        // A stream whose changes were all cut (KeysFiltered) moved on: read again at once.
        let mut moved_on = false;
        for s in &mut streams {
            let (Some(prefix), Some(after)) = (&s.prefix, s.after) else {
                continue;
            };
            let range = (Bound::Excluded(after), Bound::Unbounded);
            let cursor =
                Cursor::new(range, false, limit, true, prefix.clone()).seen_by(gray.clone());
            let mut events = read(ctx, cursor)?;
            if let Some(user) = &limits {
                // KeysFiltered: only the changes of keys the user may read. A read whose
                // changes were all cut moves on past them, so a blocked read keeps waiting.
                if let Some(last) = events.last() {
                    s.after = Some(last.revision);
                }
                let read = events.len();
                events.retain(|e| user.may_read_key(&e.kv.key));
                moved_on |= read > 0 && events.is_empty();
            }
            if !events.is_empty() {
                found.push((s.name.clone(), events));
            }
        }
        if !found.is_empty() {
            return Ok(xread_reply(session.proto, found));
        }
        if moved_on {
            continue;
        }
        if block.is_none() {
            return Ok(Frame::NullArray);
        }
        // Wait for the revision to move; nothing per watcher is buffered meanwhile.
        let handle = session.handle.clone();
        handle.set_blocked(true);
        let woke = tokio::select! {
            r = revisions.changed() => r.is_ok(),
            _ = sleep_until(deadline) => false,
            _ = handle.gone() => false,
            _ = handle.killed() => false,
        };
        handle.set_blocked(false);
        if !woke {
            return Ok(Frame::NullArray);
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// Runs a cursor to its end, one chunk per hold of the read lock (ReadBounded).
fn read(ctx: &ServerContext, mut cursor: Cursor) -> Result<Vec<Entry>, CommandError> {
    while !cursor.done {
        ctx.node
            .read_store(|store| cursor.step(store))
            .map_err(|e| CommandError::Reply(e.to_string()))?;
    }
    Ok(cursor.events)
}

fn xread_reply(proto: Protocol, found: Vec<(Bytes, Vec<Entry>)>) -> Frame {
    let entries = |events: Vec<Entry>| Frame::Array(events.iter().map(Entry::frame).collect());
    match proto {
        Protocol::Resp3 => Frame::Map(
            found
                .into_iter()
                .map(|(name, events)| (Frame::Bulk(name), entries(events)))
                .collect(),
        ),
        Protocol::Resp2 => Frame::Array(
            found
                .into_iter()
                .map(|(name, events)| Frame::Array(vec![Frame::Bulk(name), entries(events)]))
                .collect(),
        ),
    }
}

/// Parses an XRANGE bound as Redis's `streamParseIntervalIDOrReply`: `-`, `+`, `id`, or
/// `(id` (exclusive).
fn interval_bound(arg: &[u8], start: bool) -> Result<Bound<Revision>, CommandError> {
    // `-` is 0-0 and `+` the largest ID, as in Redis; a `-` start means the oldest change
    // still available (module doc).
    match (arg, start) {
        (b"-", true) | (b"+", false) => return Ok(Bound::Unbounded),
        (b"-", false) => return Ok(Bound::Included(Revision::new(0, 0))),
        (b"+", true) => return Ok(Bound::Included(Revision::new(u64::MAX, u64::MAX))),
        _ => {}
    }
    let missing_seq = if start { 0 } else { u64::MAX };
    if let Some(id) = arg.strip_prefix(b"(").filter(|id| !id.is_empty()) {
        let r = parse_id(id, missing_seq).ok_or_else(|| reply_err(INVALID_ID))?;
        return Ok(Bound::Excluded(r));
    }
    let r = parse_id(arg, missing_seq).ok_or_else(|| reply_err(INVALID_ID))?;
    Ok(Bound::Included(r))
}

pub(super) async fn xrange(
    ctx: &ServerContext,
    session: &mut Session,
    parse: &mut Parse,
    reverse: bool,
) -> CommandResult {
    let name = parse.next_bytes()?;
    let (first, second) = (parse.next_bytes()?, parse.next_bytes()?);
    let (start, end) = if reverse {
        (second, first)
    } else {
        (first, second)
    };
    let start = interval_bound(&start, true)?;
    let end = interval_bound(&end, false)?;
    let mut count: Option<usize> = None;
    while parse.remaining() > 0 {
        let opt = parse.next_string()?.to_ascii_uppercase();
        if opt != "COUNT" || parse.remaining() == 0 {
            return Err(ParseError::Syntax.into());
        }
        let n = parse.next_i64()?;
        count = Some(usize::try_from(n.max(0)).unwrap_or(usize::MAX));
    }
    if count == Some(0) {
        return Ok(Frame::NullArray);
    }
    read_gate(ctx, session).await?;
    let Some(prefix) = watch_prefix(&name) else {
        return Ok(Frame::Array(Vec::new()));
    };
    if range_is_empty(start, end) {
        return Ok(Frame::Array(Vec::new()));
    }
    let limit = count.unwrap_or(MAX_READ_ENTRIES);
    let mut events = read(
        ctx,
        Cursor::new((start, end), reverse, limit, false, prefix).seen_by(session.gray_label()),
    )?;
    // KeysFiltered (a page may then hold fewer than COUNT entries).
    if let Some(user) = session.key_limits(ctx) {
        events.retain(|e| user.may_read_key(&e.kv.key));
    }
    Ok(Frame::Array(events.iter().map(Entry::frame).collect()))
}

/// Whether `(start, end)` holds no revision (BTreeMap::range panics on an inverted range).
fn range_is_empty(start: Bound<Revision>, end: Bound<Revision>) -> bool {
    match (start, end) {
        (Bound::Included(s), Bound::Included(e)) => s > e,
        (Bound::Included(s), Bound::Excluded(e)) | (Bound::Excluded(s), Bound::Included(e)) => {
            s >= e
        }
        (Bound::Excluded(s), Bound::Excluded(e)) => s >= e,
        _ => false,
    }
}
