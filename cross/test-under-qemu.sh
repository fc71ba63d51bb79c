#!/usr/bin/env bash
# Usage: cross/test-under-qemu.sh TARGET [ARGS for cargo test...]
#
# Builds the whole test suite (unit and integration tests) for TARGET in the test
# profile, so with unwinding and a std built from source, and runs every test binary
# under qemu-user through cargo's runner. The integration tests get the same runner in
# FLUXSTAT_TEST_RUNNER and put it in front of the fluxstat binary they spawn: without
# binfmt_misc, an emulated process cannot exec another foreign binary by itself.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=cross/lib.sh
source "$here/lib.sh"

[[ $# -ge 1 && $1 != -* ]] || die "usage: cross/test-under-qemu.sh TARGET [cargo test args...] (TARGET: ${TARGETS[*]} ${EXPERIMENTAL_TARGETS[*]})"
target="$1"
shift
known_target "$target" || die "unknown target $target"
[[ $target == x86_64-* ]] && die "$target runs natively: the ordinary \`cargo test\` covers it"

"$here/setup.sh"
use_cross_toolchain

runner="$(qemu_runner "$target")"
export "$(cargo_target_var "$target")RUNNER=$runner"
export FLUXSTAT_TEST_RUNNER="$runner"

# Debian's cross gcc links against the same glibc that qemu loads with -L; the ARMv6
# and musl targets are linked by zig.
case "$target" in
    aarch64-unknown-linux-gnu | armv7-unknown-linux-gnueabihf) link=gcc ;;
    *) link=zig ;;
esac

# The std built from source for the tests is kept across clones (CI checks out afresh).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$FLUXSTAT_CROSS_CACHE/target-test}"

cd "$REPO_ROOT"
log "cargo test --target $target under: $runner"
started=$SECONDS
cross_cargo "$link" test "$target" -Zbuild-std "$@"
log "$target: tests passed under qemu in $((SECONDS - started)) s"
