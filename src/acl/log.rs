//! `ACL LOG`: the refusals this node saw (commands, keys, channels, failed AUTH), newest
//! first, per node as in Redis. A refusal like one of the 10 newest within 60 s (same reason,
//! context, object and user) bumps that entry's count instead of adding one (Redis's
//! `addACLLogEntry`); at most [`MAX_ENTRIES`] are kept (`acllog-max-len`).

use std::collections::VecDeque;
use std::time::{SystemTime, UNIX_EPOCH};

/// Redis's default `acllog-max-len`.
pub const MAX_ENTRIES: usize = 128;

/// Entries within this many ms of each other may group.
const GROUPING_MS: i64 = 60_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogReason {
    Command,
    Key,
    Channel,
    Auth,
}

impl LogReason {
    pub fn name(self) -> &'static str {
        match self {
            LogReason::Command => "command",
            LogReason::Key => "key",
            LogReason::Channel => "channel",
            LogReason::Auth => "auth",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogContext {
    Toplevel,
    Multi,
    Lua,
}

impl LogContext {
    pub fn name(self) -> &'static str {
        match self {
            LogContext::Toplevel => "toplevel",
            LogContext::Multi => "multi",
            LogContext::Lua => "lua",
        }
    }
}

/// One `ACL LOG` entry.
#[derive(Clone, Debug)]
pub struct LogEntry {
    pub count: u64,
    pub reason: LogReason,
    pub context: LogContext,
    pub object: String,
    pub username: String,
    /// Unix ms of the last refusal it counts.
    pub ctime_ms: i64,
    pub client_info: String,
}

/// The log, newest first.
#[derive(Debug, Default)]
pub struct AclLog {
    entries: VecDeque<LogEntry>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl AclLog {
    /// Records a refusal.
    pub fn add(
        &mut self,
        reason: LogReason,
        context: LogContext,
        object: String,
        username: String,
        client_info: String,
    ) {
        let ctime_ms = now_ms();
        let matched = self.entries.iter().take(10).position(|e| {
            e.reason == reason
                && e.context == context
                && (e.ctime_ms - ctime_ms).abs() <= GROUPING_MS
                && e.object == object
                && e.username == username
        });
        if let Some(i) = matched {
            if let Some(mut e) = self.entries.remove(i) {
                e.count += 1;
                e.ctime_ms = ctime_ms;
                e.client_info = client_info;
                self.entries.push_front(e);
            }
            return;
        }
        self.entries.push_front(LogEntry {
            count: 1,
            reason,
            context,
            object,
            username,
            ctime_ms,
            client_info,
        });
        self.entries.truncate(MAX_ENTRIES);
    }

    /// The newest `count` entries, with their age in seconds.
    pub fn newest(&self, count: usize) -> Vec<(LogEntry, f64)> {
        let now = now_ms();
        self.entries
            .iter()
            .take(count)
            .map(|e| (e.clone(), (now - e.ctime_ms) as f64 / 1000.0))
            .collect()
    }

    pub fn reset(&mut self) {
        self.entries.clear();
    }
}
