//! The `[raft]`, `[server]` and `[store]` sections: timing, limits, read modes, keyspace
//! notification classes and the history bounds, with their defaults and refusals.

use super::*;

#[test]
fn read_lease_is_the_vote_refusal_window_minus_the_drift_margin() {
    let c = must_parse(BASE);
    // The defaults: 250 ms election timeout; followers refuse votes for 3/5 of it (150 ms)
    // after each AppendEntries; a fifth of it (50 ms) as margin.
    assert_eq!(
        c.raft.election_timing().vote_refusal_window().as_millis(),
        150
    );
    assert_eq!(c.raft.read_lease(), std::time::Duration::from_millis(100));
    let c = must_parse(&format!(
        "{BASE}\n[raft]\nelection_timeout_ms = 500\nlease_drift_margin_ms = 150\n"
    ));
    assert_eq!(c.raft.read_lease(), std::time::Duration::from_millis(150));
    // A margin of the whole window or more: no lease.
    let c = must_parse(&format!(
        "{BASE}\n[raft]\nelection_timeout_ms = 500\nlease_drift_margin_ms = 300\n"
    ));
    assert_eq!(c.raft.read_lease(), std::time::Duration::ZERO);
    must_be_invalid(
        &format!("{BASE}\n[raft]\nelection_timeout_ms = 500\nlease_drift_margin_ms = 501\n"),
        "raft.lease_drift_margin_ms",
        "must be at most election_timeout_ms",
    );
}

/// LeaseBound and the campaign window for every accepted timing: openraft's `min < max`,
/// `heartbeat < min`, a campaign no earlier than `election_timeout_ms` of silence
/// (`min + max`), and a read lease shorter than the vote-refusal window (`max`) by at least the
/// drift margin.
#[test]
fn election_timing_keeps_the_lease_inside_the_vote_refusal_window() {
    for heartbeat_ms in [1, 10, 50, 100, 333] {
        for election_timeout_ms in (2 * heartbeat_ms + 1..=20 * heartbeat_ms).step_by(7) {
            for margin in [None, Some(0), Some(1), Some(election_timeout_ms / 2)] {
                let raft = RaftSection {
                    heartbeat_ms,
                    election_timeout_ms,
                    lease_drift_margin_ms: margin,
                    ..RaftSection::default()
                };
                let t = raft.election_timing();
                let case = format!("{heartbeat_ms}/{election_timeout_ms} margin {margin:?}: {t:?}");
                assert!(heartbeat_ms < t.min_ms && t.min_ms < t.max_ms, "{case}");
                assert!(t.min_ms + t.max_ms >= election_timeout_ms, "{case}");
                if election_timeout_ms * 2 / 5 > heartbeat_ms {
                    assert_eq!(t.min_ms + t.max_ms, election_timeout_ms, "{case}");
                }
                let window = t.vote_refusal_window();
                let margin = margin.unwrap_or(election_timeout_ms / 5);
                assert!(
                    raft.read_lease().as_millis() + u128::from(margin) <= window.as_millis()
                        || raft.read_lease().is_zero(),
                    "{case}"
                );
            }
        }
    }
}

#[test]
fn refuses_unknown_read_mode() {
    let text = format!("{BASE}\n[server]\nread_mode = \"eventual\"\n");
    must_not_parse(&text, &["unknown variant `eventual`", "lease"]);
}

#[test]
fn refuses_bad_raft_timing() {
    let raft = |body: &str| format!("{BASE}\n[raft]\n{body}\n");
    must_be_invalid(&raft("heartbeat_ms = 0"), "raft.heartbeat_ms", "at least 1");
    must_be_invalid(
        &raft("heartbeat_ms = 500"),
        "raft.election_timeout_ms",
        "must exceed 2 × heartbeat_ms",
    );
    must_be_invalid(
        &raft("election_timeout_ms = 100"),
        "raft.election_timeout_ms",
        "must exceed 2 × heartbeat_ms (100 ≤ 2 × 50)",
    );
    must_parse(&raft("election_timeout_ms = 101"));
    must_be_invalid(
        &raft("election_timeout_ms = 3600001"),
        "raft.election_timeout_ms",
        "at most",
    );
    must_be_invalid(
        &raft("snapshot_every = 0"),
        "raft.snapshot_every",
        "at least 1",
    );
    must_parse(&raft("max_in_snapshot_log_to_keep = 0"));
}

#[test]
fn refuses_bad_server_limits() {
    let server = |body: &str| format!("{BASE}\n[server]\n{body}\n");
    must_be_invalid(
        &server("max_clients = 0"),
        "server.max_clients",
        "at least 1",
    );
    must_be_invalid(
        &server("proto_max_bulk_len = 0"),
        "server.proto_max_bulk_len",
        "between 1 and",
    );
    must_be_invalid(
        &server("proto_max_bulk_len = 536870913"),
        "server.proto_max_bulk_len",
        "512 MiB",
    );
    must_parse(&server("proto_max_bulk_len = 536870912"));
    must_be_invalid(
        &server("write_timeout_ms = 0"),
        "server.write_timeout_ms",
        "at least 1",
    );
    must_be_invalid(
        &server("requirepass = \"\""),
        "server.requirepass",
        "must not be empty",
    );
    must_not_parse(&server("max_clients = -1"), &["max_clients"]);
    must_be_invalid(
        &server("timeout = 2147483648"),
        "server.timeout",
        "between 0 and 2147483647",
    );
    must_parse(&server("timeout = 2147483647"));
    must_be_invalid(
        &server("notify_keyspace_events = \"KEQ\""),
        "server.notify_keyspace_events",
        "Ag$lshzxeKEtmdn",
    );
    let c = must_parse(&server(
        "timeout = 30\nclient_output_buffer_limit = 0\nnotify_keyspace_events = \"KEA\"",
    ));
    assert_eq!(c.server.timeout, 30);
    assert_eq!(c.server.client_output_buffer_limit, 0);
    assert_eq!(c.server.notify_keyspace_events, "KEA");
}

#[test]
fn notify_keyspace_events_render_like_redis() {
    // want: what Redis 7's CONFIG GET shows after CONFIG SET <input>.
    let cases = [
        ("", ""),
        ("KEA", "AKE"),
        ("Kg", "gK"),
        ("A", "A"),
        ("KEA$nm", "AKEm"),
        ("En$x", "$xnE"),
        ("g$lshzxetd", "A"),
    ];
    for (input, want) in cases {
        let flags = NotifyKeyspaceEvents::parse(input).expect(input);
        assert_eq!(flags.render(), want, "input {input:?}");
    }
    assert_eq!(NotifyKeyspaceEvents::parse("KEQ"), None);
    assert_eq!(NotifyKeyspaceEvents::parse("k"), None);
}

#[test]
fn refuses_zero_history() {
    let store = |body: &str| format!("{BASE}\n[store]\n{body}\n");
    must_be_invalid(
        &store("history_revisions = 0"),
        "store.history_revisions",
        "at least 1",
    );
    must_be_invalid(
        &store("history_minutes = 0"),
        "store.history_minutes",
        "at least 1",
    );
    must_be_invalid(
        &store("auto_compaction = false\nhistory_revisions = 5"),
        "store.auto_compaction",
        "remove one or the other",
    );
    must_be_invalid(
        &store("history_max_revisions = 0"),
        "store.history_max_revisions",
        "at least 1",
    );
    must_be_invalid(
        &store("history_revisions = 500\nhistory_max_revisions = 100"),
        "store.history_max_revisions",
        "below history_revisions (500)",
    );
    must_be_invalid(
        &store("auto_compaction = false\nhistory_max_revisions = 5"),
        "store.auto_compaction",
        "remove one or the other",
    );
}

/// A history window whose milliseconds overflow an `i64` is refused naming the field; it was
/// taken, and the compaction task of a debug build panicked on `minutes * 60_000` a second
/// after the start (the release build wrapped it).
#[test]
fn refuses_a_history_window_beyond_100_years() {
    let store = |body: &str| format!("{BASE}\n[store]\n{body}\n");
    must_be_invalid(
        &store("history_minutes = 99999999999999999"),
        "store.history_minutes",
        "at most 52704000 (100 years)",
    );
    must_parse(&store("history_minutes = 52704000"));
}

/// BoundedByDefault: no `[store]` section means the last hour and at least the last
/// 10,000 revisions; written rules replace the defaults; `auto_compaction = false` keeps
/// everything.
#[test]
fn history_is_bounded_by_default() {
    let store = |body: &str| must_parse(&format!("{BASE}\n[store]\n{body}\n")).store;
    let default = must_parse(BASE).store.effective();
    assert_eq!(default.history_revisions, Some(DEFAULT_HISTORY_REVISIONS));
    assert_eq!(default.history_minutes, Some(DEFAULT_HISTORY_MINUTES));
    assert_eq!(
        (DEFAULT_HISTORY_REVISIONS, DEFAULT_HISTORY_MINUTES),
        (10_000, 60)
    );

    // HistoryCapped: every policy with compaction on has a cap, by default a million.
    assert_eq!(
        default.history_max_revisions,
        Some(DEFAULT_HISTORY_MAX_REVISIONS)
    );
    assert_eq!(DEFAULT_HISTORY_MAX_REVISIONS, 1_000_000);

    let only_count = store("history_revisions = 500").effective();
    assert_eq!(only_count.history_revisions, Some(500));
    assert_eq!(only_count.history_minutes, None);
    assert_eq!(only_count.history_max_revisions, Some(1_000_000));

    let only_time = store("history_minutes = 5").effective();
    assert_eq!(only_time.history_revisions, None);
    assert_eq!(only_time.history_minutes, Some(5));
    assert_eq!(only_time.history_max_revisions, Some(1_000_000));

    // A count rule above the default cap raises it; a written cap is kept.
    let many = store("history_revisions = 5000000").effective();
    assert_eq!(many.history_max_revisions, Some(5_000_000));
    let capped = store("history_minutes = 1440\nhistory_max_revisions = 200000").effective();
    assert_eq!(
        (capped.history_minutes, capped.history_max_revisions),
        (Some(1440), Some(200_000))
    );
    // The cap alone keeps the default rules under it.
    let cap_only = store("history_max_revisions = 50000").effective();
    assert_eq!(
        (
            cap_only.history_revisions,
            cap_only.history_minutes,
            cap_only.history_max_revisions
        ),
        (
            Some(DEFAULT_HISTORY_REVISIONS),
            Some(DEFAULT_HISTORY_MINUTES),
            Some(50_000)
        )
    );

    let off = store("auto_compaction = false").effective();
    assert_eq!((off.history_revisions, off.history_minutes), (None, None));
    assert_eq!(off.history_max_revisions, None);
}

#[test]
fn read_mode_round_trips() {
    for mode in [ReadMode::Linearizable, ReadMode::Lease, ReadMode::Stale] {
        assert_eq!(mode.to_string().parse::<ReadMode>(), Ok(mode));
    }
    assert_eq!("LEASE".parse::<ReadMode>(), Ok(ReadMode::Lease));
    for mode in [ReadMode::Linearizable, ReadMode::Lease, ReadMode::Stale] {
        assert_eq!(ReadMode::from_index(mode.index()), mode);
    }
    let e = "fast".parse::<ReadMode>().unwrap_err();
    assert_eq!(
        e.to_string(),
        "unknown read mode `fast` (expected linearizable, lease or stale)"
    );
}
