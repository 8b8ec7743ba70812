//! Compaction and the readable window (HistoryWindow): `COMPACT` moves `compact_revision` up;
//! reads below it, or above the current revision, are refused. Also the reads and the write
//! that address a revision inside the window: GETAT, HISTORY and ROLLBACK.

use bytes::Bytes;

use super::*;

impl Store {
    /// COMPACT: forgets the history below `revision` (each key keeps its value at `revision`).
    pub(super) fn compact(&mut self, revision: u64) -> Response {
        if revision <= self.compact_revision {
            return Response::Error(StoreError::Compacted {
                requested: revision,
                compact_revision: self.compact_revision,
            });
        }
        if revision > self.revision {
            return Response::Error(StoreError::FutureRevision {
                requested: revision,
                current: self.revision,
            });
        }
        // Does not bump the revision (RevisionMonotonic), as etcd's compaction.
        self.keyspace.compact(revision);
        self.authors.compact(revision);
        self.compact_revision = revision;
        tracing::debug!(compact_revision = revision, "compacted history");
        Response::Compacted {
            compact_revision: revision,
        }
    }

    /// Refuses a read at `revision` outside the window [compact_revision, revision].
    pub(super) fn check_readable(&self, revision: u64) -> Result<(), StoreError> {
        if revision < self.compact_revision {
            return Err(StoreError::Compacted {
                requested: revision,
                compact_revision: self.compact_revision,
            });
        }
        if revision > self.revision {
            return Err(StoreError::FutureRevision {
                requested: revision,
                current: self.revision,
            });
        }
        Ok(())
    }

    /// ROLLBACK: the value `key` had at `revision`, written as the next change (a put that
    /// clears the TTL, or a delete if the key was absent then).
    pub(super) fn rollback(
        &mut self,
        c: &mut Changes,
        key: &Bytes,
        revision: u64,
    ) -> Result<Response, StoreError> {
        self.check_readable(revision)?;
        match self.keyspace.get_at(key, revision) {
            Some(kv) => self.put_stored_in(c, key, &kv.stored(), Ttl::Clear)?,
            None => {
                self.delete_in(c, key);
            }
        }
        let revision = self.revision_with(c);
        Ok(Response::Integer {
            value: revision as i64,
            revision,
        })
    }

    /// Returns the value of `key` as of `revision`; 0 means the latest.
    ///
    /// Fails with [`StoreError::Compacted`] below the compact revision (reading at exactly it
    /// works), and with [`StoreError::FutureRevision`] above the current revision.
    pub fn get_at(&self, key: &[u8], revision: u64) -> Result<Option<KeyValue>, StoreError> {
        if revision == 0 {
            return Ok(self.get(key));
        }
        self.check_readable(revision)?;
        Ok(self.keyspace.get_at(key, revision))
    }

    /// Who made `revision` (AuthorPerRevision, `audit.rs`), if it is recorded.
    pub fn author_of(&self, revision: u64) -> Option<&Bytes> {
        self.authors.get(revision)
    }

    /// Returns how many versions of `key` are stored: the most [`Store::history`] of it visits.
    pub fn version_count(&self, key: &[u8]) -> usize {
        self.keyspace.version_count(key)
    }

    /// Returns `key`'s changes with `from <= main <= to`, oldest first, at most `limit` of them
    /// (`limit` 0 returns none).
    ///
    /// `to` 0 means up to the current revision. `from` 0 means every stored version, which after
    /// a compaction starts with the key's value at the compact revision if that was written
    /// earlier. Fails with [`StoreError::Compacted`] if `from` is below the compact revision,
    /// and with [`StoreError::FutureRevision`] if `to` is above the current revision. An
    /// event's `prev` is `None` when the key did not exist before it, or when that earlier
    /// version has been compacted away.
    pub fn history(
        &self,
        key: &[u8],
        from: u64,
        to: u64,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        if from != 0 && from < self.compact_revision {
            return Err(StoreError::Compacted {
                requested: from,
                compact_revision: self.compact_revision,
            });
        }
        let to = if to == 0 { self.revision } else { to };
        self.check_readable(to)?;
        Ok(self.keyspace.history(key, from, to, limit))
    }
}
