#!/usr/bin/env bash
# Usage: cross/build-artefacts.sh [--push] [--no-size-flags] [TARGET...]
#
# Builds stripped release binaries (default: the six ARM and two MIPS targets) into
# target/artefacts/fluxstat-<target>, runs each one under qemu-user with --version,
# and prints its size and sha256 (also written to target/artefacts/SHA256SUMS).
# Each one also gets a smoke run (cross/smoke.py): /metrics, a 408 on time, SIGTERM.
#
#   --push           build with the push feature (InfluxDB, MQTT/Home Assistant)
#                    into target/artefacts/fluxstat-push-<target>; its smoke run
#                    also pushes to a real influxd and mosquitto on 127.0.0.1 and
#                    reads the figures back (needs both; CI set: required)
#   --no-size-flags  keep std's backtrace support and the panic message
#                    (default: std built for size, without backtrace support,
#                    -Cpanic=immediate-abort, no unwind tables, no Debug formatting
#                    or panic locations)
#   FLUXSTAT_ARTEFACT_RUSTFLAGS  more rustc flags for the artefacts
#   FLUXSTAT_ARTEFACT_FEATURES   more cargo features to build in
#   TARGET           also x86_64-unknown-linux-musl, a static x86-64 build, and
#                    x86_64-pc-windows-gnu (fluxstat-x86_64-pc-windows-gnu.exe, run
#                    under wine)
#   FLUXSTAT_GLIBC   glibc version the -gnu binaries require at least (default 2.17)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=cross/lib.sh
source "$here/lib.sh"

size_flags=1
push=0
targets=()
for arg in "$@"; do
    case "$arg" in
        --no-size-flags) size_flags=0 ;;
        --push) push=1 ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
            exit 0
            ;;
        -*) die "unknown option $arg" ;;
        *)
            known_target "$arg" || die "unknown target $arg"
            targets+=("$arg")
            ;;
    esac
done
((${#targets[@]})) || targets=("${TARGETS[@]}")

"$here/setup.sh" "${targets[@]}"
use_cross_toolchain

# shellcheck disable=SC2054
cargo_args=(
    --release --locked
    --config 'profile.release.strip=true'
    --config 'profile.release.panic="abort"'
    -Zbuild-std=std,panic_abort
)
features="${FLUXSTAT_ARTEFACT_FEATURES:-}"
((push)) && features="push${features:+,$features}"
if [[ -n $features ]]; then
    cargo_args+=(--features "$features")
fi
# The pushing build is its own file, so both can sit side by side (and in packages).
flavour=fluxstat
smoke_args=()
if ((push)); then
    flavour=fluxstat-push
    smoke_args=(--push)
fi
if ((size_flags)); then
    cargo_args+=(-Zbuild-std-features=optimize_for_size)
    export EXTRA_RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort -Cforce-unwind-tables=no -Zfmt-debug=none -Zlocation-detail=none ${FLUXSTAT_ARTEFACT_RUSTFLAGS:-}"
fi

cd "$REPO_ROOT"
# Kept across clones like the test builds (CI checks out afresh): a warm run rebuilds
# only fluxstat, not std and every dependency, per target.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$FLUXSTAT_CROSS_CACHE/target-release}"
out="$REPO_ROOT/target/artefacts"
mkdir -p "$out"
names=()
for target in "${targets[@]}"; do
    log "building $target"
    started=$SECONDS
    cross_cargo zig build "$target" "${cargo_args[@]}"
    exe="$(exe_name "$target")"
    artefact="$out/$flavour-$target${exe#fluxstat}"
    cp "$CARGO_TARGET_DIR/$target/release/$exe" "$artefact"
    if [[ $target == mips* ]]; then
        # LLVM writes a .pdr (MIPS procedure descriptors, 32 bytes per function, for
        # old debuggers) that strip keeps as it is not debug info: some 80 KiB.
        llvm-objcopy --remove-section=.pdr --remove-section=.comment "$artefact"
    fi
    if is_windows_target "$target" && [[ -z ${WINEPREFIX:-} ]]; then
        wine_prefix_start
        trap wine_prefix_stop EXIT
    fi
    runner="$(target_runner "$target")"
    log "$target built in $((SECONDS - started)) s; running it${runner:+ under $runner}"
    # shellcheck disable=SC2086 # the runner is a command line, or empty
    $runner "$artefact" --version || die "$artefact does not run${runner:+ under $runner}"
    # Serves, times a request out (408: the timer path) and stops on SIGTERM, on the
    # target's oldest CPU and, for MIPS little-endian, also on an mt7621-class one.
    # (Windows: the suite under wine covers it; SIGTERM is not how Windows stops it.)
    if ! is_windows_target "$target"; then
        smoke_runners=("$runner")
        [[ $target == mipsel-unknown-linux-musl ]] && smoke_runners+=("qemu-mipsel-static -cpu 34Kf")
        for r in "${smoke_runners[@]}"; do
            log "smoke run of $target${r:+ under $r}"
            # shellcheck disable=SC2086 # the runner is a command line, or empty
            python3 "$here/smoke.py" "${smoke_args[@]}" "$artefact" $r || die "$artefact failed its smoke run${r:+ under $r}"
        done
    fi
    names+=("${artefact##*/}")
done

cd "$out"
# SHA256SUMS covers every artefact here: the ones built now, and those of earlier
# runs (the other flavour, other targets) that are still present.
sha256sum -- fluxstat-* | LC_ALL=C sort -k2 >SHA256SUMS
printf '\n%-46s %10s %9s  %s\n' artefact bytes KiB sha256
for name in "${names[@]}"; do
    sum="$(grep "  $name\$" SHA256SUMS | cut -d' ' -f1)"
    bytes="$(stat -c %s "$name")"
    awk -v n="$name" -v b="$bytes" -v s="$sum" 'BEGIN { printf "%-46s %10d %9.1f  %s\n", n, b, b / 1024, s }'
done
