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

cargo build --release --locked -q
BIN=$PWD/target/release/redraft
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

cat > "$WORK/cluster.toml" <<TOML
[cluster]
name = "bench"
[[node]]
id = 1
raft_addr = "127.0.0.1:17101"
redis_addr = "127.0.0.1:16381"
data_dir = "$WORK/node1"
[[node]]
id = 2
raft_addr = "127.0.0.1:17102"
redis_addr = "127.0.0.1:16382"
data_dir = "$WORK/node2"
[[node]]
id = 3
raft_addr = "127.0.0.1:17103"
redis_addr = "127.0.0.1:16383"
data_dir = "$WORK/node3"
TOML
for i in 1 2 3; do
    "$BIN" --config "$WORK/cluster.toml" --node $i --log warn 2>"$WORK/node$i.log" &
    PIDS+=($!)
done

LEADER=""
for _ in $(seq 1 100); do
    for p in 16381 16382 16383; do
        if [ "$(redis-cli -p $p ROLE 2>/dev/null | head -1)" = master ]; then LEADER=$p; fi
    done
    [ -n "$LEADER" ] && break
    sleep 0.1
done
[ -n "$LEADER" ] || { echo "no leader elected; logs in $WORK" >&2; tail -5 "$WORK"/node*.log >&2; exit 1; }
FOLLOWER=$(for p in 16381 16382 16383; do [ $p != "$LEADER" ] && echo $p; done | head -1)

SYSTEMS=("redraft-leader:$LEADER" "redraft-follower:$FOLLOWER")
if command -v redis-server >/dev/null; then
    redis-server --port 16390 --save '' --appendonly no --daemonize no >"$WORK/redis.log" 2>&1 &
    PIDS+=($!)
    redis-server --port 16391 --save '' --appendonly yes --appendfsync always \
        --dir "$WORK" --daemonize no >"$WORK/redis-aof.log" 2>&1 &
    PIDS+=($!)
    sleep 0.5
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

median() { sort -n | awk '{a[NR]=$1} END{ if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'; }
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
