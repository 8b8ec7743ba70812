//! Client-side caching on this node: `CLIENT TRACKING`'s tables and its invalidation messages
//! (Redis 7.0's `tracking.c`).
//!
//! Two modes, as in Redis:
//! - **Default.** Each key a tracking client reads is remembered for it in the key table
//!   ([`Tracker::remember`]); the next change of the key sends that client one invalidation
//!   naming the key and forgets the key for everyone.
//! - **BCAST.** The client names key prefixes (none: every key) and is sent every change under
//!   them, whether it read the key or not; nothing is remembered per key.
//!
//! Invalidations come from applied entries ([`Tracker::invalidate`] is the state machine's
//! apply hook), so a client tracking on any node is invalidated by writes made through any
//! node, by expiry, by EXEC and by scripts, each node telling its own clients. A flush
//! (FLUSHALL, FLUSHDB, a snapshot replacing the state) sends every tracking client one `nil`
//! invalidation ("everything"), as Redis's flush does.
//!
//! Where the message goes (Redis's `sendTrackingMessage`): to the client itself when it speaks
//! RESP3 (`>invalidate [keys]`), else to its `REDIRECT` client: as a push if that one speaks
//! RESP3, as a `__redis__:invalidate` pub/sub message if it speaks RESP2 and is subscribed to
//! something; otherwise nowhere (RESP2 has no pushes). A redirect to a client that has gone
//! marks the tracking client `broken_redirect` and, in RESP3, sends it
//! `>tracking-redir-broken <id>`.
//!
//! Invariants:
//! - **RememberBeforeRead.** A session remembers a read's keys before the read touches the
//!   store (`commands::tracking`), and this hook runs under apply's write lock
//!   (AppliedHookBeforeReaders): so every change the read did not see is applied after the
//!   key was remembered, and sends its invalidation. A cached value is never left without one.
//! - **InvalidateAfterReply.** An invalidation queued while a session answers a batch is
//!   written after that batch's replies (`server::session`); so a reply carrying an old value
//!   is always followed, on the same connection, by the invalidation of the change that made
//!   it old. Pushes queued before a batch is read go before its replies.
//! - **RevisionAfterInvalidations.** On a tracking connection, `REVISION`'s reply follows every
//!   invalidation queued for it before the revision was read (`keys::revision` moves them
//!   ahead of its reply), so with AppliedHookBeforeReaders: once a client has a `REVISION`
//!   reply `R`, it has received the invalidations of every change up to `R`. A client that
//!   reconnects can thus resume its cache instead of flushing it: BCAST on its prefixes,
//!   `REVISION` (`R'`), and drop the keys the watch stream lists between its last `R` and `R'`
//!   (`examples/cache_resume.py`).
//! - **TableBounded.** The key table holds at most `tracking-table-max-keys` keys (0: no
//!   limit); past it, keys are forgotten and their clients sent an invalidation for them, as if
//!   they had changed (Redis's `trackingLimitUsedSlots`).
//! - **PushNeverBlocks.** Delivery only `try_send`s; a client whose push queue is full is
//!   disconnected (`ClientHandle::push`).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;

use crate::context::clients::{
    ClientRegistry, FLAG_TRACKING, FLAG_TRACKING_BCAST, FLAG_TRACKING_BROKEN_REDIR,
};
use crate::protocol::Frame;
use crate::store::{gray_parts, Applied};

/// Redis's default `tracking-table-max-keys`.
pub const DEFAULT_MAX_KEYS: usize = 1_000_000;

/// The channel RESP2 redirect clients receive invalidations on.
pub const INVALIDATE_CHANNEL: &str = "__redis__:invalidate";

/// `CLIENT TRACKING ON`'s options.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrackingOptions {
    /// The client to send invalidations to; 0 for the client itself.
    pub redirect: u64,
    pub bcast: bool,
    pub optin: bool,
    pub optout: bool,
    pub noloop: bool,
    /// BCAST prefixes, as given.
    pub prefixes: Vec<Bytes>,
    /// The keys the client's user may read, when not every key (KeysFiltered): invalidations
    /// name no other key. Fixed when tracking is turned on.
    pub may_read: Option<KeyFilter>,
}

/// The test behind a [`KeyFilter`].
pub type MayRead = dyn Fn(&[u8]) -> bool + Send + Sync;

/// Whether a key may be named to a client (its ACL user's read patterns).
#[derive(Clone)]
pub struct KeyFilter(pub Arc<MayRead>);

impl KeyFilter {
    pub fn allows(&self, key: &[u8]) -> bool {
        (self.0)(key)
    }
}

impl std::fmt::Debug for KeyFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyFilter")
    }
}

impl PartialEq for KeyFilter {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for KeyFilter {}

/// One tracking client's state, for `CLIENT TRACKINGINFO` and `CLIENT GETREDIR`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrackingState {
    pub redirect: u64,
    pub bcast: bool,
    pub optin: bool,
    pub optout: bool,
    pub noloop: bool,
    pub broken_redirect: bool,
    /// In byte order.
    pub prefixes: Vec<Bytes>,
}

/// `INFO`'s tracking figures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrackingStats {
    pub clients: usize,
    pub keys: usize,
    pub items: usize,
    pub prefixes: usize,
}

struct Client {
    state: TrackingState,
    /// The deduplication identity of the client's writes: NOLOOP skips changes it made.
    dedup_id: u64,
    /// [`TrackingOptions::may_read`].
    may_read: Option<KeyFilter>,
}

#[derive(Default)]
struct Inner {
    clients: HashMap<u64, Client>,
    /// Default mode: key → ids of the clients that may cache it. Ids of clients that have
    /// gone or left default mode are dropped lazily, when the key changes (as Redis does).
    keys: HashMap<Bytes, BTreeSet<u64>>,
    /// Client ids over every key (`tracking_total_items`).
    items: usize,
    /// BCAST: prefix → ids of the clients following it.
    prefixes: BTreeMap<Bytes, BTreeSet<u64>>,
}

/// What an invalidation says.
enum Payload {
    Keys(Vec<Bytes>),
    /// Every key (a flush).
    All,
}

/// The node's tracking tables. One mutex, held for a table update or one entry's deliveries,
/// never across an await.
pub struct Tracker {
    registry: Arc<ClientRegistry>,
    inner: Mutex<Inner>,
    /// Tracking clients now; 0 lets apply skip the lock.
    tracking: AtomicUsize,
    max_keys: AtomicUsize,
    /// Test-only failpoint `tracking_invalidations_off` (`REDRAFT_FAILPOINTS`): applied
    /// changes send no invalidation, only to show that jepsen's cache check catches a cache
    /// that is never told (a loud warning is logged).
    invalidations_off: bool,
}

impl Tracker {
    pub fn new(registry: Arc<ClientRegistry>, max_keys: usize) -> Arc<Self> {
        let invalidations_off = std::env::var("REDRAFT_FAILPOINTS").is_ok_and(|spec| {
            spec.split(',')
                .any(|f| f.trim() == "tracking_invalidations_off")
        });
        if invalidations_off {
            tracing::warn!(
                "FAILPOINT tracking_invalidations_off ARMED: client-side caches are never \
                 invalidated"
            );
        }
        Arc::new(Self {
            registry,
            inner: Mutex::default(),
            tracking: AtomicUsize::new(0),
            max_keys: AtomicUsize::new(max_keys),
            invalidations_off,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `CLIENT TRACKING ON` for client `id` (whose writes carry `dedup_id`), after Redis's
    /// checks against its current state; the error is Redis's text without `ERR `.
    pub fn enable(&self, id: u64, dedup_id: u64, opts: &TrackingOptions) -> Result<(), String> {
        let mut inner = self.lock();
        if !opts.bcast && !opts.prefixes.is_empty() {
            return Err("PREFIX option requires BCAST mode to be enabled".into());
        }
        let current = inner.clients.get(&id).map(|c| c.state.clone());
        if let Some(cur) = &current {
            if cur.bcast != opts.bcast {
                return Err(
                    "You can't switch BCAST mode on/off before disabling tracking for \
                            this client, and then re-enabling it with a different mode."
                        .into(),
                );
            }
        }
        if opts.bcast && (opts.optin || opts.optout) {
            return Err("OPTIN and OPTOUT are not compatible with BCAST".into());
        }
        if opts.optin && opts.optout {
            return Err("You can't specify both OPTIN mode and OPTOUT mode".into());
        }
        if let Some(cur) = &current {
            if (opts.optin && cur.optout) || (opts.optout && cur.optin) {
                return Err(
                    "You can't switch OPTIN/OPTOUT mode before disabling tracking for \
                            this client, and then re-enabling it with a different mode."
                        .into(),
                );
            }
        }
        if opts.bcast {
            let existing = current.as_ref().map_or(&[][..], |c| &c.prefixes[..]);
            prefix_collisions(existing, &opts.prefixes)?;
        }
        let mut prefixes: BTreeSet<Bytes> = current
            .map(|c| c.prefixes.into_iter().collect())
            .unwrap_or_default();
        if opts.bcast {
            if opts.prefixes.is_empty() {
                prefixes.insert(Bytes::new());
            }
            prefixes.extend(opts.prefixes.iter().cloned());
            for p in &prefixes {
                inner.prefixes.entry(p.clone()).or_default().insert(id);
            }
        }
        let state = TrackingState {
            redirect: opts.redirect,
            bcast: opts.bcast,
            optin: opts.optin,
            optout: opts.optout,
            noloop: opts.noloop,
            broken_redirect: false,
            prefixes: prefixes.into_iter().collect(),
        };
        if inner
            .clients
            .insert(
                id,
                Client {
                    state,
                    dedup_id,
                    may_read: opts.may_read.clone(),
                },
            )
            .is_none()
        {
            self.tracking.fetch_add(1, Ordering::Relaxed);
        }
        drop(inner);
        if let Some(h) = self.registry.get(id) {
            h.set_flag(FLAG_TRACKING, true);
            h.set_flag(FLAG_TRACKING_BROKEN_REDIR, false);
            h.set_flag(FLAG_TRACKING_BCAST, opts.bcast);
            h.set_redirect(opts.redirect as i64);
        }
        Ok(())
    }

    /// `CLIENT TRACKING OFF`, `RESET`, or the client going away. Its ids in the key table are
    /// dropped lazily.
    pub fn disable(&self, id: u64) {
        let mut inner = self.lock();
        let Some(client) = inner.clients.remove(&id) else {
            return;
        };
        self.tracking.fetch_sub(1, Ordering::Relaxed);
        for p in &client.state.prefixes {
            if let Some(ids) = inner.prefixes.get_mut(p) {
                ids.remove(&id);
                if ids.is_empty() {
                    inner.prefixes.remove(p);
                }
            }
        }
        drop(inner);
        if let Some(h) = self.registry.get(id) {
            for flag in [
                FLAG_TRACKING,
                FLAG_TRACKING_BROKEN_REDIR,
                FLAG_TRACKING_BCAST,
            ] {
                h.set_flag(flag, false);
            }
            h.set_redirect(-1);
        }
    }

    /// Client `id`'s tracking state, `None` when it does not track.
    pub fn state(&self, id: u64) -> Option<TrackingState> {
        self.lock().clients.get(&id).map(|c| c.state.clone())
    }

    /// Remembers that client `id` may cache `keys` (default mode; RememberBeforeRead), then
    /// keeps the table within its bound (TableBounded).
    pub fn remember(&self, id: u64, keys: impl IntoIterator<Item = Bytes>) {
        let mut inner = self.lock();
        for key in keys {
            if inner.keys.entry(key).or_default().insert(id) {
                inner.items += 1;
            }
        }
        self.enforce_bound(&mut inner);
    }

    /// Sets `tracking-table-max-keys` and applies it at once.
    pub fn set_max_keys(&self, max: usize) {
        self.max_keys.store(max, Ordering::Relaxed);
        let mut inner = self.lock();
        self.enforce_bound(&mut inner);
    }

    pub fn max_keys(&self) -> usize {
        self.max_keys.load(Ordering::Relaxed)
    }

    /// TableBounded: forgets keys past the bound, telling their clients as if they changed.
    fn enforce_bound(&self, inner: &mut Inner) {
        let max = self.max_keys.load(Ordering::Relaxed);
        if max == 0 || inner.keys.len() <= max {
            return;
        }
        let excess = inner.keys.len() - max;
        // The hash map's order is as good as Redis's random walk: it does not favour old or
        // new keys.
        let victims: Vec<Bytes> = inner.keys.keys().take(excess).cloned().collect();
        let mut sends = Vec::new();
        for key in victims {
            forget_key(inner, &key, None, &mut sends);
        }
        self.deliver(inner, sends);
    }

    /// The apply hook: sends the invalidations one applied request causes.
    pub fn invalidate(&self, applied: &Applied) {
        if self.invalidations_off {
            return;
        }
        if self.tracking.load(Ordering::Relaxed) == 0 {
            // Nobody tracks; a table left from earlier holds only ids of clients gone.
            if applied.flushed {
                let mut inner = self.lock();
                inner.keys.clear();
                inner.items = 0;
            }
            return;
        }
        let mut inner = self.lock();
        let mut sends: Vec<(u64, Payload)> = Vec::new();
        if applied.flushed {
            // Redis's `trackingInvalidateKeysOnFlush`: one nil to every tracking client, and
            // the key table starts over. Keys the same request wrote after the flush are
            // covered: the nil drops them from every cache.
            let mut ids: Vec<u64> = inner.clients.keys().copied().collect();
            ids.sort_unstable();
            sends.extend(ids.into_iter().map(|id| (id, Payload::All)));
            inner.keys.clear();
            inner.items = 0;
            self.deliver(&mut inner, sends);
            return;
        }
        // Default mode: one message per key, in the order the request changed them (Redis
        // signals each modified key as it goes).
        let mut seen = HashSet::with_capacity(applied.events.len());
        // A gray candidate's change (`store/gray.rs`) changes what its label reads at the key
        // it stands for: that key is invalidated too (GrayInvalidates).
        let stands_for: Vec<Bytes> = applied
            .events
            .iter()
            .filter_map(|e| gray_parts(&e.kv.key).map(|(_, k)| Bytes::copy_from_slice(k)))
            .collect();
        let changed: Vec<&Bytes> = applied
            .events
            .iter()
            .map(|e| &e.kv.key)
            .chain(stands_for.iter())
            .filter(|k| seen.insert(*k))
            .collect();
        for key in &changed {
            forget_key(&mut inner, key, applied.origin, &mut sends);
        }
        if !inner.prefixes.is_empty() {
            // BCAST: one message per prefix, its keys in byte order (Redis's radix tree).
            let mut changed = changed;
            changed.sort_unstable();
            for (prefix, ids) in &inner.prefixes {
                let keys: Vec<Bytes> = changed
                    .iter()
                    .filter(|k| k.starts_with(prefix))
                    .map(|k| (*k).clone())
                    .collect();
                if keys.is_empty() {
                    continue;
                }
                for id in ids {
                    let Some(c) = inner.clients.get(id) else {
                        continue;
                    };
                    // One request has one origin: NOLOOP skips all of its keys.
                    if c.state.noloop && applied.origin == Some(c.dedup_id) {
                        continue;
                    }
                    let keys = match &c.may_read {
                        // KeysFiltered: a BCAST client learns no key its user may not read.
                        Some(f) => keys.iter().filter(|k| f.allows(k)).cloned().collect(),
                        None => keys.clone(),
                    };
                    if !keys.is_empty() {
                        sends.push((*id, Payload::Keys(keys)));
                    }
                }
            }
        }
        self.deliver(&mut inner, sends);
    }

    /// Sends each invalidation where its client's options say (module docs).
    fn deliver(&self, inner: &mut Inner, sends: Vec<(u64, Payload)>) {
        for (id, payload) in sends {
            let Some(client) = inner.clients.get_mut(&id) else {
                continue;
            };
            let value = match payload {
                Payload::Keys(keys) => Frame::Array(keys.into_iter().map(Frame::Bulk).collect()),
                Payload::All => Frame::Null,
            };
            let redirect = client.state.redirect;
            if redirect == 0 {
                if let Some(own) = self.registry.get(id).filter(|h| h.resp() >= 3) {
                    own.push(invalidate_push(value));
                }
                continue;
            }
            match self.registry.get(redirect) {
                Some(target) if target.resp() >= 3 => {
                    target.push(invalidate_push(value));
                }
                Some(target) if target.is_pubsub() => {
                    target.push(Frame::Push(vec![
                        Frame::Bulk(Bytes::from_static(b"message")),
                        Frame::Bulk(Bytes::from_static(INVALIDATE_CHANNEL.as_bytes())),
                        value,
                    ]));
                }
                Some(_) => {}
                None => {
                    client.state.broken_redirect = true;
                    if let Some(own) = self.registry.get(id) {
                        own.set_flag(FLAG_TRACKING_BROKEN_REDIR, true);
                        if own.resp() >= 3 {
                            own.push(Frame::Push(vec![
                                Frame::Bulk(Bytes::from_static(b"tracking-redir-broken")),
                                Frame::Integer(redirect as i64),
                            ]));
                        }
                    }
                }
            }
        }
    }

    /// `INFO`'s figures.
    pub fn stats(&self) -> TrackingStats {
        let inner = self.lock();
        TrackingStats {
            clients: inner.clients.len(),
            keys: inner.keys.len(),
            items: inner.items,
            prefixes: inner.prefixes.len(),
        }
    }
}

/// Forgets `key` in the key table and queues one invalidation for each default-mode client
/// that had it, except a NOLOOP client whose own change (`origin`) it is.
fn forget_key(
    inner: &mut Inner,
    key: &Bytes,
    origin: Option<u64>,
    sends: &mut Vec<(u64, Payload)>,
) {
    let Some(ids) = inner.keys.remove(key) else {
        return;
    };
    inner.items -= ids.len();
    for id in ids {
        let Some(c) = inner.clients.get(&id) else {
            continue;
        };
        if c.state.bcast || (c.state.noloop && origin == Some(c.dedup_id)) {
            continue;
        }
        sends.push((id, Payload::Keys(vec![key.clone()])));
    }
}

fn invalidate_push(value: Frame) -> Frame {
    Frame::Push(vec![Frame::Bulk(Bytes::from_static(b"invalidate")), value])
}

/// Redis's `checkPrefixCollisionsOrReply`: no new prefix may be a prefix of (or have as a
/// prefix) an existing one or another new one.
fn prefix_collisions(existing: &[Bytes], new: &[Bytes]) -> Result<(), String> {
    let overlap = |a: &[u8], b: &[u8]| {
        let n = a.len().min(b.len());
        a[..n] == b[..n]
    };
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    for (i, p) in new.iter().enumerate() {
        if let Some(e) = existing.iter().find(|e| overlap(e, p)) {
            return Err(format!(
                "Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single \
                 client must not overlap.",
                text(p),
                text(e)
            ));
        }
        if let Some(q) = new[i + 1..].iter().find(|q| overlap(p, q)) {
            return Err(format!(
                "Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a \
                 single client must not overlap.",
                text(p),
                text(q)
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "tracking_test.rs"]
mod tests;
