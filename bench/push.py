#!/usr/bin/env python3
"""The cost of pushing: CPU per sample with each pusher on, against the same build
with none, and the size the push feature adds to the release files.

  bench/push.py [--quick] [--plain BINARY] [--push BINARY]

1. Sizes: every pair target/artefacts/fluxstat-<target> and fluxstat-push-<target>
   present (cross/build-artefacts.sh with and without --push), and the two host
   binaries measured below.
2. CPU: starts a real InfluxDB (influxd) and MQTT broker (mosquitto) on 127.0.0.1
   with throw-away config (cross/smoke.py's Servers), then runs the pushing build
   four ways, one after the other and in rounds: pushing nowhere, to InfluxDB, to
   the broker, to both, each at --interval 200ms for a window of samples after a
   warm-up, and reads the CPU time of its threads (/proc/PID/task/*/schedstat, in
   ns) and their context switches over the window. The figure is CPU per
   sample; the cost of a pusher is its row less the "none" row of the same round.
   The plain build is run as a fifth row, to show that carrying the feature costs
   nothing while it is off.
Binaries default to target/artefacts/fluxstat{,-push}-x86_64-unknown-linux-musl
when both exist, else `cargo build --release` with and without --features push
(the second into target/bench-push). A benchmark: it prints, never judges; it exits
non-zero only when something cannot run. Without influxd or mosquitto the CPU part
is skipped with the reason.
"""

import os
import re
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "cross"))
import smoke  # noqa: E402  (the servers and the HTTP helpers)

def cpu_ns(pid):
    """CPU time of the process's live threads in ns (schedstat: no clock-tick rounding)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except FileNotFoundError:
            pass
    return total


def switches(pid):
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total


def run_window(binary, args, warmup, window):
    """(CPU µs per sample, context switches per sample) over `window` seconds."""
    cmd = [binary, "--listen", "127.0.0.1:0", "--interval", "200ms", "--log-level", "error"] + args
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(warmup)
        if proc.poll() is not None:
            smoke.fail(f"{' '.join(cmd)} exited with {proc.returncode}")
        t0, c0, s0 = time.monotonic(), cpu_ns(proc.pid), switches(proc.pid)
        time.sleep(window)
        t1, c1, s1 = time.monotonic(), cpu_ns(proc.pid), switches(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    samples = (t1 - t0) / 0.2
    return (c1 - c0) / 1e3 / samples, (s1 - s0) / samples


def host_binaries():
    a = os.path.join(ROOT, "target/artefacts")
    plain, push = f"{a}/fluxstat-x86_64-unknown-linux-musl", f"{a}/fluxstat-push-x86_64-unknown-linux-musl"
    if os.path.exists(plain) and os.path.exists(push):
        return plain, push
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    subprocess.run(["cargo", "build", "--release", "--quiet", "--features", "push", "--target-dir",
                    "target/bench-push"], cwd=ROOT, check=True)
    return f"{ROOT}/target/release/fluxstat", f"{ROOT}/target/bench-push/release/fluxstat"


def sizes(plain, push):
    print("Size the push feature adds (stripped release files, bytes):")
    print(f"  {'file':<44} {'plain':>9} {'push':>9} {'added':>8}")
    pairs = []
    a = os.path.join(ROOT, "target/artefacts")
    if os.path.isdir(a):
        for name in sorted(os.listdir(a)):
            m = re.fullmatch(r"fluxstat-push-(.+)", name)
            if m and os.path.exists(f"{a}/fluxstat-{m.group(1)}"):
                pairs.append((m.group(1), f"{a}/fluxstat-{m.group(1)}", f"{a}/{name}"))
    if not any(p[1] == plain for p in pairs):
        pairs.append(("host binaries measured below", plain, push))
    for label, p, q in pairs:
        sp, sq = os.path.getsize(p), os.path.getsize(q)
        print(f"  {label:<44} {sp:>9,} {sq:>9,} {sq - sp:>+8,}")


def main():
    quick = "--quick" in sys.argv
    args = sys.argv[1:]
    plain = push = None
    if "--plain" in args:
        plain = args[args.index("--plain") + 1]
    if "--push" in args:
        push = args[args.index("--push") + 1]
    if not (plain and push):
        plain, push = host_binaries()
    sizes(plain, push)

    missing = [t for t in ("influxd", "mosquitto") if shutil.which(t) is None]
    if missing:
        print(f"\nCPU per sample: skipped, {', '.join(missing)} not installed "
              "(apt-get install influxdb mosquitto mosquitto-clients)")
        return
    rounds, warmup, window = (1, 1.5, 4) if quick else (3, 3, 20)
    servers = smoke.Servers()
    try:
        influx = ["--influx-url", f"http://127.0.0.1:{servers.influx}/write?db=smoke"]
        mqtt = ["--mqtt", f"mqtt://127.0.0.1:{servers.mqtt}"]
        rows = [("none (push build)", push, []), ("InfluxDB", push, influx), ("MQTT", push, mqtt),
                ("both", push, influx + mqtt), ("none (plain build)", plain, [])]
        got = {name: [] for name, _, _ in rows}
        for _ in range(rounds):
            for name, binary, extra in rows:
                got[name].append(run_window(binary, extra, warmup, window))
    finally:
        servers.stop()
    base = statistics.median(c for c, _ in got["none (push build)"])
    print(f"\nCPU per sample at --interval 200ms, whole process ({rounds} round(s) of {window} s, "
          f"median; real influxd and mosquitto on 127.0.0.1):")
    print(f"  {'pushing to':<20} {'µs/sample':>10} {'added':>8} {'switches/sample':>16}")
    for name, _, _ in rows:
        cpu = statistics.median(c for c, _ in got[name])
        sw = statistics.median(s for _, s in got[name])
        print(f"  {name:<20} {cpu:>10.0f} {cpu - base:>+8.0f} {sw:>16.1f}")


if __name__ == "__main__":
    main()
