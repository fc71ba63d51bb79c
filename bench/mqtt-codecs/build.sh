#!/usr/bin/env bash
# Usage: ./build.sh TARGET   (armv7-unknown-linux-musleabihf or x86_64-unknown-linux-musl)
# Builds the five programs like cross/build-artefacts.sh builds fluxstat's artefacts
# (default size flags) and prints their stripped sizes.
set -euo pipefail
target="$1"
cd "$(dirname "$0")"
# shellcheck source=cross/lib.sh
source ../../cross/lib.sh
use_cross_toolchain
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$FLUXSTAT_CROSS_CACHE/target-mqttsize}"
export EXTRA_RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort -Cforce-unwind-tables=no -Zfmt-debug=none -Zlocation-detail=none"
cargo_args=(
    --release --locked --workspace
    --config 'profile.release.strip=true'
    --config 'profile.release.panic="abort"'
    -Zbuild-std=std,panic_abort
    -Zbuild-std-features=optimize_for_size
)
cross_cargo zig build "$target" "${cargo_args[@]}"
PROGS="p0-baseline pa-own pb-mqttrs pc-mqttbytes pd-mqtt-protocol pb-mqttrs-enconly pc-mqttbytes-enconly pd-mqtt-protocol-enconly"
out="../../target/mqtt-codecs/$target"
mkdir -p "$out"
for p in $PROGS; do
    cp "$CARGO_TARGET_DIR/$target/release/$p" "$out/$p"
done
base=$(stat -c %s "$out/p0-baseline")
printf '%-18s %8s %8s\n' program bytes delta
for p in $PROGS; do
    b=$(stat -c %s "$out/$p")
    printf '%-18s %8d %+8d\n' "$p" "$b" $((b - base))
done
