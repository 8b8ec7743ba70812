//! The command table: every command redraft answers, with the metadata Redis 7 publishes for it
//! (`COMMAND INFO`: arity, flags, first/last/step keys, ACL categories, tips, key specs; `COMMAND
//! DOCS`: summary, since, group, complexity, history, arguments). Static data only: it runs
//! nothing and must not import anything but `protocol`.
//!
//! The dispatcher (`commands::check`, for `commands::execute` and `commands::Batch`) uses it as
//! the single source of truth for arity and for the commands allowed before `AUTH` (the
//! `no_auth` flag), in Redis's order: unknown command, unknown subcommand, arity,
//! authentication. `CLIENT LIST`'s `cmd=` names a command by its
//! [`CmdId`] here.
//!
//! The Redis commands' metadata is Redis 7.0's (what `COMMAND INFO` / `COMMAND DOCS` of
//! redis-server 7.0.15 answer, so a client sees the same table from redraft and from Redis),
//! plus Redis 7.2's `CLIENT SETINFO` and `CLIENT NO-TOUCH`. Only the subcommands redraft answers
//! are listed. redraft's own commands (`REVISION`, `GETMETA`, `CAS`, `READMODE`, `RAFT.*`) come
//! last (after Redis's `SHUTDOWN`, added with them), with
//! docs written so that `redis-cli` shows their argument hints.
//!
//! Adding a command: add its entry here (copy Redis's from `COMMAND INFO` / `COMMAND DOCS`), then
//! route it from its family's `execute`. A command missing here still runs, but is not
//! arity-checked up front, shows as `cmd=NULL` in `CLIENT LIST`, and is not listed by `COMMAND`.
//!
//! Every key spec of this table finds keys with `range`, and begins with `index` or (XREAD's)
//! `keyword`, so only those kinds are modelled.

use std::collections::HashMap;
use std::sync::OnceLock;

use bytes::Bytes;

use crate::protocol::Frame;

/// One command or subcommand (`name` is `container|sub` for a subcommand, as Redis names it).
#[derive(Debug)]
pub struct CommandSpec {
    pub name: &'static str,
    /// Redis's arity: `n` means exactly `n` argv entries (the name included), `-n` at least `n`.
    pub arity: i64,
    pub flags: &'static [&'static str],
    pub first_key: i64,
    pub last_key: i64,
    pub step: i64,
    /// With the leading `@`, as `COMMAND INFO` shows them.
    pub acl_categories: &'static [&'static str],
    pub tips: &'static [&'static str],
    pub key_specs: &'static [KeySpec],
    pub subcommands: &'static [CommandSpec],
    pub doc: Doc,
}

/// A key spec whose begin search is `index` and whose find-keys is `range`.
#[derive(Debug)]
pub struct KeySpec {
    pub notes: &'static str,
    pub flags: &'static [&'static str],
    pub begin_index: i64,
    pub lastkey: i64,
    pub keystep: i64,
    pub limit: i64,
    /// A `keyword` begin search (XREAD's `STREAMS`) instead of `index`, when not empty.
    pub begin_keyword: &'static str,
    /// Where the `keyword` search starts.
    pub begin_startfrom: i64,
}

impl KeySpec {
    pub const EMPTY: KeySpec = KeySpec {
        notes: "",
        flags: &[],
        begin_index: 0,
        lastkey: 0,
        keystep: 0,
        limit: 0,
        begin_keyword: "",
        begin_startfrom: 0,
    };
}

/// `COMMAND DOCS` of one command; empty strings and slices are left out of the reply.
#[derive(Debug)]
pub struct Doc {
    pub summary: &'static str,
    pub since: &'static str,
    pub group: &'static str,
    pub complexity: &'static str,
    pub doc_flags: &'static [&'static str],
    pub deprecated_since: &'static str,
    pub replaced_by: &'static str,
    pub history: &'static [(&'static str, &'static str)],
    pub arguments: &'static [Arg],
}

impl Doc {
    pub const EMPTY: Doc = Doc {
        summary: "",
        since: "",
        group: "",
        complexity: "",
        doc_flags: &[],
        deprecated_since: "",
        replaced_by: "",
        history: &[],
        arguments: &[],
    };
}

/// One argument in `COMMAND DOCS`; `key_spec_index` is -1 when absent.
#[derive(Debug)]
pub struct Arg {
    pub name: &'static str,
    pub typ: &'static str,
    pub key_spec_index: i64,
    pub token: &'static str,
    pub summary: &'static str,
    pub since: &'static str,
    pub flags: &'static [&'static str],
    pub deprecated_since: &'static str,
    pub arguments: &'static [Arg],
}

impl Arg {
    pub const EMPTY: Arg = Arg {
        name: "",
        typ: "",
        key_spec_index: -1,
        token: "",
        summary: "",
        since: "",
        flags: &[],
        deprecated_since: "",
        arguments: &[],
    };
}

/// Names a table entry compactly (for `CLIENT LIST`'s `cmd=`, stored in an atomic): the top-level
/// index plus one in the low 16 bits, the subcommand index plus one above them; 0 is none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CmdId(pub u32);

impl CmdId {
    pub const NONE: CmdId = CmdId(0);

    /// The index of the top-level command in [`commands`], or `None` for [`CmdId::NONE`].
    pub fn top_index(self) -> Option<usize> {
        ((self.0 & 0xffff) as usize).checked_sub(1)
    }

    /// Returns the full name (`get`, `client|list`), or `NULL` as Redis shows a client that has
    /// run no known command.
    pub fn name(self) -> &'static str {
        let top = (self.0 & 0xffff) as usize;
        let sub = (self.0 >> 16) as usize;
        let Some(cmd) = top.checked_sub(1).and_then(|i| COMMANDS.get(i)) else {
            return "NULL";
        };
        match sub.checked_sub(1) {
            None => cmd.name,
            Some(j) => cmd.subcommands.get(j).map_or("NULL", |s| s.name),
        }
    }
}

/// What a command line resolves to.
pub enum Lookup {
    /// A known command (or subcommand of a known container).
    Found(&'static CommandSpec, CmdId),
    /// A container command with a subcommand it does not have.
    UnknownSubcommand(&'static CommandSpec),
    /// Not in the table.
    Unknown,
}

fn index() -> &'static HashMap<&'static str, usize> {
    static INDEX: OnceLock<HashMap<&'static str, usize>> = OnceLock::new();
    INDEX.get_or_init(|| {
        COMMANDS
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name, i))
            .collect()
    })
}

/// Returns the top-level command named `name` (lowercase).
pub fn command(name: &str) -> Option<&'static CommandSpec> {
    index().get(name).map(|&i| &COMMANDS[i])
}

/// Resolves an argv: `lower_name` is argv[0] lowercased, `sub` is argv[1] if any. A container
/// (a command with subcommands) called with a subcommand resolves to the subcommand; called
/// alone it resolves to itself (and fails its arity check, as in Redis).
pub fn lookup(lower_name: &str, sub: Option<&[u8]>) -> Lookup {
    let Some(&i) = index().get(lower_name) else {
        return Lookup::Unknown;
    };
    let cmd = &COMMANDS[i];
    let top = CmdId(i as u32 + 1);
    match sub {
        Some(sub) if !cmd.subcommands.is_empty() => {
            match cmd
                .subcommands
                .iter()
                .position(|s| s.sub_name().as_bytes().eq_ignore_ascii_case(sub))
            {
                Some(j) => {
                    Lookup::Found(&cmd.subcommands[j], CmdId(top.0 | ((j as u32 + 1) << 16)))
                }
                None => Lookup::UnknownSubcommand(cmd),
            }
        }
        _ => Lookup::Found(cmd, top),
    }
}

/// Finds a command by its full name (`get`, `client|list`), case-insensitively.
pub fn find(fullname: &str) -> Option<&'static CommandSpec> {
    let lower = fullname.to_ascii_lowercase();
    match lower.split_once('|') {
        None => command(&lower),
        Some((container, sub)) => command(container)?
            .subcommands
            .iter()
            .find(|s| s.sub_name() == sub),
    }
}

/// Every top-level command, in table order.
pub fn commands() -> &'static [CommandSpec] {
    COMMANDS
}

impl CommandSpec {
    /// Returns whether the command has `flag` (lowercase, as `COMMAND INFO` shows flags).
    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.contains(&flag)
    }

    /// Returns whether `argc` argv entries (the name, and for a subcommand the container name,
    /// included) satisfy the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        let argc = argc as i64;
        if self.arity >= 0 {
            argc == self.arity
        } else {
            argc >= -self.arity
        }
    }

    /// The part after `|` of a subcommand's name; the whole name otherwise.
    pub fn sub_name(&self) -> &'static str {
        self.name.rsplit_once('|').map_or(self.name, |(_, s)| s)
    }

    /// Returns this command's `COMMAND INFO` entry.
    pub fn info_frame(&self) -> Frame {
        Frame::Array(vec![
            bulk(self.name),
            Frame::Integer(self.arity),
            simple_set(self.flags),
            Frame::Integer(self.first_key),
            Frame::Integer(self.last_key),
            Frame::Integer(self.step),
            simple_set(self.acl_categories),
            Frame::Set(self.tips.iter().map(|t| bulk(t)).collect()),
            Frame::Set(self.key_specs.iter().map(KeySpec::frame).collect()),
            // Redis's quirk: no subcommands is an empty set, some are an array.
            if self.subcommands.is_empty() {
                Frame::Set(Vec::new())
            } else {
                Frame::Array(
                    self.subcommands
                        .iter()
                        .map(CommandSpec::info_frame)
                        .collect(),
                )
            },
        ])
    }

    /// Returns this command's `COMMAND DOCS` value (the map under its name).
    pub fn docs_frame(&self) -> Frame {
        let d = &self.doc;
        let mut m = vec![
            (bulk("summary"), bulk(d.summary)),
            (bulk("since"), bulk(d.since)),
            (bulk("group"), bulk(d.group)),
            (bulk("complexity"), bulk(d.complexity)),
        ];
        if !d.doc_flags.is_empty() {
            m.push((bulk("doc_flags"), simple_set(d.doc_flags)));
        }
        if !d.deprecated_since.is_empty() {
            m.push((bulk("deprecated_since"), bulk(d.deprecated_since)));
        }
        if !d.replaced_by.is_empty() {
            m.push((bulk("replaced_by"), bulk(d.replaced_by)));
        }
        if !d.history.is_empty() {
            let history = d
                .history
                .iter()
                .map(|(v, what)| Frame::Array(vec![bulk(v), bulk(what)]))
                .collect();
            // A set in RESP3, as Redis sends it.
            m.push((bulk("history"), Frame::Set(history)));
        }
        if !d.arguments.is_empty() {
            m.push((bulk("arguments"), args_frame(d.arguments)));
        }
        if !self.subcommands.is_empty() {
            let subs = self
                .subcommands
                .iter()
                .map(|s| (bulk(s.name), s.docs_frame()))
                .collect();
            m.push((bulk("subcommands"), Frame::Map(subs)));
        }
        Frame::Map(m)
    }
}

impl KeySpec {
    fn frame(&self) -> Frame {
        let mut m = Vec::with_capacity(4);
        if !self.notes.is_empty() {
            m.push((bulk("notes"), bulk(self.notes)));
        }
        m.push((bulk("flags"), simple_set(self.flags)));
        let begin = if self.begin_keyword.is_empty() {
            vec![
                (bulk("type"), bulk("index")),
                (
                    bulk("spec"),
                    Frame::Map(vec![(bulk("index"), Frame::Integer(self.begin_index))]),
                ),
            ]
        } else {
            vec![
                (bulk("type"), bulk("keyword")),
                (
                    bulk("spec"),
                    Frame::Map(vec![
                        (bulk("keyword"), bulk(self.begin_keyword)),
                        (bulk("startfrom"), Frame::Integer(self.begin_startfrom)),
                    ]),
                ),
            ]
        };
        m.push((bulk("begin_search"), Frame::Map(begin)));
        m.push((
            bulk("find_keys"),
            Frame::Map(vec![
                (bulk("type"), bulk("range")),
                (
                    bulk("spec"),
                    Frame::Map(vec![
                        (bulk("lastkey"), Frame::Integer(self.lastkey)),
                        (bulk("keystep"), Frame::Integer(self.keystep)),
                        (bulk("limit"), Frame::Integer(self.limit)),
                    ]),
                ),
            ]),
        ));
        Frame::Map(m)
    }
}

fn args_frame(args: &[Arg]) -> Frame {
    Frame::Array(
        args.iter()
            .map(|a| {
                let mut m = vec![(bulk("name"), bulk(a.name)), (bulk("type"), bulk(a.typ))];
                if a.key_spec_index >= 0 {
                    m.push((bulk("key_spec_index"), Frame::Integer(a.key_spec_index)));
                }
                for (field, value) in [
                    ("token", a.token),
                    ("summary", a.summary),
                    ("since", a.since),
                ] {
                    if !value.is_empty() {
                        m.push((bulk(field), bulk(value)));
                    }
                }
                if !a.flags.is_empty() {
                    m.push((bulk("flags"), simple_set(a.flags)));
                }
                if !a.deprecated_since.is_empty() {
                    m.push((bulk("deprecated_since"), bulk(a.deprecated_since)));
                }
                if !a.arguments.is_empty() {
                    m.push((bulk("arguments"), args_frame(a.arguments)));
                }
                Frame::Map(m)
            })
            .collect(),
    )
}

fn bulk(s: &'static str) -> Frame {
    Frame::Bulk(Bytes::from_static(s.as_bytes()))
}

fn simple_set(items: &[&str]) -> Frame {
    Frame::Set(items.iter().map(|s| Frame::Simple(s.to_string())).collect())
}

/// The table. Redis's commands in Redis's groups (connection, server, string, generic), then
/// redraft's own.
#[rustfmt::skip]
#[allow(clippy::needless_update)] // Generated entries all end in `..EMPTY`, notes or not.
static COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        name: "ping",
        arity: -1,
        flags: &["fast"],
        first_key: 0,
        last_key: 0,
        step: 0,
        acl_categories: &["@fast", "@connection"],
        tips: &["request_policy:all_shards", "response_policy:all_succeeded"],
        key_specs: &[],
        subcommands: &[],
        doc: Doc {
            summary: "Ping the server",
            since: "1.0.0",
            group: "connection",
            complexity: "O(1)",
            arguments: &[
                Arg { name: "message", typ: "string", flags: &["optional"], ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "echo",
        arity: 2,
        flags: &["loading", "stale", "fast"],
        first_key: 0,
        last_key: 0,
        step: 0,
        acl_categories: &["@fast", "@connection"],
        tips: &[],
        key_specs: &[],
        subcommands: &[],
        doc: Doc {
            summary: "Echo the given string",
            since: "1.0.0",
            group: "connection",
            complexity: "O(1)",
            arguments: &[
                Arg { name: "message", typ: "string", ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "hello",
        arity: -1,
        flags: &["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"],
        first_key: 0,
        last_key: 0,
        step: 0,
        acl_categories: &["@fast", "@connection"],
        tips: &[],
        key_specs: &[],
        subcommands: &[],
        doc: Doc {
            summary: "Handshake with Redis",
            since: "6.0.0",
            group: "connection",
            complexity: "O(1)",
            history: &[
                ("6.2.0", "`protover` made optional; when called without arguments the command reports the current connection's context."),
            ],
            arguments: &[
                Arg { name: "arguments", typ: "block", flags: &["optional"], arguments: &[
                        Arg { name: "protover", typ: "integer", ..Arg::EMPTY },
                        Arg { name: "username_password", typ: "block", token: "AUTH", flags: &["optional"], arguments: &[
                                Arg { name: "username", typ: "string", ..Arg::EMPTY },
                                Arg { name: "password", typ: "string", ..Arg::EMPTY },
                            ], ..Arg::EMPTY },
                        Arg { name: "clientname", typ: "string", token: "SETNAME", flags: &["optional"], ..Arg::EMPTY },
                    ], ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "auth",
        arity: -2,
        flags: &["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"],
        first_key: 0,
        last_key: 0,
        step: 0,
        acl_categories: &["@fast", "@connection"],
        tips: &[],
        key_specs: &[],
        subcommands: &[],
        doc: Doc {
            summary: "Authenticate to the server",
            since: "1.0.0",
            group: "connection",
            complexity: "O(N) where N is the number of passwords defined for the user",
            history: &[
                ("6.0.0", "Added ACL style (username and password)."),
            ],
            arguments: &[
                Arg { name: "username", typ: "string", since: "6.0.0", flags: &["optional"], ..Arg::EMPTY },
                Arg { name: "password", typ: "string", ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "select",
        arity: 2,
        flags: &["loading", "stale", "fast"],
        first_key: 0,
        last_key: 0,
        step: 0,
        acl_categories: &["@fast", "@connection"],
        tips: &[],
        key_specs: &[],
        subcommands: &[],
        doc: Doc {
            summary: "Change the selected database for the current connection",
            since: "1.0.0",
            group: "connection",
            complexity: "O(1)",
            arguments: &[
                Arg { name: "index", typ: "integer", ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "quit",
        arity: -1,
        flags: &["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"],
        first_key: 0,
        last_key: 0,
        step: 0,
        acl_categories: &["@fast", "@connection"],
        tips: &[],
        key_specs: &[],
        subcommands: &[],
        doc: Doc {
            summary: "Close the connection",
            since: "1.0.0",
            group: "connection",
            complexity: "O(1)",
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "reset",
        arity: 1,
        flags: &["noscript", "loading", "stale", "fast", "no_auth", "allow_busy"],
        first_key: 0,
        last_key: 0,
        step: 0,
        acl_categories: &["@fast", "@connection"],
        tips: &[],
        key_specs: &[],
        subcommands: &[],
        doc: Doc {
            summary: "Reset the connection",
            since: "6.2.0",
            group: "connection",
            complexity: "O(1)",
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "client",
        arity: -2,
        flags: &[],
        first_key: 0,
        last_key: 0,
        step: 0,
        acl_categories: &["@slow"],
        tips: &[],
        key_specs: &[],
        subcommands: &[
            CommandSpec {
                name: "client|id",
                arity: 2,
                flags: &["noscript", "loading", "stale"],
                first_key: 0,
                last_key: 0,
                step: 0,
                acl_categories: &["@slow", "@connection"],
                tips: &[],
                key_specs: &[],
                subcommands: &[],
                doc: Doc {
                    summary: "Returns the client ID for the current connection",
                    since: "5.0.0",
                    group: "connection",
                    complexity: "O(1)",
                    ..Doc::EMPTY
                },
            },
            CommandSpec {
                name: "client|setname",
                arity: 3,
                flags: &["noscript", "loading", "stale"],
                first_key: 0,
                last_key: 0,
                step: 0,
                acl_categories: &["@slow", "@connection"],
                tips: &[],
                key_specs: &[],
                subcommands: &[],
                doc: Doc {
                    summary: "Set the current connection name",
                    since: "2.6.9",
                    group: "connection",
                    complexity: "O(1)",
                    arguments: &[
                        Arg { name: "connection-name", typ: "string", ..Arg::EMPTY },
                    ],
                    ..Doc::EMPTY
                },
            },
            CommandSpec {
                name: "client|getname",
                arity: 2,
                flags: &["noscript", "loading", "stale"],
                first_key: 0,
                last_key: 0,
                step: 0,
                acl_categories: &["@slow", "@connection"],
                tips: &[],
                key_specs: &[],
                subcommands: &[],
                doc: Doc {
                    summary: "Get the current connection name",
                    since: "2.6.9",
                    group: "connection",
                    complexity: "O(1)",
                    ..Doc::EMPTY
                },
            },
            CommandSpec {
                name: "client|setinfo",
                arity: 4,
                flags: &["noscript", "loading", "stale"],
                first_key: 0,
                last_key: 0,
                step: 0,
                acl_categories: &["@slow", "@connection"],
                tips: &[],
                key_specs: &[],
                subcommands: &[],
                doc: Doc {
                    summary: "Set client or connection specific info",
                    since: "7.2.0",
                    group: "connection",
                    complexity: "O(1)",
                    arguments: &[
                        Arg { name: "attr", typ: "oneof", arguments: &[
                                Arg { name: "libname", typ: "string", token: "LIB-NAME", ..Arg::EMPTY },
                                Arg { name: "libver", typ: "string", token: "LIB-VER", ..Arg::EMPTY },
                            ], ..Arg::EMPTY },
                    ],
                    ..Doc::EMPTY
                },
            },
            CommandSpec {
                name: "client|info",
                arity: 2,
                flags: &["noscript", "loading", "stale"],
                first_key: 0,
                last_key: 0,
                step: 0,
                acl_categories: &["@slow", "@connection"],
                tips: &["nondeterministic_output"],
                key_specs: &[],
                subcommands: &[],
                doc: Doc {
                    summary: "Returns information about the current client connection.",
                    since: "6.2.0",
                    group: "connection",
                    complexity: "O(1)",
                    ..Doc::EMPTY
                },
            },
            CommandSpec {
                name: "client|list",
                arity: -2,
                flags: &["admin", "noscript", "loading", "stale"],
                first_key: 0,
                last_key: 0,
                step: 0,
                acl_categories: &["@admin", "@slow", "@dangerous", "@connection"],
                tips: &["nondeterministic_output"],
                key_specs: &[],
                subcommands: &[],
                doc: Doc {
                    summary: "Get the list of client connections",
                    since: "2.4.0",
                    group: "connection",
                    complexity: "O(N) where N is the number of client connections",
                    history: &[
                        ("2.8.12", "Added unique client `id` field."),
                        ("5.0.0", "Added optional `TYPE` filter."),
                        ("6.0.0", "Added `user` field."),
                        ("6.2.0", "Added `argv-mem`, `tot-mem`, `laddr` and `redir` fields and the optional `ID` filter."),
                        ("7.0.0", "Added `resp`, `multi-mem`, `rbs` and `rbp` fields."),
                        ("7.0.3", "Added `ssub` field."),
                    ],
                    arguments: &[
                        Arg { name: "normal_master_replica_pubsub", typ: "oneof", token: "TYPE", since: "5.0.0", flags: &["optional"], arguments: &[
                                Arg { name: "normal", typ: "pure-token", token: "NORMAL", ..Arg::EMPTY },
                                Arg { name: "master", typ: "pure-token", token: "MASTER", ..Arg::EMPTY },
                                Arg { name: "replica", typ: "pure-token", token: "REPLICA", ..Arg::EMPTY },
                                Arg { name: "pubsub", typ: "pure-token", token: "PUBSUB", ..Arg::EMPTY },
                            ], ..Arg::EMPTY },
                        Arg { name: "id", typ: "block", token: "ID", since: "6.2.0", flags: &["optional"], arguments: &[
                                Arg { name: "client-id", typ: "integer", flags: &["multiple"], ..Arg::EMPTY },
                            ], ..Arg::EMPTY },
                    ],
                    ..Doc::EMPTY
                },
            },
            CommandSpec {
                name: "client|kill",
                arity: -3,
                flags: &["admin", "noscript", "loading", "stale"],
                first_key: 0,
                last_key: 0,
                step: 0,
                acl_categories: &["@admin", "@slow", "@dangerous", "@connection"],
                tips: &[],
                key_specs: &[],
                subcommands: &[],
                doc: Doc {
                    summary: "Kill the connection of a client",
                    since: "2.4.0",
                    group: "connection",
                    complexity: "O(N) where N is the number of client connections",
                    history: &[
                        ("2.8.12", "Added new filter format."),
                        ("2.8.12", "`ID` option."),
                        ("3.2.0", "Added `master` type in for `TYPE` option."),
                        ("5.0.0", "Replaced `slave` `TYPE` with `replica`. `slave` still supported for backward compatibility."),
                        ("6.2.0", "`LADDR` option."),
                    ],
                    arguments: &[
                        Arg { name: "filter", typ: "oneof", arguments: &[
                                Arg { name: "ip:port", typ: "string", deprecated_since: "2.8.12", ..Arg::EMPTY },
                                Arg { name: "new-format", typ: "oneof", flags: &["multiple"], arguments: &[
                                        Arg { name: "client-id", typ: "integer", token: "ID", since: "2.8.12", flags: &["optional"], ..Arg::EMPTY },
                                        Arg { name: "normal_master_slave_pubsub", typ: "oneof", token: "TYPE", since: "2.8.12", flags: &["optional"], arguments: &[
                                                Arg { name: "normal", typ: "pure-token", token: "NORMAL", ..Arg::EMPTY },
                                                Arg { name: "master", typ: "pure-token", token: "MASTER", since: "3.2.0", ..Arg::EMPTY },
                                                Arg { name: "slave", typ: "pure-token", token: "SLAVE", ..Arg::EMPTY },
                                                Arg { name: "replica", typ: "pure-token", token: "REPLICA", since: "5.0.0", ..Arg::EMPTY },
                                                Arg { name: "pubsub", typ: "pure-token", token: "PUBSUB", ..Arg::EMPTY },
                                            ], ..Arg::EMPTY },
                                        Arg { name: "username", typ: "string", token: "USER", flags: &["optional"], ..Arg::EMPTY },
                                        Arg { name: "ip:port", typ: "string", token: "ADDR", flags: &["optional"], ..Arg::EMPTY },
                                        Arg { name: "ip:port", typ: "string", token: "LADDR", since: "6.2.0", flags: &["optional"], ..Arg::EMPTY },
                                        Arg { name: "yes/no", typ: "string", token: "SKIPME", flags: &["optional"], ..Arg::EMPTY },
                                    ], ..Arg::EMPTY },
                            ], ..Arg::EMPTY },
                    ],
                    ..Doc::EMPTY
                },
            },
            CommandSpec {
                name: "client|no-evict",
                arity: 3,
                flags: &["admin", "noscript", "loading", "stale"],
                first_key: 0,
                last_key: 0,
                step: 0,
                acl_categories: &["@admin", "@slow", "@dangerous", "@connection"],
                tips: &[],
                key_specs: &[],
                subcommands: &[],
                doc: Doc {
                    summary: "Set client eviction mode for the current connection",
                    since: "7.0.0",
                    group: "connection",
                    complexity: "O(1)",
                    arguments: &[
                        Arg { name: "enabled", typ: "oneof", arguments: &[
                                Arg { name: "on", typ: "pure-token", token: "ON", ..Arg::EMPTY },
                                Arg { name: "off", typ: "pure-token", token: "OFF", ..Arg::EMPTY },
                            ], ..Arg::EMPTY },
                    ],
                    ..Doc::EMPTY
                },
            },
            CommandSpec {
                name: "client|no-touch",
                arity: 3,
                flags: &["noscript", "loading", "stale"],
                first_key: 0,
                last_key: 0,
                step: 0,
                acl_categories: &["@slow", "@connection"],
                tips: &[],
                key_specs: &[],
                subcommands: &[],
                doc: Doc {
                    summary: "Controls whether commands sent by the client will alter the LRU/LFU of the keys they access.",
                    since: "7.2.0",
                    group: "connection",
                    complexity: "O(1)",
                    arguments: &[
                        Arg { name: "enabled", typ: "oneof", arguments: &[
                                Arg { name: "on", typ: "pure-token", token: "ON", ..Arg::EMPTY },
                                Arg { name: "off", typ: "pure-token", token: "OFF", ..Arg::EMPTY },
                            ], ..Arg::EMPTY },
                    ],
                    ..Doc::EMPTY
                },
            },
            CommandSpec {
                name: "client|help",
                arity: 2,
                flags: &["loading", "stale"],
                first_key: 0,
                last_key: 0,
                step: 0,
                acl_categories: &["@slow", "@connection"],
                tips: &[],
                key_specs: &[],
                subcommands: &[],
                doc: Doc {
                    summary: "Show helpful text about the different subcommands",
                    since: "5.0.0",
                    group: "connection",
                    complexity: "O(1)",
                    ..Doc::EMPTY
                },
            },
        ],
        doc: Doc {
            summary: "A container for client connection commands",
            since: "2.4.0",
            group: "connection",
            complexity: "Depends on subcommand.",
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "readonly",
        arity: 1,
        flags: &["loading", "stale", "fast"],
        first_key: 0,
        last_key: 0,
        step: 0,
        acl_categories: &["@fast", "@connection"],
        tips: &[],
        key_specs: &[],
        subcommands: &[],
        doc: Doc {
            summary: "Enables read queries for a connection to a cluster replica node",
            since: "3.0.0",
            group: "cluster",
            complexity: "O(1)",
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "readwrite",
        arity: 1,
        flags: &["loading", "stale", "fast"],
        first_key: 0,
        last_key: 0,
        step: 0,
        acl_categories: &["@fast", "@connection"],
        tips: &[],
        key_specs: &[],
        subcommands: &[],
        doc: Doc {
            summary: "Disables read queries for a connection to a cluster replica node",
            since: "3.0.0",
            group: "cluster",
            complexity: "O(1)",
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "info",
        arity: -1,
        flags: &["loading", "stale"],
        first_key: 0,
        last_key: 0,
        step: 0,
        acl_categories: &["@slow", "@dangerous"],
        tips: &["nondeterministic_output", "request_policy:all_shards", "response_policy:special"],
        key_specs: &[],
        subcommands: &[],
        doc: Doc {
            summary: "Get information and statistics about the server",
            since: "1.0.0",
            group: "server",
            complexity: "O(1)",
            history: &[
                ("7.0.0", "Added support for taking multiple section arguments."),
            ],
            arguments: &[
                Arg { name: "section", typ: "string", flags: &["optional", "multiple"], ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "command",
        arity: -1,
        flags: &["loading", "stale"],
        first_key: 0,
        last_key: 0,
        step: 0,
        acl_categories: &["@slow", "@connection"],
        tips: &["nondeterministic_output_order"],
        key_specs: &[],
        subcommands: &[
            CommandSpec {
                name: "command|count",
                arity: 2,
                flags: &["loading", "stale"],
                first_key: 0,
                last_key: 0,
                step: 0,
                acl_categories: &["@slow", "@connection"],
                tips: &[],
                key_specs: &[],
                subcommands: &[],
                doc: Doc {
                    summary: "Get total number of Redis commands",
                    since: "2.8.13",
                    group: "server",
                    complexity: "O(1)",
                    ..Doc::EMPTY
                },
            },
            CommandSpec {
                name: "command|docs",
                arity: -2,
                flags: &["loading", "stale"],
                first_key: 0,
                last_key: 0,
                step: 0,
                acl_categories: &["@slow", "@connection"],
                tips: &["nondeterministic_output_order"],
                key_specs: &[],
                subcommands: &[],
                doc: Doc {
                    summary: "Get array of specific Redis command documentation",
                    since: "7.0.0",
                    group: "server",
                    complexity: "O(N) where N is the number of commands to look up",
                    arguments: &[
                        Arg { name: "command-name", typ: "string", flags: &["optional", "multiple"], ..Arg::EMPTY },
                    ],
                    ..Doc::EMPTY
                },
            },
            CommandSpec {
                name: "command|info",
                arity: -2,
                flags: &["loading", "stale"],
                first_key: 0,
                last_key: 0,
                step: 0,
                acl_categories: &["@slow", "@connection"],
                tips: &["nondeterministic_output_order"],
                key_specs: &[],
                subcommands: &[],
                doc: Doc {
                    summary: "Get array of specific Redis command details, or all when no argument is given.",
                    since: "2.8.13",
                    group: "server",
                    complexity: "O(N) where N is the number of commands to look up",
                    history: &[
                        ("7.0.0", "Allowed to be called with no argument to get info on all commands."),
                    ],
                    arguments: &[
                        Arg { name: "command-name", typ: "string", flags: &["optional", "multiple"], ..Arg::EMPTY },
                    ],
                    ..Doc::EMPTY
                },
            },
            CommandSpec {
                name: "command|list",
                arity: -2,
                flags: &["loading", "stale"],
                first_key: 0,
                last_key: 0,
                step: 0,
                acl_categories: &["@slow", "@connection"],
                tips: &["nondeterministic_output_order"],
                key_specs: &[],
                subcommands: &[],
                doc: Doc {
                    summary: "Get an array of Redis command names",
                    since: "7.0.0",
                    group: "server",
                    complexity: "O(N) where N is the total number of Redis commands",
                    arguments: &[
                        Arg { name: "filterby", typ: "oneof", token: "FILTERBY", flags: &["optional"], arguments: &[
                                Arg { name: "module-name", typ: "string", token: "MODULE", ..Arg::EMPTY },
                                Arg { name: "category", typ: "string", token: "ACLCAT", ..Arg::EMPTY },
                                Arg { name: "pattern", typ: "pattern", token: "PATTERN", ..Arg::EMPTY },
                            ], ..Arg::EMPTY },
                    ],
                    ..Doc::EMPTY
                },
            },
            CommandSpec {
                name: "command|help",
                arity: 2,
                flags: &["loading", "stale"],
                first_key: 0,
                last_key: 0,
                step: 0,
                acl_categories: &["@slow", "@connection"],
                tips: &[],
                key_specs: &[],
                subcommands: &[],
                doc: Doc {
                    summary: "Show helpful text about the different subcommands",
                    since: "5.0.0",
                    group: "server",
                    complexity: "O(1)",
                    ..Doc::EMPTY
                },
            },
        ],
        doc: Doc {
            summary: "Get array of Redis command details",
            since: "2.8.13",
            group: "server",
            complexity: "O(N) where N is the total number of Redis commands",
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "config",
        arity: -2,
        flags: &[],
        first_key: 0,
        last_key: 0,
        step: 0,
        acl_categories: &["@slow"],
        tips: &[],
        key_specs: &[],
        subcommands: &[
            CommandSpec {
                name: "config|get",
                arity: -3,
                flags: &["admin", "noscript", "loading", "stale"],
                first_key: 0,
                last_key: 0,
                step: 0,
                acl_categories: &["@admin", "@slow", "@dangerous"],
                tips: &[],
                key_specs: &[],
                subcommands: &[],
                doc: Doc {
                    summary: "Get the values of configuration parameters",
                    since: "2.0.0",
                    group: "server",
                    complexity: "O(N) when N is the number of configuration parameters provided",
                    history: &[
                        ("7.0.0", "Added the ability to pass multiple pattern parameters in one call"),
                    ],
                    arguments: &[
                        Arg { name: "parameter", typ: "block", flags: &["multiple"], arguments: &[
                                Arg { name: "parameter", typ: "string", ..Arg::EMPTY },
                            ], ..Arg::EMPTY },
                    ],
                    ..Doc::EMPTY
                },
            },
            CommandSpec {
                name: "config|set",
                arity: -4,
                flags: &["admin", "noscript", "loading", "stale"],
                first_key: 0,
                last_key: 0,
                step: 0,
                acl_categories: &["@admin", "@slow", "@dangerous"],
                tips: &["request_policy:all_nodes", "response_policy:all_succeeded"],
                key_specs: &[],
                subcommands: &[],
                doc: Doc {
                    summary: "Set configuration parameters to the given values",
                    since: "2.0.0",
                    group: "server",
                    complexity: "O(N) when N is the number of configuration parameters provided",
                    history: &[
                        ("7.0.0", "Added the ability to set multiple parameters in one call."),
                    ],
                    arguments: &[
                        Arg { name: "parameter_value", typ: "block", flags: &["multiple"], arguments: &[
                                Arg { name: "parameter", typ: "string", ..Arg::EMPTY },
                                Arg { name: "value", typ: "string", ..Arg::EMPTY },
                            ], ..Arg::EMPTY },
                    ],
                    ..Doc::EMPTY
                },
            },
            CommandSpec {
                name: "config|resetstat",
                arity: 2,
                flags: &["admin", "noscript", "loading", "stale"],
                first_key: 0,
                last_key: 0,
                step: 0,
                acl_categories: &["@admin", "@slow", "@dangerous"],
                tips: &[],
                key_specs: &[],
                subcommands: &[],
                doc: Doc {
                    summary: "Reset the stats returned by INFO",
                    since: "2.0.0",
                    group: "server",
                    complexity: "O(1)",
                    ..Doc::EMPTY
                },
            },
            CommandSpec {
                name: "config|help",
                arity: 2,
                flags: &["loading", "stale"],
                first_key: 0,
                last_key: 0,
                step: 0,
                acl_categories: &["@slow"],
                tips: &[],
                key_specs: &[],
                subcommands: &[],
                doc: Doc {
                    summary: "Show helpful text about the different subcommands",
                    since: "5.0.0",
                    group: "server",
                    complexity: "O(1)",
                    ..Doc::EMPTY
                },
            },
        ],
        doc: Doc {
            summary: "A container for server configuration commands",
            since: "2.0.0",
            group: "server",
            complexity: "Depends on subcommand.",
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "dbsize",
        arity: 1,
        flags: &["readonly", "fast"],
        first_key: 0,
        last_key: 0,
        step: 0,
        acl_categories: &["@keyspace", "@read", "@fast"],
        tips: &["request_policy:all_shards", "response_policy:agg_sum"],
        key_specs: &[],
        subcommands: &[],
        doc: Doc {
            summary: "Return the number of keys in the selected database",
            since: "1.0.0",
            group: "server",
            complexity: "O(1)",
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "time",
        arity: 1,
        flags: &["loading", "stale", "fast"],
        first_key: 0,
        last_key: 0,
        step: 0,
        acl_categories: &["@fast"],
        tips: &["nondeterministic_output"],
        key_specs: &[],
        subcommands: &[],
        doc: Doc {
            summary: "Return the current server time",
            since: "2.6.0",
            group: "server",
            complexity: "O(1)",
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "role",
        arity: 1,
        flags: &["noscript", "loading", "stale", "fast"],
        first_key: 0,
        last_key: 0,
        step: 0,
        acl_categories: &["@admin", "@fast", "@dangerous"],
        tips: &[],
        key_specs: &[],
        subcommands: &[],
        doc: Doc {
            summary: "Return the role of the instance in the context of replication",
            since: "2.8.12",
            group: "server",
            complexity: "O(1)",
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "flushdb",
        arity: -1,
        flags: &["write"],
        first_key: 0,
        last_key: 0,
        step: 0,
        acl_categories: &["@keyspace", "@write", "@slow", "@dangerous"],
        tips: &["request_policy:all_shards", "response_policy:all_succeeded"],
        key_specs: &[],
        subcommands: &[],
        doc: Doc {
            summary: "Remove all keys from the current database",
            since: "1.0.0",
            group: "server",
            complexity: "O(N) where N is the number of keys in the selected database",
            history: &[
                ("4.0.0", "Added the `ASYNC` flushing mode modifier."),
                ("6.2.0", "Added the `SYNC` flushing mode modifier."),
            ],
            arguments: &[
                Arg { name: "async", typ: "oneof", flags: &["optional"], arguments: &[
                        Arg { name: "async", typ: "pure-token", token: "ASYNC", since: "4.0.0", ..Arg::EMPTY },
                        Arg { name: "sync", typ: "pure-token", token: "SYNC", since: "6.2.0", ..Arg::EMPTY },
                    ], ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "flushall",
        arity: -1,
        flags: &["write"],
        first_key: 0,
        last_key: 0,
        step: 0,
        acl_categories: &["@keyspace", "@write", "@slow", "@dangerous"],
        tips: &["request_policy:all_shards", "response_policy:all_succeeded"],
        key_specs: &[],
        subcommands: &[],
        doc: Doc {
            summary: "Remove all keys from all databases",
            since: "1.0.0",
            group: "server",
            complexity: "O(N) where N is the total number of keys in all databases",
            history: &[
                ("4.0.0", "Added the `ASYNC` flushing mode modifier."),
                ("6.2.0", "Added the `SYNC` flushing mode modifier."),
            ],
            arguments: &[
                Arg { name: "async", typ: "oneof", flags: &["optional"], arguments: &[
                        Arg { name: "async", typ: "pure-token", token: "ASYNC", since: "4.0.0", ..Arg::EMPTY },
                        Arg { name: "sync", typ: "pure-token", token: "SYNC", since: "6.2.0", ..Arg::EMPTY },
                    ], ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "get",
        arity: 2,
        flags: &["readonly", "fast"],
        first_key: 1,
        last_key: 1,
        step: 1,
        acl_categories: &["@read", "@string", "@fast"],
        tips: &[],
        key_specs: &[
            KeySpec { flags: &["RO", "access"], begin_index: 1, lastkey: 0, keystep: 1, limit: 0, ..KeySpec::EMPTY },
        ],
        subcommands: &[],
        doc: Doc {
            summary: "Get the value of a key",
            since: "1.0.0",
            group: "string",
            complexity: "O(1)",
            arguments: &[
                Arg { name: "key", typ: "key", key_spec_index: 0, ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "set",
        arity: -3,
        flags: &["write", "denyoom"],
        first_key: 1,
        last_key: 1,
        step: 1,
        acl_categories: &["@write", "@string", "@slow"],
        tips: &[],
        key_specs: &[
            KeySpec { notes: "RW and ACCESS due to the optional `GET` argument", flags: &["RW", "access", "update", "variable_flags"], begin_index: 1, lastkey: 0, keystep: 1, limit: 0, ..KeySpec::EMPTY },
        ],
        subcommands: &[],
        doc: Doc {
            summary: "Set the string value of a key",
            since: "1.0.0",
            group: "string",
            complexity: "O(1)",
            history: &[
                ("2.6.12", "Added the `EX`, `PX`, `NX` and `XX` options."),
                ("6.0.0", "Added the `KEEPTTL` option."),
                ("6.2.0", "Added the `GET`, `EXAT` and `PXAT` option."),
                ("7.0.0", "Allowed the `NX` and `GET` options to be used together."),
            ],
            arguments: &[
                Arg { name: "key", typ: "key", key_spec_index: 0, ..Arg::EMPTY },
                Arg { name: "value", typ: "string", ..Arg::EMPTY },
                Arg { name: "condition", typ: "oneof", since: "2.6.12", flags: &["optional"], arguments: &[
                        Arg { name: "nx", typ: "pure-token", token: "NX", ..Arg::EMPTY },
                        Arg { name: "xx", typ: "pure-token", token: "XX", ..Arg::EMPTY },
                    ], ..Arg::EMPTY },
                Arg { name: "get", typ: "pure-token", token: "GET", since: "6.2.0", flags: &["optional"], ..Arg::EMPTY },
                Arg { name: "expiration", typ: "oneof", flags: &["optional"], arguments: &[
                        Arg { name: "seconds", typ: "integer", token: "EX", since: "2.6.12", ..Arg::EMPTY },
                        Arg { name: "milliseconds", typ: "integer", token: "PX", since: "2.6.12", ..Arg::EMPTY },
                        Arg { name: "unix-time-seconds", typ: "unix-time", token: "EXAT", since: "6.2.0", ..Arg::EMPTY },
                        Arg { name: "unix-time-milliseconds", typ: "unix-time", token: "PXAT", since: "6.2.0", ..Arg::EMPTY },
                        Arg { name: "keepttl", typ: "pure-token", token: "KEEPTTL", since: "6.0.0", ..Arg::EMPTY },
                    ], ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "setnx",
        arity: 3,
        flags: &["write", "denyoom", "fast"],
        first_key: 1,
        last_key: 1,
        step: 1,
        acl_categories: &["@write", "@string", "@fast"],
        tips: &[],
        key_specs: &[
            KeySpec { flags: &["OW", "insert"], begin_index: 1, lastkey: 0, keystep: 1, limit: 0, ..KeySpec::EMPTY },
        ],
        subcommands: &[],
        doc: Doc {
            summary: "Set the value of a key, only if the key does not exist",
            since: "1.0.0",
            group: "string",
            complexity: "O(1)",
            arguments: &[
                Arg { name: "key", typ: "key", key_spec_index: 0, ..Arg::EMPTY },
                Arg { name: "value", typ: "string", ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "getset",
        arity: 3,
        flags: &["write", "denyoom", "fast"],
        first_key: 1,
        last_key: 1,
        step: 1,
        acl_categories: &["@write", "@string", "@fast"],
        tips: &[],
        key_specs: &[
            KeySpec { flags: &["RW", "access", "update"], begin_index: 1, lastkey: 0, keystep: 1, limit: 0, ..KeySpec::EMPTY },
        ],
        subcommands: &[],
        doc: Doc {
            summary: "Set the string value of a key and return its old value",
            since: "1.0.0",
            group: "string",
            complexity: "O(1)",
            doc_flags: &["deprecated"],
            deprecated_since: "6.2.0",
            replaced_by: "`SET` with the `!GET` argument",
            arguments: &[
                Arg { name: "key", typ: "key", key_spec_index: 0, ..Arg::EMPTY },
                Arg { name: "value", typ: "string", ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "getdel",
        arity: 2,
        flags: &["write", "fast"],
        first_key: 1,
        last_key: 1,
        step: 1,
        acl_categories: &["@write", "@string", "@fast"],
        tips: &[],
        key_specs: &[
            KeySpec { flags: &["RW", "access", "delete"], begin_index: 1, lastkey: 0, keystep: 1, limit: 0, ..KeySpec::EMPTY },
        ],
        subcommands: &[],
        doc: Doc {
            summary: "Get the value of a key and delete the key",
            since: "6.2.0",
            group: "string",
            complexity: "O(1)",
            arguments: &[
                Arg { name: "key", typ: "key", key_spec_index: 0, ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "mget",
        arity: -2,
        flags: &["readonly", "fast"],
        first_key: 1,
        last_key: -1,
        step: 1,
        acl_categories: &["@read", "@string", "@fast"],
        tips: &["request_policy:multi_shard"],
        key_specs: &[
            KeySpec { flags: &["RO", "access"], begin_index: 1, lastkey: -1, keystep: 1, limit: 0, ..KeySpec::EMPTY },
        ],
        subcommands: &[],
        doc: Doc {
            summary: "Get the values of all the given keys",
            since: "1.0.0",
            group: "string",
            complexity: "O(N) where N is the number of keys to retrieve.",
            arguments: &[
                Arg { name: "key", typ: "key", key_spec_index: 0, flags: &["multiple"], ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "mset",
        arity: -3,
        flags: &["write", "denyoom"],
        first_key: 1,
        last_key: -1,
        step: 2,
        acl_categories: &["@write", "@string", "@slow"],
        tips: &["request_policy:multi_shard", "response_policy:all_succeeded"],
        key_specs: &[
            KeySpec { flags: &["OW", "update"], begin_index: 1, lastkey: -1, keystep: 2, limit: 0, ..KeySpec::EMPTY },
        ],
        subcommands: &[],
        doc: Doc {
            summary: "Set multiple keys to multiple values",
            since: "1.0.1",
            group: "string",
            complexity: "O(N) where N is the number of keys to set.",
            arguments: &[
                Arg { name: "key_value", typ: "block", flags: &["multiple"], arguments: &[
                        Arg { name: "key", typ: "key", key_spec_index: 0, ..Arg::EMPTY },
                        Arg { name: "value", typ: "string", ..Arg::EMPTY },
                    ], ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "msetnx",
        arity: -3,
        flags: &["write", "denyoom"],
        first_key: 1,
        last_key: -1,
        step: 2,
        acl_categories: &["@write", "@string", "@slow"],
        tips: &["request_policy:multi_shard", "response_policy:agg_min"],
        key_specs: &[
            KeySpec { flags: &["OW", "insert"], begin_index: 1, lastkey: -1, keystep: 2, limit: 0, ..KeySpec::EMPTY },
        ],
        subcommands: &[],
        doc: Doc {
            summary: "Set multiple keys to multiple values, only if none of the keys exist",
            since: "1.0.1",
            group: "string",
            complexity: "O(N) where N is the number of keys to set.",
            arguments: &[
                Arg { name: "key_value", typ: "block", flags: &["multiple"], arguments: &[
                        Arg { name: "key", typ: "key", key_spec_index: 0, ..Arg::EMPTY },
                        Arg { name: "value", typ: "string", ..Arg::EMPTY },
                    ], ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "del",
        arity: -2,
        flags: &["write"],
        first_key: 1,
        last_key: -1,
        step: 1,
        acl_categories: &["@keyspace", "@write", "@slow"],
        tips: &["request_policy:multi_shard", "response_policy:agg_sum"],
        key_specs: &[
            KeySpec { flags: &["RM", "delete"], begin_index: 1, lastkey: -1, keystep: 1, limit: 0, ..KeySpec::EMPTY },
        ],
        subcommands: &[],
        doc: Doc {
            summary: "Delete a key",
            since: "1.0.0",
            group: "generic",
            complexity: "O(N) where N is the number of keys that will be removed. When a key to remove holds a value other than a string, the individual complexity for this key is O(M) where M is the number of elements in the list, set, sorted set or hash. Removing a single key that holds a string value is O(1).",
            arguments: &[
                Arg { name: "key", typ: "key", key_spec_index: 0, flags: &["multiple"], ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "unlink",
        arity: -2,
        flags: &["write", "fast"],
        first_key: 1,
        last_key: -1,
        step: 1,
        acl_categories: &["@keyspace", "@write", "@fast"],
        tips: &["request_policy:multi_shard", "response_policy:agg_sum"],
        key_specs: &[
            KeySpec { flags: &["RM", "delete"], begin_index: 1, lastkey: -1, keystep: 1, limit: 0, ..KeySpec::EMPTY },
        ],
        subcommands: &[],
        doc: Doc {
            summary: "Delete a key asynchronously in another thread. Otherwise it is just as DEL, but non blocking.",
            since: "4.0.0",
            group: "generic",
            complexity: "O(1) for each key removed regardless of its size. Then the command does O(N) work in a different thread in order to reclaim memory, where N is the number of allocations the deleted objects where composed of.",
            arguments: &[
                Arg { name: "key", typ: "key", key_spec_index: 0, flags: &["multiple"], ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "exists",
        arity: -2,
        flags: &["readonly", "fast"],
        first_key: 1,
        last_key: -1,
        step: 1,
        acl_categories: &["@keyspace", "@read", "@fast"],
        tips: &["request_policy:multi_shard", "response_policy:agg_sum"],
        key_specs: &[
            KeySpec { flags: &["RO"], begin_index: 1, lastkey: -1, keystep: 1, limit: 0, ..KeySpec::EMPTY },
        ],
        subcommands: &[],
        doc: Doc {
            summary: "Determine if a key exists",
            since: "1.0.0",
            group: "generic",
            complexity: "O(N) where N is the number of keys to check.",
            history: &[
                ("3.0.3", "Accepts multiple `key` arguments."),
            ],
            arguments: &[
                Arg { name: "key", typ: "key", key_spec_index: 0, flags: &["multiple"], ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "incr",
        arity: 2,
        flags: &["write", "denyoom", "fast"],
        first_key: 1,
        last_key: 1,
        step: 1,
        acl_categories: &["@write", "@string", "@fast"],
        tips: &[],
        key_specs: &[
            KeySpec { flags: &["RW", "access", "update"], begin_index: 1, lastkey: 0, keystep: 1, limit: 0, ..KeySpec::EMPTY },
        ],
        subcommands: &[],
        doc: Doc {
            summary: "Increment the integer value of a key by one",
            since: "1.0.0",
            group: "string",
            complexity: "O(1)",
            arguments: &[
                Arg { name: "key", typ: "key", key_spec_index: 0, ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "decr",
        arity: 2,
        flags: &["write", "denyoom", "fast"],
        first_key: 1,
        last_key: 1,
        step: 1,
        acl_categories: &["@write", "@string", "@fast"],
        tips: &[],
        key_specs: &[
            KeySpec { flags: &["RW", "access", "update"], begin_index: 1, lastkey: 0, keystep: 1, limit: 0, ..KeySpec::EMPTY },
        ],
        subcommands: &[],
        doc: Doc {
            summary: "Decrement the integer value of a key by one",
            since: "1.0.0",
            group: "string",
            complexity: "O(1)",
            arguments: &[
                Arg { name: "key", typ: "key", key_spec_index: 0, ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "incrby",
        arity: 3,
        flags: &["write", "denyoom", "fast"],
        first_key: 1,
        last_key: 1,
        step: 1,
        acl_categories: &["@write", "@string", "@fast"],
        tips: &[],
        key_specs: &[
            KeySpec { flags: &["RW", "access", "update"], begin_index: 1, lastkey: 0, keystep: 1, limit: 0, ..KeySpec::EMPTY },
        ],
        subcommands: &[],
        doc: Doc {
            summary: "Increment the integer value of a key by the given amount",
            since: "1.0.0",
            group: "string",
            complexity: "O(1)",
            arguments: &[
                Arg { name: "key", typ: "key", key_spec_index: 0, ..Arg::EMPTY },
                Arg { name: "increment", typ: "integer", ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "decrby",
        arity: 3,
        flags: &["write", "denyoom", "fast"],
        first_key: 1,
        last_key: 1,
        step: 1,
        acl_categories: &["@write", "@string", "@fast"],
        tips: &[],
        key_specs: &[
            KeySpec { flags: &["RW", "access", "update"], begin_index: 1, lastkey: 0, keystep: 1, limit: 0, ..KeySpec::EMPTY },
        ],
        subcommands: &[],
        doc: Doc {
            summary: "Decrement the integer value of a key by the given number",
            since: "1.0.0",
            group: "string",
            complexity: "O(1)",
            arguments: &[
                Arg { name: "key", typ: "key", key_spec_index: 0, ..Arg::EMPTY },
                Arg { name: "decrement", typ: "integer", ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "incrbyfloat",
        arity: 3,
        flags: &["write", "denyoom", "fast"],
        first_key: 1,
        last_key: 1,
        step: 1,
        acl_categories: &["@write", "@string", "@fast"],
        tips: &[],
        key_specs: &[
            KeySpec { flags: &["RW", "access", "update"], begin_index: 1, lastkey: 0, keystep: 1, limit: 0, ..KeySpec::EMPTY },
        ],
        subcommands: &[],
        doc: Doc {
            summary: "Increment the float value of a key by the given amount",
            since: "2.6.0",
            group: "string",
            complexity: "O(1)",
            arguments: &[
                Arg { name: "key", typ: "key", key_spec_index: 0, ..Arg::EMPTY },
                Arg { name: "increment", typ: "double", ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "append",
        arity: 3,
        flags: &["write", "denyoom", "fast"],
        first_key: 1,
        last_key: 1,
        step: 1,
        acl_categories: &["@write", "@string", "@fast"],
        tips: &[],
        key_specs: &[
            KeySpec { flags: &["RW", "insert"], begin_index: 1, lastkey: 0, keystep: 1, limit: 0, ..KeySpec::EMPTY },
        ],
        subcommands: &[],
        doc: Doc {
            summary: "Append a value to a key",
            since: "2.0.0",
            group: "string",
            complexity: "O(1). The amortized time complexity is O(1) assuming the appended value is small and the already present value is of any size, since the dynamic string library used by Redis will double the free space available on every reallocation.",
            arguments: &[
                Arg { name: "key", typ: "key", key_spec_index: 0, ..Arg::EMPTY },
                Arg { name: "value", typ: "string", ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "strlen",
        arity: 2,
        flags: &["readonly", "fast"],
        first_key: 1,
        last_key: 1,
        step: 1,
        acl_categories: &["@read", "@string", "@fast"],
        tips: &[],
        key_specs: &[
            KeySpec { flags: &["RO"], begin_index: 1, lastkey: 0, keystep: 1, limit: 0, ..KeySpec::EMPTY },
        ],
        subcommands: &[],
        doc: Doc {
            summary: "Get the length of the value stored in a key",
            since: "2.2.0",
            group: "string",
            complexity: "O(1)",
            arguments: &[
                Arg { name: "key", typ: "key", key_spec_index: 0, ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "getrange",
        arity: 4,
        flags: &["readonly"],
        first_key: 1,
        last_key: 1,
        step: 1,
        acl_categories: &["@read", "@string", "@slow"],
        tips: &[],
        key_specs: &[
            KeySpec { flags: &["RO", "access"], begin_index: 1, lastkey: 0, keystep: 1, limit: 0, ..KeySpec::EMPTY },
        ],
        subcommands: &[],
        doc: Doc {
            summary: "Get a substring of the string stored at a key",
            since: "2.4.0",
            group: "string",
            complexity: "O(N) where N is the length of the returned string. The complexity is ultimately determined by the returned length, but because creating a substring from an existing string is very cheap, it can be considered O(1) for small strings.",
            arguments: &[
                Arg { name: "key", typ: "key", key_spec_index: 0, ..Arg::EMPTY },
                Arg { name: "start", typ: "integer", ..Arg::EMPTY },
                Arg { name: "end", typ: "integer", ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "setrange",
        arity: 4,
        flags: &["write", "denyoom"],
        first_key: 1,
        last_key: 1,
        step: 1,
        acl_categories: &["@write", "@string", "@slow"],
        tips: &[],
        key_specs: &[
            KeySpec { flags: &["RW", "update"], begin_index: 1, lastkey: 0, keystep: 1, limit: 0, ..KeySpec::EMPTY },
        ],
        subcommands: &[],
        doc: Doc {
            summary: "Overwrite part of a string at key starting at the specified offset",
            since: "2.2.0",
            group: "string",
            complexity: "O(1), not counting the time taken to copy the new string in place. Usually, this string is very small so the amortized complexity is O(1). Otherwise, complexity is O(M) with M being the length of the value argument.",
            arguments: &[
                Arg { name: "key", typ: "key", key_spec_index: 0, ..Arg::EMPTY },
                Arg { name: "offset", typ: "integer", ..Arg::EMPTY },
                Arg { name: "value", typ: "string", ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "type",
        arity: 2,
        flags: &["readonly", "fast"],
        first_key: 1,
        last_key: 1,
        step: 1,
        acl_categories: &["@keyspace", "@read", "@fast"],
        tips: &[],
        key_specs: &[
            KeySpec { flags: &["RO"], begin_index: 1, lastkey: 0, keystep: 1, limit: 0, ..KeySpec::EMPTY },
        ],
        subcommands: &[],
        doc: Doc {
            summary: "Determine the type stored at key",
            since: "1.0.0",
            group: "generic",
            complexity: "O(1)",
            arguments: &[
                Arg { name: "key", typ: "key", key_spec_index: 0, ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "rename",
        arity: 3,
        flags: &["write"],
        first_key: 1,
        last_key: 2,
        step: 1,
        acl_categories: &["@keyspace", "@write", "@slow"],
        tips: &[],
        key_specs: &[
            KeySpec { flags: &["RW", "access", "delete"], begin_index: 1, lastkey: 0, keystep: 1, limit: 0, ..KeySpec::EMPTY },
            KeySpec { flags: &["OW", "update"], begin_index: 2, lastkey: 0, keystep: 1, limit: 0, ..KeySpec::EMPTY },
        ],
        subcommands: &[],
        doc: Doc {
            summary: "Rename a key",
            since: "1.0.0",
            group: "generic",
            complexity: "O(1)",
            arguments: &[
                Arg { name: "key", typ: "key", key_spec_index: 0, ..Arg::EMPTY },
                Arg { name: "newkey", typ: "key", key_spec_index: 1, ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "renamenx",
        arity: 3,
        flags: &["write", "fast"],
        first_key: 1,
        last_key: 2,
        step: 1,
        acl_categories: &["@keyspace", "@write", "@fast"],
        tips: &[],
        key_specs: &[
            KeySpec { flags: &["RW", "access", "delete"], begin_index: 1, lastkey: 0, keystep: 1, limit: 0, ..KeySpec::EMPTY },
            KeySpec { flags: &["OW", "insert"], begin_index: 2, lastkey: 0, keystep: 1, limit: 0, ..KeySpec::EMPTY },
        ],
        subcommands: &[],
        doc: Doc {
            summary: "Rename a key, only if the new key does not exist",
            since: "1.0.0",
            group: "generic",
            complexity: "O(1)",
            history: &[
                ("3.2.0", "The command no longer returns an error when source and destination names are the same."),
            ],
            arguments: &[
                Arg { name: "key", typ: "key", key_spec_index: 0, ..Arg::EMPTY },
                Arg { name: "newkey", typ: "key", key_spec_index: 1, ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "keys",
        arity: 2,
        flags: &["readonly"],
        first_key: 0,
        last_key: 0,
        step: 0,
        acl_categories: &["@keyspace", "@read", "@slow", "@dangerous"],
        tips: &["request_policy:all_shards", "nondeterministic_output_order"],
        key_specs: &[],
        subcommands: &[],
        doc: Doc {
            summary: "Find all keys matching the given pattern",
            since: "1.0.0",
            group: "generic",
            complexity: "O(N) with N being the number of keys in the database, under the assumption that the key names in the database and the given pattern have limited length.",
            arguments: &[
                Arg { name: "pattern", typ: "pattern", ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "scan",
        arity: -2,
        flags: &["readonly"],
        first_key: 0,
        last_key: 0,
        step: 0,
        acl_categories: &["@keyspace", "@read", "@slow"],
        tips: &["nondeterministic_output", "request_policy:special"],
        key_specs: &[],
        subcommands: &[],
        doc: Doc {
            summary: "Incrementally iterate the keys space",
            since: "2.8.0",
            group: "generic",
            complexity: "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection.",
            history: &[
                ("6.0.0", "Added the `TYPE` subcommand."),
            ],
            arguments: &[
                Arg { name: "cursor", typ: "integer", ..Arg::EMPTY },
                Arg { name: "pattern", typ: "pattern", token: "MATCH", flags: &["optional"], ..Arg::EMPTY },
                Arg { name: "count", typ: "integer", token: "COUNT", flags: &["optional"], ..Arg::EMPTY },
                Arg { name: "type", typ: "string", token: "TYPE", since: "6.0.0", flags: &["optional"], ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    // Expiry and transactions: Redis 7.0.15's metadata, like the commands above.
    CommandSpec {
        name: "expire",
        arity: -3,
        flags: &["write", "fast"],
        first_key: 1,
        last_key: 1,
        step: 1,
        acl_categories: &["@keyspace", "@write", "@fast"],
        tips: &[],
        key_specs: &[
            KeySpec { flags: &["RW", "update"], begin_index: 1, lastkey: 0, keystep: 1, limit: 0, ..KeySpec::EMPTY },
        ],
        subcommands: &[],
        doc: Doc {
            summary: "Set a key's time to live in seconds",
            since: "1.0.0",
            group: "generic",
            complexity: "O(1)",
            history: &[
                ("7.0.0", "Added options: `NX`, `XX`, `GT` and `LT`."),
            ],
            arguments: &[
                Arg { name: "key", typ: "key", key_spec_index: 0, ..Arg::EMPTY },
                Arg { name: "seconds", typ: "integer", ..Arg::EMPTY },
                Arg { name: "condition", typ: "oneof", since: "7.0.0", flags: &["optional"], arguments: &[
                        Arg { name: "nx", typ: "pure-token", token: "NX", ..Arg::EMPTY },
                        Arg { name: "xx", typ: "pure-token", token: "XX", ..Arg::EMPTY },
                        Arg { name: "gt", typ: "pure-token", token: "GT", ..Arg::EMPTY },
                        Arg { name: "lt", typ: "pure-token", token: "LT", ..Arg::EMPTY },
                    ], ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "pexpire",
        arity: -3,
        flags: &["write", "fast"],
        first_key: 1,
        last_key: 1,
        step: 1,
        acl_categories: &["@keyspace", "@write", "@fast"],
        tips: &[],
        key_specs: &[
            KeySpec { flags: &["RW", "update"], begin_index: 1, lastkey: 0, keystep: 1, limit: 0, ..KeySpec::EMPTY },
        ],
        subcommands: &[],
        doc: Doc {
            summary: "Set a key's time to live in milliseconds",
            since: "2.6.0",
            group: "generic",
            complexity: "O(1)",
            history: &[
                ("7.0.0", "Added options: `NX`, `XX`, `GT` and `LT`."),
            ],
            arguments: &[
                Arg { name: "key", typ: "key", key_spec_index: 0, ..Arg::EMPTY },
                Arg { name: "milliseconds", typ: "integer", ..Arg::EMPTY },
                Arg { name: "condition", typ: "oneof", since: "7.0.0", flags: &["optional"], arguments: &[
                        Arg { name: "nx", typ: "pure-token", token: "NX", ..Arg::EMPTY },
                        Arg { name: "xx", typ: "pure-token", token: "XX", ..Arg::EMPTY },
                        Arg { name: "gt", typ: "pure-token", token: "GT", ..Arg::EMPTY },
                        Arg { name: "lt", typ: "pure-token", token: "LT", ..Arg::EMPTY },
                    ], ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "expireat",
        arity: -3,
        flags: &["write", "fast"],
        first_key: 1,
        last_key: 1,
        step: 1,
        acl_categories: &["@keyspace", "@write", "@fast"],
        tips: &[],
        key_specs: &[
            KeySpec { flags: &["RW", "update"], begin_index: 1, lastkey: 0, keystep: 1, limit: 0, ..KeySpec::EMPTY },
        ],
        subcommands: &[],
        doc: Doc {
            summary: "Set the expiration for a key as a UNIX timestamp",
            since: "1.2.0",
            group: "generic",
            complexity: "O(1)",
            history: &[
                ("7.0.0", "Added options: `NX`, `XX`, `GT` and `LT`."),
            ],
            arguments: &[
                Arg { name: "key", typ: "key", key_spec_index: 0, ..Arg::EMPTY },
                Arg { name: "unix-time-seconds", typ: "unix-time", ..Arg::EMPTY },
                Arg { name: "condition", typ: "oneof", since: "7.0.0", flags: &["optional"], arguments: &[
                        Arg { name: "nx", typ: "pure-token", token: "NX", ..Arg::EMPTY },
                        Arg { name: "xx", typ: "pure-token", token: "XX", ..Arg::EMPTY },
                        Arg { name: "gt", typ: "pure-token", token: "GT", ..Arg::EMPTY },
                        Arg { name: "lt", typ: "pure-token", token: "LT", ..Arg::EMPTY },
                    ], ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "pexpireat",
        arity: -3,
        flags: &["write", "fast"],
        first_key: 1,
        last_key: 1,
        step: 1,
        acl_categories: &["@keyspace", "@write", "@fast"],
        tips: &[],
        key_specs: &[
            KeySpec { flags: &["RW", "update"], begin_index: 1, lastkey: 0, keystep: 1, limit: 0, ..KeySpec::EMPTY },
        ],
        subcommands: &[],
        doc: Doc {
            summary: "Set the expiration for a key as a UNIX timestamp specified in milliseconds",
            since: "2.6.0",
            group: "generic",
            complexity: "O(1)",
            history: &[
                ("7.0.0", "Added options: `NX`, `XX`, `GT` and `LT`."),
            ],
            arguments: &[
                Arg { name: "key", typ: "key", key_spec_index: 0, ..Arg::EMPTY },
                Arg { name: "unix-time-milliseconds", typ: "unix-time", ..Arg::EMPTY },
                Arg { name: "condition", typ: "oneof", since: "7.0.0", flags: &["optional"], arguments: &[
                        Arg { name: "nx", typ: "pure-token", token: "NX", ..Arg::EMPTY },
                        Arg { name: "xx", typ: "pure-token", token: "XX", ..Arg::EMPTY },
                        Arg { name: "gt", typ: "pure-token", token: "GT", ..Arg::EMPTY },
                        Arg { name: "lt", typ: "pure-token", token: "LT", ..Arg::EMPTY },
                    ], ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "persist",
        arity: 2,
        flags: &["write", "fast"],
        first_key: 1,
        last_key: 1,
        step: 1,
        acl_categories: &["@keyspace", "@write", "@fast"],
        tips: &[],
        key_specs: &[
            KeySpec { flags: &["RW", "update"], begin_index: 1, lastkey: 0, keystep: 1, limit: 0, ..KeySpec::EMPTY },
        ],
        subcommands: &[],
        doc: Doc {
            summary: "Remove the expiration from a key",
            since: "2.2.0",
            group: "generic",
            complexity: "O(1)",
            arguments: &[
                Arg { name: "key", typ: "key", key_spec_index: 0, ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "ttl",
        arity: 2,
        flags: &["readonly", "fast"],
        first_key: 1,
        last_key: 1,
        step: 1,
        acl_categories: &["@keyspace", "@read", "@fast"],
        tips: &["nondeterministic_output"],
        key_specs: &[
            KeySpec { flags: &["RO", "access"], begin_index: 1, lastkey: 0, keystep: 1, limit: 0, ..KeySpec::EMPTY },
        ],
        subcommands: &[],
        doc: Doc {
            summary: "Get the time to live for a key in seconds",
            since: "1.0.0",
            group: "generic",
            complexity: "O(1)",
            history: &[
                ("2.8.0", "Added the -2 reply."),
            ],
            arguments: &[
                Arg { name: "key", typ: "key", key_spec_index: 0, ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "pttl",
        arity: 2,
        flags: &["readonly", "fast"],
        first_key: 1,
        last_key: 1,
        step: 1,
        acl_categories: &["@keyspace", "@read", "@fast"],
        tips: &["nondeterministic_output"],
        key_specs: &[
            KeySpec { flags: &["RO", "access"], begin_index: 1, lastkey: 0, keystep: 1, limit: 0, ..KeySpec::EMPTY },
        ],
        subcommands: &[],
        doc: Doc {
            summary: "Get the time to live for a key in milliseconds",
            since: "2.6.0",
            group: "generic",
            complexity: "O(1)",
            history: &[
                ("2.8.0", "Added the -2 reply."),
            ],
            arguments: &[
                Arg { name: "key", typ: "key", key_spec_index: 0, ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "expiretime",
        arity: 2,
        flags: &["readonly", "fast"],
        first_key: 1,
        last_key: 1,
        step: 1,
        acl_categories: &["@keyspace", "@read", "@fast"],
        tips: &[],
        key_specs: &[
            KeySpec { flags: &["RO", "access"], begin_index: 1, lastkey: 0, keystep: 1, limit: 0, ..KeySpec::EMPTY },
        ],
        subcommands: &[],
        doc: Doc {
            summary: "Get the expiration Unix timestamp for a key",
            since: "7.0.0",
            group: "generic",
            complexity: "O(1)",
            arguments: &[
                Arg { name: "key", typ: "key", key_spec_index: 0, ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "pexpiretime",
        arity: 2,
        flags: &["readonly", "fast"],
        first_key: 1,
        last_key: 1,
        step: 1,
        acl_categories: &["@keyspace", "@read", "@fast"],
        tips: &[],
        key_specs: &[
            KeySpec { flags: &["RO", "access"], begin_index: 1, lastkey: 0, keystep: 1, limit: 0, ..KeySpec::EMPTY },
        ],
        subcommands: &[],
        doc: Doc {
            summary: "Get the expiration Unix timestamp for a key in milliseconds",
            since: "7.0.0",
            group: "generic",
            complexity: "O(1)",
            arguments: &[
                Arg { name: "key", typ: "key", key_spec_index: 0, ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "getex",
        arity: -2,
        flags: &["write", "fast"],
        first_key: 1,
        last_key: 1,
        step: 1,
        acl_categories: &["@write", "@string", "@fast"],
        tips: &[],
        key_specs: &[
            KeySpec { notes: "RW and UPDATE because it changes the TTL", flags: &["RW", "access", "update"], begin_index: 1, lastkey: 0, keystep: 1, limit: 0, ..KeySpec::EMPTY },
        ],
        subcommands: &[],
        doc: Doc {
            summary: "Get the value of a key and optionally set its expiration",
            since: "6.2.0",
            group: "string",
            complexity: "O(1)",
            arguments: &[
                Arg { name: "key", typ: "key", key_spec_index: 0, ..Arg::EMPTY },
                Arg { name: "expiration", typ: "oneof", flags: &["optional"], arguments: &[
                        Arg { name: "seconds", typ: "integer", token: "EX", ..Arg::EMPTY },
                        Arg { name: "milliseconds", typ: "integer", token: "PX", ..Arg::EMPTY },
                        Arg { name: "unix-time-seconds", typ: "unix-time", token: "EXAT", ..Arg::EMPTY },
                        Arg { name: "unix-time-milliseconds", typ: "unix-time", token: "PXAT", ..Arg::EMPTY },
                        Arg { name: "persist", typ: "pure-token", token: "PERSIST", ..Arg::EMPTY },
                    ], ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "setex",
        arity: 4,
        flags: &["write", "denyoom"],
        first_key: 1,
        last_key: 1,
        step: 1,
        acl_categories: &["@write", "@string", "@slow"],
        tips: &[],
        key_specs: &[
            KeySpec { flags: &["OW", "update"], begin_index: 1, lastkey: 0, keystep: 1, limit: 0, ..KeySpec::EMPTY },
        ],
        subcommands: &[],
        doc: Doc {
            summary: "Set the value and expiration of a key",
            since: "2.0.0",
            group: "string",
            complexity: "O(1)",
            arguments: &[
                Arg { name: "key", typ: "key", key_spec_index: 0, ..Arg::EMPTY },
                Arg { name: "seconds", typ: "integer", ..Arg::EMPTY },
                Arg { name: "value", typ: "string", ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "psetex",
        arity: 4,
        flags: &["write", "denyoom"],
        first_key: 1,
        last_key: 1,
        step: 1,
        acl_categories: &["@write", "@string", "@slow"],
        tips: &[],
        key_specs: &[
            KeySpec { flags: &["OW", "update"], begin_index: 1, lastkey: 0, keystep: 1, limit: 0, ..KeySpec::EMPTY },
        ],
        subcommands: &[],
        doc: Doc {
            summary: "Set the value and expiration in milliseconds of a key",
            since: "2.6.0",
            group: "string",
            complexity: "O(1)",
            arguments: &[
                Arg { name: "key", typ: "key", key_spec_index: 0, ..Arg::EMPTY },
                Arg { name: "milliseconds", typ: "integer", ..Arg::EMPTY },
                Arg { name: "value", typ: "string", ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "multi",
        arity: 1,
        flags: &["noscript", "loading", "stale", "fast", "allow_busy"],
        first_key: 0,
        last_key: 0,
        step: 0,
        acl_categories: &["@fast", "@transaction"],
        tips: &[],
        key_specs: &[],
        subcommands: &[],
        doc: Doc {
            summary: "Mark the start of a transaction block",
            since: "1.2.0",
            group: "transactions",
            complexity: "O(1)",
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "exec",
        arity: 1,
        flags: &["noscript", "loading", "stale", "skip_slowlog"],
        first_key: 0,
        last_key: 0,
        step: 0,
        acl_categories: &["@slow", "@transaction"],
        tips: &[],
        key_specs: &[],
        subcommands: &[],
        doc: Doc {
            summary: "Execute all commands issued after MULTI",
            since: "1.2.0",
            group: "transactions",
            complexity: "Depends on commands in the transaction",
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "discard",
        arity: 1,
        flags: &["noscript", "loading", "stale", "fast", "allow_busy"],
        first_key: 0,
        last_key: 0,
        step: 0,
        acl_categories: &["@fast", "@transaction"],
        tips: &[],
        key_specs: &[],
        subcommands: &[],
        doc: Doc {
            summary: "Discard all commands issued after MULTI",
            since: "2.0.0",
            group: "transactions",
            complexity: "O(N), when N is the number of queued commands",
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "watch",
        arity: -2,
        flags: &["noscript", "loading", "stale", "fast", "allow_busy"],
        first_key: 1,
        last_key: -1,
        step: 1,
        acl_categories: &["@fast", "@transaction"],
        tips: &[],
        key_specs: &[
            KeySpec { flags: &["RO"], begin_index: 1, lastkey: -1, keystep: 1, limit: 0, ..KeySpec::EMPTY },
        ],
        subcommands: &[],
        doc: Doc {
            summary: "Watch the given keys to determine execution of the MULTI/EXEC block",
            since: "2.2.0",
            group: "transactions",
            complexity: "O(1) for every key.",
            arguments: &[
                Arg { name: "key", typ: "key", key_spec_index: 0, flags: &["multiple"], ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "unwatch",
        arity: 1,
        flags: &["noscript", "loading", "stale", "fast", "allow_busy"],
        first_key: 0,
        last_key: 0,
        step: 0,
        acl_categories: &["@fast", "@transaction"],
        tips: &[],
        key_specs: &[],
        subcommands: &[],
        doc: Doc {
            summary: "Forget about all watched keys",
            since: "2.2.0",
            group: "transactions",
            complexity: "O(1)",
            ..Doc::EMPTY
        },
    },
    // Pub/sub and streams: Redis 7.0.15's metadata. XREAD, XRANGE and XREVRANGE serve
    // only the read-only `__watch__:` streams.
    CommandSpec {
        name: "subscribe",
        arity: -2,
        flags: &["pubsub", "noscript", "loading", "stale"],
        first_key: 0,
        last_key: 0,
        step: 0,
        acl_categories: &["@pubsub", "@slow"],
        tips: &[],
        key_specs: &[],
        subcommands: &[],
        doc: Doc {
            summary: "Listen for messages published to the given channels",
            since: "2.0.0",
            group: "pubsub",
            complexity: "O(N) where N is the number of channels to subscribe to.",
            arguments: &[
                Arg { name: "channel", typ: "string", flags: &["multiple"], ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "psubscribe",
        arity: -2,
        flags: &["pubsub", "noscript", "loading", "stale"],
        first_key: 0,
        last_key: 0,
        step: 0,
        acl_categories: &["@pubsub", "@slow"],
        tips: &[],
        key_specs: &[],
        subcommands: &[],
        doc: Doc {
            summary: "Listen for messages published to channels matching the given patterns",
            since: "2.0.0",
            group: "pubsub",
            complexity: "O(N) where N is the number of patterns the client is already subscribed to.",
            arguments: &[
                Arg { name: "pattern", typ: "block", flags: &["multiple"], arguments: &[
                    Arg { name: "pattern", typ: "pattern", ..Arg::EMPTY },
                ], ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "unsubscribe",
        arity: -1,
        flags: &["pubsub", "noscript", "loading", "stale"],
        first_key: 0,
        last_key: 0,
        step: 0,
        acl_categories: &["@pubsub", "@slow"],
        tips: &[],
        key_specs: &[],
        subcommands: &[],
        doc: Doc {
            summary: "Stop listening for messages posted to the given channels",
            since: "2.0.0",
            group: "pubsub",
            complexity: "O(N) where N is the number of clients already subscribed to a channel.",
            arguments: &[
                Arg { name: "channel", typ: "string", flags: &["optional", "multiple"], ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "punsubscribe",
        arity: -1,
        flags: &["pubsub", "noscript", "loading", "stale"],
        first_key: 0,
        last_key: 0,
        step: 0,
        acl_categories: &["@pubsub", "@slow"],
        tips: &[],
        key_specs: &[],
        subcommands: &[],
        doc: Doc {
            summary: "Stop listening for messages posted to channels matching the given patterns",
            since: "2.0.0",
            group: "pubsub",
            complexity: "O(N+M) where N is the number of patterns the client is already subscribed and M is the number of total patterns subscribed in the system (by any client).",
            arguments: &[
                Arg { name: "pattern", typ: "pattern", flags: &["optional", "multiple"], ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "publish",
        arity: 3,
        flags: &["pubsub", "loading", "stale", "fast"],
        first_key: 0,
        last_key: 0,
        step: 0,
        acl_categories: &["@pubsub", "@fast"],
        tips: &[],
        key_specs: &[],
        subcommands: &[],
        doc: Doc {
            summary: "Post a message to a channel",
            since: "2.0.0",
            group: "pubsub",
            complexity: "O(N+M) where N is the number of clients subscribed to the receiving channel and M is the total number of subscribed patterns (by any client).",
            arguments: &[
                Arg { name: "channel", typ: "string", ..Arg::EMPTY },
                Arg { name: "message", typ: "string", ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "pubsub",
        arity: -2,
        flags: &[],
        first_key: 0,
        last_key: 0,
        step: 0,
        acl_categories: &["@slow"],
        tips: &[],
        key_specs: &[],
        subcommands: &[
            CommandSpec {
                name: "pubsub|numsub",
                arity: -2,
                flags: &["pubsub", "loading", "stale"],
                first_key: 0,
                last_key: 0,
                step: 0,
                acl_categories: &["@pubsub", "@slow"],
                tips: &[],
                key_specs: &[],
                subcommands: &[],
                doc: Doc {
                    summary: "Get the count of subscribers for channels",
                    since: "2.8.0",
                    group: "pubsub",
                    complexity: "O(N) for the NUMSUB subcommand, where N is the number of requested channels",
                    arguments: &[
                        Arg { name: "channel", typ: "string", flags: &["optional", "multiple"], ..Arg::EMPTY },
                    ],
                    ..Doc::EMPTY
                },
            },
            CommandSpec {
                name: "pubsub|numpat",
                arity: 2,
                flags: &["pubsub", "loading", "stale"],
                first_key: 0,
                last_key: 0,
                step: 0,
                acl_categories: &["@pubsub", "@slow"],
                tips: &[],
                key_specs: &[],
                subcommands: &[],
                doc: Doc {
                    summary: "Get the count of unique patterns pattern subscriptions",
                    since: "2.8.0",
                    group: "pubsub",
                    complexity: "O(1)",
                    ..Doc::EMPTY
                },
            },
            CommandSpec {
                name: "pubsub|channels",
                arity: -2,
                flags: &["pubsub", "loading", "stale"],
                first_key: 0,
                last_key: 0,
                step: 0,
                acl_categories: &["@pubsub", "@slow"],
                tips: &[],
                key_specs: &[],
                subcommands: &[],
                doc: Doc {
                    summary: "List active channels",
                    since: "2.8.0",
                    group: "pubsub",
                    complexity: "O(N) where N is the number of active channels, and assuming constant time pattern matching (relatively short channels and patterns)",
                    arguments: &[
                        Arg { name: "pattern", typ: "pattern", flags: &["optional"], ..Arg::EMPTY },
                    ],
                    ..Doc::EMPTY
                },
            },
        ],
        doc: Doc {
            summary: "A container for Pub/Sub commands",
            since: "2.8.0",
            group: "pubsub",
            complexity: "Depends on subcommand.",
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "xread",
        arity: -4,
        flags: &["readonly", "blocking", "movablekeys"],
        first_key: 0,
        last_key: 0,
        step: 0,
        acl_categories: &["@read", "@stream", "@slow", "@blocking"],
        tips: &[],
        key_specs: &[
            KeySpec { flags: &["RO", "access"], begin_keyword: "STREAMS", begin_startfrom: 1, lastkey: -1, keystep: 1, limit: 2, ..KeySpec::EMPTY },
        ],
        subcommands: &[],
        doc: Doc {
            summary: "Return never seen elements in multiple streams, with IDs greater than the ones reported by the caller for each stream. Can block.",
            since: "5.0.0",
            group: "stream",
            complexity: "For each stream mentioned: O(N) with N being the number of elements being returned, it means that XREAD-ing with a fixed COUNT is O(1). Note that when the BLOCK option is used, XADD will pay O(M) time in order to serve the M clients blocked on the stream getting new data.",
            arguments: &[
                Arg { name: "count", typ: "integer", token: "COUNT", flags: &["optional"], ..Arg::EMPTY },
                Arg { name: "milliseconds", typ: "integer", token: "BLOCK", flags: &["optional"], ..Arg::EMPTY },
                Arg { name: "streams", typ: "block", token: "STREAMS", arguments: &[
                    Arg { name: "key", typ: "key", key_spec_index: 0, flags: &["multiple"], ..Arg::EMPTY },
                    Arg { name: "id", typ: "string", flags: &["multiple"], ..Arg::EMPTY },
                ], ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "xrange",
        arity: -4,
        flags: &["readonly"],
        first_key: 1,
        last_key: 1,
        step: 1,
        acl_categories: &["@read", "@stream", "@slow"],
        tips: &[],
        key_specs: &[
            KeySpec { flags: &["RO", "access"], begin_index: 1, lastkey: 0, keystep: 1, limit: 0, ..KeySpec::EMPTY },
        ],
        subcommands: &[],
        doc: Doc {
            summary: "Return a range of elements in a stream, with IDs matching the specified IDs interval",
            since: "5.0.0",
            group: "stream",
            complexity: "O(N) with N being the number of elements being returned. If N is constant (e.g. always asking for the first 10 elements with COUNT), you can consider it O(1).",
            history: &[
                ("6.2.0", "Added exclusive ranges."),
            ],
            arguments: &[
                Arg { name: "key", typ: "key", key_spec_index: 0, ..Arg::EMPTY },
                Arg { name: "start", typ: "string", ..Arg::EMPTY },
                Arg { name: "end", typ: "string", ..Arg::EMPTY },
                Arg { name: "count", typ: "integer", token: "COUNT", flags: &["optional"], ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "xrevrange",
        arity: -4,
        flags: &["readonly"],
        first_key: 1,
        last_key: 1,
        step: 1,
        acl_categories: &["@read", "@stream", "@slow"],
        tips: &[],
        key_specs: &[
            KeySpec { flags: &["RO", "access"], begin_index: 1, lastkey: 0, keystep: 1, limit: 0, ..KeySpec::EMPTY },
        ],
        subcommands: &[],
        doc: Doc {
            summary: "Return a range of elements in a stream, with IDs matching the specified IDs interval, in reverse order (from greater to smaller IDs) compared to XRANGE",
            since: "5.0.0",
            group: "stream",
            complexity: "O(N) with N being the number of elements returned. If N is constant (e.g. always asking for the first 10 elements with COUNT), you can consider it O(1).",
            history: &[
                ("6.2.0", "Added exclusive ranges."),
            ],
            arguments: &[
                Arg { name: "key", typ: "key", key_spec_index: 0, ..Arg::EMPTY },
                Arg { name: "end", typ: "string", ..Arg::EMPTY },
                Arg { name: "start", typ: "string", ..Arg::EMPTY },
                Arg { name: "count", typ: "integer", token: "COUNT", flags: &["optional"], ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    // redraft's own commands (DESIGN §5). Their names and arguments are API.
    CommandSpec {
        name: "revision",
        arity: 1,
        flags: &["readonly", "fast"],
        first_key: 0,
        last_key: 0,
        step: 0,
        acl_categories: &["@keyspace", "@read", "@fast"],
        tips: &[],
        key_specs: &[],
        subcommands: &[],
        doc: Doc {
            summary: "Return the store's current revision, its compact revision, and the raft term and leader (redraft)",
            since: "0.1.0",
            group: "server",
            complexity: "O(1)",
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "getmeta",
        arity: 2,
        flags: &["readonly", "fast"],
        first_key: 1,
        last_key: 1,
        step: 1,
        acl_categories: &["@read", "@string", "@fast"],
        tips: &[],
        key_specs: &[
            KeySpec { flags: &["RO", "access"], begin_index: 1, lastkey: 0, keystep: 1, limit: 0, ..KeySpec::EMPTY },
        ],
        subcommands: &[],
        doc: Doc {
            summary: "Get a key's value with its create_revision, mod_revision, version and ttl (redraft)",
            since: "0.1.0",
            group: "string",
            complexity: "O(1)",
            arguments: &[
                Arg { name: "key", typ: "key", key_spec_index: 0, ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "cas",
        arity: -4,
        flags: &["write", "denyoom"],
        first_key: 1,
        last_key: 1,
        step: 1,
        acl_categories: &["@write", "@string", "@slow"],
        tips: &[],
        key_specs: &[
            KeySpec { flags: &["RW", "access", "update"], begin_index: 1, lastkey: 0, keystep: 1, limit: 0, ..KeySpec::EMPTY },
        ],
        subcommands: &[],
        doc: Doc {
            summary: "Set a key's value only if its mod_revision is the expected one (0: the key must not exist); returns 1 if set, 0 if not (redraft)",
            since: "0.1.0",
            group: "string",
            complexity: "O(1)",
            arguments: &[
                Arg { name: "key", typ: "key", key_spec_index: 0, ..Arg::EMPTY },
                Arg { name: "expected_mod_revision", typ: "integer", ..Arg::EMPTY },
                Arg { name: "value", typ: "string", ..Arg::EMPTY },
                Arg { name: "seconds", typ: "integer", token: "EX", flags: &["optional"], ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "readmode",
        arity: -1,
        flags: &["loading", "stale", "fast"],
        first_key: 0,
        last_key: 0,
        step: 0,
        acl_categories: &["@fast", "@connection"],
        tips: &[],
        key_specs: &[],
        subcommands: &[],
        doc: Doc {
            summary: "Set or return the connection's read mode: linearizable, lease or stale (redraft)",
            since: "0.1.0",
            group: "connection",
            complexity: "O(1)",
            arguments: &[
                Arg { name: "mode", typ: "oneof", flags: &["optional"], arguments: &[
                        Arg { name: "linearizable", typ: "pure-token", token: "LINEARIZABLE", ..Arg::EMPTY },
                        Arg { name: "lease", typ: "pure-token", token: "LEASE", ..Arg::EMPTY },
                        Arg { name: "stale", typ: "pure-token", token: "STALE", ..Arg::EMPTY },
                    ], ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "shutdown",
        arity: -1,
        flags: &["admin", "noscript", "loading", "stale", "no_multi", "allow_busy"],
        first_key: 0,
        last_key: 0,
        step: 0,
        acl_categories: &["@admin", "@slow", "@dangerous"],
        tips: &[],
        key_specs: &[],
        subcommands: &[],
        doc: Doc {
            summary: "Synchronously save the dataset to disk and then shut down the server",
            since: "1.0.0",
            group: "server",
            complexity: "O(N) when saving, where N is the total number of keys in all databases when saving data, otherwise O(1)",
            history: &[("7.0.0", "Added the `NOW`, `FORCE` and `ABORT` modifiers.")],
            arguments: &[
                Arg { name: "nosave_save", typ: "oneof", flags: &["optional"], arguments: &[
                        Arg { name: "nosave", typ: "pure-token", token: "NOSAVE", ..Arg::EMPTY },
                        Arg { name: "save", typ: "pure-token", token: "SAVE", ..Arg::EMPTY },
                    ], ..Arg::EMPTY },
                Arg { name: "now", typ: "pure-token", token: "NOW", since: "7.0.0", flags: &["optional"], ..Arg::EMPTY },
                Arg { name: "force", typ: "pure-token", token: "FORCE", since: "7.0.0", flags: &["optional"], ..Arg::EMPTY },
                Arg { name: "abort", typ: "pure-token", token: "ABORT", since: "7.0.0", flags: &["optional"], ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "raft.info",
        arity: 1,
        flags: &["admin", "loading", "stale", "fast"],
        first_key: 0,
        last_key: 0,
        step: 0,
        acl_categories: &["@admin", "@fast", "@dangerous"],
        tips: &["nondeterministic_output"],
        key_specs: &[],
        subcommands: &[],
        doc: Doc {
            summary: "Return this node's Raft state: id, role, term, leader, log indexes, and every member with its match index and lag (redraft)",
            since: "0.1.0",
            group: "cluster",
            complexity: "O(N) where N is the number of members",
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "raft.transfer",
        arity: -1,
        flags: &["admin", "noscript"],
        first_key: 0,
        last_key: 0,
        step: 0,
        acl_categories: &["@admin", "@slow", "@dangerous"],
        tips: &[],
        key_specs: &[],
        subcommands: &[],
        doc: Doc {
            summary: "Transfer Raft leadership to a voter (the most caught-up one when none is named); returns the new leader's id (redraft)",
            since: "0.1.0",
            group: "cluster",
            complexity: "O(1)",
            arguments: &[
                Arg { name: "id", typ: "integer", flags: &["optional"], ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "raft.snapshot",
        arity: 1,
        flags: &["admin", "noscript"],
        first_key: 0,
        last_key: 0,
        step: 0,
        acl_categories: &["@admin", "@slow", "@dangerous"],
        tips: &[],
        key_specs: &[],
        subcommands: &[],
        doc: Doc {
            summary: "Build a Raft snapshot on this node now; returns once it covers what was applied (redraft)",
            since: "0.1.0",
            group: "cluster",
            complexity: "O(N) where N is the number of revisions kept",
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "raft.addnode",
        arity: 4,
        flags: &["admin", "noscript"],
        first_key: 0,
        last_key: 0,
        step: 0,
        acl_categories: &["@admin", "@slow", "@dangerous"],
        tips: &[],
        key_specs: &[],
        subcommands: &[],
        doc: Doc {
            summary: "Add a node: as a learner, then as a voter once it caught up; returns when it is a voter (redraft)",
            since: "0.1.0",
            group: "cluster",
            complexity: "O(N) where N is the log or snapshot the node must catch up on",
            arguments: &[
                Arg { name: "id", typ: "integer", ..Arg::EMPTY },
                Arg { name: "raft_addr", typ: "string", ..Arg::EMPTY },
                Arg { name: "redis_addr", typ: "string", ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "raft.removenode",
        arity: 2,
        flags: &["admin", "noscript"],
        first_key: 0,
        last_key: 0,
        step: 0,
        acl_categories: &["@admin", "@slow", "@dangerous"],
        tips: &[],
        key_specs: &[],
        subcommands: &[],
        doc: Doc {
            summary: "Remove a node from the cluster (joint consensus; the leader may remove itself) (redraft)",
            since: "0.1.0",
            group: "cluster",
            complexity: "O(1)",
            arguments: &[
                Arg { name: "id", typ: "integer", ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "raft.backup",
        arity: 1,
        flags: &["admin", "noscript", "readonly"],
        first_key: 0,
        last_key: 0,
        step: 0,
        acl_categories: &["@admin", "@slow", "@dangerous"],
        tips: &[],
        key_specs: &[],
        subcommands: &[],
        doc: Doc {
            summary: "Return a consistent backup of the whole store (history window, revision) as one bulk string; `redraft backup` saves it (redraft)",
            since: "0.1.0",
            group: "cluster",
            complexity: "O(N) where N is the number of revisions kept",
            ..Doc::EMPTY
        },
    },
    // History commands (redraft's own; names and arguments are API).
    CommandSpec {
        name: "getat",
        arity: 3,
        flags: &["readonly", "fast"],
        first_key: 1,
        last_key: 1,
        step: 1,
        acl_categories: &["@read", "@string", "@fast"],
        tips: &[],
        key_specs: &[
            KeySpec { flags: &["RO", "access"], begin_index: 1, lastkey: 0, keystep: 1, limit: 0, ..KeySpec::EMPTY },
        ],
        subcommands: &[],
        doc: Doc {
            summary: "Get the value a key had at a revision, or nil if it did not exist then; fails with COMPACTED below the compact revision (redraft)",
            since: "0.1.0",
            group: "string",
            complexity: "O(log N) where N is the number of stored versions of the key.",
            arguments: &[
                Arg { name: "key", typ: "key", key_spec_index: 0, ..Arg::EMPTY },
                Arg { name: "revision", typ: "integer", ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "history",
        arity: -2,
        flags: &["readonly"],
        first_key: 1,
        last_key: 1,
        step: 1,
        acl_categories: &["@read", "@string", "@slow"],
        tips: &[],
        key_specs: &[
            KeySpec { flags: &["RO", "access"], begin_index: 1, lastkey: 0, keystep: 1, limit: 0, ..KeySpec::EMPTY },
        ],
        subcommands: &[],
        doc: Doc {
            summary: "List a key's stored versions, oldest first, as [revision, event, value] (event: set, del or expired; value nil for a delete) (redraft)",
            since: "0.1.0",
            group: "string",
            complexity: "O(log N + M) where N is the number of stored versions of the key and M the number returned.",
            arguments: &[
                Arg { name: "key", typ: "key", key_spec_index: 0, ..Arg::EMPTY },
                Arg { name: "from", typ: "integer", token: "FROM", flags: &["optional"], ..Arg::EMPTY },
                Arg { name: "to", typ: "integer", token: "TO", flags: &["optional"], ..Arg::EMPTY },
                Arg { name: "count", typ: "integer", token: "COUNT", flags: &["optional"], ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "rollback",
        arity: 3,
        flags: &["write", "denyoom"],
        first_key: 1,
        last_key: 1,
        step: 1,
        acl_categories: &["@write", "@string", "@slow"],
        tips: &[],
        key_specs: &[
            KeySpec { flags: &["RW", "access", "update"], begin_index: 1, lastkey: 0, keystep: 1, limit: 0, ..KeySpec::EMPTY },
        ],
        subcommands: &[],
        doc: Doc {
            summary: "Write the value a key had at a revision as a new revision (delete it if it did not exist then); returns the store's revision afterwards (redraft)",
            since: "0.1.0",
            group: "string",
            complexity: "O(log N) where N is the number of stored versions of the key.",
            arguments: &[
                Arg { name: "key", typ: "key", key_spec_index: 0, ..Arg::EMPTY },
                Arg { name: "revision", typ: "integer", ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
    CommandSpec {
        name: "compact",
        arity: 2,
        flags: &["write"],
        first_key: 0,
        last_key: 0,
        step: 0,
        acl_categories: &["@keyspace", "@write", "@slow", "@dangerous"],
        tips: &[],
        key_specs: &[],
        subcommands: &[],
        doc: Doc {
            summary: "Drop history older than a revision (each key keeps its value at it); reads and watches below it then fail with COMPACTED (redraft)",
            since: "0.1.0",
            group: "server",
            complexity: "O(N) where N is the number of keys.",
            arguments: &[
                Arg { name: "revision", typ: "integer", ..Arg::EMPTY },
            ],
            ..Doc::EMPTY
        },
    },
];

#[cfg(test)]
mod tests {
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
}
