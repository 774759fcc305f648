"""The data stages (synth, convert, subset, check, stats, configs, check-cfg) run without
importing torch or ultralytics: only the train stage pays for them."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

CFG = Path(__file__).parents[1] / "data" / "cfg" / "tiny_yolo.cfg"


def test_data_stages_do_not_import_torch(tmp_path):
    script = textwrap.dedent(f"""
        import sys
        from click.testing import CliRunner
        from pipeline.cli import cli
        root = {str(tmp_path / "in")!r}
        runs = [["synth", "imagenet", root, "--classes", "2", "--annotated", "2", "--val", "2"],
                ["convert", "imagenet", root, "-j", "1"],
                ["subset", root + "/yolo", "--top", "1", "--out", {str(tmp_path / "sub")!r}, "-j", "1"],
                ["check", root + "/yolo"], ["stats", root + "/yolo", "--json"],
                ["configs", root + "/yolo", "-t", {str(CFG)!r}, "-o", {str(tmp_path / "cfg")!r}],
                ["check-cfg", {str(CFG)!r}, "--fork", "pjreddie"]]
        for args in runs:
            result = CliRunner().invoke(cli, args)
            assert result.exit_code in (0, 1), (args, result.output)
        heavy = sorted(m for m in ("torch", "ultralytics", "torchvision") if m in sys.modules)
        print("HEAVY", heavy)
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert "HEAVY []" in run.stdout
