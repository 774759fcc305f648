"""`make gpu-check` (tools/gpu_check.py) kept from rotting: its `--cpu-tiny` variant runs every
step on the CPU at toy sizes; without a GPU the plain command says so in one line, exit 0."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "tools" / "gpu_check.py"
STEPS = ["data", "plain", "train", "compare", "eta", "bench", "kill-resume", "ddp"]


def gpu_check(*args: object, timeout: float = 600) -> subprocess.CompletedProcess:
    """tools/gpu_check.py ARGS to the end, output captured."""
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


def test_cpu_tiny_writes_every_step_and_the_kill_resume_passes(tmp_path):
    out = tmp_path / "gpu-check"
    done = gpu_check("--cpu-tiny", "--out", out)
    report = json.loads((out / "gpu-check.json").read_text())
    rows = {r["step"]: r for r in report["steps"]}
    assert list(rows) == STEPS
    failed = {k: r["error"] for k, r in rows.items() if r["status"] == "failed"}
    assert done.returncode == 0 and not failed, (failed, done.stdout[-2000:], done.stderr[-2000:])
    kill = rows["kill-resume"]
    assert kill["status"] == "passed" and kill["result"]["epochs_in_results_csv"] == [1, 2, 3, 4]
    assert kill["result"]["interrupted"].startswith("killed after epoch")
    assert rows["ddp"]["status"] == "skipped"
    assert [r["batch"] for r in rows["bench"]["result"]["rows"]] == [4, 8]
    assert set(rows["eta"]["result"]["eta_error"]) == {"5%", "25%"}
    assert rows["compare"]["result"]["goal_met"] is None  # no GPU goal on the CPU
    table = (out / "gpu-check.md").read_text()
    for name in STEPS:
        assert f"| {name} | {rows[name]['status']} |" in table
    lines = done.stdout.strip().splitlines()
    assert [line.split()[1] for line in lines if line.startswith("[")] == STEPS  # one line per step
    assert str(out) in lines[-1]


def test_without_a_gpu_it_says_so_in_one_line(tmp_path):
    if Path("/dev/nvidiactl").exists():
        pytest.skip("this machine has an NVIDIA driver: the real check would run")
    done = gpu_check("--out", tmp_path / "gc", timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\n") == 1 and "no CUDA GPU" in done.stdout
    assert not (tmp_path / "gc").exists()
