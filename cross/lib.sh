# shellcheck shell=bash disable=SC2034
# Shared settings of the cross/ scripts; sourced, not run.

FLUXSTAT_CROSS_CACHE="${FLUXSTAT_CROSS_CACHE:-$HOME/.cache/fluxstat-cross}"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

ZIG_VERSION=0.15.2
CARGO_ZIGBUILD_VERSION=0.24.1
# Oldest glibc the -gnu artefacts ask for (Rust's own minimum).
FLUXSTAT_GLIBC="${FLUXSTAT_GLIBC:-2.17}"

ZIG_DIR="$FLUXSTAT_CROSS_CACHE/zig-$ZIG_VERSION"
ZIGBUILD_ROOT="$FLUXSTAT_CROSS_CACHE/cargo-zigbuild-$CARGO_ZIGBUILD_VERSION"
TOOL_BIN="$FLUXSTAT_CROSS_CACHE/bin"

APT_PACKAGES=(
    rustc-web cargo-web rust-web-src
    gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf
    libc6-dev-arm64-cross libc6-dev-armhf-cross
    qemu-user-static
    # llvm-objcopy: drops the MIPS artefacts' .pdr section.
    llvm
)
# Only when a Windows target is named (cross/setup.sh x86_64-pc-windows-gnu): the
# mingw-w64 linker and C runtime, and wine to run what it builds (about 900 MB).
APT_PACKAGES_WINDOWS=(gcc-mingw-w64-x86-64 wine wine64)

TARGETS=(
    aarch64-unknown-linux-musl
    armv7-unknown-linux-musleabihf
    arm-unknown-linux-musleabihf
    aarch64-unknown-linux-gnu
    armv7-unknown-linux-gnueabihf
    arm-unknown-linux-gnueabihf
    # OpenWrt on MIPS (tier 3: std built from source): ath79/lantiq big-endian 24Kc,
    # ramips mt7621/mt76x8 little-endian. Flags in .cargo/config.toml and cross_cargo.
    mips-unknown-linux-musl
    mipsel-unknown-linux-musl
)
EXPERIMENTAL_TARGETS=()
# Built only when named: a static build for x86-64 routers and PCs running OpenWrt or
# Alpine (musl). It runs here without qemu, which also makes it the build whose idle
# RSS bench/run.sh can measure natively.
NATIVE_TARGETS=(x86_64-unknown-linux-musl)
# Built only when named: Windows 10/11 on x86-64, linked by mingw-w64's gcc and run
# here under wine (cross/windows/README.md).
WINDOWS_TARGETS=(x86_64-pc-windows-gnu)

# Where the Windows helpers are kept: the bcryptprimitives.dll stub built by setup.sh.
WINDOWS_CACHE="$FLUXSTAT_CROSS_CACHE/windows"

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Debian's rustc/cargo (with the std source for -Zbuild-std), zig and cargo-zigbuild
# first on PATH, whatever rustup has installed.
use_cross_toolchain() {
    export PATH="$TOOL_BIN:$ZIG_DIR/ziglang:$ZIGBUILD_ROOT/bin:$PATH"
    export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1
    export ZIG_GLOBAL_CACHE_DIR="${ZIG_GLOBAL_CACHE_DIR:-$FLUXSTAT_CROSS_CACHE/zig-cache}"
    unset CARGO_ENCODED_RUSTFLAGS RUSTUP_TOOLCHAIN
}

known_target() {
    local t
    for t in "${TARGETS[@]}" "${EXPERIMENTAL_TARGETS[@]}" "${NATIVE_TARGETS[@]}" "${WINDOWS_TARGETS[@]}"; do
        [[ $t == "$1" ]] && return 0
    done
    return 1
}

is_windows_target() { [[ $1 == *-windows-* ]]; }

# The file name of the fluxstat binary of TARGET.
exe_name() {
    if is_windows_target "$1"; then echo fluxstat.exe; else echo fluxstat; fi
}

# The command line that runs a binary of TARGET here: qemu-user for the Linux
# targets, wine (in the prefix wine_prefix_start made) for Windows.
target_runner() {
    if is_windows_target "$1"; then
        echo wine
    else
        qemu_runner "$1"
    fi
}

# Creates a throw-away wine prefix (in a new temp folder, or in $1 when given),
# puts the bcryptprimitives.dll stub into its system32, starts a persistent
# wineserver for it and exports WINEPREFIX and WINEDEBUG=-all, so `wine prog.exe`
# runs quietly in it. Wine 8.0 lacks bcryptprimitives.dll, whose ProcessPrng Rust's
# std imports to seed HashMap and friends (wine has it from 8.13 on); without the
# stub no Rust program starts. Undo with wine_prefix_stop.
wine_prefix_start() {
    local prefix="${1:-}"
    [[ -n $prefix ]] || prefix="$(mktemp -d "${TMPDIR:-/tmp}/fluxstat-wine.XXXXXX")"
    [[ -f $WINDOWS_CACHE/bcryptprimitives.dll ]] || die "no $WINDOWS_CACHE/bcryptprimitives.dll: run cross/setup.sh x86_64-pc-windows-gnu"
    export WINEPREFIX="$prefix" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
    # No desktop integration, no Mono/Gecko installer prompts; --init creates the
    # prefix and waits for it.
    wine wineboot --init >/dev/null 2>&1 || die "wineboot --init failed in $prefix"
    cp "$WINDOWS_CACHE/bcryptprimitives.dll" "$prefix/drive_c/windows/system32/"
    # Wine's Z: is the host's /, which Unix paths (of the tests, their fixtures and
    # temp files) resolve to. Typed as a CD drive it is not listed as a disk (a
    # hard disk Z: would be, and wine complains on stderr each time its volume is
    # queried). The tests compare with the host's /proc through C:\hostproc.
    wine reg add 'HKLM\Software\Wine\Drives' /v z: /d cdrom /f >/dev/null 2>&1 || die "cannot set the type of drive Z:"
    ln -sfn /proc "$prefix/drive_c/hostproc"
    # The server wineboot and reg started must be gone before a persistent one starts.
    wineserver --wait
    # Keeps the wineserver between the many short runs of a test suite; each new
    # one would otherwise start a server and load the prefix again.
    wineserver --persistent </dev/null >/dev/null 2>&1
    log "wine prefix $prefix ready ($(wine --version))"
}

# Ends every wine process of the prefix wine_prefix_start made and removes it.
wine_prefix_stop() {
    [[ -n ${WINEPREFIX:-} && -d $WINEPREFIX ]] || return 0
    wineserver --kill 2>/dev/null || true
    wineserver --wait 2>/dev/null || true
    case "$WINEPREFIX" in
        "${TMPDIR:-/tmp}"/fluxstat-wine.*) rm -rf "$WINEPREFIX" ;;
    esac
}

# TARGET -> CARGO_TARGET_<TRIPLE>_ prefix of cargo's per-target variables.
cargo_target_var() {
    local t="${1^^}"
    printf 'CARGO_TARGET_%s_' "${t//-/_}"
}

# The qemu-user command line that runs a binary of TARGET on this machine; the CPU is
# the oldest one the target promises to run on, so stray newer instructions trap.
qemu_runner() {
    case "$1" in
        aarch64-unknown-linux-musl) echo "qemu-aarch64-static -cpu cortex-a53" ;;
        aarch64-unknown-linux-gnu) echo "qemu-aarch64-static -cpu cortex-a53 -L /usr/aarch64-linux-gnu" ;;
        armv7-unknown-linux-musleabihf) echo "qemu-arm-static -cpu cortex-a7" ;;
        armv7-unknown-linux-gnueabihf) echo "qemu-arm-static -cpu cortex-a7 -L /usr/arm-linux-gnueabihf" ;;
        arm-unknown-linux-musleabihf) echo "qemu-arm-static -cpu arm1176" ;;
        # Debian's armhf loader and libc are ARMv7 code, so a dynamically linked ARMv6
        # binary only runs here on qemu's default (newest) CPU.
        arm-unknown-linux-gnueabihf) echo "qemu-arm-static -L /usr/arm-linux-gnueabihf" ;;
        mipsel-unknown-linux-musl) echo "qemu-mipsel-static -cpu 24KEc" ;;
        mips-unknown-linux-musl) echo "qemu-mips-static -cpu 24Kc" ;;
        x86_64-unknown-linux-musl) echo "" ;; # runs natively on the build machine
        *) die "no qemu runner for $1" ;;
    esac
}

# Runs `cargo SUBCOMMAND --target TARGET ARGS...` with the right linker for TARGET.
#   LINK=zig  cargo-zigbuild: zig links against its own musl, or the glibc $FLUXSTAT_GLIBC
#   LINK=gcc  Debian's cross gcc and glibc (aarch64 and armv7 -gnu only)
cross_cargo() {
    local link="$1" sub="$2" target="$3"
    shift 3
    local var
    var="$(cargo_target_var "$target")"
    local flags=()
    read -ra flags <<<"${EXTRA_RUSTFLAGS:-}"
    case "$target" in
        *-musl*)
            # zig brings the C runtime; there is no self-contained musl in Debian's sysroot.
            flags+=(-Clink-self-contained=no)
            ;;
    esac
    if is_windows_target "$target"; then
        # x64 Windows unwinds through its own tables (.pdata/.xdata): rustc refuses
        # to build without them.
        local f keep=()
        for f in "${flags[@]}"; do
            [[ $f == -Cforce-unwind-tables=no ]] || keep+=("$f")
        done
        flags=("${keep[@]}")
    fi
    case "$target" in
        armv7-*)
            # Thumb-2 instead of the target's default A32 encoding: every ARMv7-A core
            # runs it, and it makes the code about a quarter smaller. Tests and
            # artefacts both use it, so the suite under qemu runs the shipped encoding.
            flags+=(-Ctarget-feature=+thumb-mode)
            ;;
        mips-unknown-linux-musl | mipsel-unknown-linux-musl)
            # The [target.mips*] rustflags of .cargo/config.toml, which RUSTFLAGS
            # overrides: non-PIE (static-pie GOT bug) and rustix's time32 conversion.
            flags+=(-Crelocation-model=static --cfg fix_y2038)
            ;;
    esac
    export RUSTFLAGS="${flags[*]}"
    # mingw-w64's gcc links the Windows builds, whatever LINK says.
    is_windows_target "$target" && link=gcc
    if [[ $link == gcc ]]; then
        case "$target" in
            aarch64-unknown-linux-gnu) export "${var}LINKER=aarch64-linux-gnu-gcc" ;;
            armv7-unknown-linux-gnueabihf) export "${var}LINKER=arm-linux-gnueabihf-gcc" ;;
            x86_64-pc-windows-gnu) export "${var}LINKER=x86_64-w64-mingw32-gcc" ;;
            *) die "$target is not linked with gcc" ;;
        esac
        cargo "$sub" --target "$target" "$@"
    else
        local zt="$target"
        [[ $target == *-gnu* ]] && zt="$target.$FLUXSTAT_GLIBC"
        [[ $sub == build ]] && sub=zigbuild
        cargo-zigbuild "$sub" --target "$zt" "$@"
    fi
}
