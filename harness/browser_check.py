#!/usr/bin/env python3
"""browser_check.py - the benchmark report as people read it: report.html opened in headless
Chromium as a desktop (1400 px wide) and as a phone (390 px wide, device emulation: a touch
screen, 3 device pixels per CSS pixel, the viewport the page's <meta name=viewport> asks for).

    python3 harness/browser_check.py RUN_DIR

Chromium is driven over its DevTools protocol on a pipe (--remote-debugging-pipe: JSON messages
ended by a NUL byte, Python's standard library only). On each device the page is loaded, and a
script measures its layout once every image has loaded: the page must not be wider than its
viewport (a table wider than the page scrolls inside its own box), no image may be broken, and
every plot must be drawn at no less than 0.6 of its size in CSS pixels (below that its text is
too small to read). A full-page screenshot of each device is kept in RUN_DIR (screenshot-1400.png,
screenshot-390.png). The check is also run on a copy of the page spoiled on purpose (a table out
of its box, a broken image, a plot squeezed to 200 px): it must find all three, or it could not
fail. make bench runs it on every run it reports; make test on a run of its own
(tests/bench/run.sh). Output: PASS/FAIL lines, then "N passed, N failed"; exit 1 on a failure, 2 on
bad usage or when Chromium is missing. Every wait is bounded (TIMEOUT_S).
"""
import base64
import json
import os
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from checks import check, summary  # noqa: E402

# (name, width, height, device pixels per CSS pixel, mobile)
DEVICES = (("1400", 1400, 900, 1, False), ("390", 390, 844, 3, True))
MIN_SCALE = 0.6
TIMEOUT_S = 60

# Evaluated in the page: a JSON string of what it found.
MEASURE = """(() => {
  const problems = [];
  const width = document.documentElement.clientWidth;
  const page = document.documentElement.scrollWidth;
  if (page > width + 1) problems.push('the page is ' + page + ' px wide in a ' + width + ' px viewport');
  document.querySelectorAll('table').forEach((table, i) => {
    const box = table.parentElement, style = getComputedStyle(box);
    const scrolls = style.overflowX === 'auto' || style.overflowX === 'scroll';
    const right = table.getBoundingClientRect().right;
    if (!scrolls && right > width + 1)
      problems.push('table ' + (i + 1) + ' runs off the page (right edge at ' + Math.round(right) + ' px)');
    if (box.getBoundingClientRect().right > width + 1)
      problems.push('the box of table ' + (i + 1) + ' is wider than the viewport');
  });
  document.querySelectorAll('img').forEach((img, i) => {
    const name = 'image ' + (i + 1) + ' (' + (img.alt || img.src.slice(0, 40)) + ')';
    if (!img.complete || img.naturalWidth === 0) { problems.push(name + ' is broken'); return; }
    const scale = img.getBoundingClientRect().width / img.naturalWidth;
    if (scale < %(min_scale)s)
      problems.push(name + ' is drawn at ' + scale.toFixed(2) + ' of its size: its text is illegible');
  });
  return JSON.stringify({width: width, tables: document.querySelectorAll('table').length,
                         images: document.querySelectorAll('img').length, problems: problems});
})()""" % {"min_scale": MIN_SCALE}


def png(width, height):
    """A grey PNG of that size, as a data: URL."""
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))
    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    return "data:image/png;base64," + base64.b64encode(data).decode()


# What a spoiled page adds: a wide table outside any scrolling box, an image that does not exist,
# and an 800 px plot squeezed into 200 px.
SPOIL = ("<table><tr>" + "".join(f"<td>spoiled-column-{i}-with-long-text</td>" for i in range(40)) + "</tr></table>"
         "<img alt='spoiled: missing' src='does-not-exist.png'>"
         f"<img alt='spoiled: squeezed' style='width:200px' src='{png(800, 2)}'>")


class BrowserError(Exception):
    pass


class Browser:
    """Headless Chromium and one page, spoken to over the DevTools protocol on fds 3 and 4."""

    def __init__(self, binary):
        to_browser_r, self.to_browser = os.pipe()
        self.from_browser, from_browser_w = os.pipe()
        # Numbered out of the way, so that moving them to 3 and 4 in the child cannot clobber one.
        os.dup2(to_browser_r, 200)
        os.dup2(from_browser_w, 201)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self.profile = tempfile.mkdtemp(prefix="c10k-chromium-")

        def pipes_at_3_and_4():
            # subprocess's own close_fds would run before this and close 3 and 4 again: done here.
            os.dup2(200, 3)
            os.dup2(201, 4)
            os.closerange(5, os.sysconf("SC_OPEN_MAX"))

        self.proc = subprocess.Popen(
            [binary, "--headless", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu",
             "--no-first-run", "--disable-extensions", "--hide-scrollbars", "--mute-audio",
             f"--user-data-dir={self.profile}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            close_fds=False, preexec_fn=pipes_at_3_and_4)
        os.close(200)
        os.close(201)
        self.next_id = 0
        self.buffer = b""
        self.events = []
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.call("Page.enable", session=True)

    def send(self, method, params, session):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        os.write(self.to_browser, json.dumps(message).encode() + b"\0")
        return self.next_id

    def receive(self, deadline):
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError(f"chromium said nothing for {TIMEOUT_S} s")
            ready, _, _ = select.select([self.from_browser], [], [], left)
            if ready:
                chunk = os.read(self.from_browser, 1 << 20)
                if not chunk:
                    raise BrowserError("chromium closed its pipe (it exited?)")
                self.buffer += chunk
        message, _, self.buffer = self.buffer.partition(b"\0")
        return json.loads(message)

    def call(self, method, params=None, session=False):
        wanted = self.send(method, params, session)
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            message = self.receive(deadline)
            if message.get("id") == wanted:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error'].get('message')}")
                return message.get("result", {})
            self.events.append(message)

    def wait_event(self, method):
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            for i, message in enumerate(self.events):
                if message.get("method") == method:
                    del self.events[i]
                    return message
            self.events.append(self.receive(deadline))

    def load(self, url, width, height, scale, mobile):
        self.call("Emulation.setDeviceMetricsOverride", {"width": width, "height": height,
                  "deviceScaleFactor": scale, "mobile": mobile}, session=True)
        self.call("Emulation.setTouchEmulationEnabled", {"enabled": mobile}, session=True)
        self.events.clear()
        self.call("Page.navigate", {"url": url}, session=True)
        self.wait_event("Page.loadEventFired")

    def measure(self):
        result = self.call("Runtime.evaluate", {"expression": MEASURE, "returnByValue": True}, session=True)
        if "exceptionDetails" in result:
            raise BrowserError(f"the layout script failed: {result['exceptionDetails'].get('text')}")
        return json.loads(result["result"]["value"])

    def screenshot(self, path):
        result = self.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True},
                           session=True)
        with open(path, "wb") as f:
            f.write(base64.b64decode(result["data"]))

    def close(self):
        try:
            self.send("Browser.close", {}, False)
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        for fd in (self.to_browser, self.from_browser):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def main(argv):
    if len(argv) != 1:
        print("usage: browser_check.py RUN_DIR", file=sys.stderr)
        return 2
    run_dir = os.path.abspath(argv[0])
    report = os.path.join(run_dir, "report.html")
    if not os.path.exists(report):
        print(f"browser_check.py: {report} does not exist", file=sys.stderr)
        return 2
    binary = chromium()
    if binary is None:
        print("browser_check.py: no chromium (make deps installs Debian's chromium)", file=sys.stderr)
        return 2
    with open(report) as f:
        text = f.read()
    check("the report sets the viewport to the device's width",
          "<meta name='viewport' content='width=device-width" in text
          or '<meta name="viewport" content="width=device-width' in text,
          "no <meta name=viewport content=width=device-width>")
    # The spoiled copy sits beside the report, so that its relative links resolve the same way.
    spoiled = os.path.join(run_dir, ".report-spoiled.html")
    with open(spoiled, "w") as f:
        f.write(text.replace("</body>", SPOIL + "</body>") if "</body>" in text else text + SPOIL)
    browser = None
    try:
        browser = Browser(binary)
        for name, width, height, scale, mobile in DEVICES:
            what = f"report at {width} px{' (phone)' if mobile else ''}"
            browser.load("file://" + report, width, height, scale, mobile)
            found = browser.measure()
            check(f"{what}: laid out {width} px wide", found["width"] == width,
                  f"the viewport is {found['width']} px")
            check(f"{what}: tables and plots are there", found["tables"] > 0 and found["images"] > 0,
                  f"{found['tables']} tables, {found['images']} images")
            check(f"{what}: nothing runs off the page, no broken or illegible image", not found["problems"],
                  "; ".join(found["problems"]))
            shot = os.path.join(run_dir, f"screenshot-{name}.png")
            browser.screenshot(shot)
            check(f"{what}: screenshot {shot}", os.path.getsize(shot) > 0, "empty screenshot")
        browser.load("file://" + spoiled, 390, 844, 3, True)
        problems = " | ".join(browser.measure()["problems"])
        check("the check finds a spoiled page's table off the page, broken image and squeezed plot",
              "runs off the page" in problems and "spoiled: missing" in problems and "spoiled: squeezed" in problems,
              problems or "it found nothing")
    except (BrowserError, OSError, ValueError, KeyError) as e:
        check("chromium loads and measures the report", False, str(e))
    finally:
        if browser is not None:
            browser.close()
        os.remove(spoiled)
    return summary()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
