#!/usr/bin/env bash
# Usage: packaging/test-packages.sh
#
# Tests the packages packaging/build-packages.sh makes, from the release artefacts
# in target/artefacts/ (the static x86-64 ones, with and without pushing, are built
# if missing):
#   1. every .ipk of both flavours (fluxstat, fluxstat-push), unpacked with tar: its
#      outer layout, control fields (each flavour conflicts with the other),
#      conffiles, maintainer scripts and payload (modes; the binary's ELF header
#      matches the package's architecture; the fluxstat-push binary pushes);
#   2. the procd init script's UCI -> command-line translation, run against fixture
#      configs with a stub of OpenWrt's shell libraries (packaging/tests/); the
#      command line it makes is then run with the real pushing binary and answers
#      with its pushers on; the plain binary refuses a push option naming fluxstat-push;
#   3. every option the pushing build's `fluxstat --help` lists (a superset of the
#      plain build's) is in /etc/config/fluxstat, the init script and
#      /etc/default/fluxstat;
#   4. the .deb (the pushing build): lintian (any tag not overridden with a reason
#      fails, so does an unused override), then the amd64 package installed on this machine with dpkg
#      (no systemd here, so the maintainer scripts must enable the unit and start
#      nothing), run by hand (curl /metrics), upgraded to a higher version (a
#      changed /etc/default/fluxstat survives), and purged: no file, directory,
#      enablement link, user or process of it is left.
# Needs root for step 4 (dpkg). Refuses to run if a fluxstat package is installed.
# Installs lintian, jq and curl with apt if missing.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

fail() { printf 'test-packages.sh: FAIL: %s\n' "$*" >&2; exit 1; }
ok() { printf 'ok - %s\n' "$*"; }
log() { printf '==> %s\n' "$*" >&2; }

[[ $(id -u) == 0 ]] || fail "needs root (dpkg -i)"
if dpkg-query -W -f='${Status}' fluxstat 2>/dev/null | grep -q 'installed\|config-files'; then
    fail "a fluxstat package is already on this machine; purge it first (dpkg --purge fluxstat)"
fi
missing=()
for tool in lintian jq curl; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
if ((${#missing[@]})); then
    log "apt-get install ${missing[*]}"
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

native="target/artefacts/fluxstat-x86_64-unknown-linux-musl"
native_push="target/artefacts/fluxstat-push-x86_64-unknown-linux-musl"
[[ -x $native ]] || bash cross/build-artefacts.sh x86_64-unknown-linux-musl
[[ -x $native_push ]] || bash cross/build-artefacts.sh --push x86_64-unknown-linux-musl
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)"

work="$(mktemp -d)"
pids=()
installed=0
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    ((installed)) && dpkg --purge fluxstat >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

# A TCP port nobody listens on now (the kernel's pick; other tests use 8001).
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# wait_http URL [curl args]: until URL answers 200, at most 10 s.
wait_http() {
    local url="$1" i
    shift
    for i in $(seq 100); do
        curl -fsS -o /dev/null "$@" "$url" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# stop PID: SIGTERM and wait for the exit, at most 5 s.
stop() {
    local i
    kill "$1" 2>/dev/null || return 0
    for i in $(seq 50); do
        kill -0 "$1" 2>/dev/null || { wait "$1" 2>/dev/null || true; return 0; }
        sleep 0.1
    done
    fail "fluxstat (pid $1) did not stop on SIGTERM"
}

log "building the packages (packaging/build-packages.sh)"
bash packaging/build-packages.sh --out "$work/v1" >"$work/v1.list"
bash packaging/build-packages.sh --out "$work/v2" --version "$version+test1" >"$work/v2.list"
ok "packages built: $(wc -l <"$work/v1.list") for version $version"

# ---- 1. the .ipk files -------------------------------------------------------
# OpenWrt architecture -> ELF class, data encoding, machine.
elf_of_arch() {
    case "$1" in
        aarch64_*) echo "2 1 183" ;;
        arm_*) echo "1 1 40" ;;
        mips_*) echo "1 2 8" ;;
        mipsel_*) echo "1 1 8" ;;
        x86_64) echo "2 1 62" ;;
        *) fail "unknown OpenWrt architecture $1" ;;
    esac
}
elf_of_file() {
    local class data
    read -r class data <<<"$(od -An -j4 -N2 -tu1 "$1")"
    if ((data == 1)); then
        echo "$class $data $(od -An -j18 -N2 -tu1 "$1" | awk '{ print $1 + 256 * $2 }')"
    else
        echo "$class $data $(od -An -j18 -N2 -tu1 "$1" | awk '{ print 256 * $1 + $2 }')"
    fi
}
field() { sed -n "s/^$1: //p" "$2"; }

ipks=0
declare -A flavours=()
while read -r ipk; do
    [[ $ipk == *.ipk ]] || continue
    ipks=$((ipks + 1))
    name="$(basename "$ipk")"
    package="${name%%_*}"
    [[ $package == fluxstat || $package == fluxstat-push ]] || fail "$name: unknown package name $package"
    flavours[$package]=1
    arch="${name#"$package"_"$version"-1_}"
    arch="${arch%.ipk}"
    d="$work/ipk/$package/$arch"
    mkdir -p "$d/control" "$d/data"
    # The outer wrapper: a gzipped tar, as ipkg-build writes and opkg reads.
    [[ "$(od -An -N2 -tx1 "$ipk" | tr -d ' ')" == 1f8b ]] || fail "$name: not gzip"
    [[ "$(tar -tzf "$ipk" | tr '\n' ' ')" == "./debian-binary ./data.tar.gz ./control.tar.gz " ]] ||
        fail "$name: outer members are $(tar -tzf "$ipk" | tr '\n' ' ')"
    tar -xzf "$ipk" -C "$d"
    [[ "$(cat "$d/debian-binary")" == 2.0 ]] || fail "$name: debian-binary is not 2.0"
    tar -xzf "$d/control.tar.gz" -C "$d/control"
    tar -xzf "$d/data.tar.gz" -C "$d/data"
    c="$d/control/control"
    [[ "$(field Package "$c")" == "$package" ]] || fail "$name: Package"
    # opkg checks only the incoming package's Conflicts, so both name the other.
    if [[ $package == fluxstat-push ]]; then
        [[ "$(field Provides "$c"):$(field Conflicts "$c")" == fluxstat:fluxstat ]] ||
            fail "$name: Provides '$(field Provides "$c")', Conflicts '$(field Conflicts "$c")' (want fluxstat, fluxstat)"
        [[ $arch != x86_64 ]] || "$d/data/usr/bin/fluxstat" --help | grep -q -- '--mqtt URL' ||
            fail "$name: its binary has no --mqtt: not the pushing build"
    else
        [[ "$(field Conflicts "$c")" == fluxstat-push && -z "$(field Provides "$c")" ]] ||
            fail "$name: Conflicts '$(field Conflicts "$c")', Provides '$(field Provides "$c")' (want fluxstat-push, none)"
        [[ $arch != x86_64 ]] || ! "$d/data/usr/bin/fluxstat" --help | grep -q -- '--mqtt' ||
            fail "$name: its binary pushes: not the default build"
    fi
    [[ "$(field Version "$c")" == "$version-1" ]] || fail "$name: Version $(field Version "$c")"
    [[ "$(field Architecture "$c")" == "$arch" ]] || fail "$name: Architecture $(field Architecture "$c") in $arch's file"
    [[ -n "$(field Description "$c")" && -n "$(field Maintainer "$c")" && -n "$(field License "$c")" ]] ||
        fail "$name: Description, Maintainer or License missing"
    payload="$(find "$d/data" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')"
    [[ "$(field Installed-Size "$c")" == "$payload" ]] || fail "$name: Installed-Size $(field Installed-Size "$c") != $payload bytes"
    [[ "$(cat "$d/control/conffiles")" == /etc/config/fluxstat ]] || fail "$name: conffiles"
    [[ "$(tar -tzvf "$d/data.tar.gz" | awk '{ print $1, $2, $6 }' | LC_ALL=C sort | tr '\n' ';')" == \
        "-rw-r--r-- 0/0 ./etc/config/fluxstat;-rwxr-xr-x 0/0 ./etc/init.d/fluxstat;-rwxr-xr-x 0/0 ./usr/bin/fluxstat;drwxr-xr-x 0/0 ./etc/;drwxr-xr-x 0/0 ./etc/config/;drwxr-xr-x 0/0 ./etc/init.d/;drwxr-xr-x 0/0 ./usr/;drwxr-xr-x 0/0 ./usr/bin/;" ]] ||
        fail "$name: payload is $(tar -tzvf "$d/data.tar.gz")"
    [[ "$(elf_of_file "$d/data/usr/bin/fluxstat")" == "$(elf_of_arch "$arch")" ]] ||
        fail "$name: the binary's ELF header ($(elf_of_file "$d/data/usr/bin/fluxstat")) is not $arch's"
    for s in postinst prerm; do
        [[ -x $d/control/$s ]] || fail "$name: $s is not executable"
        sh -n "$d/control/$s" || fail "$name: $s has a syntax error"
    done
    sh -n "$d/data/etc/init.d/fluxstat" || fail "$name: the init script has a syntax error"
    [[ "$(head -n1 "$d/data/etc/init.d/fluxstat")" == '#!/bin/sh /etc/rc.common' ]] || fail "$name: init script shebang"
done <"$work/v1.list"
((ipks > 0)) || fail "no .ipk was built"
[[ -n ${flavours[fluxstat]:-} && -n ${flavours[fluxstat-push]:-} ]] || fail "not both flavours built: ${!flavours[*]}"
ok "$ipks .ipk files of fluxstat and fluxstat-push: tar.gz of debian-binary, data.tar.gz, control.tar.gz; control fields, conflicts, conffiles, modes and ELF machine right"

# ---- 2. UCI -> command line -----------------------------------------------------
# run_init FIXTURE OUT: runs the init script's start_service with the stub libraries.
run_init() {
    UCI_FILE="$1" PROCD_OUT="$2" sh -c '
        . "$0/packaging/tests/openwrt-stub.sh"
        . "$0/packaging/openwrt/fluxstat.init"
        start_service
        service_triggers
        [ "$PROCD_OPEN" = 2 ] || { echo "instance not closed" >&2; exit 1; }
    ' "$root" || fail "start_service failed on $1"
}
expect_cmd() {
    local got
    got="$(tr '\n' ' ' <"$2.cmd")"
    [[ $got == "$3 " ]] || fail "$1: the init script made the command
  $got
expected
  $3"
}

run_init packaging/openwrt/fluxstat.config "$work/shipped"
expect_cmd "the shipped /etc/config/fluxstat" "$work/shipped" "/usr/bin/fluxstat"
grep -qx 'param user nobody' "$work/shipped" || fail "the instance does not run as nobody"
grep -qx 'param respawn 3600 5 5' "$work/shipped" || fail "no respawn"
grep -qx 'trigger fluxstat' "$work/shipped" || fail "no reload trigger on /etc/config/fluxstat"
ok "shipped config (all commented out): /usr/bin/fluxstat with its defaults, as nobody, respawned, reloaded on config change"

port="$(free_port)"
token="$work/token"
echo "s3cret-token" >"$token"
secret="$work/secret"
echo "fluxstat:pa55" >"$secret"
mqtt_port="$(free_port)"
sed -e "s|@PORT@|$port|g" -e "s|@TOKEN_FILE@|$token|" -e "s|@SECRET_FILE@|$secret|g" -e "s|@MQTT_PORT@|$mqtt_port|" \
    packaging/tests/uci-every-option >"$work/every.uci"
run_init "$work/every.uci" "$work/every"
expect_cmd "every option" "$work/every" "/usr/bin/fluxstat --listen 127.0.0.1:$port --listen [::1]:$port \
--allow 127.0.0.0/8,::1 --token-file $token --allow-host router.lan,fluxstat.example \
--cors-origin http://192.168.1.10:8123 --interval 500ms --max-connections 64 --request-timeout 5s \
--idle-timeout 30s --disk-exclude-fs squashfs,tmpfs,overlay --disk-exclude-mount /rom,/tmp/* \
--net-include lo,eth* --net-exclude veth* --disk-io-exclude loop*,ram* --dhcp-leases /tmp/dhcp.leases \
--dhcp-leases /tmp/other.leases --procfs /proc --sysfs /sys --log-level warn --page off \
--influx-url http://127.0.0.1:$mqtt_port/write?db=fluxstat --influx-token-file $secret \
--mqtt mqtt://127.0.0.1:$mqtt_port --mqtt-credentials-file $secret --mqtt-discovery-prefix ha \
--push-interval 1s --push-backlog 30"
ok "every UCI option becomes its flag; lists joined where a repeated flag would replace"

run_init packaging/tests/uci-single-options "$work/single"
expect_cmd "lists written as options" "$work/single" \
    "/usr/bin/fluxstat --listen 127.0.0.1:8001 --allow 10.0.0.0/8,192.168.0.0/16 --allow-host router.lan"
ok "list options written as plain options are taken too"

# The command line from every option, run with the real pushing binary: fluxstat
# accepts each value and serves with them (token required, CORS header sent, both
# pushers on; nothing listens on their port, so they count failures).
mapfile -t args <"$work/every.cmd"
args[0]="$native_push"
"${args[@]}" 2>"$work/every.log" &
pids+=($!)
wait_http "http://127.0.0.1:$port/health" || fail "fluxstat with the UCI command line did not serve: $(cat "$work/every.log")"
code="$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/metrics")"
[[ $code == 401 ]] || fail "/metrics without the token gave $code, not 401"
curl -fsS -H "Authorization: Bearer s3cret-token" -H "Origin: http://192.168.1.10:8123" -D "$work/h" \
    "http://127.0.0.1:$port/metrics" >"$work/every.json"
jq -e '.fluxstat.push.influx.sent == 0 and .fluxstat.push.mqtt.sent == 0' "$work/every.json" >/dev/null ||
    fail "/metrics with the token is not JSON with both pushers on: $(head -c 300 "$work/every.json")"
grep -qi '^access-control-allow-origin: http://192.168.1.10:8123' "$work/h" || fail "no CORS header for the UCI cors_origin"
stop "${pids[-1]}"
ok "the pushing binary runs with that command line: 401 without the token; JSON, the CORS header and both pushers on with it"

# The plain build with a push option set in UCI: a usage error naming the flavour
# that has it (procd logs it), never a service that quietly does not push.
set +e
"$native" --listen "127.0.0.1:$port" --mqtt "mqtt://127.0.0.1:$mqtt_port" 2>"$work/plain.err"
code=$?
set -e
[[ $code == 2 ]] || fail "the plain build with --mqtt exited $code, not 2: $(cat "$work/plain.err")"
grep -q 'fluxstat-push' "$work/plain.err" || fail "the plain build's refusal does not name fluxstat-push: $(cat "$work/plain.err")"
ok "the plain build refuses a push option (exit 2) and names fluxstat-push"

# ---- 3. every option everywhere ---------------------------------------------
mapfile -t options < <("$native_push" --help | sed -n 's/^  --\([a-z-]*\) [A-Z].*/\1/p')
((${#options[@]} >= 10)) || fail "could not read the options from fluxstat --help"
while read -r o; do
    printf '%s\n' "${options[@]}" | grep -qx -- "$o" || fail "--$o of the plain build is not in the pushing build's --help"
done < <("$native" --help | sed -n 's/^  --\([a-z-]*\) [A-Z].*/\1/p')
for o in "${options[@]}"; do
    u="${o//-/_}"
    e="FLUXSTAT_${u^^}"
    grep -Eq "^[[:space:]]*#?(list|option) $u " packaging/openwrt/fluxstat.config || fail "/etc/config/fluxstat lacks $u (--$o)"
    grep -Eq "^[[:space:]]*fluxstat_(option|list|joined) $u --$o\$" packaging/openwrt/fluxstat.init || fail "fluxstat.init does not pass $u as --$o"
    grep -Eq "^#?$e=" packaging/debian/fluxstat.default || fail "/etc/default/fluxstat lacks $e"
done
ok "all ${#options[@]} options of fluxstat --help (the pushing build) are in /etc/config/fluxstat, the init script and /etc/default/fluxstat"

# ---- 4. the .deb ---------------------------------------------------------------
deb1="$(grep '_amd64\.deb$' "$work/v1.list")" || fail "no amd64 .deb"
deb2="$(grep '_amd64\.deb$' "$work/v2.list")" || fail "no amd64 .deb of the second version"
debs=()
while read -r f; do [[ $f == *.deb ]] && debs+=("$f"); done <"$work/v1.list"
if ! lintian --pedantic --fail-on error,warning,info,pedantic "${debs[@]}" >"$work/lintian" 2>&1; then
    grep -v 'running with root privileges' "$work/lintian" >&2
    fail "lintian"
fi
ok "lintian --pedantic: no tag but the overridden ones on ${#debs[@]} .deb ($(basename -a "${debs[@]}" | tr '\n' ' '))"

# What must be gone after the purge.
systemd_state() {
    find /etc/systemd/system /var/lib/systemd/deb-systemd-helper-enabled /var/lib/systemd/deb-systemd-helper-masked \
        -name 'fluxstat*' 2>/dev/null || true
}
running_fluxstat() {
    local p
    for p in /proc/[0-9]*; do
        [[ "$(readlink "$p/exe" 2>/dev/null)" == /usr/bin/fluxstat ]] && echo "${p#/proc/}"
    done
    return 0
}
[[ -z "$(systemd_state)" ]] || fail "fluxstat systemd state before the install: $(systemd_state)"
getent passwd fluxstat >/dev/null && fail "a fluxstat user exists before the install"

installed=1
dpkg -i "$deb1" >"$work/dpkg1" 2>&1 || { cat "$work/dpkg1" >&2; fail "dpkg -i $deb1"; }
[[ -d /run/systemd/system ]] && log "systemd runs here: the package started fluxstat.service itself"
[[ "$(dpkg-query -W -f='${Status} ${Version}' fluxstat)" == "install ok installed $version-1" ]] || fail "dpkg status after install"
[[ -x /usr/bin/fluxstat && -f /lib/systemd/system/fluxstat.service && -f /etc/default/fluxstat ]] || fail "files missing after install"
[[ -L /etc/systemd/system/multi-user.target.wants/fluxstat.service ]] || fail "the unit is not enabled"
if [[ ! -d /run/systemd/system ]]; then
    [[ -z "$(running_fluxstat)" ]] || fail "the maintainer scripts started fluxstat without systemd (a chroot must not get a daemon)"
fi
ok "dpkg -i: installed, unit enabled for the next boot, nothing started (no systemd as PID 1 here)"

# The packaged unit (ExecStart and EnvironmentFile changed) must still verify cleanly.
if command -v systemd-analyze >/dev/null 2>&1; then
    if ! out="$(SYSTEMD_COLORS=0 systemd-analyze verify /lib/systemd/system/fluxstat.service 2>&1)" || [[ -n $out ]]; then
        fail "systemd-analyze verify complains about the packaged unit: $out"
    fi
    ok "systemd-analyze verify: the packaged unit is clean"
fi

# Started by hand, the way the unit does it: options from /etc/default/fluxstat.
port="$(free_port)"
(
    set -a
    # shellcheck disable=SC1091
    . /etc/default/fluxstat
    set +a
    exec /usr/bin/fluxstat --listen "127.0.0.1:$port"
) 2>"$work/deb.log" &
pids+=($!)
wait_http "http://127.0.0.1:$port/health" || fail "the installed fluxstat did not serve: $(cat "$work/deb.log")"
curl -fsS "http://127.0.0.1:$port/metrics" | jq -e 'type == "object" and length > 0' >/dev/null || fail "/metrics is not a JSON object"
[[ "$(/usr/bin/fluxstat --version)" == *"$version"* ]] || fail "the installed binary is not version $version"
/usr/bin/fluxstat --help | grep -q -- '--influx-url URL' || fail "the .deb's binary is not the pushing build"
stop "${pids[-1]}"
ok "installed /usr/bin/fluxstat serves /metrics (JSON) on 127.0.0.1:$port"

echo 'FLUXSTAT_LOG_LEVEL=warn' >>/etc/default/fluxstat
dpkg -i "$deb2" >"$work/dpkg2" 2>&1 || { cat "$work/dpkg2" >&2; fail "dpkg -i $deb2 (upgrade)"; }
[[ "$(dpkg-query -W -f='${Version}' fluxstat)" == "$version+test1-1" ]] || fail "not upgraded"
grep -qx 'FLUXSTAT_LOG_LEVEL=warn' /etc/default/fluxstat || fail "the upgrade lost the change to /etc/default/fluxstat"
[[ -L /etc/systemd/system/multi-user.target.wants/fluxstat.service ]] || fail "the upgrade disabled the unit"
[[ -z "$(running_fluxstat)" ]] || [[ -d /run/systemd/system ]] || fail "the upgrade started fluxstat"
ok "upgrade to $version+test1-1: the changed conffile and the enablement are kept"

files="$(dpkg-query -L fluxstat)"
dpkg --purge fluxstat >"$work/purge" 2>&1 || { cat "$work/purge" >&2; fail "dpkg --purge"; }
installed=0
dpkg-query -W -f='${Status}' fluxstat 2>/dev/null | grep -q 'installed\|config-files' && fail "dpkg still knows fluxstat after the purge"
left=()
while read -r f; do
    [[ $f == /. ]] && continue
    [[ -e $f || -L $f ]] || continue
    # Directories every system has stay (dpkg removes only those it alone owned).
    if [[ -d $f ]] && dpkg-query -S "$f" >/dev/null 2>&1; then continue; fi
    [[ -d $f && $f =~ ^/(etc|usr|lib|etc/default|usr/bin|usr/share|usr/share/doc|usr/share/lintian|usr/share/lintian/overrides|lib/systemd|lib/systemd/system)$ ]] && continue
    left+=("$f")
done <<<"$files"
((${#left[@]} == 0)) || fail "left behind after the purge: ${left[*]}"
[[ ! -e /etc/default/fluxstat ]] || fail "/etc/default/fluxstat left behind"
[[ -z "$(systemd_state)" ]] || fail "systemd state left behind: $(systemd_state)"
getent passwd fluxstat >/dev/null && fail "a fluxstat user left behind"
[[ -z "$(running_fluxstat)" ]] || fail "a fluxstat process is still running: $(running_fluxstat)"
ok "purge: no file, directory, unit link, deb-systemd-helper state, user or process left"
