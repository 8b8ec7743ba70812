//! Unit tests of the ACL view: command rules compiled against the table, Redis's description
//! of them, and the permission check (commands, first args, key patterns with read/write,
//! channels).

use bytes::Bytes;

use super::rules::{describe, validate, RuleRefusal};
use super::*;
use crate::commands::table::{self, Lookup};

fn must_user(rules: &[&str]) -> CompiledUser {
    let mut u = AclUser::new();
    for r in rules {
        u.apply_rule(r.as_bytes())
            .unwrap_or_else(|e| panic!("{r}: {e:?}"));
    }
    CompiledUser::new(Bytes::from_static(b"u"), u)
}

fn check(user: &CompiledUser, args: &[&str]) -> Result<(), Denied> {
    let argv: Vec<Bytes> = args
        .iter()
        .map(|a| Bytes::copy_from_slice(a.as_bytes()))
        .collect();
    let name = args[0].to_ascii_lowercase();
    let Lookup::Found(spec, id) = table::lookup(&name, argv.get(1).map(|a| &a[..])) else {
        panic!("{name} is not in the table")
    };
    check_command(user, spec, id, &argv)
}

#[test]
fn descriptions_match_redis_7_0() {
    // Each want is what redis-server 7.0.15 answers in ACL GETUSER's `commands`.
    let cases: &[(&[&str], &str)] = &[
        (&[], "-@all"),
        (&["+@all"], "+@all"),
        (&["+get", "+@string", "-set"], "-@all +@string -set"),
        (&["+@all", "-@dangerous"], "+@all -@dangerous"),
        (&["+@all", "-flushall"], "+@all -flushall"),
        (&["-@all", "+get"], "-@all +get"),
        (&["+client|id"], "-@all +client|id"),
        (&["+select|0"], "-@all +select|0"),
        (&["+@all", "-@all", "+ping"], "-@all +ping"),
    ];
    for (rules, want) in cases {
        let user = must_user(rules);
        assert_eq!(describe(&user.perms), *want, "{rules:?}");
        // The description compiles back to the same permissions.
        let again: Vec<String> = want.split(' ').map(str::to_string).collect();
        assert_eq!(Perms::compile(&again), user.perms, "{rules:?}");
    }
}

#[test]
fn command_rules_are_checked_against_the_table() {
    assert_eq!(validate("+get"), Ok(()));
    assert_eq!(validate("-CONFIG|SET"), Ok(()));
    assert_eq!(validate("+@Admin"), Ok(()));
    assert_eq!(validate("+nosuch"), Err(RuleRefusal::Unknown));
    assert_eq!(validate("+@nosuch"), Err(RuleRefusal::Unknown));
    assert_eq!(validate("+client|nosuch"), Err(RuleRefusal::Unknown));
    assert_eq!(
        validate("+client|id|x"),
        Err(RuleRefusal::FirstArgOfSubcommand)
    );
    assert_eq!(validate("+get|"), Err(RuleRefusal::Syntax));
    assert_eq!(validate("-select|0"), Err(RuleRefusal::Unknown));
}

#[test]
fn commands_keys_and_channels_are_enforced() {
    let u = must_user(&[
        "on",
        "+get",
        "+set",
        "+exists",
        "+publish",
        "+subscribe",
        "+psubscribe",
        "+select|0",
        "+client|id",
        "~k*",
        "%R~r*",
        "%W~w*",
        "&news.*",
    ]);
    struct Case {
        argv: &'static [&'static str],
        want: Result<(), Denied>,
    }
    let cases = [
        Case {
            argv: &["GET", "k1"],
            want: Ok(()),
        },
        Case {
            argv: &["get", "r1"],
            want: Ok(()),
        },
        Case {
            argv: &["GET", "w1"],
            want: Err(Denied::Key(1)),
        },
        Case {
            argv: &["SET", "w1", "v"],
            want: Ok(()),
        },
        Case {
            argv: &["SET", "w1", "v", "GET"],
            want: Err(Denied::Key(1)),
        },
        Case {
            argv: &["SET", "r1", "v"],
            want: Err(Denied::Key(1)),
        },
        // EXISTS's key spec is RO without `access`: any pattern that matches the name does.
        Case {
            argv: &["EXISTS", "w1", "r1"],
            want: Ok(()),
        },
        Case {
            argv: &["EXISTS", "k1", "z"],
            want: Err(Denied::Key(2)),
        },
        Case {
            argv: &["DEL", "k1"],
            want: Err(Denied::Command),
        },
        Case {
            argv: &["SELECT", "0"],
            want: Ok(()),
        },
        Case {
            argv: &["SELECT", "1"],
            want: Err(Denied::Command),
        },
        Case {
            argv: &["CLIENT", "ID"],
            want: Ok(()),
        },
        Case {
            argv: &["CLIENT", "LIST"],
            want: Err(Denied::Command),
        },
        Case {
            argv: &["AUTH", "a", "b"],
            want: Ok(()),
        },
        Case {
            argv: &["PUBLISH", "news.x", "m"],
            want: Ok(()),
        },
        Case {
            argv: &["PUBLISH", "other", "m"],
            want: Err(Denied::Channel(1)),
        },
        Case {
            argv: &["SUBSCRIBE", "news.a", "x"],
            want: Err(Denied::Channel(2)),
        },
        // A pattern subscription must equal an allowed pattern.
        Case {
            argv: &["PSUBSCRIBE", "news.*"],
            want: Ok(()),
        },
        Case {
            argv: &["PSUBSCRIBE", "news.a*"],
            want: Err(Denied::Channel(1)),
        },
    ];
    for c in cases {
        assert_eq!(check(&u, c.argv), c.want, "{:?}", c.argv);
    }
    let admin_denied = must_user(&["on", "+@all", "-@admin", "~*", "&*"]);
    assert_eq!(check(&admin_denied, &["RAFT.INFO"]), Err(Denied::Command));
    assert_eq!(
        check(&admin_denied, &["CONFIG", "SET", "a", "b"]),
        Err(Denied::Command)
    );
    assert_eq!(check(&admin_denied, &["GET", "x"]), Ok(()));
}
