#!/usr/bin/env bash
# bench/mounts.sh — what a sample costs on a host with many mounts (issue 10, item 6).
#
# For each count N it creates N tmpfs mounts (plus what the machine already has) in a
# private mount namespace, so nothing outside the benchmark sees them, and measures:
#   kernel   the kernel's own share of a sample: a tiny C loop that reads
#            /proc/self/mountinfo and calls statvfs on every mount it lists; wall
#            time and system CPU time per pass (median of the passes)
#   sample   fluxstat's `sample_duration_us` (median over the samples taken) and
#            its CPU time per sample (user + system, serialisation included)
#   rss      fluxstat's VmRSS and VmHWM after the samples
#   cg_peak  the peak memory charged to fluxstat's own memory cgroup (anonymous,
#            page cache and kernel memory: what a unit's MemoryMax= is compared to)
#   disks    `disks_total` of the last document, and how many had `usage: null`
#
# It is a benchmark, not a test: a poor figure never fails it. It needs root (mount
# namespaces), gcc and python3; all traffic goes to 127.0.0.1, and the namespace,
# its mounts and fluxstat end with the script.
#
# Usage: bench/mounts.sh [N...]            (default: 1000 5000 10000)
# Environment:
#   FLUXSTAT_BIN        use this binary instead of `cargo build --release`
#   BENCH_SAMPLES       samples to take per count                       10
#   BENCH_INTERVAL      fluxstat's --interval                           1s
#   BENCH_CPU_QUOTA     cap fluxstat at this percentage of one CPU (e.g. 20), in
#                       a CPU cgroup of its own; empty: no cap
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=(1000 5000 10000)
[ "$(id -u)" = 0 ] || { echo "mounts.sh: needs root for a private mount namespace" >&2; exit 1; }
if [ -z "${FLUXSTAT_BIN:-}" ]; then
  (cd "$here/.." && cargo build --release --quiet)
  FLUXSTAT_BIN="$here/../target/release/fluxstat"
fi
tmp=$(mktemp -d /tmp/fluxstat-mounts.XXXXXX)
cg_name=$(basename "$tmp")
cg_dirs=()
cleanup() {
  local d
  for d in "${cg_dirs[@]}"; do rmdir "$d" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

# A memory cgroup (and, with BENCH_CPU_QUOTA, a CPU cgroup) for fluxstat alone,
# v1 or v2; without them the cg_peak column reads "-".
mem_cg="" cpu_cg=""
if [ -e /sys/fs/cgroup/cgroup.controllers ]; then
  if mkdir "/sys/fs/cgroup/$cg_name" 2>/dev/null; then
    cg_dirs+=("/sys/fs/cgroup/$cg_name")
    mem_cg="/sys/fs/cgroup/$cg_name" cpu_cg="/sys/fs/cgroup/$cg_name"
  fi
else
  mkdir "/sys/fs/cgroup/memory/$cg_name" 2>/dev/null && cg_dirs+=("/sys/fs/cgroup/memory/$cg_name") \
    && mem_cg="/sys/fs/cgroup/memory/$cg_name"
  if [ -n "${BENCH_CPU_QUOTA:-}" ] && mkdir "/sys/fs/cgroup/cpu/$cg_name" 2>/dev/null; then
    cg_dirs+=("/sys/fs/cgroup/cpu/$cg_name")
    cpu_cg="/sys/fs/cgroup/cpu/$cg_name"
  fi
fi
if [ -n "${BENCH_CPU_QUOTA:-}" ]; then
  quota=$((BENCH_CPU_QUOTA * 1000))
  if [ -e "$cpu_cg/cpu.max" ]; then echo "$quota 100000" >"$cpu_cg/cpu.max"
  elif [ -e "$cpu_cg/cpu.cfs_quota_us" ]; then echo 100000 >"$cpu_cg/cpu.cfs_period_us"; echo "$quota" >"$cpu_cg/cpu.cfs_quota_us"
  else echo "mounts.sh: cannot make a CPU cgroup for BENCH_CPU_QUOTA" >&2; exit 1
  fi
fi

cat >"$tmp/kernel.c" <<'EOF'
/* One pass = read /proc/self/mountinfo, statvfs every mount point in it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <time.h>

static void unescape(char *s) {
    char *o = s;
    for (; *s; s++, o++) {
        if (s[0] == '\\' && s[1] >= '0' && s[1] <= '7' && s[2] && s[3]) {
            *o = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
            s += 3;
        } else {
            *o = *s;
        }
    }
    *o = 0;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static double sys_time(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_stime.tv_sec + u.ru_stime.tv_usec / 1e6;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    int passes = argc > 1 ? atoi(argv[1]) : 10;
    double *wall = calloc(passes, sizeof *wall), *sys = calloc(passes, sizeof *sys);
    static char line[1 << 16];
    long mounts = 0;
    for (int p = 0; p < passes; p++) {
        double t0 = now(), s0 = sys_time();
        FILE *f = fopen("/proc/self/mountinfo", "r");
        if (!f) return 1;
        mounts = 0;
        while (fgets(line, sizeof line, f)) {
            char *save, *tok = strtok_r(line, " ", &save);
            for (int i = 0; tok && i < 4; i++) tok = strtok_r(NULL, " ", &save);
            if (!tok) continue;
            unescape(tok);
            struct statvfs st;
            statvfs(tok, &st);
            mounts++;
        }
        fclose(f);
        wall[p] = now() - t0;
        sys[p] = sys_time() - s0;
    }
    qsort(wall, passes, sizeof *wall, cmp);
    qsort(sys, passes, sizeof *sys, cmp);
    printf("%ld %.3f %.3f\n", mounts, wall[passes / 2] * 1e3, sys[passes / 2] * 1e3);
    return 0;
}
EOF
gcc -O2 -o "$tmp/kernel" "$tmp/kernel.c"

cat >"$tmp/run.py" <<'EOF'
import ctypes, json, os, socket, statistics, subprocess, sys, time

n, bin_, kernel, samples, interval, mem_cg, cpu_cg, base = sys.argv[1:9]
n, samples = int(n), int(samples)
libc = ctypes.CDLL(None, use_errno=True)
base = os.fsencode(base)
os.makedirs(base, exist_ok=True)
for i in range(n):
    p = base + b"/%d" % i
    os.makedirs(p, exist_ok=True)
    if libc.mount(b"none", p, b"tmpfs", 0, b"size=64k") != 0:
        sys.exit("mount %s: %s" % (p, os.strerror(ctypes.get_errno())))

mounts, kwall, ksys = subprocess.check_output([kernel, "20"]).split()

s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
cmd = [bin_, "--listen", "127.0.0.1:%d" % port, "--interval", interval]
# Into the cgroups before exec, so that every page fluxstat touches is charged there.
groups = [g for g in (mem_cg, cpu_cg) if g]
enter = "".join('echo $$ >"%s/cgroup.procs" && ' % g for g in dict.fromkeys(groups))
proc = subprocess.Popen(["sh", "-c", enter + 'exec "$@"', "sh"] + cmd, stderr=subprocess.DEVNULL)

def get():
    c = socket.create_connection(("127.0.0.1", port), timeout=30)
    c.sendall(b"GET /metrics HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        chunk = c.recv(1 << 16)
        if not chunk:
            break
        data += chunk
    c.close()
    return json.loads(data.split(b"\r\n\r\n", 1)[1])

def cg_peak_kib():
    for f in ("memory.peak", "memory.max_usage_in_bytes"):
        if mem_cg and os.path.exists(os.path.join(mem_cg, f)):
            return str(int(open(os.path.join(mem_cg, f)).read()) // 1024)
    return "-"

def status(pid, key):
    for line in open("/proc/%d/status" % pid):
        if line.startswith(key):
            return int(line.split()[1])

def cpu_ms(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) * 1000 / os.sysconf("SC_CLK_TCK")

try:
    deadline = time.time() + 120
    while True:
        try:
            doc = get()
            break
        except OSError:
            if time.time() > deadline:
                sys.exit("fluxstat did not answer")
            time.sleep(0.05)
    pid = proc.pid
    durations, seen = [], set()
    c0, t0 = cpu_ms(pid), None
    while len(durations) < samples and time.time() < deadline + 600:
        doc = get()
        u = doc["updated_at"]
        if u not in seen:
            seen.add(u)
            if t0 is None:
                c0, t0 = cpu_ms(pid), u
                continue
            durations.append(doc["fluxstat"]["sample_duration_us"])
        time.sleep(0.1)
    cpu = (cpu_ms(pid) - c0) / max(len(durations), 1)
    disks = doc["system"]["disk"]
    nulls = sum(1 for d in disks["disks"].values() if d["usage"] is None) if disks else -1
    print("%6d %7s %9s %9s %9.1f %9.1f %8d %8d %8s %7s %6s" % (
        n, mounts.decode(), kwall.decode(), ksys.decode(),
        statistics.median(durations) / 1000, cpu,
        status(pid, "VmRSS:"), status(pid, "VmHWM:"), cg_peak_kib(),
        disks["disks_total"] if disks else "null", nulls))
finally:
    proc.terminate()
    proc.wait(timeout=10)
EOF

echo "fluxstat: $FLUXSTAT_BIN; $(nproc) CPUs; kernel $(uname -r)${BENCH_CPU_QUOTA:+; CPUQuota=$BENCH_CPU_QUOTA}"
echo "# mounts: tmpfs mounts added; table: mountinfo lines; kernel: one read of mountinfo + statvfs"
echo "# of each line (ms wall, ms system CPU; median of 20); sample: median sample_duration_us (ms);"
echo "# cpu/sample: fluxstat CPU per sample incl. serialisation (ms); RSS/HWM and the cgroup's"
echo "# peak in KiB; disks listed; disks with null usage"
printf "%6s %7s %9s %9s %9s %9s %8s %8s %8s %7s %6s\n" mounts table kern_ms kern_sys sample_ms cpu/smpl rss_kib hwm_kib cg_peak disks nulls
for n in "${counts[@]}"; do
  unshare --mount --propagation private python3 "$tmp/run.py" "$n" "$FLUXSTAT_BIN" "$tmp/kernel" \
    "${BENCH_SAMPLES:-10}" "${BENCH_INTERVAL:-1s}" "$mem_cg" "$cpu_cg" "$tmp/m"
done
