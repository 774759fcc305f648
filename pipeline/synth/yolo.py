"""YOLO datasets as other tools export them (tests, demo): real JPEGs, labels where each
tool keeps them, the description file each tool reads.

- `make_roboflow_export`: Roboflow's "YOLOv8" zip unpacked: `train/`, `valid/`, `test/`
  each with `images/` and `labels/`, a `data.yaml` with `../train/images`-style paths
  (relative to nothing Ultralytics knows: it retries them without `../`), names as a list,
  and Roboflow's extra keys; file names like `img001_jpg.rf.<hash>.jpg`.
- `make_ultralytics_tree`: `images/{train,val}` + `labels/{train,val}` and a YAML with an
  absolute `path:` and `names` as a dict (the shape of Ultralytics' own coco8.yaml).
- `make_darknet_tree`: AlexeyAB's "train on your objects" layout, darknet's folder as
  ROOT: `data/obj/*.jpg` with the labels beside, `data/obj.data` whose `train`/`valid`/
  `names` and list lines are RELATIVE to ROOT (darknet's working folder).

Boxes are drawn with `synth.draw.draw_jpeg`; coordinates are written with 6 significant digits
(not our 6 decimals), so a reader that reformats them is caught. Deterministic for a seed.
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import yaml

from pipeline.synth.draw import draw_jpeg, random_boxes

CLASSES = ("bus", "car", "person", "bicycle")


def _label_text(boxes: list[tuple[int, tuple]], width: int, height: int) -> str:
    lines = []
    for cls, (x1, y1, x2, y2) in boxes:
        cx, cy = (x1 + x2) / 2 / width, (y1 + y2) / 2 / height
        lines.append(f"{cls} {cx:.6g} {cy:.6g} {(x2 - x1) / width:.6g} {(y2 - y1) / height:.6g}\n")
    return "".join(lines)


def _write_images(image_dir: Path, label_dir: Path, stems: list[str], classes: int,
                  rng: random.Random) -> None:
    """One JPEG per stem with 1-3 drawn boxes, its label `<stem>.txt` in `label_dir`."""
    image_dir.mkdir(parents=True, exist_ok=True)
    label_dir.mkdir(parents=True, exist_ok=True)
    for stem in stems:
        width, height = rng.randint(64, 160), rng.randint(64, 160)
        boxes = random_boxes(rng, width, height,
                             [rng.randrange(classes) for _ in range(rng.randint(1, 3))])
        (image_dir / f"{stem}.jpg").write_bytes(draw_jpeg(width, height, boxes, rng))
        (label_dir / f"{stem}.txt").write_text(_label_text(boxes, width, height))


def _roboflow_stem(n: int) -> str:
    return f"img{n:03d}_jpg.rf.{hashlib.md5(str(n).encode()).hexdigest()[:20]}"


def make_roboflow_export(root: str | Path, *, names: tuple[str, ...] = CLASSES,
                         counts: tuple[int, int, int] = (8, 4, 4), seed: int = 0) -> Path:
    """Write a Roboflow-style export under `root`; returns its data.yaml.

    Example: `make_roboflow_export(tmp / "rf", counts=(6, 3, 3))` -> tmp/rf/data.yaml.
    """
    root, rng, n = Path(root), random.Random(seed), 0
    for folder, count in zip(("train", "valid", "test"), counts, strict=True):
        stems = [_roboflow_stem(n := n + 1) for _ in range(count)]
        _write_images(root / folder / "images", root / folder / "labels", stems, len(names), rng)
    doc = {"train": "../train/images", "val": "../valid/images", "test": "../test/images",
           "nc": len(names), "names": list(names),
           "roboflow": {"workspace": "synth", "project": "shapes", "version": 1,
                        "license": "CC BY 4.0", "url": "https://universe.roboflow.com/synth"}}
    path = root / "data.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def make_ultralytics_tree(root: str | Path, *, names: tuple[str, ...] = CLASSES,
                          counts: tuple[int, int] = (8, 4), seed: int = 0) -> Path:
    """Write `images/{train,val}`, `labels/{train,val}` and `ROOT/<name>.yaml`; returns it.

    Example: `make_ultralytics_tree(tmp / "shapes8")` -> tmp/shapes8/shapes8.yaml.
    """
    root, rng = Path(root).absolute(), random.Random(seed)
    for split, count in zip(("train", "val"), counts, strict=True):
        stems = [f"{split}_{i:04d}" for i in range(count)]
        _write_images(root / "images" / split, root / "labels" / split, stems, len(names), rng)
    doc = {"path": str(root), "train": "images/train", "val": "images/val",
           "names": dict(enumerate(names))}
    path = root / f"{root.name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def make_darknet_tree(root: str | Path, *, names: tuple[str, ...] = CLASSES,
                      counts: tuple[int, int] = (8, 4), seed: int = 0) -> Path:
    """Write AlexeyAB's custom-objects layout under `root` (darknet's folder), every path
    relative to it; returns `root/data/obj.data`.

    Example: `make_darknet_tree(tmp / "darknet")` -> tmp/darknet/data/obj.data.
    """
    root, rng = Path(root), random.Random(seed)
    data = root / "data"
    stems = [f"{i:05d}" for i in range(sum(counts))]
    _write_images(data / "obj", data / "obj", stems, len(names), rng)
    (data / "train.txt").write_text("".join(f"data/obj/{s}.jpg\n" for s in stems[:counts[0]]))
    (data / "valid.txt").write_text("".join(f"data/obj/{s}.jpg\n" for s in stems[counts[0]:]))
    (data / "obj.names").write_text("".join(f"{n}\n" for n in names))
    path = data / "obj.data"
    path.write_text(f"classes = {len(names)}\ntrain = data/train.txt\nvalid = data/valid.txt\n"
                    "names = data/obj.names\nbackup = backup/\n")
    return path
