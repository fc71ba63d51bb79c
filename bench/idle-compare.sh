#!/usr/bin/env bash
# bench/idle-compare.sh — idle wake-ups and CPU per thread of two builds, side by side.
#
# Starts both binaries at once, idle (no client), pinned to the same core, waits for
# them to settle, then takes one window of `bench/helpers.py threads` over the same
# seconds for each (the helpers on another core). On a shared, noisy machine the
# noise then hits both alike: compare the two, not either with an earlier run.
# BENCHMARKS.md, "Idle: wake-ups and CPU, thread by thread", was measured with it.
#
# Usage: bench/idle-compare.sh OLD_BIN NEW_BIN [WINDOW_SECS] [-- FLUXSTAT_ARGS...]
#   e.g. bench/idle-compare.sh /tmp/fluxstat-old target/release/fluxstat 60
#        bench/idle-compare.sh A B 60 -- --sysfs tests/fixtures/x86/sys
# Environment:
#   BENCH_SERVER_CPU   core both servers are pinned to         0
#   BENCH_CLIENT_CPU   core the measuring helpers run on       1
#   BENCH_SETTLE_SECS  wait after start before the window      5
# Listens on 127.0.0.1 only (ports chosen by the kernel); both servers are stopped on exit.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
[ $# -ge 2 ] || { sed -n 2,16p "$0" >&2; exit 2; }
old=$1 new=$2
shift 2
window=60
if [ $# -gt 0 ] && [ "$1" != "--" ]; then window=$1; shift; fi
[ $# -gt 0 ] && [ "$1" = "--" ] && shift
server_cpu=${BENCH_SERVER_CPU:-0} client_cpu=${BENCH_CLIENT_CPU:-1} settle=${BENCH_SETTLE_SECS:-5}
for b in "$old" "$new"; do [ -x "$b" ] || { echo "idle-compare.sh: not executable: $b" >&2; exit 2; }; done

tmp=$(mktemp -d /tmp/fluxstat-idle.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

for name in old new; do
  bin=$old; [ "$name" = new ] && bin=$new
  taskset -c "$server_cpu" "$bin" --listen 127.0.0.1:0 "$@" >"$tmp/$name.log" 2>&1 &
  pids+=($!)
done
sleep "$settle"
for i in 0 1; do
  kill -0 "${pids[$i]}" 2>/dev/null || { echo "idle-compare.sh: a server exited:" >&2; cat "$tmp"/*.log >&2; exit 1; }
done
taskset -c "$client_cpu" python3 "$here/helpers.py" threads "${pids[0]}" --window "$window" >"$tmp/old.txt" &
a=$!
taskset -c "$client_cpu" python3 "$here/helpers.py" threads "${pids[1]}" --window "$window" >"$tmp/new.txt" &
b=$!
wait "$a" "$b"
echo "old: $old (${window} s idle, core $server_cpu)"
cat "$tmp/old.txt"
echo
echo "new: $new"
cat "$tmp/new.txt"
