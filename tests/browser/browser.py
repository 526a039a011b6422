"""browser.py: headless Chromium driven over the DevTools protocol on a pipe,
with nothing but the standard library.

Chromium started with --remote-debugging-pipe reads protocol commands from
its fd 3 and writes replies and events to its fd 4, each message a JSON
object ending in a NUL byte. Chromium.load() opens a file in the one tab and
collects what a user would find in the console: uncaught exceptions, console
errors and browser-logged errors (a blocked request, a Content Security
Policy violation). screenshot() writes a PNG of the whole page and
evaluate() reads the DOM.
"""
import base64
import json
import os
import select
import shutil
import subprocess
import tempfile

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--remote-debugging-pipe"]
TIMEOUT_S = 60


def find():
    """Path of the chromium binary, or None."""
    return shutil.which("chromium") or (os.path.exists("/usr/bin/chromium") and "/usr/bin/chromium") or None


class Chromium:
    def __init__(self, exe, width=1200, height=2000):
        self.profile = tempfile.mkdtemp(prefix="oq-chromium-")
        to_child, from_parent = os.pipe()  # commands: we write, the browser reads its fd 3
        from_child, to_parent = os.pipe()  # replies and events: the browser writes its fd 4

        def child_fds():  # runs in the child before exec
            a, b = os.dup(to_child), os.dup(to_parent)
            os.dup2(a, 3)
            os.dup2(b, 4)
            os.set_inheritable(3, True)
            os.set_inheritable(4, True)

        self.log = open(os.path.join(self.profile, "stderr.txt"), "wb")
        self.proc = subprocess.Popen([exe, *FLAGS, "--user-data-dir=" + self.profile, "about:blank"],
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
                                     close_fds=False, preexec_fn=child_fds)
        os.close(to_child)
        os.close(to_parent)
        self.w = os.fdopen(from_parent, "wb", buffering=0)
        self.r = os.fdopen(from_child, "rb", buffering=0)
        self.buf = b""
        self.next_id = 0
        self.pending = []  # events read while waiting for a reply
        targets = self.send("Target.getTargets")["targetInfos"]
        page = [t for t in targets if t["type"] == "page"][0]["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": page, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.send(domain + ".enable", session=True)
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session=True)
        self.width = width

    def _read(self):
        while b"\0" not in self.buf:
            ready, _, _ = select.select([self.r], [], [], TIMEOUT_S)
            if not ready:
                raise RuntimeError("chromium sent nothing for %d s" % TIMEOUT_S)
            chunk = self.r.read(1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed its pipe (exit code %s)" % self.proc.poll())
            self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def send(self, method, params=None, session=False):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = self.session
        self.w.write(json.dumps(msg).encode() + b"\0")
        while True:
            m = self._read()
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise RuntimeError("%s: %s" % (method, m["error"]))
                return m["result"]
            self.pending.append(m)

    def _wait_event(self, method):
        while True:
            for i, m in enumerate(self.pending):
                if m.get("method") == method:
                    del self.pending[i]
                    return m
            self.pending.append(self._read())

    def load(self, path):
        """Opens path (a file) and returns the console errors its load produced, one line each."""
        self.pending = []
        url = "file://" + os.path.abspath(path) if "://" not in path and path != "about:blank" else path
        self.send("Page.navigate", {"url": url}, session=True)
        self._wait_event("Page.loadEventFired")
        self.evaluate("document.readyState")  # a round trip: events of the load arrive before its reply
        errors = []
        for m in self.pending:
            p = m.get("params", {})
            if m.get("method") == "Runtime.exceptionThrown":
                errors.append("exception: " + p["exceptionDetails"].get("text", ""))
            elif m.get("method") == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                errors.append("console.%s: %s" % (p["type"], " ".join(str(a.get("value", a.get("description")))
                                                                     for a in p.get("args", []))))
            elif m.get("method") == "Log.entryAdded" and p["entry"]["level"] == "error":
                errors.append("%s: %s" % (p["entry"]["source"], p["entry"]["text"]))
        return errors

    def evaluate(self, expression):
        r = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=True)
        if "exceptionDetails" in r:
            raise RuntimeError("%s: %s" % (expression, r["exceptionDetails"].get("text")))
        return r["result"].get("value")

    def screenshot(self, png_path):
        """Writes a PNG of the whole page at the window's width."""
        height = self.evaluate("Math.ceil(document.documentElement.scrollHeight)") or 1
        shot = self.send("Page.captureScreenshot",
                         {"format": "png", "captureBeyondViewport": True,
                          "clip": {"x": 0, "y": 0, "width": self.width, "height": height, "scale": 1}}, session=True)
        with open(png_path, "wb") as f:
            f.write(base64.b64decode(shot["data"]))

    def close(self):
        try:
            self.send("Browser.close")
        except (RuntimeError, OSError):
            pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.w.close()
        self.r.close()
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)
