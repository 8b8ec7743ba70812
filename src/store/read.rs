//! The reads of the current state ([`ReadOp`]): what `GET`, `MGET`, the typed reads,
//! `GETMETA` and `DBSIZE` answer, at the store's revision. Changes nothing.

use super::{ReadOp, Response, Store};

impl Store {
    /// Answers a read from the current state; changes nothing.
    pub fn read(&self, read: &ReadOp) -> Response {
        let revision = self.revision;
        match read {
            // MGET: a hash reads as absent, as in Redis.
            ReadOp::Get { keys } => Response::Values {
                values: keys
                    .iter()
                    .map(|key| self.keyspace.get(key).filter(|kv| !kv.is_hash()))
                    .map(|kv| kv.map(|kv| kv.value))
                    .collect(),
                revision,
            },
            ReadOp::Typed { keys } => Response::Stored {
                values: keys
                    .iter()
                    .map(|key| self.keyspace.get(key).map(|kv| kv.stored()))
                    .collect(),
                revision,
            },
            ReadOp::Meta { key } => Response::Meta {
                kv: self.keyspace.get(key),
                deadline: self.deadlines.get(key),
                revision,
            },
            ReadOp::Len => Response::Integer {
                value: self.len() as i64,
                revision,
            },
        }
    }
}
