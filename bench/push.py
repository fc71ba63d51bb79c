#!/usr/bin/env python3
"""The cost of pushing: CPU per sample with each pusher on, against the same build
with none, and the size the push feature adds to the release files.

  bench/push.py [--quick] [--plain BINARY] [--push BINARY]
  bench/push.py --compare OLD NEW [--samples N]

1. Sizes: every pair target/artefacts/fluxstat-<target> and fluxstat-push-<target>
   present (cross/build-artefacts.sh with and without --push), and the two host
   binaries measured below.
2. CPU: starts a real InfluxDB (influxd) and MQTT broker (mosquitto) on 127.0.0.1
   with throw-away config (cross/smoke.py's Servers), then runs the pushing build
   four ways, one after the other and in rounds: pushing nowhere, to InfluxDB, to
   the broker, to both, each at --interval 200ms for a window of samples after a
   warm-up, and reads the CPU time of its threads (/proc/PID/task/*/schedstat, in
   ns) and their context switches over the window (bench/helpers.py's
   thread_readings). The figure is CPU per sample; the cost of a pusher is its row
   less the "none" row of the same round. The plain build is run as a fifth row,
   to show that carrying the feature costs nothing while it is off.
Binaries default to target/artefacts/fluxstat{,-push}-x86_64-unknown-linux-musl
when both exist, else `cargo build --release` with and without --features push
(the second into target/bench-push).

--compare OLD NEW: two pushing builds side by side instead. Six processes at once,
pinned to one core (BENCH_SERVER_CPU, default 0): each build with no pusher, with
InfluxDB and with MQTT (a broker per build: both publish under one client id),
settled for BENCH_SETTLE_SECS (5), then measured over N samples (default 100, 20 s):
CPU per sample, and by thread its wake-ups (voluntary context switches) and CPU.
Run side by side, the machine's noise hits both builds alike: compare them, not
either with an earlier run. BENCHMARKS.md's before/after of the pushers' move to
threads was measured this way.

A benchmark: it prints, never judges; it exits non-zero only when something cannot
run. Without influxd or mosquitto the CPU part is skipped with the reason.
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
sys.path.insert(0, HERE)
import helpers  # noqa: E402  (per-thread CPU and context switches)
import smoke  # noqa: E402  (the servers and the HTTP helpers)

SAMPLE = 0.2  # --interval 200ms


def start(binary, args, cpu=None):
    cmd = [binary, "--listen", "127.0.0.1:0", "--interval", "200ms", "--log-level", "error"] + args
    if cpu is not None:
        cmd = ["taskset", "-c", str(cpu)] + cmd
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def per_sample(before, after, secs):
    """thread name -> (wake-ups, CPU µs) per sample, from two thread_readings."""
    rates = helpers.thread_rates(before, after, secs)
    return {name: ((v + nv) * SAMPLE, cpu * SAMPLE) for name, (v, nv, cpu) in rates.items()}


def run_window(binary, args, warmup, window):
    """(CPU µs per sample, context switches per sample) over `window` seconds."""
    proc = start(binary, args)
    try:
        time.sleep(warmup)
        if proc.poll() is not None:
            smoke.fail(f"{binary} {' '.join(args)} exited with {proc.returncode}")
        before = helpers.thread_readings(proc.pid)
        time.sleep(window)
        threads = per_sample(before, helpers.thread_readings(proc.pid), window)
    finally:
        stop(proc)
    return sum(c for _, c in threads.values()), sum(w for w, _ in threads.values())


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


def missing_servers():
    missing = [t for t in ("influxd", "mosquitto") if shutil.which(t) is None]
    if missing:
        print(f"\nCPU per sample: skipped, {', '.join(missing)} not installed "
              "(apt-get install influxdb mosquitto mosquitto-clients)")
    return bool(missing)


def compare(old, new, samples):
    """Two builds side by side: six processes on one core, measured together."""
    for b in (old, new):
        if not os.access(b, os.X_OK):
            smoke.fail(f"not executable: {b}")
    if missing_servers():
        sys.exit(2)
    cpu = int(os.environ.get("BENCH_SERVER_CPU", "0"))
    settle = float(os.environ.get("BENCH_SETTLE_SECS", "5"))
    servers = smoke.Servers(brokers=2)
    procs = []
    try:
        influx = ["--influx-url", f"http://127.0.0.1:{servers.influx}/write?db=smoke"]
        for build, binary, broker in (("old", old, servers.mqtts[0]), ("new", new, servers.mqtts[1])):
            for mode, args in (("none", []), ("influx", influx), ("mqtt", ["--mqtt", f"mqtt://127.0.0.1:{broker}"])):
                procs.append((f"{build}-{mode}", start(binary, args, cpu)))
        time.sleep(settle)
        before = [helpers.thread_readings(p.pid) for _, p in procs]
        time.sleep(samples * SAMPLE)
        after = [helpers.thread_readings(p.pid) for _, p in procs]
    finally:
        for _, p in procs:
            stop(p)
        servers.stop()
    print(f"{samples} samples at 200 ms, all six on core {cpu}; CPU per sample (all threads), "
          "then by thread: wake-ups (context switches) / CPU µs per sample")
    for (name, _), b, a in zip(procs, before, after):
        threads = per_sample(b, a, samples * SAMPLE)
        by = ", ".join(f"{t} {w:.2f}/{c:.0f}" for t, (w, c) in threads.items() if w > 0 or c > 1)
        print(f"{name:12} {sum(c for _, c in threads.values()):8.1f} µs   {by}")


def main():
    args = sys.argv[1:]
    if "--compare" in args:
        i = args.index("--compare")
        if len(args) < i + 3:
            smoke.fail("usage: bench/push.py --compare OLD NEW [--samples N]")
        samples = int(args[args.index("--samples") + 1]) if "--samples" in args else 100
        compare(args[i + 1], args[i + 2], samples)
        return
    quick = "--quick" in args
    plain = args[args.index("--plain") + 1] if "--plain" in args else None
    push = args[args.index("--push") + 1] if "--push" in args else None
    if not (plain and push):
        plain, push = host_binaries()
    sizes(plain, push)

    if missing_servers():
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
