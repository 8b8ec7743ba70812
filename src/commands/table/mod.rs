//! The command table: every command redraft answers, with the metadata Redis 7 publishes for it
//! (`COMMAND INFO`: arity, flags, first/last/step keys, ACL categories, tips, key specs; `COMMAND
//! DOCS`: summary, since, group, complexity, history, arguments). This file holds the types and
//! the code that reads them (lookup, `CmdId`, the `COMMAND` reply frames); the entries themselves
//! are in `data.rs`. Static data only: it runs nothing and must not import anything but
//! `protocol`.
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
//! Adding a command: add its entry to `data.rs` (copy Redis's from `COMMAND INFO` / `COMMAND
//! DOCS`), then give it an arm in `commands/route.rs` (`CONTRIBUTING.md` walks through one). A
//! command missing here still runs, but is not
//! arity-checked up front, shows as `cmd=NULL` in `CLIENT LIST`, and is not listed by `COMMAND`.
//!
//! Every key spec of this table finds keys with `range` or (EVAL's) `keynum`, and begins with
//! `index` or (XREAD's) `keyword`, so only those kinds are modelled.

use std::collections::HashMap;
use std::sync::OnceLock;

use bytes::Bytes;

use crate::protocol::Frame;

mod data;
mod keys;
use data::COMMANDS;

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
    /// A `keynum` find-keys (EVAL's `numkeys`) instead of `range`, when set.
    pub keynum: Option<KeyNum>,
}

/// A `keynum` find-keys spec: the argument at `keynumidx` (after the begin search) counts the
/// keys, which start `firstkey` after it, every `keystep`.
#[derive(Debug)]
pub struct KeyNum {
    pub keynumidx: i64,
    pub firstkey: i64,
    pub keystep: i64,
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
        keynum: None,
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

/// The longest command name [`lookup_argv`] folds; a longer name is not in the table (a test
/// checks the table against it).
const NAME_MAX: usize = 32;

/// The id of the command `argv` calls (its subcommand's for a container), or
/// [`CmdId::NONE`] when the table does not know it.
pub fn id_of(argv: &[Bytes]) -> CmdId {
    match lookup_argv(argv) {
        Lookup::Found(_, id) => id,
        _ => CmdId::NONE,
    }
}

/// Resolves `argv` as [`lookup`] does, folding the name's case without allocating.
///
/// **AsciiCaseFold.** Command names are matched ASCII case-insensitively, as Redis's
/// `strcasecmp` matches them. Every place that turns a name into a command folds it this way:
/// this lookup (the table, the checks before a command runs, `INFO commandstats`),
/// `Parse::new` (what `route` runs), `MULTI`'s queue, scripts' `redis.call` and `ACL DRYRUN`.
/// So the command checked is the command run. Unicode folding would turn the Kelvin sign into
/// `k`, so that "\u{212A}EYS" would run `KEYS`; Redis answers it as an unknown command.
pub fn lookup_argv(argv: &[Bytes]) -> Lookup {
    let Some(name) = argv.first() else {
        return Lookup::Unknown;
    };
    let mut buf = [0u8; NAME_MAX];
    let Some(folded) = buf.get_mut(..name.len()) else {
        return Lookup::Unknown;
    };
    for (to, from) in folded.iter_mut().zip(name.iter()) {
        *to = from.to_ascii_lowercase();
    }
    let Ok(lower) = std::str::from_utf8(folded) else {
        return Lookup::Unknown;
    };
    lookup(lower, argv.get(1).map(|a| &a[..]))
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
        let find = match &self.keynum {
            None => vec![
                (bulk("type"), bulk("range")),
                (
                    bulk("spec"),
                    Frame::Map(vec![
                        (bulk("lastkey"), Frame::Integer(self.lastkey)),
                        (bulk("keystep"), Frame::Integer(self.keystep)),
                        (bulk("limit"), Frame::Integer(self.limit)),
                    ]),
                ),
            ],
            Some(k) => vec![
                (bulk("type"), bulk("keynum")),
                (
                    bulk("spec"),
                    Frame::Map(vec![
                        (bulk("keynumidx"), Frame::Integer(k.keynumidx)),
                        (bulk("firstkey"), Frame::Integer(k.firstkey)),
                        (bulk("keystep"), Frame::Integer(k.keystep)),
                    ]),
                ),
            ],
        };
        m.push((bulk("find_keys"), Frame::Map(find)));
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

#[cfg(test)]
#[path = "table_test.rs"]
mod tests;
