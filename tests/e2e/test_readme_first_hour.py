"""README "First hour": every command of its bash block, as written, in a temporary folder."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).parents[2] / "README.md"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.darknet,
    pytest.mark.skipif(shutil.which("darknet") is None, reason="darknet not installed"),
]


def first_hour_block(text: str) -> str:
    """The first ```bash block under the `## First hour` heading (before the next `## `)."""
    section = text.split("\n## First hour\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```bash\n(.*?)```", section, re.S)
    assert match, "no ```bash block under ## First hour"
    return match.group(1)


def test_the_first_hour_commands_run_as_written(tmp_path):
    script = first_hour_block(README.read_text(encoding="utf-8"))
    assert "yolo-pipeline train in2/cfg --out run-dk --backend darknet" in script
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    out = proc.stdout
    assert "0 errors, 1 warnings" in out  # check-cfg: the short run is a warning, not an error
    log = (tmp_path / "run-dk" / "logs" / "attempt-01.log").read_text()
    iterations = re.findall(r"^\s*(\d+): [-\d.]+, [-\d.]+ avg", log, re.M)
    assert iterations[-1] == "20"
    assert (tmp_path / "run-dk" / "darknet" / "backup" / "in2_final.weights").is_file()
    assert "run-dk: finished darknet iteration 20/20" in out
    for run in ("run-dk", "run-yolo"):
        for name in ("summary.json", "metrics.csv", "report.md", "chart.png"):
            assert (tmp_path / run / "summary" / name).stat().st_size > 0, (run, name)
    assert "trained            20 iterations" in out and "trained            3 epochs" in out
    assert (tmp_path / "in2-stats.png").is_file()
