"""The device page and the LAN overview in a real headless Chromium (issue 12).

Starts fluxstat instances on 127.0.0.1 (free ports), drives Debian's `chromium`
over the DevTools protocol (tests/browser/cdp.py) and checks:
  - the device page shows what /metrics says (host name, core count, disk mount
    points, memory total, and CPU % of the very sample the page shows), updates
    after the next sample, revalidates /metrics with If-None-Match and the page
    itself with a 304 on reload;
  - SIGSTOP: the page says the device is not answering; SIGCONT: it recovers;
  - --token-file: 401 -> the token form -> a wrong token is refused -> the right
    one shows the figures, sent as Authorization: Bearer and kept in sessionStorage;
  - the overview with a host that allows this page's origin (--cors-origin), one
    that does not (its card names the exact --cors-origin to set) and a refused
    port (offline, polled with growing gaps); the hosts field saves to
    localStorage and the URL; requests to one host never overlap;
  - no script error, no console error except the network failures the scenario
    causes on purpose, no request to any origin but the instances';
  - screenshots at desktop and phone width, light and dark, in target/browser/.

Usage: python3 tests/browser/page_test.py FLUXSTAT_BINARY CHROMIUM
"""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cdp  # noqa: E402

OUT = os.path.join("target", "browser")
DESKTOP = (1280, 900)
PHONE = (390, 844)


def log(msg):
    print(f"page_test: {msg}", flush=True)


class Fluxstat:
    """One instance on 127.0.0.1 and a free port; stopped by PID."""

    def __init__(self, binary, work, name, *args):
        self.log_path = os.path.join(work, f"{name}.log")
        self.proc = subprocess.Popen(
            [binary, "--listen", "127.0.0.1:0", "--interval", "1s", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(self.log_path, "w"),
        )
        deadline = time.monotonic() + 20
        self.port = None
        while time.monotonic() < deadline and self.port is None:
            with open(self.log_path) as f:
                for line in f:
                    if " listening on 127.0.0.1:" in line:
                        self.port = int(line.split(" listening on 127.0.0.1:")[1].split()[0])
            if self.proc.poll() is not None:
                raise AssertionError(f"{name} exited: {open(self.log_path).read()}")
            time.sleep(0.05)
        if self.port is None:
            raise AssertionError(f"{name} did not start listening")
        self.origin = f"http://127.0.0.1:{self.port}"

    def metrics(self, token=None):
        req = urllib.request.Request(self.origin + "/metrics")
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.load(r)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def fmt_bytes(n):
    """The page's bytes(): 1024-based, 2 decimals below 10, else 1."""
    units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
    i = 0
    while n >= 1024 and i < len(units) - 1:
        n /= 1024
        i += 1
    if i == 0:
        return f"{n} B"
    return (f"{n:.2f}" if n < 10 else f"{n:.1f}") + " " + units[i]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def text(page, selector):
    return page.eval(f"document.querySelector({json.dumps(selector)})?.textContent")


def shoot(page, name, size, mobile=False, dark=False):
    page.viewport(*size, mobile=mobile, dark=dark)
    time.sleep(0.3)
    path = os.path.join(OUT, f"{name}.png")
    page.screenshot(path)
    log(f"screenshot {path}")


def press_enter(page):
    for kind in ("keyDown", "keyUp"):
        page.send(
            "Input.dispatchKeyEvent",
            {"type": kind, "key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13, "text": "\r"},
        )


def requests_to(page, url):
    """(start, end) of each request for `url`, in the browser's clock."""
    starts, ends = {}, {}
    for e in page.events():
        p = e["params"]
        if e["method"] == "Network.requestWillBeSent" and p["request"]["url"] == url:
            starts[p["requestId"]] = p["timestamp"]
        elif e["method"] in ("Network.loadingFinished", "Network.loadingFailed") and p["requestId"] in starts:
            ends[p["requestId"]] = p["timestamp"]
    return sorted((starts[r], ends.get(r)) for r in starts)


def wire_statuses(page, url):
    """The status codes on the wire (304s included) of the requests for `url`."""
    ids = {e["params"]["requestId"] for e in page.events("Network.requestWillBeSent") if e["params"]["request"]["url"] == url}
    return [e["params"]["statusCode"] for e in page.events("Network.responseReceivedExtraInfo") if e["params"]["requestId"] in ids]


def device_page(page, s1):
    page.viewport(*DESKTOP)
    page.goto(s1.origin + "/")
    page.wait("document.body.dataset.state === 'live'", "the device page to go live")
    # Everything the page shows, read at once, compared with the very sample it
    # shows (fetched until /metrics serves the same `updated_at`).
    shown = """({
        updated: document.querySelector('#updated').getAttribute('datetime'),
        name: document.querySelector('#name').textContent,
        cores: document.querySelector('#cores').textContent,
        coreRows: document.querySelectorAll('[data-core]').length,
        mounts: [...document.querySelectorAll('[data-mount]')].map((e) => e.dataset.mount),
        memory: document.querySelector('#memory-total').textContent,
        cpu: document.querySelector('#cpu-total').textContent,
        interfaces: document.querySelectorAll('[data-interface]').length,
        blockdevs: [...document.querySelectorAll('[data-blockdev]')].map((e) => e.dataset.blockdev),
        conntrack: !!document.querySelector('[data-vital=conntrack]'),
    })"""
    deadline = time.monotonic() + 20
    while True:
        doc = s1.metrics()
        seen = page.eval(shown)
        if seen["updated"] == doc["updated_at"]:
            break
        assert time.monotonic() < deadline, f"the page never showed the sample /metrics served: {seen}"
        time.sleep(0.05)
    sys_ = doc["system"]
    n = sys_["cpu"]["cpu_core_total"]
    want = {
        "updated": doc["updated_at"],
        "name": sys_["host"]["hostname"],
        "cores": f"{n} core{'s' if n != 1 else ''}",
        "coreRows": n,
        "mounts": [d["mount"] for d in sys_["disk"]["disks"].values()],
        "memory": fmt_bytes(sys_["memory"]["memory_total"]),
        "cpu": f"{sys_['cpu']['cpu_usage_percentage']:.1f} %",
        "interfaces": len(sys_["network"] or {}),
        "blockdevs": list(sys_["disk_io"] or {}),
        "conntrack": sys_["conntrack"] is not None,
    }
    assert seen == want, f"page {seen} != /metrics {want}"
    log(f"device page shows what /metrics says: {seen}")

    # The next sample appears.
    first = doc["updated_at"]
    page.wait(
        f"document.querySelector('#updated').getAttribute('datetime') > {json.dumps(first)}",
        "the next sample",
        timeout=10,
    )
    log("the page follows the samples")

    # A poll while the sample is unchanged costs a 304: the page's own poll, run
    # again right after one answered (no request in flight, same sample).
    before = wire_statuses(page, s1.origin + "/metrics").count(304)
    page.eval("device.tick(), true")
    deadline = time.monotonic() + 10
    while wire_statuses(page, s1.origin + "/metrics").count(304) == before:
        assert time.monotonic() < deadline, f"no 304: {wire_statuses(page, s1.origin + '/metrics')}"
        time.sleep(0.05)

    # Polls revalidate: every /metrics request after the first carries If-None-Match.
    sent = [
        e["params"]["headers"]
        for e in page.events("Network.requestWillBeSentExtraInfo")
        if e["params"]["headers"].get(":path", "/metrics") == "/metrics"
        and e["params"]["headers"].get("Host", "").endswith(str(s1.port))
    ]
    polls = [h for h in sent if "Accept" in h and "Upgrade-Insecure-Requests" not in h]
    assert len(polls) >= 2 and all("If-None-Match" in h for h in polls[1:]), f"polls without If-None-Match: {polls}"

    # The page itself is kept and revalidated: a reload gets 304.
    page.send("Page.reload")
    page.wait("document.body.dataset.state === 'live'", "the reloaded page to go live")
    codes = [
        e["params"]["statusCode"]
        for e in page.events("Network.responseReceivedExtraInfo")
        if e["params"]["headers"].get("Content-Security-Policy") or e["params"]["statusCode"] == 304
    ]
    assert 304 in codes, f"the reload was not a 304: {codes}"
    log("/metrics polls carry If-None-Match and get a 304 while the sample is unchanged; a reload of / is a 304")
    time.sleep(2)
    shoot(page, "device-desktop", DESKTOP)
    shoot(page, "device-phone", PHONE, mobile=True)
    shoot(page, "device-desktop-dark", DESKTOP, dark=True)
    page.viewport(*DESKTOP)


def stop_and_resume(page, s1):
    before = page.eval("document.querySelector('#updated').getAttribute('datetime')")
    s1.proc.send_signal(signal.SIGSTOP)
    try:
        page.wait("document.body.dataset.state === 'offline'", "the offline state after SIGSTOP", timeout=15)
        status = text(page, "#status")
        assert status.startswith("Not answering since"), status
        log(f"stopped: {status!r}")
        shoot(page, "device-stopped-desktop", DESKTOP)
    finally:
        s1.proc.send_signal(signal.SIGCONT)
    page.wait("document.body.dataset.state === 'live'", "recovery after SIGCONT", timeout=45)
    page.wait(
        f"document.querySelector('#updated').getAttribute('datetime') > {json.dumps(before)}",
        "a new sample after SIGCONT",
    )
    log("resumed: live again with a new sample")


def token_flow(page, binary, work):
    token = "s3cret-Token"
    path = os.path.join(work, "token")
    with open(path, "w") as f:
        f.write(token + "\n")
    s2 = Fluxstat(binary, work, "token", "--token-file", path)
    try:
        page.goto(s2.origin + "/")
        page.wait("document.body.dataset.state === 'token' && !document.querySelector('#token').hidden", "the token form")
        page.wait("document.activeElement && document.activeElement.id === 'token-input'", "focus in the token field")
        page.send("Input.insertText", {"text": "wrong"})
        press_enter(page)
        page.wait("document.querySelector('#token-msg').textContent === 'That token was refused.'", "a refusal")
        assert page.eval("sessionStorage.getItem('fluxstat-token')") is None
        page.eval("document.querySelector('#token-input').focus()")
        page.send("Input.insertText", {"text": token})
        press_enter(page)
        page.wait("document.body.dataset.state === 'live'", "figures after the token")
        assert page.eval("sessionStorage.getItem('fluxstat-token')") == token
        name = s2.metrics(token)["system"]["host"]["hostname"]
        page.wait(f"document.querySelector('#name').textContent === {json.dumps(name)}", "the host name")
        statuses = [
            e["params"]["response"]["status"]
            for e in page.events("Network.responseReceived")
            if e["params"]["response"]["url"] == s2.origin + "/metrics"
        ]
        assert statuses[:2] == [401, 401] and 200 in statuses, statuses
        auth = [
            e["params"]["headers"].get("Authorization")
            for e in page.events("Network.requestWillBeSentExtraInfo")
            if e["params"]["headers"].get("Host") == f"127.0.0.1:{s2.port}"
        ]
        assert f"Bearer {token}" in auth, auth
        log("token: 401 -> form -> wrong token refused -> figures with Authorization: Bearer")
    finally:
        s2.stop()
    return s2.origin


def null_families(page, binary, work):
    """A machine whose /proc and /sys are empty: most families are null, and say so."""
    empty = os.path.join(work, "empty")
    os.makedirs(empty, exist_ok=True)
    s5 = Fluxstat(binary, work, "empty", "--procfs", empty, "--sysfs", empty)
    try:
        page.goto(s5.origin + "/")
        page.wait("document.body.dataset.state === 'live'", "the page of a machine without /proc")
        doc = s5.metrics()
        nulls = [f for f in ("uptime", "memory", "load", "disk", "network") if doc["system"][f] is None]
        assert len(nulls) >= 3, f"the empty tree should leave families null: {doc}"
        for family in nulls:
            said = page.eval(f"document.querySelector('[data-family={family}]').textContent")
            assert "Not available on this device (null in /metrics)." in said, (family, said)
        if doc["system"]["host"]["hostname"] is None:
            assert text(page, "#name") == "127.0.0.1"
        log(f"null families say so: {nulls}")
    finally:
        s5.stop()
    return s5.origin


def overview(page, binary, work, s1):
    # The CORS-enabled host reads the OpenWrt router's fixture tree: another name,
    # sensors, a bridge; its CPU figures are this machine's.
    fixture = os.path.join("tests", "fixtures", "openwrt")
    s3 = Fluxstat(
        binary, work, "cors", "--cors-origin", s1.origin,
        "--procfs", os.path.join(fixture, "proc"), "--sysfs", os.path.join(fixture, "sys"),
    )
    s4 = Fluxstat(binary, work, "nocors")
    refused = free_port()
    try:
        hosts = f"127.0.0.1:{s3.port},127.0.0.1:{s4.port},127.0.0.1:{refused}"
        page.goto(f"{s1.origin}/?hosts={hosts}")
        card = lambda port: f"document.querySelector('.card[data-host=\"127.0.0.1:{port}\"]')"  # noqa: E731
        page.wait(f"{card(s3.port)}?.dataset.state === 'live'", "the CORS-enabled host's card")
        page.wait(f"{card(s4.port)}?.dataset.state === 'cors'", "the CORS card")
        page.wait(f"{card(refused)}?.dataset.state === 'offline'", "the refused port's card")
        assert page.eval("document.querySelectorAll('.card').length") == 4
        name = s3.metrics()["system"]["host"]["hostname"]
        assert name in page.eval(f"{card(s3.port)}.textContent")
        cors_text = page.eval(f"{card(s4.port)}.textContent")
        assert f"--cors-origin {s1.origin}" in cors_text, cors_text
        assert f"FLUXSTAT_CORS_ORIGIN={s1.origin}" in cors_text, cors_text
        assert page.eval(f"{card(s3.port)}.href") == s3.origin + "/"
        log(f"overview: live, CORS ({cors_text[:60]!r}…) and offline cards")
        time.sleep(12)
        shoot(page, "overview-desktop", DESKTOP)
        shoot(page, "overview-phone", PHONE, mobile=True)
        shoot(page, "overview-desktop-dark", DESKTOP, dark=True)
        page.viewport(*DESKTOP)

        # Polite: a host's requests never overlap; an offline host is polled less and less often.
        for port in (s1.port, s3.port):
            spans = requests_to(page, f"http://127.0.0.1:{port}/metrics")
            for (a0, a1), (b0, _) in zip(spans, spans[1:]):
                assert a1 is not None and a1 <= b0, f"overlapping requests to :{port}: {spans}"
        tries = [s for s, _ in requests_to(page, f"http://127.0.0.1:{refused}/metrics")]
        # Each try is a cors fetch and its no-cors probe, a few ms apart.
        attempts = [t for i, t in enumerate(tries) if i == 0 or t - tries[i - 1] > 0.5]
        gaps = [b - a for a, b in zip(attempts, attempts[1:])]
        assert len(gaps) >= 2 and all(b > a * 1.5 for a, b in zip(gaps, gaps[1:])), f"no back-off: {gaps}"
        log(f"polite: no overlap; offline host retried after {[round(g, 1) for g in gaps]} s")

        # The field: saved in localStorage and the URL.
        page.eval(f"document.querySelector('#hosts').value = '127.0.0.1:{s3.port}'")
        page.eval("document.querySelector('#hosts-form').requestSubmit()")
        page.wait("document.querySelectorAll('.card').length === 2", "the overview of the saved list")
        assert page.eval("localStorage.getItem('fluxstat-hosts')") == f"127.0.0.1:{s3.port}"
        assert page.eval("location.search") == f"?hosts=127.0.0.1:{s3.port}"
        page.goto(s1.origin + "/")
        page.wait(f"{card(s3.port)}?.dataset.state === 'live'", "the saved list after a new visit")
        log("the hosts field is kept in localStorage and the URL")
    finally:
        s3.stop()
        s4.stop()
    return [s3.origin, s4.origin, f"http://127.0.0.1:{refused}"]


def check_console_and_origins(page, origins, expected_failures):
    problems = []
    for e in page.events():
        m, p = e["method"], e["params"]
        if m == "Runtime.exceptionThrown":
            problems.append(f"script error: {p['exceptionDetails']}")
        elif m == "Runtime.consoleAPICalled" and p["type"] in ("error", "assert", "warning"):
            problems.append(f"console.{p['type']}: {p['args']}")
        elif m == "Log.entryAdded" and p["entry"]["level"] in ("error", "warning"):
            entry = p["entry"]
            where = entry.get("url", "") + " " + entry["text"]
            if not any(f in where for f in expected_failures):
                problems.append(f"console {entry['level']} ({entry['source']}): {entry['text']} {entry.get('url')}")
        elif m == "Network.requestWillBeSent":
            url = p["request"]["url"]
            if not url.startswith("data:") and not any(url.startswith(o + "/") for o in origins):
                problems.append(f"request to another origin: {url}")
    assert not problems, "\n  ".join(["console or network problems:"] + problems)
    log("no script errors, no unexpected console errors, no request to other origins")


def main():
    binary, chromium = sys.argv[1], sys.argv[2]
    # A SIGTERM (timeout, CI cancel) runs the finally blocks that stop what was started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    os.makedirs(OUT, exist_ok=True)
    work = tempfile.mkdtemp(prefix="fluxstat-browser-")
    started = time.monotonic()
    s1 = Fluxstat(binary, work, "device")
    browser = cdp.Browser(chromium, os.path.join(work, "profile"), open(os.path.join(work, "chromium.log"), "w"))
    page = browser.new_page()
    try:
        device_page(page, s1)
        stop_and_resume(page, s1)
        s2_origin = token_flow(page, binary, work)
        s5_origin = null_families(page, binary, work)
        others = overview(page, binary, work, s1)
        origins = [s1.origin, s2_origin, s5_origin, *others]
        expected = [
            f"{s2_origin}/metrics",  # the 401 before the token
            f"{others[1]}/metrics",  # the host without --cors-origin
            f"{others[2]}/metrics",  # the refused port
        ]
        check_console_and_origins(page, origins, expected)
    except Exception:
        log(f"FAILED; logs in {work}")
        for e in page.events():
            if e["method"] in ("Runtime.exceptionThrown", "Log.entryAdded", "Runtime.consoleAPICalled"):
                log(f"  {e['method']}: {json.dumps(e['params'])[:600]}")
        raise
    finally:
        browser.close()
        s1.stop()
    log(f"all checks passed in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
