//! Unit tests of `acl.rs`: the rule language on one user, SETUSER/DELUSER at apply, and the
//! users in snapshots (version 4, and version 3 bytes loading with no users).

use bytes::Bytes;

use super::*;
use crate::store::{Op, Request};

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn must_user(rules: &[&str]) -> AclUser {
    let mut u = AclUser::new();
    for r in rules {
        u.apply_rule(r.as_bytes())
            .unwrap_or_else(|e| panic!("{r}: {e:?}"));
    }
    u
}

fn apply(s: &mut Store, op: Op) -> Response {
    s.apply(&Request::new(None, op)).0
}

#[test]
fn rules_build_the_user_redis_would() {
    struct Case {
        rules: &'static [&'static str],
        want_flags: &'static [&'static str],
        want_keys: &'static [&'static str],
        want_commands: &'static [&'static str],
    }
    let cases = [
        Case {
            rules: &[],
            want_flags: &["off"],
            want_keys: &[],
            want_commands: &[],
        },
        Case {
            rules: &[
                "on", ">pw", "~k*", "%R~r*", "%w~w*", "%RW~k*", "+get", "-@admin",
            ],
            want_flags: &["on"],
            want_keys: &["~k*", "%R~r*", "%W~w*"],
            want_commands: &["+get", "-@admin"],
        },
        Case {
            // +@all clears the rules before it; a repeated rule moves to the end.
            rules: &[
                "+get",
                "-set",
                "ALLCOMMANDS",
                "-set",
                "+get",
                "-set",
                "nopass",
            ],
            want_flags: &["off", "nopass"],
            want_keys: &[],
            want_commands: &["+@all", "+get", "-set"],
        },
        Case {
            rules: &["on", "~a", "allkeys", "+@all", "reset"],
            want_flags: &["off", "sanitize-payload"],
            want_keys: &[],
            want_commands: &[],
        },
    ];
    for c in cases {
        let u = must_user(c.rules);
        assert_eq!(u.flags(), c.want_flags, "{:?}", c.rules);
        let keys: Vec<String> = u.keys.iter().map(KeyPattern::describe).collect();
        assert_eq!(keys, c.want_keys, "{:?}", c.rules);
        assert_eq!(u.commands, c.want_commands, "{:?}", c.rules);
    }
}

#[test]
fn passwords_are_hashed_and_checked() {
    let mut u = must_user(&["on", ">secret"]);
    assert_eq!(u.passwords, [hash_password(b"secret")]);
    assert_eq!(
        hash_password(b"pw"),
        "30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4",
        "redis-server 7.0.15's hash of 'pw'"
    );
    assert!(u.password_ok(b"secret") && !u.password_ok(b"other"));
    u.apply_rule(b"off").unwrap();
    assert!(!u.password_ok(b"secret"), "a disabled user cannot log in");
    u.apply_rule(b"on").unwrap();
    let hash = format!("!{}", hash_password(b"secret"));
    u.apply_rule(hash.as_bytes()).unwrap();
    assert!(!u.password_ok(b"secret"));
    assert_eq!(u.apply_rule(b"<secret"), Err(RuleError::NoSuchPassword));
    assert_eq!(u.apply_rule(b"#abc"), Err(RuleError::BadHash));
    let upper = format!("#{}", hash_password(b"x").to_uppercase());
    assert_eq!(u.apply_rule(upper.as_bytes()), Err(RuleError::BadHash));
    u.apply_rule(b"nopass").unwrap();
    assert!(u.password_ok(b"anything"));
}

#[test]
fn refusals_name_redis_reasons() {
    let cases: &[(&[&str], &str, RuleError)] = &[
        (&["allkeys"], "~foo", RuleError::KeyAfterAll),
        (&["allchannels"], "&foo", RuleError::ChannelAfterAll),
        (&[], "%X~foo", RuleError::Syntax),
        (&[], "%RR~foo", RuleError::Syntax),
        (&[], "bogus", RuleError::Syntax),
        (&[], "+", RuleError::Syntax),
        (&[], "~a b", RuleError::Syntax),
    ];
    for (before, rule, want) in cases {
        let mut u = must_user(before);
        assert_eq!(u.apply_rule(rule.as_bytes()), Err(*want), "{rule}");
    }
}

#[test]
fn setuser_is_all_or_nothing_and_deluser_counts() {
    let mut s = Store::new();
    let r = apply(
        &mut s,
        Op::AclSetUser {
            name: b("alice"),
            rules: vec![b("on"), b("~a*"), b("+get")],
            create: vec![],
        },
    );
    assert!(matches!(r, Response::Noop { revision: 0 }), "{r:?}");
    let before = s.users().clone();
    let r = apply(
        &mut s,
        Op::AclSetUser {
            name: b("alice"),
            rules: vec![b("off"), b("allkeys"), b("~b")],
            create: vec![],
        },
    );
    assert!(
        matches!(r, Response::Error(StoreError::AclRule { index: 2, .. })),
        "{r:?}"
    );
    assert_eq!(*s.users(), before, "a refused SETUSER changes nothing");
    let r = apply(
        &mut s,
        Op::AclSetUser {
            name: b("default"),
            rules: vec![b("-flushall")],
            create: vec![b("on"), b("nopass"), b("~*"), b("&*"), b("+@all")],
        },
    );
    assert!(matches!(r, Response::Noop { .. }));
    let d = s.users().get(b"default").unwrap();
    assert_eq!(d.commands, ["+@all", "-flushall"]);
    assert!(d.allkeys && d.allchannels && d.nopass && d.enabled);
    let r = apply(
        &mut s,
        Op::AclDelUser {
            names: vec![b("alice"), b("nobody"), b("alice")],
        },
    );
    assert!(matches!(r, Response::Integer { value: 1, .. }), "{r:?}");
    assert_eq!(s.revision(), 0, "ACL changes bump no revision");
}

#[test]
fn users_travel_in_snapshots_and_version_3_still_loads() {
    let mut s = Store::new();
    apply(
        &mut s,
        Op::Put {
            key: b("k"),
            value: b("v"),
        },
    );
    let v3 = {
        // A version 3 snapshot is this build's bytes of a store without users or authors,
        // minus those sections (users: an empty map and version 0, two bytes; authors: an
        // empty map, one byte).
        let mut bytes = s.to_snapshot();
        bytes.truncate(bytes.len() - 3);
        bytes[0] = 3;
        bytes
    };
    let loaded = Store::from_snapshot(&v3).unwrap();
    assert_eq!(loaded, s);
    assert!(loaded.users().is_empty());
    apply(
        &mut s,
        Op::AclSetUser {
            name: b("bob"),
            rules: vec![
                b("on"),
                b("#30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4"),
            ],
            create: vec![],
        },
    );
    let restored = Store::from_snapshot(&s.to_snapshot()).unwrap();
    assert_eq!(restored, s);
    assert!(restored.users().get(b"bob").unwrap().password_ok(b"pw"));
    assert_eq!(restored.users().version(), 1);
}
