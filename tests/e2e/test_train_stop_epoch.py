"""`stop --at-epoch-end` with REAL Ultralytics on the CPU: the epoch in progress is trained,
validated and saved before the run stops (a plain `stop` would discard it)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from runkit import cli, start, state, toy_configs, wait_for

pytestmark = pytest.mark.slow


def epoch_in_progress(run: Path) -> int:
    """The epoch of the newest batch heartbeat (0 before the first)."""
    path = run / "progress.jsonl"
    if not path.exists():
        return 0
    beats = [json.loads(x) for x in path.read_text().splitlines() if x.endswith("}")]
    return max((b["epoch"] for b in beats if b.get("kind") == "batch"), default=0)


def test_stop_at_epoch_end_keeps_the_epoch_in_progress(tmp_path):
    cfg = toy_configs(tmp_path, annotated=40, val=2)
    run = tmp_path / "run"
    proc = start("train", cfg, "--out", run, "--epochs", 8, "--imgsz", 96, "--batch", 2, "--workers", 0)
    wait_for(lambda: epoch_in_progress(run) >= 2, 300, "a batch of epoch 2")
    asked_in = epoch_in_progress(run)
    stopped = cli("stop", run, "--at-epoch-end")
    assert proc.wait(timeout=300) == 130
    assert "stopping; at the end of the epoch in progress" in stopped.stderr, stopped.stderr
    with open(run / "ultralytics" / "results.csv") as f:
        epochs = [int(float(row["epoch"])) for row in csv.DictReader(f)]
    # the epoch the stop landed in is trained, validated and kept (the request may arrive just
    # after that epoch ended, when the next one is the one in progress)
    last = epochs[-1]
    assert epochs == list(range(1, last + 1)) and last in (asked_in, asked_in + 1) and last < 8
    assert state(run)["status"] == "stopped" and state(run)["checkpoint_done"] == last
    refused = cli("stop", tmp_path / "nope", "--at-epoch-end")
    assert refused.returncode == 2
