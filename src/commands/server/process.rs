//! The process figures INFO shows in `# Memory` and `# CPU`, read from the allocator and the
//! kernel (Linux): heap bytes in use from the allocator the binary registered (jemalloc's
//! `stats.allocated`, with its `allocator_*` figures and name: AllocatorReported,
//! `allocator.rs`), else from glibc's `mallinfo2`; resident set size from `/proc/self/statm`,
//! CPU time from `getrusage` and, for the main thread, `/proc/self/task/<pid>/stat`. Field
//! names and number formats are Redis 7.0's; the fields redraft has no counterpart for (Lua,
//! functions, eviction) are left out rather than filled with made-up values.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// The highest `used_memory` seen by an INFO or `/metrics` read (Redis tracks it on every
/// allocation; redraft samples it when asked, so a short peak between two reads is missed).
static PEAK: AtomicU64 = AtomicU64::new(0);

/// `# Memory`.
pub(super) fn memory_section(out: &mut String) {
    let allocator = crate::allocator::registered();
    let heap = allocator.and_then(|a| (a.stats)());
    let used = heap.map_or_else(heap_in_use, |h| h.allocated);
    let peak = PEAK.fetch_max(used, Ordering::Relaxed).max(used);
    let rss = resident_bytes();
    let total = total_system_memory();
    let peak_perc = if peak == 0 {
        0.0
    } else {
        used as f64 * 100.0 / peak as f64
    };
    let frag = if used == 0 {
        0.0
    } else {
        rss as f64 / used as f64
    };
    let _ = write!(
        out,
        "# Memory\r\nused_memory:{used}\r\nused_memory_human:{}\r\nused_memory_rss:{rss}\r\n\
         used_memory_rss_human:{}\r\nused_memory_peak:{peak}\r\nused_memory_peak_human:{}\r\n\
         used_memory_peak_perc:{peak_perc:.2}%\r\n",
        human(used),
        human(rss),
        human(peak),
    );
    if let Some(h) = heap {
        // Where Redis 7.0 has them, after the dataset figures redraft does not keep.
        let _ = write!(
            out,
            "allocator_allocated:{}\r\nallocator_active:{}\r\nallocator_resident:{}\r\n",
            h.allocated, h.active, h.resident
        );
    }
    let _ = write!(
        out,
        "total_system_memory:{total}\r\n\
         total_system_memory_human:{}\r\nmaxmemory:0\r\nmaxmemory_human:0B\r\n\
         maxmemory_policy:noeviction\r\nmem_fragmentation_ratio:{frag:.2}\r\n\
         mem_fragmentation_bytes:{}\r\nmem_allocator:{}\r\n",
        human(total),
        rss as i64 - used as i64,
        allocator.map_or("libc", |a| a.name),
    );
}

/// `# CPU`: seconds of system and user time, as `%ld.%06ld` (Redis's format).
pub(super) fn cpu_section(out: &mut String) {
    let (self_sys, self_user) = rusage(libc::RUSAGE_SELF);
    let (child_sys, child_user) = rusage(libc::RUSAGE_CHILDREN);
    let (main_sys, main_user) = main_thread_cpu().unwrap_or((self_sys, self_user));
    let _ = write!(
        out,
        "# CPU\r\nused_cpu_sys:{}\r\nused_cpu_user:{}\r\nused_cpu_sys_children:{}\r\n\
         used_cpu_user_children:{}\r\nused_cpu_sys_main_thread:{}\r\n\
         used_cpu_user_main_thread:{}\r\n",
        secs(self_sys),
        secs(self_user),
        secs(child_sys),
        secs(child_user),
        secs(main_sys),
        secs(main_user),
    );
}

/// Microseconds as Redis prints CPU seconds.
fn secs(us: u64) -> String {
    format!("{}.{:06}", us / 1_000_000, us % 1_000_000)
}

/// (system, user) CPU microseconds of `who`.
fn rusage(who: libc::c_int) -> (u64, u64) {
    // SAFETY: getrusage writes one `rusage` into the zeroed struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(who, &mut ru) } != 0 {
        return (0, 0);
    }
    let us = |t: libc::timeval| t.tv_sec.max(0) as u64 * 1_000_000 + t.tv_usec.max(0) as u64;
    (us(ru.ru_stime), us(ru.ru_utime))
}

/// (system, user) CPU microseconds of the main thread (the one whose id is the process id).
fn main_thread_cpu() -> Option<(u64, u64)> {
    let pid = std::process::id();
    let stat = std::fs::read_to_string(format!("/proc/self/task/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: fields after it.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let ticks = u64::try_from(ticks).ok().filter(|&t| t > 0)?;
    Some((stime * 1_000_000 / ticks, utime * 1_000_000 / ticks))
}

/// Heap bytes in use when no allocator registered its own figures: glibc's arenas plus its
/// mmapped blocks.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn heap_in_use() -> u64 {
    // SAFETY: mallinfo2 has no preconditions and returns a plain struct.
    let m = unsafe { libc::mallinfo2() };
    (m.uordblks + m.hblkhd) as u64
}

/// Without glibc, the resident set stands in for the heap.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn heap_in_use() -> u64 {
    resident_bytes()
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096)
}

/// Resident set size, from `/proc/self/statm` (its second field, in pages).
fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split(' ').nth(1).and_then(|p| p.parse::<u64>().ok()))
        .map_or(0, |pages| pages * page_size())
}

fn total_system_memory() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let pages = unsafe { libc::sysconf(libc::_SC_PHYS_PAGES) };
    u64::try_from(pages).unwrap_or(0) * page_size()
}

/// Redis's `bytesToHuman`: `B` below 1 KiB, else two decimals of K, M, G, T, P.
fn human(n: u64) -> String {
    const UNITS: [(f64, &str); 5] = [
        (1024.0, "K"),
        (1048576.0, "M"),
        (1073741824.0, "G"),
        (1099511627776.0, "T"),
        (1125899906842624.0, "P"),
    ];
    if n < 1024 {
        return format!("{n}B");
    }
    let v = n as f64;
    for (i, (unit, name)) in UNITS.iter().enumerate() {
        if i + 1 == UNITS.len() || v < UNITS[i + 1].0 {
            return format!("{:.2}{name}", v / unit);
        }
    }
    unreachable!("the last unit returns")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes_as_redis_prints_them() {
        assert_eq!(human(0), "0B");
        assert_eq!(human(1023), "1023B");
        assert_eq!(human(1024), "1.00K");
        assert_eq!(human(1087568), "1.04M");
        assert_eq!(human(25275990016), "23.54G");
    }

    #[test]
    fn the_process_figures_are_read() {
        let mut out = String::new();
        memory_section(&mut out);
        let used: u64 = field(&out, "used_memory").parse().unwrap();
        let rss: u64 = field(&out, "used_memory_rss").parse().unwrap();
        assert!(used > 0 && rss > 0, "{out}");
        let mut out = String::new();
        // Burn a little CPU so user time is not zero.
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert_ne!(x, 1);
        cpu_section(&mut out);
        let user: f64 = field(&out, "used_cpu_user").parse().unwrap();
        assert!(user > 0.0, "{out}");
        assert!(
            field(&out, "used_cpu_user_main_thread").contains('.'),
            "{out}"
        );
    }

    fn field<'a>(text: &'a str, name: &str) -> &'a str {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .unwrap_or_else(|| panic!("{name} missing in {text}"))
    }
}
