#!/usr/bin/env bash
# Checks packaging/fluxstat.service without a running systemd (CI has no systemd
# as PID 1): `systemd-analyze verify` must accept it without a single complaint,
# and `systemd-analyze security --offline=true` must rate its exposure at or below
# 2.5 (MAX_EXPOSURE to change). verify needs ExecStart= to exist, so a temporary
# copy of the unit points it at a built binary.
#
#   packaging/check-unit.sh [path/to/fluxstat]   (default: target/debug/fluxstat, built if missing)
set -euo pipefail
cd "$(dirname "$0")/.."

max=${MAX_EXPOSURE:-2.5}
if ! command -v systemd-analyze >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq systemd >/dev/null
fi
systemd-analyze --version | head -n 1

bin=${1:-target/debug/fluxstat}
[ -x "$bin" ] || cargo build -q
bin=$(realpath "$bin")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
unit="$work/fluxstat.service"
sed "s|^ExecStart=/usr/local/bin/fluxstat\$|ExecStart=$bin|" packaging/fluxstat.service >"$unit"
if ! grep -qx "ExecStart=$bin" "$unit"; then
  echo "check-unit.sh: the unit's ExecStart= is no longer /usr/local/bin/fluxstat; update this script" >&2
  exit 1
fi

failed=0
# verify exits 0 on unknown keys and bad values (it only warns): any output fails.
if ! out=$(SYSTEMD_COLORS=0 systemd-analyze verify "$unit" 2>&1) || [ -n "$out" ]; then
  printf '%s\n' "$out" | sed "s|$work/||"
  echo "check-unit.sh: systemd-analyze verify complains about packaging/fluxstat.service" >&2
  failed=1
else
  echo "systemd-analyze verify: clean"
fi

report=$(SYSTEMD_COLORS=0 systemd-analyze security --offline=true --no-pager "$unit" 2>&1) || true
score=$(printf '%s\n' "$report" | sed -n 's/.*Overall exposure level for fluxstat.service: \([0-9.]*\).*/\1/p')
if [ -z "$score" ]; then
  printf '%s\n' "$report"
  echo "check-unit.sh: no exposure level in systemd-analyze security's output" >&2
  exit 1
fi
# What is still exposed (the unit says why each stays).
printf '%s\n' "$report" | grep -F '✗' || true
echo "exposure: $score (at most $max)"
if ! awk -v s="$score" -v m="$max" 'BEGIN { exit !(s <= m) }'; then
  echo "check-unit.sh: exposure $score is above $max" >&2
  failed=1
fi
exit "$failed"
