#!/usr/bin/env python3
"""Small measuring helpers for bench/run.sh (standard library only).

Owns: HTTP polling and fetching on loopback, start-to-first-200 timing, CPU and
memory readings from /proc for a process tree, holding N idle keep-alive
connections, parsing wrk output, and rendering the results file as a table.
Never: sends traffic anywhere but the URL/port it is given (run.sh only passes
127.0.0.1), or leaves a process it started running.

Subcommands (each prints one line or a JSON object on stdout):
  port                                  a free TCP port on 127.0.0.1
  wait   --port P [--path /x] [--timeout S]   poll GET until 200; prints ms waited
  get    --port P [--path /x] [--out F]       one GET; prints status and body size
  startup --port P [--path /x] --runs K [--log F] -- CMD...
                                        ms from exec to first 200 (CMD is started,
                                        polled, then stopped, K times)
  cpu    PID                            "schedstat_ns stat_ns" for PID + descendants
  cpudelta "A" "B"                      CPU ns between two `cpu` readings
  corebusy CPU                          busy ns of one core (/proc/stat)
  idle   --settle S --window W NAME=PID...   idle RSS, idle CPU, CPU per sample
  snap   PID CPU                        JSON: server CPU, core busy, clock
  loadrec --server S --tag T ... BEFORE AFTER WRKJSON   results lines for a wrk step
  connrec --server S --want N JSON      results lines for the idle-connection step
  mem    PID                            "rss_kib hwm_kib" for PID + descendants
  conns  --port P --pid PID --count N   RSS cost of N idle keep-alive connections
  wrkrun --out F -- WRK...              run wrk, save its output, print JSON
                                        (parsed figures + wrk's own CPU seconds)
  wrk    FILE                           wrk --latency output -> JSON
  table  RESULTS [--md FILE]            render the footprint table
"""

import argparse
import json
import os
import re
import select
import signal
import socket
import statistics
import subprocess
import sys
import time

HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def _sigterm(_signo, _frame):
    # Turn SIGTERM into an exception so `finally:` blocks stop what we started.
    raise SystemExit(143)


signal.signal(signal.SIGTERM, _sigterm)


# --------------------------------------------------------------------------- HTTP

class HttpError(Exception):
    pass


def _recv_until(sock, buf, marker):
    while marker not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise HttpError("connection closed mid-response")
        buf += chunk
    return buf


def read_response(sock, buf=b""):
    """Read one HTTP/1.x response; returns (status, headers, body, rest).

    Handles Content-Length and chunked bodies (node_exporter streams chunked)."""
    buf = _recv_until(sock, buf, b"\r\n\r\n")
    head, _, buf = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise HttpError("bad status line %r" % lines[0])
    status = int(parts[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            buf = _recv_until(sock, buf, b"\r\n")
            size_line, _, buf = buf.partition(b"\r\n")
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            while len(buf) < size + 2:
                chunk = sock.recv(65536)
                if not chunk:
                    raise HttpError("connection closed mid-chunk")
                buf += chunk
            body += buf[:size]
            buf = buf[size + 2:]
            if size == 0:
                # No trailers expected; the empty line was consumed above.
                break
        return status, headers, body, buf
    length = int(headers.get("content-length", "0"))
    while len(buf) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise HttpError("connection closed mid-body")
        buf += chunk
    return status, headers, buf[:length], buf[length:]


def request_bytes(path, close):
    conn = "close" if close else "keep-alive"
    return ("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: fluxstat-bench\r\n"
            "Connection: %s\r\n\r\n" % (path, HOST, conn)).encode()


def http_get(port, path, timeout=5.0, close=True):
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(request_bytes(path, close))
        status, headers, body, _ = read_response(s)
        return status, headers, body


def poll_200(port, path, deadline):
    """Poll GET until a 200; returns monotonic time of its arrival or None."""
    while time.monotonic() < deadline:
        try:
            status, _, _ = http_get(port, path, timeout=2.0)
            if status == 200:
                return time.monotonic()
        except (OSError, HttpError, ValueError):
            pass
        time.sleep(0.001)
    return None


def cmd_port(_args):
    with socket.socket() as s:
        s.bind((HOST, 0))
        print(s.getsockname()[1])


def cmd_wait(args):
    t0 = time.monotonic()
    t = poll_200(args.port, args.path, t0 + args.timeout)
    if t is None:
        print("no 200 from %s:%d%s within %ss" % (HOST, args.port, args.path, args.timeout),
              file=sys.stderr)
        return 1
    print("%.1f" % ((t - t0) * 1000))
    return 0


def cmd_get(args):
    status, _, body = http_get(args.port, args.path, timeout=args.timeout)
    if args.out:
        with open(args.out, "wb") as f:
            f.write(body)
    print(status, len(body))
    return 0 if status == 200 else 1


def stop_process(proc, grace=3.0):
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def cmd_startup(args):
    cmd = args.cmd[1:] if args.cmd and args.cmd[0] == "--" else args.cmd
    if not cmd:
        print("startup: no command given", file=sys.stderr)
        return 2
    times = []
    log = open(args.log, "ab") if args.log else subprocess.DEVNULL
    try:
        for _ in range(args.runs):
            t0 = time.monotonic()
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
            try:
                t = poll_200(args.port, args.path, t0 + args.timeout)
            finally:
                stop_process(proc)
            if t is None:
                print("startup: no 200 within %ss: %s" % (args.timeout, " ".join(cmd)),
                      file=sys.stderr)
                return 1
            times.append((t - t0) * 1000)
            time.sleep(0.2)
    finally:
        if log is not subprocess.DEVNULL:
            log.close()
    print(json.dumps({"runs_ms": [round(x, 1) for x in times],
                      "median_ms": round(statistics.median(times), 1),
                      "min_ms": round(min(times), 1)}))
    return 0


# --------------------------------------------------------------------------- /proc

def _read(path):
    with open(path) as f:
        return f.read()


def tree_pids(root):
    """root and all its descendants (nginx: master + workers)."""
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = _read("/proc/%s/stat" % name)
        except OSError:
            continue
        ppid = int(stat[stat.rfind(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        if os.path.exists("/proc/%d" % pid):
            out.append(pid)
            todo.extend(children.get(pid, []))
    return out


def cpu_reading(root):
    """(ns from per-thread schedstat, ns from utime+stime in /proc/PID/stat).

    schedstat has ns resolution but forgets exited threads; utime+stime counts
    them but moves in 1/CLK_TCK steps (10 ms), too coarse for a 1 ms sample."""
    sched = stat_ticks = 0
    for pid in tree_pids(root):
        try:
            stat = _read("/proc/%d/stat" % pid)
            fields = stat[stat.rfind(")") + 2:].split()
            stat_ticks += int(fields[11]) + int(fields[12])
            for tid in os.listdir("/proc/%d/task" % pid):
                try:
                    sched += int(_read("/proc/%d/task/%s/schedstat" % (pid, tid)).split()[0])
                except OSError:
                    pass
        except OSError:
            pass
    return sched, stat_ticks * 1_000_000_000 // CLK_TCK


def thread_readings(root):
    """tid -> (thread name, voluntary, involuntary context switches, CPU ns) for
    every thread of root and its descendants."""
    out = {}
    for pid in tree_pids(root):
        try:
            tids = os.listdir("/proc/%d/task" % pid)
        except OSError:
            continue
        for tid in tids:
            base = "/proc/%d/task/%s/" % (pid, tid)
            try:
                fields = dict(l.split(":", 1) for l in _read(base + "status").splitlines() if ":" in l)
                out[(pid, tid)] = (_read(base + "comm").strip(),
                                   int(fields["voluntary_ctxt_switches"]),
                                   int(fields["nonvoluntary_ctxt_switches"]),
                                   int(_read(base + "schedstat").split()[0]))
            except (OSError, KeyError, ValueError):
                pass
    return out


def thread_rates(before, after, secs):
    """Per thread name (threads of one name summed, in order of first appearance):
    (voluntary/s, involuntary/s, CPU us/s) over the window, for threads alive at
    both readings."""
    rates = {}
    for key, (name, vol, nonvol, ns) in after.items():
        if key not in before:
            continue
        _, vol0, nonvol0, ns0 = before[key]
        r = rates.setdefault(name, [0.0, 0.0, 0.0])
        r[0] += (vol - vol0) / secs
        r[1] += (nonvol - nonvol0) / secs
        r[2] += (ns - ns0) / 1e3 / secs
    return rates


def wakes_note(server, rates, secs, samples):
    parts = ["%s %.1f/s (%.1f voluntary) %.0f us CPU/s" % (n, v + nv, v, cpu)
             for n, (v, nv, cpu) in rates.items()]
    return ("%s idle over %g s, per thread: wake-ups (voluntary = it blocked: a timer, "
            "a lock, a read; the rest: preempted) and CPU: %s. Whole process: %.0f us CPU "
            "per sample (%d samples)."
            % (server, secs, "; ".join(parts), sum(r[2] for r in rates.values()) * secs / samples,
               samples))


def cmd_threads(args):
    """Wake-ups and CPU per thread of a running process over a window."""
    before = thread_readings(args.pid)
    time.sleep(args.window)
    rates = thread_rates(before, thread_readings(args.pid), args.window)
    for name, (v, nv, cpu) in rates.items():
        print("%-16s %6.2f wake-ups/s (%5.2f voluntary, %5.2f preempted) %8.1f us CPU/s"
              % (name, v + nv, v, nv, cpu))
    tv = sum(r[0] + r[1] for r in rates.values())
    print("%-16s %6.2f wake-ups/s %39.1f us CPU/s" % ("total", tv, sum(r[2] for r in rates.values())))
    return 0


def core_busy_ns(cpu):
    """Busy time of one core from /proc/stat (everything but idle and iowait)."""
    for line in _read("/proc/stat").splitlines():
        if line.startswith("cpu%d " % cpu):
            f = [int(x) for x in line.split()[1:]]
            busy = f[0] + f[1] + f[2] + f[5] + f[6] + (f[7] if len(f) > 7 else 0)
            return busy * 1_000_000_000 // CLK_TCK
    raise ValueError("no cpu%d in /proc/stat" % cpu)


def cmd_corebusy(args):
    print(core_busy_ns(args.cpu))
    return 0


def print_reading(name, pid, reading):
    """Prints `reading(pid)` as two numbers; 1 when the process is gone."""
    if not os.path.exists("/proc/%d" % pid):
        print("%s: no process %d" % (name, pid), file=sys.stderr)
        return 1
    print("%d %d" % reading(pid))
    return 0


def cmd_cpu(args):
    return print_reading("cpu", args.pid, cpu_reading)


def cpu_delta(a, b):
    sa, ta = (int(x) for x in a.split())
    sb, tb = (int(x) for x in b.split())
    dsched, dstat = sb - sa, tb - ta
    tick = 1_000_000_000 // CLK_TCK
    # If utime+stime grew by clearly more than schedstat saw, threads exited in
    # between: trust the coarse but complete figure.
    if dsched <= 0 or dstat > dsched + 2 * tick:
        return max(dstat, 0)
    return dsched


def cmd_snap(args):
    """One reading for a load step: the server's CPU, its core's busy time and
    the monotonic clock, as JSON for `loadrec`."""
    if not os.path.exists("/proc/%d" % args.pid):
        print("snap: no process %d" % args.pid, file=sys.stderr)
        return 1
    sched, stat = cpu_reading(args.pid)
    print(json.dumps({"sched_ns": sched, "stat_ns": stat,
                      "core_ns": core_busy_ns(args.cpu), "t_ns": time.monotonic_ns()}))
    return 0


def cmd_loadrec(args):
    """Turn two `snap` readings and a `wrkrun` result into results lines."""
    a, b, w = json.loads(args.before), json.loads(args.after), json.loads(args.wrk)
    ns = cpu_delta("%d %d" % (a["sched_ns"], a["stat_ns"]), "%d %d" % (b["sched_ns"], b["stat_ns"]))
    s, tag = args.server, args.tag

    def put(k, v):
        print("%s.%s_%s\t%s" % (s, k, tag, "-" if v is None else v))

    put("rps", w["rps"])
    put("p50", w["p50_us"])
    put("p99", w["p99_us"])
    req = w["requests"] or 0
    put("cpu_req", ns / 1000 / req if req else None)
    dur = w["duration_s"] or args.secs
    put("util", ns / 1e9 / dur * 100)
    put("wrkutil", w["client_cpu_s"] / dur * 100)
    # Busy time of the server's core not spent by the server, over the same
    # window: other programs' work on a shared machine.
    window = b["t_ns"] - a["t_ns"]
    core = b["core_ns"] - a["core_ns"]
    put("other", max(0.0, (core - ns) / window * 100) if args.pinned and window > 0 else None)
    bad = []
    if w["non2xx"]:
        bad.append("%d non-2xx responses" % w["non2xx"])
    if w["socket_errors"]:
        bad.append("%d socket errors (wrk --timeout 2s)" % w["socket_errors"])
    if bad:
        print("note.w-%s-%s\t%s, %d conn(s): %s" % (s, tag, s, args.conns, ", ".join(bad)))
    return 0


def cmd_connrec(args):
    j = json.loads(args.result)
    s = args.server
    print("%s.conn_bytes\t%s" % (s, "-" if j["bytes_per_conn"] is None else j["bytes_per_conn"]))
    if j["held"] != args.want or j["non200_or_failed"]:
        print("note.c-%s\t%s: %d of %d idle connections held at measurement "
              "(%d failed or non-200, %d closed by the server)"
              % (s, s, j["held"], args.want, j["non200_or_failed"], j["closed_before_measure"]))
    return 0


def parse_duration(text):
    """fluxstat's duration syntax: 500ms, 2s, 1m, 1h (a bare number is seconds)."""
    m = re.fullmatch(r"\s*([0-9.]+)\s*(ms|s|m|h)?\s*", text)
    if not m:
        raise ValueError("bad duration %r" % text)
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]


def cmd_idle(args):
    """Idle phase for all servers at once: RSS after --settle seconds, then CPU
    over --window seconds; the sampler's CPU per sample for --sampler."""
    pids = dict(x.split("=", 1) for x in args.servers)
    pids = {k: int(v) for k, v in pids.items()}
    time.sleep(args.settle)
    before = {}
    for name, pid in pids.items():
        rss, _ = mem_reading(pid)
        anon, file = rss_split(pid)
        print("%s.idle_rss_kib\t%d" % (name, rss))
        print("%s.idle_anon_kib\t%d" % (name, anon))
        print("%s.idle_file_kib\t%d" % (name, file))
        before[name] = cpu_reading(pid)
    threads_before = {name: thread_readings(pid) for name, pid in pids.items()}
    if args.musl:
        rss, _ = mem_reading(args.musl)
        anon, _ = rss_split(args.musl)
        print("fluxstat.musl_rss_kib\t%d" % rss)
        print("fluxstat.musl_anon_kib\t%d" % anon)
    if args.floor:
        rss, _ = mem_reading(args.floor)
        anon, file = rss_split(args.floor)
        print("note.001-floor\tAn empty Rust program (bench/floor.rs: sleep, built with the "
              "release profile's settings, glibc) idles at %d KiB VmRSS, %d KiB of it "
              "file-backed (glibc, the loader, libgcc_s and its own code, mapped from the page "
              "cache) and %d KiB anonymous: every glibc-linked Rust program starts from "
              "there." % (rss, file, anon))
    time.sleep(args.window)
    samples = max(1, int(args.window / parse_duration(args.interval)))
    for name, pid in pids.items():
        if not os.path.exists("/proc/%d" % pid):
            print("idle: %s (pid %d) exited" % (name, pid), file=sys.stderr)
            return 1
        a, b = before[name], cpu_reading(pid)
        ns = cpu_delta("%d %d" % a, "%d %d" % b)
        print("%s.idle_cpu_ms\t%s" % (name, ns / 1e6))
        if args.window > 0:
            rates = thread_rates(threads_before[name], thread_readings(pid), args.window)
            print("%s.idle_wakes\t%s" % (name, sum(r[0] + r[1] for r in rates.values())))
            if name == args.sampler:
                print("note.002-wakes\t%s" % wakes_note(name, rates, args.window, samples))
        if name == args.sampler:
            print("%s.sample_cpu_us\t%s" % (name, ns / 1e3 / samples if args.window > 0 else "-"))
    print("note.000-samples\tCPU per sample: %s = idle CPU / %d samples; node_exporter has no "
          "background sampler and collects on each scrape, so its figure is CPU per /metrics "
          "scrape at 1 connection." % (args.sampler, samples))
    return 0


def cmd_cpudelta(args):
    print(cpu_delta(args.a, args.b))
    return 0


def status_kib(root, fields):
    """The given /proc/PID/status fields (KiB), each summed over the process tree."""
    sums = dict.fromkeys(fields, 0)
    for pid in tree_pids(root):
        try:
            for line in _read("/proc/%d/status" % pid).splitlines():
                name, _, rest = line.partition(":")
                if name in sums:
                    sums[name] += int(rest.split()[0])
        except OSError:
            pass
    return sums


def mem_reading(root):
    s = status_kib(root, ("VmRSS", "VmHWM"))
    return s["VmRSS"], s["VmHWM"]


def rss_split(root):
    """(RssAnon, RssFile + RssShmem) in KiB, summed over the process tree."""
    s = status_kib(root, ("RssAnon", "RssFile", "RssShmem"))
    return s["RssAnon"], s["RssFile"] + s["RssShmem"]


def cmd_mem(args):
    return print_reading("mem", args.pid, mem_reading)


# --------------------------------------------------------------------------- idle connections

def cmd_conns(args):
    """Open N keep-alive connections, one request each, keep them idle, and
    report the server's RSS growth (KiB before/after, bytes per connection)."""
    # Warm the server's allocator and caches on one connection first, so the
    # baseline is not a cold process.
    with socket.create_connection((HOST, args.port), timeout=10) as s:
        rest = b""
        for _ in range(args.warmup):
            s.sendall(request_bytes(args.path, close=False))
            _, _, _, rest = read_response(s, rest)
    time.sleep(args.settle)
    base_rss, _ = mem_reading(args.pid)

    socks = []
    failed = 0
    t0 = time.monotonic()
    try:
        for _ in range(args.count):
            if time.monotonic() - t0 > args.timeout:
                break
            try:
                s = socket.create_connection((HOST, args.port), timeout=10)
                s.sendall(request_bytes(args.path, close=False))
                status, _, _, _ = read_response(s)
                socks.append(s)
                if status != 200:
                    failed += 1
            except (OSError, HttpError, ValueError):
                failed += 1
        open_secs = time.monotonic() - t0
        time.sleep(args.settle)
        loaded_rss, _ = mem_reading(args.pid)

        # Which are still open? A closed one is readable and recv() gives b"".
        closed = 0
        readable, _, _ = select.select(socks, [], [], 0) if socks else ([], [], [])
        for s in readable:
            try:
                s.setblocking(False)
                if s.recv(1, socket.MSG_PEEK) == b"":
                    closed += 1
            except BlockingIOError:
                pass
            except OSError:
                closed += 1
    finally:
        for s in socks:
            s.close()

    held = len(socks) - closed
    per_conn = (loaded_rss - base_rss) * 1024 / held if held else None
    print(json.dumps({
        "requested": args.count, "opened": len(socks), "non200_or_failed": failed,
        "closed_before_measure": closed, "held": held, "open_secs": round(open_secs, 2),
        "base_rss_kib": base_rss, "loaded_rss_kib": loaded_rss,
        "bytes_per_conn": None if per_conn is None else round(per_conn),
    }))
    return 0


# --------------------------------------------------------------------------- wrk

_UNITS_US = {"us": 1.0, "ms": 1000.0, "s": 1_000_000.0, "m": 60_000_000.0}


def _to_us(text):
    for unit in ("us", "ms", "s", "m"):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * _UNITS_US[unit]
    return float(text)


def parse_wrk(text):
    out = {"requests": None, "rps": None, "p50_us": None, "p99_us": None,
           "non2xx": 0, "socket_errors": 0, "duration_s": None}
    in_dist = False
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("Latency Distribution"):
            in_dist = True
            continue
        if in_dist:
            parts = line.split()
            if len(parts) == 2 and parts[0].endswith("%"):
                if parts[0] == "50%":
                    out["p50_us"] = _to_us(parts[1])
                elif parts[0] == "99%":
                    out["p99_us"] = _to_us(parts[1])
                continue
            in_dist = False
        if " requests in " in line:
            parts = line.split()
            out["requests"] = int(parts[0])
            out["duration_s"] = _to_us(parts[3].rstrip(",")) / 1e6
        elif line.startswith("Requests/sec:"):
            out["rps"] = float(line.split()[1])
        elif line.startswith("Non-2xx or 3xx responses:"):
            out["non2xx"] = int(line.split()[-1])
        elif line.startswith("Socket errors:"):
            out["socket_errors"] = sum(int(x.strip().split()[-1])
                                       for x in line.split(":", 1)[1].split(","))
    return out


def cmd_wrkrun(args):
    """Run wrk (the command after --), keep its output, print the parsed JSON
    plus the CPU seconds wrk itself used."""
    cmd = args.cmd[1:] if args.cmd and args.cmd[0] == "--" else args.cmd
    with open(args.out, "w") as f:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT)
        try:
            _, status, ru = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
        finally:
            stop_process(proc)
    if proc.returncode != 0:
        return 1
    with open(args.out) as f:
        out = parse_wrk(f.read())
    out["client_cpu_s"] = ru.ru_utime + ru.ru_stime
    print(json.dumps(out))
    return 0


def cmd_wrk(args):
    with open(args.file) as f:
        print(json.dumps(parse_wrk(f.read())))
    return 0


# --------------------------------------------------------------------------- table

SERVERS = ("fluxstat", "nginx", "node_exporter")

# key, label, decimals
ROWS = [
    ("bin_kib", "stripped binary, host (KiB)", 1),
    ("body_bytes", "/metrics body (bytes)", 0),
    ("idle_rss_kib", "idle RSS after {settle} s (KiB)", 0),
    ("idle_anon_kib", "  of which anonymous: heap, stacks (KiB)", 0),
    ("idle_file_kib", "  of which file-backed: code, libraries (KiB)", 0),
    ("musl_rss_kib", "idle RSS, x86_64 static musl artefact (KiB)", 0),
    ("musl_anon_kib", "  of which anonymous (KiB)", 0),
    ("peak_rss_kib", "peak RSS, VmHWM after load (KiB)", 0),
    ("idle_cpu_ms", "idle CPU over {idle} s (ms)", 2),
    ("sample_cpu_us", "CPU per sample (us)", 1),
    ("idle_wakes", "idle wake-ups per second, all threads", 1),
    ("startup_ms", "start -> first 200 /metrics (ms, median of {runs})", 1),
    ("rps_c1", "throughput, 1 conn (req/s)", 0),
    ("p50_c1", "latency p50, 1 conn (us)", 1),
    ("p99_c1", "latency p99, 1 conn (us)", 1),
    ("cpu_req_c1", "server CPU per request, 1 conn (us)", 2),
    ("rps_cN", "throughput, {conns} conns (req/s)", 0),
    ("p50_cN", "latency p50, {conns} conns (us)", 1),
    ("p99_cN", "latency p99, {conns} conns (us)", 1),
    ("cpu_req_cN", "server CPU per request, {conns} conns (us)", 2),
    ("util_cN", "server CPU busy, {conns} conns (% of a core)", 0),
    ("wrkutil_cN", "wrk CPU busy, {conns} conns (% of a core)", 0),
    ("other_cN", "other processes on server core, {conns} conns (%)", 0),
    ("conn_bytes", "RSS per idle keep-alive conn, {idle_conns} held (bytes)", 0),
]


def load_results(path):
    """Key -> value. A key recorded more than once (load steps repeated over
    rounds) gets the median of its numeric values; its values in order are kept
    under "rounds.<key>"."""
    seen = {}
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or "\t" not in line:
                continue
            k, v = line.split("\t", 1)
            seen.setdefault(k, []).append(v)
    res = {}
    for k, vs in seen.items():
        nums = [_num(v) for v in vs]
        if len(vs) > 1 and all(x is not None for x in nums):
            res[k] = str(statistics.median(nums))
            res["rounds." + k] = nums
        else:
            res[k] = vs[-1]
    return res


def round_notes(res):
    """One note on the spread of the repeated load figures, fluxstat against nginx."""
    out = []
    for key, what in (("cpu_req_cN", "server CPU per request"), ("rps_cN", "throughput")):
        a, b = res.get("rounds.fluxstat." + key), res.get("rounds.nginx." + key)
        if a and b and len(a) == len(b):
            ratios = ", ".join("%.2fx" % (x / y) for x, y in zip(a, b) if y)
            out.append("%s at %s connections, fluxstat/nginx per round: %s"
                       % (what, res.get("meta.load_conns", "?"), ratios))
    if out:
        out.insert(0, "Load figures are medians of %s rounds (servers alternating)"
                   % res.get("meta.rounds", "?"))
        return ["; ".join(out) + "."]
    return []


def _num(v):
    if v is None or v == "":
        return None
    try:
        return float(v)
    except ValueError:
        return None


def _fmt(v, decimals):
    x = _num(v)
    if x is None:
        return v if v else "-"
    return "%.*f" % (decimals, x)


def _ratio(a, b):
    x, y = _num(a), _num(b)
    if x is None or y is None or y == 0:
        return "-"
    r = x / y
    return ("%.2fx" % r) if abs(r) >= 0.01 else ("%.4fx" % r)


def build_table(res):
    fmtargs = {
        "settle": res.get("meta.settle_secs", "?"),
        "idle": res.get("meta.idle_secs", "?"),
        "runs": res.get("meta.startup_runs", "?"),
        "conns": res.get("meta.load_conns", "?"),
        "idle_conns": res.get("meta.idle_conns", "?"),
    }
    rows = []
    for key, label, dec in ROWS:
        vals = [res.get("%s.%s" % (s, key)) for s in SERVERS]
        if key.startswith("musl_") and all(v is None for v in vals):
            continue  # no static musl artefact was built
        rows.append([label.format(**fmtargs)] + [_fmt(v, dec) for v in vals]
                    + [_ratio(vals[0], vals[1]), _ratio(vals[0], vals[2])])
    # Cross-built artefacts (target/artefacts/fluxstat-*), fluxstat column only.
    for k in sorted(res):
        if k.startswith("artefact."):
            rows.append(["artefact %s (KiB)" % k[len("artefact."):],
                         _fmt(res[k], 1), "-", "-", "-", "-"])
    header = ["figure", "fluxstat", "nginx", "node_exporter",
              "fluxstat/nginx", "fluxstat/node_exporter"]
    return header, rows


def render_text(header, rows):
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    def line(r):
        return "  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i])
                         for i, c in enumerate(r))
    out = [line(header), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in rows]
    return "\n".join(out)


def render_md(header, rows):
    out = ["| " + " | ".join(header) + " |",
           "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def meta_lines(res):
    lines = []
    for k in sorted(res):
        if k.startswith("meta.line."):
            lines.append(res[k])
    return lines


def note_lines(res):
    return [res[k] for k in sorted(res) if k.startswith("note.")] + round_notes(res)


def cmd_table(args):
    res = load_results(args.results)
    header, rows = build_table(res)
    meta = meta_lines(res)
    notes = note_lines(res)
    print("\n".join(meta))
    print()
    print(render_text(header, rows))
    if notes:
        print()
        print("\n".join("* " + n for n in notes))
    if args.md:
        md = ["# fluxstat footprint", ""]
        md += ["- " + m for m in meta]
        md += ["", render_md(header, rows), ""]
        if notes:
            md += ["Notes:", ""] + ["- " + n for n in notes] + [""]
        with open(args.md, "w") as f:
            f.write("\n".join(md))
    return 0


# --------------------------------------------------------------------------- main

def main(argv):
    p = argparse.ArgumentParser(prog="helpers.py")
    sub = p.add_subparsers(dest="cmd", required=True)

    sub.add_parser("port").set_defaults(fn=cmd_port)

    for name, fn in (("wait", cmd_wait), ("get", cmd_get)):
        sp = sub.add_parser(name)
        sp.add_argument("--port", type=int, required=True)
        sp.add_argument("--path", default="/metrics")
        sp.add_argument("--timeout", type=float, default=10.0)
        if name == "get":
            sp.add_argument("--out")
        sp.set_defaults(fn=fn)

    sp = sub.add_parser("startup")
    sp.add_argument("--port", type=int, required=True)
    sp.add_argument("--path", default="/metrics")
    sp.add_argument("--runs", type=int, default=5)
    sp.add_argument("--timeout", type=float, default=10.0)
    sp.add_argument("--log")
    sp.add_argument("cmd", nargs=argparse.REMAINDER)
    sp.set_defaults(fn=cmd_startup)

    for name, fn in (("cpu", cmd_cpu), ("mem", cmd_mem)):
        sp = sub.add_parser(name)
        sp.add_argument("pid", type=int)
        sp.set_defaults(fn=fn)

    sp = sub.add_parser("idle")
    sp.add_argument("--settle", type=float, required=True)
    sp.add_argument("--window", type=float, required=True)
    sp.add_argument("--interval", default="1s")
    sp.add_argument("--sampler", default="fluxstat")
    sp.add_argument("--floor", type=int, default=0, help="PID of bench/floor.rs, for a note")
    sp.add_argument("--musl", type=int, default=0, help="PID of the static musl artefact")
    sp.add_argument("servers", nargs="+", help="NAME=PID")
    sp.set_defaults(fn=cmd_idle)

    sp = sub.add_parser("threads")
    sp.add_argument("pid", type=int)
    sp.add_argument("--window", type=float, default=10.0)
    sp.set_defaults(fn=cmd_threads)

    sp = sub.add_parser("snap")
    sp.add_argument("pid", type=int)
    sp.add_argument("cpu", type=int)
    sp.set_defaults(fn=cmd_snap)

    sp = sub.add_parser("loadrec")
    sp.add_argument("--server", required=True)
    sp.add_argument("--tag", required=True)
    sp.add_argument("--conns", type=int, required=True)
    sp.add_argument("--secs", type=float, required=True)
    sp.add_argument("--pinned", type=int, default=1)
    sp.add_argument("before")
    sp.add_argument("after")
    sp.add_argument("wrk")
    sp.set_defaults(fn=cmd_loadrec)

    sp = sub.add_parser("connrec")
    sp.add_argument("--server", required=True)
    sp.add_argument("--want", type=int, required=True)
    sp.add_argument("result")
    sp.set_defaults(fn=cmd_connrec)

    sp = sub.add_parser("corebusy")
    sp.add_argument("cpu", type=int)
    sp.set_defaults(fn=cmd_corebusy)

    sp = sub.add_parser("cpudelta")
    sp.add_argument("a")
    sp.add_argument("b")
    sp.set_defaults(fn=cmd_cpudelta)

    sp = sub.add_parser("conns")
    sp.add_argument("--port", type=int, required=True)
    sp.add_argument("--pid", type=int, required=True)
    sp.add_argument("--path", default="/metrics")
    sp.add_argument("--count", type=int, default=1000)
    sp.add_argument("--warmup", type=int, default=20)
    sp.add_argument("--settle", type=float, default=1.0)
    sp.add_argument("--timeout", type=float, default=120.0,
                    help="stop opening connections after this many seconds")
    sp.set_defaults(fn=cmd_conns)

    sp = sub.add_parser("wrk")
    sp.add_argument("file")
    sp.set_defaults(fn=cmd_wrk)

    sp = sub.add_parser("wrkrun")
    sp.add_argument("--out", required=True)
    sp.add_argument("cmd", nargs=argparse.REMAINDER)
    sp.set_defaults(fn=cmd_wrkrun)

    sp = sub.add_parser("table")
    sp.add_argument("results")
    sp.add_argument("--md")
    sp.set_defaults(fn=cmd_table)

    args = p.parse_args(argv)
    return args.fn(args) or 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)
