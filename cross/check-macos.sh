#!/usr/bin/env bash
# Usage: cross/check-macos.sh [ARGS for cargo check...]
#
# Compile-checks fluxstat, its tests and examples for macOS on Apple silicon and on
# Intel (`cargo check --all-targets` with Debian's Rust and -Zbuild-std). There is no
# macOS SDK or linker here, so nothing is linked or run: the macOS mapping code is
# unit-tested on Linux instead (src/sample/macos.rs, part of `cargo test`). On a Mac,
# `cargo build --release` builds it natively.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=cross/lib.sh
source "$here/lib.sh"

"$here/setup.sh"
use_cross_toolchain
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$FLUXSTAT_CROSS_CACHE/target-check}"
# Warnings fail the check, as clippy's -D warnings does for the native build.
export RUSTFLAGS="-D warnings"

cd "$REPO_ROOT"
for target in aarch64-apple-darwin x86_64-apple-darwin; do
    log "cargo check --all-targets --target $target"
    cargo check --locked --all-targets --target "$target" -Zbuild-std "$@"
done
