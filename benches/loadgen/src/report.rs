//! Reading results back: the markdown tables (medians over repetitions with the min–max
//! spread, and the ratios redraft/etcd and redraft/Redis per row; redraft's log entries per
//! fsync; the snapshot side run; fill runs) and the PNG plots (throughput per workload and
//! system, latency CDFs, watch latency, failover timelines).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use plotters::prelude::*;

use crate::result::RunResult;

/// The row a result belongs to: etcd's serializable reads sit with redraft's stale reads
/// (both answer locally without a quorum round).
pub fn row_mode(r: &RunResult) -> String {
    match r.mode.as_str() {
        "serializable" => "stale".to_string(),
        m => m.to_string(),
    }
}

/// The labels of the snapshot side run (`compare.sh`): the same redraft cluster driven with
/// `--force-snapshots` and without. Reported in their own table, not as systems.
pub const SNAP_ON: &str = "redraft-snap";
pub const SNAP_OFF: &str = "redraft-nosnap";

fn is_snapshot_side(r: &RunResult) -> bool {
    r.system == SNAP_ON || r.system == SNAP_OFF
}

fn is_plain_redis(r: &RunResult) -> bool {
    r.system.starts_with("redis") && r.mode.is_empty()
}

/// The median of `v` (mean of the middle two for an even count).
pub fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Median, min and max of a field over results.
fn stats(rs: &[&RunResult], f: impl Fn(&RunResult) -> f64) -> Option<(f64, f64, f64)> {
    let mut v: Vec<f64> = rs.iter().map(|r| f(r)).filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    let m = median(&mut v);
    Some((m, v[0], v[v.len() - 1]))
}

fn fmt_num(x: f64) -> String {
    if x >= 100.0 {
        let s = format!("{:.0}", x);
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        out
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

fn spread(s: Option<(f64, f64, f64)>) -> String {
    match s {
        Some((m, lo, hi)) if lo != hi => {
            format!("{} ({}–{})", fmt_num(m), fmt_num(lo), fmt_num(hi))
        }
        Some((m, _, _)) => fmt_num(m),
        None => "–".to_string(),
    }
}

/// Systems in a stable order: redraft, etcd, redis, then the rest alphabetically.
pub fn systems(results: &[RunResult]) -> Vec<String> {
    let all: BTreeSet<String> = results.iter().map(|r| r.system.clone()).collect();
    let rank = |s: &str| match s {
        "redraft" => 0,
        "etcd" => 1,
        "redis" => 2,
        _ => 3,
    };
    let mut v: Vec<String> = all.into_iter().collect();
    v.sort_by_key(|s| (rank(s), s.clone()));
    v
}

fn ratio(a: Option<(f64, f64, f64)>, b: Option<(f64, f64, f64)>) -> String {
    match (a, b) {
        (Some((a, _, _)), Some((b, _, _))) if b > 0.0 => format!("{:.2}×", a / b),
        _ => "–".to_string(),
    }
}

type RowKey = (String, String, usize, usize, usize);

/// The markdown report: throughput/latency, group commit, snapshot side run, fill, watch
/// and failover tables.
pub fn table(all: &[RunResult]) -> String {
    let side: Vec<&RunResult> = all.iter().filter(|r| is_snapshot_side(r)).collect();
    let results: Vec<RunResult> = all
        .iter()
        .filter(|r| !is_snapshot_side(r))
        .cloned()
        .collect();
    let results = &results[..];
    let ok: Vec<&RunResult> = results.iter().filter(|r| r.status == "ok").collect();
    let systems = systems(results);
    let mut s = String::new();

    // Throughput rows: every (workload, row mode, size, concurrency, pipeline) some
    // non-Redis system ran, plus Redis-only ones.
    let kv: Vec<&RunResult> = ok
        .iter()
        .copied()
        .filter(|r| {
            matches!(
                r.workload.as_str(),
                "set" | "get" | "mixed" | "evalsha" | "hset" | "hget"
            )
        })
        .collect();
    let mut rows: BTreeSet<RowKey> = kv
        .iter()
        .filter(|r| !is_plain_redis(r))
        .map(|r| {
            (
                r.workload.clone(),
                row_mode(r),
                r.value_size,
                r.concurrency,
                r.pipeline,
            )
        })
        .collect();
    for r in kv.iter().filter(|r| is_plain_redis(r)) {
        let covered = rows.iter().any(|k| {
            (&k.0, k.2, k.3, k.4) == (&r.workload, r.value_size, r.concurrency, r.pipeline)
        });
        if !covered {
            rows.insert((
                r.workload.clone(),
                String::new(),
                r.value_size,
                r.concurrency,
                r.pipeline,
            ));
        }
    }
    let cell = |sys: &str, k: &RowKey| -> Vec<&RunResult> {
        kv.iter()
            .copied()
            .filter(|r| {
                r.system == sys
                    && (&r.workload, r.value_size, r.concurrency, r.pipeline)
                        == (&k.0, k.2, k.3, k.4)
                    && (row_mode(r) == k.1 || is_plain_redis(r))
            })
            .collect()
    };
    if !rows.is_empty() {
        let reps = kv.iter().map(|r| r.rep).max().unwrap_or(0);
        let _ = writeln!(
            s,
            "### Throughput (ops/s) and p99 latency (ms): median of {reps} interleaved runs, \
             (min–max)\n"
        );
        let mut head = "| workload | read mode | value | conc. | pipe |".to_string();
        let mut line = "|---|---|---:|---:|---:|".to_string();
        for sys in &systems {
            let _ = write!(head, " {sys} ops/s | {sys} p99 |");
            line.push_str("---:|---:|");
        }
        head.push_str(" redraft/etcd | redraft/Redis |");
        line.push_str("---:|---:|");
        let _ = writeln!(s, "{head}\n{line}");
        for k in &rows {
            let _ = write!(
                s,
                "| {} | {} | {} | {} | {} |",
                k.0,
                if k.1.is_empty() { "–" } else { &k.1 },
                k.2,
                k.3,
                k.4
            );
            for sys in &systems {
                let c = cell(sys, k);
                let _ = write!(
                    s,
                    " {} | {} |",
                    spread(stats(&c, |r| r.throughput)),
                    spread(stats(&c, |r| r.latency_ms.p99))
                );
            }
            let t = |sys: &str| stats(&cell(sys, k), |r| r.throughput);
            let _ = writeln!(
                s,
                " {} | {} |",
                ratio(t("redraft"), t("etcd")),
                ratio(t("redraft"), t("redis"))
            );
        }
        s.push('\n');
    }

    group_commit_table(&mut s, &ok);
    server_cpu_table(&mut s, &ok);
    snapshot_side_table(&mut s, &side);
    fill_table(&mut s, &ok);

    let watch: Vec<&RunResult> = results
        .iter()
        .filter(|r| r.workload == "watch-latency")
        .collect();
    if !watch.is_empty() {
        let _ = writeln!(
            s,
            "### Watch: put on one node to event on another (ms), median of runs (min–max)\n\n\
             | system | mechanism | status | events | p50 | p99 | max |\n|---|---|---|---:|---:|---:|---:|"
        );
        let keys: BTreeSet<(String, String)> = watch
            .iter()
            .map(|r| (r.system.clone(), r.mode.clone()))
            .collect();
        for (sys, mode) in keys {
            let all: Vec<&RunResult> = watch
                .iter()
                .copied()
                .filter(|r| r.system == sys && r.mode == mode)
                .collect();
            let good: Vec<&RunResult> = all.iter().copied().filter(|r| r.status == "ok").collect();
            let status = if good.is_empty() {
                let first = all[0];
                let note: String = first.note.replace('|', "/").chars().take(70).collect();
                format!("{}: {note}", first.status)
            } else {
                "ok".to_string()
            };
            let _ = writeln!(
                s,
                "| {sys} | {mode} | {status} | {} | {} | {} | {} |",
                spread(stats(&good, |r| r.ops as f64)),
                spread(stats(&good, |r| r.latency_ms.p50)),
                spread(stats(&good, |r| r.latency_ms.p99)),
                spread(stats(&good, |r| r.latency_ms.max)),
            );
        }
        s.push('\n');
    }

    let fo: Vec<&RunResult> = results.iter().filter(|r| r.failover.is_some()).collect();
    if !fo.is_empty() {
        let _ = writeln!(
            s,
            "### Failover: kill -9 of the leader under writes at concurrency {}, median of runs \
             (min–max)\n\n| system | runs | unavailable ms | first write after kill ms | \
             restarted node caught up ms | write ops/s overall |\n|---|---:|---:|---:|---:|---:|",
            fo[0].concurrency
        );
        for sys in systems.iter() {
            let rs: Vec<&RunResult> = fo.iter().copied().filter(|r| &r.system == sys).collect();
            if rs.is_empty() {
                continue;
            }
            let f = |r: &RunResult| r.failover.clone().unwrap_or_default();
            let _ = writeln!(
                s,
                "| {sys} | {} | {} | {} | {} | {} |",
                rs.len(),
                spread(stats(&rs, |r| f(r).unavailable_ms)),
                spread(stats(&rs, |r| f(r).first_ok_after_kill_ms)),
                spread(stats(&rs, |r| f(r).catchup_ms.unwrap_or(f64::NAN))),
                spread(stats(&rs, |r| r.throughput)),
            );
        }
        s.push('\n');
    }
    let bad: Vec<&RunResult> = all
        .iter()
        .filter(|r| r.status != "ok" && r.workload != "watch-latency")
        .collect();
    if !bad.is_empty() {
        let _ = writeln!(s, "Runs that did not complete:\n");
        for r in bad {
            let _ = writeln!(
                s,
                "- {} {} {} size {} conc {} rep {}: {} ({})",
                r.system, r.workload, r.mode, r.value_size, r.concurrency, r.rep, r.status, r.note
            );
        }
    }
    s
}

/// The servers' CPU per operation (every node, all threads), for runs given `--server-pids`.
fn server_cpu_table(s: &mut String, ok: &[&RunResult]) {
    let rs: Vec<&RunResult> = ok
        .iter()
        .copied()
        .filter(|r| r.server_cpu.is_some())
        .collect();
    if rs.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "### Server CPU per operation (user + system, every server process), median of runs \
         (min–max)\n\n| system | workload | mode | value | conc. | pipe | ops/s | server CPU \
         µs/op | server cores busy |\n|---|---|---|---:|---:|---:|---:|---:|---:|"
    );
    let keys: BTreeSet<(String, String, String, usize, usize, usize)> = rs
        .iter()
        .map(|r| {
            (
                r.system.clone(),
                r.workload.clone(),
                r.mode.clone(),
                r.value_size,
                r.concurrency,
                r.pipeline,
            )
        })
        .collect();
    for k in keys {
        let cell: Vec<&RunResult> = rs
            .iter()
            .copied()
            .filter(|r| {
                (
                    &r.system,
                    &r.workload,
                    &r.mode,
                    r.value_size,
                    r.concurrency,
                    r.pipeline,
                ) == (&k.0, &k.1, &k.2, k.3, k.4, k.5)
            })
            .collect();
        let cpu = |r: &RunResult| r.server_cpu.clone().unwrap_or_default();
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            k.0,
            k.1,
            k.2,
            k.3,
            k.4,
            k.5,
            spread(stats(&cell, |r| r.throughput)),
            spread(stats(&cell, |r| cpu(r).us_per_op)),
            spread(stats(&cell, |r| cpu(r).cpu_s / r.duration_s)),
        );
    }
    s.push('\n');
}

/// redraft's group commit during its write runs: log entries per flush (one fsync each) on
/// the leader and over all nodes, from `INFO raft` before and after each run.
fn group_commit_table(s: &mut String, ok: &[&RunResult]) {
    let rs: Vec<&RunResult> = ok
        .iter()
        .copied()
        .filter(|r| r.log_flush.is_some())
        .collect();
    if rs.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "### Group commit: log entries per fsync under load (redraft `INFO raft`), median of \
         runs (min–max)\n\n| system | workload | value | conc. | pipe | ops/s | leader \
         entries/flush | leader flushes/s | all nodes entries/flush | requests/entry |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let keys: BTreeSet<(String, String, usize, usize, usize)> = rs
        .iter()
        .map(|r| {
            (
                r.system.clone(),
                r.workload.clone(),
                r.value_size,
                r.concurrency,
                r.pipeline,
            )
        })
        .collect();
    for k in keys {
        let cell: Vec<&RunResult> = rs
            .iter()
            .copied()
            .filter(|r| {
                (
                    &r.system,
                    &r.workload,
                    r.value_size,
                    r.concurrency,
                    r.pipeline,
                ) == (&k.0, &k.1, k.2, k.3, k.4)
            })
            .collect();
        let lf = |r: &RunResult| r.log_flush.clone().unwrap_or_default();
        let leader_flushes = |r: &RunResult| {
            lf(r)
                .nodes
                .iter()
                .find(|n| n.leader)
                .map(|n| n.flushes as f64 / r.duration_s)
                .unwrap_or(f64::NAN)
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            k.0,
            k.1,
            k.2,
            k.3,
            k.4,
            spread(stats(&cell, |r| r.throughput)),
            spread(stats(&cell, |r| lf(r)
                .leader_entries_per_flush()
                .unwrap_or(f64::NAN))),
            spread(stats(&cell, leader_flushes)),
            spread(stats(&cell, |r| lf(r)
                .all_entries_per_flush()
                .unwrap_or(f64::NAN))),
            spread(stats(&cell, |r| lf(r)
                .requests_per_entry()
                .unwrap_or(f64::NAN))),
        );
    }
    s.push('\n');
}

/// The snapshot side run: the same writes with snapshots forced on the leader and without;
/// the p99 ratio is what snapshots cost the writes (the target: at most 1.5×).
fn snapshot_side_table(s: &mut String, side: &[&RunResult]) {
    let ok: Vec<&RunResult> = side.iter().copied().filter(|r| r.status == "ok").collect();
    if ok.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "### Snapshots during writes: the same cluster with `RAFT.SNAPSHOT` forced on the \
         leader and without, median of interleaved runs (min–max)\n\n| workload | value | \
         conc. | without: ops/s | without: p99 ms | with: ops/s | with: p99 ms | p99 with / \
         without | snapshots per run | RAFT.SNAPSHOT mean ms |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    let keys: BTreeSet<(String, usize, usize, usize)> = ok
        .iter()
        .map(|r| (r.workload.clone(), r.value_size, r.concurrency, r.pipeline))
        .collect();
    for k in keys {
        let cell = |sys: &str| -> Vec<&RunResult> {
            ok.iter()
                .copied()
                .filter(|r| {
                    r.system == sys
                        && (&r.workload, r.value_size, r.concurrency, r.pipeline)
                            == (&k.0, k.1, k.2, k.3)
                })
                .collect()
        };
        let (off, on) = (cell(SNAP_OFF), cell(SNAP_ON));
        let fs = |r: &RunResult| r.forced_snapshots.clone().unwrap_or_default();
        let p99 = |c: &[&RunResult]| stats(c, |r| r.latency_ms.p99);
        let pipe = if k.3 > 1 {
            format!(", pipeline {}", k.3)
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "| {}{pipe} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            k.0,
            k.1,
            k.2,
            spread(stats(&off, |r| r.throughput)),
            spread(p99(&off)),
            spread(stats(&on, |r| r.throughput)),
            spread(p99(&on)),
            ratio(p99(&on), p99(&off)),
            spread(stats(&on, |r| fs(r).taken as f64)),
            spread(stats(&on, |r| if fs(r).taken > 0 {
                fs(r).mean_ms
            } else {
                f64::NAN
            })),
        );
    }
    s.push('\n');
}

/// Counted loads (`fill`, `set --total-ops`): how long the whole load took.
fn fill_table(s: &mut String, ok: &[&RunResult]) {
    let rs: Vec<&RunResult> = ok
        .iter()
        .copied()
        .filter(|r| r.workload == "fill")
        .collect();
    if rs.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "### Fill: every key written once, then uniform overwrites; every write acknowledged\n\n\
         | system | writes | value | conc. | pipe | seconds | writes/s | p50 ms | p99 ms | \
         retried |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for r in rs {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.system,
            fmt_num(r.ops as f64),
            r.value_size,
            r.concurrency,
            r.pipeline,
            fmt_num(r.duration_s),
            fmt_num(r.throughput),
            fmt_num(r.latency_ms.p50),
            fmt_num(r.latency_ms.p99),
            r.errors,
        );
    }
    s.push('\n');
}

/// Loads DejaVu Sans from Debian's `fonts-dejavu-core` for the plots' text (the jepsen
/// harness's approach); without it the plots have no text.
fn font() -> bool {
    static LOADED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *LOADED.get_or_init(|| {
        for path in [
            "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
            "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
        ] {
            if let Ok(bytes) = std::fs::read(path) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return true;
                }
            }
        }
        false
    })
}

fn color(i: usize) -> RGBColor {
    const C: [RGBColor; 8] = [
        RGBColor(214, 39, 40),
        RGBColor(31, 119, 180),
        RGBColor(44, 160, 44),
        RGBColor(255, 127, 14),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(23, 190, 207),
    ];
    C[i % C.len()]
}

fn series_name(r: &RunResult) -> String {
    if r.mode.is_empty() {
        r.system.clone()
    } else {
        format!("{} {}", r.system, r.mode)
    }
}

/// Draws `series` (name → points) as lines with markers; `log_x` puts x on a log scale.
#[allow(clippy::too_many_arguments)]
fn line_chart(
    path: &Path,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &BTreeMap<String, Vec<(f64, f64)>>,
    log_x: bool,
    marks: &[(f64, &str)],
    legend: SeriesLabelPosition,
) -> anyhow::Result<()> {
    let text = font();
    let pts = series.values().flatten();
    let (mut x0, mut x1, mut y1) = (f64::MAX, f64::MIN, 0f64);
    for &(x, y) in pts {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y1 = y1.max(y);
    }
    if x0 > x1 {
        return Ok(());
    }
    if x0 == x1 {
        x1 = x0 + 1.0;
    }
    let y1 = y1 * 1.1 + 1e-9;
    let root = BitMapBackend::new(path, (1000, 600)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut b = ChartBuilder::on(&root);
    b.margin(15);
    if text {
        b.caption(title, ("sans-serif", 20))
            .x_label_area_size(40)
            .y_label_area_size(70);
    }
    macro_rules! draw {
        ($chart:expr) => {{
            let mut chart = $chart;
            if text {
                chart
                    .configure_mesh()
                    .x_desc(x_desc)
                    .y_desc(y_desc)
                    .draw()?;
            }
            for (x, label) in marks {
                chart.draw_series(LineSeries::new(
                    vec![(*x, 0.0), (*x, y1)],
                    BLACK.mix(0.6).stroke_width(2),
                ))?;
                if text {
                    chart.draw_series(std::iter::once(Text::new(
                        label.to_string(),
                        (*x, y1 * 0.97),
                        ("sans-serif", 14).into_font(),
                    )))?;
                }
            }
            for (i, (name, pts)) in series.iter().enumerate() {
                let c = color(i);
                let s = chart.draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))?;
                if text {
                    s.label(name.clone()).legend(move |(x, y)| {
                        PathElement::new([(x, y), (x + 20, y)], c.stroke_width(2))
                    });
                }
                if pts.len() < 40 {
                    chart.draw_series(pts.iter().map(|p| Circle::new(*p, 3, c.filled())))?;
                }
            }
            if text {
                chart
                    .configure_series_labels()
                    .position(legend.clone())
                    .background_style(WHITE.mix(0.85))
                    .border_style(BLACK)
                    .draw()?;
            }
        }};
    }
    if log_x {
        draw!(b.build_cartesian_2d((x0.max(1e-3) / 1.5..x1 * 1.5).log_scale(), 0f64..y1)?);
    } else {
        draw!(b.build_cartesian_2d(x0..x1, 0f64..y1)?);
    }
    root.present()?;
    Ok(())
}

/// The result with the median throughput among `rs` (the run a CDF or timeline shows).
fn median_run<'a>(rs: &[&'a RunResult], f: impl Fn(&RunResult) -> f64) -> Option<&'a RunResult> {
    let mut v: Vec<&RunResult> = rs.to_vec();
    v.sort_by(|a, b| f(a).total_cmp(&f(b)));
    v.get(v.len() / 2).copied()
}

/// Writes every plot into `dir`; returns the files written.
pub fn plot(results: &[RunResult], dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut files = Vec::new();
    let ok: Vec<&RunResult> = results
        .iter()
        .filter(|r| r.status == "ok" && !is_snapshot_side(r))
        .collect();

    // Throughput against concurrency, per workload and value size (pipeline 1).
    let groups: BTreeSet<(String, usize)> = ok
        .iter()
        .filter(|r| matches!(r.workload.as_str(), "set" | "get" | "mixed") && r.pipeline == 1)
        .map(|r| (r.workload.clone(), r.value_size))
        .collect();
    for (w, size) in &groups {
        let mut series: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
        let rs: Vec<&RunResult> = ok
            .iter()
            .copied()
            .filter(|r| &r.workload == w && r.value_size == *size && r.pipeline == 1)
            .collect();
        let names: BTreeSet<String> = rs.iter().map(|r| series_name(r)).collect();
        for name in names {
            let concs: BTreeSet<usize> = rs
                .iter()
                .filter(|r| series_name(r) == name)
                .map(|r| r.concurrency)
                .collect();
            let pts = concs
                .into_iter()
                .filter_map(|c| {
                    let cell: Vec<&RunResult> = rs
                        .iter()
                        .copied()
                        .filter(|r| series_name(r) == name && r.concurrency == c)
                        .collect();
                    stats(&cell, |r| r.throughput).map(|(m, _, _)| (c as f64, m))
                })
                .collect();
            series.insert(name, pts);
        }
        let path = dir.join(format!("throughput-{w}-{size}B.png"));
        line_chart(
            &path,
            &format!("{w}, {size} B values: throughput (median of runs)"),
            "concurrency (connections, log scale)",
            "ops/s",
            &series,
            true,
            &[],
            SeriesLabelPosition::UpperLeft,
        )?;
        files.push(path);

        // Latency CDF at each concurrency, the median-throughput run per series.
        let concs: BTreeSet<usize> = rs.iter().map(|r| r.concurrency).collect();
        for c in concs {
            let mut series = BTreeMap::new();
            let names: BTreeSet<String> = rs
                .iter()
                .filter(|r| r.concurrency == c)
                .map(|r| series_name(r))
                .collect();
            for name in names {
                let cell: Vec<&RunResult> = rs
                    .iter()
                    .copied()
                    .filter(|r| r.concurrency == c && series_name(r) == name)
                    .collect();
                if let Some(r) = median_run(&cell, |r| r.throughput) {
                    series.insert(
                        name,
                        r.cdf.iter().map(|&(q, ms)| (ms.max(0.001), q)).collect(),
                    );
                }
            }
            let path = dir.join(format!("latency-cdf-{w}-{size}B-c{c}.png"));
            line_chart(
                &path,
                &format!("{w}, {size} B, {c} connections: latency CDF"),
                "latency (ms, log scale)",
                "fraction of operations",
                &series,
                true,
                &[],
                SeriesLabelPosition::LowerRight,
            )?;
            files.push(path);
        }
    }

    // Watch latency CDFs.
    let watch: Vec<&RunResult> = ok
        .iter()
        .copied()
        .filter(|r| r.workload == "watch-latency")
        .collect();
    if !watch.is_empty() {
        let mut series = BTreeMap::new();
        let names: BTreeSet<String> = watch.iter().map(|r| series_name(r)).collect();
        for name in names {
            let cell: Vec<&RunResult> = watch
                .iter()
                .copied()
                .filter(|r| series_name(r) == name)
                .collect();
            if let Some(r) = median_run(&cell, |r| r.latency_ms.p99) {
                series.insert(
                    name,
                    r.cdf.iter().map(|&(q, ms)| (ms.max(0.001), q)).collect(),
                );
            }
        }
        let path = dir.join("watch-latency-cdf.png");
        line_chart(
            &path,
            "watch: put on one node to event on another, latency CDF",
            "latency (ms, log scale)",
            "fraction of events",
            &series,
            true,
            &[],
            SeriesLabelPosition::LowerRight,
        )?;
        files.push(path);
    }

    // Failover timelines: the run with the median unavailability, per system.
    let fo: Vec<&RunResult> = results.iter().filter(|r| r.failover.is_some()).collect();
    for sys in systems(results) {
        let rs: Vec<&RunResult> = fo.iter().copied().filter(|r| r.system == sys).collect();
        let Some(r) = median_run(&rs, |r| {
            r.failover.as_ref().map_or(0.0, |f| f.unavailable_ms)
        }) else {
            continue;
        };
        let f = r.failover.as_ref().expect("filtered");
        let per_s = 1000.0 / f.bucket_ms as f64;
        let pts: Vec<(f64, f64)> = f
            .ok_per_bucket
            .iter()
            .enumerate()
            .map(|(i, &n)| (i as f64 * f.bucket_ms as f64 / 1000.0, n as f64 * per_s))
            .collect();
        let mut series = BTreeMap::new();
        series.insert(format!("{sys} writes/s per {} ms", f.bucket_ms), pts);
        let path = dir.join(format!("failover-{sys}.png"));
        line_chart(
            &path,
            &format!(
                "{sys}: kill -9 of the leader (node {}), unavailable {:.0} ms",
                f.killed_node, f.unavailable_ms
            ),
            "time since start (s)",
            "successful writes/s",
            &series,
            false,
            &[
                (f.kill_at_ms / 1000.0, " kill -9"),
                (f.restart_at_ms / 1000.0, " restart"),
            ],
            SeriesLabelPosition::LowerRight,
        )?;
        files.push(path);
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::{Failover, Latency};

    fn run(system: &str, workload: &str, mode: &str, conc: usize, rep: u32, thr: f64) -> RunResult {
        RunResult {
            system: system.into(),
            workload: workload.into(),
            mode: mode.into(),
            value_size: 256,
            concurrency: conc,
            pipeline: 1,
            rep,
            status: "ok".into(),
            throughput: thr,
            latency_ms: Latency {
                p99: thr / 1000.0,
                ..Latency::default()
            },
            cdf: vec![(0.0, 0.1), (0.5, 1.0), (1.0, 5.0)],
            ..RunResult::default()
        }
    }

    #[test]
    fn medians() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&mut []).is_nan());
        assert_eq!(fmt_num(1234567.0), "1,234,567");
        assert_eq!(fmt_num(12.345), "12.3");
    }

    #[test]
    fn table_has_medians_spreads_and_ratios() {
        let rs = vec![
            run("redraft", "get", "stale", 64, 1, 30000.0),
            run("redraft", "get", "stale", 64, 2, 50000.0),
            run("redraft", "get", "stale", 64, 3, 40000.0),
            run("etcd", "get", "serializable", 64, 1, 20000.0),
            run("redis", "get", "", 64, 1, 80000.0),
            run("redraft", "set", "", 64, 1, 9000.0),
        ];
        let t = table(&rs);
        // The stale row pairs redraft's stale reads with etcd's serializable ones and Redis.
        let row = t
            .lines()
            .find(|l| l.starts_with("| get | stale"))
            .expect(&t);
        assert!(row.contains("40,000 (30,000–50,000)"), "{row}");
        assert!(row.contains("| 20,000 |"), "{row}");
        assert!(row.contains("| 2.00× | 0.50× |"), "{row}");
        let set = t.lines().find(|l| l.starts_with("| set |")).expect(&t);
        assert!(set.contains("9,000") && set.ends_with("| – | – |"), "{set}");
        assert!(t.contains("median of 3"), "{t}");
    }

    #[test]
    fn watch_and_failover_tables() {
        let mut w = run("redraft", "watch-latency", "xread", 1, 1, 0.0);
        w.status = "unsupported".into();
        w.note = "XREAD: ERR unknown command".into();
        let mut f = run("etcd", "failover", "", 16, 1, 500.0);
        f.failover = Some(Failover {
            bucket_ms: 100,
            ok_per_bucket: vec![50, 0, 0, 50],
            unavailable_ms: 1234.0,
            catchup_ms: Some(250.0),
            ..Failover::default()
        });
        let t = table(&[w, f.clone()]);
        assert!(
            t.contains("| redraft | xread | unsupported: XREAD: ERR unknown command |"),
            "{t}"
        );
        assert!(t.contains("| etcd | 1 | 1,234 |"), "{t}");
        assert!(t.contains("| 250 |"), "{t}");
    }

    #[test]
    fn group_commit_snapshot_and_fill_tables() {
        use crate::result::{ForcedSnapshots, LogFlush, NodeFlush};
        let flush = |leader_entries| LogFlush {
            nodes: vec![
                NodeFlush {
                    endpoint: "a:1".into(),
                    leader: true,
                    flushes: 100,
                    entries: leader_entries,
                    proposals: None,
                    syncs: None,
                },
                NodeFlush {
                    endpoint: "b:2".into(),
                    leader: false,
                    flushes: 100,
                    entries: 500,
                    proposals: None,
                    syncs: None,
                },
            ],
        };
        let mut set1 = run("redraft", "set", "", 64, 1, 4000.0);
        set1.duration_s = 2.0;
        set1.log_flush = Some(flush(1200));
        let mut set2 = run("redraft", "set", "", 64, 2, 4000.0);
        set2.duration_s = 2.0;
        set2.log_flush = Some(flush(1600));
        let mut off = run(SNAP_OFF, "set", "", 64, 1, 5000.0);
        off.latency_ms.p99 = 20.0;
        let mut on = run(SNAP_ON, "set", "", 64, 1, 4000.0);
        on.latency_ms.p99 = 50.0;
        on.forced_snapshots = Some(ForcedSnapshots {
            interval_ms: 1000,
            taken: 3,
            mean_ms: 40.0,
            ..ForcedSnapshots::default()
        });
        let mut fill = run("etcd", "fill", "", 256, 1, 3000.0);
        fill.ops = 500_000;
        fill.duration_s = 166.7;
        let t = table(&[set1, set2, off, on, fill]);
        let gc = t
            .lines()
            .find(|l| l.starts_with("| redraft | set | 256 | 64 | 1 |"))
            .expect(&t);
        // Leader: 12 and 16 entries per flush (median 14), 50 flushes/s; all: (1200+500)/200
        // and (1600+500)/200.
        assert!(
            gc.contains("| 14.0 (12.0–16.0) | 50.0 | 9.50 (8.50–10.5) |"),
            "{gc}"
        );
        let snap = t
            .lines()
            .find(|l| l.starts_with("| set | 256 | 64 |"))
            .expect(&t);
        assert!(
            snap.contains("| 20.0 |") && snap.contains("| 50.0 |"),
            "{snap}"
        );
        assert!(snap.contains("| 2.50× | 3.00 | 40.0 |"), "{snap}");
        // The side run's labels are no systems of the main table.
        let head = t
            .lines()
            .find(|l| l.starts_with("| workload | read mode"))
            .expect(&t);
        assert!(
            !head.contains("redraft-snap") && !head.contains("nosnap"),
            "{head}"
        );
        let f = t
            .lines()
            .find(|l| l.starts_with("| etcd | 500,000 |"))
            .expect(&t);
        assert!(f.contains("| 167 | 3,000 |"), "{f}");
    }

    #[test]
    fn plots_pngs() {
        let mut rs = vec![
            run("redraft", "set", "", 1, 1, 1000.0),
            run("redraft", "set", "", 64, 1, 9000.0),
            run("etcd", "set", "", 1, 1, 800.0),
            run("etcd", "set", "", 64, 1, 4000.0),
        ];
        let mut f = run("redraft", "failover", "", 16, 1, 500.0);
        f.failover = Some(Failover {
            bucket_ms: 100,
            ok_per_bucket: vec![50, 0, 0, 50, 40],
            kill_at_ms: 100.0,
            restart_at_ms: 300.0,
            ..Failover::default()
        });
        rs.push(f);
        let dir = std::env::temp_dir().join(format!("loadgen-plots-{}", std::process::id()));
        let files = plot(&rs, &dir).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.contains(&"throughput-set-256B.png".to_string()),
            "{names:?}"
        );
        assert!(
            names.contains(&"latency-cdf-set-256B-c64.png".to_string()),
            "{names:?}"
        );
        assert!(
            names.contains(&"failover-redraft.png".to_string()),
            "{names:?}"
        );
        for f in &files {
            assert!(
                std::fs::read(f).unwrap().starts_with(b"\x89PNG"),
                "{}",
                f.display()
            );
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
