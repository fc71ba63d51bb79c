#!/usr/bin/env bash
# Usage: cross/setup.sh [TARGET...]
#
# Installs what cross/build-artefacts.sh and cross/test-under-qemu.sh need, no Docker:
#   - Debian's rustc/cargo with the std source (for -Zbuild-std on any target),
#     ARM cross gcc with glibc, and qemu-user-static, with apt;
#   - zig from PyPI (the `ziglang` wheel) and cargo-zigbuild from crates.io, into
#     ${FLUXSTAT_CROSS_CACHE:-~/.cache/fluxstat-cross};
#   - only when a Windows target is named: mingw-w64's gcc and wine with apt, and the
#     bcryptprimitives.dll stub wine 8.0 needs (cross/windows/), built into the cache.
# Idempotent: once everything is there it only checks, in about a second.
set -euo pipefail
# shellcheck source=cross/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

windows=0
for arg in "$@"; do
    is_windows_target "$arg" && windows=1
done
((windows)) && APT_PACKAGES+=("${APT_PACKAGES_WINDOWS[@]}")

install_apt_packages() {
    local missing=() p
    for p in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    if ! command -v python3 >/dev/null || ! python3 -m pip --version >/dev/null 2>&1; then
        missing+=(python3-pip)
    fi
    ((${#missing[@]})) || return 0
    local sudo=()
    [[ $(id -u) == 0 ]] || sudo=(sudo)
    log "apt-get install ${missing[*]}"
    "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 update -q
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}"
}

install_zig() {
    if [[ "$("$ZIG_DIR/ziglang/zig" version 2>/dev/null)" == "$ZIG_VERSION" ]]; then
        return 0
    fi
    log "zig $ZIG_VERSION from PyPI into $ZIG_DIR"
    local tmp="$ZIG_DIR.partial"
    rm -rf "$tmp" "$ZIG_DIR"
    python3 -m pip install --quiet --disable-pip-version-check --no-compile \
        --target "$tmp" "ziglang==$ZIG_VERSION"
    mv "$tmp" "$ZIG_DIR"
}

install_cargo_zigbuild() {
    local bin="$ZIGBUILD_ROOT/bin/cargo-zigbuild"
    if [[ "$("$bin" --version 2>/dev/null)" == "cargo-zigbuild $CARGO_ZIGBUILD_VERSION" ]]; then
        return 0
    fi
    log "cargo-zigbuild $CARGO_ZIGBUILD_VERSION from crates.io into $ZIGBUILD_ROOT"
    RUSTC=/usr/bin/rustc /usr/bin/cargo install --quiet --locked --force \
        --version "$CARGO_ZIGBUILD_VERSION" --root "$ZIGBUILD_ROOT" cargo-zigbuild
}

link_debian_rust() {
    mkdir -p "$TOOL_BIN"
    local t
    for t in cargo rustc rustdoc; do
        ln -sfn "/usr/bin/$t" "$TOOL_BIN/$t"
    done
}

# The ProcessPrng stub wine 8.0 lacks (cross/windows/bcryptprimitives.c), built again
# whenever its source changes.
build_wine_stub() {
    local src="$REPO_ROOT/cross/windows" dll="$WINDOWS_CACHE/bcryptprimitives.dll"
    if [[ -f $dll && $dll -nt $src/bcryptprimitives.c && $dll -nt $src/bcryptprimitives.def ]]; then
        return 0
    fi
    log "building $dll with mingw-w64"
    mkdir -p "$WINDOWS_CACHE"
    x86_64-w64-mingw32-gcc -shared -O2 -s -o "$dll.partial" \
        "$src/bcryptprimitives.c" "$src/bcryptprimitives.def" -ladvapi32
    mv "$dll.partial" "$dll"
}

mkdir -p "$FLUXSTAT_CROSS_CACHE"
install_apt_packages
[[ -d /usr/lib/rustlib/src/rust/library/std ]] || die "rust-web-src did not install the std source"
install_zig
install_cargo_zigbuild
link_debian_rust
((windows)) && build_wine_stub

use_cross_toolchain
log "ready: $(rustc --version), $(cargo --version), zig $(zig version), $(cargo-zigbuild --version), $(qemu-arm-static --version | head -n1)"
((windows)) && log "ready for Windows: $(x86_64-w64-mingw32-gcc --version | head -n1), $(WINEDEBUG=-all wine --version)"
exit 0
