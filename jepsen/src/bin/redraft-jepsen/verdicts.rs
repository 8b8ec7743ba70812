//! Phases 4 and 5 of a run: every checker on the whole history, the run's folder (history,
//! nemesis log, summary, timeline) and the printed report whose last line is the verdict.

use std::collections::BTreeSet;
use std::time::Instant;

use anyhow::Result;
use jepsen::checker::{self, Verdict};
use jepsen::history::{self, Call};
use jepsen::nemesis::Family;
use jepsen::report;
use jepsen::workload;
use serde::Serialize;

use crate::cli::Cli;
use crate::phases::{AfterHeal, Workload};
use crate::setup::Setup;

#[derive(Serialize)]
struct Summary<'a> {
    seed: u64,
    command: Vec<String>,
    started: String,
    options: &'a Cli,
    netns: bool,
    nemeses: Vec<Family>,
    cas: bool,
    duration_s: f64,
    ops: usize,
    counts: std::collections::BTreeMap<String, std::collections::BTreeMap<String, usize>>,
    latency_ms_p50_p99_max: std::collections::BTreeMap<String, [f64; 3]>,
    unexpected_replies: u64,
    crashes: usize,
    windows: Vec<report::Window>,
    linearizable: Option<checker::linearizable::LinearizabilityReport>,
    set: Option<checker::set::SetReport>,
    durable: Option<checker::durability::DurabilityReport>,
    watch: Option<checker::watch::WatchReport>,
    cache: Option<checker::cache::CacheReport>,
    liveness: Option<String>,
    /// `(node, rate)` of every start of a node whose clocks were faulted (`--clock-*`).
    clock_starts: Vec<(u64, f64)>,
    verdict: Verdict,
}

/// The checkers' reports and the run's verdict.
pub(crate) struct Checks {
    pub(crate) ops: Vec<history::Op>,
    pub(crate) lin: Option<checker::linearizable::LinearizabilityReport>,
    pub(crate) set_report: Option<checker::set::SetReport>,
    pub(crate) durable: Option<checker::durability::DurabilityReport>,
    pub(crate) watch_report: Option<checker::watch::WatchReport>,
    pub(crate) cache_report: Option<checker::cache::CacheReport>,
    pub(crate) check_s: f64,
    pub(crate) verdict: Verdict,
}

/// Phase 4: every checker that applies, on the whole history.
pub(crate) fn check(cli: &Cli, setup: &Setup, workload: &Workload, after: &AfterHeal) -> Checks {
    let (register, set) = (setup.register, setup.set);
    let (rec, finals, watch_logs) = (&workload.rec, &after.finals, &after.watch_logs);
    // Checks.
    let ops = rec.snapshot();
    let t = Instant::now();
    let lin = register.then(|| checker::linearizable::check(&ops, cli.check_budget));
    let set_report = set.then(|| checker::set::check(&ops, finals.as_ref().map(|f| &f.set)));
    let durable =
        register.then(|| checker::durability::check(&ops, finals.as_ref().map(|f| &f.registers)));
    let watch_report = watch_logs
        .as_ref()
        .map(|(logs, rev)| checker::watch::check(&ops, logs.as_slice(), *rev));
    let cache_report =
        (setup.cache_readers_n > 0).then(|| checker::cache::check(&ops, after.cache.clone()));
    let check_s = t.elapsed().as_secs_f64();
    let mut verdict = Verdict::True;
    for v in [
        lin.as_ref().map(|r| r.verdict),
        set_report.as_ref().map(|r| r.verdict),
        durable.as_ref().map(|r| r.verdict),
        watch_report.as_ref().map(|r| r.verdict),
        cache_report.as_ref().map(|r| r.verdict),
    ]
    .into_iter()
    .flatten()
    {
        verdict = verdict.and(v);
    }

    Checks {
        ops,
        lin,
        set_report,
        durable,
        watch_report,
        cache_report,
        check_s,
        verdict,
    }
}

/// Phase 5: the run's folder (history, nemesis log, summary, timeline) and the printed report.
pub(crate) fn report(
    cli: &Cli,
    setup: &Setup,
    workload: &Workload,
    after: &AfterHeal,
    checks: &Checks,
) -> Result<()> {
    let Setup {
        seed,
        ref started,
        ref run_dir,
        ref families,
        netns,
        ref wcfg,
        ..
    } = *setup;
    let Workload {
        ref log,
        ref unexpected,
        workload_end_s,
        ..
    } = *workload;
    let AfterHeal {
        ref liveness,
        crashes,
        ..
    } = *after;
    let Checks {
        ref ops,
        ref lin,
        ref set_report,
        ref durable,
        ref watch_report,
        ref cache_report,
        check_s,
        verdict,
    } = *checks;
    // Output.
    let events = log.events();
    history::write_jsonl(&run_dir.join("history.jsonl"), ops)?;
    {
        use std::io::Write as _;
        let mut f = std::io::BufWriter::new(std::fs::File::create(run_dir.join("nemesis.jsonl"))?);
        for e in &events {
            serde_json::to_writer(&mut f, e)?;
            f.write_all(b"\n")?;
        }
    }
    // What each watcher saw, one event per line (`watcher-<i>.jsonl`), to compare them.
    if let Some((logs, _)) = &after.watch_logs {
        use std::io::Write as _;
        for l in logs {
            let path = run_dir.join(format!("watcher-{}.jsonl", l.watcher));
            let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
            for e in &l.events {
                serde_json::to_writer(&mut f, e)?;
                f.write_all(b"\n")?;
            }
            f.flush()?;
        }
    }
    let windows = report::windows(&events, ops, workload_end_s);
    let summary = Summary {
        seed,
        command: std::env::args().collect(),
        started: started.clone(),
        options: cli,
        netns,
        nemeses: families.clone(),
        cas: wcfg.cas,
        duration_s: workload_end_s,
        ops: ops.len(),
        counts: report::counts(ops),
        latency_ms_p50_p99_max: report::latencies(ops),
        unexpected_replies: unexpected.0.load(std::sync::atomic::Ordering::Relaxed),
        crashes,
        windows: windows.clone(),
        linearizable: lin.clone(),
        set: set_report.clone(),
        durable: durable.clone(),
        watch: watch_report.clone(),
        cache: cache_report.clone(),
        liveness: liveness.clone(),
        clock_starts: setup.db.lock().unwrap().clock_starts().to_vec(),
        verdict,
    };
    std::fs::write(
        run_dir.join("summary.json"),
        serde_json::to_string_pretty(&summary)?,
    )?;
    let title = format!(
        "redraft {} nodes, {} clients, nemeses {:?}, read_mode {}, seed {seed}",
        cli.nodes, cli.clients, families, cli.read_mode
    );
    let png = run_dir.join("timeline.png");
    if let Err(e) = report::plot(&png, ops, &windows, &title) {
        println!("timeline: could not draw ({e:#})");
    }

    let mut text = String::new();
    {
        use std::fmt::Write as _;
        let _ = writeln!(
            text,
            "seed {seed}; {:.1} s of workload; {} ops; checks took {check_s:.1} s",
            workload_end_s,
            ops.len()
        );
        text += &report::counts_table(ops);
        let _ = writeln!(
            text,
            "unexpected replies: {}; nodes that crashed on their own: {crashes}",
            summary.unexpected_replies
        );
        if !summary.clock_starts.is_empty() {
            let starts: Vec<String> = summary
                .clock_starts
                .iter()
                .map(|(id, r)| format!("{id}:x{r:.3}"))
                .collect();
            let _ = writeln!(
                text,
                "clock rates, node:rate at each start in order: {}",
                starts.join(" ")
            );
        }
        let _ = writeln!(text, "fault windows (availability = ok / invoked):");
        for w in &windows {
            let _ = writeln!(
                text,
                "  {:>7.1}-{:>7.1} s  {:<15} nodes {:?}: {:>5} ops, {:>5.1}% ok, {:>6.1} ok/s",
                w.start_s,
                w.end_s,
                w.fault,
                w.nodes,
                w.ops,
                w.availability * 100.0,
                w.ok_per_s
            );
        }
    }
    std::fs::write(run_dir.join("summary.txt"), &text)?;
    print!("{text}");
    if let Some(l) = &lin {
        print_lin(l, ops);
    }
    if let Some(s) = &set_report {
        println!(
            "set: {} ({} attempted, {} acknowledged, {} indeterminate of which {} present, lost {:?}, unexpected {:?}, unaccounted keys {}){}",
            s.verdict.as_str(), s.attempted, s.acknowledged, s.indeterminate, s.indeterminate_present,
            &s.lost[..s.lost.len().min(20)], &s.unexpected[..s.unexpected.len().min(20)], s.unaccounted_keys,
            s.why_unknown.as_ref().map(|w| format!(": {w}")).unwrap_or_default()
        );
    }
    if let Some(d) = &durable {
        println!(
            "durable: {} ({} keys){}",
            d.verdict.as_str(),
            d.keys_checked,
            d.why_unknown
                .as_ref()
                .map(|w| format!(": {w}"))
                .unwrap_or_default()
        );
        for v in &d.violations {
            println!(
                "  key {} ended as {:?}; allowed {:?}",
                v.key, v.final_value, v.allowed
            );
        }
    }
    if let Some(w) = &watch_report {
        println!(
            "watch: {} ({} watchers, events seen {:?}, node moves {:?}, final revision {:?})",
            w.verdict.as_str(),
            w.watchers,
            w.events,
            w.moves,
            w.final_revision
        );
        if w.compacted.iter().any(|&c| c > 0) {
            println!(
                "  COMPACTED answers per watcher {:?}, revisions skipped after them {:?}, \
                 revisions no watcher saw {}",
                w.compacted, w.compacted_revisions, w.unseen_revisions
            );
        }
        for p in &w.problems {
            println!("  {p}");
        }
    }
    if let Some(c) = &cache_report {
        let [p50, p99, max] = c.behind_ms_p50_p99_max;
        println!(
            "cache: {} ({} cached reads, {} fills; {} served a value already overwritten: \
             behind by p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms; agreed after the heal \
             in {})",
            c.verdict.as_str(),
            c.cached_reads,
            c.fills,
            c.behind,
            c.convergence
                .as_ref()
                .and_then(|v| v.seconds)
                .map_or("never".to_string(), |s| format!("{s:.1} s"))
        );
        for p in c.problems.iter().take(20) {
            println!("  {p}");
        }
    }
    println!("output: {}", run_dir.display());
    // The last line (SEMANTICS.md §4).
    println!("linearizable: {}", verdict.as_str());
    Ok(())
}

pub(crate) fn print_lin(lin: &checker::linearizable::LinearizabilityReport, ops: &[history::Op]) {
    for k in &lin.keys {
        println!(
            "  key {:<6} {:>6} ops {:>10} steps  {}",
            k.key,
            k.ops,
            k.steps,
            k.verdict.as_str()
        );
        if let Some(w) = &k.window {
            println!(
                "  smallest non-linearizable window of key {} ({} ops):",
                k.key,
                w.len()
            );
            let ids: BTreeSet<u64> = w.iter().copied().collect();
            let t0 = ops
                .iter()
                .filter(|o| ids.contains(&o.id))
                .map(|o| o.invoke_ns)
                .min()
                .unwrap_or(0);
            for o in ops.iter().filter(|o| ids.contains(&o.id)) {
                let what = match &o.call {
                    Call::Read { value } => format!("read  -> {value:?}"),
                    Call::Write { value, with } if with.is_empty() => format!("write {value}"),
                    Call::Write { value, with } => format!("write {value} (EXEC with {with:?})"),
                    Call::Cas {
                        expected,
                        value,
                        result,
                        watch: true,
                        ..
                    } => format!("watch {expected:?} -> {value}: {result:?}"),
                    Call::Cas {
                        expected,
                        expected_rev,
                        value,
                        result,
                        ..
                    } => format!("cas   {expected:?}@{expected_rev} -> {value}: {result:?}"),
                    Call::Add { element, with } if with.is_empty() => format!("add {element}"),
                    Call::Add { element, with } => format!("add {element} (MSET with {with:?})"),
                    Call::CachedRead { value, fill_id, .. } => {
                        format!("cached -> {value:?} (filled by id {fill_id})")
                    }
                };
                println!(
                    "    id {:>7} p{:<3} n{} [{:>9.3} .. {:>9.3}] ms  {:<4} {}{}",
                    o.id,
                    if o.process == workload::FINAL_PROCESS {
                        "fin".to_string()
                    } else {
                        o.process.to_string()
                    },
                    o.node,
                    (o.invoke_ns - t0) as f64 / 1e6,
                    (o.complete_ns - t0) as f64 / 1e6,
                    o.outcome.as_str(),
                    what,
                    o.error
                        .as_ref()
                        .map(|e| format!("  ({e})"))
                        .unwrap_or_default()
                );
            }
            // Context: where each value read in the window came from.
            let read: BTreeSet<&str> = ops
                .iter()
                .filter(|o| ids.contains(&o.id))
                .filter_map(|o| match &o.call {
                    Call::Read { value: Some(v) } => Some(v.as_str()),
                    _ => None,
                })
                .collect();
            for o in ops
                .iter()
                .filter(|o| o.key == k.key && !ids.contains(&o.id))
            {
                let v = match &o.call {
                    Call::Write { value, .. } | Call::Cas { value, .. } => value.as_str(),
                    _ => continue,
                };
                if read.contains(v) {
                    println!(
                        "    (value {v} was written by id {} p{} n{}: {} [{:.3} .. {:.3}] ms)",
                        o.id,
                        o.process,
                        o.node,
                        o.outcome.as_str(),
                        o.invoke_ns as f64 / 1e6 - t0 as f64 / 1e6,
                        o.complete_ns as f64 / 1e6 - t0 as f64 / 1e6,
                    );
                }
            }
        }
    }
}
