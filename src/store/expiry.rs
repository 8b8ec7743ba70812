//! The TTL commands decided at apply (EXPIRE and friends, PERSIST, GETEX) and the leader's
//! expiry ([`Op::ExpireDue`](super::Op::ExpireDue)), with Redis 7.0's semantics
//! (`expire.c` `expireGenericCommand`, `t_string.c` `getexCommand`).
//!
//! Time comes only from the entry: a deadline is absolute unix milliseconds, stamped by the
//! proposing leader, and "already passed" means at or before the entry's `now_ms`
//! (DeterministicApply). A key stays live, with its value, until an entry deletes it: reads
//! never hide a key whose deadline has passed, so every node answers the same at the same
//! revision.
//!
//! Changing a key's deadline is a put of the same value (an etcd put attaching a lease): it
//! bumps the key's `mod_revision` and `version`, and so aborts a transaction that WATCHes the
//! key, as Redis's `signalModifiedKey` does.

use bytes::Bytes;

use super::{Changes, ExpireCond, Expiry, GetExAction, PutTtl, Response, Store, StoreError};

type Applied = Result<Response, StoreError>;

/// Returns the absolute deadline of a stamped expiry.
pub(super) fn deadline(expiry: Expiry) -> Result<i64, StoreError> {
    match expiry {
        Expiry::At(at) => Ok(at),
        Expiry::After(_) => Err(StoreError::Unstamped),
    }
}

impl Store {
    /// Returns the earliest deadline of any key.
    pub fn next_deadline(&self) -> Option<i64> {
        self.deadlines.first()
    }

    /// Returns up to `limit` keys whose deadline is at or before `now_ms`, earliest first: what
    /// the leader's expiry proposes next.
    pub fn due(&self, now_ms: i64, limit: usize) -> Vec<Bytes> {
        self.deadlines.due(now_ms, limit)
    }

    /// Returns how many keys have a deadline.
    pub fn expiring(&self) -> usize {
        self.deadlines.len()
    }

    /// Returns the mean remaining time to live of the keys with a deadline at `now_ms`, in ms.
    pub fn mean_ttl(&self, now_ms: i64) -> i64 {
        self.deadlines.mean_ttl(now_ms)
    }

    /// EXPIRE and friends: `Applied { applied }` is the `:1`/`:0` reply.
    pub(super) fn expire(
        &mut self,
        c: &mut Changes,
        key: &Bytes,
        expiry: Expiry,
        cond: ExpireCond,
        now_ms: i64,
    ) -> Applied {
        let at = deadline(expiry)?;
        let Some(kv) = self.keyspace.get(key) else {
            return Ok(self.applied(c, false));
        };
        let current = self.deadlines.get(key);
        // Redis's order: NX, XX, GT, LT; no deadline is an infinite TTL for GT and LT.
        let refused = (cond.nx && current.is_some())
            || (cond.xx && current.is_none())
            || (cond.gt && current.is_none_or(|cur| at <= cur))
            || (cond.lt && current.is_some_and(|cur| at >= cur));
        if refused {
            return Ok(self.applied(c, false));
        }
        if at <= now_ms {
            self.delete_in(c, key);
        } else {
            self.put_unchecked_in(c, key, &kv.stored(), Ttl::At(at));
        }
        Ok(self.applied(c, true))
    }

    /// PERSIST: `applied` is whether the key had a deadline to remove.
    pub(super) fn persist(&mut self, c: &mut Changes, key: &Bytes) -> Applied {
        let applied = match self.keyspace.get(key) {
            Some(kv) if self.deadlines.get(key).is_some() => {
                self.put_unchecked_in(c, key, &kv.stored(), Ttl::Clear);
                true
            }
            _ => false,
        };
        Ok(self.applied(c, applied))
    }

    /// GETEX: answers the value, then changes the TTL as `action` says.
    pub(super) fn get_ex(
        &mut self,
        c: &mut Changes,
        key: &Bytes,
        action: &GetExAction,
        now_ms: i64,
    ) -> Applied {
        let Some(kv) = self.string_kv(key)? else {
            let revision = self.revision_with(c);
            return Ok(Response::Value {
                value: None,
                revision,
            });
        };
        match action {
            GetExAction::Keep => {}
            GetExAction::Refuse(e) => return Err(e.clone()),
            GetExAction::Persist => {
                if self.deadlines.get(key).is_some() {
                    self.put_unchecked_in(c, key, &kv.stored(), Ttl::Clear);
                }
            }
            GetExAction::Expire(expiry) => {
                let at = deadline(*expiry)?;
                if at <= now_ms {
                    self.delete_in(c, key);
                } else {
                    self.put_unchecked_in(c, key, &kv.stored(), Ttl::At(at));
                }
            }
        }
        let revision = self.revision_with(c);
        Ok(Response::Value {
            value: Some(kv.value),
            revision,
        })
    }

    /// The leader's expiry: deletes, as expired, each listed key still live with a deadline at
    /// or before `now_ms`. A key listed twice, or whose TTL changed since the leader chose it,
    /// is skipped.
    pub(super) fn expire_due(&mut self, c: &mut Changes, keys: &[Bytes], now_ms: i64) -> Applied {
        let before = c.len();
        for key in keys {
            if self.deadlines.get(key).is_some_and(|at| at <= now_ms) {
                self.expire_in(c, key);
            }
        }
        let (deleted, revision) = ((c.len() - before) as u64, self.revision_with(c));
        Ok(Response::Deleted { deleted, revision })
    }

    fn applied(&self, c: &Changes, applied: bool) -> Response {
        Response::Applied {
            applied,
            revision: self.revision_with(c),
        }
    }
}

/// The deadline a put leaves on its key, resolved from a [`PutTtl`].
#[derive(Clone, Copy, Debug)]
pub(super) enum Ttl {
    Clear,
    Keep,
    At(i64),
}

impl Ttl {
    /// Resolves a stamped [`PutTtl`]; refuses an unstamped relative one.
    pub(super) fn resolve(ttl: PutTtl) -> Result<Ttl, StoreError> {
        Ok(match ttl {
            PutTtl::Clear => Ttl::Clear,
            PutTtl::Keep => Ttl::Keep,
            PutTtl::Expire(expiry) => Ttl::At(deadline(expiry)?),
        })
    }
}
