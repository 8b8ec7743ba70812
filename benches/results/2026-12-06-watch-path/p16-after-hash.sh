#!/usr/bin/env bash
# SET -P 16 at the leader of a fresh three-node cluster, then 400,000 one-field HSETs to one
# hash of 10,000 fields, then three more rounds of SET -P 16 (another key): what a hash's
# history costs unrelated writes. Usage: [REDRAFT_BIN=PATH] p16-after-hash.sh LABEL
# (interleave two builds by running it alternately). Prints: LABEL fresh N after-hset N N N.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.."
. benches/lib.sh
bench_init
start_cluster 18400 18500
p16() {
    redis-benchmark -q --csv -p "$LEADER" -n 400000 -c 50 -P 16 -t set 2>/dev/null |
        tail -1 | awk -F, '{gsub(/"/,""); print $2}'
}
f=$(p16)
redis-benchmark -q -p "$LEADER" -n 400000 -c 50 -r 10000 -t hset >/dev/null 2>&1
echo "$1 fresh $f after-hset $(p16) $(p16) $(p16)"
