//! Command rules against the command table: which table entries a user's rules allow
//! ([`Perms`], Redis 7.0's command bitmap, `allowed_firstargs` and the reserved "future
//! commands" bit), the rule checks `ACL SETUSER` makes before proposing ([`validate`]), and the
//! description `ACL GETUSER`/`ACL LIST` give of a bitmap ([`describe`], Redis 7.0's
//! `ACLDescribeSelectorCommandRules`: `+@all`/`-@all`, then the best-fitting categories, then
//! single commands, in table order where Redis walks its hash table).

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::OnceLock;

use crate::commands::table::{self, CmdId, CommandSpec};

/// Redis 7.0's categories, in `ACLCommandCategories` order (`ACL CAT`, and the order in which
/// [`describe`] tries them).
pub const CATEGORIES: [&str; 21] = [
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

/// One table entry: a top-level command, or a subcommand right after its container.
pub struct Entry {
    pub spec: &'static CommandSpec,
    pub parent: bool,
    /// A container's subcommands (indexes into [`entries`]); empty otherwise.
    pub subs: Range<usize>,
}

struct Table {
    entries: Vec<Entry>,
    by_name: HashMap<&'static str, usize>,
    /// The entry of each top-level command, by its table index.
    top: Vec<usize>,
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut entries = Vec::new();
        let mut top = Vec::new();
        for cmd in table::commands() {
            let at = entries.len();
            top.push(at);
            let n = cmd.subcommands.len();
            entries.push(Entry {
                spec: cmd,
                parent: false,
                subs: at + 1..at + 1 + n,
            });
            for sub in cmd.subcommands {
                entries.push(Entry {
                    spec: sub,
                    parent: true,
                    subs: 0..0,
                });
            }
        }
        let by_name = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.spec.name, i))
            .collect();
        Table {
            entries,
            by_name,
            top,
        }
    })
}

/// Every table entry, containers followed by their subcommands.
pub fn entries() -> &'static [Entry] {
    &table().entries
}

/// The entry of a command id from the dispatcher's lookup.
pub fn index_of(id: CmdId) -> Option<usize> {
    let t = table();
    let top = *t.top.get(id.top_index()?)?;
    match (id.0 >> 16) as usize {
        0 => Some(top),
        sub => Some(top + sub),
    }
}

/// Redis's `ACLLookupCommand`: `name` or `container|sub`, case-insensitively.
fn lookup(name: &str) -> Option<usize> {
    table()
        .by_name
        .get(name.to_ascii_lowercase().as_str())
        .copied()
}

fn has_category(spec: &CommandSpec, cat: &str) -> bool {
    spec.acl_categories
        .iter()
        .any(|c| c.strip_prefix('@') == Some(cat))
}

/// Whether `name` is one of [`CATEGORIES`] (lowercase, as Redis compares them).
pub fn is_category(name: &str) -> bool {
    CATEGORIES.iter().any(|c| c.eq_ignore_ascii_case(name))
}

/// The full names of the commands in `cat` (`ACL CAT cat`), in table order.
pub fn category_commands(cat: &str) -> Vec<&'static str> {
    let cat = cat.to_ascii_lowercase();
    entries()
        .iter()
        .filter(|e| has_category(e.spec, &cat))
        .map(|e| e.spec.name)
        .collect()
}

/// Why a command rule was refused (Redis's errno for it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleRefusal {
    /// ENOENT: "Unknown command or category name in ACL".
    Unknown,
    /// ECHILD: a first argument of a subcommand.
    FirstArgOfSubcommand,
    /// EINVAL: `+cmd|` with nothing after the bar.
    Syntax,
}

impl RuleRefusal {
    pub fn text(self) -> &'static str {
        match self {
            RuleRefusal::Unknown => "Unknown command or category name in ACL",
            RuleRefusal::FirstArgOfSubcommand => {
                "Allowing first-arg of a subcommand is not supported"
            }
            RuleRefusal::Syntax => "Syntax error",
        }
    }
}

/// A selector's command permissions: one bit per table entry, Redis's `ALLCOMMANDS` flag,
/// the reserved bit only `+@all` sets, and the first arguments allowed of denied commands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Perms {
    allowed: Vec<bool>,
    pub all: bool,
    pub future: bool,
    firstargs: BTreeMap<usize, Vec<String>>,
}

impl Perms {
    /// No command allowed (`-@all`).
    pub fn none() -> Self {
        Perms {
            allowed: vec![false; entries().len()],
            all: false,
            future: false,
            firstargs: BTreeMap::new(),
        }
    }

    /// The permissions of a stored rule list (`AclUser::commands`). A rule the table no longer
    /// knows is skipped.
    pub fn compile(rules: &[String]) -> Self {
        let mut p = Perms::none();
        for r in rules {
            let _ = p.apply(r);
        }
        p
    }

    pub fn allows(&self, index: usize) -> bool {
        self.allowed.get(index).copied().unwrap_or(false)
    }

    /// The first arguments allowed of the denied command at `index`.
    pub fn firstargs(&self, index: usize) -> &[String] {
        self.firstargs.get(&index).map_or(&[], Vec::as_slice)
    }

    fn set_bit(&mut self, i: usize, allow: bool) {
        self.allowed[i] = allow;
        if !allow {
            self.all = false;
        }
    }

    /// Redis's `ACLChangeSelectorPerm`: the entry, and a container's subcommands with it.
    fn change(&mut self, i: usize, allow: bool) {
        self.set_bit(i, allow);
        self.firstargs.remove(&i);
        for s in entries()[i].subs.clone() {
            self.set_bit(s, allow);
        }
    }

    fn category(&mut self, cat: &str, allow: bool) {
        for &top in &table().top {
            if has_category(entries()[top].spec, cat) {
                self.change(top, allow);
            }
            for s in entries()[top].subs.clone() {
                if has_category(entries()[s].spec, cat) {
                    self.change(s, allow);
                }
            }
        }
    }

    /// Applies one command rule (`+get`, `-@admin`, `+client|id`, `+select|0`, `allcommands`).
    pub fn apply(&mut self, rule: &str) -> Result<(), RuleRefusal> {
        let lower = rule.to_ascii_lowercase();
        match lower.as_str() {
            "+@all" | "allcommands" => {
                self.allowed.fill(true);
                self.all = true;
                self.future = true;
                self.firstargs.clear();
                return Ok(());
            }
            "-@all" | "nocommands" => {
                *self = Perms::none();
                return Ok(());
            }
            _ => {}
        }
        let (allow, name) = match lower.split_at(1) {
            ("+", rest) => (true, rest),
            ("-", rest) => (false, rest),
            _ => return Err(RuleRefusal::Syntax),
        };
        if let Some(cat) = name.strip_prefix('@') {
            if !is_category(cat) {
                return Err(RuleRefusal::Unknown);
            }
            self.category(cat, allow);
            return Ok(());
        }
        if !allow || !name.contains('|') {
            let i = lookup(name).ok_or(RuleRefusal::Unknown)?;
            self.change(i, allow);
            return Ok(());
        }
        let (container, sub) = name.rsplit_once('|').unwrap_or((name, ""));
        let i = lookup(container).ok_or(RuleRefusal::Unknown)?;
        if entries()[i].parent {
            return Err(RuleRefusal::FirstArgOfSubcommand);
        }
        if sub.is_empty() {
            return Err(RuleRefusal::Syntax);
        }
        if !entries()[i].subs.is_empty() {
            let s = lookup(name).ok_or(RuleRefusal::Unknown)?;
            self.change(s, true);
        } else {
            let args = self.firstargs.entry(i).or_default();
            if !args.iter().any(|a| a.eq_ignore_ascii_case(sub)) {
                args.push(sub.to_string());
            }
        }
        Ok(())
    }

    fn count(&self, cat: &str) -> (usize, usize) {
        let (mut on, mut off) = (0, 0);
        for (i, e) in entries().iter().enumerate() {
            if has_category(e.spec, cat) {
                if self.allowed[i] {
                    on += 1;
                } else {
                    off += 1;
                }
            }
        }
        (on, off)
    }
}

/// Checks a command rule against the table, as `ACL SETUSER` does before it changes anything.
pub fn validate(rule: &str) -> Result<(), RuleRefusal> {
    Perms::none().apply(rule)
}

/// Whether a SETUSER argument is a command rule (checked against the table here, kept as text
/// by the store).
pub fn is_command_rule(rule: &[u8]) -> bool {
    let lower = rule.to_ascii_lowercase();
    matches!(&lower[..], b"allcommands" | b"nocommands")
        || (rule.len() > 1 && (rule[0] == b'+' || rule[0] == b'-'))
}

/// Redis 7.0's `ACLDescribeSelectorCommandRules` of `perms`.
pub fn describe(perms: &Perms) -> String {
    let additive = !perms.future;
    let mut rules = String::new();
    let mut fake = Perms::none();
    if additive {
        rules.push_str("-@all ");
    } else {
        rules.push_str("+@all ");
        let _ = fake.apply("+@all");
    }
    let mut temp = perms.clone();
    let mut applied = [false; CATEGORIES.len()];
    loop {
        let mut best = None;
        let (mut mindiff, mut maxsame) = (usize::MAX, 0);
        for (j, cat) in CATEGORIES.iter().enumerate() {
            if applied[j] {
                continue;
            }
            let (on, off) = temp.count(cat);
            let (diff, same) = if additive { (off, on) } else { (on, off) };
            if same > diff && (diff < mindiff || (diff == mindiff && same > maxsame)) {
                best = Some(j);
                mindiff = diff;
                maxsame = same;
            }
        }
        let Some(j) = best else { break };
        let cat = CATEGORIES[j];
        fake.category(cat, additive);
        temp.category(cat, !additive);
        rules.push_str(if additive { "+@" } else { "-@" });
        rules.push_str(cat);
        rules.push(' ');
        applied[j] = true;
    }
    for &top in &table().top {
        for i in std::iter::once(top).chain(entries()[top].subs.clone()) {
            let user = perms.allowed[i];
            if user != fake.allowed[i] {
                rules.push(if user { '+' } else { '-' });
                rules.push_str(entries()[i].spec.name);
                rules.push(' ');
                fake.change(i, user);
            }
        }
        if !perms.allowed[top] {
            for arg in perms.firstargs(top) {
                rules.push('+');
                rules.push_str(entries()[top].spec.name);
                rules.push('|');
                rules.push_str(arg);
                rules.push(' ');
            }
        }
    }
    rules.pop();
    rules
}
