#!/usr/bin/env bash
# Differential fuzzing of the Redis command surface: the same random command stream (strings,
# keys, hashes, expiry, MULTI/EXEC/WATCH, SCAN family, scripts, connection commands; RESP2 and
# RESP3; adversarial numbers and bytes; wrong arity and types; pipelines) to one redraft node
# and to a real redis-server, raw replies compared byte for byte (`fuzz.py`; replies that are
# nondeterministic by design, e.g. KEYS order, SCAN cursors, random fields and TTLs, are
# compared by shape or within a tolerance). Bounded: SEEDS x N commands, FLUSHALL between
# seeds. Not part of CI (a TTL can differ by a millisecond); a mismatch it finds goes into
# tests/testdata/*_differential.txt, which CI replays.
#
# Usage: fuzz/differential/run.sh [BIN] [SEEDS] [N]
#   BIN    the redraft binary (default target/release/redraft)
#   SEEDS  comma-separated seeds (default 0,1,2,3,4)
#   N      commands per seed (default 2000)
# Then `python3 fuzz/differential/mini.py SEED I` (with OURS/THEIRS set to the ports printed)
# shrinks the mismatch at command I of SEED to a minimal reproducer; `floatfuzz.py` compares
# INCRBYFLOAT/HINCRBYFLOAT/INCRBY parsing and formatting, `inlinefuzz.py` inline commands.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-target/release/redraft}
seeds=${2:-0,1,2,3,4}
n=${3:-2000}
ours=${OURS:-7300}
theirs=${THEIRS:-7310}
dir=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT
cat >"$dir/cluster.toml" <<TOML
[cluster]
name = "difffuzz"

[[node]]
id = 1
raft_addr = "127.0.0.1:$((ours + 1))"
redis_addr = "127.0.0.1:$ours"
data_dir = "$dir/node1"
TOML
"$bin" --config "$dir/cluster.toml" --node 1 >"$dir/redraft.log" 2>&1 &
pids+=($!)
redis-server --port "$theirs" --save '' --appendonly no >"$dir/redis.log" 2>&1 &
pids+=($!)
for port in "$ours" "$theirs"; do
    for _ in $(seq 100); do
        redis-cli -p "$port" PING 2>/dev/null | grep -q PONG && break
        sleep 0.1
    done
done
echo "redraft on $ours, redis-server on $theirs" >&2
status=0
OURS=$ours THEIRS=$theirs python3 "$here/fuzz.py" "$seeds" "$n" || status=$?
if ! kill -0 "${pids[0]}" 2>/dev/null; then
    echo "redraft died; its log:" >&2
    tail -20 "$dir/redraft.log" >&2
    status=1
fi
exit $status
