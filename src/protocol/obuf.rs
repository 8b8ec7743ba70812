//! Redis 7.0's accounting of a client's pending replies (`networking.c`, `server.c`), which
//! decides the output buffer limit and `CLIENT LIST`'s `rbs`, `rbp`, `obl`, `oll` and `omem`.
//!
//! Redis queues replies first in the client's reply buffer (`c->buf`, `rbs` bytes, `obl` in
//! use), then, once that is full, in a list of blocks (`oll` of them) of at least 16 KB each
//! (`PROTO_REPLY_CHUNK_BYTES`), each filled before the next is allocated. Only the list counts
//! towards `client-output-buffer-limit` and `omem`: the blocks' allocated sizes (jemalloc's size
//! classes) plus 40 bytes of list node per block (`getClientOutputBufferMemoryUsage`). A client
//! is cut when that reaches the hard limit (`>=`), checked as each block is allocated; replies
//! that fit the reply buffer never count, so a hard limit of 1 byte still lets `PING` through.
//!
//! The reply buffer starts at 16 KB and is resized by `clientsCron` (about every 100 ms, `hz`
//! 10): shrunk to its recent peak (at least 1 KB, `PROTO_REPLY_MIN_BYTES`) when the peak is
//! under half of it, doubled (to at most 16 KB) when the peak filled it; the peak restarts from
//! the bytes in use every 5 seconds, and at the first visit (Redis 7.0 compares the reset time,
//! kept in seconds, with the clock in milliseconds). So an idle connection's reply buffer is 1 KB
//! about 200 ms after it connected, and a client whose replies fill it gets it back to 16 KB
//! within a few hundred milliseconds. [`ReplyBuffer`] replays those visits when it is next
//! used ([`ReplyBuffer::cron`]); redraft writes each batch's replies before reading more, so
//! between batches nothing is pending.

use std::time::{Duration, Instant};

/// `PROTO_REPLY_CHUNK_BYTES`: the reply buffer's initial and largest size, and the smallest
/// block of the reply list.
pub const REPLY_CHUNK_BYTES: usize = 16 * 1024;
/// `PROTO_REPLY_MIN_BYTES`: the smallest reply buffer.
const REPLY_MIN_BYTES: usize = 1024;
/// `sizeof(clientReplyBlock)`: a block's header, inside its allocation.
const BLOCK_HEADER: usize = 16;
/// `sizeof(listNode) + sizeof(clientReplyBlock)`: what `omem` adds per block.
const BLOCK_OVERHEAD: u64 = 24 + 16;
/// `clientsCron`'s period at the default `hz` 10.
const CRON_PERIOD: Duration = Duration::from_millis(100);
/// `reply-buffer-peak-reset-time`'s default.
const PEAK_RESET: Duration = Duration::from_secs(5);
/// Visits replayed at most at once: after 5 s of nothing pending the state no longer changes.
const MAX_REPLAYED_VISITS: u32 = 64;

/// One client's reply buffer and reply list, as Redis would hold the replies queued so far.
#[derive(Clone, Debug)]
pub struct ReplyBuffer {
    /// `buf_usable_size` (`rbs`).
    size: usize,
    /// `buf_peak` (`rbp`).
    peak: usize,
    /// `bufpos` (`obl`).
    used: usize,
    /// `listLength(c->reply)` (`oll`).
    blocks: u64,
    /// Free bytes of the last block.
    tail_free: usize,
    /// `reply_bytes`: the blocks' sizes.
    block_bytes: u64,
    next_visit: Instant,
    last_peak_reset: Option<Instant>,
}

/// The numbers `CLIENT LIST` shows: `rbs`, `rbp`, `obl`, `oll`, `omem`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplyStats {
    pub rbs: u64,
    pub rbp: u64,
    pub obl: u64,
    pub oll: u64,
    pub omem: u64,
}

impl ReplyBuffer {
    /// A new client's buffer (`createClient`), first visited by the cron a period after `now`.
    pub fn new(now: Instant) -> Self {
        ReplyBuffer {
            size: REPLY_CHUNK_BYTES,
            peak: REPLY_CHUNK_BYTES,
            used: 0,
            blocks: 0,
            tail_free: 0,
            block_bytes: 0,
            next_visit: now + CRON_PERIOD,
            last_peak_reset: None,
        }
    }

    /// Accounts `len` more reply bytes queued (`_addReplyToBufferOrList`).
    pub fn append(&mut self, mut len: usize) {
        if self.blocks == 0 {
            let taken = len.min(self.size - self.used);
            self.used += taken;
            self.peak = self.peak.max(self.used);
            len -= taken;
        }
        let copied = len.min(self.tail_free);
        self.tail_free -= copied;
        len -= copied;
        if len > 0 {
            let size = usable_size(len.max(REPLY_CHUNK_BYTES) + BLOCK_HEADER) - BLOCK_HEADER;
            self.blocks += 1;
            self.block_bytes += size as u64;
            self.tail_free = size - len;
        }
    }

    /// `omem`: what counts towards the output buffer limit.
    pub fn memory(&self) -> u64 {
        self.block_bytes + BLOCK_OVERHEAD * self.blocks
    }

    /// Whether Redis would close the client for a hard limit of `limit` bytes (0 = none).
    pub fn over_limit(&self, limit: u64) -> bool {
        limit > 0 && self.blocks > 0 && self.memory() >= limit
    }

    /// Everything queued has been written.
    pub fn written(&mut self) {
        self.used = 0;
        self.blocks = 0;
        self.tail_free = 0;
        self.block_bytes = 0;
    }

    /// Replays the cron's visits (`clientsCronResizeOutputBuffer`) due by `now`.
    pub fn cron(&mut self, now: Instant) {
        let mut visits = 0;
        while self.next_visit <= now {
            if visits < MAX_REPLAYED_VISITS {
                self.visit(self.next_visit);
                visits += 1;
                self.next_visit += CRON_PERIOD;
            } else {
                // Steady state: skip to the next visit after `now`.
                let behind = now.duration_since(self.next_visit).as_millis();
                let periods = behind / CRON_PERIOD.as_millis() + 1;
                self.next_visit += CRON_PERIOD * u32::try_from(periods).unwrap_or(u32::MAX);
            }
        }
    }

    fn visit(&mut self, at: Instant) {
        let shrink_to = self.size / 2;
        let expand_to = self.size * 2;
        let new_size = if shrink_to >= REPLY_MIN_BYTES && self.peak < shrink_to {
            usable_size(REPLY_MIN_BYTES.max(self.peak + 1))
        } else if expand_to < REPLY_CHUNK_BYTES * 2 && self.peak == self.size {
            REPLY_CHUNK_BYTES.min(expand_to)
        } else {
            self.size
        };
        if self
            .last_peak_reset
            .is_none_or(|t| at.duration_since(t) >= PEAK_RESET)
        {
            self.peak = self.used;
            self.last_peak_reset = Some(at);
        }
        self.size = new_size.max(self.used);
    }

    pub fn stats(&self) -> ReplyStats {
        ReplyStats {
            rbs: self.size as u64,
            rbp: self.peak as u64,
            obl: self.used as u64,
            oll: self.blocks,
            omem: self.memory(),
        }
    }
}

/// jemalloc's usable size for an allocation of `n` bytes, `n` >= 1 KB: four size classes per
/// doubling.
fn usable_size(n: usize) -> usize {
    let group = (n - 1).checked_ilog2().unwrap_or(0);
    let spacing = 1usize << group.saturating_sub(2);
    n.div_ceil(spacing) * spacing
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Numbers read from redis-server 7.0.15's `CLIENT INFO`, pipelined after the reply.
    #[test]
    fn accounts_like_redis() {
        let now = Instant::now();
        let shrunk = |now| {
            let mut b = ReplyBuffer::new(now);
            b.cron(now + Duration::from_millis(250));
            assert_eq!(b.stats().rbs, 1024);
            b
        };
        // PING: the reply buffer only.
        let mut b = shrunk(now);
        b.append(7);
        assert_eq!(b.stats(), stats(1024, 7, 7, 0, 0));
        assert!(!b.over_limit(1));
        // A 20,000-byte GET: 1 KB in the buffer, one 16 KB block (20,464 usable).
        let mut b = shrunk(now);
        b.append(20_000 + 9);
        assert_eq!(b.stats(), stats(1024, 1024, 1024, 1, 20_504));
        assert!(b.over_limit(1));
        assert!(!b.over_limit(20_505));
        // A 102,400-byte GET after the buffer grew to 2 KB: one block of 114,672.
        b.written();
        b.cron(now + Duration::from_millis(350));
        assert_eq!(b.stats().rbs, 2048);
        b.append(102_400 + 11);
        assert_eq!(b.stats(), stats(2048, 2048, 2048, 1, 114_712));
        // Two 20,000-byte GETs once the buffer grew to 8 KB: the second fills the first block's
        // free space, then takes a new one.
        for at in [450, 550] {
            b.written();
            b.append(100_000);
            b.cron(now + Duration::from_millis(at));
        }
        b.written();
        assert_eq!(b.stats().rbs, 8192);
        b.append(20_000 + 9);
        b.append(20_000 + 9);
        assert_eq!(b.stats(), stats(8192, 8192, 8192, 2, 41_008));
        // A fresh connection's 16 KB buffer holds a 10 KB reply.
        let mut b = ReplyBuffer::new(now);
        b.append(10_250);
        assert!(!b.over_limit(1));
    }

    #[test]
    fn idle_buffer_shrinks_and_busy_one_grows_back() {
        let now = Instant::now();
        let mut b = ReplyBuffer::new(now);
        b.cron(now + Duration::from_secs(3600));
        assert_eq!(b.stats(), stats(1024, 0, 0, 0, 0));
        // A full buffer doubles at each visit, up to 16 KB.
        let mut at = now + Duration::from_secs(3600);
        for want in [2048, 4096, 8192, 16_384, 16_384] {
            b.append(100_000);
            b.written();
            at += CRON_PERIOD;
            b.cron(at);
            assert_eq!(b.stats().rbs, want);
        }
    }

    fn stats(rbs: u64, rbp: u64, obl: u64, oll: u64, omem: u64) -> ReplyStats {
        ReplyStats {
            rbs,
            rbp,
            obl,
            oll,
            omem,
        }
    }

    #[test]
    fn jemalloc_size_classes() {
        assert_eq!(usable_size(1024), 1024);
        assert_eq!(usable_size(1025), 1280);
        assert_eq!(usable_size(16_400), 20_480);
        assert_eq!(usable_size(100_379), 114_688);
    }
}
