#!/usr/bin/env bash
# What the committed-index fsync costs: the same release build twice, side by side, once as
# shipped and once with the test-only failpoint `committed_sync_off` (the commit gate rises once
# the committed record is written instead of after the sync that makes it durable).
#
# Usage: benches/committed_sync.sh [--reps N] [--out DIR]
#
# DESIGN §2 wants the committed index durable. Until 2026-12-04 (evening) every node applied an
# entry only once a sync had covered a committed record at or past it, so the sync sat between
# a commit and its apply: on the leader before the client's reply, on a follower before a watch
# event; this bench measured that price. Since DurableReads (`src/raft/commit_gate.rs`) only a
# read's reply waits for it (a node that restarts re-applies up to its durable committed index,
# so it never answers a read older than one it answered before the crash), and the two builds
# should write alike: what is left to measure is the wait of reads under write load.
#
# Runs `benches/set_ab.sh` twice (labels `shipped` and `committed-sync-off`, repetitions
# interleaved): SET of 256 B at 1, 64 and 256 clients, then the watch workload (put on one
# node, keyspace event on another; its latencies are in the p50/p99 columns). Writes
# DIR/writes/ and DIR/watch/ (set_ab.sh's files each) and prints both summaries.
set -euo pipefail
cd "$(dirname "$0")/.."

REPS=3 OUT=""
while [ $# -gt 0 ]; do
    case $1 in
        --reps) REPS=$2; shift ;;
        --out) OUT=$2; shift ;;
        *) echo "usage: $0 [--reps N] [--out DIR]" >&2; exit 2 ;;
    esac
    shift
done
OUT=${OUT:-benches/results/$(date +%Y-%m-%d-%H%M)-committed-sync}
cargo build --release --locked -q --bin redraft
BIN=$PWD/target/release/redraft
AB=(--bin "shipped=$BIN" --bin "committed-sync-off=$BIN" --failpoints committed-sync-off=committed_sync_off --reps "$REPS")
bash benches/set_ab.sh "${AB[@]}" --concurrency "1 64 256" --out "$OUT/writes"
bash benches/set_ab.sh "${AB[@]}" --workload watch-latency --mode keyspace --concurrency 1 \
    --duration 3s --warmup 0s --out "$OUT/watch"
