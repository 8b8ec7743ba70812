//! COMMAND and its subcommands (COUNT INFO DOCS LIST), answered from the command table
//! (`commands::table`).

use bytes::Bytes;

use crate::commands::reply::{bulk, help_reply};
use crate::commands::table::{self, CommandSpec};
use crate::commands::{CommandError, CommandResult};
use crate::glob;
use crate::protocol::{Frame, Parse, ParseError};

pub(in crate::commands) fn command(parse: &mut Parse) -> CommandResult {
    if parse.remaining() == 0 {
        return Ok(Frame::Array(
            table::commands()
                .iter()
                .map(CommandSpec::info_frame)
                .collect(),
        ));
    }
    let sub = parse.next_string()?.to_ascii_lowercase();
    if sub == "getkeys" || sub == "getkeysandflags" {
        let mut argv = Vec::with_capacity(parse.remaining());
        while parse.remaining() > 0 {
            argv.push(parse.next_bytes()?);
        }
        return getkeys(&argv, sub == "getkeysandflags");
    }
    let mut names = Vec::new();
    while let Ok(n) = parse.next_string() {
        names.push(n);
    }
    match sub.as_str() {
        "count" => Ok(Frame::Integer(table::commands().len() as i64)),
        "info" if names.is_empty() => Ok(Frame::Array(
            table::commands()
                .iter()
                .map(CommandSpec::info_frame)
                .collect(),
        )),
        "info" => Ok(Frame::Array(
            names
                .iter()
                .map(|n| table::find(n).map_or(Frame::Null, CommandSpec::info_frame))
                .collect(),
        )),
        "docs" => {
            let specs: Vec<&CommandSpec> = if names.is_empty() {
                table::commands().iter().collect()
            } else {
                names.iter().filter_map(|n| table::find(n)).collect()
            };
            Ok(Frame::Map(
                specs
                    .into_iter()
                    .map(|s| (bulk(s.name), s.docs_frame()))
                    .collect(),
            ))
        }
        "list" => command_list(&names),
        "help" => Ok(help_reply(
            "COMMAND",
            &[
                "(no subcommand)",
                "    Return details about all Redis commands.",
                "COUNT",
                "    Return the total number of commands in this Redis server.",
                "LIST",
                "    Return a list of all commands in this Redis server.",
                "INFO [<command-name> ...]",
                "    Return details about multiple Redis commands.",
                "    If no command names are given, documentation details for all",
                "    commands are returned.",
                "DOCS [<command-name> ...]",
                "    Return documentation details about multiple Redis commands.",
                "    If no command names are given, documentation details for all",
                "    commands are returned.",
                "GETKEYS <full-command>",
                "    Return the keys from a full Redis command.",
                "GETKEYSANDFLAGS <full-command>",
                "    Return the keys and the access flags from a full Redis command.",
            ],
        )),
        other => Err(CommandError::Reply(format!(
            "ERR unknown subcommand '{other}'. Try COMMAND HELP."
        ))),
    }
}

/// `COMMAND LIST [FILTERBY MODULE m | ACLCAT c | PATTERN p]`; `args` follow `LIST`.
/// `COMMAND GETKEYS|GETKEYSANDFLAGS command [arg ...]` (Redis's `getKeysSubcommandImpl`): the
/// keys the command's key specs find in `argv`, with the specs' flags for GETKEYSANDFLAGS.
/// SET's flags depend on its arguments, as Redis's `setGetKeys` decides them.
fn getkeys(argv: &[Bytes], with_flags: bool) -> CommandResult {
    let err = |m: &str| Err(CommandError::Reply(format!("ERR {m}")));
    let name = String::from_utf8_lossy(&argv[0]).to_ascii_lowercase();
    let spec = match table::lookup(&name, argv.get(1).map(|a| &a[..])) {
        table::Lookup::Found(spec, _) => spec,
        _ => return err("Invalid command specified"),
    };
    if spec.key_specs.is_empty() {
        return err("The command has no key arguments");
    }
    let argc = argv.len() as i64;
    if (spec.arity > 0 && spec.arity != argc) || argc < -spec.arity {
        return err("Invalid number of arguments specified for command");
    }
    let keys = spec.key_positions(argv);
    if keys.is_empty() && !spec.has_flag("no_mandatory_keys") {
        return err("Invalid arguments specified for command");
    }
    let set_with_get = name == "set" && argv[3..].iter().any(|a| a.eq_ignore_ascii_case(b"get"));
    Ok(Frame::Array(
        keys.into_iter()
            .map(|(i, flags)| {
                let key = Frame::Bulk(argv[i].clone());
                if !with_flags {
                    return key;
                }
                let flags: &[&str] = match (name.as_str(), set_with_get) {
                    ("set", true) => &["RW", "access", "update"],
                    ("set", false) => &["OW", "update"],
                    _ => flags,
                };
                Frame::Array(vec![
                    key,
                    Frame::Set(flags.iter().map(|f| Frame::Simple((*f).into())).collect()),
                ])
            })
            .collect(),
    ))
}

fn command_list(args: &[String]) -> CommandResult {
    let keep: Box<dyn Fn(&CommandSpec) -> bool> = match args {
        [] => Box::new(|_| true),
        [filterby, kind, value] if filterby.eq_ignore_ascii_case("filterby") => {
            match kind.to_ascii_lowercase().as_str() {
                // redraft loads no modules.
                "module" => Box::new(|_| false),
                "aclcat" => {
                    let cat = format!("@{}", value.to_ascii_lowercase());
                    Box::new(move |c: &CommandSpec| c.acl_categories.contains(&cat.as_str()))
                }
                "pattern" => {
                    let pattern = value.clone().into_bytes();
                    Box::new(move |c: &CommandSpec| {
                        glob::matches_nocase(&pattern, c.name.as_bytes())
                    })
                }
                _ => return Err(ParseError::Syntax.into()),
            }
        }
        _ => return Err(ParseError::Syntax.into()),
    };
    let mut out = Vec::new();
    for c in table::commands() {
        for spec in std::iter::once(c).chain(c.subcommands.iter()) {
            if keep(spec) {
                out.push(bulk(spec.name));
            }
        }
    }
    Ok(Frame::Array(out))
}
