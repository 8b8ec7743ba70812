# Per watch event, from a timeline.awk listing (L = leader, F2 = the watcher's node, F3 = the
# other follower, G = the load generator): µs from the put's send to each stage. The put is
# the generator's 304-byte send (0x130); 0xf-byte sends are the leader's flush announcements;
# 0x44 the keyspace notification. Usage: awk -f watch-stages.awk timeline.txt
function out() {
  if (t0 && lp && ae && f2r && f2p && f2s && f2e && lfe && ann && f2a && ntf && gr)
    printf "%d %d %d %d %d %d %d %d %d %d %d %d\n", lp-t0, ae-t0, f2r-t0, f2p-t0, f2s-t0, f2e-t0, lfe-t0, ann-t0, f2a-t0, f3e-t0, ntf-t0, gr-t0;
}
/G-redraft-loadgen.*enter_sendto 0x0000000b, 0x00000130/ { out(); t0=$1; lp=ae=f2r=f2p=f2s=f2e=lfe=ann=f2a=f3e=ntf=gr=0; next }
t0 && /^ +[0-9]+ L-.*enter_pwrite64/ && !lp { lp=$1 }
t0 && /^ +[0-9]+ L-.*enter_sendto 0x[0-9a-f]+, 0x0000015c/ && !ae { ae=$1 }
t0 && /^ +[0-9]+ F2-.*exit_recvfrom 0x15c$/ && !f2r { f2r=$1 }
t0 && /^ +[0-9]+ F2-.*enter_pwrite64/ && !f2p { f2p=$1 }
t0 && /F2-raft-wal-sync.*enter_fdatasync/ && !f2s { f2s=$1 }
t0 && /F2-raft-wal-sync.*exit_fdatasync/ && !f2e { f2e=$1 }
t0 && /L-raft-wal-sync.*exit_fdatasync/ && !lfe { lfe=$1 }
t0 && /^ +[0-9]+ L-.*enter_sendto 0x[0-9a-f]+, 0x0000000f/ && !ann { ann=$1 }
t0 && /^ +[0-9]+ F2-.*exit_recvfrom 0xf$/ && !f2a { f2a=$1 }
t0 && /F3-raft-wal-sync.*exit_fdatasync/ && !f3e { f3e=$1 }
t0 && /^ +[0-9]+ F2-.*enter_sendto 0x[0-9a-f]+, 0x00000044/ && !ntf { ntf=$1 }
t0 && /G-.*exit_recvfrom 0x44/ && !gr { gr=$1 }
END { out() }
