//! Client-side caching commands: `CLIENT TRACKING`, `CLIENT CACHING`, `CLIENT GETREDIR`,
//! `CLIENT TRACKINGINFO` (Redis 7.0's `networking.c`, same replies and errors), and the hook
//! that remembers a tracking session's read keys before the read runs (RememberBeforeRead,
//! `watch/tracking.rs`).
//!
//! Which commands are remembered: those Redis's `call()` tracks, every command flagged
//! `readonly` in the table (GET, MGET, EXISTS, TTL, HGETALL, ...), with the keys its key specs
//! find. A script's reads happen inside the script, where Redis tracks each read command it
//! calls; here the keys a script declares (EVAL's `numkeys` keys) are remembered before it
//! runs, which covers every key a script may touch under Redis's rules.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::session::TrackingMode;
use super::table::{self, Lookup};
use super::{CommandError, CommandResult, Session};
use crate::context::ServerContext;
use crate::protocol::{Frame, Parse, ParseError};
use crate::watch::tracking::TrackingOptions;

/// The commands whose declared keys stand for the keys they read (module docs).
const SCRIPT_COMMANDS: [&str; 6] = [
    "eval",
    "evalsha",
    "eval_ro",
    "evalsha_ro",
    "fcall",
    "fcall_ro",
];

/// Remembers the keys `argv` is about to read, if the session tracks in default mode and its
/// OPTIN/OPTOUT choice lets this command be cached; then consumes a `CLIENT CACHING` choice
/// (it holds for one command, or through MULTI for the transaction: `txn.rs`). Called before
/// the command touches the store (RememberBeforeRead).
pub(super) fn remember_read(ctx: &ServerContext, session: &Session, name: &str, argv: &[Bytes]) {
    let Some(mode) = session.tracking else {
        return;
    };
    let caching = session.tracking_caching.load(Ordering::Relaxed);
    // Redis clears the choice after every command but CLIENT, and not inside MULTI (MULTI
    // itself included: it is in MULTI when the check runs).
    if name != "client" && name != "multi" && !session.txn.in_multi() {
        session.tracking_caching.store(false, Ordering::Relaxed);
    }
    if !caches(mode, caching) {
        return;
    }
    let spec = match table::lookup(name, argv.get(1).map(|a| &a[..])) {
        Lookup::Found(spec, _) => spec,
        _ => return,
    };
    let tracked =
        (spec.has_flag("readonly") && !spec.has_flag("pubsub")) || SCRIPT_COMMANDS.contains(&name);
    if !tracked {
        return;
    }
    let keys: Vec<Bytes> = spec
        .key_positions(argv)
        .into_iter()
        .map(|(i, _)| argv[i].clone())
        .collect();
    if !keys.is_empty() {
        ctx.tracker.remember(session.id, keys);
    }
}

/// Whether a read is remembered: default mode, and OPTIN with `CACHING YES` or OPTOUT without
/// `CACHING NO` (Redis's `trackingRememberKeys`).
fn caches(mode: TrackingMode, caching: bool) -> bool {
    let refused = (mode.optin && !caching) || (mode.optout && caching);
    !mode.bcast && !refused
}

/// `CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX p ...] [BCAST] [OPTIN] [OPTOUT] [NOLOOP]`.
pub(super) fn client_tracking(
    ctx: &ServerContext,
    session: &mut Session,
    parse: &mut Parse,
) -> CommandResult {
    let on_off = parse.next_bytes()?;
    let mut opts = TrackingOptions::default();
    let mut redirect_given = false;
    while parse.remaining() > 0 {
        let option = parse.next_string()?.to_ascii_lowercase();
        let more = parse.remaining() > 0;
        match option.as_str() {
            "redirect" if more => {
                if redirect_given {
                    return Err(CommandError::Reply(
                        "ERR A client can only redirect to a single other client".into(),
                    ));
                }
                let id = parse.next_i64().map_err(|_| {
                    CommandError::Reply("ERR value is not an integer or out of range".into())
                })?;
                // Redis requires the client to exist now (it may go later).
                if id <= 0 || ctx.clients.get(id as u64).is_none() {
                    return Err(CommandError::Reply(
                        "ERR The client ID you want redirect to does not exist".into(),
                    ));
                }
                redirect_given = true;
                opts.redirect = id as u64;
            }
            "bcast" => opts.bcast = true,
            "optin" => opts.optin = true,
            "optout" => opts.optout = true,
            "noloop" => opts.noloop = true,
            "prefix" if more => opts.prefixes.push(parse.next_bytes()?),
            _ => return Err(ParseError::Syntax.into()),
        }
    }
    if on_off.eq_ignore_ascii_case(b"on") {
        opts.may_read = session.key_filter(ctx);
        ctx.tracker
            .enable(session.id, session.dedup_client_id(), &opts)
            .map_err(|e| CommandError::Reply(format!("ERR {e}")))?;
        session.tracking = Some(TrackingMode {
            bcast: opts.bcast,
            optin: opts.optin,
            optout: opts.optout,
        });
    } else if on_off.eq_ignore_ascii_case(b"off") {
        session.disable_tracking();
    } else {
        return Err(ParseError::Syntax.into());
    }
    Ok(Frame::ok())
}

/// `CLIENT CACHING YES|NO`: whether the next command's keys are remembered (OPTIN/OPTOUT).
pub(super) fn client_caching(session: &mut Session, parse: &mut Parse) -> CommandResult {
    let Some(mode) = session.tracking else {
        return Err(CommandError::Reply(
            "ERR CLIENT CACHING can be called only when the client is in tracking mode with \
             OPTIN or OPTOUT mode enabled"
                .into(),
        ));
    };
    let opt = parse.next_bytes()?;
    if opt.eq_ignore_ascii_case(b"yes") {
        if !mode.optin {
            return Err(CommandError::Reply(
                "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode."
                    .into(),
            ));
        }
    } else if opt.eq_ignore_ascii_case(b"no") {
        if !mode.optout {
            return Err(CommandError::Reply(
                "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode."
                    .into(),
            ));
        }
    } else {
        return Err(ParseError::Syntax.into());
    }
    session.tracking_caching.store(true, Ordering::Relaxed);
    Ok(Frame::ok())
}

/// `CLIENT GETREDIR`: the redirect id, 0 for none, -1 when not tracking.
pub(super) fn client_getredir(ctx: &ServerContext, session: &Session) -> CommandResult {
    Ok(Frame::Integer(
        ctx.tracker
            .state(session.id)
            .map_or(-1, |s| s.redirect as i64),
    ))
}

/// `CLIENT TRACKINGINFO`: Redis's map of `flags`, `redirect` and `prefixes`.
pub(super) fn client_trackinginfo(ctx: &ServerContext, session: &Session) -> CommandResult {
    let bulk = |s: &str| Frame::Bulk(Bytes::copy_from_slice(s.as_bytes()));
    let state = ctx.tracker.state(session.id);
    let caching = session.tracking_caching.load(Ordering::Relaxed);
    let mut flags = Vec::new();
    let (redirect, prefixes) = match &state {
        None => {
            flags.push(bulk("off"));
            (-1, Vec::new())
        }
        Some(s) => {
            flags.push(bulk("on"));
            if s.bcast {
                flags.push(bulk("bcast"));
            }
            if s.optin {
                flags.push(bulk("optin"));
                if caching {
                    flags.push(bulk("caching-yes"));
                }
            }
            if s.optout {
                flags.push(bulk("optout"));
                if caching {
                    flags.push(bulk("caching-no"));
                }
            }
            if s.noloop {
                flags.push(bulk("noloop"));
            }
            if s.broken_redirect {
                flags.push(bulk("broken_redirect"));
            }
            let prefixes = s.prefixes.iter().cloned().map(Frame::Bulk).collect();
            (s.redirect as i64, prefixes)
        }
    };
    Ok(Frame::Map(vec![
        (bulk("flags"), Frame::Set(flags)),
        (bulk("redirect"), Frame::Integer(redirect)),
        (bulk("prefixes"), Frame::Array(prefixes)),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optin_and_optout_decide_with_the_caching_choice() {
        let default = TrackingMode::default();
        let optin = TrackingMode {
            optin: true,
            ..default
        };
        let optout = TrackingMode {
            optout: true,
            ..default
        };
        let bcast = TrackingMode {
            bcast: true,
            ..default
        };
        assert!(caches(default, false) && caches(default, true));
        assert!(!caches(optin, false) && caches(optin, true));
        assert!(caches(optout, false) && !caches(optout, true));
        assert!(!caches(bcast, false) && !caches(bcast, true));
    }
}
