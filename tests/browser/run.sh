#!/usr/bin/env bash
# The device page and the LAN overview in a real headless Chromium (issue 12):
# installs Debian's `chromium` when missing (no browser download by the test),
# builds fluxstat if needed and runs tests/browser/page_test.py, which drives the
# browser over the DevTools protocol (its --remote-debugging-pipe, Python's
# standard library only) against fluxstat instances on 127.0.0.1. Screenshots go
# to target/browser/. Run from CI (.ci/run) or by hand:
#
#   tests/browser/run.sh [path/to/fluxstat]   (default: target/debug/fluxstat, built if missing)
#
# Without chromium and without CI set, it says so and exits 0 when it cannot
# install it (no root); with CI set, a missing browser is a failure.
set -euo pipefail
cd "$(dirname "$0")/../.."

chromium=$(command -v chromium || true)
if [ -z "$chromium" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq chromium >/dev/null
    chromium=$(command -v chromium)
  elif [ -n "${CI:-}" ]; then
    echo "browser/run.sh: chromium is missing (apt-get install chromium)" >&2
    exit 1
  else
    echo "browser/run.sh: skipped: chromium is not installed (apt-get install chromium)"
    exit 0
  fi
fi

bin=${1:-target/debug/fluxstat}
[ -x "$bin" ] || cargo build -q
"$chromium" --version
exec timeout 600 python3 tests/browser/page_test.py "$bin" "$chromium"
