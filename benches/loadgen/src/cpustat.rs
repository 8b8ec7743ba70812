//! Server CPU per operation: the user + system CPU time of the server processes (every node,
//! all threads) over a run's measured time, read from `/proc/<pid>/stat` before and after.
//!
//! Read, never assumed: a PID that cannot be read (the process died, another machine) leaves
//! the run without `server_cpu` and says so in the note.

use crate::result::ServerCpu;

/// The CPU seconds (user + system, all threads) process `pid` has used so far.
pub fn cpu_seconds(pid: u32) -> Result<f64, String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("server CPU: /proc/{pid}/stat: {e}"))?;
    parse_stat(&text).ok_or_else(|| format!("server CPU: /proc/{pid}/stat: no utime/stime"))
}

/// utime + stime (fields 14 and 15 of `/proc/<pid>/stat`) in seconds. The command name (field
/// 2) may hold spaces and parentheses, so fields are counted after its last `)`.
fn parse_stat(text: &str) -> Option<f64> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): utime is field 14, stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let ticks = if ticks > 0 { ticks as f64 } else { 100.0 };
    Some((utime + stime) as f64 / ticks)
}

/// The CPU seconds of every process in `pids`, summed.
pub fn total(pids: &[u32]) -> Result<f64, String> {
    pids.iter().map(|&p| cpu_seconds(p)).sum()
}

/// The servers' CPU over a run: `before` and `after` from [`total`], `ops` the operations
/// the run completed in that time.
pub fn per_op(pids: &[u32], before: f64, after: f64, ops: u64) -> ServerCpu {
    let cpu_s = (after - before).max(0.0);
    ServerCpu {
        processes: pids.len(),
        cpu_s,
        us_per_op: if ops > 0 {
            cpu_s * 1e6 / ops as f64
        } else {
            f64::NAN
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utime_and_stime_are_read_after_the_command_name() {
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        let line = "4242 (tokio (rt) worker) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 \
                    20 0 9 0 12345 1000000 500 18446744073709551615";
        assert_eq!(parse_stat(line), Some(300.0 / ticks));
        assert_eq!(parse_stat("4242 (x) S 1 2"), None);
        assert!(cpu_seconds(std::process::id()).unwrap() >= 0.0);
        assert!(cpu_seconds(u32::MAX).is_err());
    }
}
