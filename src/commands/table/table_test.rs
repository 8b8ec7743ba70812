//! The command table: lookups, subcommands, ids, flags and the case fold of names.

use super::*;

#[test]
fn names_are_unique_lowercase_and_subcommands_are_prefixed() {
    let mut seen = std::collections::HashSet::new();
    for c in commands() {
        assert_eq!(c.name, c.name.to_ascii_lowercase());
        assert!(seen.insert(c.name), "duplicate {}", c.name);
        for s in c.subcommands {
            assert!(s.name.starts_with(&format!("{}|", c.name)), "{}", s.name);
            assert!(s.subcommands.is_empty());
        }
        // A key spec index named by an argument exists.
        fn check(args: &[Arg], specs: usize, name: &str) {
            for a in args {
                assert!(a.key_spec_index < specs as i64, "{name}: {}", a.name);
                check(a.arguments, specs, name);
            }
        }
        check(c.doc.arguments, c.key_specs.len(), c.name);
    }
}

/// AsciiCaseFold: names match in any ASCII case; a name that only Unicode folding would
/// turn into a command (the Kelvin sign K is U+212A, which folds to `k`) is unknown here and in
/// what `route` runs, as in Redis; every name in the table fits the fold buffer.
#[test]
fn command_names_fold_ascii_case_only() {
    let argv = |parts: &[&str]| -> Vec<Bytes> {
        parts
            .iter()
            .map(|p| Bytes::copy_from_slice(p.as_bytes()))
            .collect()
    };
    assert_eq!(
        id_of(&argv(&["SeT", "k", "v"])),
        id_of(&argv(&["set", "k", "v"]))
    );
    assert_ne!(id_of(&argv(&["SET"])), CmdId::NONE);
    assert!(matches!(
        lookup_argv(&argv(&["Client", "SETNAME", "x"])),
        Lookup::Found(spec, _) if spec.name == "client|setname"
    ));
    let kelvin = argv(&["\u{212A}EYS", "*"]);
    assert!(matches!(lookup_argv(&kelvin), Lookup::Unknown));
    assert_eq!(id_of(&kelvin), CmdId::NONE);
    let parse = crate::protocol::parse::Parse::new(kelvin);
    assert_ne!(parse.command_name(), "keys");
    assert!(matches!(
        lookup_argv(&argv(&[&"x".repeat(NAME_MAX + 1)])),
        Lookup::Unknown
    ));
    assert!(matches!(lookup_argv(&[]), Lookup::Unknown));
    for c in COMMANDS {
        assert!(c.name.len() <= NAME_MAX, "{}", c.name);
        for sub in c.subcommands {
            let container = sub.name.split('|').next().unwrap_or(sub.name);
            assert!(container.len() <= NAME_MAX, "{}", sub.name);
        }
    }
}

#[test]
fn lookup_resolves_subcommands_and_ids_round_trip() {
    let Lookup::Found(spec, id) = lookup("client", Some(b"SetName")) else {
        panic!("client setname")
    };
    assert_eq!(spec.name, "client|setname");
    assert_eq!(id.name(), "client|setname");
    let Lookup::Found(spec, id) = lookup("get", Some(b"key")) else {
        panic!("get")
    };
    assert_eq!((spec.name, id.name()), ("get", "get"));
    let Lookup::Found(spec, _) = lookup("client", None) else {
        panic!("client alone")
    };
    assert!(
        !spec.arity_ok(1),
        "CLIENT alone fails its arity, as in Redis"
    );
    assert!(matches!(
        lookup("client", Some(b"nope")),
        Lookup::UnknownSubcommand(c) if c.name == "client"
    ));
    assert!(matches!(lookup("nosuch", None), Lookup::Unknown));
    assert_eq!(CmdId::NONE.name(), "NULL");
    assert_eq!(find("CLIENT|LIST").map(|c| c.name), Some("client|list"));
    assert!(find("client|nope").is_none());
}

#[test]
fn arity_follows_redis_rules() {
    let get = command("get").unwrap();
    assert!(get.arity_ok(2) && !get.arity_ok(1) && !get.arity_ok(3));
    let del = command("del").unwrap();
    assert!(del.arity_ok(2) && del.arity_ok(9) && !del.arity_ok(1));
}

#[test]
fn only_the_handshake_commands_skip_auth() {
    let no_auth: Vec<&str> = commands()
        .iter()
        .filter(|c| c.has_flag("no_auth"))
        .map(|c| c.name)
        .collect();
    assert_eq!(no_auth, ["hello", "auth", "quit", "reset"]);
}

#[test]
fn info_entry_has_redis_shape() {
    let Frame::Array(items) = command("get").unwrap().info_frame() else {
        panic!("array")
    };
    assert_eq!(items.len(), 10);
    assert_eq!(items[0], Frame::Bulk(Bytes::from_static(b"get")));
    assert_eq!(items[1], Frame::Integer(2));
    assert_eq!(
        items[2],
        Frame::Set(vec![
            Frame::Simple("readonly".into()),
            Frame::Simple("fast".into())
        ])
    );
    assert_eq!(
        items[3..6],
        [Frame::Integer(1), Frame::Integer(1), Frame::Integer(1)]
    );
}
