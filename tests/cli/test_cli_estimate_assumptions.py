"""`estimate` says what it assumed (issue 20): where the image count came from, and the
image size, batch and device its speed was measured at."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import invoke

EPOCHS = [{"epoch": 1, "seconds": 60.0, "images": 200, "first_of_session": True},
          {"epoch": 2, "seconds": 20.0, "images": 200}]


def make_run(root: Path, backend: str = "ultralytics", **run_json) -> Path:
    root.mkdir(parents=True)
    info = {"run_id": "x", "backend": backend, "total": 10,
            "options": {"epochs": 10, "imgsz": 320, "batch": 8, "device": "cpu", "gpus": None},
            "dataset": {"classes": 10, "train_images": 200}, **run_json}
    (root / "run.json").write_text(json.dumps(info))
    (root / "state.json").write_text(json.dumps({"status": "finished", "epoch_times": EPOCHS, "speed": 2.0}))
    return root


def test_scaled_images_and_the_measuring_setup_are_said(tmp_path):
    run = make_run(tmp_path / "a")
    text = invoke("estimate", run, "--classes", 1000, "--epochs", 30).output
    assert text.startswith("30 epochs x 20,000 images")
    assert "1,000 classes x 20 images/class as measured in this run; pass --images N" in text
    assert "1,281,167 train images, about 544k of them with boxes" in text
    assert "image size 320, batch 8, on CPU (run.json)" in text
    out = json.loads(invoke("estimate", run, "--classes", 1000, "--epochs", 30, "--json").output)
    assert out["units"] == 30 * 20_000 and out["basis"]["images"] == 20_000  # existing keys kept
    assert (out["basis"]["images_source"], out["basis"]["images_per_class"]) == ("scaled from this run", 20)
    assert out["basis"]["measured_at"] == {"imgsz": 320, "batch": 8, "device": "CPU", "from": "run.json"}
    assert len(out["assumptions"]) == 3 and "20 images/class" in out["assumptions"][0]
    # nothing to probe with (no configs folder, no model): said, and the measured speed stands
    assert out["probe"] is None and out["range"] is None
    assert out["assumptions"][2].startswith("not probed (run.json names no configs folder or model)")


def test_given_images_and_the_engines_own_args_yaml(tmp_path):
    run = make_run(tmp_path / "a")
    (run / "ultralytics").mkdir()
    (run / "ultralytics" / "args.yaml").write_text("imgsz: 640\nbatch: 32\ndevice: '0'\n")
    out = json.loads(invoke("estimate", run, "--classes", 1000, "--images", 1_281_167, "--json").output)
    assert out["basis"]["images_source"] == "--images" and "images_per_class" not in out["basis"]
    assert out["assumptions"][0] == "assumes 1,281,167 training images (--images)"
    assert out["basis"]["measured_at"] == {"imgsz": 640, "batch": 32, "device": "GPU 0", "from": "args.yaml"}
    assert "image size 640, batch 32, on GPU 0 (args.yaml)" in out["text"]


def test_darknet_speed_is_tied_to_its_cfg(tmp_path):
    cfg = tmp_path / "a.cfg"
    cfg.write_text("[net]\nbatch=64\nsubdivisions=16\nwidth=416\nheight=416\nmax_batches=200\n")
    run = make_run(tmp_path / "a", backend="darknet", darknet_files={"cfg": str(cfg)}, batch=64)
    out = json.loads(invoke("estimate", run, "--classes", 1000, "--json").output)
    assert out["units"] == 2_000_000  # unchanged: the max_batches rule
    assert out["basis"]["measured_at"] == {
        "imgsz": [416, 416], "batch": 64, "subdivisions": 16, "from": "the run's cfg",
        "device": "darknet's default device (GPU 0 if built with CUDA, else CPU)"}
    assert "image size 416x416, batch 64 (subdivisions 16), on darknet's default device" in out["text"]


def test_fewer_classes_than_the_run_are_not_probed(tmp_path):
    run = make_run(tmp_path / "a")
    out = json.loads(invoke("estimate", run, "--classes", 5, "--json").output)
    assert out["probe"] is None and out["assumptions"][2].startswith(
        "not probed (the run's labels hold class ids up to 9: out of range at 5 classes)")
