#!/usr/bin/env bash
# Usage: packaging/build-packages.sh [--version V] [--out DIR] [--binary TARGET=PATH]...
#                                    [--push-binary TARGET=PATH]...
#
# Builds the packages people install with their own package manager from the
# release artefacts in target/artefacts/ (cross/build-artefacts.sh, with and
# without --push), without the OpenWrt SDK or debhelper:
#   - OpenWrt .ipk, one per OpenWrt architecture name a binary fits (opkg checks the
#     name against the router's DISTRIB_ARCH): the binary, a procd init script that
#     reads /etc/config/fluxstat (UCI), that config as a conffile, and a postinst
#     that enables and starts the service. Two flavours: `fluxstat` (the default
#     build, held to the router size budget) from fluxstat-TARGET, and
#     `fluxstat-push` (also pushes to InfluxDB and MQTT/Home Assistant) from
#     fluxstat-push-TARGET; each conflicts with the other;
#   - Debian .deb (dpkg-deb) from the pushing build (a Debian machine has the room):
#     the binary, the hardened systemd unit, /etc/default/fluxstat, maintainer
#     scripts that enable and start the unit only where systemd runs (nothing starts
#     in a chroot).
# Every binary's ELF header is checked against the architecture it is packaged for.
#
#   --version V            upstream version (default: Cargo.toml's); the package
#                          revision is always 1 (V-1)
#   --out DIR              where the packages go (default target/packages)
#   --binary TARGET=PATH   package PATH as TARGET's binary instead of
#                          target/artefacts/fluxstat-TARGET
#   --push-binary TARGET=PATH  the same for the pushing build
#                          (target/artefacts/fluxstat-push-TARGET)
# Targets without a binary are skipped (and named); none at all is an error.
# Needs: tar, gzip, dpkg-deb. SOURCE_DATE_EPOCH (default: the last commit's time)
# fixes every timestamp, so the same binaries give the same packages.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
here="$root/packaging"

die() { printf 'build-packages.sh: %s\n' "$*" >&2; exit 2; }
log() { printf '==> %s\n' "$*" >&2; }

version="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/Cargo.toml" | head -n1)"
out="$root/target/packages"
declare -A binary=()
declare -A push_binary=()
while (($#)); do
    case "$1" in
        --version) version="${2:?--version needs a value}"; shift 2 ;;
        --out) out="${2:?--out needs a value}"; shift 2 ;;
        --binary)
            [[ ${2:-} == *=* ]] || die "--binary needs TARGET=PATH"
            binary["${2%%=*}"]="${2#*=}"
            shift 2
            ;;
        --push-binary)
            [[ ${2:-} == *=* ]] || die "--push-binary needs TARGET=PATH"
            push_binary["${2%%=*}"]="${2#*=}"
            shift 2
            ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument $1 (--help)" ;;
    esac
done
[[ $version =~ ^[0-9][0-9A-Za-z.+~]*$ ]] || die "'$version' is not a package version"
release="$version-1"
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct 2>/dev/null || date +%s)}"
maintainer="${FLUXSTAT_PKG_MAINTAINER:-fluxstat maintainers <maintainers@fluxstat.invalid>}"
summary="tiny system-metrics exporter: JSON over HTTP for routers and SBCs"

# Rust target -> OpenWrt package architectures (DISTRIB_ARCH values) it runs on.
# ARMv7 hard-float needs VFPv3-D16, so the FPU-less arm_cortex-a9 (bcm53xx) is not
# listed; the ARMv6 build covers bcm2708 (Pi 1, Zero).
declare -A IPK_ARCHS=(
    [aarch64-unknown-linux-musl]="aarch64_generic aarch64_cortex-a53 aarch64_cortex-a72 aarch64_cortex-a76"
    [armv7-unknown-linux-musleabihf]="arm_cortex-a7 arm_cortex-a7_neon-vfpv4 arm_cortex-a7_vfpv4 arm_cortex-a8_vfpv3 arm_cortex-a9_vfpv3-d16 arm_cortex-a9_neon arm_cortex-a15_neon-vfpv4 arm_cortex-a5_vfpv4"
    [arm-unknown-linux-musleabihf]="arm_arm1176jzf-s_vfp"
    [mips-unknown-linux-musl]="mips_24kc"
    [mipsel-unknown-linux-musl]="mipsel_24kc mipsel_74kc"
    [x86_64-unknown-linux-musl]="x86_64"
)
# Rust target -> Debian architecture. armhf gets the ARMv6 build: Raspberry Pi OS's
# armhf runs on the ARMv6 Pi Zero and 1 too, where ARMv7 code dies. No armel: its
# ARMv5 devices cannot run the ARMv6 build, and no static ARMv5 build exists yet.
declare -A DEB_ARCH=(
    [aarch64-unknown-linux-musl]=arm64
    [arm-unknown-linux-musleabihf]=armhf
    [x86_64-unknown-linux-musl]=amd64
)
# Rust target -> ELF class, data encoding and e_machine the binary must have.
declare -A ELF=(
    [aarch64-unknown-linux-musl]="2 1 183"
    [armv7-unknown-linux-musleabihf]="1 1 40"
    [arm-unknown-linux-musleabihf]="1 1 40"
    [mips-unknown-linux-musl]="1 2 8"
    [mipsel-unknown-linux-musl]="1 1 8"
    [x86_64-unknown-linux-musl]="2 1 62"
)

# check_elf TARGET FILE: dies unless FILE is an ELF executable for TARGET.
check_elf() {
    local magic class data machine
    magic="$(od -An -N4 -tx1 "$2" | tr -d ' \n')"
    [[ $magic == 7f454c46 ]] || die "$2 is not an ELF file"
    read -r class data <<<"$(od -An -j4 -N2 -tu1 "$2")"
    if ((data == 1)); then
        machine="$(od -An -j18 -N2 -tu1 "$2" | awk '{ print $1 + 256 * $2 }')"
    else
        machine="$(od -An -j18 -N2 -tu1 "$2" | awk '{ print 256 * $1 + $2 }')"
    fi
    [[ "$class $data $machine" == "${ELF[$1]}" ]] ||
        die "$2 is not a $1 binary (ELF class, data, machine: $class $data $machine; want ${ELF[$1]})"
}

# Deterministic tar.gz of the entries of DIR (owner root, fixed time, sorted).
tgz() {
    local dir="$1" dest="$2"
    shift 2
    tar -C "$dir" --format=gnu --sort=name --owner=0 --group=0 --numeric-owner \
        --mtime="@$SOURCE_DATE_EPOCH" -cf - "$@" | gzip -9n >"$dest"
}

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"
built=()

# build_ipk TARGET BINARY PACKAGE: one .ipk per OpenWrt architecture of TARGET,
# PACKAGE being fluxstat or fluxstat-push.
build_ipk() {
    local target="$1" bin="$2" package="$3" arch d relations description
    d="$work/ipk-$package-$target"
    mkdir -p "$d/data/usr/bin" "$d/data/etc/init.d" "$d/data/etc/config" "$d/control"
    install -m 0755 "$bin" "$d/data/usr/bin/fluxstat"
    install -m 0755 "$here/openwrt/fluxstat.init" "$d/data/etc/init.d/fluxstat"
    install -m 0644 "$here/openwrt/fluxstat.config" "$d/data/etc/config/fluxstat"
    install -m 0755 "$here/openwrt/postinst" "$here/openwrt/prerm" "$d/control/"
    echo /etc/config/fluxstat >"$d/control/conffiles"
    tgz "$d/data" "$d/data.tar.gz" ./usr ./etc
    local size
    size="$(find "$d/data" -type f -printf "%s\n" | awk "{ s += \$1 } END { print s }")"
    echo 2.0 >"$d/debian-binary"
    # Both flavours own the same files: one at a time.
    if [[ $package == fluxstat-push ]]; then
        relations=$'Provides: fluxstat\nConflicts: fluxstat'
        description="$summary, pushing to InfluxDB and MQTT"
    else
        relations='Conflicts: fluxstat-push'
        description="$summary"
    fi
    for arch in ${IPK_ARCHS[$target]}; do
        cat >"$d/control/control" <<EOF
Package: $package
Version: $release
$relations
Source: fluxstat
SourceName: fluxstat
License: Apache-2.0
LicenseFiles: LICENSE
Section: utils
Maintainer: $maintainer
Architecture: $arch
Installed-Size: $size
Description: $description
 fluxstat serves this machine's uptime, CPU, memory, disk and network figures
 as JSON at http://<router>:8001/metrics. Settings: /etc/config/fluxstat.
EOF
        if [[ $package == fluxstat-push ]]; then
            cat >>"$d/control/control" <<EOF
 This flavour also pushes each sample to InfluxDB and to an MQTT broker with
 Home Assistant discovery (the push options in /etc/config/fluxstat).
EOF
        fi
        tgz "$d/control" "$d/control.tar.gz" ./control ./conffiles ./postinst ./prerm
        # The outer wrapper ipkg-build (OpenWrt's own packaging) writes and
        # opkg 23.05/24.10 reads: a gzipped tar, debian-binary first.
        local ipk="$out/${package}_${release}_$arch.ipk"
        tgz "$d" "$ipk" ./debian-binary ./data.tar.gz ./control.tar.gz
        built+=("$ipk")
    done
}

# build_deb TARGET BINARY: the .deb of TARGET's Debian architecture (BINARY: the
# pushing build).
build_deb() {
    local target="$1" bin="$2" arch="${DEB_ARCH[$1]}" d
    d="$work/deb-$target"
    mkdir -p "$d/DEBIAN" "$d/usr/bin" "$d/lib/systemd/system" "$d/etc/default" \
        "$d/usr/share/doc/fluxstat" "$d/usr/share/lintian/overrides"
    install -m 0755 "$bin" "$d/usr/bin/fluxstat"
    # The repository's unit, with the packaged binary and /etc/default/fluxstat.
    sed -e 's|^ExecStart=/usr/local/bin/fluxstat$|ExecStart=/usr/bin/fluxstat|' \
        -e '/^ExecStart=/i EnvironmentFile=-/etc/default/fluxstat' \
        -e '/^Description=/a Documentation=file:///usr/share/doc/fluxstat/README.md' \
        "$here/fluxstat.service" >"$d/lib/systemd/system/fluxstat.service"
    grep -qx 'ExecStart=/usr/bin/fluxstat' "$d/lib/systemd/system/fluxstat.service" ||
        die "packaging/fluxstat.service: ExecStart= is no longer /usr/local/bin/fluxstat; update this script"
    chmod 0644 "$d/lib/systemd/system/fluxstat.service"
    install -m 0644 "$here/debian/fluxstat.default" "$d/etc/default/fluxstat"
    install -m 0644 "$here/debian/copyright" "$d/usr/share/doc/fluxstat/copyright"
    install -m 0644 "$root/README.md" "$d/usr/share/doc/fluxstat/README.md"
    {
        printf 'fluxstat (%s) unstable; urgency=medium\n\n' "$release"
        printf '  * Upstream release %s, packaged by packaging/build-packages.sh.\n\n' "$version"
        printf ' -- %s  %s\n' "$maintainer" "$(date -u -R -d "@$SOURCE_DATE_EPOCH")"
    } | gzip -9n >"$d/usr/share/doc/fluxstat/changelog.Debian.gz"
    chmod 0644 "$d/usr/share/doc/fluxstat/changelog.Debian.gz"
    install -m 0644 "$here/debian/lintian-overrides" "$d/usr/share/lintian/overrides/fluxstat"
    install -m 0755 "$here/debian/postinst" "$here/debian/prerm" "$here/debian/postrm" "$d/DEBIAN/"
    echo /etc/default/fluxstat >"$d/DEBIAN/conffiles"
    local size
    size="$(du -sk --apparent-size --exclude=DEBIAN "$d" | cut -f1)"
    cat >"$d/DEBIAN/control" <<EOF
Package: fluxstat
Version: $release
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $size
Section: net
Priority: optional
Description: $summary
 fluxstat serves this machine's uptime, CPU, memory, disk and network figures
 as JSON at http://<host>:8001/metrics, from a single static binary, and can
 push them to InfluxDB and to an MQTT broker with Home Assistant discovery. It
 runs as a hardened systemd service; options go to /etc/default/fluxstat.
EOF
    (cd "$d" && find . -type f ! -path './DEBIAN/*' -printf '%P\n' | LC_ALL=C sort | xargs md5sum >DEBIAN/md5sums)
    chmod 0644 "$d/DEBIAN/md5sums"
    find "$d" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
    local deb="$out/fluxstat_${release}_$arch.deb"
    dpkg-deb --root-owner-group -Zxz --build "$d" "$deb" >/dev/null
    built+=("$deb")
}

skipped=()
for target in "${!ELF[@]}"; do
    bin="${binary[$target]:-$root/target/artefacts/fluxstat-$target}"
    push_bin="${push_binary[$target]:-$root/target/artefacts/fluxstat-push-$target}"
    if [[ -f $bin ]]; then
        check_elf "$target" "$bin"
        build_ipk "$target" "$bin" fluxstat
    else
        skipped+=("fluxstat-$target")
    fi
    if [[ -f $push_bin ]]; then
        check_elf "$target" "$push_bin"
        build_ipk "$target" "$push_bin" fluxstat-push
        [[ -n ${DEB_ARCH[$target]:-} ]] && build_deb "$target" "$push_bin"
    else
        skipped+=("fluxstat-push-$target")
    fi
done
for target in "${!binary[@]}" "${!push_binary[@]}"; do
    [[ -n ${ELF[$target]:-} ]] || die "no packages for target $target"
done
((${#built[@]})) || die "no binaries: run cross/build-artefacts.sh [--push] first (or give --binary)"
((${#skipped[@]} == 0)) || log "no binary, so no packages from: ${skipped[*]}"
printf '%s\n' "${built[@]}" | sort
