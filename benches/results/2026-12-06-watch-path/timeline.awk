# Formats `perf script -F comm,pid,tid,cpu,time,event,trace` of sched and syscall tracepoints
# into one line per event: µs since the first line, who (L = leader, F2 = the watcher's node,
# F3 = the other follower, G = the load generator; then the thread's name and tid % 1000),
# CPU, event, its main argument. Usage: awk -v L=PID -v F2=PID -v F3=PID -v G=PID -f timeline.awk
{
  split($2, pt, "/"); pid=pt[1]; tid=pt[2];
  name = (pid==L?"L":(pid==F2?"F2":(pid==F3?"F3":(pid==G?"G":"?"))));
  name=name"-"$1"-"tid%1000;
  t=$4; sub(":","",t); t=t*1e6;
  if (t0==0) t0=t;
  ev=$5; sub("syscalls:sys_","",ev); sub("sched:sched_","",ev); sub(":","",ev);
  rest="";
  if (ev=="wakeup") { for(i=6;i<=NF;i++) if ($i ~ /^(comm|pid|target_cpu)=/) rest=rest" "$i; }
  else if (ev=="switch") { for(i=6;i<=NF;i++) if ($i ~ /prev_state|next_comm|next_pid/) rest=rest" "$i; }
  else if (ev ~ /enter_(sendto|write|writev|pwrite64)/) { rest=$7" "$11; }
  else if (ev ~ /exit/) rest=$6;
  printf "%9.0f %-28s %s %s %s\n", t-t0, name, $3, ev, rest;
}
