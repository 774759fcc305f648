"""`serve`: the HTML from status rows (escaped, linked, refreshing) and the checks that keep
every URL inside the served folder (`..`, `%2e%2e`, absolute paths, symlinks pointing out)."""

from __future__ import annotations

import http.client
import json
import shutil
import threading
import time
from pathlib import Path

import pytest

from pipeline.watch import page
from pipeline.watch.runs import find_runs, map50, resource_sample, run_id_path, run_row
from pipeline.watch.server import host_name, loopback_hosts, make_server

DATA = Path(__file__).parents[1] / "data"
NOW = 1_700_000_000.0
EVIL = '<script>alert("x")</script>'


def row(**over) -> dict:
    base = {"id": "sub/a", "run": "/runs/sub/a", "status": "running", "backend": "ultralytics",
            "unit": "epoch", "done": 41, "total": 300, "percent": 13.7, "speed": 1 / 62.5,
            "eta_seconds": 16200.0, "finish_at": NOW + 16200, "loss": 1.23456, "map50": 0.4812,
            "restarts": 1, "reason": None, "checkpoint": "/runs/sub/a/checkpoints/last_good.pt",
            "resources": None, "events": [{"kind": "start", "at": NOW - 60, "detail": "supervisor pid 1"}]}
    return {**base, **over}


def test_list_page_shows_progress_eta_speed_loss_map_and_refreshes():
    html = page.index_html("/runs", [row()], refresh=5, now=NOW)
    assert '<meta http-equiv="refresh" content="5">' in html
    assert "41/300 epoch (13.7 %)" in html and 'style="width:13.7%"' in html
    assert "4:30:00" in html and "finish ~" in html
    assert "62.5 s/epoch" in html and "1.235" in html and "48.12 %" in html
    assert '<a href="run?id=sub%2Fa">sub/a</a>' in html
    assert "supervisor pid 1" in html


def test_every_string_from_a_run_is_escaped():
    evil = row(id=EVIL, status="failed", reason=EVIL, backend=EVIL,
               events=[{"kind": EVIL, "at": NOW, "detail": EVIL}])
    for html in (page.index_html(EVIL, [evil], 5, NOW),
                 page.run_html(evil, [(EVIL, EVIL)], "chart.png?id=x", EVIL, 5, NOW)):
        assert "<script>" not in html
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    link = 'href="run?id=%3Cscript%3Ealert%28%22x%22%29%3C%2Fscript%3E"'
    assert link in page.index_html("r", [evil], 5, NOW)


def test_resources_shown_when_sampled_and_nothing_otherwise():
    sample = {"t": NOW - 3, "cpu_tree": 93.25, "rss_mb": 812.4, "gpu_util": 87, "gpu_mem_mb": 5120}
    html = page.index_html("/runs", [row(resources=sample)], 5, NOW)
    assert "cpu 93.2 % of a core, rss 812 MB, gpu 87 %, gpu mem 5,120 MB" in html and "3 s ago" in html
    assert page.resources(None, NOW) == "" and page.resources({"t": NOW}, NOW) == ""
    assert "cpu" not in page.index_html("/runs", [row()], 5, NOW).split("<table>")[1]


def test_finished_and_empty_pages():
    done = row(status="finished", eta_seconds=0, finish_at=None, reason="all epochs", done=300, percent=100.0)
    html = page.index_html("/runs", [done], 5, NOW)
    assert "finish ~" not in html and "all epochs" in html and "300/300 epoch (100.0 %)" in html
    assert "no training run under this folder yet" in page.index_html("/runs", [], 5, NOW)
    run = page.run_html(done, [("trained", "300 epochs")], None, "no chart yet: no results.csv", 5, NOW)
    assert "<img" not in run and "no chart yet: no results.csv" in run and "300 epochs" in run


def test_hms_number_and_nan():
    assert page.hms(3725) == "1:02:05" and page.hms(None) == "" and page.hms(float("nan")) == ""
    assert page.number(float("inf")) == "" and page.number(True) == "" and page.mean_ap(None) == ""


def make_run(folder: Path, status: str = "finished", results: bool = False) -> Path:
    """A run folder as `train` leaves it (an Ultralytics one with a real results.csv)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "run.json").write_text(json.dumps({"run_id": "x", "backend": "ultralytics", "total": 100}))
    (folder / "state.json").write_text(json.dumps({"status": status, "unit": "epoch", "done": 40,
                                                   "total": 100, "metrics": {"metrics/mAP50(B)": 0.5}}))
    (folder / "events.jsonl").write_text(json.dumps({"kind": "start", "at": NOW, "detail": "d"}) + "\n")
    if results:
        (folder / "ultralytics").mkdir()
        shutil.copy(DATA / "logs" / "yolov8-0_fire-smoke_results.csv", folder / "ultralytics" / "results.csv")
    return folder


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """runs/{a, deep/er/b, notrun, link -> outside run, c with state.json -> outside}."""
    root = tmp_path / "runs"
    make_run(root / "a", results=True)
    make_run(root / "deep" / "er" / "b")
    (root / "notrun").mkdir()
    (root / "notrun" / "run.json").write_text("{}")  # no state.json: not a run
    outside = make_run(tmp_path / "outside")
    (root / "link").symlink_to(outside)
    c = make_run(root / "c")
    (c / "state.json").unlink()
    (c / "state.json").symlink_to(outside / "state.json")
    make_run(root / "a" / "ultralytics" / "nested")  # inside a run: not searched
    return root


def test_find_runs_any_depth_no_symlinks_out(tree):
    assert list(find_runs(tree)) == ["a", "deep/er/b"]
    assert list(find_runs(tree / "a")) == ["."]


@pytest.mark.parametrize("bad", ["..", "%2e%2e", "../outside", "/etc", "/", "", "link", "c", "a/..",
                                 "a/../../outside", "notrun", "deep", str(Path("/etc/passwd"))])
def test_only_found_ids_resolve(tree, bad):
    runs = find_runs(tree)
    assert run_id_path(tree.resolve(), bad, runs) is None
    assert run_id_path(tree.resolve(), "deep/er/b", runs) == tree.resolve() / "deep" / "er" / "b"


def test_resource_sample_from_the_last_whole_line(tmp_path):
    run = make_run(tmp_path / "r", status="running")  # no supervisor pid: killed
    assert resource_sample(tmp_path, run, {}) is None
    assert resource_sample(tmp_path, run, {"resources": {"rss_mb": 5}}) == {"rss_mb": 5}
    (run / "resources.jsonl").write_text('{"t": 1, "rss_mb": 10}\n{"t": 2, "rss_mb": 20}\n{"t": 3, "rs')
    assert resource_sample(tmp_path, run, {})["rss_mb"] == 20
    r = run_row(tmp_path, "r", run, NOW)
    assert r["status"] == "killed" and r["percent"] == 40.0 and r["map50"] == 0.5 and r["resources"]["t"] == 2


def test_map50_from_either_engine():
    assert map50({"metrics": {"metrics/mAP50(B)": 0.25}}) == 0.25
    assert map50({"map": {"last": {"map": 0.8, "done": 900}, "best": None, "evaluations": 3}}) == 0.8
    assert map50({"metrics": None, "map": None}) is None and map50({"metrics": {"mAP50": True}}) is None


def test_host_names():
    assert host_name("127.0.0.1:8765") == "127.0.0.1" and host_name("[::1]:80") == "::1"
    assert host_name("LOCALHOST") == "localhost" and host_name(None) == ""
    assert "localhost" in loopback_hosts("127.0.0.1") and loopback_hosts("0.0.0.0") is None


@pytest.fixture
def server(tree):
    srv = make_server(tree, "127.0.0.1", 0, chart_age=0)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def get(srv, target: str, host: str | None = None, method: str = "GET") -> tuple[int, str, bytes]:
    """A raw request: the target is sent exactly as given (no normalising of `..`)."""
    conn = http.client.HTTPConnection(*srv.server_address[:2], timeout=30)
    conn.putrequest(method, target, skip_host=True)
    conn.putheader("Host", host or f"127.0.0.1:{srv.server_address[1]}")
    conn.endheaders()
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, resp.getheader("Content-Type") or "", body


@pytest.mark.parametrize("target", [
    "/../outside/state.json", "/%2e%2e/%2e%2e/etc/passwd", "/..%2f..%2fetc%2fpasswd", "//etc/passwd",
    "/etc/passwd", "/a/state.json", "/run?id=..", "/run?id=%2e%2e", "/run?id=../outside", "/run?id=%2Fetc",
    "/run?id=/etc", "/chart.png?id=..%2Foutside", "/report.md?id=%2e%2e/%2e%2e", "/run?id=link",
    "/chart.png?id=link", "/run?id=c", "/run?id=a&id=deep/er/b", "/run", "/run?id=a/..",
    "/http://example.com/", "/run?id=a%00",
])
def test_traversal_finds_nothing(server, target):
    code, _ctype, body = get(server, target)
    assert code == 404, (target, code)
    assert b"root:" not in body and b'"status"' not in body


def test_pages_chart_and_json(server, tree):
    code, ctype, body = get(server, "/")
    assert code == 200 and ctype.startswith("text/html") and b'href="run?id=deep%2Fer%2Fb"' in body
    code, _, body = get(server, "/run?id=a")
    assert code == 200 and b'<img src="chart.png?id=a&amp;t=' in body and b"trained" in body
    code, ctype, png = get(server, "/chart.png?id=a")
    assert code == 200 and ctype == "image/png" and png.startswith(b"\x89PNG")
    assert (tree / "a" / "summary" / "chart.png").is_file()  # the cache inside the run folder
    code, _, report = get(server, "/report.md?id=a")
    assert code == 200 and b"|" in report
    code, ctype, body = get(server, "/status.json")
    assert code == 200 and [r["id"] for r in json.loads(body)["runs"]] == ["a", "deep/er/b"]
    code, _, body = get(server, "/run?id=deep%2Fer%2Fb")
    assert code == 200 and b"<img" not in body and b"results.csv" in body  # why there is no chart


def test_chart_redrawn_only_when_logs_are_newer(server, tree):
    png = tree / "a" / "summary" / "chart.png"
    assert get(server, "/chart.png?id=a")[0] == 200
    first = png.stat().st_mtime_ns
    assert get(server, "/chart.png?id=a")[0] == 200 and png.stat().st_mtime_ns == first
    time.sleep(0.02)
    (tree / "a" / "ultralytics" / "results.csv").touch()
    assert get(server, "/chart.png?id=a")[0] == 200 and png.stat().st_mtime_ns > first


def test_a_summary_folder_pointing_out_is_not_drawn_into(server, tree, tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tree / "deep" / "er" / "b" / "summary").symlink_to(tmp_path / "elsewhere")
    code, _, body = get(server, "/chart.png?id=deep/er/b")
    assert code == 404 and b"points outside" in body
    assert not any((tmp_path / "elsewhere").iterdir())


def test_other_hosts_and_methods_are_refused(server):
    assert get(server, "/", host="evil.example:80")[0] == 403
    assert get(server, "/", host="localhost")[0] == 200
    assert get(server, "/", method="POST")[0] == 501
    code, _, body = get(server, "/", method="HEAD")
    assert code == 200 and body == b""


def test_a_broken_state_is_a_row_not_an_error(tmp_path):
    run = make_run(tmp_path / "r")
    (run / "state.json").write_text("[1, 2]")
    (run / "run.json").write_text('{"backend": "ultralytics", "total": "many"}')
    r = run_row(tmp_path, "r", run, NOW)
    assert r["status"] == "unreadable" and r["error"]
    assert "unreadable" in page.index_html("/x", [r], 5, NOW)


def test_a_monitor_sample_shows_its_first_gpu(tmp_path):
    from pipeline.watch.runs import resource_sample

    sample = {"t": NOW - 3, "cpu_tree": 110.0, "rss_mb": 900.0,
              "gpus": [{"index": 0, "util": 35, "mem_mb": 2048}]}
    (tmp_path / "resources.jsonl").write_text(json.dumps(sample) + "\n")
    sample = resource_sample(tmp_path.resolve(), tmp_path, {})
    assert "gpu 35 %, gpu mem 2,048 MB" in page.resources(sample, NOW)
