"""`train --tensorboard` on REAL engines leaves event files TensorBoard's own reader reads:
Ultralytics (CPU, 64 px, 2 epochs, then resumed to 3) and Debian darknet (20 iterations)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from runkit import cli, toy_configs
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

pytestmark = pytest.mark.slow


def scalars(folder: Path) -> dict[str, list[int]]:
    """{tag: [steps]} as TensorBoard reads the folder."""
    assert list(folder.glob("events.out.tfevents.*")), f"no event file in {folder}"
    acc = EventAccumulator(str(folder))
    acc.Reload()
    return {tag: [e.step for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_an_ultralytics_run_with_tensorboard(tmp_path):
    cfg = toy_configs(tmp_path, annotated=6, val=2)
    run = tmp_path / "run"
    done = cli("train", cfg, "--out", run, "--epochs", 2, "--imgsz", 64, "--batch", 4, "--workers", 0,
               "--sample-seconds", 0.5, "--tensorboard")
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(p.name for p in (run / "tensorboard").iterdir()) == ["resources", "ultralytics"]
    epochs = scalars(run / "tensorboard" / "ultralytics")
    for tag in ("train/box_loss", "train/cls_loss", "lr/pg0", "metrics/mAP50(B)", "metrics/mAP50-95(B)",
                "val/box_loss"):
        assert epochs[tag] == [1, 2], (tag, epochs)
    usage = scalars(run / "tensorboard" / "resources")
    assert usage["resources/rss_mb"] and usage["resources/rss_mb"] == sorted(set(usage["resources/rss_mb"]))
    assert not list((run / "ultralytics").glob("events.out.tfevents.*"))  # Ultralytics' own stays off
    more = cli("resume", run, "--epochs", 3)
    assert more.returncode == 0, more.stdout + more.stderr
    assert scalars(run / "tensorboard" / "ultralytics")["metrics/mAP50(B)"] == [1, 2, 3]


@pytest.mark.darknet
@pytest.mark.skipif(shutil.which("darknet") is None, reason="darknet not installed")
def test_a_darknet_run_with_tensorboard(tmp_path):
    cfg = toy_configs(tmp_path, extra=("--max-batches", 20))
    run = tmp_path / "run"
    done = cli("train", cfg, "--out", run, "--backend", "darknet", "--sample-seconds", 0.5, "--tensorboard")
    assert done.returncode == 0, done.stdout + done.stderr
    iterations = scalars(run / "tensorboard" / "darknet")
    assert iterations["train/avg_loss"] == list(range(1, 21))
    assert iterations["train/learning_rate"] == list(range(1, 21))  # the PROGRESS note's `rate`
    assert scalars(run / "tensorboard" / "resources")["resources/cpu_tree"]
