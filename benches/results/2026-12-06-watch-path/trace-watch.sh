#!/usr/bin/env bash
# How the watch figures here were taken: a three-node cluster (benches/lib.sh), the
# watch-latency workload with the writer on the leader and the watcher on a follower (a put
# every 10 ms), and `perf record` of sched and syscall tracepoints on the three nodes and the
# load generator for one second. Then, by hand:
#   perf script -i perf.data -F comm,pid,tid,cpu,time,event,trace > script.txt
#   awk -v L=<leader pid> -v F2=<watcher node pid> -v F3=<other pid> -v G=<loadgen pid> \
#       -f timeline.awk script.txt > tl.txt
#   awk -f watch-stages.awk tl.txt > stages.txt
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.."
. benches/lib.sh
bench_init redraft-loadgen
start_cluster 26200 26300
LG=$PWD/target/release/redraft-loadgen
EPS="127.0.0.1:$LEADER,127.0.0.1:$FOLLOWER"
pids=$(IFS=,; echo "${PIDS[*]}")
W=(--system redraft --endpoints "$EPS" --workload watch-latency --mode keyspace --value-size 256)
"$LG" run "${W[@]}" --duration 3s >/dev/null
"$LG" run "${W[@]}" --duration 3s >"$WORK/run.json" &
lgp=$!
sleep 0.3
perf record -q -o "${OUT:-/tmp}/perf.data" -e sched:sched_switch,sched:sched_wakeup,\
syscalls:sys_enter_sendto,syscalls:sys_enter_write,syscalls:sys_enter_pwrite64,\
syscalls:sys_enter_fdatasync,syscalls:sys_exit_fdatasync,syscalls:sys_enter_recvfrom,\
syscalls:sys_exit_recvfrom -p "$pids,$lgp" -- sleep 1
wait $lgp
echo "leader port $LEADER, watcher port $FOLLOWER; node pids ${PIDS[*]} (ports 26301..26303 in order); loadgen $lgp"
cat "$WORK/run.json"
