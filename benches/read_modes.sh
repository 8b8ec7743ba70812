#!/usr/bin/env bash
# Issue-5 figures: GET throughput and latency per read mode, on the leader and on a follower
# of a local three-node redraft cluster (release build), next to a local Redis (no
# persistence) in the same run: `redis-benchmark -t get -n N -c 50`, without and with -P 16.
#
# Usage: benches/read_modes.sh [-n REQUESTS] [-r ROUNDS]
# Needs: redis-tools and redis-server. The mode is switched per node with
# `CONFIG SET read-mode MODE` (the default of new connections; redis-benchmark cannot send
# READMODE on its own connections). Prints a markdown table of medians over ROUNDS
# interleaved rounds (default 3) with the ratio to Redis at the same pipeline depth, then the
# leader's and the follower's INFO reads (lease hits and fallbacks, reads per ReadIndex round).
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh

N=200000
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
start_cluster 17300 16500
REDIS=16590
start_redis $REDIS --appendonly no
# The key redis-benchmark's GET reads, with its default 3-byte value, on both systems.
redis-cli -p "$LEADER" SET key:__rand_int__ xxx >/dev/null
redis-cli -p $REDIS SET key:__rand_int__ xxx >/dev/null

RAW=$WORK/raw.csv
: >"$RAW"
bench() { # system mode pipeline port
    redis-benchmark -p "$4" -t get -n "$N" -c 50 -P "$3" -q --csv 2>/dev/null |
        tail -n +2 | tr -d '"' |
        awk -F, -v s="$1" -v m="$2" -v p="$3" '{print s "," m "," p "," $2 "," $5 "," $7}' >>"$RAW"
}
for round in $(seq 1 "$ROUNDS"); do
    for P in 1 16; do
        bench redis - "$P" $REDIS
        for target in leader follower; do
            port=$LEADER
            [ $target = follower ] && port=$FOLLOWER
            for mode in linearizable lease stale; do
                redis-cli -p "$port" CONFIG SET read-mode $mode >/dev/null
                bench "redraft-$target" $mode "$P" "$port"
            done
        done
    done
    echo "round $round of $ROUNDS done" >&2
done

col() { # system mode pipeline column
    awk -F, -v s="$1" -v m="$2" -v p="$3" -v c="$4" '$1==s && $2==m && $3==p {print $c}' "$RAW" | median
}
echo "redis-benchmark -t get -n $N -c 50 [-P 16], median of $ROUNDS interleaved rounds, $(nproc) cores"
echo
echo "| system | read mode | -P | requests/s | p50 ms | p99 ms | / Redis |"
echo "|---|---|---:|---:|---:|---:|---:|"
for P in 1 16; do
    base=$(col redis - "$P" 4)
    echo "| redis (no persistence) | - | $P | $base | $(col redis - "$P" 5) | $(col redis - "$P" 6) | 1.00x |"
    for target in leader follower; do
        for mode in linearizable lease stale; do
            rps=$(col "redraft-$target" $mode "$P" 4)
            ratio=$(awk -v a="$rps" -v b="$base" 'BEGIN{ if (b > 0) printf "%.2fx", a / b; else print "-" }')
            echo "| redraft $target | $mode | $P | $rps | $(col "redraft-$target" $mode "$P" 5) | $(col "redraft-$target" $mode "$P" 6) | $ratio |"
        done
    done
done
echo
for target in leader follower; do
    port=$LEADER
    [ $target = follower ] && port=$FOLLOWER
    echo "INFO reads on the $target:"
    redis-cli -p "$port" INFO reads | tr -d '\r' | grep -E '^(reads_|read_index|lease_)' | paste -sd ' ' -
done
