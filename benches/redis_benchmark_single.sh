#!/usr/bin/env bash
# Issue-3 figures: `redis-benchmark -t set,get -n N -c 50`, without and with `-P 16`, against
# a single-node redraft (release build) and Debian's redis-server (no persistence, and
# `appendfsync always`), started side by side, in interleaved rounds.
#
# Usage: benches/redis_benchmark_single.sh [-n REQUESTS] [-r ROUNDS]
# Needs: redis-tools and redis-server. Prints a markdown table of medians and the ratio
# redraft / Redis (no persistence) per row.
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
for t in redis-benchmark redis-cli redis-server; do
    command -v $t >/dev/null || { echo "need $t: apt-get install redis-tools redis-server" >&2; exit 1; }
done

bench_init
cat > "$WORK/single.toml" <<TOML
[cluster]
name = "bench-single"
[[node]]
id = 1
raft_addr = "127.0.0.1:17201"
redis_addr = "127.0.0.1:16481"
data_dir = "$WORK/node1"
TOML
"$BIN" --config "$WORK/single.toml" --node 1 --log warn 2>"$WORK/node1.log" &
PIDS+=($!)
start_redis 16490 --appendonly no
start_redis 16491 --appendonly yes --appendfsync always
for _ in $(seq 1 100); do
    [ "$(redis-cli -p 16481 ROLE 2>/dev/null | head -1)" = master ] && break
    sleep 0.1
done
[ "$(redis-cli -p 16481 ROLE 2>/dev/null | head -1)" = master ] || { echo "redraft did not start" >&2; cat "$WORK/node1.log" >&2; exit 1; }

SYSTEMS=("redraft:16481" "redis:16490" "redis-fsync-always:16491")
RAW=$WORK/raw.csv
: >"$RAW"
for round in $(seq 1 "$ROUNDS"); do
    for P in 1 16; do
        for s in "${SYSTEMS[@]}"; do
            name=${s%%:*}; port=${s##*:}
            redis-benchmark -p "$port" -t set,get -n "$N" -c 50 -P "$P" -q --csv 2>/dev/null |
                tail -n +2 | tr -d '"' |
                awk -F, -v s="$name" -v p="$P" '{print s "," p "," $1 "," $2 "," $5 "," $7}' >>"$RAW"
        done
    done
done

field() { awk -F, -v s="$1" -v p="$2" -v t="$3" -v f="$4" '$1==s && $2==p && $3==t {print $f}' "$RAW" | median; }
echo "redis-benchmark -t set,get -n $N -c 50, median of $ROUNDS interleaved rounds, $(nproc) cores"
echo
echo "| test | pipeline | redraft req/s | Redis req/s | redraft / Redis | Redis fsync-always req/s | redraft p50 ms | Redis p50 ms |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for P in 1 16; do
    for t in SET GET; do
        a=$(field redraft $P $t 4); b=$(field redis $P $t 4); c=$(field redis-fsync-always $P $t 4)
        pa=$(field redraft $P $t 5); pb=$(field redis $P $t 5)
        ratio=$(awk -v a="$a" -v b="$b" 'BEGIN{ if (b > 0) printf "%.2fx", a / b }')
        echo "| $t | $P | $a | $b | $ratio | $c | $pa | $pb |"
    done
done
