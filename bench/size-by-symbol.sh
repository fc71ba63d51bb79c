#!/usr/bin/env bash
# bench/size-by-symbol.sh — where an artefact's bytes go: build unstripped router
# binaries with the release artefact's flags, then compare two by symbol.
#
#   bench/size-by-symbol.sh build NAME [FEATURES] [TARGET] [TREE]
#       builds TREE (default: this checkout) for TARGET (default
#       armv7-unknown-linux-musleabihf) with FEATURES (e.g. push; "" for the
#       default build) like cross/build-artefacts.sh does (build-std, size flags,
#       panic=immediate-abort), but unstripped: $SZ_OUT/NAME, and NAME.stripped,
#       whose size is what the artefact weighs.
#   bench/size-by-symbol.sh diff A B [TOP]
#       the stripped sizes, the growth from A to B summed by crate (C library,
#       push, fluxstat, std…), and the TOP (default 40) symbols that grew most.
#       Aliases (one address, several names: musl's weak aliases) count once.
#
# e.g. the cost of the push feature:
#   bench/size-by-symbol.sh build def ""
#   bench/size-by-symbol.sh build push push
#   bench/size-by-symbol.sh diff def push
# An older commit: git worktree add /tmp/old REV; bench/size-by-symbol.sh build old push "" /tmp/old
#
# Environment: SZ_OUT (default /tmp/fluxstat-size), SZ_TARGET_DIR (cargo's target
# directory; default a size-only one in the cross cache, so that it does not fight
# other builds for cargo's lock). Needs the cross toolchain (cross/setup.sh) and
# llvm-nm. BENCHMARKS.md ("Pushing: CPU per sample and the artefact") was measured with it.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
out=${SZ_OUT:-/tmp/fluxstat-size}
usage() { sed -n 2,27p "$0" >&2; exit 2; }
[ $# -ge 2 ] || usage

case $1 in
build)
    name=$2 feats=${3:-} target=${4:-armv7-unknown-linux-musleabihf} tree=${5:-$here}
    # shellcheck source=../cross/lib.sh
    source "$here/cross/lib.sh"
    use_cross_toolchain
    export CARGO_TARGET_DIR=${SZ_TARGET_DIR:-$FLUXSTAT_CROSS_CACHE/target-size}
    mkdir -p "$out"
    args=(--release --locked --config 'profile.release.strip=false' --config 'profile.release.panic="abort"'
        -Zbuild-std=std,panic_abort -Zbuild-std-features=optimize_for_size)
    [ -n "$feats" ] && args+=(--features "$feats")
    export EXTRA_RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort -Cforce-unwind-tables=no -Zfmt-debug=none -Zlocation-detail=none"
    (cd "$tree" && cross_cargo zig build "$target" "${args[@]}") >"$out/$name.log" 2>&1 ||
        { tail -30 "$out/$name.log" >&2; exit 1; }
    cp "$CARGO_TARGET_DIR/$target/release/fluxstat" "$out/$name"
    llvm-strip -o "$out/$name.stripped" "$out/$name" 2>/dev/null || strip -o "$out/$name.stripped" "$out/$name"
    stat -c '%n %s' "$out/$name.stripped"
    ;;
diff)
    [ $# -ge 3 ] || usage
    python3 - "$out/$2" "$out/$3" "${4:-40}" <<'PY'
import collections, os, re, subprocess, sys

def symbols(path):
    """name -> size, one name per address (the longest: aliases count once)."""
    out = subprocess.run(["llvm-nm", "--print-size", "--size-sort", "-C", path],
                         capture_output=True, text=True, check=True).stdout
    by_addr = {}
    for line in out.splitlines():
        p = line.split(None, 3)
        if len(p) < 4:
            continue
        addr, size, name = p[0], int(p[1], 16), p[3]
        if addr not in by_addr or len(name) > len(by_addr[addr][1]):
            by_addr[addr] = (size, name)
    sizes = collections.Counter()
    for size, name in by_addr.values():
        # Names that differ from build to build: anonymous constants (by size
        # instead) and the numbered copies of one function.
        name = re.sub(r"^\.Lanon\.[0-9a-f]+\.\d+$", f".Lanon (a constant of {size} bytes)", name)
        sizes[re.sub(r" \(\.\d+\)$", "", name)] += size
    return sizes

def crate(name):
    if name.startswith(".L"):
        return "constants (.L)"
    if "::" not in name and "<" not in name:
        return "C library"
    if "push" in name:
        return "fluxstat::push"
    m = re.match(r"[<&]*(?:dyn )?([a-z_0-9]+)::", name)
    return m.group(1) if m else "other"

a_path, b_path, top = sys.argv[1], sys.argv[2], int(sys.argv[3])
for p in (a_path, b_path):
    print(f"{os.path.basename(p)}.stripped: {os.path.getsize(p + '.stripped'):,} bytes")
da = os.path.getsize(b_path + ".stripped") - os.path.getsize(a_path + ".stripped")
print(f"difference: {da:+,} bytes\n")
a, b = symbols(a_path), symbols(b_path)
by_crate = collections.Counter()
for k in set(a) | set(b):
    by_crate[crate(k)] += b[k] - a[k]
print("by crate (symbol bytes, unstripped):")
for c, v in sorted(by_crate.items(), key=lambda kv: -abs(kv[1])):
    if v:
        print(f"  {v:+8,}  {c}")
diff = sorted(((b[k] - a[k], k) for k in set(a) | set(b) if a[k] != b[k]), reverse=True)
print(f"\nthe {top} symbols that grew most:")
for d, k in diff[:top]:
    print(f"  {d:+8,}  {k[:150]}")
print("\nand shrank most:")
for d, k in sorted(diff)[:10]:
    if d < 0:
        print(f"  {d:+8,}  {k[:150]}")
PY
    ;;
*) usage ;;
esac
