#!/usr/bin/env bash
# Usage: packaging/release.sh [--skip-build] [TARGET...]
#
# Builds everything a release needs into target/release-assets/ (emptied first):
#   - the stripped release binaries of every cross/ target (the six ARM, the two MIPS
#     and the static x86-64 one; or the TARGETs named), in both flavours: the default
#     build and the pushing one (--push), each smoke-run under qemu, the pushing one
#     against a real InfluxDB and MQTT broker (cross/build-artefacts.sh);
#   - the OpenWrt .ipk (fluxstat and fluxstat-push) and Debian .deb packages
#     (packaging/build-packages.sh);
#   - one tarball per target and flavour, fluxstat-VERSION-TARGET.tar.gz and
#     fluxstat-push-VERSION-TARGET.tar.gz: the binary, README.md, LICENSE and the
#     packaging files (systemd unit, /etc/default file, OpenWrt init script and UCI
#     config);
#   - SHA256SUMS of all of them.
#   --skip-build   use the binaries already in target/artefacts/
# Takes about an hour on 2 cores from a cold cache (std is built per target; the
# second flavour rebuilds only fluxstat itself). The pushing smoke runs need
# influxd and mosquitto (Debian: influxdb, mosquitto, mosquitto-clients).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=cross/lib.sh
source "$here/../cross/lib.sh"
cd "$REPO_ROOT"

build=1
targets=()
for arg in "$@"; do
    case "$arg" in
        --skip-build) build=0 ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) die "unknown option $arg" ;;
        *) known_target "$arg" || die "unknown target $arg"; targets+=("$arg") ;;
    esac
done
((${#targets[@]})) || targets=("${TARGETS[@]}" "${NATIVE_TARGETS[@]}")
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)"

if ((build)); then
    bash cross/build-artefacts.sh "${targets[@]}"
    CI=1 bash cross/build-artefacts.sh --push "${targets[@]}"
fi

out="$REPO_ROOT/target/release-assets"
rm -rf "$out"
mkdir -p "$out"
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}"

log "packages"
bash packaging/build-packages.sh --out "$out" >/dev/null

log "tarballs"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for flavoured in "${targets[@]/#/fluxstat-}" "${targets[@]/#/fluxstat-push-}"; do
    bin="target/artefacts/$flavoured"
    [[ -f $bin ]] || die "$bin is missing (run without --skip-build)"
    flavour=fluxstat
    [[ $flavoured == fluxstat-push-* ]] && flavour=fluxstat-push
    name="$flavour-$version-${flavoured#"$flavour"-}"
    d="$work/$name"
    mkdir -p "$d/packaging/openwrt" "$d/packaging/debian"
    install -m 0755 "$bin" "$d/fluxstat"
    install -m 0644 README.md LICENSE "$d/"
    install -m 0644 packaging/fluxstat.service "$d/packaging/"
    install -m 0644 packaging/openwrt/fluxstat.config "$d/packaging/openwrt/"
    install -m 0755 packaging/openwrt/fluxstat.init "$d/packaging/openwrt/"
    install -m 0644 packaging/debian/fluxstat.default "$d/packaging/debian/"
    tar -C "$work" --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" \
        -cf - "$name" | gzip -9n >"$out/$name.tar.gz"
done

cd "$out"
find . -maxdepth 1 -type f ! -name SHA256SUMS -printf '%P\n' | LC_ALL=C sort | xargs sha256sum >SHA256SUMS
log "target/release-assets: $(($(wc -l <SHA256SUMS))) files and SHA256SUMS"
printf '%10s  %s\n' $(find . -maxdepth 1 -type f -printf '%s %P\n' | LC_ALL=C sort -k2)
