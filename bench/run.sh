#!/usr/bin/env bash
# bench/run.sh — print fluxstat's footprint table next to nginx and node_exporter.
#
# Measures, on this machine and in one run: stripped binary size, idle and peak
# RSS, idle CPU (whole process, per sample) and wake-ups per second (per thread
# in a note: voluntary and preempted context switches from
# /proc/PID/task/*/status), start-to-first-200 time, GET /metrics throughput,
# latency and CPU per request with wrk (1 and 50 keep-alive connections, server
# pinned to one core and wrk to another), and RSS per idle keep-alive connection;
# then the push feature's size and CPU per sample (bench/push.py).
# nginx (one worker, access log off) serves a static file holding the exact bytes
# of fluxstat's /metrics body; node_exporter serves its own /metrics.
#
# It is a benchmark, not a test: a poor figure never fails it. It exits non-zero
# only when something could not run at all. All traffic goes to 127.0.0.1, every
# load step is bounded in time, and everything it starts is stopped on exit.
#
# Usage: bench/run.sh [--quick]
#   --quick   CI smoke numbers (short idle and load windows, fewer connections)
#
# Environment (defaults: full / --quick):
#   FLUXSTAT_BIN          use this binary instead of `cargo build --release`
#   BENCH_OUT             also write the table as Markdown to this file
#   BENCH_IDLE_SECS       idle CPU window at the default interval      60 / 5
#   BENCH_SETTLE_SECS     wait after start before idle RSS             10 / 2
#   BENCH_LOAD_SECS       duration of each wrk step                    10 / 2
#   BENCH_LOAD_CONNS      connections of the concurrent wrk step       50 / 50
#   BENCH_ROUNDS          load rounds, servers alternating; the table    3 / 1
#                         shows medians and a note the per-round ratios
#   BENCH_IDLE_CONNS      idle keep-alive connections held            1000 / 100
#   BENCH_STARTUP_RUNS    start-to-first-200 repetitions (median)      5 / 1
#   BENCH_INTERVAL        pass --interval to fluxstat (default: its own, 1s)
#   BENCH_SERVER_CPU      core the servers are pinned to               0
#   BENCH_CLIENT_CPU      core wrk and the helpers are pinned to       1
#   BENCH_NICE            run servers, wrk and helpers at this nice    0
#                         (e.g. -10 on a shared machine; needs root)
#   BENCH_RT=1            run servers and wrk as SCHED_FIFO 1 (chrt), so that
#                         other programs on a shared machine cannot delay their
#                         wake-ups; needs root. Bounded by the kernel's RT
#                         throttling (sched_rt_runtime_us), whose pauses then
#                         show in p99 at 50 connections                    0
#   BENCH_FLUXSTAT_CONN_ARGS  extra fluxstat flags for the idle-connection step
#                         (default: --max-connections 2000)
#   BENCH_NGINX           nginx's file settings: tuned (open_file_cache,
#                         sendfile off: its cheapest for one small file) or
#                         stock (Debian's nginx.conf: sendfile, tcp_nopush)  tuned
#   BENCH_NO_INSTALL=1    never call apt-get; missing tools are an error
#   BENCH_KEEP=1          keep the temporary directory (logs, configs, wrk output)
#
# Installs from Debian when missing: wrk, nginx-light, prometheus-node-exporter
# (optional: its columns are left empty when it cannot be installed). The system
# nginx service is never touched: nginx runs from a private prefix in a temp dir.
set -euo pipefail

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }

QUICK=0
for arg in "$@"; do
  case "$arg" in
    --quick) QUICK=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown argument: $arg (try --help)" >&2; exit 2 ;;
  esac
done

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
HELPER="$BENCH_DIR/helpers.py"

if [ "$QUICK" = 1 ]; then
  d_idle=5 d_settle=2 d_load=2 d_conns=100 d_runs=1 d_rounds=1 mode=quick PAUSE=0.3
else
  d_idle=60 d_settle=10 d_load=10 d_conns=1000 d_runs=5 d_rounds=3 mode=full PAUSE=1
fi
ROUNDS=${BENCH_ROUNDS:-$d_rounds}
IDLE_SECS=${BENCH_IDLE_SECS:-$d_idle}
SETTLE_SECS=${BENCH_SETTLE_SECS:-$d_settle}
LOAD_SECS=${BENCH_LOAD_SECS:-$d_load}
LOAD_CONNS=${BENCH_LOAD_CONNS:-50}
IDLE_CONNS=${BENCH_IDLE_CONNS:-$d_conns}
STARTUP_RUNS=${BENCH_STARTUP_RUNS:-$d_runs}
INTERVAL=${BENCH_INTERVAL:-}
SERVER_CPU=${BENCH_SERVER_CPU:-0}
CLIENT_CPU=${BENCH_CLIENT_CPU:-1}
FLUXSTAT_CONN_ARGS=${BENCH_FLUXSTAT_CONN_ARGS:---max-connections 2000}
NICE=${BENCH_NICE:-0}
RT=${BENCH_RT:-0}
OUT_MD=${BENCH_OUT:-}
NGINX_MODE=${BENCH_NGINX:-tuned}
case "$NGINX_MODE" in tuned|stock) ;; *) echo "run.sh: BENCH_NGINX must be tuned or stock, not '$NGINX_MODE'" >&2; exit 2 ;; esac
FLUX_BIN=${FLUXSTAT_BIN:-}
# fluxstat reads FLUXSTAT_* as options: keep ours out of its environment.
unset FLUXSTAT_BIN

case "$NICE" in
  -[0-9]|-1[0-9]|-20|[0-9]|1[0-9]) ;;
  *) echo "run.sh: BENCH_NICE must be -20..19, got '$NICE'" >&2; exit 2 ;;
esac
case "$ROUNDS" in ''|*[!0-9]*|0) echo "run.sh: BENCH_ROUNDS must be a positive integer, got '$ROUNDS'" >&2; exit 2 ;; esac
case "$RT" in 0|1) ;; *) echo "run.sh: BENCH_RT must be 0 or 1, got '$RT'" >&2; exit 2 ;; esac
for v in IDLE_SECS SETTLE_SECS LOAD_SECS LOAD_CONNS IDLE_CONNS STARTUP_RUNS SERVER_CPU CLIENT_CPU; do
  case "${!v}" in
    ''|*[!0-9]*) echo "run.sh: $v must be a whole number, got '${!v}'" >&2; exit 2 ;;
  esac
done
for v in LOAD_SECS LOAD_CONNS STARTUP_RUNS; do
  [ "${!v}" -ge 1 ] || { echo "run.sh: $v must be at least 1" >&2; exit 2; }
done

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------- tools
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"
  else return 1
  fi
}

APT_UPDATED=0
apt_install() {
  [ "${BENCH_NO_INSTALL:-0}" = 1 ] && return 1
  command -v apt-get >/dev/null 2>&1 || return 1
  if [ "$APT_UPDATED" = 0 ]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || return 1
    APT_UPDATED=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

find_tool() {  # first executable among the names/paths given
  local t
  for t in "$@"; do
    if command -v "$t" >/dev/null 2>&1; then command -v "$t"; return 0; fi
    if [ -x "$t" ]; then echo "$t"; return 0; fi
  done
  return 1
}

missing=()
command -v python3 >/dev/null 2>&1 || missing+=(python3)
command -v taskset >/dev/null 2>&1 || missing+=(util-linux)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
find_tool nginx /usr/sbin/nginx >/dev/null || missing+=(nginx-light)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  apt_install "${missing[@]}" || die "could not install: ${missing[*]}"
fi
WRK=$(find_tool wrk) || die "wrk not found"
NGINX=$(find_tool nginx /usr/sbin/nginx) || die "nginx not found"
NODE_EXPORTER=$(find_tool prometheus-node-exporter node_exporter) || {
  log "installing prometheus-node-exporter (optional)"
  if apt_install prometheus-node-exporter; then
    NODE_EXPORTER=$(find_tool prometheus-node-exporter node_exporter) || NODE_EXPORTER=
  else
    NODE_EXPORTER=
  fi
}
[ -n "$NODE_EXPORTER" ] || log "node_exporter unavailable: its columns stay empty"
NE_MISSING=0; [ -n "$NODE_EXPORTER" ] || NE_MISSING=1

NCPU=$(nproc)
PIN=1
if [ "$NCPU" -lt 2 ] || [ "$SERVER_CPU" = "$CLIENT_CPU" ]; then
  PIN=0
  log "fewer than 2 cores (or same core given twice): not pinning"
fi
# Keep this script and its helpers off the server core.
[ "$PIN" = 1 ] && taskset -cp "$CLIENT_CPU" $$ >/dev/null
# Optional priority for everything started from here (servers, wrk, helpers),
# to keep other programs on a shared machine from skewing the figures.
if [ "$NICE" != 0 ]; then
  renice -n "$NICE" -p $$ >/dev/null || die "renice -n $NICE failed (negative values need root)"
fi
# Prefix for the servers and wrk (not the helpers: the startup poller and the
# idle-connection holder stay ordinary tasks).
SCHED=()
if [ "$RT" = 1 ]; then
  command -v chrt >/dev/null 2>&1 || die "BENCH_RT=1 needs chrt (util-linux)"
  chrt -f 1 true 2>/dev/null || die "BENCH_RT=1: chrt -f 1 failed (needs root)"
  SCHED=(chrt -f 1)
fi

# 1000+ sockets in one process (helper, nginx worker, fluxstat).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
need_fds=$((IDLE_CONNS + 256))
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge "$need_fds" ] \
  || log "warning: ulimit -n is $(ulimit -n), below $need_fds: the idle-connection step may fall short"

py() { python3 "$HELPER" "$@"; }

# ---------------------------------------------------------------- fluxstat binary
if [ -n "$FLUX_BIN" ]; then
  [ -x "$FLUX_BIN" ] || die "FLUXSTAT_BIN=$FLUX_BIN is not an executable"
  FLUX_SRC="FLUXSTAT_BIN=$FLUX_BIN"
else
  [ -f "$ROOT/Cargo.toml" ] || die "no Cargo.toml in $ROOT; set FLUXSTAT_BIN"
  command -v cargo >/dev/null 2>&1 || die "cargo not found; set FLUXSTAT_BIN"
  log "cargo build --release"
  (cd "$ROOT" && cargo build --release >&2) || die "cargo build --release failed"
  FLUX_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/fluxstat"
  [ -x "$FLUX_BIN" ] || die "built, but $FLUX_BIN is missing"
  FLUX_SRC="cargo build --release"
fi
FLUX_BIN=$(cd "$(dirname "$FLUX_BIN")" && pwd)/$(basename "$FLUX_BIN")
FLUX_VERSION=$("$FLUX_BIN" --version 2>&1 | head -n 1) || die "$FLUX_BIN --version failed: $FLUX_VERSION"
FLUX_COMMIT=unknown
if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
  FLUX_COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo "no commits")
  [ -z "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ] || FLUX_COMMIT="$FLUX_COMMIT+dirty"
fi
FLUX_INTERVAL_ARGS=()
[ -n "$INTERVAL" ] && FLUX_INTERVAL_ARGS=(--interval "$INTERVAL")

# ---------------------------------------------------------------- run directory, cleanup
WORK=$(mktemp -d "${TMPDIR:-/tmp}/fluxbench.XXXXXX")
chmod 755 "$WORK"   # nginx's worker (user nobody) reads the static file from here
RESULTS="$WORK/results.tsv"
: >"$RESULTS"
STARTED=()

stop_pid() {
  local pid=$1
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 30); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null || true
}

# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
  local rc=$? pid
  trap - EXIT INT TERM
  for pid in "${STARTED[@]}"; do stop_pid "$pid"; done
  if [ "${BENCH_KEEP:-0}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

put() { printf '%s\t%s\n' "$1" "$2" >>"$RESULTS"; }
note() { put "note.$(printf '%03d' "$(grep -c '^note\.' "$RESULTS" || true)")" "$*"; }
calc() { python3 -c "import sys; print($1)"; }   # float arithmetic: calc '1/3'

# start NAME LOG CMD... -> sets START_PID; the server runs pinned to the server core.
start() {
  local name=$1 logf=$2; shift 2
  # A simple command, not a function, so that $! is the server's own pid.
  if [ "$PIN" = 1 ]; then
    "${SCHED[@]}" taskset -c "$SERVER_CPU" "$@" </dev/null >"$logf" 2>&1 &
  else
    "${SCHED[@]}" "$@" </dev/null >"$logf" 2>&1 &
  fi
  START_PID=$!
  STARTED+=("$START_PID")
  log "started $name (pid $START_PID)"
}

wait_ready() {  # NAME PID PORT
  py wait --port "$3" --path /metrics --timeout 15 >/dev/null \
    || { tail -n 5 "$WORK/$1"*.log >&2 2>/dev/null || true; die "$1 did not answer 200 on /metrics"; }
  kill -0 "$2" 2>/dev/null || die "$1 exited during start-up"
}

nginx_file_settings() {
  if [ "$NGINX_MODE" = stock ]; then
    cat <<'EOF'
    # BENCH_NGINX=stock: Debian's nginx.conf settings for serving files.
    sendfile on;
    tcp_nopush on;
EOF
  else
    cat <<'EOF'
    # Tuned for one small file: 23 us vs 28-34 us CPU per request on the bench
    # machine against Debian's defaults (sendfile on, tcp_nopush on, no file
    # cache, which cost open+fstat+close and two TCP_CORK setsockopt per request).
    sendfile off;
    open_file_cache max=16 inactive=60s;
    open_file_cache_valid 60s;
EOF
  fi
}

nginx_conf() {  # PORT WORKER_CONNECTIONS DIR -> writes DIR/nginx.conf
  local port=$1 wc=$2 dir=$3
  mkdir -p "$dir"
  cat >"$dir/nginx.conf" <<EOF
# One worker serving a static copy of fluxstat's /metrics body.
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
worker_rlimit_nofile $((wc + 64));
events { worker_connections $wc; }
http {
    access_log off;
$(nginx_file_settings)
    keepalive_timeout 75s;
    keepalive_requests 1000000;
    types { }
    default_type application/json;
    client_body_temp_path $dir/client_body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    server {
        listen 127.0.0.1:$port;
        root $WORK/www;
        location = /metrics { }
    }
}
EOF
}
nginx_cmd() { NGINX_CMD=("$NGINX" -p "$1" -c "$1/nginx.conf" -e "$1/error.log"); }

SERVERS=(fluxstat nginx)
[ -n "$NODE_EXPORTER" ] && SERVERS+=(node_exporter)

# ---------------------------------------------------------------- metadata
NGINX_VERSION=$("$NGINX" -v 2>&1 | sed 's/^nginx version: //')
NE_VERSION=-
[ -n "$NODE_EXPORTER" ] && NE_VERSION=$("$NODE_EXPORTER" --version 2>&1 | head -n 1 | sed 's/^node_exporter, //')
put meta.settle_secs "$SETTLE_SECS"
put meta.idle_secs "$IDLE_SECS"
put meta.startup_runs "$STARTUP_RUNS"
put meta.load_conns "$LOAD_CONNS"
put meta.rounds "$ROUNDS"
put meta.idle_conns "$IDLE_CONNS"
put meta.line.1 "fluxstat: $FLUX_VERSION, commit $FLUX_COMMIT ($FLUX_SRC)"
if [ "$NGINX_MODE" = stock ]; then nginx_text="Debian's file settings: sendfile on, tcp_nopush on"; else nginx_text="open_file_cache, sendfile off"; fi
put meta.line.2 "nginx: $NGINX_VERSION (1 worker, access_log off, static file, $nginx_text); node_exporter: $NE_VERSION (--web.max-requests=0)"
put meta.line.3 "host: $(uname -srm), $NCPU cores, $(date -u +%Y-%m-%dT%H:%M:%SZ); mode $mode"
if [ "$PIN" = 1 ]; then pin_text="servers on core $SERVER_CPU, wrk and helpers on core $CLIENT_CPU"; else pin_text="no pinning"; fi
[ "$NE_MISSING" = 1 ] && note "prometheus-node-exporter could not be found or installed: its columns are empty."
put meta.line.4 "wrk -t1 --latency, ${LOAD_SECS} s per step, $ROUNDS round(s), keep-alive; $pin_text; fluxstat interval ${INTERVAL:-default (1s)}; nice $NICE${SCHED:+; servers and wrk SCHED_FIFO 1}"

# ---------------------------------------------------------------- sizes
strip_size() {  # BINARY -> stripped size in KiB
  local copy="$WORK/strip.$$"
  cp "$1" "$copy"
  if command -v strip >/dev/null 2>&1; then strip "$copy" 2>/dev/null || true; fi
  calc "$(stat -c %s "$copy")/1024"
  rm -f "$copy"
}
put fluxstat.bin_kib "$(strip_size "$FLUX_BIN")"
put nginx.bin_kib "$(strip_size "$NGINX")"
[ -n "$NODE_EXPORTER" ] && put node_exporter.bin_kib "$(strip_size "$NODE_EXPORTER")"
command -v strip >/dev/null 2>&1 || note "strip not found: binary sizes are as installed"
# Hook: cross-built release artefacts, listed when target/artefacts/ exists.
ARTEFACTS="${CARGO_TARGET_DIR:-$ROOT/target}/artefacts"
if [ -d "$ARTEFACTS" ]; then
  for f in "$ARTEFACTS"/fluxstat-*; do
    [ -f "$f" ] || continue
    case "$f" in *.sha256|*.sha512|*.asc|*.sig|*.txt|*.md) continue ;; esac
    put "artefact.$(basename "$f")" "$(calc "$(stat -c %s "$f")/1024")"
  done
fi

# ---------------------------------------------------------------- start the servers
FLUX_PORT=$(py port)
start fluxstat "$WORK/fluxstat.log" "$FLUX_BIN" --listen "127.0.0.1:$FLUX_PORT" "${FLUX_INTERVAL_ARGS[@]}"
FLUX_PID=$START_PID
wait_ready fluxstat "$FLUX_PID" "$FLUX_PORT"
mkdir -p "$WORK/www"
read -r status size < <(py get --port "$FLUX_PORT" --path /metrics --out "$WORK/www/metrics" || true)
[ "${status:-}" = 200 ] || die "could not fetch fluxstat's /metrics (status ${status:-none})"
chmod 644 "$WORK/www/metrics"
put fluxstat.body_bytes "$size"
put nginx.body_bytes "$(stat -c %s "$WORK/www/metrics")"
log "fluxstat /metrics body: $size bytes"
# The device page at /: its size as sent to browsers (gzip, the only copy in the
# binary) and decoded. The artefact delta it costs is measured with
# cross/build-artefacts.sh against main (BENCHMARKS.md).
read -r page_raw page_gz < <(python3 -c '
import sys, urllib.request
def size(ae):
    req = urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/", headers={"Accept-Encoding": ae})
    with urllib.request.urlopen(req, timeout=10) as r:
        return len(r.read())
print(size("identity"), size("gzip"))' "$FLUX_PORT" || true)
put fluxstat.page_bytes "${page_raw:-}"
put fluxstat.page_gzip_bytes "${page_gz:-}"
note "device page (GET /): ${page_raw:-?} bytes, ${page_gz:-?} gzipped (the binary holds the gzipped copy only); artefact delta: see BENCHMARKS.md"
log "fluxstat / page: ${page_raw:-?} bytes, ${page_gz:-?} gzipped"

NGINX_PORT=$(py port)
nginx_conf "$NGINX_PORT" 1024 "$WORK/nginx"
nginx_cmd "$WORK/nginx"
start nginx "$WORK/nginx.log" "${NGINX_CMD[@]}"
NGINX_PID=$START_PID
wait_ready nginx "$NGINX_PID" "$NGINX_PORT"

NE_PID=
if [ -n "$NODE_EXPORTER" ]; then
  NE_PORT=$(py port)
  NE_ARGS=(--web.listen-address="127.0.0.1:$NE_PORT" --web.max-requests=0)
  start node_exporter "$WORK/node_exporter.log" "$NODE_EXPORTER" "${NE_ARGS[@]}"
  NE_PID=$START_PID
  wait_ready node_exporter "$NE_PID" "$NE_PORT"
  read -r _ size < <(py get --port "$NE_PORT" --path /metrics)
  put node_exporter.body_bytes "$size"
fi
# nginx's readiness poll was its one /metrics request; node_exporter's too.

pid_of() { case "$1" in fluxstat) echo "$FLUX_PID" ;; nginx) echo "$NGINX_PID" ;; node_exporter) echo "$NE_PID" ;; esac; }
port_of() { case "$1" in fluxstat) echo "$FLUX_PORT" ;; nginx) echo "$NGINX_PORT" ;; node_exporter) echo "$NE_PORT" ;; esac; }
alive() { kill -0 "$(pid_of "$1")" 2>/dev/null || die "$1 (pid $(pid_of "$1")) died; see its log"; }

# ---------------------------------------------------------------- idle: RSS and CPU
# The floor: an empty Rust program, for the share of RSS every glibc-linked Rust
# program has (its idle RSS is a note under the table).
floor_args=()
if rustc -C opt-level=z -C panic=abort -C lto -C codegen-units=1 -C strip=symbols \
    -o "$WORK/floor" "$BENCH_DIR/floor.rs" 2>"$WORK/floor.log"; then
  start floor "$WORK/floor.out" "$WORK/floor"
  floor_args=(--floor "$START_PID")
else
  log "could not build bench/floor.rs (see $WORK/floor.log); no floor note"
fi
# The static musl build, when cross/build-artefacts.sh x86_64-unknown-linux-musl made
# it: what an x86-64 OpenWrt or Alpine box runs, with no shared C library to map.
musl_args=()
MUSL_BIN="$ARTEFACTS/fluxstat-x86_64-unknown-linux-musl"
if [ -x "$MUSL_BIN" ]; then
  MUSL_PORT=$(py port)
  start fluxstat-musl "$WORK/fluxstat-musl.log" "$MUSL_BIN" --listen "127.0.0.1:$MUSL_PORT" "${FLUX_INTERVAL_ARGS[@]}"
  musl_args=(--musl "$START_PID")
  wait_ready fluxstat-musl "$START_PID" "$MUSL_PORT"
fi
log "idle: ${SETTLE_SECS} s settle, then ${IDLE_SECS} s CPU window"
idle_args=()
for s in "${SERVERS[@]}"; do
  alive "$s"
  idle_args+=("$s=$(pid_of "$s")")
done
py idle --settle "$SETTLE_SECS" --window "$IDLE_SECS" --interval "${INTERVAL:-1s}" \
  --sampler fluxstat "${floor_args[@]}" "${musl_args[@]}" "${idle_args[@]}" >>"$RESULTS" \
  || die "idle measurement failed"
if [ ${#floor_args[@]} = 2 ]; then stop_pid "${floor_args[1]}"; fi
if [ ${#musl_args[@]} = 2 ]; then stop_pid "${musl_args[1]}"; fi
put nginx.sample_cpu_us "n/a"

# ---------------------------------------------------------------- load: wrk
load_step() {  # SERVER CONNS TAG
  local s=$1 c=$2 tag=$3 pid port before after out json
  pid=$(pid_of "$s"); port=$(port_of "$s")
  alive "$s"
  out="$WORK/wrk-$s-c$c.txt"
  log "wrk $s: $c conn(s), ${LOAD_SECS} s"
  before=$(py snap "$pid" "$SERVER_CPU")
  # The whole script already runs on the client core; wrk inherits it.
  json=$(py wrkrun --out "$out" -- "${SCHED[@]}" "$WRK" -t1 -c"$c" -d"${LOAD_SECS}s" --timeout 2s --latency \
    "http://127.0.0.1:$port/metrics") || { log "wrk failed for $s ($c conns)"; cat "$out" >&2; return 0; }
  after=$(py snap "$pid" "$SERVER_CPU")
  py loadrec --server "$s" --tag "$tag" --conns "$c" --secs "$LOAD_SECS" --pinned "$PIN" \
    "$before" "$after" "$json" >>"$RESULTS"
  sleep "$PAUSE"
}

for round in $(seq "$ROUNDS"); do
  if [ "$ROUNDS" -gt 1 ]; then log "load round $round of $ROUNDS"; fi
  for s in "${SERVERS[@]}"; do
    load_step "$s" 1 c1
    load_step "$s" "$LOAD_CONNS" cN
  done
done
for s in "${SERVERS[@]}"; do
  read -r _ hwm < <(py mem "$(pid_of "$s")")
  put "$s.peak_rss_kib" "$hwm"
done
if [ -n "$NE_PID" ]; then
  put node_exporter.sample_cpu_us "$(awk -F'\t' '$1=="node_exporter.cpu_req_c1"{print $2}' "$RESULTS")"
fi
note "CPU figures are the server's own (all threads/processes), from /proc/PID/task/*/schedstat, cross-checked with utime+stime in /proc/PID/stat; RSS = VmRSS, peak = VmHWM; nginx = master + worker."
note "'CPU busy' rows: server and wrk CPU time / wall time. When neither is near 100%, throughput is bound by wake-up latency (other programs on the cores, or the VM), not by either side's CPU: compare CPU per request, or run with BENCH_RT=1. 'other processes on server core' is that core's busy time (/proc/stat) minus the server's: work of other programs on a shared machine."

# ---------------------------------------------------------------- startup time
log "start -> first 200 on /metrics, $STARTUP_RUNS run(s) each"
startup() {  # SERVER PORT CMD...
  local s=$1 port=$2 json; shift 2
  json=$(py startup --port "$port" --path /metrics --runs "$STARTUP_RUNS" \
    --log "$WORK/startup-$s.log" -- "$@") || { log "startup measurement failed for $s"; return 0; }
  put "$s.startup_ms" "$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["median_ms"])' "$json")"
  log "$s startup: $json"
}
p=$(py port)
server_prefix=("${SCHED[@]}"); [ "$PIN" = 1 ] && server_prefix+=(taskset -c "$SERVER_CPU")
startup fluxstat "$p" "${server_prefix[@]}" "$FLUX_BIN" --listen "127.0.0.1:$p" "${FLUX_INTERVAL_ARGS[@]}"
p=$(py port)
nginx_conf "$p" 1024 "$WORK/nginx-startup"
nginx_cmd "$WORK/nginx-startup"
startup nginx "$p" "${server_prefix[@]}" "${NGINX_CMD[@]}"
if [ -n "$NODE_EXPORTER" ]; then
  p=$(py port)
  startup node_exporter "$p" "${server_prefix[@]}" "$NODE_EXPORTER" --web.listen-address="127.0.0.1:$p" --web.max-requests=0
fi

# ---------------------------------------------------------------- idle keep-alive connections
conn_step() {  # SERVER PID PORT
  local s=$1 pid=$2 port=$3 json
  log "$s: holding $IDLE_CONNS idle keep-alive connections"
  json=$(py conns --port "$port" --pid "$pid" --count "$IDLE_CONNS") \
    || { log "idle-connection step failed for $s"; return 0; }
  log "$s: $json"
  py connrec --server "$s" --want "$IDLE_CONNS" "$json" >>"$RESULTS"
}

# fluxstat and nginx get a fresh instance with room for the connections.
p=$(py port)
# shellcheck disable=SC2086
start fluxstat-conns "$WORK/fluxstat-conns.log" "$FLUX_BIN" --listen "127.0.0.1:$p" "${FLUX_INTERVAL_ARGS[@]}" $FLUXSTAT_CONN_ARGS
pid=$START_PID
wait_ready fluxstat-conns "$pid" "$p"
conn_step fluxstat "$pid" "$p"
stop_pid "$pid"

p=$(py port)
nginx_conf "$p" $((IDLE_CONNS + 1024)) "$WORK/nginx-conns"
nginx_cmd "$WORK/nginx-conns"
start nginx-conns "$WORK/nginx-conns.log" "${NGINX_CMD[@]}"
pid=$START_PID
wait_ready nginx-conns "$pid" "$p"
conn_step nginx "$pid" "$p"
stop_pid "$pid"

# node_exporter has no connection limit: reuse the warm instance.
[ -n "$NE_PID" ] && conn_step node_exporter "$NE_PID" "$NE_PORT"
note "idle connections: fluxstat ($FLUXSTAT_CONN_ARGS) and nginx (worker_connections $((IDLE_CONNS + 1024))) run a fresh instance; each connection did one GET /metrics; figure = (RSS with them - RSS just before) / connections held."

# ---------------------------------------------------------------- table
for pid in "${STARTED[@]}"; do stop_pid "$pid"; done
echo
py table "$RESULTS" ${OUT_MD:+--md "$OUT_MD"}
[ -n "$OUT_MD" ] && log "wrote $OUT_MD"

# ---------------------------------------------------------------- pushing
# The push feature's size and its CPU per sample against a real influxd and
# mosquitto (bench/push.py; skipped with a reason where they are missing).
echo
log "pushing: bench/push.py"
if [ "$QUICK" = 1 ]; then python3 "$BENCH_DIR/push.py" --quick; else python3 "$BENCH_DIR/push.py"; fi \
  || log "bench/push.py could not run"
exit 0
