//! Hand-made histories (SEMANTICS.md §3-§5), a random cross-check against brute force, and the
//! window shrinking.

use super::*;
use crate::history::{Call, Op, Outcome};

/// A history builder: `w(p, v, a, b)` is process p writing v during [a, b], etc.
#[derive(Default)]
struct H(Vec<Op>);

impl H {
    fn push(&mut self, p: u64, call: Call, a: u64, b: u64, outcome: Outcome) -> &mut Self {
        let id = self.0.len() as u64;
        self.0.push(Op {
            id,
            process: p,
            node: 1,
            key: "k".into(),
            call,
            invoke_ns: a,
            complete_ns: b,
            outcome,
            error: None,
        });
        self
    }
    fn w(&mut self, p: u64, v: &str, a: u64, b: u64) -> &mut Self {
        self.push(
            p,
            Call::Write {
                value: v.into(),
                with: Vec::new(),
            },
            a,
            b,
            Outcome::Ok,
        )
    }
    fn w_info(&mut self, p: u64, v: &str, a: u64, b: u64) -> &mut Self {
        self.push(
            p,
            Call::Write {
                value: v.into(),
                with: Vec::new(),
            },
            a,
            b,
            Outcome::Info,
        )
    }
    fn w_fail(&mut self, p: u64, v: &str, a: u64, b: u64) -> &mut Self {
        self.push(
            p,
            Call::Write {
                value: v.into(),
                with: Vec::new(),
            },
            a,
            b,
            Outcome::Fail,
        )
    }
    fn r(&mut self, p: u64, v: Option<&str>, a: u64, b: u64) -> &mut Self {
        let value = v.map(str::to_string);
        self.push(p, Call::Read { value }, a, b, Outcome::Ok)
    }
    fn cas(&mut self, p: u64, e: Option<&str>, v: &str, ok: bool, a: u64, b: u64) -> &mut Self {
        let call = Call::Cas {
            expected: e.map(str::to_string),
            expected_rev: 0,
            watch: false,
            value: v.into(),
            result: Some(ok),
        };
        self.push(p, call, a, b, Outcome::Ok)
    }
    fn cas_info(&mut self, p: u64, e: Option<&str>, v: &str, a: u64, b: u64) -> &mut Self {
        let call = Call::Cas {
            expected: e.map(str::to_string),
            expected_rev: 0,
            watch: false,
            value: v.into(),
            result: None,
        };
        self.push(p, call, a, b, Outcome::Info)
    }
    fn verdict(&self) -> Verdict {
        check(&self.0, 1_000_000).verdict
    }
}

#[test]
fn sequential_and_concurrent_histories_pass() {
    // write 1, read 1, write 2, read 2: one after another.
    assert_eq!(
        H::default()
            .r(1, None, 0, 5)
            .w(1, "1", 10, 20)
            .r(2, Some("1"), 30, 40)
            .w(2, "2", 50, 60)
            .r(1, Some("2"), 70, 80)
            .verdict(),
        Verdict::True
    );
    // A read concurrent with a write may see either value.
    //   w1 |----------|
    //   r   |--|  r |--|
    assert_eq!(
        H::default()
            .w(1, "1", 0, 10)
            .w(1, "2", 20, 100)
            .r(2, Some("1"), 30, 40)
            .r(3, Some("2"), 50, 60)
            .r(2, Some("2"), 70, 80)
            .verdict(),
        Verdict::True
    );
}

#[test]
fn indeterminate_writes_that_did_or_did_not_land_pass() {
    // Landed: an `info` write is observed later.
    assert_eq!(
        H::default()
            .w_info(1, "1", 0, 10)
            .r(2, Some("1"), 20, 30)
            .verdict(),
        Verdict::True
    );
    // Did not land: the value before it keeps being read.
    assert_eq!(
        H::default()
            .w(1, "1", 0, 10)
            .w_info(1, "2", 20, 30)
            .r(2, Some("1"), 40, 50)
            .r(2, Some("1"), 60, 70)
            .verdict(),
        Verdict::True
    );
    // Landed long after its completion was recorded (committed by a later leader).
    assert_eq!(
        H::default()
            .w_info(1, "1", 0, 10)
            .r(2, None, 20, 30)
            .r(2, None, 40, 50)
            .r(2, Some("1"), 60, 70)
            .verdict(),
        Verdict::True
    );
    // A failed write never happened: reading its value is not explained by it...
    assert_eq!(
        H::default()
            .w_fail(1, "1", 0, 10)
            .r(2, Some("1"), 20, 30)
            .verdict(),
        Verdict::False
    );
    // ...and an indeterminate one cannot take effect before its invocation.
    assert_eq!(
        H::default()
            .r(2, Some("1"), 0, 10)
            .w_info(1, "1", 20, 30)
            .verdict(),
        Verdict::False
    );
    // An info CAS may or may not have applied.
    assert_eq!(
        H::default()
            .w(1, "1", 0, 10)
            .cas_info(2, Some("1"), "2", 20, 30)
            .r(3, Some("1"), 40, 50)
            .verdict(),
        Verdict::True
    );
    assert_eq!(
        H::default()
            .w(1, "1", 0, 10)
            .cas_info(2, Some("1"), "2", 20, 30)
            .r(3, Some("2"), 40, 50)
            .verdict(),
        Verdict::True
    );
}

#[test]
fn stale_read_after_a_completed_write_fails() {
    //   w1 |--|  w2 |--|  r=1 |--|
    let mut h = H::default();
    h.w(1, "1", 0, 10).w(1, "2", 20, 30).r(2, Some("1"), 40, 50);
    assert_eq!(h.verdict(), Verdict::False);
}

#[test]
fn lost_acknowledged_write_fails() {
    // The write was acknowledged, then the key reads as absent, or as the value before it.
    assert_eq!(
        H::default().w(1, "1", 0, 10).r(2, None, 20, 30).verdict(),
        Verdict::False
    );
    assert_eq!(
        H::default()
            .w(1, "1", 0, 10)
            .r(2, Some("1"), 15, 18)
            .w(1, "2", 20, 30)
            .r(2, Some("2"), 35, 38)
            .r(3, Some("1"), 40, 50)
            .verdict(),
        Verdict::False
    );
}

#[test]
fn cas_against_the_wrong_value_fails() {
    // Succeeded although the register held 1, not 2.
    assert_eq!(
        H::default()
            .w(1, "1", 0, 10)
            .cas(2, Some("2"), "3", true, 20, 30)
            .verdict(),
        Verdict::False
    );
    // Failed although the register held exactly the expected value, alone.
    assert_eq!(
        H::default()
            .w(1, "1", 0, 10)
            .cas(2, Some("1"), "3", false, 20, 30)
            .verdict(),
        Verdict::False
    );
    // "Must not exist" succeeded on an existing key.
    assert_eq!(
        H::default()
            .w(1, "1", 0, 10)
            .cas(2, None, "3", true, 20, 30)
            .verdict(),
        Verdict::False
    );
    // Two CASes from the same expected value cannot both succeed.
    assert_eq!(
        H::default()
            .w(1, "1", 0, 10)
            .cas(2, Some("1"), "2", true, 20, 40)
            .cas(3, Some("1"), "3", true, 20, 40)
            .verdict(),
        Verdict::False
    );
    // The legal version of the same: one succeeds, the other fails, the read agrees.
    assert_eq!(
        H::default()
            .w(1, "1", 0, 10)
            .cas(2, Some("1"), "2", true, 20, 40)
            .cas(3, Some("1"), "3", false, 20, 40)
            .r(1, Some("2"), 50, 60)
            .verdict(),
        Verdict::True
    );
}

#[test]
fn two_readers_observing_two_writes_in_opposite_orders_fails() {
    //   w1 |------------------------------|
    //   w2 |------------------------------|
    //   A     r=1 |--|      r=2 |--|
    //   B     r=2 |--|      r=1 |--|
    let mut h = H::default();
    h.w(1, "1", 0, 100)
        .w(2, "2", 0, 100)
        .r(3, Some("1"), 10, 20)
        .r(3, Some("2"), 30, 40)
        .r(4, Some("2"), 10, 20)
        .r(4, Some("1"), 30, 40);
    assert_eq!(h.verdict(), Verdict::False);
    // Each reader alone is fine.
    let mut a = H::default();
    a.w(1, "1", 0, 100)
        .w(2, "2", 0, 100)
        .r(3, Some("1"), 10, 20)
        .r(3, Some("2"), 30, 40);
    assert_eq!(a.verdict(), Verdict::True);
}

#[test]
fn keys_are_checked_independently() {
    let mut h = H::default();
    h.w(1, "1", 0, 10).r(2, Some("1"), 20, 30);
    let mut other = H::default();
    other.w(1, "9", 0, 10).r(2, None, 20, 30);
    for mut op in other.0 {
        op.id += 100;
        op.key = "other".into();
        h.0.push(op);
    }
    let report = check(&h.0, 1_000_000);
    assert_eq!(report.verdict, Verdict::False);
    let by: HashMap<_, _> = report
        .keys
        .iter()
        .map(|k| (k.key.as_str(), k.verdict))
        .collect();
    assert_eq!(by["k"], Verdict::True);
    assert_eq!(by["other"], Verdict::False);
}

#[test]
fn budget_exhaustion_answers_unknown() {
    // Many concurrent info writes and reads: more than 5 steps of search.
    let mut h = H::default();
    for i in 0..20u64 {
        h.w_info(i, &i.to_string(), 0, 10);
    }
    for i in 0..20u64 {
        h.r(100 + i, Some(&((i * 7) % 20).to_string()), 20 + i, 21 + i);
    }
    assert_eq!(check(&h.0, 5).verdict, Verdict::Unknown);
}

#[test]
fn the_failing_window_is_small_and_names_the_anomaly() {
    // 200 healthy sequential operations, then a stale read, then 200 more.
    let mut h = H::default();
    let mut t = 0;
    for i in 0..100 {
        h.w(1, &format!("a{i}"), t, t + 5)
            .r(2, Some(&format!("a{i}")), t + 6, t + 9);
        t += 10;
    }
    h.w(1, "x", t, t + 5)
        .w(1, "y", t + 6, t + 9)
        .r(3, Some("x"), t + 10, t + 12);
    let bad_read = h.0.len() as u64 - 1;
    t += 20;
    for i in 0..100 {
        h.w(1, &format!("b{i}"), t, t + 5)
            .r(2, Some(&format!("b{i}")), t + 6, t + 9);
        t += 10;
    }
    let report = check(&h.0, 1_000_000);
    assert_eq!(report.verdict, Verdict::False);
    let window = report.keys[0].window.clone().expect("a window");
    assert!(window.len() <= 3, "window {window:?}");
    assert!(
        window.contains(&bad_read),
        "window {window:?} misses {bad_read}"
    );
}

/// Brute force for tiny histories: tries every order that respects real time, with each info
/// op either placed or left out.
fn brute_force(ops: &[KOp]) -> bool {
    fn go(ops: &[KOp], done: &mut Vec<bool>, state: State, cands: &mut Vec<State>) -> bool {
        // Finished when every ok op is placed (info ops may be left out).
        if ops
            .iter()
            .zip(done.iter())
            .all(|(o, &d)| d || o.ret == u64::MAX)
        {
            return true;
        }
        for i in 0..ops.len() {
            if done[i] {
                continue;
            }
            // i may go next only if no unplaced op finished before i was invoked.
            let blocked = ops
                .iter()
                .enumerate()
                .any(|(j, o)| j != i && !done[j] && o.ret < ops[i].invoke);
            if blocked {
                continue;
            }
            step(state, ops[i].call, cands);
            for s2 in cands.clone() {
                done[i] = true;
                if go(ops, done, s2, &mut Vec::new()) {
                    done[i] = false;
                    return true;
                }
                done[i] = false;
            }
        }
        false
    }
    go(ops, &mut vec![false; ops.len()], NIL, &mut Vec::new())
}

/// A random register history of `n` ops from up to 3 processes, values 1..=3, some info; when
/// `honest`, results come from a real sequential execution at random points in each interval.
fn random_history(rng: &mut rand::rngs::StdRng, n: usize, honest: bool) -> Vec<KOp> {
    let mut ops = Vec::new();
    let mut free_at = [0u64; 3];
    for src in 0..n {
        let p = rng.gen_range(0..3);
        let invoke = free_at[p] + rng.gen_range(0..5);
        let len = rng.gen_range(1..10);
        free_at[p] = invoke + len + 1;
        let v = rng.gen_range(1..=3);
        let call = match rng.gen_range(0..3) {
            0 => KCall::Read(0),
            1 => KCall::Write(v),
            _ => KCall::Cas {
                expected: rng.gen_range(0..=3),
                new: v,
                result: Some(false),
            },
        };
        let info = !matches!(call, KCall::Read(_)) && rng.gen_bool(0.2);
        ops.push((
            KOp {
                call,
                invoke,
                ret: invoke + len,
                src,
            },
            invoke + rng.gen_range(0..=len),
            info,
        ));
    }
    // Execute at the linearization points.
    let mut order: Vec<usize> = (0..ops.len()).collect();
    order.sort_by_key(|&i| ops[i].1);
    let mut state = NIL;
    for i in order {
        let (op, _, info) = &mut ops[i];
        let applies = !*info || rng.gen_bool(0.5);
        if !applies {
            continue;
        }
        match &mut op.call {
            KCall::Read(v) => *v = if honest { state } else { rng.gen_range(0..=3) },
            KCall::Write(v) => state = *v,
            KCall::Cas {
                expected,
                new,
                result,
            } => {
                let ok = state == *expected;
                *result = Some(if honest { ok } else { rng.gen_bool(0.5) });
                if ok {
                    state = *new;
                }
            }
        }
    }
    ops.into_iter()
        .map(|(mut op, _, info)| {
            if info {
                op.ret = u64::MAX;
                if let KCall::Cas { result, .. } = &mut op.call {
                    *result = None;
                }
            }
            op
        })
        .collect()
}

#[test]
fn agrees_with_brute_force_on_random_small_histories() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let (mut yes, mut no) = (0, 0);
    for round in 0..3000 {
        let honest = round % 2 == 0;
        let n = rng.gen_range(1..=7);
        let ops = random_history(&mut rng, n, honest);
        let want = brute_force(&ops);
        let got = search(&ops, NIL, 10_000_000).verdict;
        assert_eq!(got == Verdict::True, want, "round {round}: {ops:?}");
        if honest {
            assert!(want, "an honest history must be linearizable: {ops:?}");
        }
        if want {
            yes += 1;
        } else {
            no += 1;
        }
    }
    assert!(yes > 500 && no > 500, "both kinds exercised: {yes} / {no}");
}

#[test]
fn honest_long_histories_pass() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for _ in 0..20 {
        let ops = random_history(&mut rng, 400, true);
        assert_eq!(search(&ops, NIL, 10_000_000).verdict, Verdict::True);
    }
}

/// SEMANTICS.md §5 soundness: cutting a linearizable history at any time, and taking any window
/// of it from an unknown state, leaves it linearizable, so a failing window is a real failure.
#[test]
fn cuts_and_windows_of_linearizable_histories_stay_linearizable() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    for _ in 0..300 {
        let n = rng.gen_range(1..=40);
        let ops = random_history(&mut rng, n, true);
        let end = ops.iter().map(|o| o.invoke).max().unwrap_or(0) + 10;
        let t = rng.gen_range(0..=end);
        let cut = cut_at(&ops, t);
        assert_eq!(
            search(&cut, NIL, 10_000_000).verdict,
            Verdict::True,
            "cut at {t}: {ops:?}"
        );
        let s = rng.gen_range(0..=t);
        let w = window_from(&cut, s);
        assert_eq!(
            search(&w, ANY, 10_000_000).verdict,
            Verdict::True,
            "window {s}..{t}: {ops:?}"
        );
    }
}
