"""Whole-run behaviour of `convert imagenet`: real Ultralytics scan, and a killed run resumed."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.convert.engine import ConvertOptions
from pipeline.convert.sources.imagenet import convert_imagenet
from pipeline.synth.imagenet import SynthSpec, make_imagenet_tree


@pytest.mark.slow  # imports Ultralytics and torch: ~2 s
def test_ultralytics_finds_the_labels_beside_the_images(tmp_path):
    from ultralytics.cfg import get_cfg
    from ultralytics.data.dataset import YOLODataset

    root = make_imagenet_tree(
        tmp_path / "in", SynthSpec(classes=3, annotated=4, unannotated=2, val=5, jpeg=True)
    )
    manifest = convert_imagenet(root, options=ConvertOptions(unannotated="empty", workers=2))
    info = manifest.splits["train"]
    names = dict(enumerate(manifest.class_names()))
    dataset = YOLODataset(
        img_path=info.list_file,
        imgsz=64,
        augment=False,
        hyp=get_cfg(),
        task="detect",
        data={"names": names, "nc": len(names), "channels": 3},
    )
    boxes = sum(len(lab["cls"]) for lab in dataset.labels)
    backgrounds = sum(1 for lab in dataset.labels if len(lab["cls"]) == 0)
    assert (len(dataset.labels), boxes, backgrounds) == (info.images, info.boxes, info.unannotated_listed)
    pairs = zip(dataset.label_files, dataset.im_files, strict=True)
    assert all(label == os.path.splitext(image)[0] + ".txt" for label, image in pairs)


def _all_outputs(root: Path) -> dict[str, bytes]:
    out = {str(p.relative_to(root)): p.read_bytes() for p in (root / "ILSVRC/Data").rglob("*.txt")}
    for name in ("train.txt", "val.txt", "classes.txt", "imagenet.names"):
        out[name] = (root / "yolo" / name).read_bytes().replace(str(root).encode(), b"ROOT")
    return out


@pytest.mark.slow
def test_killed_run_then_rerun_equals_a_clean_run(tmp_path):
    spec = SynthSpec(classes=60, annotated=150, unannotated=20, val=600)
    killed, clean = (
        make_imagenet_tree(tmp_path / "killed", spec),
        make_imagenet_tree(tmp_path / "clean", spec),
    )
    cmd = [sys.executable, "-m", "pipeline", "convert", "imagenet", str(killed), "--workers", "2"]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = killed / "yolo/.state/train"
    deadline = time.time() + 60
    while time.time() < deadline and not (state.is_dir() and len(os.listdir(state)) >= 5):
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(os.listdir(state))
    assert 5 <= done < 60, f"kill came too late or too early: {done} class folders done"
    assert not (killed / "yolo/manifest.json").exists()
    # a label cut short, as a kill during its write leaves it
    victim = next((killed / "ILSVRC/Data/CLS-LOC/train").rglob("*.txt"))
    victim.write_bytes(victim.read_bytes()[:5])
    resumed = convert_imagenet(killed, options=ConvertOptions(workers=2))
    reference = convert_imagenet(clean, options=ConvertOptions(workers=2))
    assert _all_outputs(killed) == _all_outputs(clean)
    assert resumed.splits["train"].labels_written < reference.splits["train"].labels_written
    assert resumed.splits["train"].per_class == reference.splits["train"].per_class
    shutil.rmtree(tmp_path)
