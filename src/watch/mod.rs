//! Watch: fan-out of applied changes to watchers on this node (DESIGN §6).
//!
//! The state machine publishes every applied entry's [`Event`]s, in revision order, on a
//! bounded broadcast channel that never blocks apply (`StateMachineStore::subscribe`). This
//! module turns that into per-watcher streams. Only the subscription type exists so far; the
//! `__watch__:<prefix>` stream and keyspace notifications are not built yet.

use std::sync::Arc;

use tokio::sync::broadcast;

pub use crate::store::Event;

/// A subscription to every change applied on this node, in revision order. A receiver that
/// falls more than the channel bound behind gets `RecvError::Lagged` and must catch up from
/// history; apply never waits for it.
pub type EventReceiver = broadcast::Receiver<Arc<Vec<Event>>>;
