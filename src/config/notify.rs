//! `server.notify_keyspace_events`: Redis's keyspace notification classes, parsed from and
//! rendered to its letters.

/// Keyspace notification classes, as Redis's `notify-keyspace-events` letters describe them
/// (`src/notify.c`: `keyspaceEventsStringToFlags` / `keyspaceEventsFlagsToString`). Stored now;
/// emitted by the pub/sub issue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NotifyKeyspaceEvents(pub u32);

impl NotifyKeyspaceEvents {
    pub const KEYSPACE: u32 = 1 << 0; // K
    pub const KEYEVENT: u32 = 1 << 1; // E
    pub const GENERIC: u32 = 1 << 2; // g
    pub const STRING: u32 = 1 << 3; // $
    pub const LIST: u32 = 1 << 4; // l
    pub const SET: u32 = 1 << 5; // s
    pub const HASH: u32 = 1 << 6; // h
    pub const ZSET: u32 = 1 << 7; // z
    pub const EXPIRED: u32 = 1 << 8; // x
    pub const EVICTED: u32 = 1 << 9; // e
    pub const STREAM: u32 = 1 << 10; // t
    pub const KEY_MISS: u32 = 1 << 11; // m
    pub const MODULE: u32 = 1 << 13; // d
    pub const NEW: u32 = 1 << 14; // n
    /// `A`: every type class (not `m` and not `n`, as in Redis).
    pub const ALL: u32 = Self::GENERIC
        | Self::STRING
        | Self::LIST
        | Self::SET
        | Self::HASH
        | Self::ZSET
        | Self::EXPIRED
        | Self::EVICTED
        | Self::STREAM
        | Self::MODULE;
    /// The accepted letters, in the order Redis's error message lists them.
    pub const LETTERS: &'static str = "Ag$lshzxeKEtmdn";

    /// Parses a class string; `None` if a letter is not a class.
    pub fn parse(classes: &str) -> Option<Self> {
        let mut flags = 0;
        for c in classes.chars() {
            flags |= match c {
                'A' => Self::ALL,
                'g' => Self::GENERIC,
                '$' => Self::STRING,
                'l' => Self::LIST,
                's' => Self::SET,
                'h' => Self::HASH,
                'z' => Self::ZSET,
                'x' => Self::EXPIRED,
                'e' => Self::EVICTED,
                'K' => Self::KEYSPACE,
                'E' => Self::KEYEVENT,
                't' => Self::STREAM,
                'm' => Self::KEY_MISS,
                'd' => Self::MODULE,
                'n' => Self::NEW,
                _ => return None,
            };
        }
        Some(NotifyKeyspaceEvents(flags))
    }

    /// Returns the canonical class string, exactly as Redis's `CONFIG GET` shows it (`KEA` is
    /// shown as `AKE`; with `A`, the `n` class is not shown, a quirk kept for compatibility).
    pub fn render(self) -> String {
        let f = self.0;
        let mut out = String::new();
        if f & Self::ALL == Self::ALL {
            out.push('A');
        } else {
            for (bit, c) in [
                (Self::GENERIC, 'g'),
                (Self::STRING, '$'),
                (Self::LIST, 'l'),
                (Self::SET, 's'),
                (Self::HASH, 'h'),
                (Self::ZSET, 'z'),
                (Self::EXPIRED, 'x'),
                (Self::EVICTED, 'e'),
                (Self::STREAM, 't'),
                (Self::MODULE, 'd'),
                (Self::NEW, 'n'),
            ] {
                if f & bit != 0 {
                    out.push(c);
                }
            }
        }
        for (bit, c) in [
            (Self::KEYSPACE, 'K'),
            (Self::KEYEVENT, 'E'),
            (Self::KEY_MISS, 'm'),
        ] {
            if f & bit != 0 {
                out.push(c);
            }
        }
        out
    }
}
