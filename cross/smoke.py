#!/usr/bin/env python3
"""Smoke run of a release artefact (under qemu-user, or natively), used by
cross/build-artefacts.sh for every target and CPU it checks:

  cross/smoke.py ARTEFACT [RUNNER WORD...]

1. starts `RUNNER... ARTEFACT --listen 127.0.0.1:0 --request-timeout 1s` and reads the
   port from its "listening on" log line;
2. GET /metrics: 200 and a JSON object;
3. a connection that sends half a request head must get `408` after the request
   timeout, between 0.9 and 8 s: this is the timer path (timerfd and epoll), which
   once never fired on MIPS (rustix's time32 mismatch on musl);
4. SIGTERM: exit status 0 within 10 s.
A start-up crash (MIPS static-pie) fails step 1. Exit 0 when all pass, else 1 with
the reason and the artefact's log. Stdlib only; every wait has a deadline.
"""

import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time


def fail(msg, log=""):
    print(f"smoke: FAIL: {msg}", file=sys.stderr)
    if log:
        print("--- its log:\n" + log, file=sys.stderr)
    sys.exit(1)


def http_get(port, path, timeout):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, body


def main():
    if len(sys.argv) < 2:
        fail("usage: cross/smoke.py ARTEFACT [RUNNER WORD...]")
    artefact, runner = sys.argv[1], sys.argv[2:]
    cmd = runner + [artefact, "--listen", "127.0.0.1:0", "--request-timeout", "1s"]
    env = dict(os.environ, FLUXSTAT_LOG_LEVEL="info")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    log = b""
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
        status, body = http_get(port, "/metrics", 20)
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

        # 4. SIGTERM
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            fail("still running 10 s after SIGTERM")
        if code != 0:
            fail(f"exit status {code} after SIGTERM")
        print(f"smoke ok: /metrics JSON ({len(doc)} keys), 408 after {took:.2f} s, exit 0 on SIGTERM")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    main()
