//! KeysFiltered: a user limited to `~app/*` learns no other key or value, on every path that
//! could name one: a read (NOPERM), `KEYS` and `SCAN` (cut to its keys, where Redis shows
//! every key), `HISTORY`/`GETAT` (NOPERM), the watch stream `__watch__:` (cut to its keys:
//! `XREAD`, blocked `XREAD` and `XRANGE`), a script (NOPERM inside), BCAST client tracking
//! (invalidations name only its keys) and keyspace notifications (only its keys'). A single
//! redraft node, raw RESP.

use crate::common;

use std::time::Duration;

use common::phase;
use common::single::Single;
use resp_client::raw::{RawConn, Reply};

fn bulk(s: &str) -> Reply {
    Reply::Bulk(Some(s.as_bytes().to_vec()))
}

fn error_text(r: &Reply) -> String {
    match r {
        Reply::Error(e) => String::from_utf8_lossy(e).into_owned(),
        other => panic!("not an error: {other:?}"),
    }
}

/// The keys named by the entries of a watch stream reply (`XRANGE`'s, or one stream's in
/// `XREAD`'s), in order.
fn entry_keys(entries: &Reply) -> Vec<String> {
    let Reply::Array(Some(entries)) = entries else {
        return Vec::new();
    };
    entries
        .iter()
        .filter_map(|e| match e {
            Reply::Array(Some(parts)) => match &parts[1] {
                Reply::Array(Some(fields)) => fields
                    .chunks(2)
                    .find(|c| c[0] == bulk("key"))
                    .and_then(|c| match &c[1] {
                        Reply::Bulk(Some(k)) => Some(String::from_utf8_lossy(k).into_owned()),
                        _ => None,
                    }),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// The entries of the one stream of an `XREAD` reply (RESP2).
fn xread_entries(reply: &Reply) -> Reply {
    match reply {
        Reply::Array(Some(streams)) => match &streams[0] {
            Reply::Array(Some(s)) => s[1].clone(),
            other => panic!("a stream: {other:?}"),
        },
        other => panic!("XREAD answered {other:?}"),
    }
}

#[test]
fn a_user_limited_to_app_learns_no_other_key() {
    let node = Single::start();
    let mut admin = RawConn::must_connect(&node.addr);
    assert_eq!(
        admin.must_call(&["ACL", "SETUSER", "app", "on", ">pw", "~app/*", "&*", "+@all"]),
        Reply::ok()
    );
    for (k, v) in [
        ("app/a", "1"),
        ("secret/b", "2"),
        ("app/c", "3"),
        ("other", "4"),
    ] {
        assert_eq!(admin.must_call(&["SET", k, v]), Reply::ok());
    }
    let mut app = RawConn::must_connect(&node.addr);
    assert_eq!(app.must_call(&["AUTH", "app", "pw"]), Reply::ok());

    phase("reads outside the patterns are refused; inside they work");
    assert_eq!(app.must_call(&["GET", "app/a"]), bulk("1"));
    for cmd in [
        vec!["GET", "secret/b"],
        vec!["HISTORY", "secret/b"],
        vec!["GETAT", "secret/b", "0"],
    ] {
        let e = error_text(&app.must_call(&cmd));
        assert!(e.starts_with("NOPERM"), "{cmd:?}: {e}");
    }
    let e = error_text(&app.must_call(&["EVAL", "return redis.call('GET', 'secret/b')", "0"]));
    assert!(e.contains("can't access at least one of the keys"), "{e}");

    phase("KEYS and SCAN show only its keys");
    let mut keys = match app.must_call(&["KEYS", "*"]) {
        Reply::Array(Some(k)) => k,
        other => panic!("KEYS answered {other:?}"),
    };
    keys.sort_by_key(|k| format!("{k:?}"));
    assert_eq!(keys, vec![bulk("app/a"), bulk("app/c")]);
    let mut seen = Vec::new();
    let mut cursor = "0".to_string();
    loop {
        let Reply::Array(Some(parts)) = app.must_call(&["SCAN", &cursor, "COUNT", "2"]) else {
            panic!("SCAN")
        };
        if let Reply::Array(Some(batch)) = &parts[1] {
            seen.extend(batch.iter().cloned());
        }
        cursor = match &parts[0] {
            Reply::Bulk(Some(c)) => String::from_utf8_lossy(c).into_owned(),
            other => panic!("cursor {other:?}"),
        };
        if cursor == "0" {
            break;
        }
    }
    seen.sort_by_key(|k| format!("{k:?}"));
    assert_eq!(seen, vec![bulk("app/a"), bulk("app/c")]);
    let Reply::Array(Some(all)) = admin.must_call(&["KEYS", "*"]) else {
        panic!("KEYS")
    };
    assert_eq!(all.len(), 4, "an unlimited user sees every key");

    phase("the watch stream of every key shows only its keys");
    let range = app.must_call(&["XRANGE", "__watch__:", "-", "+"]);
    assert_eq!(entry_keys(&range), vec!["app/a", "app/c"]);
    let read = app.must_call(&["XREAD", "STREAMS", "__watch__:", "0"]);
    assert_eq!(entry_keys(&xread_entries(&read)), vec!["app/a", "app/c"]);
    // A blocked read is not woken by changes it may not see, and returns with its own.
    app.send(&resp_client::raw::line(
        "XREAD BLOCK 10000 STREAMS __watch__: $",
    ));
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(admin.must_call(&["SET", "secret/b", "5"]), Reply::ok());
    assert_eq!(admin.must_call(&["SET", "other", "6"]), Reply::ok());
    std::thread::sleep(Duration::from_millis(200));
    assert!(!app.has_unread(), "a change of another key woke the read");
    assert_eq!(admin.must_call(&["SET", "app/c", "7"]), Reply::ok());
    let woke = app.must_read_reply(Duration::from_secs(5));
    assert_eq!(entry_keys(&xread_entries(&woke)), vec!["app/c"]);

    phase("BCAST tracking names only its keys");
    let mut tracked = RawConn::must_connect(&node.addr);
    let hello = tracked.must_call(&["HELLO", "3", "AUTH", "app", "pw"]);
    assert!(matches!(hello, Reply::Map(_)), "{hello:?}");
    assert_eq!(
        tracked.must_call(&["CLIENT", "TRACKING", "ON", "BCAST"]),
        Reply::ok()
    );
    assert_eq!(
        admin.must_call(&["MSET", "secret/b", "8", "app/a", "9"]),
        Reply::ok()
    );
    let push = tracked.must_read_reply(Duration::from_secs(5));
    assert_eq!(
        push,
        Reply::Push(vec![
            bulk("invalidate"),
            Reply::Array(Some(vec![bulk("app/a")]))
        ])
    );
    assert_eq!(admin.must_call(&["SET", "other", "10"]), Reply::ok());
    std::thread::sleep(Duration::from_millis(300));
    assert!(!tracked.has_unread(), "an invalidation named another key");

    phase("keyspace notifications name only its keys");
    assert_eq!(
        admin.must_call(&["CONFIG", "SET", "notify-keyspace-events", "KEA"]),
        Reply::ok()
    );
    let mut listener = RawConn::must_connect(&node.addr);
    assert_eq!(listener.must_call(&["AUTH", "app", "pw"]), Reply::ok());
    listener.send(&resp_client::raw::line("PSUBSCRIBE __key*@0__:*"));
    let confirmed = listener.must_read_reply(Duration::from_secs(5));
    assert!(matches!(confirmed, Reply::Array(Some(_))), "{confirmed:?}");
    assert_eq!(admin.must_call(&["SET", "secret/b", "11"]), Reply::ok());
    assert_eq!(admin.must_call(&["SET", "app/c", "12"]), Reply::ok());
    let pmessage = |channel: &str, payload: &str| {
        Reply::Array(Some(vec![
            bulk("pmessage"),
            bulk("__key*@0__:*"),
            bulk(channel),
            bulk(payload),
        ]))
    };
    assert_eq!(
        listener.must_read_replies(2, Duration::from_secs(5)),
        vec![
            pmessage("__keyspace@0__:app/c", "set"),
            pmessage("__keyevent@0__:set", "app/c")
        ],
        "the notifications of secret/b were not delivered, those of app/c were"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(!listener.has_unread());
    // An unlimited subscriber hears both.
    let mut all = RawConn::must_connect(&node.addr);
    all.send(&resp_client::raw::line("SUBSCRIBE __keyevent@0__:set"));
    all.must_read_reply(Duration::from_secs(5));
    assert_eq!(admin.must_call(&["SET", "secret/b", "13"]), Reply::ok());
    let heard = all.must_read_reply(Duration::from_secs(5));
    assert_eq!(
        heard,
        Reply::Array(Some(vec![
            bulk("message"),
            bulk("__keyevent@0__:set"),
            bulk("secret/b")
        ]))
    );

    phase("narrowed later: a subscription and a BCAST session made before follow the new patterns");
    assert_eq!(
        admin.must_call(&["ACL", "SETUSER", "wide", "on", ">pw", "~*", "&*", "+@all"]),
        Reply::ok()
    );
    let mut wide = RawConn::must_connect(&node.addr);
    assert_eq!(wide.must_call(&["AUTH", "wide", "pw"]), Reply::ok());
    wide.send(&resp_client::raw::line("SUBSCRIBE __keyevent@0__:set"));
    wide.must_read_reply(Duration::from_secs(5));
    let mut wide_tracked = RawConn::must_connect(&node.addr);
    let hello = wide_tracked.must_call(&["HELLO", "3", "AUTH", "wide", "pw"]);
    assert!(matches!(hello, Reply::Map(_)), "{hello:?}");
    assert_eq!(
        wide_tracked.must_call(&["CLIENT", "TRACKING", "ON", "BCAST"]),
        Reply::ok()
    );
    assert_eq!(
        admin.must_call(&["ACL", "SETUSER", "wide", "resetkeys", "~app/*"]),
        Reply::ok()
    );
    assert_eq!(admin.must_call(&["SET", "secret/b", "14"]), Reply::ok());
    assert_eq!(admin.must_call(&["SET", "app/c", "15"]), Reply::ok());
    assert_eq!(
        wide.must_read_reply(Duration::from_secs(5)),
        Reply::Array(Some(vec![
            bulk("message"),
            bulk("__keyevent@0__:set"),
            bulk("app/c")
        ])),
        "secret/b's notification was not delivered after the narrowing"
    );
    assert_eq!(
        wide_tracked.must_read_reply(Duration::from_secs(5)),
        Reply::Push(vec![
            bulk("invalidate"),
            Reply::Array(Some(vec![bulk("app/c")]))
        ]),
        "secret/b's invalidation was not delivered after the narrowing"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(!wide.has_unread() && !wide_tracked.has_unread());
}
