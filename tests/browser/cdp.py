"""A minimal Chrome DevTools Protocol client over --remote-debugging-pipe.

Chromium reads commands from its file descriptor 3 and writes answers and events
to descriptor 4, each message JSON ended by a NUL byte: no websocket, no port,
no library. Used by tests/browser/page_test.py.
"""

import json
import os
import subprocess
import threading
import time


class CdpError(Exception):
    pass


class Browser:
    def __init__(self, chromium, profile, log):
        cmd_r, cmd_w = os.pipe()
        ev_r, ev_w = os.pipe()
        # The child's descriptors 3 and 4, whatever numbers the pipes got here.
        hi_r, hi_w = os.dup(cmd_r) + 100, os.dup(ev_w) + 100
        os.dup2(cmd_r, hi_r)
        os.dup2(ev_w, hi_w)

        def child_fds():
            os.dup2(hi_r, 3)
            os.dup2(hi_w, 4)

        args = [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--remote-debugging-pipe",
            f"--user-data-dir={profile}",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--disable-extensions",
            "--mute-audio",
            "--hide-scrollbars",
            "about:blank",
        ]
        self.proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=log, stderr=log, pass_fds=(3, 4, hi_r, hi_w), preexec_fn=child_fds
        )
        for fd in (cmd_r, ev_w, hi_r, hi_w):
            os.close(fd)
        self.out = os.fdopen(cmd_w, "wb", buffering=0)
        self.inp = os.fdopen(ev_r, "rb", buffering=0)
        self.next_id = 0
        self.lock = threading.Condition()
        self.answers = {}
        self.events = []
        self.closed = False
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        buf = b""
        while True:
            chunk = self.inp.read(65536)
            if not chunk:
                break
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                with self.lock:
                    if "id" in msg:
                        self.answers[msg["id"]] = msg
                    else:
                        self.events.append(msg)
                    self.lock.notify_all()
        with self.lock:
            self.closed = True
            self.lock.notify_all()

    def send(self, method, params=None, session=None, timeout=30):
        with self.lock:
            self.next_id += 1
            mid = self.next_id
        msg = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self.out.write(json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        with self.lock:
            while mid not in self.answers:
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    raise CdpError(f"{method}: no answer in {timeout} s")
                self.lock.wait(left)
            answer = self.answers.pop(mid)
        if "error" in answer:
            raise CdpError(f"{method}: {answer['error']}")
        return answer.get("result", {})

    def new_page(self):
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        return Page(self, session, target)

    def close(self):
        try:
            self.send("Browser.close", timeout=5)
        except (CdpError, OSError):
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Page:
    def __init__(self, browser, session, target):
        self.b, self.session, self.target = browser, session, target
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable")

    def send(self, method, params=None, timeout=30):
        return self.b.send(method, params, self.session, timeout)

    def events(self, method=None):
        with self.b.lock:
            return [
                e
                for e in self.b.events
                if e.get("sessionId") == self.session and (method is None or e["method"] == method)
            ]

    def goto(self, url):
        self.send("Page.navigate", {"url": url})

    def context(self):
        """The main world of the top frame's current document: without it,
        Runtime.evaluate may run in a document that is going away."""
        frame = self.send("Page.getFrameTree")["frameTree"]["frame"]["id"]
        alive = {}
        for e in self.events():
            p = e["params"]
            if e["method"] == "Runtime.executionContextCreated":
                c = p["context"]
                if c.get("auxData", {}).get("frameId") == frame and c.get("auxData", {}).get("isDefault"):
                    alive[c["id"]] = c["uniqueId"]
            elif e["method"] == "Runtime.executionContextDestroyed":
                alive.pop(p["executionContextId"], None)
            elif e["method"] == "Runtime.executionContextsCleared":
                alive.clear()
        return list(alive.values())[-1] if alive else None

    def eval(self, expression):
        params = {"expression": expression, "returnByValue": True, "awaitPromise": True}
        context = self.context()
        if context:
            params["uniqueContextId"] = context
        r = self.send("Runtime.evaluate", params)
        if "exceptionDetails" in r:
            raise CdpError(f"{expression}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def wait(self, expression, what, timeout=20):
        """Polls `expression` until it is truthy; fails naming `what` after `timeout` s."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                last = self.eval(expression)
            except CdpError as e:
                last = str(e)
            if last:
                return last
            time.sleep(0.1)
        raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")

    def viewport(self, width, height, mobile=False, dark=False):
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
        )
        scheme = "dark" if dark else "light"
        self.send("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": scheme}]})

    def screenshot(self, path):
        import base64

        data = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))
