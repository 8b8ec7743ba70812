//! Raw RESP for black-box tests: the shared client's raw module (`resp_client::raw`: exact
//! bytes out and in, a strict RESP2/RESP3 reply reader, the multibulk encoder), plus what only
//! tests need: the `tests/testdata` fixture format and `/proc/<pid>/status` figures.
//!
//! It must not interpret commands, and it never sleeps for correctness: every read has a
//! deadline, and every `must_*` helper panics saying what it waited for and what it had.
#![allow(dead_code)]

use std::time::Duration;

pub use resp_client::raw::*;

/// A `kB` figure of `/proc/<pid>/status`, e.g. `VmRSS` or `VmData`.
pub fn proc_status_kb(pid: u32, field: &str) -> u64 {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{path} has no {field} in kB:\n{text}"))
}

/// One case of a `tests/testdata/*.txt` fixture.
#[derive(Debug, Clone)]
pub struct Case {
    /// The first `#` comment line, used to name the case in failures.
    pub title: String,
    /// 1-based line of the fixture where the case starts.
    pub line: usize,
    /// `@only <target> <reason>`: the case runs against that target only.
    pub only: Option<String>,
    pub input: Vec<u8>,
    pub want: Vec<u8>,
    /// `(closed)`: the server must close the connection after `want`; `(open)`: it must still
    /// answer `PING`.
    pub closed: bool,
}

/// Parses the fixture format of `tests/testdata/*.txt`.
///
/// ```text
/// # Title of the case; more comment lines may follow.
/// @only redraft  why Redis differs            (optional)
/// input line, escapes \r \n \t \0 \\ \xHH; line breaks of the file are not input
/// ----
/// expected output, same escapes
/// (open) | (closed)
/// ```
///
/// Cases are separated by blank lines.
pub fn parse_fixture(text: &str) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut block: Vec<(usize, &str)> = Vec::new();
    for (i, line) in text.lines().enumerate().chain([(usize::MAX, "")]) {
        if !line.trim().is_empty() {
            block.push((i + 1, line));
            continue;
        }
        if block.iter().all(|(_, l)| l.starts_with('#')) {
            block.clear();
            continue;
        }
        cases.push(parse_case(&block));
        block.clear();
    }
    cases
}

fn parse_case(block: &[(usize, &str)]) -> Case {
    let line = block[0].0;
    let mut case = Case {
        title: String::new(),
        line,
        only: None,
        input: Vec::new(),
        want: Vec::new(),
        closed: false,
    };
    let mut after_sep = false;
    let mut end = None;
    for &(n, l) in block {
        if let Some(comment) = l.strip_prefix('#') {
            if case.title.is_empty() {
                case.title = comment.trim().to_string();
            }
        } else if let Some(rest) = l.strip_prefix("@only ") {
            case.only = rest.split_whitespace().next().map(str::to_string);
        } else if l == "----" {
            after_sep = true;
        } else if after_sep && (l == "(open)" || l == "(closed)") {
            end = Some(l == "(closed)");
        } else if after_sep {
            case.want.extend(unescape(l, n));
        } else {
            case.input.extend(unescape(l, n));
        }
    }
    case.closed = end.unwrap_or_else(|| panic!("fixture case at line {line}: no (open)/(closed)"));
    assert!(after_sep, "fixture case at line {line}: no ---- line");
    case
}

/// Turns the fixture escapes `\r \n \t \0 \\ \xHH` into bytes.
pub fn unescape(s: &str, line: usize) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        match b.get(i + 1) {
            Some(b'r') => out.push(b'\r'),
            Some(b'n') => out.push(b'\n'),
            Some(b't') => out.push(b'\t'),
            Some(b'0') => out.push(0),
            Some(b'\\') => out.push(b'\\'),
            Some(b'x') => {
                let byte = s
                    .get(i + 2..i + 4)
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                    .unwrap_or_else(|| bad_escape(s, line));
                out.push(byte);
                i += 2;
            }
            _ => bad_escape(s, line),
        }
        i += 2;
    }
    out
}

fn bad_escape(s: &str, line: usize) -> ! {
    panic!("fixture line {line}: bad escape in {s:?}")
}

/// Runs every fixture case against the server at `addr` (named `target`), each on a fresh
/// connection, in file order. Returns one line per failing case.
pub fn run_fixture(cases: &[Case], target: &str, addr: &str) -> Vec<String> {
    let mut failures = Vec::new();
    for case in cases {
        if case.only.as_deref().is_some_and(|only| only != target) {
            continue;
        }
        if let Err(why) = run_case(case, addr) {
            failures.push(format!(
                "[{target}] line {} \"{}\": {why}",
                case.line, case.title
            ));
        }
    }
    failures
}

fn run_case(case: &Case, addr: &str) -> Result<(), String> {
    let mut conn = RawConn::must_connect(addr);
    conn.try_send(&case.input)
        .map_err(|e| format!("send: {e}"))?;
    let got = conn.read_up_to(case.want.len(), Duration::from_secs(5));
    if got != case.want {
        return Err(format!(
            "got \"{}\", want \"{}\"",
            escape(&got),
            escape(&case.want)
        ));
    }
    if case.closed {
        let (extra, closed) = conn.drain_for(Duration::from_secs(3));
        if !extra.is_empty() {
            return Err(format!("extra bytes before close: \"{}\"", escape(&extra)));
        }
        if !closed {
            return Err("connection still open 3 s after the reply; want it closed".into());
        }
    } else {
        if conn.try_send(b"PING\r\n").is_err() {
            return Err("connection closed; want it open".into());
        }
        let after = conn.read_up_to(7, Duration::from_secs(5));
        if after != b"+PONG\r\n" {
            return Err(format!(
                "connection should still be open and answer PING; got \"{}\"",
                escape(&after)
            ));
        }
    }
    Ok(())
}
