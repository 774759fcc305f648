"""A finished run trained longer with `resume --epochs N` (REAL Ultralytics on the CPU) and
`resume --max-batches N` (REAL Debian darknet): counts continue, nothing is redone, fewer than
done is refused."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import pytest
from runkit import cli, events, toy_configs

pytestmark = pytest.mark.slow


def epochs_in(results: Path) -> list[int]:
    with open(results) as f:
        return [int(float(row["epoch"])) for row in csv.DictReader(f)]


def test_a_finished_ultralytics_run_continues_to_more_epochs(tmp_path):
    cfg = toy_configs(tmp_path, annotated=6, val=2)
    run = tmp_path / "run"
    said = tmp_path / "notified.txt"
    first = cli("train", cfg, "--out", run, "--epochs", 2, "--imgsz", 64, "--batch", 4, "--workers", 0,
                "--sample-seconds", 0.5,
                "--notify", f'echo "$YOLO_PIPELINE_STATUS $YOLO_PIPELINE_EVENT" >> {said}')
    assert first.returncode == 0, first.stdout + first.stderr
    # a real run leaves its resources, and status shows the latest sample
    samples = [json.loads(x) for x in (run / "resources.jsonl").read_text().splitlines()]
    assert len(samples) >= 2 and all(s["rss_mb"] > 0 for s in samples)
    assert json.loads(cli("status", run, "--json").stdout)["resources"]["rss_mb"] > 0
    assert said.read_text().split() == ["finished", "finished"]
    summary = cli("summarize", run, "--out", tmp_path / "summary")
    assert summary.returncode == 0, summary.stderr
    assert (tmp_path / "summary" / "resources.png").stat().st_size > 10_000
    assert "## Resources" in (tmp_path / "summary" / "report.md").read_text()
    finished = cli("resume", run)
    assert finished.returncode == 0 and "resume " + str(run) + " --epochs N" in finished.stdout
    fewer = cli("resume", run, "--epochs", 2)
    assert fewer.returncode == 2 and "has done 2 already" in fewer.stderr, fewer.stderr
    more = cli("resume", run, "--epochs", 3, "--json")
    assert more.returncode == 0, more.stdout + more.stderr
    assert epochs_in(run / "ultralytics" / "results.csv") == [1, 2, 3]
    status = json.loads(more.stdout)
    assert status["status"] == "finished" and status["done"] == status["total"] == 3
    assert any(e["kind"] == "options-changed" and "epochs 2 -> 3" in e["detail"] for e in events(run))


@pytest.mark.darknet
@pytest.mark.skipif(shutil.which("darknet") is None, reason="darknet not installed")
def test_a_finished_darknet_run_continues_to_more_iterations(tmp_path):
    cfg = toy_configs(tmp_path, extra=("--max-batches", 20))
    run = tmp_path / "run"
    assert cli("train", cfg, "--out", run, "--backend", "darknet", "--sample-seconds", 0.5,
               "--notify", "exit 3").returncode == 0
    assert (run / "resources.jsonl").read_text().count("\n") >= 1
    assert any(e["kind"] == "notify-failed" and "exit code 3" in e["detail"] for e in events(run))
    assert cli("resume", run, "--epochs", 30).returncode == 2  # an epoch count means nothing to darknet
    more = cli("resume", run, "--max-batches", 30, "--json")
    assert more.returncode == 0, more.stdout + more.stderr
    logs = sorted((run / "logs").glob("attempt-*.log"))
    iterations = [int(m) for m in re.findall(r"^(\d+): ", logs[-1].read_text(errors="replace"), re.M)]
    assert iterations[0] == 21 and iterations[-1] == 30
    cfg_copy = (run / "darknet" / "toy.cfg").read_text()
    assert re.search(r"^max_batches *= *30$", cfg_copy, re.M)
    assert re.search(r"^steps *= *24,27$", cfg_copy, re.M)
    assert json.loads(more.stdout)["done"] == 30


@pytest.mark.darknet
@pytest.mark.skipif(shutil.which("darknet") is None, reason="darknet not installed")
def test_a_run_that_never_reached_a_checkpoint_can_be_started_again(tmp_path):
    cfg = toy_configs(tmp_path, extra=("--max-batches", 10))
    run = tmp_path / "run"
    fake = tmp_path / "bin" / "darknet"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\n[ \"$1\" = version ] && exit 0\n"
                    "echo 'CUDA Error: no CUDA-capable device' >&2\nexit 1\n")
    fake.chmod(0o755)
    failed = cli("train", cfg, "--out", run, "--backend", "darknet", "--darknet", fake, "--fork", "pjreddie",
                 "--max-restarts", 0)
    assert failed.returncode == 1
    again = cli("train", cfg, "--out", run, "--backend", "darknet")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "never reached a checkpoint: cleared and started again" in again.stderr
    assert json.loads((run / "run.json").read_text())["options"]["darknet"] == shutil.which("darknet")
    busy = cli("train", cfg, "--out", run, "--backend", "darknet")
    assert busy.returncode == 2 and "already holds a run (finished" in busy.stderr
    forced = cli("train", cfg, "--out", run, "--backend", "darknet", "--force")
    assert forced.returncode == 0 and "moved to" in forced.stderr
    assert len(list(tmp_path.glob("run.replaced-*"))) == 1
