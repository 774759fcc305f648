"""`make bench --only eta` (issue 17): the section renders summarize's ETA checks, one row per
engine, with the goal at 5% judged and the load next to the numbers."""

from __future__ import annotations

import sys
from pathlib import Path

TOOLS = Path(__file__).parents[2] / "tools"
sys.path.insert(0, str(TOOLS))

import bench_eta  # noqa: E402


def check(percent, made, predicted, actual):
    return {"percent": percent, "made_at": made, "predicted_finish": predicted, "actual_finish": actual,
            "error_percent": round(100 * (actual - predicted) / (actual - made), 1)}


def test_the_eta_bench_is_a_target_and_renders_the_checks():
    assert "eta" in sorted(p.stem[len("bench_"):] for p in TOOLS.glob("bench_*.py"))
    run = {"checks": [check(5, 100.0, 200.0, 210.0), check(25, 150.0, 212.0, 210.0)], "wall": 300.0,
           "load": (1.25, 2.5), "restarts": 0, "basis": {}}
    row = bench_eta._row("darknet (AlexeyAB)", "toy", run)
    assert row == ("| darknet (AlexeyAB) | toy | 300 s | 100 s / 110 s | +9.1% | -3.3% | — | — | yes "
                   "| 1.2 / 2.5 |")
    run["checks"][0] = check(5, 100.0, 180.0, 210.0)
    assert "| +27.3% |" in bench_eta._row("x", "y", run) and "| no |" in bench_eta._row("x", "y", run)
    assert "not run" in bench_eta._row("darknet (AlexeyAB)", "toy", None)
