//! The reference model [`Store`] is checked against: one full keyspace per revision and every
//! key's events, planned from the latest state alone, knowing nothing of key indexes or
//! compaction internals (HistoryWindow as the store's module doc states it).

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::store::*;

/// The reference: one full state per revision, and every key's events with their true `prev`.
pub(super) struct Model {
    /// `states[r]` is the keyspace after revision `r`; `states[0]` is empty.
    pub(super) states: Vec<BTreeMap<Bytes, KeyValue>>,
    pub(super) events: BTreeMap<Bytes, Vec<Event>>,
    pub(super) compact_revision: u64,
}

/// What an op answers once its changes are known: the revision is filled in afterwards.
pub(super) enum Reply {
    Put,
    Deleted,
    Set { written: bool, prev: Option<Bytes> },
    Value(Option<Bytes>),
    Integer(i64),
    Length(u64),
    Applied(bool),
    Done(Response),
}

/// A planned change: `(key, Some(value))` puts, `(key, None)` deletes (if live).
pub(super) type Change = (Bytes, Option<Bytes>);

/// Redis's `string2ll`, as the model sees it: the canonical text of an i64.
pub(super) fn model_int(value: &[u8]) -> Option<i64> {
    let n: i64 = std::str::from_utf8(value).ok()?.parse().ok()?;
    (n.to_string().as_bytes() == value).then_some(n)
}

impl Model {
    pub(super) fn new() -> Self {
        Self {
            states: vec![BTreeMap::new()],
            events: BTreeMap::new(),
            compact_revision: 0,
        }
    }

    pub(super) fn revision(&self) -> u64 {
        self.states.len() as u64 - 1
    }

    pub(super) fn latest(&self) -> &BTreeMap<Bytes, KeyValue> {
        self.states.last().unwrap()
    }

    /// Returns the changes `op` asks for, `(key, Some(value))` a put and `(key, None)` a
    /// delete, in order, and how it answers; or the error it is refused with.
    pub(super) fn plan(&mut self, op: &Op) -> Result<(Vec<Change>, Reply), StoreError> {
        let latest = self.latest();
        let current = |k: &Bytes| latest.get(k).map(|kv| kv.value.clone());
        let put = |k: &Bytes, v: Bytes| vec![(k.clone(), Some(v))];
        Ok(match op {
            Op::Put { key, value } => (put(key, value.clone()), Reply::Put),
            Op::Delete { keys } => (
                keys.iter().map(|k| (k.clone(), None)).collect(),
                Reply::Deleted,
            ),
            Op::Compact { revision } => {
                let (c, current) = (self.compact_revision, self.revision());
                let response = if *revision <= c {
                    Response::Error(StoreError::Compacted {
                        requested: *revision,
                        compact_revision: c,
                    })
                } else if *revision > current {
                    Response::Error(StoreError::FutureRevision {
                        requested: *revision,
                        current,
                    })
                } else {
                    self.compact_revision = *revision;
                    Response::Compacted {
                        compact_revision: *revision,
                    }
                };
                (Vec::new(), Reply::Done(response))
            }
            Op::Set {
                key,
                value,
                when,
                get,
            } => {
                let prev = current(key);
                let written = match when {
                    SetWhen::Always => true,
                    SetWhen::Absent => prev.is_none(),
                    SetWhen::Present => prev.is_some(),
                };
                let changes = if written {
                    put(key, value.clone())
                } else {
                    Vec::new()
                };
                let prev = if *get { prev } else { None };
                (changes, Reply::Set { written, prev })
            }
            Op::GetDel { key } => (vec![(key.clone(), None)], Reply::Value(current(key))),
            Op::IncrBy { key, delta } => {
                let n = match current(key) {
                    Some(v) => model_int(&v).ok_or(StoreError::NotInteger)?,
                    None => 0,
                };
                let n = n.checked_add(*delta).ok_or(StoreError::Overflow)?;
                (put(key, Bytes::from(n.to_string())), Reply::Integer(n))
            }
            Op::IncrByFloat { key, increment } => {
                let n = match current(key) {
                    Some(v) => LongDouble::parse(&v).ok_or(StoreError::NotFloat)?,
                    None => LongDouble::ZERO,
                };
                let i = LongDouble::parse(increment).ok_or(StoreError::NotFloat)?;
                let text = Bytes::from(
                    n.checked_add(i)
                        .ok_or(StoreError::NanOrInfinity)?
                        .to_human(),
                );
                (put(key, text.clone()), Reply::Value(Some(text)))
            }
            Op::Append { key, value } => {
                let mut v = current(key).unwrap_or_default().to_vec();
                v.extend_from_slice(value);
                let length = v.len() as u64;
                (put(key, Bytes::from(v)), Reply::Length(length))
            }
            Op::SetRange { key, offset, value } => {
                let mut v = current(key).unwrap_or_default().to_vec();
                if value.is_empty() {
                    (Vec::new(), Reply::Length(v.len() as u64))
                } else {
                    let offset = *offset as usize;
                    if v.len() < offset + value.len() {
                        v.resize(offset + value.len(), 0);
                    }
                    v[offset..offset + value.len()].copy_from_slice(value);
                    let length = v.len() as u64;
                    (put(key, Bytes::from(v)), Reply::Length(length))
                }
            }
            Op::MSet {
                pairs,
                if_none_exist,
            } => {
                if *if_none_exist && pairs.iter().any(|(k, _)| latest.contains_key(k)) {
                    (Vec::new(), Reply::Applied(false))
                } else {
                    // One change per key, with its last value, where that last pair stands.
                    let changes = pairs
                        .iter()
                        .enumerate()
                        .filter(|(i, (k, _))| !pairs[i + 1..].iter().any(|(later, _)| later == k))
                        .map(|(_, (k, v))| (k.clone(), Some(v.clone())))
                        .collect();
                    (changes, Reply::Applied(true))
                }
            }
            Op::Rename {
                src,
                dst,
                if_absent,
            } => {
                let v = current(src).ok_or(StoreError::NoSuchKey)?;
                if src == dst {
                    (Vec::new(), Reply::Applied(!if_absent))
                } else if *if_absent && latest.contains_key(dst) {
                    (Vec::new(), Reply::Applied(false))
                } else {
                    (
                        vec![(src.clone(), None), (dst.clone(), Some(v))],
                        Reply::Applied(true),
                    )
                }
            }
            Op::Flush => (
                latest.keys().map(|k| (k.clone(), None)).collect(),
                Reply::Deleted,
            ),
            Op::Cas {
                key,
                expected_mod_revision,
                value,
            } => {
                let mod_revision = latest.get(key).map_or(0, |kv| kv.mod_revision);
                if mod_revision == *expected_mod_revision {
                    (put(key, value.clone()), Reply::Applied(true))
                } else {
                    (Vec::new(), Reply::Applied(false))
                }
            }
            // Transactions and TTLs are checked by `txn_test.rs` against their own model.
            other => panic!("the model does not plan {other:?}"),
        })
    }

    pub(super) fn apply(&mut self, op: &Op) -> (Response, Vec<Event>) {
        let main = self.revision() + 1;
        let (changes, reply) = match self.plan(op) {
            Ok(planned) => planned,
            Err(e) => return (Response::Error(e), Vec::new()),
        };
        let mut state = self.latest().clone();
        let mut events = Vec::new();
        for (key, change) in changes {
            let revision = Revision::new(main, events.len() as u64);
            match change {
                Some(value) => {
                    let prev = state.get(&key).cloned();
                    let (create_revision, version) = prev
                        .as_ref()
                        .map_or((main, 1), |p| (p.create_revision, p.version + 1));
                    let kv = KeyValue {
                        key: key.clone(),
                        value,
                        create_revision,
                        mod_revision: main,
                        version,
                        hash: None,
                    };
                    state.insert(key, kv.clone());
                    events.push(Event {
                        kind: EventKind::Put,
                        revision,
                        kv,
                        prev,
                    });
                }
                None => {
                    if let Some(prev) = state.remove(&key) {
                        let kv = KeyValue {
                            key,
                            value: Bytes::new(),
                            create_revision: 0,
                            mod_revision: main,
                            version: 0,
                            hash: None,
                        };
                        events.push(Event {
                            kind: EventKind::Delete,
                            revision,
                            kv,
                            prev: Some(prev),
                        });
                    }
                }
            }
        }
        // RevisionMonotonic: only a request with changes makes a new state.
        let revision = if events.is_empty() { main - 1 } else { main };
        let response = match reply {
            Reply::Put => Response::Put { revision },
            Reply::Deleted => Response::Deleted {
                deleted: events.len() as u64,
                revision,
            },
            Reply::Set { written, prev } => Response::Set {
                written,
                prev,
                revision,
            },
            Reply::Value(value) => Response::Value { value, revision },
            Reply::Integer(value) => Response::Integer { value, revision },
            Reply::Length(length) => Response::Length { length, revision },
            Reply::Applied(applied) => Response::Applied { applied, revision },
            Reply::Done(response) => response,
        };
        if !events.is_empty() {
            self.states.push(state);
            for e in &events {
                self.events
                    .entry(e.kv.key.clone())
                    .or_default()
                    .push(e.clone());
            }
        }
        (response, events)
    }

    pub(super) fn get_at(&self, key: &[u8], revision: u64) -> Result<Option<KeyValue>, StoreError> {
        let (c, current) = (self.compact_revision, self.revision());
        if revision == 0 {
            return Ok(self.latest().get(key).cloned());
        }
        if revision < c {
            return Err(StoreError::Compacted {
                requested: revision,
                compact_revision: c,
            });
        }
        if revision > current {
            return Err(StoreError::FutureRevision {
                requested: revision,
                current,
            });
        }
        Ok(self.states[revision as usize].get(key).cloned())
    }

    /// Returns the events compaction keeps (HistoryWindow): all with main >= c, and before them
    /// the newest older one if it is a put and nothing changed the key at c itself. The first
    /// kept event loses its `prev` if the event before it was dropped.
    pub(super) fn stored(&self, key: &[u8]) -> Vec<Event> {
        let Some(all) = self.events.get(key) else {
            return Vec::new();
        };
        let c = self.compact_revision;
        let first_kept = all
            .iter()
            .position(|e| e.revision.main >= c)
            .unwrap_or(all.len());
        let changed_at_c = all.iter().any(|e| e.revision.main == c);
        let start = match first_kept.checked_sub(1) {
            Some(i) if !changed_at_c && all[i].kind == EventKind::Put => i,
            _ => first_kept,
        };
        let mut kept = all[start..].to_vec();
        if start > 0 {
            if let Some(first) = kept.first_mut() {
                first.prev = None;
            }
        }
        kept
    }

    pub(super) fn history(
        &self,
        key: &[u8],
        from: u64,
        to: u64,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let (c, current) = (self.compact_revision, self.revision());
        let to = if to == 0 { current } else { to };
        for requested in [from, to] {
            if requested != 0 && requested < c {
                return Err(StoreError::Compacted {
                    requested,
                    compact_revision: c,
                });
            }
        }
        if to > current {
            return Err(StoreError::FutureRevision {
                requested: to,
                current,
            });
        }
        let events = self.stored(key).into_iter();
        Ok(events
            .filter(|e| e.revision.main >= from && e.revision.main <= to)
            .take(limit)
            .collect())
    }
}
