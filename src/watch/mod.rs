//! Watch: what this node tells clients about applied changes (DESIGN §6).
//!
//! - `pubsub.rs`: the channels and patterns of SUBSCRIBE/PSUBSCRIBE on this node, PUBLISH's
//!   fan-out, and the keyspace notifier that turns each applied entry's
//!   [`Notice`](crate::store::Notice)s into `__keyspace@0__`/`__keyevent@0__` messages.
//! - `tracking.rs`: client-side caching (`CLIENT TRACKING`): the keys each client may cache,
//!   the BCAST prefixes, and the invalidations every applied entry sends to this node's
//!   clients.
//! - `stream.rs`: the read-only virtual stream `__watch__:<prefix>` (XREAD, XRANGE,
//!   XREVRANGE), served from the store's history; `gray_watch.rs`: that stream as a
//!   gray-release reader sees it.
//!
//! This module knows RESP only as [`Frame`](crate::protocol::Frame)s and reads the store only
//! through the state machine's read lock.

pub mod gray_watch;
pub mod pubsub;
pub mod stream;
pub mod tracking;
