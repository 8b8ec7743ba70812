#!/usr/bin/env bash
# Side-by-side figures for the README, in one run: redis-benchmark against the leader and a
# follower of a local three-node redraft cluster (release build), a local Redis with no
# persistence and one with `appendfsync always`:
#   - EVALSHA of redis-py's lock release script (compare-and-delete) on random keys: for
#     redraft every EVALSHA is a Raft entry run at apply on every node;
#   - SET with 16 commands pipelined per connection (`-P 16`), 50 connections;
#   - HSET of one field of a hash (`-t hset`, fields random over 10,000) and HGET of those
#     fields (for redraft: a write, and a linearizable read, each; through the follower the
#     read uses its lease-free default mode).
#
# Usage: benches/redis_benchmark_scripts.sh [-n REQUESTS] [-r ROUNDS]
# Needs: redis-tools (redis-benchmark, redis-cli), redis-server. Prints a markdown table of
# medians over ROUNDS (default 3) interleaved rounds.
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh

N=50000
ROUNDS=3
while getopts "n:r:" o; do
    case $o in
        n) N=$OPTARG ;;
        r) ROUNDS=$OPTARG ;;
        *) echo "usage: $0 [-n REQUESTS] [-r ROUNDS]" >&2; exit 2 ;;
    esac
done
need_tools redis-benchmark redis-cli redis-server

bench_init
BASE=${BENCH_PORT_BASE:-17300}
start_cluster $((BASE + 100)) $((BASE + 200))
start_redis $((BASE + 11)) --appendonly no
start_redis $((BASE + 12)) --appendonly yes --appendfsync always
SYSTEMS=("redraft-leader:$LEADER" "redraft-follower:$FOLLOWER" "redis-nopersist:$((BASE + 11))"
    "redis-fsync-always:$((BASE + 12))")

# redis-py's Lock.LUA_RELEASE_SCRIPT.
RELEASE="local token = redis.call('get', KEYS[1])
if not token or token ~= ARGV[1] then
    return 0
end
redis.call('del', KEYS[1])
return 1"
for s in "${SYSTEMS[@]}"; do
    SHA=$(redis-cli -p "${s##*:}" SCRIPT LOAD "$RELEASE")
done

RAW=$WORK/raw.csv
: >"$RAW"
row() { # system test -- redis-benchmark arguments
    local name=$1 test=$2
    shift 3
    redis-benchmark -q --csv "$@" 2>/dev/null | tail -n +2 | tr -d '"' |
        awk -F, -v s="$name" -v t="$test" '{print s "," t "," $2 "," $5 "," $7}' >>"$RAW"
}
for round in $(seq 1 "$ROUNDS"); do
    for s in "${SYSTEMS[@]}"; do
        name=${s%%:*} port=${s##*:}
        row "$name" evalsha -- -p "$port" -n "$N" -c 50 -r 100000 \
            EVALSHA "$SHA" 1 "lock:__rand_int__" token
        row "$name" "set -P 16" -- -p "$port" -n $((N * 4)) -c 50 -P 16 -t set
        row "$name" hset -- -p "$port" -n "$N" -c 50 -r 10000 -t hset
        row "$name" hget -- -p "$port" -n "$N" -c 50 -r 10000 \
            HGET myhash element:__rand_int__
    done
done

echo "redis-benchmark, 50 connections, median of $ROUNDS interleaved rounds, $(nproc) cores"
echo
echo "| system | test | requests/s | p50 ms | p99 ms |"
echo "|---|---|---:|---:|---:|"
for t in evalsha "set -P 16" hset hget; do
    for s in "${SYSTEMS[@]}"; do
        name=${s%%:*}
        col() { awk -F, -v s="$name" -v t="$t" -v c="$1" '$1==s && $2==t {print $c}' "$RAW" | median; }
        echo "| $name | $t | $(col 3) | $(col 4) | $(col 5) |"
    done
done
