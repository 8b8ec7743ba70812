//! What a run leaves behind: the summary (ops by type and outcome, latency, availability per
//! fault window) and the PNG timeline (latency over time per outcome, fault windows shaded).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;
use serde::Serialize;

use crate::history::{Op, Outcome};
use crate::nemesis::Event;

/// A fault from its start to its heal.
#[derive(Clone, Debug, Serialize)]
pub struct Window {
    pub fault: String,
    pub nodes: Vec<u64>,
    pub start_s: f64,
    pub end_s: f64,
    /// Operations invoked inside the window.
    pub ops: usize,
    pub ok: usize,
    /// `ok / ops`.
    pub availability: f64,
    pub ok_per_s: f64,
}

/// Pairs `start` and `end` events into windows (a fault still open ends at `end_s`).
pub fn windows(events: &[Event], ops: &[Op], run_end_s: f64) -> Vec<Window> {
    let mut out = Vec::new();
    let mut open: Option<&Event> = None;
    for e in events {
        match e.event.as_str() {
            "start" => open = Some(e),
            "end" => {
                if let Some(s) = open.take() {
                    out.push((s, e.time_ns as f64 / 1e9));
                }
            }
            _ => {}
        }
    }
    if let Some(s) = open {
        out.push((s, run_end_s));
    }
    out.into_iter()
        .map(|(s, end_s)| {
            let start_s = s.time_ns as f64 / 1e9;
            // A cached read never reaches the cluster: it says nothing of availability.
            let inside: Vec<&Op> = ops
                .iter()
                .filter(|o| !matches!(o.call, crate::history::Call::CachedRead { .. }))
                .filter(|o| {
                    let t = o.invoke_ns as f64 / 1e9;
                    t >= start_s && t < end_s
                })
                .collect();
            let ok = inside.iter().filter(|o| o.outcome == Outcome::Ok).count();
            Window {
                fault: s.fault.clone(),
                nodes: s.nodes.clone(),
                start_s,
                end_s,
                ops: inside.len(),
                ok,
                availability: if inside.is_empty() {
                    0.0
                } else {
                    ok as f64 / inside.len() as f64
                },
                ok_per_s: ok as f64 / (end_s - start_s).max(1e-9),
            }
        })
        .collect()
}

/// Counts of operations by `f` and outcome.
pub fn counts(ops: &[Op]) -> BTreeMap<String, BTreeMap<String, usize>> {
    let mut m: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for o in ops {
        *m.entry(o.call.name().into())
            .or_default()
            .entry(o.outcome.as_str().into())
            .or_default() += 1;
    }
    m
}

/// p50 / p99 / max latency in ms of `ok` operations by `f`.
pub fn latencies(ops: &[Op]) -> BTreeMap<String, [f64; 3]> {
    let mut by: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for o in ops.iter().filter(|o| o.outcome == Outcome::Ok) {
        by.entry(o.call.name().into())
            .or_default()
            .push(o.complete_ns - o.invoke_ns);
    }
    by.into_iter()
        .map(|(k, mut v)| {
            v.sort_unstable();
            let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize] as f64 / 1e6;
            (k, [q(0.5), q(0.99), q(1.0)])
        })
        .collect()
}

/// A plain-text table of counts and latencies.
pub fn counts_table(ops: &[Op]) -> String {
    let c = counts(ops);
    let l = latencies(ops);
    let mut s = format!(
        "{:<6} {:>7} {:>7} {:>7}   {:>8} {:>8} {:>8}\n",
        "f", "ok", "fail", "info", "p50 ms", "p99 ms", "max ms"
    );
    for (f, m) in &c {
        let g = |k: &str| m.get(k).copied().unwrap_or(0);
        let [p50, p99, max] = l.get(f).copied().unwrap_or([0.0; 3]);
        let _ = writeln!(
            s,
            "{f:<6} {:>7} {:>7} {:>7}   {p50:>8.2} {p99:>8.2} {max:>8.1}",
            g("ok"),
            g("fail"),
            g("info")
        );
    }
    s
}

/// Loads DejaVu Sans from Debian's `fonts-dejavu-core` for the plot's text; without it the
/// plot has no text.
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

fn fault_color(fault: &str) -> RGBColor {
    if fault.starts_with("kill") {
        RGBColor(255, 200, 200)
    } else if fault.starts_with("pause") {
        RGBColor(200, 210, 255)
    } else if fault.starts_with("power-loss") {
        RGBColor(220, 200, 255)
    } else {
        RGBColor(255, 235, 170)
    }
}

/// Draws the timeline: ms latency (log scale) against seconds, one colour per outcome, fault
/// windows shaded. Returns whether text could be drawn.
pub fn plot(path: &Path, ops: &[Op], windows: &[Window], title: &str) -> anyhow::Result<bool> {
    let with_text = font();
    let root = BitMapBackend::new(path, (1400, 700)).into_drawing_area();
    root.fill(&WHITE)?;
    let end_s = ops
        .iter()
        .map(|o| o.complete_ns as f64 / 1e9)
        .fold(1.0f64, f64::max);
    let max_ms = ops
        .iter()
        .map(|o| (o.complete_ns - o.invoke_ns) as f64 / 1e6)
        .fold(10.0f64, f64::max)
        * 1.5;
    let mut builder = ChartBuilder::on(&root);
    builder.margin(15);
    if with_text {
        builder
            .caption(title, ("sans-serif", 20))
            .x_label_area_size(40)
            .y_label_area_size(60);
    }
    let mut chart = builder.build_cartesian_2d(0f64..end_s, (0.05f64..max_ms).log_scale())?;
    if with_text {
        chart
            .configure_mesh()
            .x_desc("time since start (s)")
            .y_desc("latency (ms, log)")
            .light_line_style(WHITE.mix(0.0))
            .draw()?;
    }
    for w in windows {
        let color = fault_color(&w.fault);
        chart.draw_series(std::iter::once(Rectangle::new(
            [(w.start_s, 0.05), (w.end_s, max_ms)],
            color.filled(),
        )))?;
        if with_text {
            chart.draw_series(std::iter::once(Text::new(
                w.fault.clone(),
                (w.start_s, max_ms / 1.3),
                ("sans-serif", 13).into_font(),
            )))?;
        }
    }
    let styles = [
        (Outcome::Ok, "ok", RGBColor(30, 140, 60)),
        (Outcome::Fail, "fail", RGBColor(200, 30, 30)),
        (Outcome::Info, "info", RGBColor(240, 140, 0)),
    ];
    for (outcome, name, color) in styles {
        let pts: Vec<(f64, f64)> = ops
            .iter()
            .filter(|o| o.outcome == outcome)
            .map(|o| {
                (
                    o.invoke_ns as f64 / 1e9,
                    ((o.complete_ns - o.invoke_ns) as f64 / 1e6).max(0.06),
                )
            })
            .collect();
        let series = chart.draw_series(
            pts.into_iter()
                .map(move |p| Circle::new(p, 2, color.mix(0.6).filled())),
        )?;
        if with_text {
            series
                .label(name)
                .legend(move |(x, y)| Circle::new((x, y), 4, color.filled()));
        }
    }
    if with_text {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()?;
    Ok(with_text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Call;

    fn op(id: u64, t: u64, outcome: Outcome) -> Op {
        Op {
            id,
            process: 0,
            node: 1,
            key: "r0".into(),
            call: Call::Read { value: None },
            invoke_ns: t * 1_000_000_000,
            complete_ns: t * 1_000_000_000 + 2_000_000,
            outcome,
            error: None,
        }
    }

    fn ev(t: u64, event: &str, fault: &str) -> Event {
        Event {
            time_ns: t * 1_000_000_000,
            wall: String::new(),
            event: event.into(),
            fault: fault.into(),
            nodes: vec![1],
            detail: String::new(),
        }
    }

    #[test]
    fn windows_measure_availability() {
        let ops = vec![
            op(0, 1, Outcome::Ok),
            op(1, 3, Outcome::Ok),
            op(2, 4, Outcome::Fail),
            op(3, 6, Outcome::Ok),
        ];
        let events = vec![
            ev(2, "start", "kill"),
            ev(5, "end", "kill"),
            ev(5, "start", "pause"),
        ];
        let w = windows(&events, &ops, 8.0);
        assert_eq!(w.len(), 2);
        assert_eq!((w[0].ops, w[0].ok), (2, 1));
        assert!((w[0].availability - 0.5).abs() < 1e-9);
        assert_eq!(
            (w[1].fault.as_str(), w[1].end_s, w[1].ok),
            ("pause", 8.0, 1)
        );
        let t = counts_table(&ops);
        assert!(t.contains("read") && t.contains("      3"), "{t}");
    }

    #[test]
    fn plots_a_png() {
        let ops: Vec<Op> = (0..50)
            .map(|i| {
                op(
                    i,
                    i / 5,
                    if i % 7 == 0 {
                        Outcome::Info
                    } else {
                        Outcome::Ok
                    },
                )
            })
            .collect();
        let w = windows(
            &[ev(2, "start", "bridge"), ev(4, "end", "bridge")],
            &ops,
            10.0,
        );
        let path = std::env::temp_dir().join(format!("jepsen-plot-{}.png", std::process::id()));
        plot(&path, &ops, &w, "test").unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "not a PNG");
        std::fs::remove_file(path).unwrap();
    }
}
