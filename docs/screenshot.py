"""Screenshot a web page with headless Chromium once it is ready (docs/app.png is made by it).

``chromium --screenshot`` shoots when the page has loaded, before the app's first result comes
back from the server (and ``--virtual-time-budget`` runs the page's clock ahead of the
server's). So this drives Chromium through the DevTools protocol over a pipe (standard library
only): open the page, poll a JavaScript condition, then capture.

    python docs/screenshot.py http://127.0.0.1:7860 docs/app.png
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

#: True once the app shows its first result: the summary line and the loop's picture.
APP_READY_JS = ("document.body.innerText.includes('nearest training loop scores') "
                "&& [...document.images].some(i => i.src.includes('.png') && i.complete)")
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    """Path of a Chromium (or Chrome) binary on PATH, or None."""
    return next((shutil.which(name) for name in BROWSERS if shutil.which(name)), None)


class _DevTools:
    """Chromium's DevTools protocol over ``--remote-debugging-pipe`` (JSON messages, NUL-ended)."""

    def __init__(self, browser: str, *, width: int, height: int):
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def child_fds():  # Chromium reads commands on fd 3 and writes replies on fd 4
            read_end, write_end = os.dup(to_chrome_r), os.dup(from_chrome_w)  # off 3 and 4 first
            os.dup2(read_end, 3)
            os.dup2(write_end, 4)

        self.process = subprocess.Popen(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--remote-debugging-pipe", f"--window-size={width},{height}", "about:blank"],
            # close_fds would shut 3 and 4 after child_fds; os.pipe's own ends are not inherited.
            close_fds=False, preexec_fn=child_fds,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._next_id = 0

    def call(self, method: str, session: str | None = None, **params):
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        while True:  # skip events until our reply
            while b"\0" not in self._buffer:
                chunk = os.read(self._from_chrome, 1 << 20)
                if not chunk:
                    raise RuntimeError("Chromium closed the DevTools pipe")
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except (RuntimeError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        os.close(self._to_chrome)
        os.close(self._from_chrome)


def screenshot(url: str, path: str | Path, *, ready_js: str = APP_READY_JS, width: int = 1280,
               height: int = 1400, timeout_s: float = 60.0, browser: str | None = None) -> Path:
    """Open ``url``, wait until ``ready_js`` is true (TimeoutError after ``timeout_s``), save a PNG."""
    browser = browser or find_chromium()
    if browser is None:
        raise FileNotFoundError("no chromium binary on PATH (apt-get install chromium)")
    tools = _DevTools(browser, width=width, height=height)
    try:
        target = tools.call("Target.createTarget", url=url, width=width, height=height)["targetId"]
        session = tools.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        deadline = time.monotonic() + timeout_s
        while True:
            state = tools.call("Runtime.evaluate", session, expression=ready_js, returnByValue=True)
            if state.get("result", {}).get("value") is True:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url}: {ready_js!r} still false after {timeout_s:g} s")
            time.sleep(0.25)
        time.sleep(0.5)  # let the last images paint
        data = tools.call("Page.captureScreenshot", session, format="png")["data"]
    finally:
        tools.close()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(data))
    return path


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="page to load, e.g. http://127.0.0.1:7860")
    parser.add_argument("out", type=Path, help="PNG to write")
    parser.add_argument("--width", type=int, default=1280, help="viewport width in pixels")
    parser.add_argument("--height", type=int, default=1400, help="viewport height in pixels")
    args = parser.parse_args()
    print(screenshot(args.url, args.out, width=args.width, height=args.height))
