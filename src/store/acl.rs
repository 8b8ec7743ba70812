//! ACL users as cluster state: [`Users`], the users `ACL SETUSER` made and `ACL DELUSER` did not
//! remove, and the rule language of Redis 7.0's `ACLSetUser` applied to one [`AclUser`].
//!
//! The store keeps each user as data only: flags, password hashes, key and channel patterns,
//! and the command rules (`+get`, `-@admin`, `+client|id`) as the ordered list since the last
//! `+@all`/`-@all`. Which commands a rule names is the command table's business (`commands/`),
//! which checks a rule's names before proposing it and evaluates the list; the store neither
//! knows nor needs the table, so applying a rule is deterministic (DeterministicApply).
//!
//! Invariants:
//! - **UsersReplicated.** A user changes only by an applied [`Op::AclSetUser`] or
//!   [`Op::AclDelUser`](super::Op), so every node has the same users at the same log index, and
//!   they travel in snapshots (format version 4).
//! - **HashedOnly.** A password is kept (and proposed) only as its SHA-256 in lowercase hex;
//!   the commands layer turns `>pass` into `#<sha256>` and `<pass` into `!<sha256>` before a
//!   rule reaches the log.
//! - **ScriptCallsChecked.** A script proposed by a session runs as its user
//!   ([`Op::AsUser`](super::Op)); the script host checks each `redis.call` against that user's
//!   permissions as they are in the store at apply, so every node decides the same.
//! - **AllOrNothing.** A `SETUSER` whose rules fail at any point changes nothing, and names the
//!   failing rule by its index.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Response, Store, StoreError};

/// A key pattern and the access it grants (`~p` both, `%R~p` read, `%W~p` write).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyPattern {
    pub read: bool,
    pub write: bool,
    pub pattern: Bytes,
}

impl KeyPattern {
    /// The rule that adds it back (`~p`, `%R~p`, `%W~p`), as ACL LIST shows it.
    pub fn describe(&self) -> String {
        let p = String::from_utf8_lossy(&self.pattern);
        match (self.read, self.write) {
            (true, true) => format!("~{p}"),
            (true, false) => format!("%R~{p}"),
            (false, true) => format!("%W~{p}"),
            (false, false) => format!("%~{p}"),
        }
    }
}

/// Redis's payload sanitizing flag of a user (shown by GETUSER and LIST, enforced by nothing
/// here: redraft has no RESTORE).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Sanitize {
    #[default]
    Unset,
    Sanitize,
    Skip,
}

/// One user: Redis 7.0's root selector and user flags.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclUser {
    pub enabled: bool,
    pub nopass: bool,
    pub sanitize: Sanitize,
    /// SHA-256 hashes in lowercase hex, in the order added (HashedOnly).
    pub passwords: Vec<String>,
    /// Command rules, lowercase, oldest first. Begins with `+@all` when the user started from
    /// all commands, otherwise from none; an identical earlier rule is dropped when one is
    /// added again (its effect is overwritten by the new one, so the result is the same).
    pub commands: Vec<String>,
    pub allkeys: bool,
    pub keys: Vec<KeyPattern>,
    pub allchannels: bool,
    pub channels: Vec<Bytes>,
}

/// Why a rule was refused: Redis's `ACLSetUserStringError` texts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleError {
    Syntax,
    KeyAfterAll,
    ChannelAfterAll,
    NoSuchPassword,
    BadHash,
}

impl RuleError {
    pub fn text(self) -> &'static str {
        match self {
            RuleError::Syntax => "Syntax error",
            RuleError::KeyAfterAll => {
                "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and \
                 does not have any effect. Try 'resetkeys' to start with an empty list of patterns"
            }
            RuleError::ChannelAfterAll => {
                "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid \
                 and does not have any effect. Try 'resetchannels' to start with an empty list \
                 of channels"
            }
            RuleError::NoSuchPassword => {
                "The password you are trying to remove from the user does not exist"
            }
            RuleError::BadHash => {
                "The password hash must be exactly 64 characters and contain only lowercase \
                 hexadecimal characters"
            }
        }
    }
}

/// SHA-256 of `password` in lowercase hex (Redis's `ACLHashPassword`).
pub fn hash_password(password: &[u8]) -> String {
    Sha256::digest(password)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn valid_hash(h: &[u8]) -> bool {
    h.len() == 64 && h.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn has_spaces(s: &[u8]) -> bool {
    s.iter().any(|&b| b.is_ascii_whitespace() || b == 0)
}

impl AclUser {
    /// A user as `ACL SETUSER` creates it: off, no passwords, no commands, keys or channels
    /// (Redis 7.0's `acl-pubsub-default resetchannels`).
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one rule (Redis's `ACLSetUser`); on error the user may be half changed, so
    /// callers work on a copy (AllOrNothing).
    pub fn apply_rule(&mut self, op: &[u8]) -> Result<(), RuleError> {
        if op.is_empty() {
            return Ok(());
        }
        let lower = op.to_ascii_lowercase();
        match &lower[..] {
            b"on" => self.enabled = true,
            b"off" => self.enabled = false,
            b"skip-sanitize-payload" => self.sanitize = Sanitize::Skip,
            b"sanitize-payload" => self.sanitize = Sanitize::Sanitize,
            b"nopass" => {
                self.nopass = true;
                self.passwords.clear();
            }
            b"resetpass" => {
                self.nopass = false;
                self.passwords.clear();
            }
            b"clearselectors" => {}
            b"reset" => {
                self.nopass = false;
                self.passwords.clear();
                self.allkeys = false;
                self.keys.clear();
                self.allchannels = false;
                self.channels.clear();
                self.enabled = false;
                self.sanitize = Sanitize::Sanitize;
                self.commands.clear();
            }
            b"allkeys" | b"~*" => {
                self.allkeys = true;
                self.keys.clear();
            }
            b"resetkeys" => {
                self.allkeys = false;
                self.keys.clear();
            }
            b"allchannels" | b"&*" => {
                self.allchannels = true;
                self.channels.clear();
            }
            b"resetchannels" => {
                self.allchannels = false;
                self.channels.clear();
            }
            b"allcommands" | b"+@all" => self.commands = vec!["+@all".to_string()],
            b"nocommands" | b"-@all" => self.commands.clear(),
            _ => return self.apply_other(op),
        }
        Ok(())
    }

    fn apply_other(&mut self, op: &[u8]) -> Result<(), RuleError> {
        match op[0] {
            b'>' | b'#' => {
                let hash = if op[0] == b'>' {
                    hash_password(&op[1..])
                } else if valid_hash(&op[1..]) {
                    String::from_utf8_lossy(&op[1..]).into_owned()
                } else {
                    return Err(RuleError::BadHash);
                };
                if !self.passwords.contains(&hash) {
                    self.passwords.push(hash);
                }
                self.nopass = false;
            }
            b'<' | b'!' => {
                let hash = if op[0] == b'<' {
                    hash_password(&op[1..])
                } else if valid_hash(&op[1..]) {
                    String::from_utf8_lossy(&op[1..]).into_owned()
                } else {
                    return Err(RuleError::BadHash);
                };
                let at = self
                    .passwords
                    .iter()
                    .position(|p| *p == hash)
                    .ok_or(RuleError::NoSuchPassword)?;
                self.passwords.remove(at);
            }
            b'~' | b'%' => self.add_key_pattern(op)?,
            b'&' => {
                if self.allchannels {
                    return Err(RuleError::ChannelAfterAll);
                }
                if has_spaces(&op[1..]) {
                    return Err(RuleError::Syntax);
                }
                let pattern = Bytes::copy_from_slice(&op[1..]);
                if !self.channels.contains(&pattern) {
                    self.channels.push(pattern);
                }
                self.allchannels = false;
            }
            b'+' | b'-' if op.len() > 1 => {
                let rule = String::from_utf8_lossy(op).to_ascii_lowercase();
                self.commands.retain(|r| *r != rule);
                self.commands.push(rule);
            }
            _ => return Err(RuleError::Syntax),
        }
        Ok(())
    }

    fn add_key_pattern(&mut self, op: &[u8]) -> Result<(), RuleError> {
        if self.allkeys {
            return Err(RuleError::KeyAfterAll);
        }
        let (mut read, mut write) = (true, true);
        let mut offset = 1;
        if op[0] == b'%' {
            (read, write) = (false, false);
            let mut closed = false;
            while offset < op.len() {
                let c = op[offset].to_ascii_uppercase();
                offset += 1;
                match c {
                    b'R' if !read => read = true,
                    b'W' if !write => write = true,
                    b'~' => {
                        closed = true;
                        break;
                    }
                    _ => return Err(RuleError::Syntax),
                }
            }
            // Redis reads past a `%RW` with no `~` as an empty pattern; so does this.
            let _ = closed;
        }
        let pattern = &op[offset.min(op.len())..];
        if has_spaces(pattern) {
            return Err(RuleError::Syntax);
        }
        let pattern = Bytes::copy_from_slice(pattern);
        match self.keys.iter_mut().find(|k| k.pattern == pattern) {
            Some(k) => {
                k.read |= read;
                k.write |= write;
            }
            None => self.keys.push(KeyPattern {
                read,
                write,
                pattern,
            }),
        }
        Ok(())
    }

    /// Whether `password` logs in as this user (Redis's `ACLCheckUserCredentials`): the user
    /// is on, and has `nopass` or a password whose hash matches, compared in constant time.
    pub fn password_ok(&self, password: &[u8]) -> bool {
        if !self.enabled {
            return false;
        }
        if self.nopass {
            return true;
        }
        let hashed = hash_password(password);
        self.passwords.iter().fold(false, |ok, p| {
            ok | constant_time_eq(p.as_bytes(), hashed.as_bytes())
        })
    }

    /// User flags in Redis's order (`ACLUserFlags`).
    pub fn flags(&self) -> Vec<&'static str> {
        let mut flags = vec![if self.enabled { "on" } else { "off" }];
        if self.nopass {
            flags.push("nopass");
        }
        match self.sanitize {
            Sanitize::Unset => {}
            Sanitize::Skip => flags.push("skip-sanitize-payload"),
            Sanitize::Sanitize => flags.push("sanitize-payload"),
        }
        flags
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Every user the cluster has, by name (UsersReplicated). `version` grows with each change,
/// so a node can tell cheaply whether its compiled view is current. A persistent map: the
/// store's O(1) clone stays O(1).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Users {
    #[serde(deserialize_with = "super::cautious::ord_map")]
    users: imbl::OrdMap<Bytes, AclUser>,
    version: u64,
}

impl Users {
    pub fn get(&self, name: &[u8]) -> Option<&AclUser> {
        self.users.get(name)
    }

    /// Users in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&Bytes, &AclUser)> {
        self.users.iter()
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Grows with every applied change (0: none since the store began).
    pub fn version(&self) -> u64 {
        self.version
    }
}

impl Store {
    /// `ACL SETUSER`'s entry: applies `rules` to the user `name` (to a user made by `create`,
    /// applied to [`AclUser::new`], when there is none), all or nothing (AllOrNothing). Changes
    /// no key: answers [`Response::Noop`].
    pub(super) fn acl_set_user(
        &mut self,
        name: &Bytes,
        rules: &[Bytes],
        create: &[Bytes],
    ) -> Result<Response, StoreError> {
        if has_spaces(name) {
            return Err(StoreError::Acl(
                "ERR Usernames can't contain spaces or null characters".into(),
            ));
        }
        let mut user = match self.users.users.get(name) {
            Some(u) => u.clone(),
            None => {
                let mut u = AclUser::new();
                for rule in create {
                    // The creating node checked these; a refusal leaves them out.
                    let _ = u.apply_rule(rule);
                }
                u
            }
        };
        for (index, rule) in rules.iter().enumerate() {
            if let Err(e) = user.apply_rule(rule) {
                return Err(StoreError::AclRule {
                    index: index as u64,
                    reason: e.text().to_string(),
                });
            }
        }
        self.users.users.insert(name.clone(), user);
        self.users.version += 1;
        Ok(Response::Noop {
            revision: self.revision,
        })
    }

    /// `ACL DELUSER`'s entry: removes the users named; answers how many existed
    /// ([`Response::Integer`]). The commands layer refuses `default` before proposing.
    pub(super) fn acl_del_user(&mut self, names: &[Bytes]) -> Result<Response, StoreError> {
        let mut deleted = 0;
        for name in names {
            if self.users.users.remove(name).is_some() {
                deleted += 1;
            }
        }
        if deleted > 0 {
            self.users.version += 1;
        }
        Ok(Response::Integer {
            value: deleted,
            revision: self.revision,
        })
    }

    /// The user an [`Op::AsUser`](super::Op) runs as, as it is now: `None` for a `default` the
    /// store does not hold (a node's `requirepass` user, allowed everything); refused when the
    /// user is gone or off (its session closes on every node anyway).
    pub(super) fn acl_user_at_apply(&self, name: &[u8]) -> Result<Option<AclUser>, StoreError> {
        match self.users.users.get(name) {
            Some(u) if u.enabled => Ok(Some(u.clone())),
            None if name == b"default" => Ok(None),
            _ => Err(StoreError::Acl(
                "NOPERM the user running this script was deleted or disabled".into(),
            )),
        }
    }

    /// The users the cluster has (UsersReplicated).
    pub fn users(&self) -> &Users {
        &self.users
    }
}

#[cfg(test)]
#[path = "acl_test.rs"]
mod acl_test;
