//! Compaction and the readable window (HistoryWindow): `COMPACT` moves `compact_revision` up;
//! reads below it, or above the current revision, are refused.

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
}
