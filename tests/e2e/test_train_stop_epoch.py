"""`stop --at-epoch-end` with REAL Ultralytics on the CPU: the epoch in progress is trained,
validated and saved before the run stops (a plain `stop` would discard it)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from runkit import cli, start, state, toy_configs, wait_for

pytestmark = pytest.mark.slow


def in_epoch(run: Path, epoch: int) -> bool:
    path = run / "progress.jsonl"
    return path.exists() and any(json.loads(x).get("kind") == "batch" and json.loads(x)["epoch"] == epoch
                                 for x in path.read_text().splitlines() if x.endswith("}"))


def test_stop_at_epoch_end_keeps_the_epoch_in_progress(tmp_path):
    cfg = toy_configs(tmp_path, annotated=24, val=2)
    run = tmp_path / "run"
    proc = start("train", cfg, "--out", run, "--epochs", 6, "--imgsz", 64, "--batch", 2, "--workers", 0)
    wait_for(lambda: in_epoch(run, 2), 300, "a batch of epoch 2")
    stopped = cli("stop", run, "--at-epoch-end")
    assert proc.wait(timeout=300) == 130
    assert "stopping; at the end of the epoch in progress" in stopped.stderr, stopped.stderr
    with open(run / "ultralytics" / "results.csv") as f:
        epochs = [int(float(row["epoch"])) for row in csv.DictReader(f)]
    assert epochs == [1, 2]
    assert state(run)["status"] == "stopped" and state(run)["checkpoint_done"] == 2
    refused = cli("stop", tmp_path / "nope", "--at-epoch-end")
    assert refused.returncode == 2
