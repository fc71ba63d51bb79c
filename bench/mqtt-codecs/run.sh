#!/usr/bin/env bash
# Usage: ./run.sh TARGET — runs every program on the same inputs (under qemu for armv7)
# and compares the CONNECT/PUBLISH/PINGREQ/return-code output and the exit status of
# (b), (c), (d) with (a).
set -uo pipefail
target="$1"
cd "$(dirname "$0")"
# shellcheck source=cross/lib.sh
source ../../cross/lib.sh
runner="$(qemu_runner "$target")"
dir="../../target/mqtt-codecs/$target"
res="$(mktemp -d)"
trap 'rm -rf "$res"' EXIT
long_payload="$(head -c 300 /dev/zero | tr '\0' 'x')" # 2-byte remaining length
run() { # NAME CONNACK-FILE [env...] -- args
    local p="$1" ack="$2"; shift 2
    # shellcheck disable=SC2086
    env "$@" $runner "$dir/$p" fluxstat-router fluxstat/router/status offline "fluxstat/router/load" "$PAYLOAD" <"$ack"
}
OTHERS="pb-mqttrs pc-mqttbytes pd-mqtt-protocol pb-mqttrs-enconly pc-mqttbytes-enconly pd-mqtt-protocol-enconly"
status=0
for case in creds nocreds long; do
    for ack in connack-ok.bin connack-refused.bin connack-bad.bin; do
        envs=(MQTT_USER=alice MQTT_PASSWORD=s3cret)
        [[ $case == nocreds ]] && envs=(MQTT_USER_UNSET=1)
        export PAYLOAD='{"load":0.42}'
        [[ $case == long ]] && PAYLOAD="$long_payload"
        for p in pa-own $OTHERS; do
            run "$p" "$ack" "${envs[@]}" >"$res/res.$p" 2>"$res/err.$p"
            echo $? >"$res/res.$p.rc"
        done
        for p in $OTHERS; do
            # The bytes written and the exit status must both match fluxstat's codec.
            if cmp -s "$res/res.pa-own" "$res/res.$p" && cmp -s "$res/res.pa-own.rc" "$res/res.$p.rc"; then
                r=identical
            else
                r=DIFFERENT
                status=1
            fi
            printf '%-8s %-20s %-17s %s (rc %s vs %s)\n' "$case" "$ack" "$p" "$r" "$(cat "$res/res.pa-own.rc")" "$(cat "$res/res.$p.rc")"
        done
    done
done
exit $status
