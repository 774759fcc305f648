"""`board` starts the real TensorBoard on a run folder (and on a folder of runs), which serves
HTTP 200 and our scalars within seconds; SIGTERM stops both; a taken port is one line, exit 2."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from runkit import wait_for

from pipeline.train.tensorboard import RunBoard

pytestmark = pytest.mark.slow  # starts a real TensorBoard server


READY_SECONDS = 20


def fake_run(root: Path, backend: str) -> Path:
    """A run folder with run.json, state.json and what the supervisor would write to tensorboard/."""
    root.mkdir(parents=True)
    (root / "run.json").write_text(json.dumps({"backend": backend, "created": "2026-11-29T19:21:06+0000"}))
    (root / "state.json").write_text(json.dumps({"status": "finished"}))
    board = RunBoard(root, backend)
    for it in range(1, 11):
        board.note("progress", {"done": it, "total": 10, "loss": 5.0 / it, "rate": 0.001})
    board.resources({"t": board.started + 10, "cpu_tree": 150.0, "rss_mb": 300.0})
    board.close()
    return root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> tuple[int, bytes] | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status, r.read()
    except OSError:
        return None


class Board:
    """`yolo-pipeline board ARGS` as a process; its output lines gathered as they come."""

    def __init__(self, *args) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "pipeline", "board", *map(str, args)],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True)
        self.reader.start()

    def url_line(self) -> str:
        """The line saying where TensorBoard listens (printed once it accepts connections)."""
        return wait_for(lambda: next((x for x in self.lines if " at http" in x), None), READY_SECONDS,
                        "the board's URL line", every=0.1)

    def stop(self) -> str:
        """SIGTERM the board; its whole output (it must end by itself, TensorBoard with it)."""
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=20)
        self.reader.join(timeout=10)
        return "".join(self.lines)


def tags_served(base: str) -> dict:
    """{run: [tags]} once TensorBoard has loaded some scalars, else {}."""
    got = get(base + "data/plugin/scalars/tags")
    if not got or got[0] != 200:
        return {}
    return {run: sorted(tags) for run, tags in json.loads(got[1]).items() if tags}


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(f"/proc/{entry.name}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def test_board_serves_a_run_and_stops(tmp_path):
    run = fake_run(tmp_path / "run", "darknet")
    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    started = time.time()
    board = Board(run, "--port", port)
    try:
        assert board.url_line() == f"TensorBoard at http://127.0.0.1:{port}/ (Ctrl-C stops)\n"
        ready = time.time() - started
        assert get(base)[0] == 200
        tags = wait_for(lambda: tags_served(base), READY_SECONDS, "the scalars loaded", every=0.5)
        assert tags["darknet"] == ["train/avg_loss", "train/learning_rate"]
        assert tags["resources"] == ["resources/cpu_tree", "resources/rss_mb"]
        got = get(base + "data/plugin/scalars/scalars?run=darknet&tag=train/avg_loss")
        assert [row[1] for row in json.loads(got[1])] == list(range(1, 11))  # [wall_time, step, value]
        tensorboard = children_of(board.proc.pid)
        assert tensorboard
    finally:
        out = board.stop()
    assert board.proc.returncode == 0 and out.endswith("stopped\n"), out
    assert wait_for(lambda: not any(os.path.exists(f"/proc/{p}") for p in tensorboard), 10, "its end")
    print(f"ready after {ready:.1f} s")


def test_board_on_a_folder_of_runs_names_each_run(tmp_path):
    fake_run(tmp_path / "runs" / "dk", "darknet")
    fake_run(tmp_path / "runs" / "more" / "yolo", "ultralytics")
    (tmp_path / "runs" / "plain").mkdir()
    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    board = Board(tmp_path / "runs", "--port", port)
    try:
        assert "TensorBoard (2 runs) at" in board.url_line()
        tags = wait_for(lambda: (t := tags_served(base)) and len(t) == 3 and t, READY_SECONDS,
                        "three runs' scalars", every=0.5)
        assert sorted(tags) == ["dk/darknet", "dk/resources", "more/yolo/resources"]
    finally:
        board.stop()


def test_board_refuses_a_port_in_use_and_a_run_without_logs(tmp_path):
    run = fake_run(tmp_path / "run", "darknet")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        taken = subprocess.run([sys.executable, "-m", "pipeline", "board", run, "--port", str(port)],
                               capture_output=True, text=True, timeout=60)
    assert taken.returncode == 2 and "is in use" in taken.stderr and "Traceback" not in taken.stderr
    (tmp_path / "bare").mkdir()
    (tmp_path / "bare" / "run.json").write_text("{}")
    bare = subprocess.run([sys.executable, "-m", "pipeline", "board", tmp_path / "bare"],
                          capture_output=True, text=True, timeout=60)
    assert bare.returncode == 2 and "has no TensorBoard logs" in bare.stderr
    assert "--tensorboard" in bare.stderr
