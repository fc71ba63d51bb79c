#!/usr/bin/env bash
# bench/opt-levels.sh — size and speed of the release build at opt-level 3, "s"
# and "z", measured in one run so the ratios are comparable on a noisy machine.
#
# Builds three host release binaries (target/opt-*), then, ROUNDS times in turn,
# loads each with wrk (GET /metrics, 50 keep-alive connections, server pinned to
# core 0 and wrk to core 1, BENCH_LOAD_SECS each) and reads the server's CPU time.
# Prints size, requests/s and server CPU µs per request (median over rounds).
# Traffic goes only to 127.0.0.1; everything started is stopped on exit.
#
# Usage: bench/opt-levels.sh        (env: ROUNDS=3, BENCH_LOAD_SECS=5)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
SECS=${BENCH_LOAD_SECS:-5}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }

pids=()
cleanup() { for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

levels=(3 s z)
for l in "${levels[@]}"; do
  CARGO_TARGET_DIR=target/opt-$l CARGO_PROFILE_RELEASE_OPT_LEVEL=$l cargo build --release -q
done

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
declare -A rps cpu
for round in $(seq "$ROUNDS"); do
  for l in "${levels[@]}"; do
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    taskset -c 0 "target/opt-$l/release/fluxstat" --listen "127.0.0.1:$port" --log-level warn &
    pid=$!; pids+=("$pid")
    for _ in $(seq 100); do curl -fs "127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.05; done
    before=$(ticks "$pid")
    out=$(taskset -c 1 wrk -t1 -c50 -d"${SECS}s" "http://127.0.0.1:$port/metrics")
    after=$(ticks "$pid")
    kill "$pid"; wait "$pid" 2>/dev/null || true
    reqs=$(awk '/requests in/{print $1}' <<<"$out")
    r=$(awk '/Requests\/sec/{printf "%d", $2}' <<<"$out")
    c=$(awk -v t=$((after - before)) -v hz="$hz" -v n="$reqs" 'BEGIN{printf "%.2f", t / hz * 1e6 / n}')
    rps[$l]="${rps[$l]:-} $r"; cpu[$l]="${cpu[$l]:-} $c"
  done
done

median() { tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
printf '%-10s %12s %12s %18s\n' opt-level "size (B)" "req/s" "CPU µs/request"
for l in "${levels[@]}"; do
  size=$(stat -c %s "target/opt-$l/release/fluxstat")
  printf '%-10s %12s %12s %18s\n' "$l" "$size" "$(median <<<"${rps[$l]}")" "$(median <<<"${cpu[$l]}")"
done
