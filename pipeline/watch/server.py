"""The HTTP side of `serve`: a ThreadingHTTPServer answering GET/HEAD from `route`.

    /             every run under DIR (refreshes itself)
    /status.json  the same rows as JSON
    /run?id=ID    one run: status, chart, summary, events
    /chart.png?id=ID, /report.md?id=ID   drawn by `summarize` into RUN/summary

ID is a run's path relative to DIR as the list page links it; only ids of runs found under
DIR are answered, so no URL reaches a file outside DIR. Nothing can be changed from the page.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import math
import socket
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from pipeline.watch import page
from pipeline.watch.charts import SUMMARY_DIR, ensure_chart
from pipeline.watch.runs import RunIndex, is_inside, run_row, run_rows

log = logging.getLogger(__name__)

HTML = "text/html; charset=utf-8"
HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"}
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}


@dataclass
class Response:
    """What one request gets."""

    code: int
    ctype: str
    body: bytes


@dataclass
class App:
    """The served folder and the page settings."""

    root: Path
    refresh: int = 5
    chart_age: float = 10.0
    #: Host header names accepted (None: any); a loopback bind accepts loopback names only.
    hosts: set[str] | None = None
    index: RunIndex = field(init=False)

    def __post_init__(self) -> None:
        self.root = self.root.resolve()
        self.index = RunIndex(self.root)


def host_name(header: str | None) -> str:
    """The host of a Host header, without port or brackets. Example: `[::1]:80` -> `::1`."""
    header = (header or "").strip().lower()
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def loopback_hosts(host: str) -> set[str] | None:
    """The Host names to accept when bound to `host`: loopback names for a loopback bind (a
    web page elsewhere cannot read ours through DNS rebinding), None (any) otherwise."""
    try:
        loop = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loop = False
    return LOOPBACK_NAMES | {host.lower()} if loop else None


def finite(value: object) -> object:
    """`value` with nan and inf replaced by None, for strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value


def html(code: int, text: str) -> Response:
    """An HTML response."""
    return Response(code, HTML, text.encode("utf-8"))


def not_found(what: str) -> Response:
    """A 404 page saying what was not found."""
    return html(404, page.error_html(404, what))


def route(app: App, target: str, host: str | None) -> Response:
    """The response to `GET target` (the raw request target) with this Host header."""
    if app.hosts is not None and host_name(host) not in app.hosts:
        return html(403, page.error_html(403, "this page answers to its own address only"))
    url = urlsplit(target)
    query = parse_qs(url.query, keep_blank_values=True)
    now = time.time()
    if url.path in ("/", "/index.html"):
        rows = run_rows(app.root, app.index.runs(), now)
        return html(200, page.index_html(str(app.root), rows, app.refresh, now))
    if url.path == "/status.json":
        body = {"root": str(app.root), "runs": finite(run_rows(app.root, app.index.runs(), now))}
        return Response(200, "application/json", json.dumps(body, indent=1).encode())
    if url.path not in ("/run", "/chart.png", "/report.md"):
        return not_found(f"no such page: {url.path}")
    ids = query.get("id", [])
    folder = app.index.folder(ids[0]) if len(ids) == 1 else None
    if folder is None:
        return not_found("no such run under this folder")
    return run_response(app, url.path, ids[0], folder, now)


def run_response(app: App, path: str, run_id: str, folder: Path, now: float) -> Response:
    """A run's page, chart or report."""
    drawn = ensure_chart(app.root, folder, app.chart_age)
    if path == "/chart.png":
        return Response(200, "image/png", drawn.chart.read_bytes()) if drawn.chart else not_found(
            drawn.note or "no chart yet")
    if path == "/report.md":
        report = folder / SUMMARY_DIR / "report.md"
        if not (report.is_file() and is_inside(app.root, report)):
            return not_found(drawn.note or "no report yet")
        return Response(200, "text/plain; charset=utf-8", report.read_bytes())
    chart_url = None
    if drawn.chart:
        chart_url = f"{page.run_url(run_id, 'chart.png')}&t={drawn.chart.stat().st_mtime_ns}"
    row = run_row(app.root, run_id, folder, now)
    return html(200, page.run_html(row, drawn.facts, chart_url, drawn.note, app.refresh, now))


class Handler(BaseHTTPRequestHandler):
    """GET and HEAD through `route`; other methods get 501 from http.server."""

    server_version = "yolo-pipeline-serve"
    sys_version = ""

    def do_GET(self) -> None:
        """Answer a GET."""
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        """Answer a HEAD."""
        self._answer(send_body=False)

    def _answer(self, send_body: bool) -> None:
        try:
            response = route(self.server.app, self.path, self.headers.get("Host"))
        except Exception as exc:  # one bad run folder must not stop the server
            log.warning("%s: %r", self.path, exc)
            response = html(500, page.error_html(500, f"{type(exc).__name__}: {exc}"))
        self.send_response(response.code)
        self.send_header("Content-Type", response.ctype)
        self.send_header("Content-Length", str(len(response.body)))
        for key, value in HEADERS.items():
            self.send_header(key, value)
        self.end_headers()
        if send_body:
            self.wfile.write(response.body)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (http.server's name)
        """Requests go to the debug log (-vv), not stderr."""
        log.debug("%s " + format, self.address_string(), *args)


class WatchServer(ThreadingHTTPServer):
    """A threading server that knows its App; threads do not hold up Ctrl-C."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], app: App) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.app = app
        super().__init__(address, Handler)


def make_server(root: Path, host: str = "127.0.0.1", port: int = 8765, refresh: int = 5,
                chart_age: float = 10.0) -> WatchServer:
    """A server for the runs under `root`, bound and ready for `serve_forever()` (port 0: any free)."""
    return WatchServer((host, port), App(root, refresh, chart_age, loopback_hosts(host)))


def url_of(server: WatchServer) -> str:
    """The address to open in a browser."""
    host, port = server.server_address[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"
