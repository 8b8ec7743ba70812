#!/usr/bin/env bash
# Side-by-side figures for the README: `redis-benchmark -t set,get -n N -c 50` against the
# leader and a follower of a local three-node redraft cluster (release build), and against a
# local Redis with no persistence and with `appendfsync always`, in one run.
#
# Usage: benches/redis_benchmark_cluster.sh [-n REQUESTS] [-r ROUNDS]
# Needs: redis-tools (redis-benchmark, redis-cli); redis-server for the Redis rows (optional).
# Prints a markdown table of medians over ROUNDS (default 3), interleaving the systems so that
# machine noise hits all of them alike, and the group-commit figure (entries per log flush).
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh

N=100000
ROUNDS=3
while getopts "n:r:" o; do
    case $o in
        n) N=$OPTARG ;;
        r) ROUNDS=$OPTARG ;;
        *) echo "usage: $0 [-n REQUESTS] [-r ROUNDS]" >&2; exit 2 ;;
    esac
done
command -v redis-benchmark >/dev/null || { echo "need redis-benchmark: apt-get install redis-tools" >&2; exit 1; }

bench_init
start_cluster 17100 16380

SYSTEMS=("redraft-leader:$LEADER" "redraft-follower:$FOLLOWER")
if command -v redis-server >/dev/null; then
    start_redis 16390 --appendonly no
    start_redis 16391 --appendonly yes --appendfsync always
    SYSTEMS+=("redis-nopersist:16390" "redis-fsync-always:16391")
fi

flush_counts() { # entries flushed, flushes on the leader
    redis-cli -p "$LEADER" INFO raft | tr -d '\r' |
        awk -F: '/^raft_log_entries_flushed:/{e=$2} /^raft_log_flushes:/{f=$2} END{print e, f}'
}

RAW=$WORK/raw.csv
: > "$RAW"
read -r e0 f0 < <(flush_counts)
for round in $(seq 1 "$ROUNDS"); do
    for s in "${SYSTEMS[@]}"; do
        name=${s%%:*}; port=${s##*:}
        redis-benchmark -p "$port" -t set,get -n "$N" -c 50 -q --csv 2>/dev/null |
            tail -n +2 | tr -d '"' | awk -F, -v s="$name" '{print s "," $1 "," $2 "," $5 "," $7}' >>"$RAW"
    done
done
read -r e1 f1 < <(flush_counts)

echo "redis-benchmark -t set,get -n $N -c 50, median of $ROUNDS interleaved rounds, $(nproc) cores"
echo
echo "| system | test | requests/s | p50 ms | p99 ms |"
echo "|---|---|---:|---:|---:|"
for s in "${SYSTEMS[@]}"; do
    name=${s%%:*}
    for t in SET GET; do
        rps=$(awk -F, -v s="$name" -v t="$t" '$1==s && $2==t {print $3}' "$RAW" | median)
        p50=$(awk -F, -v s="$name" -v t="$t" '$1==s && $2==t {print $4}' "$RAW" | median)
        p99=$(awk -F, -v s="$name" -v t="$t" '$1==s && $2==t {print $5}' "$RAW" | median)
        echo "| $name | $t | $rps | $p50 | $p99 |"
    done
done
echo
awk -v e=$((e1 - e0)) -v f=$((f1 - f0)) 'BEGIN{ if (f > 0) printf "group commit on the leader during the run: %d entries in %d log flushes = %.1f entries per flush\n", e, f, e / f }'
