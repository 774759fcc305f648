"""`make demo`'s pipeline file, run as it is: the real Ultralytics training on the CPU learns
(final mAP@0.5 on the demo's val split above 0.8), and a second run skips every stage."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "cfg" / "demo.yaml"


def run(*args: str, timeout: int = 1500) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", "run", str(DEMO), *args, "--json"],
                          capture_output=True, text=True, timeout=timeout, cwd=REPO)


@pytest.mark.slow
def test_the_demo_trains_a_model_that_learns(tmp_path):
    sets = ("--set", f"work={tmp_path / 'work'}", "--set", f"source.path={tmp_path / 'imagenet'}")
    first = run(*sets)
    assert first.returncode == 0, first.stderr[-3000:]
    report = json.loads(first.stdout)
    assert {s["stage"]: s["action"] for s in report["steps"]} == dict.fromkeys(
        ("convert", "subset", "configs", "check-cfg", "train", "summarize", "evaluate"), "run")
    run_dir = Path(report["locations"]["run"])
    rows = list(csv.DictReader((run_dir / "ultralytics" / "results.csv").open()))
    epochs = [int(float(r["epoch"])) for r in rows]
    assert epochs == list(range(1, len(epochs) + 1)) and len(epochs) >= 5
    final = float(rows[-1]["metrics/mAP50(B)"])
    summary = json.loads((Path(report["locations"]["summary"]) / "summary.json").read_text())
    assert summary["runs"][0]["final_map50"] == pytest.approx(final)
    assert final > 0.8, f"final mAP@0.5 {final:.3f}"

    second = run(*sets, timeout=120)
    assert second.returncode == 0, second.stderr[-3000:]
    assert {s["action"] for s in json.loads(second.stdout)["steps"]} == {"skip"}
