#!/usr/bin/env bash
# No false elections under load: a local three-node redraft cluster with the shipped timings
# (no [raft] section in its cluster.toml), full write load for a while, and every node's term
# and leader before and after. Any term change without a fault is a false election: a
# heartbeat that came too late (a busy core, a slow fsync) and a follower that gave up on a
# live leader.
#
# Usage: benches/elections.sh [-d DURATION] [-c CONCURRENCY] [-s SNAPSHOT_EVERY]
#   -d  how long the load runs (default 600s; loadgen durations: 90s, 500ms, ...)
#   -c  writing connections, spread over the three nodes (default 64)
#   -s  RAFT.SNAPSHOT on the leader this often during the load, so snapshot writes compete
#       with the log's fsyncs as in production (default 10s; 0: none)
# Prints the terms and leaders before and after, the write rate, each node's history
# (revision, compact revision) and RSS after the load, and "false elections: N"; on a term
# change it keeps the nodes' logs (ELECTIONS_LOGS, default benches/results/<date>-elections-logs).
# Exits 1 if N > 0. Not run in CI (minutes of full load).
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh

DURATION=600s
CONC=64
SNAP=10s
while getopts "d:c:s:" o; do
    case $o in
        d) DURATION=$OPTARG ;;
        c) CONC=$OPTARG ;;
        s) SNAP=$OPTARG ;;
        *) echo "usage: $0 [-d DURATION] [-c CONCURRENCY] [-s SNAPSHOT_EVERY]" >&2; exit 2 ;;
    esac
done
need_tools redis-cli
BASE=${BENCH_PORT_BASE:-24600}
need_free_ports $((BASE + 1)) $((BASE + 2)) $((BASE + 3)) $((BASE + 101)) $((BASE + 102)) $((BASE + 103))
bench_init redraft-loadgen
LG=$PWD/target/release/redraft-loadgen
start_cluster $((BASE + 100)) "$BASE"
EPS="127.0.0.1:$((BASE + 1)),127.0.0.1:$((BASE + 2)),127.0.0.1:$((BASE + 3))"

# field PORT NAME: one `INFO raft` field of the node on PORT.
field() { redis-cli -p "$1" INFO raft | tr -d '\r' | sed -n "s/^$2://p"; }
terms() { for p in "${CLUSTER_PORTS[@]}"; do echo -n "$(field "$p" raft_term) "; done; }
leaders() { for p in "${CLUSTER_PORTS[@]}"; do echo -n "$(field "$p" raft_leader_id) "; done; }

# The first term settles (the election that made the leader); give it a moment.
sleep 2
T0=$(terms)
L0=$(leaders)
echo "before: terms $T0| leaders $L0"
SNAPARGS=()
[ "$SNAP" != 0 ] && SNAPARGS=(--force-snapshots "$SNAP")
"$LG" run --system redraft --endpoints "$EPS" --workload set --concurrency "$CONC" \
    --duration "$DURATION" --warmup 1s "${SNAPARGS[@]}" --out "$WORK/result.jsonl" >/dev/null
T1=$(terms)
L1=$(leaders)
echo "after:  terms $T1| leaders $L1"
# What the load left behind on each node: history kept (revisions above the compact revision)
# and resident memory.
for i in "${!CLUSTER_PORTS[@]}"; do
    p=${CLUSTER_PORTS[$i]}
    rss=$(awk '/^VmRSS/ { print int($2 / 1024) " MiB" }' "/proc/${PIDS[$i]}/status" 2>/dev/null || echo "?")
    echo "node $((i + 1)): revision $(field "$p" revision), compact_revision $(field "$p" compact_revision), RSS $rss"
done
# On a false election, keep the nodes' logs (warn level: elections and slow syncs).
if [ "$(echo "$T1" | tr ' ' '\n' | sort -n | tail -1)" != "$(echo "$T0" | tr ' ' '\n' | sort -n | tail -1)" ]; then
    keep=${ELECTIONS_LOGS:-benches/results/$(date +%Y-%m-%d-%H%M)-elections-logs}
    mkdir -p "$keep"
    cp "$WORK"/node*.log "$keep"/
    echo "term changed: the nodes' logs are in $keep"
fi
python3 - "$WORK/result.jsonl" "$T0" "$T1" <<'PY'
import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
t0 = [int(x) for x in sys.argv[2].split()]
t1 = [int(x) for x in sys.argv[3].split()]
changes = max(t1) - max(t0)
print(f"writes: {r['ops']} acknowledged, {r['errors']} failed, {r['throughput']:.0f} ops/s, "
      f"p99 {r['latency_ms']['p99']:.1f} ms, max {r['latency_ms']['max']:.1f} ms over "
      f"{r['duration_s']:.0f} s")
snaps = r.get("forced_snapshots")
if snaps:
    print(f"snapshots forced on the leader: {snaps}")
print(f"false elections: {changes}")
sys.exit(1 if changes > 0 else 0)
PY
