"""Real Ultralytics reads what convert voc / convert coco wrote (its own dataset scan)."""

from __future__ import annotations

import os

import numpy as np

from pipeline.convert.engine import ConvertOptions
from pipeline.convert.sources.coco import convert_coco
from pipeline.convert.sources.voc import convert_voc
from pipeline.synth.coco import make_coco_images, make_coco_json
from pipeline.synth.voc import make_voc_tree


def _scan(list_file: str, names: list[str], task: str = "detect"):
    from ultralytics.cfg import get_cfg
    from ultralytics.data.dataset import YOLODataset

    return YOLODataset(img_path=list_file, imgsz=64, augment=False, hyp=get_cfg(), task=task,
                       data={"names": dict(enumerate(names)), "nc": len(names), "channels": 3})


def test_ultralytics_finds_voc_labels_beside_jpegimages(tmp_path):
    root = tmp_path / "VOCdevkit" / "VOC2007"
    make_voc_tree(root, images=16, seed=1)
    manifest = convert_voc(root, sets=("trainval", "test"), darknet_labels=True,
                           options=ConvertOptions(workers=2))
    names = manifest.class_names()
    for split in ("trainval", "test"):
        info = manifest.splits[split]
        dataset = _scan(info.list_file, names)
        assert len(dataset.labels) == info.images > 0
        assert sum(len(lab["cls"]) for lab in dataset.labels) == info.boxes
        per_class = np.bincount(np.concatenate([lab["cls"].ravel() for lab in dataset.labels]).astype(int),
                                minlength=len(names))
        assert per_class.tolist() == [info.per_class[n].boxes for n in names]
        assert all(lab == os.path.splitext(im)[0] + ".txt"
                   for lab, im in zip(dataset.label_files, dataset.im_files, strict=True))


def test_ultralytics_reads_coco_segment_labels_as_polygons(tmp_path):
    js = make_coco_json(tmp_path / "annotations" / "instances_train.json", images=12, annotations=60,
                        crowd_rate=0.1, multipart_rate=0.3, seed=2)
    make_coco_images(js, tmp_path / "train", jpeg=True)
    manifest = convert_coco(js, tmp_path / "train", task="segment", crowd="keep",
                            options=ConvertOptions(workers=1))
    info = manifest.splits["train"]
    assert info.fixes["multipart_joined"] > 0 and info.fixes["rle_traced"] > 0
    dataset = _scan(info.list_file, manifest.class_names(), task="segment")
    assert len(dataset.labels) == info.images
    assert sum(len(lab["segments"]) for lab in dataset.labels) == info.boxes == 60
