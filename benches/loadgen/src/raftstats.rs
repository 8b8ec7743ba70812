//! redraft's server side of a write run: the group-commit counters of every node read from
//! `INFO raft` before and after the measured time (log entries per fsync under load), and the
//! `--force-snapshots` task that asks the leader for a snapshot at a fixed interval.
//!
//! The counters are read, never assumed: a node that does not report them (another server, a
//! build that renamed them) leaves the run without `log_flush` and says so in the note.

use std::time::{Duration, Instant};

use crate::client::CONNECT_TIMEOUT;
use crate::resp::{Conn, Reply};
use crate::result::{ForcedSnapshots, LogFlush, NodeFlush};

/// What one node reported in `INFO raft` at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RaftCounters {
    pub leader: bool,
    pub flushes: u64,
    pub entries: u64,
    /// Proposal batching (`raft_proposal_entries`, `raft_proposal_requests`): absent on builds
    /// before it.
    pub proposals: Option<(u64, u64)>,
    /// Every sync of the log, committed-index-only ones included (`raft_log_syncs`): absent on
    /// builds before it.
    pub syncs: Option<u64>,
}

/// The `INFO` field names read (see redraft's `src/commands/server/info.rs`, section `# Raft`).
const FLUSHES: &str = "raft_log_flushes";
const ENTRIES: &str = "raft_log_entries_flushed";
const STATE: &str = "raft_state";
const PROPOSAL_ENTRIES: &str = "raft_proposal_entries";
const PROPOSAL_REQUESTS: &str = "raft_proposal_requests";
const SYNCS: &str = "raft_log_syncs";

/// Parses the group-commit counters out of an `INFO raft` reply; `None` unless both counters
/// are there and are numbers.
pub fn parse_info(text: &str) -> Option<RaftCounters> {
    let field = |name: &str| {
        text.lines()
            .filter_map(|l| l.trim_end_matches('\r').split_once(':'))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.trim().to_string())
    };
    Some(RaftCounters {
        leader: field(STATE).is_some_and(|s| s.eq_ignore_ascii_case("leader")),
        flushes: field(FLUSHES)?.parse().ok()?,
        entries: field(ENTRIES)?.parse().ok()?,
        proposals: field(PROPOSAL_ENTRIES)
            .and_then(|e| e.parse().ok())
            .zip(field(PROPOSAL_REQUESTS).and_then(|r| r.parse().ok())),
        syncs: field(SYNCS).and_then(|v| v.parse().ok()),
    })
}

/// Reads every node's counters; a node that cannot be reached or does not report them is
/// `None`.
pub async fn scrape(endpoints: &[String]) -> Vec<Option<RaftCounters>> {
    let mut out = Vec::with_capacity(endpoints.len());
    for ep in endpoints {
        out.push(scrape_one(ep).await);
    }
    out
}

async fn scrape_one(endpoint: &str) -> Option<RaftCounters> {
    let mut c = Conn::connect(endpoint, CONNECT_TIMEOUT).await.ok()?;
    let reply = tokio::time::timeout(CONNECT_TIMEOUT, c.request(&[b"INFO", b"raft"]))
        .await
        .ok()?
        .ok()?;
    parse_info(&reply.text()?)
}

/// The counters' growth between two scrapes, per node, with the leader as the second scrape
/// saw it. `Err` names what is missing when no node can be compared.
pub fn delta(
    endpoints: &[String],
    before: &[Option<RaftCounters>],
    after: &[Option<RaftCounters>],
) -> Result<LogFlush, String> {
    let mut nodes = Vec::new();
    let mut missing = Vec::new();
    for (i, ep) in endpoints.iter().enumerate() {
        match (
            before.get(i).cloned().flatten(),
            after.get(i).cloned().flatten(),
        ) {
            // A counter that went down means the node restarted in between: not comparable.
            (Some(b), Some(a)) if a.flushes >= b.flushes && a.entries >= b.entries => {
                nodes.push(NodeFlush {
                    endpoint: ep.clone(),
                    leader: a.leader,
                    flushes: a.flushes - b.flushes,
                    entries: a.entries - b.entries,
                    proposals: match (b.proposals, a.proposals) {
                        (Some((be, br)), Some((ae, ar))) if ae >= be && ar >= br => {
                            Some((ae - be, ar - br))
                        }
                        _ => None,
                    },
                    syncs: match (b.syncs, a.syncs) {
                        (Some(b), Some(a)) if a >= b => Some(a - b),
                        _ => None,
                    },
                })
            }
            _ => missing.push(ep.as_str()),
        }
    }
    if nodes.is_empty() {
        return Err(format!(
            "no group-commit counters ({FLUSHES}, {ENTRIES} in INFO raft) from {}",
            missing.join(", ")
        ));
    }
    Ok(LogFlush { nodes })
}

/// Sends `RAFT.SNAPSHOT` to the node at `leader` every `every` from `from` until `stop` turns
/// true (or its sender is gone), each call waiting for its snapshot (the next one is due
/// `every` after the previous one returned).
pub async fn force_snapshots(
    leader: String,
    every: Duration,
    from: Instant,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> ForcedSnapshots {
    let mut out = ForcedSnapshots {
        interval_ms: every.as_millis() as u64,
        ..ForcedSnapshots::default()
    };
    let mut total_ms = 0.0;
    let mut conn: Option<Conn> = None;
    let mut next = from + every;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(next.into()) => {}
            _ = stop.changed() => break,
        }
        if *stop.borrow() {
            break;
        }
        let t = Instant::now();
        let ok = match conn.as_mut() {
            Some(c) => matches!(c.request(&[b"RAFT.SNAPSHOT"]).await, Ok(Reply::Simple(_))),
            None => match Conn::connect(&leader, CONNECT_TIMEOUT).await {
                Ok(mut c) => {
                    let r = matches!(c.request(&[b"RAFT.SNAPSHOT"]).await, Ok(Reply::Simple(_)));
                    conn = Some(c);
                    r
                }
                Err(_) => false,
            },
        };
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        if ok {
            out.taken += 1;
            total_ms += ms;
            out.max_ms = out.max_ms.max(ms);
        } else {
            out.failed += 1;
            conn = None;
        }
        next = Instant::now() + every;
    }
    if out.taken > 0 {
        out.mean_ms = total_ms / out.taken as f64;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "# Raft\r\nraft_node_id:2\r\nraft_state:Leader\r\nraft_term:3\r\n\
                        raft_log_flushes:120\r\nraft_log_appends_flushed:130\r\n\
                        raft_log_entries_flushed:1800\r\nraft_log_entries_per_flush:15.00\r\n";

    #[test]
    fn parses_the_counters() {
        assert_eq!(
            parse_info(INFO),
            Some(RaftCounters {
                leader: true,
                flushes: 120,
                entries: 1800,
                proposals: None,
                syncs: None,
            })
        );
        let synced = format!("{INFO}raft_log_syncs:230\r\n");
        assert_eq!(parse_info(&synced).unwrap().syncs, Some(230));
        let batched = format!("{INFO}raft_proposal_entries:40\r\nraft_proposal_requests:600\r\n");
        assert_eq!(parse_info(&batched).unwrap().proposals, Some((40, 600)));
        let follower = INFO.replace("Leader", "Follower");
        assert!(!parse_info(&follower).unwrap().leader);
        // A prefix of a name is not the name, and a missing or bad counter is no counters.
        assert_eq!(
            parse_info("raft_log_flushes_total:5\r\nraft_log_entries_flushed:9\r\n"),
            None
        );
        assert_eq!(parse_info(&INFO.replace("raft_log_flushes:120", "")), None);
        assert_eq!(parse_info(&INFO.replace(":1800", ":many")), None);
        assert_eq!(parse_info(""), None);
    }

    #[test]
    fn deltas_per_node() {
        let eps: Vec<String> = ["a:1", "b:2", "c:3"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let c = |leader, flushes, entries| {
            Some(RaftCounters {
                leader,
                flushes,
                entries,
                proposals: Some((flushes, entries * 2)),
                syncs: Some(flushes * 2),
            })
        };
        let before = vec![c(true, 10, 100), c(false, 5, 50), c(false, 7, 70)];
        // Node c restarted (its counters went down) and a's leadership moved to b.
        let after = vec![c(false, 20, 250), c(true, 25, 450), c(false, 1, 1)];
        let d = delta(&eps, &before, &after).unwrap();
        assert_eq!(d.nodes.len(), 2);
        assert_eq!(
            (d.nodes[0].flushes, d.nodes[0].entries, d.nodes[0].leader),
            (10, 150, false)
        );
        assert_eq!(
            (d.nodes[1].flushes, d.nodes[1].entries, d.nodes[1].leader),
            (20, 400, true)
        );
        assert_eq!(d.leader_entries_per_flush(), Some(20.0));
        assert_eq!((d.nodes[0].syncs, d.nodes[1].syncs), (Some(20), Some(40)));
        let err = delta(&eps, &[None, None, None], &after).unwrap_err();
        assert!(err.contains("a:1, b:2, c:3"), "{err}");
    }
}
