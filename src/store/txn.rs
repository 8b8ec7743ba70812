//! Transactions (MULTI/EXEC with WATCH): the compares that must hold, then the ops under one
//! main revision (RevisionMonotonic).

use super::*;

impl Store {
    /// EXEC: every compare must hold, then the ops apply in order under one main revision
    /// (RevisionMonotonic: their changes are its subs; none, and the revision stays). An op's
    /// error answers that op and changes nothing; the others still apply, as in Redis.
    pub(super) fn txn(
        &mut self,
        compares: &[Compare],
        ops: &[Op],
        now_ms: i64,
    ) -> (Response, Applied) {
        if !compares.iter().all(|cmp| self.compare_holds(cmp, now_ms)) {
            let revision = self.revision;
            return (
                Response::Txn {
                    responses: None,
                    revision,
                },
                Applied::default(),
            );
        }
        let mut changes = self.begin();
        let mut responses = Vec::with_capacity(ops.len());
        let mut notices = Vec::new();
        for op in ops {
            let before = changes.len();
            let response = match self.apply_in_notified(&mut changes, op, &mut notices) {
                Ok(response) => response,
                Err(error) => {
                    debug_assert_eq!(changes.len(), before, "an error changes nothing");
                    Response::Error(error)
                }
            };
            responses.push(response);
        }
        let flushed = changes.flushed;
        let events = self.end(changes);
        let revision = self.revision;
        let applied = Applied {
            events,
            notices,
            flushed,
            ..Applied::default()
        };
        (
            Response::Txn {
                responses: Some(responses),
                revision,
            },
            applied,
        )
    }

    /// Whether a WATCHed key is as it was watched: no change since (a delete or an expiry
    /// included), no compaction that may have hidden one, and not due to expire (Redis 7
    /// aborts EXEC when a watched key has expired, `isWatchedKeyExpired`).
    fn compare_holds(&self, cmp: &Compare, now_ms: i64) -> bool {
        let current = self.keyspace.last_change(&cmp.key);
        if current != cmp.mod_revision {
            return false;
        }
        if current == 0 && self.compact_revision > cmp.watched_at {
            return false;
        }
        self.deadlines.get(&cmp.key).is_none_or(|at| at > now_ms)
    }
}
