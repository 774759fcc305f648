"""`serve` in a real headless Chromium (Debian's chromium + chromium-driver, driven over the
W3C WebDriver protocol with the standard library) against a real detached CPU training:
the list page shows the progress moving, between two loads and by its own refresh, and the
run's page shows a chart image that loads.

SERVE_SCREENSHOT=docs/serve.png saves a screenshot of the list page there.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from runkit import cli, state, toy_configs, wait_for

pytestmark = pytest.mark.slow
TOY = ("--imgsz", 64, "--batch", 4, "--workers", 0)
CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1500,700"]
PROGRESS = re.compile(r"(\d+)/(\d+) epoch")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Browser:
    """A Chromium session through chromedriver: navigate, run a script, take a screenshot."""

    def __init__(self, driver: str, chrome: str, profile: Path) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen([driver, f"--port={self.port}"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        caps = {"browserName": "chrome", "goog:chromeOptions": {
            "binary": chrome, "args": [*CHROME_FLAGS, f"--user-data-dir={profile}"]}}
        try:
            wait_for(lambda: self._ready(), 30, "chromedriver to listen", every=0.2)
            started = self._call("POST", "/session", {"capabilities": {"alwaysMatch": caps}})
            self.session = started["sessionId"]
        except BaseException:
            self.proc.kill()
            self.proc.wait()
            raise

    def _ready(self) -> bool:
        try:
            return bool(self._call("GET", "/status")["ready"])
        except OSError:
            return False

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return json.loads(resp.read())["value"]
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"webdriver {method} {path}: {exc.read()[:500]!r}") from None

    def get(self, url: str) -> None:
        """Navigate and wait for the page to load."""
        self._call("POST", f"/session/{self.session}/url", {"url": url})

    def script(self, js: str):
        """The value of `js` (a function body) in the page; retried while a reload is under way."""
        end = time.time() + 10
        while True:
            try:
                return self._call("POST", f"/session/{self.session}/execute/sync", {"script": js, "args": []})
            except AssertionError:
                if time.time() > end:
                    raise
                time.sleep(0.2)

    def screenshot(self) -> bytes:
        return base64.b64decode(self._call("GET", f"/session/{self.session}/screenshot"))

    def close(self) -> None:
        try:
            self._call("DELETE", f"/session/{self.session}")
        finally:
            self.proc.terminate()
            self.proc.wait(timeout=10)


@pytest.fixture
def browser(tmp_path):
    chrome = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (chrome and driver):
        reason = "no chromium / chromedriver (make browser: apt-get install -y chromium chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    b = Browser(driver, chrome, tmp_path / "profile")
    yield b
    b.close()


@pytest.fixture
def training(tmp_path):
    """A detached Ultralytics training on the CPU, long enough to watch; stopped afterwards."""
    cfg = toy_configs(tmp_path / "data", annotated=10, val=2)
    run = tmp_path / "runs" / "toy"
    started = cli("train", cfg, "--out", run, "--epochs", 300, "--detach", *TOY)
    assert started.returncode == 0, started.stdout + started.stderr
    yield run
    cli("stop", run, "--timeout", 60)


@pytest.fixture
def server(training):
    args = ("serve", training.parent, "--port", 0, "--refresh", 2, "--chart-every", 1)
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", *map(str, args)], stdout=subprocess.PIPE,
                            text=True)
    line = proc.stdout.readline()
    url = re.search(r"http://\S+/", line)
    if not url:
        proc.kill()
        raise AssertionError(f"serve printed no URL: {line!r}")
    yield url.group(0)
    proc.send_signal(signal.SIGINT)  # Ctrl-C: stops cleanly
    assert proc.wait(timeout=20) == 0 and "stopped" in proc.stdout.read()


def shown_done(browser: Browser) -> int | None:
    """The epochs done as the list page shows them for the run `toy` (None while it reloads)."""
    text = browser.script("const a = document.querySelector('a[href=\"run?id=toy\"]');"
                          "return a ? a.closest('tr').innerText : '';")
    match = PROGRESS.search(text)
    assert match is None or match.group(2) == "300", text
    return int(match.group(1)) if match else None


def test_the_page_follows_a_running_training(browser, training, server):
    wait_for(lambda: state(training).get("done", 0) >= 1, 300, "the first epoch")
    browser.get(server)
    first = shown_done(browser)
    assert first is not None
    assert browser.script("return document.querySelector('meta[http-equiv=refresh]').content") == "2"
    wait_for(lambda: state(training).get("done", 0) >= first + 2, 300, "two more epochs")
    browser.get(server)
    second = shown_done(browser)
    assert second is not None and second > first
    assert "running" in browser.script("return document.body.innerText")
    if os.environ.get("SERVE_SCREENSHOT"):
        Path(os.environ["SERVE_SCREENSHOT"]).write_bytes(browser.screenshot())
    wait_for(lambda: (shown_done(browser) or 0) > second, 120, "the page to refresh itself", every=0.5)

    browser.get(server + "run?id=toy")
    loaded = "const i = document.querySelector('img'); return i && i.complete ? i.naturalWidth : 0;"
    assert wait_for(lambda: browser.script(loaded), 30, "the chart to load", every=0.5) > 300
    text = browser.script("return document.body.innerText")
    assert "Summary" in text and "trained" in text and "Events" in text and "start" in text
    browser.get(server + "run?id=..%2F..%2Fetc")
    assert "404" in browser.script("return document.title")
