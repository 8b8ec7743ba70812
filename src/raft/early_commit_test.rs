//! The early commit's decisions (`early_commit.rs`): when a follower may count the leader's
//! flush and its own as a majority (CommittedByDurableMajority), when the leader announces
//! (AnnounceQuietly), and the leader's read floor (ReadFloor).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use openraft::vote::RaftLeaderIdExt;
use openraft::{Membership, ServerState};

use super::*;
use crate::raft::typ::StoredMembership;
use crate::raft::{PeerNode, TypeConfig};

type LeaderIdT = <TypeConfig as openraft::RaftTypeConfig>::LeaderId;

fn log_id(term: u64, leader: u64, index: u64) -> LogId {
    LogId::new(LeaderIdT::new_committed(term, leader), index)
}

fn committed_vote(term: u64, leader: u64) -> Vote {
    Vote::new_committed(term, leader)
}

/// Metrics of node `me` in `term` led by `leader` (committed vote), with `configs` voters.
fn metrics(me: u64, term: u64, leader: u64, configs: Vec<Vec<u64>>) -> RaftMetrics {
    let mut m = RaftMetrics::new_initial(me);
    m.current_term = term;
    m.vote = committed_vote(term, leader);
    m.current_leader = Some(leader);
    m.state = if me == leader {
        ServerState::Leader
    } else {
        ServerState::Follower
    };
    let configs: Vec<BTreeSet<u64>> = configs
        .into_iter()
        .map(|c| c.into_iter().collect())
        .collect();
    let nodes: BTreeMap<u64, PeerNode> = configs
        .iter()
        .flatten()
        .chain([me, leader].iter())
        .map(|id| {
            let node = PeerNode {
                raft_addr: format!("127.0.0.1:{}", 7000 + id),
                redis_addr: String::new(),
            };
            (*id, node)
        })
        .collect();
    let membership = Membership::new(configs, nodes).unwrap();
    m.membership_config = Arc::new(StoredMembership::new(Some(log_id(1, 1, 1)), membership));
    m
}

#[test]
fn a_follower_commits_up_to_the_smaller_of_the_leaders_flush_and_its_own() {
    let m = metrics(2, 3, 1, vec![vec![1, 2, 3]]);
    let vote = committed_vote(3, 1);
    let flushed = log_id(3, 1, 10);
    assert_eq!(
        decide(&m, 2, &vote, &flushed, Some(log_id(3, 1, 7))),
        Decision::Commit(log_id(3, 1, 7))
    );
    assert_eq!(
        decide(&m, 2, &vote, &flushed, Some(log_id(3, 1, 12))),
        Decision::Commit(flushed)
    );
}

#[test]
fn a_follower_waits_until_it_has_flushed_an_entry_of_that_leader() {
    let m = metrics(2, 3, 1, vec![vec![1, 2, 3]]);
    let vote = committed_vote(3, 1);
    let flushed = log_id(3, 1, 10);
    // Its durable entries are a previous leader's: they need not be the leader's.
    assert_eq!(
        decide(&m, 2, &vote, &flushed, Some(log_id(2, 3, 9))),
        Decision::Wait
    );
    assert_eq!(decide(&m, 2, &vote, &flushed, None), Decision::Wait);
}

#[test]
fn an_announcement_of_another_vote_or_an_older_terms_entry_is_dropped() {
    let mut m = metrics(2, 4, 3, vec![vec![1, 2, 3]]);
    let flushed = log_id(3, 1, 10);
    let durable = Some(log_id(3, 1, 10));
    // The follower moved on to a newer leader.
    assert_eq!(
        decide(&m, 2, &committed_vote(3, 1), &flushed, durable),
        Decision::Drop
    );
    // A vote not (yet) committed leads nothing.
    m = metrics(2, 3, 1, vec![vec![1, 2, 3]]);
    m.vote = Vote::new(3, 1);
    assert_eq!(
        decide(&m, 2, &Vote::new(3, 1), &flushed, durable),
        Decision::Drop
    );
    // Only an entry of the leader's own term can be committed by counting replicas.
    let m = metrics(2, 3, 1, vec![vec![1, 2, 3]]);
    assert_eq!(
        decide(&m, 2, &committed_vote(3, 1), &log_id(2, 1, 10), durable),
        Decision::Drop
    );
}

#[test]
fn the_rule_holds_only_where_two_voters_are_a_majority() {
    let vote = committed_vote(3, 1);
    let flushed = log_id(3, 1, 10);
    let durable = Some(flushed);
    for (configs, want) in [
        (vec![vec![1, 2, 3]], Decision::Commit(flushed)),
        (vec![vec![1, 2]], Decision::Commit(flushed)),
        (vec![vec![1, 2, 3, 4, 5]], Decision::Drop),
        (vec![vec![1, 2, 3], vec![1, 2, 4]], Decision::Drop),
        // The follower is a learner (not a voter).
        (vec![vec![1, 3, 4]], Decision::Drop),
    ] {
        let m = metrics(2, 3, 1, configs.clone());
        assert_eq!(decide(&m, 2, &vote, &flushed, durable), want, "{configs:?}");
    }
}

#[test]
fn the_leader_announces_only_a_flush_of_its_term_beyond_its_commit_index() {
    let mut m = metrics(1, 3, 1, vec![vec![1, 2, 3]]);
    m.local_committed = Some(log_id(3, 1, 5));
    assert_eq!(announce_targets(&m, 1, &log_id(3, 1, 5)), None);
    assert_eq!(announce_targets(&m, 1, &log_id(3, 1, 6)), Some(vec![2, 3]));
    // AnnounceSparseOnly: two entries beyond the commit index are writes streaming in.
    assert_eq!(announce_targets(&m, 1, &log_id(3, 1, 7)), None);
    // Right after an election its last entry may be an older term's.
    assert_eq!(announce_targets(&m, 1, &log_id(2, 2, 6)), None);
    for configs in [
        vec![vec![1, 2, 3, 4, 5]],
        vec![vec![1, 2, 3], vec![1, 2, 4]],
        vec![vec![1]],
    ] {
        let mut m = metrics(1, 3, 1, configs.clone());
        m.local_committed = Some(log_id(3, 1, 5));
        assert_eq!(
            announce_targets(&m, 1, &log_id(3, 1, 6)),
            None,
            "{configs:?}"
        );
    }
    // A follower announces nothing.
    let m = metrics(2, 3, 1, vec![vec![1, 2, 3]]);
    assert_eq!(announce_targets(&m, 2, &log_id(3, 1, 6)), None);
}

#[test]
fn the_read_floor_is_what_the_leader_announced_in_its_current_term() {
    let announced = Some(log_id(3, 1, 9));
    let m = metrics(1, 3, 1, vec![vec![1, 2, 3]]);
    assert_eq!(floor(announced, &m, 1), 9);
    // Leading again in a later term: the old announcement binds nothing (the new term's
    // blank entry, applied before any read, covers it).
    let m = metrics(1, 5, 1, vec![vec![1, 2, 3]]);
    assert_eq!(floor(announced, &m, 1), 0);
    // Not leading.
    let m = metrics(1, 3, 2, vec![vec![1, 2, 3]]);
    assert_eq!(floor(announced, &m, 1), 0);
    assert_eq!(floor(None, &metrics(1, 3, 1, vec![vec![1, 2, 3]]), 1), 0);
}
