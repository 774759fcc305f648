"""Both trainers read a symlinked subset's labels beside the LINK, not beside the real file.

After building the subset, the source labels beside the real images are deleted: a tool
that resolved the symlinks would then find no label (darknet: "Couldn't open file").
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from pipeline.convert.engine import ConvertOptions
from pipeline.convert.sources.imagenet import convert_imagenet
from pipeline.dataset.class_choice import ClassRule
from pipeline.dataset.folder import read_list
from pipeline.dataset.labels import label_path_beside
from pipeline.dataset.subset import SubsetOptions, build_subset
from pipeline.synth.imagenet import make_imagenet_tree, wnid

DARKNET = shutil.which("darknet") or "/usr/bin/darknet"
TEMPLATE = Path("/usr/share/darknet/cfg/yolov3-tiny.cfg")


@pytest.fixture
def subset(tmp_path) -> Path:
    """Classes 2 and 3 of a 4-class tree (new ids 0, 1), with the source labels removed."""
    root = make_imagenet_tree(tmp_path / "tree", classes=4, annotated=4, unannotated=1, val=8,
                              jpeg=True)
    convert_imagenet(root, options=ConvertOptions(workers=1))
    out = tmp_path / "sub"
    build_subset(root / "yolo", out, ClassRule(classes=(wnid(2), wnid(3))),
                 SubsetOptions(workers=1))
    for split in ("train", "val"):
        for link in read_list(out / f"{split}.txt"):
            assert os.path.islink(link)
            os.unlink(label_path_beside(os.path.realpath(link)))
    return out


def test_ultralytics_scan_finds_every_subset_label(subset):
    from ultralytics.cfg import get_cfg
    from ultralytics.data.dataset import YOLODataset
    from ultralytics.data.utils import check_det_dataset

    manifest = yaml.safe_load((subset / "manifest.json").read_text())
    names = {c["id"]: c["name"] for c in manifest["classes"]}
    data_yaml = subset / "data.yaml"
    data_yaml.write_text(yaml.safe_dump({
        "path": str(subset), "train": str(subset / "train.txt"), "val": str(subset / "val.txt"),
        "names": names}))
    data = check_det_dataset(str(data_yaml))
    for split in ("train", "val"):
        info = manifest["splits"][split]
        ds = YOLODataset(img_path=data[split], imgsz=64, augment=False, hyp=get_cfg(),
                         task="detect", data=data)
        classes = [int(c) for lab in ds.labels for c in lab["cls"].ravel()]
        assert (len(ds.labels), len(classes)) == (info["images"], info["boxes"])
        assert set(classes) == {0, 1}  # remapped ids: the subset's labels, not the source's
        assert all(lf == label_path_beside(im) for lf, im in zip(ds.label_files, ds.im_files,
                                                                  strict=True))


def tiny_cfg(classes: int) -> str:
    """yolov3-tiny from the installed template, edited for a 2-iteration 64 px CPU run."""
    text = TEMPLATE.read_text()
    for key, value in {"batch": "2", "subdivisions": "1", "width": "64", "height": "64",
                       "max_batches": "2", "steps": "1,2", "random": "0",
                       "classes": str(classes)}.items():
        text = re.sub(rf"(?m)^{key}\s*=.*$", f"{key}={value}", text)
    filters = (classes + 5) * 3
    return re.sub(r"filters=255(\s*\n(?:[^\[]*\n)*?\[yolo\])", rf"filters={filters}\1", text)


@pytest.mark.slow
@pytest.mark.darknet
@pytest.mark.skipif(not os.path.exists(DARKNET) or not TEMPLATE.exists(),
                    reason="needs the Debian darknet package")
def test_darknet_loads_the_subset_and_iterates(subset, tmp_path):
    cfg = tiny_cfg(2)
    assert cfg.count("filters=21") == 2 and "filters=255" not in cfg
    (tmp_path / "tiny.cfg").write_text(cfg)
    (tmp_path / "backup").mkdir()
    names = next(subset.glob("*.names"))
    (tmp_path / "sub.data").write_text(
        f"classes=2\ntrain={subset / 'train.txt'}\nvalid={subset / 'val.txt'}\n"
        f"names={names}\nbackup={tmp_path / 'backup'}\n")
    run = subprocess.run(["stdbuf", "-oL", "-eL", DARKNET, "detector", "train",
                          str(tmp_path / "sub.data"), str(tmp_path / "tiny.cfg")],
                         cwd=tmp_path, capture_output=True, text=True, timeout=240)
    output = run.stdout + run.stderr
    assert "Couldn't open file" not in output, output[-2000:]
    iterations = re.findall(r"(?m)^\s*(\d+): [\d.]+, [\d.]+ avg", output)
    assert iterations[:2] == ["1", "2"], output[-2000:]
