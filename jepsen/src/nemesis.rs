//! Faults on a schedule: quiet, fault, heal, repeated (SEMANTICS.md §6 for what a failure to
//! inject means). Every fault and heal is logged with the run clock and wall time.
//!
//! The choice of fault ([`plan`]) and the pairs a partition cuts ([`Fault::cut_pairs`]) are
//! pure functions of a seeded rng, unit-tested here; [`run`] applies them to the [`Db`].
//!
//! Families: `kill` (kill -9 a random node or the leader; heal restarts it), `pause` (SIGSTOP a
//! random node or the leader; heal sends SIGCONT), `partition` (isolate the leader, a random
//! majority/minority split, or a bridge: one node sees both sides that cannot see each other).
//! `transfer` (`RAFT.TRANSFER` from the leader to a random other node; nothing to heal),
//! `membership` (`RAFT.REMOVENODE` of a random node or the leader, which keeps running; heal
//! adds it back with `RAFT.ADDNODE`, as a learner that catches up and then a voter),
//! `power-loss` (kill -9 of one node, the leader or every node, then `crash` of their lossyfs
//! data dirs, so all they had not fsynced is lost; heal restarts them). These two
//! go through any node's RESP port like an operator's commands; a command the cluster refuses
//! (no leader at that moment, a change already in flight) is logged as a `note`, not a fault.
//! `snapshot` (`RAFT.SNAPSHOT` on the leader or a random node, again and again for the fault's
//! length; nothing to heal): with a large keyspace (`--preload-keys`) each snapshot encode
//! holds the node's state machine while the clients read from every node, which is how a
//! leader whose apply lags its commit is exercised.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::Result;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::db::{CrashMode, Db};
use crate::history::Recorder;
use crate::resp::{Conn, Reply};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    Kill,
    Pause,
    Partition,
    Transfer,
    Membership,
    PowerLoss,
    Snapshot,
}

/// One fault, with the nodes it hits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "kebab-case")]
pub enum Fault {
    Kill {
        node: u64,
        leader: bool,
    },
    Pause {
        node: u64,
        leader: bool,
    },
    /// The leader (or, with none known, a random node) alone on one side.
    IsolateLeader {
        node: u64,
    },
    /// A random minority cut from the majority.
    Split {
        minority: Vec<u64>,
        majority: Vec<u64>,
    },
    /// `bridge` talks to both sides; `left` and `right` cannot talk to each other.
    Bridge {
        bridge: u64,
        left: Vec<u64>,
        right: Vec<u64>,
    },
    /// `RAFT.TRANSFER to` while `from` leads.
    Transfer {
        from: u64,
        to: u64,
    },
    /// `RAFT.REMOVENODE node`; healed by `RAFT.ADDNODE`.
    Remove {
        node: u64,
        leader: bool,
    },
    /// kill -9 of `nodes` and a crash of their disks (`crash`: all unsynced data lost, the
    /// last unsynced write of each file half kept, or each unsynced block kept or lost at
    /// random); healed by restarting them.
    PowerLoss {
        nodes: Vec<u64>,
        leader: bool,
        crash: CrashMode,
    },
    /// `RAFT.SNAPSHOT` on `node`, repeated for the fault's length.
    Snapshot {
        node: u64,
        leader: bool,
    },
}

impl Fault {
    pub fn name(&self) -> &'static str {
        match self {
            Fault::Kill { leader: true, .. } => "kill-leader",
            Fault::Kill { .. } => "kill",
            Fault::Pause { leader: true, .. } => "pause-leader",
            Fault::Pause { .. } => "pause",
            Fault::IsolateLeader { .. } => "isolate-leader",
            Fault::Split { .. } => "split",
            Fault::Bridge { .. } => "bridge",
            Fault::Transfer { .. } => "transfer",
            Fault::Remove { leader: true, .. } => "remove-leader",
            Fault::Remove { .. } => "remove",
            Fault::PowerLoss { nodes, .. } if nodes.len() > 1 => "power-loss-all",
            Fault::PowerLoss { leader: true, .. } => "power-loss-leader",
            Fault::PowerLoss { .. } => "power-loss",
            Fault::Snapshot { leader: true, .. } => "snapshot-leader",
            Fault::Snapshot { .. } => "snapshot",
        }
    }

    pub fn family(&self) -> Family {
        match self {
            Fault::Kill { .. } => Family::Kill,
            Fault::Pause { .. } => Family::Pause,
            Fault::Transfer { .. } => Family::Transfer,
            Fault::Remove { .. } => Family::Membership,
            Fault::PowerLoss { .. } => Family::PowerLoss,
            Fault::Snapshot { .. } => Family::Snapshot,
            _ => Family::Partition,
        }
    }

    /// The nodes directly hit.
    pub fn nodes(&self) -> Vec<u64> {
        match self {
            Fault::Kill { node, .. } | Fault::Pause { node, .. } => vec![*node],
            Fault::Transfer { from, to } => vec![*from, *to],
            Fault::Remove { node, .. } | Fault::Snapshot { node, .. } => vec![*node],
            Fault::PowerLoss { nodes, .. } => nodes.clone(),
            Fault::IsolateLeader { node } => vec![*node],
            Fault::Split { minority, .. } => minority.clone(),
            Fault::Bridge { bridge, .. } => vec![*bridge],
        }
    }

    /// The node pairs a partition cuts (empty for other faults).
    pub fn cut_pairs(&self, all: &[u64]) -> Vec<(u64, u64)> {
        let across = |a: &[u64], b: &[u64]| {
            let mut v: Vec<(u64, u64)> = a
                .iter()
                .flat_map(|&x| b.iter().map(move |&y| (x.min(y), x.max(y))))
                .collect();
            v.sort_unstable();
            v
        };
        match self {
            Fault::IsolateLeader { node } => {
                let rest: Vec<u64> = all.iter().copied().filter(|n| n != node).collect();
                across(&[*node], &rest)
            }
            Fault::Split { minority, majority } => across(minority, majority),
            Fault::Bridge { left, right, .. } => across(left, right),
            _ => Vec::new(),
        }
    }
}

/// Chooses the next fault from `families` for nodes `all`, given the leader if known.
pub fn plan(rng: &mut StdRng, families: &[Family], all: &[u64], leader: Option<u64>) -> Fault {
    let family = *families.choose(rng).expect("at least one family");
    let random = *all.choose(rng).expect("nodes");
    let (target, is_leader) = match leader {
        Some(l) if rng.gen_bool(0.5) => (l, true),
        _ => (random, false),
    };
    match family {
        Family::Kill => Fault::Kill {
            node: target,
            leader: is_leader,
        },
        Family::Pause => Fault::Pause {
            node: target,
            leader: is_leader,
        },
        Family::Transfer => {
            let from = leader.unwrap_or(random);
            let others: Vec<u64> = all.iter().copied().filter(|n| *n != from).collect();
            Fault::Transfer {
                from,
                to: *others.choose(rng).unwrap_or(&from),
            }
        }
        Family::Membership => Fault::Remove {
            node: target,
            leader: is_leader,
        },
        // A third of the power cuts take every node at once (a rack losing power): only
        // what a majority fsynced before acknowledging can survive that.
        Family::PowerLoss => {
            let all_nodes = rng.gen_bool(1.0 / 3.0);
            Fault::PowerLoss {
                nodes: if all_nodes {
                    all.to_vec()
                } else {
                    vec![target]
                },
                leader: is_leader && !all_nodes,
                // A third each: clean, torn, reordered (later writes kept, earlier lost).
                crash: match rng.gen_range(0..3) {
                    0 => CrashMode::Torn,
                    1 => CrashMode::Reordered { seed: rng.gen() },
                    _ => CrashMode::Clean,
                },
            }
        }
        Family::Snapshot => Fault::Snapshot {
            node: target,
            leader: is_leader,
        },
        Family::Partition => match rng.gen_range(0..3) {
            0 => Fault::IsolateLeader {
                node: leader.unwrap_or(random),
            },
            1 => {
                let mut shuffled = all.to_vec();
                shuffled.shuffle(rng);
                let k = (all.len() - 1) / 2; // the largest minority
                let k = rng.gen_range(1..=k.max(1));
                let (minority, majority) = shuffled.split_at(k);
                let (mut minority, mut majority) = (minority.to_vec(), majority.to_vec());
                minority.sort_unstable();
                majority.sort_unstable();
                Fault::Split { minority, majority }
            }
            _ => {
                let mut shuffled = all.to_vec();
                shuffled.shuffle(rng);
                let bridge = shuffled[0];
                let rest = &shuffled[1..];
                let (l, r) = rest.split_at(rest.len() / 2);
                let (mut left, mut right) = (l.to_vec(), r.to_vec());
                left.sort_unstable();
                right.sort_unstable();
                Fault::Bridge {
                    bridge,
                    left,
                    right,
                }
            }
        },
    }
}

/// One line of `nemesis.jsonl`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Event {
    /// Nanoseconds since the run started (the history's clock).
    pub time_ns: u64,
    /// Wall time, UTC, RFC 3339.
    pub wall: String,
    /// `start`, `end` (healed), `crashed` (a node exited on its own), `restart`, `note`.
    pub event: String,
    /// The fault's name (`kill-leader`, `bridge`, ...) or empty.
    pub fault: String,
    pub nodes: Vec<u64>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// Formats a `SystemTime` as RFC 3339 UTC with milliseconds.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86400, secs % 86400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + (month <= 2) as i64;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// The nemesis log, shared with main (which prints and saves it).
#[derive(Clone, Default)]
pub struct Log(pub Arc<Mutex<Vec<Event>>>);

impl Log {
    pub fn push(&self, rec: &Recorder, event: &str, fault: &str, nodes: Vec<u64>, detail: String) {
        let e = Event {
            time_ns: rec.now(),
            wall: rfc3339(SystemTime::now()),
            event: event.into(),
            fault: fault.into(),
            nodes,
            detail,
        };
        eprintln!(
            "[{:8.3}s] nemesis {} {} {:?} {}",
            e.time_ns as f64 / 1e9,
            e.event,
            e.fault,
            e.nodes,
            e.detail
        );
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(e);
    }

    pub fn events(&self) -> Vec<Event> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The leader as the nodes see it: the node that says it leads with the highest term.
pub async fn find_leader(addrs: &[(u64, String)], timeout: Duration) -> Option<u64> {
    let mut best: Option<(u64, u64)> = None; // (term, id)
    for (id, addr) in addrs {
        let Ok(mut c) = Conn::connect(addr, timeout).await else {
            continue;
        };
        let Ok(Reply::Bulk(Some(text))) = c.call(&[b"INFO", b"raft"], timeout).await else {
            continue;
        };
        let text = String::from_utf8_lossy(&text);
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_string()))
        };
        let leads = field("raft_state:").is_some_and(|s| s.eq_ignore_ascii_case("leader"));
        let term = field("raft_term:")
            .and_then(|t| t.parse::<u64>().ok())
            .unwrap_or(0);
        if leads && best.is_none_or(|(t, _)| term > t) {
            best = Some((term, *id));
        }
    }
    best.map(|(_, id)| id)
}

/// Applies `fault`; returns what a power cut dropped (lossyfs's report per node), if any.
pub fn apply(db: &Mutex<Db>, fault: &Fault) -> Result<Option<String>> {
    let mut db = db.lock().unwrap_or_else(|p| p.into_inner());
    if let Fault::PowerLoss { nodes, crash, .. } = fault {
        let mut dropped = Vec::new();
        for n in nodes {
            dropped.push(format!("node {n}: {}", db.power_cut(*n, *crash)?));
        }
        return Ok(Some(dropped.join("; ")));
    }
    match fault {
        Fault::Kill { node, .. } => db.kill(*node),
        Fault::Pause { node, .. } => {
            // A node that crashed a moment ago is already as unavailable as a paused one.
            if !db.running().contains(node) {
                return Ok(None);
            }
            db.pause(*node)
        }
        // Operator commands: `apply_admin`, `snapshots`.
        Fault::Transfer { .. }
        | Fault::Remove { .. }
        | Fault::PowerLoss { .. }
        | Fault::Snapshot { .. } => Ok(()),
        _ => {
            let all: Vec<u64> = db.nodes.iter().map(|n| n.id).collect();
            db.partition(&fault.cut_pairs(&all))
        }
    }
    .map(|()| None)
}

/// Sends an operator command to the nodes in turn (skipping `avoid`) until one answers with
/// anything but an error; returns that reply or the last error.
async fn admin(
    addrs: &[(u64, String)],
    avoid: u64,
    args: &[&[u8]],
    timeout: Duration,
) -> Result<Reply, String> {
    let mut last = String::from("no node to ask");
    for (id, addr) in addrs.iter().filter(|(id, _)| *id != avoid) {
        match Conn::connect(addr, Duration::from_millis(500)).await {
            Ok(mut c) => match c.call(args, timeout).await {
                Ok(Reply::Error(e)) => last = format!("node {id}: {e}"),
                Ok(r) => return Ok(r),
                Err(e) => last = format!("node {id}: {e}"),
            },
            Err(e) => last = format!("node {id}: {e}"),
        }
    }
    Err(last)
}

/// Applies an operator fault (`Transfer`, `Remove`); `Err` says why the cluster refused it.
pub async fn apply_admin(addrs: &[(u64, String)], fault: &Fault) -> Result<(), String> {
    let timeout = Duration::from_secs(10);
    match fault {
        Fault::Transfer { from, to } => {
            let to = to.to_string();
            admin(addrs, 0, &[b"RAFT.TRANSFER", to.as_bytes()], timeout)
                .await
                .map(|_| ())
                .map_err(|e| format!("transfer {from} -> {to}: {e}"))
        }
        Fault::Remove { node, .. } => {
            let id = node.to_string();
            admin(addrs, *node, &[b"RAFT.REMOVENODE", id.as_bytes()], timeout)
                .await
                .map(|_| ())
        }
        _ => Ok(()),
    }
}

/// Sends `RAFT.SNAPSHOT` to `addr` again and again for `d`; returns how many succeeded and the
/// last error, if any.
async fn snapshots(addr: &str, d: Duration) -> (u64, Option<String>) {
    let end = tokio::time::Instant::now() + d;
    let (mut done, mut last) = (0, None);
    while tokio::time::Instant::now() < end {
        let left = end - tokio::time::Instant::now();
        match Conn::connect(addr, Duration::from_millis(500)).await {
            Ok(mut c) => match c
                .call(&[b"RAFT.SNAPSHOT"], left.max(Duration::from_secs(1)))
                .await
            {
                Ok(Reply::Error(e)) => last = Some(e),
                Ok(_) => done += 1,
                Err(e) => last = Some(e.to_string()),
            },
            Err(e) => last = Some(e.to_string()),
        }
        if last.is_some() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    (done, last)
}

/// Undoes an operator fault: adds a removed node back (retried until `timeout`).
pub async fn heal_admin(db: &Mutex<Db>, fault: &Fault, timeout: Duration) -> Result<(), String> {
    let Fault::Remove { node, .. } = fault else {
        return Ok(());
    };
    let (addrs, info) = {
        let d = db.lock().unwrap_or_else(|p| p.into_inner());
        let info = d.nodes.iter().find(|n| n.id == *node).cloned();
        (d.client_addrs(), info)
    };
    let info = info.ok_or_else(|| format!("no node {node}"))?;
    let id = node.to_string();
    let args: [&[u8]; 4] = [
        b"RAFT.ADDNODE",
        id.as_bytes(),
        info.raft_addr.as_bytes(),
        info.redis_addr.as_bytes(),
    ];
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match admin(&addrs, *node, &args, Duration::from_secs(60)).await {
            Ok(_) => return Ok(()),
            Err(e) if tokio::time::Instant::now() >= deadline => {
                return Err(format!("re-adding node {node}: {e}"))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// Heals everything: network rules flushed, paused nodes continued, stopped nodes restarted.
/// Returns the nodes it restarted.
pub fn heal_all(db: &Mutex<Db>) -> Result<Vec<u64>> {
    let mut db = db.lock().unwrap_or_else(|p| p.into_inner());
    db.heal_network()?;
    let mut restarted = Vec::new();
    for id in db.nodes.iter().map(|n| n.id).collect::<Vec<_>>() {
        db.resume(id)?;
        if !db.running().contains(&id) {
            db.start(id)?;
            restarted.push(id);
        }
    }
    Ok(restarted)
}

/// The schedule.
#[derive(Clone, Debug)]
pub struct Schedule {
    pub families: Vec<Family>,
    /// Quiet time before each fault.
    pub interval: Duration,
    /// How long each fault lasts.
    pub duration: Duration,
}

/// Sleeps `d` while logging nodes that exit on their own.
async fn watch(db: &Mutex<Db>, rec: &Recorder, log: &Log, d: Duration) {
    let end = tokio::time::Instant::now() + d;
    while tokio::time::Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(250).min(end - tokio::time::Instant::now())).await;
        let crashes = db.lock().unwrap_or_else(|p| p.into_inner()).poll_crashes();
        for c in crashes {
            log.push(rec, "crashed", "", vec![c.id], c.status);
        }
    }
}

/// Runs the schedule until `until` (run clock, ns), then heals. An error is a harness failure.
pub async fn run(
    db: Arc<Mutex<Db>>,
    rec: Recorder,
    log: Log,
    schedule: Schedule,
    mut rng: StdRng,
    until: u64,
) -> Result<()> {
    let (addrs, all): (Vec<(u64, String)>, Vec<u64>) = {
        let d = db.lock().unwrap_or_else(|p| p.into_inner());
        (d.client_addrs(), d.nodes.iter().map(|n| n.id).collect())
    };
    loop {
        let jitter = |rng: &mut StdRng, d: Duration| d.mul_f64(rng.gen_range(0.75..1.25));
        let quiet = jitter(&mut rng, schedule.interval);
        let length = jitter(&mut rng, schedule.duration);
        let remaining = until.saturating_sub(rec.now());
        if schedule.families.is_empty() || (quiet + length).as_nanos() as u64 >= remaining {
            watch(&db, &rec, &log, Duration::from_nanos(remaining)).await;
            break;
        }
        watch(&db, &rec, &log, quiet).await;
        // A node that crashed in the quiet time comes back before the next fault.
        let down = {
            let d = db.lock().unwrap_or_else(|p| p.into_inner());
            all.iter().filter(|id| !d.running().contains(id)).count()
        };
        if down > 0 {
            let restarted = heal_all(&db)?;
            log.push(
                &rec,
                "restart",
                "",
                restarted,
                "restarted crashed nodes".into(),
            );
        }
        let leader = find_leader(&addrs, Duration::from_millis(300)).await;
        let fault = plan(&mut rng, &schedule.families, &all, leader);
        let mut detail = serde_json::to_string(&fault).unwrap_or_default();
        if let Some(dropped) =
            apply(&db, &fault).map_err(|e| anyhow::anyhow!("nemesis {}: {e:#}", fault.name()))?
        {
            detail += &format!(" dropped: {dropped}");
        }
        if let Err(why) = apply_admin(&addrs, &fault).await {
            log.push(
                &rec,
                "note",
                fault.name(),
                fault.nodes(),
                format!("refused: {why}"),
            );
            continue;
        }
        log.push(&rec, "start", fault.name(), fault.nodes(), detail);
        if let Fault::Snapshot { node, .. } = &fault {
            let addr = addrs
                .iter()
                .find(|(id, _)| id == node)
                .map(|(_, a)| a.clone())
                .unwrap_or_default();
            let ((), (done, last)) =
                tokio::join!(watch(&db, &rec, &log, length), snapshots(&addr, length));
            let detail = format!("{done} snapshots; last error: {last:?}");
            log.push(&rec, "note", fault.name(), fault.nodes(), detail);
        } else {
            watch(&db, &rec, &log, length).await;
        }
        // A node removed must be a member again before the next fault (or the final reads).
        heal_admin(&db, &fault, Duration::from_secs(120))
            .await
            .map_err(|e| anyhow::anyhow!("nemesis {}: {e}", fault.name()))?;
        let restarted = heal_all(&db)?;
        log.push(
            &rec,
            "end",
            fault.name(),
            fault.nodes(),
            format!("restarted {restarted:?}"),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn partitions_cut_the_right_pairs() {
        let all = [1, 2, 3];
        assert_eq!(
            Fault::IsolateLeader { node: 2 }.cut_pairs(&all),
            vec![(1, 2), (2, 3)]
        );
        assert_eq!(
            Fault::Bridge {
                bridge: 2,
                left: vec![1],
                right: vec![3]
            }
            .cut_pairs(&all),
            vec![(1, 3)]
        );
        let five = [1, 2, 3, 4, 5];
        let split = Fault::Split {
            minority: vec![1, 4],
            majority: vec![2, 3, 5],
        };
        assert_eq!(split.cut_pairs(&five).len(), 6);
        assert!(Fault::Kill {
            node: 1,
            leader: false
        }
        .cut_pairs(&all)
        .is_empty());
    }

    #[test]
    fn plans_stay_within_the_families_and_keep_a_majority() {
        let mut rng = StdRng::seed_from_u64(3);
        let all = [1, 2, 3, 4, 5];
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..500 {
            let f = plan(&mut rng, &[Family::Partition], &all, Some(4));
            assert_eq!(f.family(), Family::Partition);
            seen.insert(f.name());
            match &f {
                Fault::Split { minority, majority } => {
                    assert!(minority.len() < majority.len());
                    assert_eq!(minority.len() + majority.len(), 5);
                }
                Fault::Bridge {
                    bridge,
                    left,
                    right,
                } => {
                    assert!(!left.contains(bridge) && !right.contains(bridge));
                    assert_eq!(left.len() + right.len(), 4);
                }
                Fault::IsolateLeader { node } => assert_eq!(*node, 4),
                _ => unreachable!(),
            }
        }
        assert_eq!(seen.len(), 3, "{seen:?}");
        let f = plan(&mut rng, &[Family::Kill], &all, None);
        assert!(matches!(f, Fault::Kill { leader: false, .. }));
    }

    #[test]
    fn operator_faults_target_the_leader_or_another_node() {
        let mut rng = StdRng::seed_from_u64(5);
        let all = [1, 2, 3];
        for _ in 0..100 {
            match plan(&mut rng, &[Family::Transfer], &all, Some(2)) {
                Fault::Transfer { from, to } => {
                    assert_eq!(from, 2, "a transfer starts at the leader");
                    assert!(to != 2 && all.contains(&to));
                }
                f => panic!("{f:?}"),
            }
            let f = plan(&mut rng, &[Family::Membership], &all, Some(2));
            assert_eq!(f.family(), Family::Membership);
            match f {
                Fault::Remove { node, leader } => {
                    assert!(all.contains(&node));
                    assert_eq!(leader, node == 2 && leader);
                }
                f => panic!("{f:?}"),
            }
        }
        assert!(Fault::Transfer { from: 1, to: 2 }
            .cut_pairs(&all)
            .is_empty());
    }

    #[test]
    fn power_loss_hits_one_node_the_leader_or_all() {
        let mut rng = StdRng::seed_from_u64(7);
        let all = [1, 2, 3];
        let mut names = std::collections::BTreeSet::new();
        let (mut torn, mut reordered) = (0, 0);
        for _ in 0..300 {
            let f = plan(&mut rng, &[Family::PowerLoss], &all, Some(3));
            assert_eq!(f.family(), Family::PowerLoss);
            names.insert(f.name());
            match &f {
                Fault::PowerLoss {
                    nodes,
                    leader,
                    crash,
                } => {
                    assert!(nodes.len() == 1 || nodes.as_slice() == all, "{f:?}");
                    if *leader {
                        assert_eq!(nodes, &vec![3]);
                    }
                    match crash {
                        CrashMode::Torn => torn += 1,
                        CrashMode::Reordered { .. } => reordered += 1,
                        CrashMode::Clean => {}
                    }
                }
                f => panic!("{f:?}"),
            }
            assert!(f.cut_pairs(&all).is_empty());
        }
        assert_eq!(
            names,
            ["power-loss", "power-loss-all", "power-loss-leader"]
                .into_iter()
                .collect()
        );
        assert!((50..150).contains(&torn), "torn {torn} of 300");
        assert!(
            (50..150).contains(&reordered),
            "reordered {reordered} of 300"
        );
    }

    #[test]
    fn the_same_seed_gives_the_same_schedule() {
        let fams = [Family::Kill, Family::Pause, Family::Partition];
        let a: Vec<Fault> = {
            let mut rng = StdRng::seed_from_u64(9);
            (0..20)
                .map(|_| plan(&mut rng, &fams, &[1, 2, 3], Some(1)))
                .collect()
        };
        let mut rng = StdRng::seed_from_u64(9);
        let b: Vec<Fault> = (0..20)
            .map(|_| plan(&mut rng, &fams, &[1, 2, 3], Some(1)))
            .collect();
        assert_eq!(a, b);
    }

    #[test]
    fn wall_time_is_rfc3339() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20.123Z");
    }
}
