//! ACL users as this node enforces them: the store's users (cluster state, `store/acl.rs`)
//! compiled against the command table, the `default` user a node's `requirepass` stands for
//! until `ACL SETUSER default` makes it cluster state, and the per-node `ACL LOG`.
//!
//! - `rules.rs`: command rules against the table (bitmap, validation, Redis's description).
//! - `check.rs`: the permission check every command passes (commands, keys, channels).
//! - `log.rs`: `ACL LOG`, per node as in Redis.
//!
//! Imports the store's user data and the command table; runs no command and proposes nothing
//! (the `ACL` command in `commands/acl_command.rs` does).
//!
//! - **ViewCurrent.** [`Acl::view`] compares the store's users version (sent by apply under the
//!   state's write lock, `raft/state_machine`) with the compiled one, and recompiles when they
//!   differ, so a command is checked against every ACL change applied on this node before it.

mod check;
mod log;
pub mod rules;

#[cfg(test)]
mod acl_test;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

use bytes::Bytes;
use tokio::sync::watch;

use crate::store::{hash_password, AclUser, Users};

pub use check::{channels_of, check_command, Denied};
pub use log::{AclLog, LogContext, LogEntry, LogReason};
pub use rules::Perms;

/// One user, with its command rules compiled.
#[derive(Debug)]
pub struct CompiledUser {
    pub name: Bytes,
    pub user: AclUser,
    pub perms: Perms,
}

impl CompiledUser {
    pub fn new(name: Bytes, user: AclUser) -> Self {
        let perms = Perms::compile(&user.commands);
        CompiledUser { name, user, perms }
    }

    /// Whether every command, key and channel is allowed (nothing to check).
    pub fn unrestricted(&self) -> bool {
        self.perms.all && self.user.allkeys && self.user.allchannels
    }

    /// Whether the user may read `key` (KeysFiltered: what `KEYS`, `SCAN` and the watch
    /// streams show a user whose key patterns do not cover every key).
    pub fn may_read_key(&self, key: &[u8]) -> bool {
        self.user.allkeys
            || self
                .user
                .keys
                .iter()
                .any(|p| p.read && crate::glob::matches(&p.pattern, key))
    }
}

/// Every user this node knows, compiled, at one users version.
#[derive(Debug, Default)]
pub struct View {
    version: Option<u64>,
    pub users: BTreeMap<Bytes, Arc<CompiledUser>>,
}

impl View {
    pub fn get(&self, name: &[u8]) -> Option<&Arc<CompiledUser>> {
        self.users.get(name)
    }

    /// Whether the store holds `default` (else it is this node's `requirepass` user).
    pub fn default_user(&self) -> Option<&Arc<CompiledUser>> {
        self.users.get(&b"default"[..])
    }
}

/// The node's ACL state.
pub struct Acl {
    users: watch::Receiver<Users>,
    /// The rules of `default` while the store has none: Redis's default user, with
    /// `requirepass` as its password (`on nopass ~* &* +@all` without one).
    default_rules: Vec<Bytes>,
    /// Recompiled when the users change (ViewCurrent); readers clone the `Arc`.
    view: RwLock<Arc<View>>,
    pub log: Mutex<AclLog>,
}

impl Acl {
    pub fn new(users: watch::Receiver<Users>, requirepass: Option<&str>) -> Self {
        let password = match requirepass {
            Some(p) => format!("#{}", hash_password(p.as_bytes())),
            None => "nopass".to_string(),
        };
        let default_rules = ["on", &password, "~*", "&*", "+@all"]
            .iter()
            .map(|r| Bytes::copy_from_slice(r.as_bytes()))
            .collect();
        Acl {
            users,
            default_rules,
            view: RwLock::default(),
            log: Mutex::default(),
        }
    }

    /// The rules that make `default` when `ACL SETUSER default` first makes it cluster state
    /// (`Op::AclSetUser`'s `create`).
    pub fn default_rules(&self) -> &[Bytes] {
        &self.default_rules
    }

    /// The users as of the last ACL change applied on this node (ViewCurrent).
    pub fn view(&self) -> Arc<View> {
        let version = self.users.borrow().version();
        {
            let view = self.view.read().unwrap_or_else(|p| p.into_inner());
            if view.version == Some(version) {
                return view.clone();
            }
        }
        let mut slot = self.view.write().unwrap_or_else(|p| p.into_inner());
        let users = self.users.borrow().clone();
        if slot.version == Some(users.version()) {
            return slot.clone();
        }
        let mut compiled: BTreeMap<Bytes, Arc<CompiledUser>> = users
            .iter()
            .map(|(name, u)| {
                let c = CompiledUser::new(name.clone(), u.clone());
                (name.clone(), Arc::new(c))
            })
            .collect();
        if !compiled.contains_key(&b"default"[..]) {
            let mut user = AclUser::new();
            for r in &self.default_rules {
                let _ = user.apply_rule(r);
            }
            let name = Bytes::from_static(b"default");
            compiled.insert(name.clone(), Arc::new(CompiledUser::new(name, user)));
        }
        let view = Arc::new(View {
            version: Some(users.version()),
            users: compiled,
        });
        *slot = view.clone();
        view
    }

    /// The user `name` now, if it exists.
    pub fn user(&self, name: &[u8]) -> Option<Arc<CompiledUser>> {
        self.view().get(name).cloned()
    }

    /// Whether a new connection starts authenticated as `default` (Redis: `default` is on and
    /// `nopass`).
    pub fn default_is_open(&self) -> bool {
        self.user(b"default")
            .is_some_and(|u| u.user.enabled && u.user.nopass)
    }

    /// A receiver woken when the users change (a session closes when its user goes).
    pub fn subscribe(&self) -> watch::Receiver<Users> {
        self.users.clone()
    }
}
