#!/usr/bin/env bash
# Client-side caching and failover discovery, as a service using redis-py sees them, in one run
# (results in the README):
#   1. GET of a hot set of 100 configuration keys through redis-py 5 with one connection, for
#      SECONDS per row: uncached vs redis-py's client-side cache (`cache_config`, CLIENT
#      TRACKING), on a follower and on the leader of a local three-node redraft cluster
#      (release build), with no writes and with 10 writes/s to the set through the leader;
#      uncached against a local Redis for reference (redis-py refuses to cache against Redis
#      older than 7.4, and the Redis here is 7.0). Medians of ROUNDS interleaved rounds.
#   2. Failover: the longest time without a successful write (SET every 5 ms) around a kill -9
#      of the leader, for a redis-py Sentinel client (every node as a sentinel) and a plain
#      client that moves to the next node on an error; TRIALS fresh clusters each, median.
#
# Usage: benches/client_cache.sh [-s SECONDS] [-r ROUNDS] [-t TRIALS]
# Needs: redis-server, redis-cli, python3 with pip (redis-py 5.2.1 is installed into the scratch
# folder).
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh

SECONDS_PER_ROW=5
ROUNDS=3
TRIALS=5
while getopts "s:r:t:" o; do
    case $o in
        s) SECONDS_PER_ROW=$OPTARG ;;
        r) ROUNDS=$OPTARG ;;
        t) TRIALS=$OPTARG ;;
        *) echo "usage: $0 [-s SECONDS] [-r ROUNDS] [-t TRIALS]" >&2; exit 2 ;;
    esac
done
need_tools redis-cli redis-server python3

bench_init
python3 -m pip install --quiet --disable-pip-version-check --target "$WORK/py" redis==5.2.1 \
    2>/dev/null
export PYTHONPATH=$WORK/py PYTHONDONTWRITEBYTECODE=1
BASE=${BENCH_PORT_BASE:-17600}
need_free_ports $((BASE + 11)) $((BASE + 101)) $((BASE + 201))

start_cluster $((BASE + 100)) $((BASE + 200))
start_redis $((BASE + 11)) --appendonly no
RAW=$WORK/reads.csv
: >"$RAW"
for round in $(seq 1 "$ROUNDS"); do
    for w in 0 10; do
        for target in "redraft-follower:$FOLLOWER" "redraft-leader:$LEADER" "redis:$((BASE + 11))"; do
            name=${target%%:*} port=${target##*:}
            writer=$port
            [ "$name" = redis ] || writer=$LEADER
            for mode in uncached cached; do
                [ "$name" = redis ] && [ "$mode" = cached ] && continue
                args=()
                [ "$w" = 0 ] || args=(--writes-per-s "$w" --writer "127.0.0.1:$writer")
                line=$(python3 benches/clients/cache_reads.py "$mode" "127.0.0.1:$port" \
                    "$SECONDS_PER_ROW" 100 "${args[@]}")
                echo "$name,$w,$line" >>"$RAW"
            done
        done
    done
done
for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
wait 2>/dev/null || true
PIDS=()

echo "## GET of 100 hot keys through redis-py 5.2.1, one connection, ${SECONDS_PER_ROW} s per row"
echo "## (median of $ROUNDS interleaved rounds, $(nproc) cores)"
echo
echo "| target | writes/s to the set | client | GET/s | p50 µs | p99 µs | served from cache |"
echo "|---|---:|---|---:|---:|---:|---:|"
for w in 0 10; do
    for name in redraft-follower redraft-leader redis; do
        for mode in uncached cached; do
            sel() { awk -F, -v n="$name" -v w="$w" -v m="$mode" -v c="$1" \
                '$1==n && $2==w && $3==m {print $c}' "$RAW" | median; }
            [ "$(sel 4)" = "-" ] && continue
            echo "| $name | $w | $mode | $(sel 4) | $(sel 5) | $(sel 6) | $(sel 7) |"
        done
    done
done

FO=$WORK/failover.csv
: >"$FO"
for trial in $(seq 1 "$TRIALS"); do
    for mode in sentinel loop; do
        rm -rf "$WORK"/node?
        start_cluster $((BASE + 100)) $((BASE + 200))
        # The leader first: both clients start on it, as they would in production.
        nodes=("127.0.0.1:$LEADER")
        for p in "${CLUSTER_PORTS[@]}"; do [ "$p" != "$LEADER" ] && nodes+=("127.0.0.1:$p"); done
        python3 benches/clients/failover_writer.py "$mode" bench 8 "${nodes[@]}" \
            >"$WORK/fo.out" &
        client=$!
        sleep 3
        for i in 0 1 2; do
            [ "${CLUSTER_PORTS[$i]}" = "$LEADER" ] && kill -9 "${PIDS[$i]}"
        done
        wait "$client"
        echo "$mode,$(cat "$WORK/fo.out")" >>"$FO"
        for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
        wait 2>/dev/null || true
        PIDS=()
    done
done
echo
echo "## Longest time without a successful write around a kill -9 of the leader"
echo "## (SET every 5 ms, $TRIALS fresh clusters per client)"
echo
echo "| client | median ms | all trials ms |"
echo "|---|---:|---|"
for mode in sentinel loop; do
    all=$(awk -F, -v m="$mode" '$1==m {print $2}' "$FO" | sort -n | paste -sd ' ')
    med=$(awk -F, -v m="$mode" '$1==m {print $2}' "$FO" | median)
    echo "| $mode | $med | $all |"
done
