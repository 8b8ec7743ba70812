function nm(s){ sub(/-.*/,"",s); return s }
{ t=$1; who=$2; n=nm(who); ev=$4; a=$5; b=$6 }
n=="L" && ev=="exit_recvfrom" && $5=="0x131" { if (st) emit(); st=1; T["recv"]=t; next }
!st { next }
n=="L" && ev=="enter_pwrite64" && !("pw" in T) { T["pw"]=t }
n=="L" && ev=="enter_sendto" && b=="0x00000157," && !("ae" in T) { T["ae"]=t }
who=="L-sync" && ev=="enter_fdatasync" && !("lfs" in T) { T["lfs"]=t }
who=="L-sync" && ev=="exit_fdatasync" && !("lfe" in T) { T["lfe"]=t }
n=="F2" && ev=="exit_recvfrom" && a=="0x157" && !("frecv" in T) { T["frecv"]=t }
n=="F2" && ev=="enter_pwrite64" && ("frecv" in T) && !("fpw" in T) { T["fpw"]=t }
who=="F2-sync" && ev=="enter_fdatasync" && ("fpw" in T) && !("ffs" in T) { T["ffs"]=t }
who=="F2-sync" && ev=="exit_fdatasync" && ("ffs" in T) && !("ffe" in T) { T["ffe"]=t }
n=="F2" && ev=="enter_sendto" && b=="0x0000000a," && ("ffe" in T) && !("fans" in T) { T["fans"]=t }
n=="L" && ev=="enter_sendto" && b=="0x00000016," && !("probe" in T) { T["probe"]=t }
n=="L" && ev=="enter_sendto" && b=="0x00000005," && !("reply" in T) { T["reply"]=t }
n=="F2" && ev=="exit_recvfrom" && a=="0x16" && ("probe" in T) && !("fprobe" in T) { T["fprobe"]=t }
n=="F2" && ev=="enter_sendto" && b=="0x00000045," && !("event" in T) { T["event"]=t }
function emit(   k) {
  split("recv pw ae frecv fpw ffs ffe fans probe fprobe event", K, " ");
  ok=1; for (i=1;i<=11;i++) if (!(K[i] in T)) ok=0;
  if (ok) { line=""; for (i=2;i<=11;i++) line=line" "(T[K[i]]-T[K[i-1]]); line=line" | lfs-pw "(T["lfs"]-T["pw"])" lfsync "(T["lfe"]-T["lfs"])" reply-probe "(T["reply"]-T["probe"])" total "(T["event"]-T["recv"]); print line }
  delete T; st=0
}
