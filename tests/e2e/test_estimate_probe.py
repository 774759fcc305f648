"""`estimate --classes 1000` probes the run's cfg at 1,000 classes with the REAL Debian darknet
(pjreddie) on a toy run: a per-iteration time of its own, `probe` and `range` in the JSON;
`--no-probe` keeps the old fast path. Ultralytics: the run's model trained a few batches with
a data.yaml of 1,000 classes (issue 17)."""

from __future__ import annotations

import json
import shutil
import time

import pytest
from runkit import cli, toy_configs

from pipeline.darknet.values import max_batches_rule
from pipeline.train.options import TrainOptions, resolve_model

pytestmark = [pytest.mark.slow]


@pytest.mark.darknet
@pytest.mark.skipif(shutil.which("darknet") is None, reason="darknet not installed")
def test_the_1000_class_probe_measures_its_own_iteration_time(tmp_path):
    cfg = toy_configs(tmp_path, extra=("--max-batches", 30))
    run = tmp_path / "run"
    done = cli("-q", "train", cfg, "--out", run, "--backend", "darknet")
    assert done.returncode == 0, done.stdout + done.stderr
    fast = json.loads(cli("estimate", run, "--classes", 1000, "--no-probe", "--json").stdout)
    assert fast["probe"] is None and fast["range"] is None and "not probed (--no-probe)" in fast["text"]
    t = time.monotonic()
    result = cli("estimate", run, "--classes", 1000, "--json")
    took = time.monotonic() - t
    assert result.returncode == 0, result.stderr
    est = json.loads(result.stdout)
    probe = est["probe"]
    assert probe["classes"] == 1000 and probe["unit"] == "iteration" and probe["units"] >= 8
    assert probe["filters"] == [3015, 3015]  # (1000 + 5) x 3 in both yolov3-tiny heads
    assert 0 < probe["seconds_per_unit"] < 30 and est["per_unit_seconds"] == probe["seconds_per_unit"]
    assert est["units"] == fast["units"] == max_batches_rule(1000, 4 * 1000)
    low, high = est["range"]
    assert 0 < low <= est["seconds"] <= high
    assert probe["unprobed"]["seconds"] == pytest.approx(fast["seconds"])
    assert "probed at 1,000 classes" in est["text"] and "classes=1,000 (filters 3015, 3015)" in est["text"]
    print(f"estimate 1000 classes: unprobed {fast['seconds']:.0f} s ({fast['per_unit_seconds']:.4g} s/it), "
          f"probed {est['seconds']:.0f} s ({probe['seconds_per_unit']:.4g} s/it), range {low:.0f}-{high:.0f};"
          f" probe took {took:.1f} s")
    assert not list(run.glob("darknet/backup/*probe*"))  # the probe writes nothing into the run


def test_ultralytics_probes_the_model_with_1000_classes(tmp_path):
    cfg = toy_configs(tmp_path, annotated=12)  # 24 images: 12 batches of 2, more than the probe's
    run = tmp_path / "run"
    run.mkdir()
    opts = TrainOptions(cfgdir=cfg, out=run, imgsz=64, batch=2, workers=0, epochs=10, device="cpu")
    (run / "run.json").write_text(json.dumps({
        "run_id": "x", "backend": "ultralytics", "total": 10, "options": opts.as_dict(),
        "model": resolve_model("yolov8n.yaml"), "dataset": {"classes": 2, "train_images": 24}}))
    (run / "state.json").write_text(json.dumps({"status": "finished", "epoch_times": [
        {"epoch": 1, "seconds": 9.0, "train_seconds": 8.0, "val_seconds": 1.0, "images": 24,
         "first_of_session": True},
        {"epoch": 2, "seconds": 5.0, "train_seconds": 4.0, "val_seconds": 1.0, "images": 24}]}))
    result = cli("estimate", run, "--classes", 1000, "--json")
    assert result.returncode == 0, result.stderr
    est = json.loads(result.stdout)
    probe = est["probe"]
    assert probe, est["assumptions"]
    assert (probe["classes"], probe["sampled"], probe["units"]) == (1000, "batch", 8)
    assert probe["unit"] == est["unit"] == "image-epoch"
    assert probe["validation_share"] == pytest.approx(0.25)
    assert est["units"] == 10 * 12_000 and est["per_unit_seconds"] == probe["seconds_per_unit"] > 0
    low, high = est["range"]
    assert low <= est["seconds"] <= high
    assert est["seconds"] == pytest.approx(est["units"] * probe["seconds_per_unit"] * 1.25)
    assert probe["unprobed"]["seconds"] == pytest.approx(10 * 12_000 * 5.0 / 24)
