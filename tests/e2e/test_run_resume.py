"""SIGKILL `yolo-pipeline run` during training, run it again: the data stages are skipped
and the training resumes where it stopped (every epoch once in results.csv)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "cfg" / "demo.yaml"
EPOCHS = 4


def small(tmp_path: Path) -> list[str]:
    """cfg/demo.yaml made tiny with --set: 3 classes, 64 px, 4 epochs."""
    values = {"work": tmp_path / "work", "source.path": tmp_path / "raw", "source.synth.classes": 3,
              "source.synth.annotated": 8, "source.synth.val": 12, "subset.spread": 2,
              "train.epochs": EPOCHS, "train.imgsz": 64, "train.batch": 4, "train.workers": 0}
    return [a for k, v in values.items() for a in ("--set", f"{k}={v}")]


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


def done_epochs(work: Path) -> int:
    for state in (work / "runs").glob("*/state.json"):
        try:
            return int(json.loads(state.read_text()).get("done") or 0)
        except ValueError:  # replaced while read
            return 0
    return 0


def trainers_of(run_dir: Path) -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["cmdline"]):
        if any(str(run_dir) in part for part in p.info["cmdline"] or []):
            found.append(p)
    return found


@pytest.mark.slow
def test_sigkill_run_during_training_then_run_again_resumes(tmp_path):
    cmd = [sys.executable, "-m", "pipeline", "run", str(DEMO), *small(tmp_path)]
    work = tmp_path / "work"
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        wait_for(lambda: done_epochs(work) >= 2 or proc.poll() is not None, 600, "epoch 2")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert done_epochs(work) < EPOCHS, "the run finished before it could be killed"
    (run_dir,) = (work / "runs").iterdir()
    wait_for(lambda: not trainers_of(run_dir), 30, "the trainer to end with its supervisor")

    again = subprocess.run([*cmd, "--json"], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    steps = {s["stage"]: s for s in json.loads(again.stdout)["steps"]}
    assert [steps[s]["action"] for s in ("convert", "subset", "configs", "check-cfg")] == ["skip"] * 4
    assert steps["train"]["action"] == "run"
    assert steps["train"]["why"].startswith(f"resumes {run_dir} (killed at "), steps["train"]["why"]
    assert json.loads(again.stdout)["locations"]["run"] == str(run_dir)
    rows = list(csv.DictReader((run_dir / "ultralytics" / "results.csv").open()))
    assert [int(float(r["epoch"])) for r in rows] == list(range(1, EPOCHS + 1))
    kinds = [json.loads(line)["kind"] for line in (run_dir / "events.jsonl").read_text().splitlines()]
    assert "resume" in kinds

    third = subprocess.run([*cmd, "--json"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert {s["action"] for s in json.loads(third.stdout)["steps"]} == {"skip"}

    # More epochs continue the finished run in its folder; a supervision option goes with them.
    longer = [*cmd, "--set", f"train.epochs={EPOCHS + 1}", "--set", "train.stall_minutes=45"]
    fourth = subprocess.run(longer, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert fourth.returncode == 0, fourth.stderr[-3000:]
    assert (f"train: continues {run_dir} (finished at {EPOCHS}/{EPOCHS} epochs) with stall_minutes 30.0 -> "
            f"45.0, epochs {EPOCHS} -> {EPOCHS + 1}") in fourth.stdout, fourth.stdout
    assert [p.name for p in (work / "runs").iterdir()] == [run_dir.name]
    rows = list(csv.DictReader((run_dir / "ultralytics" / "results.csv").open()))
    assert [int(float(r["epoch"])) for r in rows] == list(range(1, EPOCHS + 2))
    changed = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    assert any(e["kind"] == "options-changed" and "stall_minutes 30.0 -> 45.0" in e["detail"]
               and f"epochs {EPOCHS} -> {EPOCHS + 1}" in e["detail"] for e in changed), changed


@pytest.mark.slow
def test_detach_leaves_the_training_running_and_a_later_run_summarizes_it(tmp_path):
    cmd = [sys.executable, "-m", "pipeline", "run", str(DEMO), *small(tmp_path), "--set", "train.epochs=6"]
    first = subprocess.run([*cmd, "--detach", "--json"], cwd=REPO, capture_output=True, text=True,
                           timeout=300)
    assert first.returncode == 0, first.stderr[-3000:]
    steps = {s["stage"]: s for s in json.loads(first.stdout)["steps"]}
    assert "left running" in steps["train"]["result"] and steps["summarize"]["action"] == "not reached"
    run_dir = Path(json.loads(first.stdout)["locations"]["run"])
    busy = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert busy.returncode == 2 and "is still running (pid" in busy.stderr
    wait_for(lambda: json.loads((run_dir / "state.json").read_text()).get("status") == "finished",
             600, "the detached training")
    last = subprocess.run([*cmd, "--json"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert last.returncode == 0, last.stderr[-3000:]
    steps = {s["stage"]: s["action"] for s in json.loads(last.stdout)["steps"]}
    assert steps["summarize"] == "run" and steps["convert"] == "skip"
    assert (Path(json.loads(last.stdout)["locations"]["summary"]) / "summary.json").is_file()
