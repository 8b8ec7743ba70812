#!/usr/bin/env bash
# TLS cost on the client port: `redis-benchmark -t set,get -n N -c 50`, without and with
# `-P 16`, over plain TCP and over TLS (TLS 1.3, mutual: a client certificate), against one
# single-node redraft (release build) that serves both ports, and the same against Debian's
# redis-server with its own TLS port, all in interleaved rounds. Certificates from
# `redraft cert`.
#
# Usage: benches/tls.sh [-n REQUESTS] [-r ROUNDS]
# Needs: redis-tools and redis-server. Prints a markdown table of medians and, per row, TLS /
# plain for redraft and for Redis.
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
for t in redis-benchmark redis-cli redis-server; do
    command -v $t >/dev/null || { echo "need $t: apt-get install redis-tools redis-server" >&2; exit 1; }
done

bench_init
need_free_ports 17211 16501 16502 16510 16511
C=$WORK/certs
cat > "$WORK/tls.toml" <<TOML
[cluster]
name = "bench-tls"
[[node]]
id = 1
raft_addr = "127.0.0.1:17211"
redis_addr = "127.0.0.1:16501"
tls_addr = "127.0.0.1:16502"
data_dir = "$WORK/node1"
tls_cert_file = "$C/node1.crt"
tls_key_file = "$C/node1.key"
[tls]
ca_cert_file = "$C/ca.crt"
TOML
"$BIN" cert --config "$WORK/tls.toml" --out "$C" >/dev/null
"$BIN" --config "$WORK/tls.toml" --node 1 --log warn 2>"$WORK/node1.log" &
PIDS+=($!)
start_redis 16510 --appendonly no --tls-port 16511 --tls-cert-file "$C/node1.crt" \
    --tls-key-file "$C/node1.key" --tls-ca-cert-file "$C/ca.crt"
for _ in $(seq 1 100); do
    [ "$(redis-cli -p 16501 ROLE 2>/dev/null | head -1)" = master ] && break
    sleep 0.1
done
[ "$(redis-cli -p 16501 ROLE 2>/dev/null | head -1)" = master ] || { echo "redraft did not start" >&2; cat "$WORK/node1.log" >&2; exit 1; }
TLS=(--tls --cacert "$C/ca.crt" --cert "$C/client.crt" --key "$C/client.key")

# system:port:tls
SYSTEMS=("redraft:16501:plain" "redraft:16502:tls" "redis:16510:plain" "redis:16511:tls")
RAW=$WORK/raw.csv
: >"$RAW"
for round in $(seq 1 "$ROUNDS"); do
    for P in 1 16; do
        for s in "${SYSTEMS[@]}"; do
            IFS=: read -r name port mode <<<"$s"
            extra=()
            [ "$mode" = tls ] && extra=("${TLS[@]}")
            redis-benchmark -p "$port" "${extra[@]}" -t set,get -n "$N" -c 50 -P "$P" -q --csv 2>/dev/null |
                tail -n +2 | tr -d '"' |
                awk -F, -v s="$name-$mode" -v p="$P" '{print s "," p "," $1 "," $2 "," $5}' >>"$RAW"
        done
    done
done

field() { awk -F, -v s="$1" -v p="$2" -v t="$3" -v f="$4" '$1==s && $2==p && $3==t {print $f}' "$RAW" | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b > 0) printf "%.2fx", a / b }'; }
echo "redis-benchmark -t set,get -n $N -c 50, median of $ROUNDS interleaved rounds, $(nproc) cores"
echo
echo "| test | pipeline | redraft plain req/s | redraft TLS req/s | TLS / plain | Redis plain req/s | Redis TLS req/s | TLS / plain | redraft TLS p50 ms |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
for P in 1 16; do
    for t in SET GET; do
        a=$(field redraft-plain $P $t 4); b=$(field redraft-tls $P $t 4)
        c=$(field redis-plain $P $t 4); d=$(field redis-tls $P $t 4)
        echo "| $t | $P | $a | $b | $(ratio "$b" "$a") | $c | $d | $(ratio "$d" "$c") | $(field redraft-tls $P $t 5) |"
    done
done
