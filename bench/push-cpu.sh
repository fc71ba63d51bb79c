#!/usr/bin/env bash
# bench/push-cpu.sh — CPU per sample and wake-ups of two `push` builds, side by side.
#
# Starts influxd and two mosquittos on 127.0.0.1 (throw-away config and data), then six
# fluxstat processes at once, all pinned to one core: OLD and NEW, each with no
# pusher, with --influx-url and with --mqtt, at --interval 200ms. After they
# settle, it sums each process's CPU time over SAMPLES samples (all threads,
# kernel included: /proc/PID/task/*/schedstat), and by thread its voluntary
# context switches (wake-ups after sleeping) and CPU time. Run side by side, the machine's
# noise hits both builds alike: compare them, not either with an earlier run.
# BENCHMARKS.md, "Pushing: CPU per sample and the artefact", was measured with it.
#
# Usage: bench/push-cpu.sh OLD_BIN NEW_BIN [SAMPLES]     (default 100 samples, 20 s)
# Environment: BENCH_SERVER_CPU (core for the six, default 0), BENCH_SETTLE_SECS (5).
# Needs influxd (1.x) and mosquitto. Everything is stopped on exit.
set -euo pipefail

[ $# -ge 2 ] || { sed -n 2,17p "$0" >&2; exit 2; }
old=$1 new=$2 samples=${3:-100}
cpu=${BENCH_SERVER_CPU:-0} settle=${BENCH_SETTLE_SECS:-5}
for b in "$old" "$new"; do [ -x "$b" ] || { echo "push-cpu.sh: not executable: $b" >&2; exit 2; }; done
for t in influxd mosquitto; do command -v $t >/dev/null || { echo "push-cpu.sh: needs $t" >&2; exit 2; }; done

tmp=$(mktemp -d /tmp/fluxstat-pushcpu.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ip=$(port) ip2=$(port) mp_old=$(port) mp_new=$(port)
cat >"$tmp/influxdb.conf" <<CONF
reporting-disabled = true
bind-address = "127.0.0.1:$ip2"
[meta]
  dir = "$tmp/meta"
[data]
  dir = "$tmp/data"
  wal-dir = "$tmp/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:$ip"
  log-enabled = false
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
CONF
influxd -config "$tmp/influxdb.conf" >"$tmp/influxd.log" 2>&1 & pids+=($!)
# A broker per build: both publish as fluxstat-<host>, and a broker drops the
# older of two connections with one client id.
for build in old new; do
  p=$mp_old; [ $build = new ] && p=$mp_new
  printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$p" >"$tmp/mosquitto-$build.conf"
  mosquitto -c "$tmp/mosquitto-$build.conf" >"$tmp/mosquitto-$build.log" 2>&1 & pids+=($!)
done
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$ip/ping" >/dev/null && break; sleep 0.2; done
curl -sf -XPOST "http://127.0.0.1:$ip/query" --data-urlencode 'q=CREATE DATABASE fluxstat' >/dev/null

names=() fx=()
for build in old new; do
  bin=$old mp=$mp_old; [ $build = new ] && bin=$new mp=$mp_new
  for mode in none influx mqtt; do
    args=(--listen 127.0.0.1:0 --interval 200ms)
    [ $mode = influx ] && args+=(--influx-url "http://127.0.0.1:$ip/write?db=fluxstat")
    [ $mode = mqtt ] && args+=(--mqtt "mqtt://127.0.0.1:$mp")
    taskset -c "$cpu" "$bin" "${args[@]}" >"$tmp/$build-$mode.log" 2>&1 & pids+=($!)
    names+=("$build-$mode") fx+=($!)
  done
done
sleep "$settle"
python3 - "$samples" "${#fx[@]}" "${names[@]}" "${fx[@]}" <<'PY'
import os, sys, time
samples, n = int(sys.argv[1]), int(sys.argv[2])
names, pids = sys.argv[3:3 + n], [int(p) for p in sys.argv[3 + n:]]
def snap(pid):
    cpu, threads = 0, {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            ns = int(open(f"/proc/{pid}/task/{tid}/schedstat").read().split()[0])
            st = dict(l.split(":", 1) for l in open(f"/proc/{pid}/task/{tid}/status") if ":" in l)
            name = st["Name"].strip()
            v = int(st["voluntary_ctxt_switches"])
            cpu += ns
            a = threads.setdefault(name, [0, 0]); a[0] += v; a[1] += ns
        except (FileNotFoundError, ProcessLookupError):
            pass
    return cpu, threads
before = [snap(p) for p in pids]
time.sleep(samples * 0.2)
after = [snap(p) for p in pids]
print(f"{samples} samples at 200 ms, all six on one core; CPU per sample (all threads), "
      "then by thread: wake-ups (voluntary context switches) and CPU µs per sample")
for name, (c0, t0), (c1, t1) in zip(names, before, after):
    d = {t: [(t1[t][i] - t0.get(t, [0, 0])[i]) / samples for i in (0, 1)] for t in sorted(t1)}
    by = ", ".join(f"{t} {w:.2f}/{ns / 1000:.0f}" for t, (w, ns) in d.items() if w > 0 or ns > 1000)
    print(f"{name:12} {(c1 - c0) / samples / 1000:8.1f} µs   {by}")
PY
for f in "$tmp"/old-*.log "$tmp"/new-*.log; do
  grep -q "WARN\|ERROR" "$f" && { echo "$(basename "$f"):"; grep "WARN\|ERROR" "$f" | head -3; }
done
true
