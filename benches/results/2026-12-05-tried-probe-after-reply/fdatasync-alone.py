import os, time, sys
def prep(path, chunk, size=8<<20):
    fd = os.open(path, os.O_RDWR|os.O_CREAT|os.O_TRUNC, 0o644)
    os.posix_fallocate(fd, 0, size)
    z = b'\0'*chunk
    for off in range(0, size, chunk):
        os.pwrite(fd, z, off)
    os.fdatasync(fd)
    return fd
def run(fd, n=2000, rec=352, sync=True):
    pw=[]; fs=[]
    off=0
    buf=b'x'*rec
    for i in range(n):
        t0=time.perf_counter_ns(); os.pwrite(fd, buf, off); t1=time.perf_counter_ns()
        if sync: os.fdatasync(fd)
        t2=time.perf_counter_ns()
        pw.append(t1-t0); fs.append(t2-t1); off+=rec
    pw.sort(); fs.sort()
    return pw[len(pw)//2]/1000, pw[int(len(pw)*.9)]/1000, fs[len(fs)//2]/1000
for chunk in (1<<20, 1<<16, 4096):
    for rep in range(2):
        fd=prep('f.dat', chunk)
        print(f"zeros in {chunk:>8} B chunks: pwrite p50 {run(fd)[0]:.1f} us p90 {run(fd)[1]:.1f}", end='')
        fd2=prep('f.dat', chunk); r=run(fd2); print(f" | fresh: pwrite p50 {r[0]:.1f} p90 {r[1]:.1f} fdatasync p50 {r[2]:.1f} us")
        os.close(fd); os.close(fd2)
