#!/usr/bin/env python3
"""Smoke run of a release artefact (under qemu-user, or natively), used by
cross/build-artefacts.sh for every target and CPU it checks:

  cross/smoke.py [--push] ARTEFACT [RUNNER WORD...]

1. starts `RUNNER... ARTEFACT --listen 127.0.0.1:0 --request-timeout 1s` and reads the
   port from its "listening on" log line;
2. GET /metrics: 200 and a JSON object;
3. a connection that sends half a request head must get `408` after the request
   timeout, between 0.9 and 8 s: this is the timer path (timerfd and epoll), which
   once never fired on MIPS (rustix's time32 mismatch on musl);
4. SIGTERM: exit status 0 within 10 s.
With --push (an artefact built with the push feature) it first starts a real
InfluxDB (influxd) and a real MQTT broker (mosquitto) on 127.0.0.1, each with a
throw-away config and data directory, and runs the artefact pushing to both, the
broker named `localhost` so that the C library's resolver runs too. Before step 4:
5. InfluxDB holds the very sample /metrics serves (its time from the ETag), and its
   memory and load fields equal the document's: the line protocol as the target's
   CPU writes it, read back over InfluxQL;
6. the broker holds fluxstat's retained `online` status and Home Assistant
   discovery configs (JSON with unique_id, state_topic, device), and a state
   message for the memory sensor arrives and carries `memory_used_percentage`;
and after step 4, 7. the broker has published the last will: status `offline`.
Without influxd or mosquitto the push steps are skipped with a reason, unless CI
is set, where that fails.
A start-up crash (MIPS static-pie) fails step 1. Exit 0 when all pass, else 1 with
the reason and the artefact's log. Stdlib only; every wait has a deadline.
"""

import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request


def fail(msg, log=""):
    print(f"smoke: FAIL: {msg}", file=sys.stderr)
    if log:
        print("--- its log:\n" + log, file=sys.stderr)
    sys.exit(1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, seconds, cond):
    deadline = time.monotonic() + seconds
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > deadline:
            fail(f"timed out after {seconds} s waiting for {what}")
        time.sleep(0.1)


def influx(port, method, path):
    """(status, body) of a request to InfluxDB (which answers queries chunked)."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def http(port, method, path, timeout=10):
    """(status, headers dict, body) of one request to fluxstat on a fresh connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
    return int(lines[0].split(" ", 2)[1]), headers, body


class Servers:
    """influxd and mosquitto on 127.0.0.1 with throw-away config and data, killed by PID.
    `brokers` > 1 starts more mosquittos (bench/push.py --compare: two builds that
    publish under one client id need a broker each); their ports are `mqtts`,
    the first also `mqtt`."""

    def __init__(self, brokers=1):
        self.dir = tempfile.mkdtemp(prefix="fluxstat-smoke-")
        self.procs = []
        try:
            self.setup(brokers)
        except BaseException:
            self.stop()
            raise

    def setup(self, brokers):
        d = self.dir
        self.influx = free_port()
        with open(f"{d}/influxdb.conf", "w") as f:
            f.write(
                f'reporting-disabled = true\nbind-address = "127.0.0.1:{free_port()}"\n'
                f'[meta]\n  dir = "{d}/meta"\n[data]\n  dir = "{d}/data"\n  wal-dir = "{d}/wal"\n'
                f"  query-log-enabled = false\n"
                f'[http]\n  bind-address = "127.0.0.1:{self.influx}"\n  log-enabled = false\n'
                f"[monitor]\n  store-enabled = false\n[continuous_queries]\n  enabled = false\n"
            )
        self.start(["influxd", "-config", f"{d}/influxdb.conf"], "influxd")
        self.mqtts = [free_port() for _ in range(brokers)]
        self.mqtt = self.mqtts[0]
        for i, port in enumerate(self.mqtts):
            with open(f"{d}/mosquitto-{i}.conf", "w") as f:
                f.write(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
            self.start(["mosquitto", "-c", f"{d}/mosquitto-{i}.conf"], f"mosquitto-{i}")
        wait_for("influxd to answer /ping", 60, lambda: self.answers(lambda: influx(self.influx, "GET", "/ping")[0] == 204))
        for port in self.mqtts:
            wait_for("mosquitto to listen", 30, lambda: self.answers(lambda: socket.create_connection(("127.0.0.1", port), 1).close() or True))
        status, body = influx(self.influx, "POST", "/query?q=CREATE%20DATABASE%20smoke")
        if status != 200:
            fail(f"CREATE DATABASE gave {status}: {body!r}")

    def start(self, cmd, name):
        log = open(f"{self.dir}/{name}.log", "wb")
        self.procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))

    def answers(self, probe):
        for p in self.procs:
            if p.poll() is not None:
                fail(f"{p.args[0]} exited with {p.returncode}: see {self.dir}")
        try:
            return probe()
        except OSError:
            return False

    def query(self, q):
        path = "/query?db=smoke&epoch=u&q=" + urllib.parse.quote(q)
        status, body = influx(self.influx, "POST", path)
        if status != 200:
            fail(f"InfluxQL {q!r} gave {status}: {body!r}")
        series = json.loads(body)["results"][0].get("series", [])
        return [dict(zip(s["columns"], v)) for s in series for v in s["values"]]

    def retained(self, topic):
        """{topic: payload} of the retained messages under topic, as mosquitto_sub sees them."""
        out = subprocess.run(
            ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(self.mqtt), "-t", topic, "--retained-only",
             "-W", "3", "-F", "%t %p"],
            capture_output=True, timeout=20).stdout.decode(errors="replace")
        return dict(l.partition(" ")[::2] for l in out.splitlines())

    def next_message(self, topic):
        out = subprocess.run(
            ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(self.mqtt), "-t", topic, "-C", "1",
             "-R", "-W", "30"],
            capture_output=True, timeout=40).stdout.decode(errors="replace")
        return out.strip()

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def push_servers():
    """Servers for --push, or None (with the reason printed) where they are missing."""
    missing = [t for t in ("influxd", "mosquitto", "mosquitto_sub") if shutil.which(t) is None]
    if missing:
        if os.environ.get("CI"):
            fail(f"--push needs {', '.join(missing)} (CI is set: not skipping)")
        print(f"smoke: push steps skipped: {', '.join(missing)} not installed")
        return None
    return Servers()


def check_pushed(servers, port):
    """Steps 5 and 6: what the artefact pushed, read back from the servers."""
    def doc_and_time():
        status, headers, body = http(port, "GET", "/metrics")
        if status != 200:
            fail(f"/metrics gave {status}")
        return json.loads(body), int(headers["etag"].strip('"').split("-")[0], 16)

    def pushed():
        doc, _ = doc_and_time()
        p = doc["fluxstat"]["push"]
        return p["influx"]["sent"] >= 2 and p["mqtt"]["sent"] >= 1
    wait_for("two samples sent to InfluxDB and one to the broker", 60, pushed)

    doc, us = doc_and_time()
    memory = wait_for(f"the sample of /metrics ({us} µs) in InfluxDB", 30,
                      lambda: servers.query(f"SELECT * FROM memory WHERE time = {us * 1000}"))[0]
    for key in ("memory_total", "memory_used", "memory_free", "memory_available", "memory_used_percentage"):
        if memory[key] != doc["system"]["memory"][key]:
            fail(f"InfluxDB's memory.{key} is {memory[key]!r}, /metrics says {doc['system']['memory'][key]!r}")
    load = servers.query(f"SELECT * FROM load WHERE time = {us * 1000}")[0]
    for key in ("load_1", "load_5", "load_15"):
        if load[key] != doc["system"]["load"][key]:
            fail(f"InfluxDB's load.{key} is {load[key]!r}, /metrics says {doc['system']['load'][key]!r}")

    status = servers.retained("fluxstat/+/status")
    if list(status.values()) != ["online"]:
        fail(f"retained status is {status!r}, not one 'online'")
    configs = servers.retained("homeassistant/#")
    memory_config = None
    for topic, payload in configs.items():
        c = json.loads(payload)
        for key in ("name", "unique_id", "state_topic", "value_template", "availability_topic", "device"):
            if key not in c:
                fail(f"{topic} lacks {key}: {payload}")
        if "memory_used_percentage" in c["value_template"]:
            memory_config = c
    if memory_config is None:
        fail(f"no discovery config for memory_used_percentage among {len(configs)}: {sorted(configs)}")
    state = json.loads(servers.next_message(memory_config["state_topic"]) or "null")
    if not isinstance(state, dict) or not 0 <= state.get("memory_used_percentage", -1) <= 100:
        fail(f"state on {memory_config['state_topic']} is {state!r}")
    return len(configs), status


def main():
    args = sys.argv[1:]
    push = bool(args) and args[0] == "--push"
    if push:
        args = args[1:]
    if not args:
        fail("usage: cross/smoke.py [--push] ARTEFACT [RUNNER WORD...]")
    artefact, runner = args[0], args[1:]
    cmd = runner + [artefact, "--listen", "127.0.0.1:0", "--request-timeout", "1s"]
    servers = push_servers() if push else None
    if servers:
        cmd += ["--interval", "500ms",
                "--influx-url", f"http://127.0.0.1:{servers.influx}/write?db=smoke",
                "--mqtt", f"mqtt://localhost:{servers.mqtt}"]
    env = dict(os.environ, FLUXSTAT_LOG_LEVEL="info")
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    except OSError as e:
        if servers:
            servers.stop()
        fail(f"cannot start {artefact}: {e}")
    log = b""
    pushed = ""
    try:
        # 1. the listening line, at most 30 s (qemu start-up on a busy machine).
        deadline = time.monotonic() + 30
        port = None
        while port is None:
            left = deadline - time.monotonic()
            if left <= 0:
                fail("no 'listening on' line within 30 s", log.decode(errors="replace"))
            ready, _, _ = select.select([proc.stderr], [], [], left)
            if not ready:
                continue
            chunk = os.read(proc.stderr.fileno(), 4096)
            if not chunk:
                fail(f"exited with {proc.wait()} before listening", log.decode(errors="replace"))
            log += chunk
            m = re.search(rb"listening on 127\.0\.0\.1:(\d+)", log)
            if m:
                port = int(m.group(1))

        # 2. /metrics
        status, _, body = http(port, "GET", "/metrics", 20)
        if status != 200:
            fail(f"/metrics gave {status}")
        doc = json.loads(body)
        if not isinstance(doc, dict) or not doc:
            fail("/metrics is not a JSON object")

        # 3. the request timeout: half a head, then wait for the 408.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            started = time.monotonic()
            try:
                answer = s.recv(4096)
            except socket.timeout:
                fail("no answer within 10 s to a half-sent head: the request timeout never fired")
            took = time.monotonic() - started
        if not answer.startswith(b"HTTP/1.1 408 "):
            fail(f"a half-sent head got {answer[:40]!r}, not 408")
        if not 0.9 <= took <= 8:
            fail(f"408 after {took:.2f} s with --request-timeout 1s")

        # 5, 6. what it pushed
        if servers:
            configs, status = check_pushed(servers, port)
            pushed = f", pushed: InfluxDB points equal to /metrics, {configs} discovery configs, MQTT state"

        # 4. SIGTERM
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            fail("still running 10 s after SIGTERM")
        if code != 0:
            fail(f"exit status {code} after SIGTERM")
        # 7. the broker tells Home Assistant that fluxstat is gone.
        if servers:
            topic = next(iter(status))
            wait_for(f"'offline' on {topic}", 30, lambda: servers.retained(topic).get(topic) == "offline")
            pushed += ", status offline after the stop"
        print(f"smoke ok: /metrics JSON ({len(doc)} keys), 408 after {took:.2f} s, exit 0 on SIGTERM{pushed}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if servers:
            servers.stop()


if __name__ == "__main__":
    main()
