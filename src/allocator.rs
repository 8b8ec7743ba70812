//! What the process's heap allocator reports, for `INFO memory`.
//!
//! **AllocatorReported.** The `redraft` binary allocates with jemalloc (`main.rs`) and registers
//! jemalloc's figures here at start ([`register`]); `INFO memory` reads `used_memory`,
//! `allocator_*` and `mem_allocator` from them. A process that registers nothing (the
//! library's own tests, which allocate with the system allocator) reads glibc's `mallinfo2`
//! instead (`commands/server/process.rs`). The library does not read jemalloc itself: which
//! allocator serves the heap is the binary's choice, and jemalloc's statistics in a process
//! that does not allocate with it would be zeros presented as the heap.

use std::sync::OnceLock;

/// Bytes in the allocator's heap at one moment, as jemalloc counts them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeapStats {
    /// Bytes the application holds (`stats.allocated`): Redis's `used_memory`.
    pub allocated: u64,
    /// Bytes in pages holding those allocations (`stats.active`).
    pub active: u64,
    /// Bytes of the allocator's pages that are resident (`stats.resident`).
    pub resident: u64,
}

/// The process's allocator, as registered by the binary.
#[derive(Clone, Copy, Debug)]
pub struct Allocator {
    /// `mem_allocator`, e.g. `jemalloc-5.3.0`.
    pub name: &'static str,
    /// Reads the current figures; `None` when the allocator cannot say.
    pub stats: fn() -> Option<HeapStats>,
}

static ALLOCATOR: OnceLock<Allocator> = OnceLock::new();

/// Registers the process's allocator (once; a second registration is ignored).
pub fn register(allocator: Allocator) {
    let _ = ALLOCATOR.set(allocator);
}

/// The registered allocator, if any.
pub fn registered() -> Option<&'static Allocator> {
    ALLOCATOR.get()
}
