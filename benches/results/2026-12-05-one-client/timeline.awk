# Formats `perf script -F comm,pid,tid,cpu,time,event,trace` of sched and syscall tracepoints
# into one line per event: microseconds since the first line, who (L = leader, F2/F3 =
# followers, G = the load generator; -w<tid%100> a tokio worker, -sync the WAL's sync thread),
# CPU, event, its main argument. Usage: awk -v L=PID -v F2=PID -v F3=PID -f timeline.awk
{
  split($2, pt, "/"); pid=pt[1]; tid=pt[2];
  name = (pid==L?"L":(pid==F2?"F2":(pid==F3?"F3":"G")));
  if ($1=="raft-wal-sync") name=name"-sync"; else name=name"-w"tid%100;
  t=$4; sub(":","",t); t=t*1e6;
  if (t0==0) t0=t;
  ev=$5; sub("syscalls:sys_","",ev); sub("sched:sched_","",ev); sub(":","",ev);
  rest="";
  if (ev=="wakeup") { for(i=6;i<=NF;i++) if ($i ~ /^pid=/) rest=$i; }
  else if (ev=="switch") { for(i=6;i<=NF;i++) if ($i ~ /prev_state|next_pid/) rest=rest" "$i; }
  else if (ev ~ /enter_(sendto|write|pwrite64)/) { rest=$7" "$11; }
  else if (ev ~ /exit/) rest=$6;
  else if (ev ~ /futex/) rest=$9;
  else if (ev ~ /epoll/) rest="to="$NF;
  printf "%8.0f %-9s %s %s %s\n", t-t0, name, $3, ev, rest;
}
