"""Helpers for the real-engine training tests: a toy dataset, a supervisor in a subprocess,
waiting on a run's files, and finding processes that carry a run's marker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import invoke


def toy_configs(root: Path, *, classes: int = 2, annotated: int = 4, val: int = 2, width: int = 64,
                extra: tuple = ()) -> Path:
    """synth -> convert -> configs (yolov3-tiny template, batch 2): the configs folder."""
    assert invoke("synth", "imagenet", root / "in", "--classes", classes, "--annotated", annotated,
                  "--unannotated", 0, "--val", val).exit_code == 0
    assert invoke("-q", "convert", "imagenet", root / "in", "--workers", 1).exit_code == 0
    out = root / "cfg"
    result = invoke("configs", root / "in" / "yolo", "--template", "yolov3-tiny", "--out", out,
                    "--name", "toy", "--width", width, "--height", width, "--batch", 2,
                    "--subdivisions", 1, *extra)
    assert result.exit_code == 0, result.output
    return out


def ab_toy_configs(root: Path, ab_darknet: str, *, annotated: int, max_batches: int) -> Path:
    """synth -> convert -> configs from AlexeyAB's own yolov4-tiny template (64 px, batch 4),
    checked for the binary that will run it: the configs folder."""
    assert invoke("synth", "imagenet", root / "in", "--classes", 2, "--annotated", annotated,
                  "--unannotated", 0, "--val", 3).exit_code == 0
    assert invoke("-q", "convert", "imagenet", root / "in", "--workers", 1).exit_code == 0
    template = Path(ab_darknet).parent / "cfg" / "yolov4-tiny.cfg"
    made = invoke("configs", root / "in" / "yolo", "--template", template, "--out", root / "cfg",
                  "--name", "toy", "--width", 64, "--height", 64, "--batch", 4, "--subdivisions", 1,
                  "--max-batches", max_batches, "--darknet", ab_darknet)
    assert made.exit_code == 0, made.output
    return root / "cfg"


def start(*args) -> subprocess.Popen:
    """`yolo-pipeline ARGS` as a real process (a supervisor we can SIGKILL)."""
    return subprocess.Popen([sys.executable, "-m", "pipeline", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def cli(*args, timeout: float = 600) -> subprocess.CompletedProcess:
    """`yolo-pipeline ARGS` to the end, output captured."""
    return subprocess.run([sys.executable, "-m", "pipeline", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout)


def wait_for(predicate, timeout: float, what: str, every: float = 0.05):
    """Poll `predicate()` until it returns something truthy; fail after `timeout` s."""
    end = time.time() + timeout
    while time.time() < end:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def state(run: Path) -> dict:
    try:
        return json.loads((run / "state.json").read_text())
    except (FileNotFoundError, ValueError):
        return {}


def events(run: Path) -> list[dict]:
    path = run / "events.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def _live(match) -> list[int]:
    """Live (not zombie) pids for which `match(environ_entries, cmdline)` is true."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                env = Path(f"/proc/{entry.name}/environ").read_bytes().split(b"\0")
                cmd = Path(f"/proc/{entry.name}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                stat = Path(f"/proc/{entry.name}/stat").read_text()
            except OSError:
                continue
            if match(env, cmd) and stat.rsplit(")", 1)[1].split()[0] != "Z":
                found.append(int(entry.name))
    return found


def marked_processes(run: Path) -> list[int]:
    """Live processes carrying this run's marker, of any supervisor session (its workers and
    their children)."""
    run_id = json.loads((run / "run.json").read_text())["run_id"]
    marker = f"YOLO_PIPELINE_RUN_ID={run_id}:".encode()
    return _live(lambda env, cmd: any(entry.startswith(marker) for entry in env))


def processes_with(needle: str) -> list[int]:
    """Live processes whose command line holds `needle` (darknet has no marker of ours)."""
    return _live(lambda env, cmd: needle in cmd)


def sigkill(proc: subprocess.Popen) -> None:
    """SIGKILL the supervisor process only (not its children) and reap it."""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
