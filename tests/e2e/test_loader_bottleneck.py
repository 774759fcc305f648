"""The loader-bottleneck event on a real CPU training (Ultralytics): an epoch whose loop mostly
waits for its images (3000 px JPEGs decoded in the main process, --workers 0) raises it; the
same run on small images does not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import invoke
from runkit import cli, events

from pipeline.darknet.fork import DEBIAN_CFG_DIR
from pipeline.synth.imagenet import SynthSpec, make_imagenet_tree

pytestmark = pytest.mark.slow


def configs(root: Path, size: int) -> Path:
    make_imagenet_tree(root / "in", SynthSpec(classes=2, annotated=100, unannotated=0, val=2,
                                               min_size=size, max_size=size + 400, jpeg=True))
    assert invoke("-q", "convert", "imagenet", root / "in", "--workers", 1).exit_code == 0
    template = DEBIAN_CFG_DIR / "yolov3-tiny.cfg"
    if not template.is_file():
        template = Path(__file__).parents[1] / "data" / "cfg" / "Darknet3_yolov3-voc.cfg"
    made = invoke("configs", root / "in" / "yolo", "--template", template, "--out", root / "cfg",
                  "--name", "toy")
    assert made.exit_code == 0, made.output
    return root / "cfg"


@pytest.mark.parametrize("size, raised", [(2800, True), (64, False)], ids=["3000px", "small"])
def test_a_loop_waiting_for_its_images_raises_the_loader_bottleneck(tmp_path, size, raised):
    run = tmp_path / "run"
    done = cli("train", configs(tmp_path, size), "--out", run, "--epochs", 1, "--imgsz", 32, "--batch", 4,
               "--workers", 0)
    assert done.returncode == 0, done.stdout + done.stderr
    epoch = next(json.loads(x) for x in (run / "progress.jsonl").read_text().splitlines()
                 if json.loads(x)["kind"] == "epoch")
    share = epoch["load_wait"] / (epoch["load_wait"] + epoch["compute"])
    found = [e for e in events(run) if e["kind"] == "bottleneck"]
    assert bool(found) == raised, (share, found)
    if raised:
        detail = found[0]["detail"]
        assert "the data loader is the bottleneck" in detail and "--workers (now 0)" in detail
