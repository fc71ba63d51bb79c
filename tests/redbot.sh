#!/usr/bin/env bash
# Lints fluxstat's HTTP answers with REDbot (PyPI `redbot`, the HTTP linter by the
# editor of the HTTP specs): starts the binary on 127.0.0.1 with a free port, runs
# REDbot against /metrics, /health, / and a 404, prints every note, and fails on
# any note of level "warning" or "bad". Run from CI (.ci/run) or by hand:
#
#   tests/redbot.sh [path/to/fluxstat]     (default: target/debug/fluxstat, built if missing)
#
# REDbot is installed into a venv under target/ (REDBOT_VENV to put it elsewhere),
# pinned so that a new release's new notes do not break CI unannounced.
set -euo pipefail
cd "$(dirname "$0")/.."

REDBOT_VERSION=2.7.1
venv=${REDBOT_VENV:-target/redbot-venv}
if [ ! -x "$venv/bin/redbot" ]; then
  if ! python3 -m venv "$venv" 2>/dev/null; then
    rm -rf "$venv"
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$venv"
  fi
  "$venv/bin/pip" install -q "redbot==$REDBOT_VERSION"
fi

bin=${1:-target/debug/fluxstat}
[ -x "$bin" ] || cargo build -q

work=$(mktemp -d)
"$bin" --listen 127.0.0.1:0 2>"$work/log" &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$work"' EXIT

addr=
for _ in $(seq 100); do
  addr=$(sed -n 's/.* listening on \([^ ]*\).*/\1/p' "$work/log" | head -n 1)
  [ -n "$addr" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/log"; echo "redbot.sh: fluxstat exited" >&2; exit 1; }
  sleep 0.1
done
[ -n "$addr" ] || { cat "$work/log"; echo "redbot.sh: fluxstat did not start listening" >&2; exit 1; }

failed=0
for path in /metrics /health / /no-such-page; do
  url="http://$addr$path"
  timeout 60 "$venv/bin/redbot" -o har "$url" >"$work/har.json"
  if ! python3 - "$url" "$work/har.json" <<'PY'
import json, sys

url, har = sys.argv[1], sys.argv[2]
with open(har) as f:
    entries = json.load(f)["log"]["entries"]
if not entries:
    sys.exit(f"{url}: REDbot made no request")
bad = 0
print(f"{url}: {entries[0]['response']['status']}")
for entry in entries:
    for note in entry.get("_red_messages", []):
        level = note["level"].lower()
        flagged = level in ("warn", "warning", "bad")
        bad += flagged
        print(f"  {'FAIL ' if flagged else ''}{level:5} {note['note_id']}: {note['summary']}")
sys.exit(1 if bad else 0)
PY
  then
    failed=1
  fi
done

if [ "$failed" -ne 0 ]; then
  echo "redbot.sh: REDbot found warnings or errors (see FAIL above)" >&2
  exit 1
fi
echo "redbot.sh: no warnings"
