#!/usr/bin/env bash
# Usage: cross/test-under-wine.sh [ARGS for cargo test...]
#
# Builds the whole test suite (unit and integration tests) for x86_64-pc-windows-gnu
# (Debian's Rust with -Zbuild-std, linked by mingw-w64's gcc) and runs every test
# binary under wine 8.0 through cargo's runner, in a throw-away wine prefix that
# holds the bcryptprimitives.dll stub (cross/windows/) and is removed at the end,
# after `wineserver --kill`. The integration tests spawn fluxstat.exe themselves:
# inside wine a Windows process starts another one directly, so no runner is put in
# front of it.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=cross/lib.sh
source "$here/lib.sh"

target=x86_64-pc-windows-gnu
"$here/setup.sh" "$target"
use_cross_toolchain

# The std built from source for the tests is kept across clones (CI checks out afresh).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$FLUXSTAT_CROSS_CACHE/target-test}"

cd "$REPO_ROOT"
log "building the tests for $target"
cross_cargo gcc test "$target" -Zbuild-std --no-run "$@"

wine_prefix_start
trap wine_prefix_stop EXIT
export "$(cargo_target_var "$target")RUNNER=wine"
# Tells the tests they run under wine (support::emulated, tests/it/windows.rs).
export FLUXSTAT_UNDER_WINE=1

# The tests that cannot apply to Windows, each with its reason, are listed in
# cross/windows/skipped-tests.
skips=()
while read -r name _; do
    [[ -z $name || $name == \#* ]] || skips+=(--skip "$name")
done <"$here/windows/skipped-tests"
# What wine's drive C: stands on, for tests/it/windows.rs: blocks, bavail, block size.
FLUXSTAT_WINE_DRIVE_C="$(stat -f -c '%b %a %S' "$WINEPREFIX/drive_c")"
export FLUXSTAT_WINE_DRIVE_C

log "cargo test --target $target under wine ($((${#skips[@]} / 2)) test names skipped)"
started=$SECONDS
cross_cargo gcc test "$target" -Zbuild-std "$@" -- "${skips[@]}"
log "$target: tests passed under wine in $((SECONDS - started)) s"
