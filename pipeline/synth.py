"""Synthetic Kaggle-layout ImageNet trees for the demo, the tests and the benchmarks.

Deterministic for a seed, any scale. The XML follows the real CLS-LOC schema (tab indent,
no declaration, no final newline), CSVs follow `LOC_*_solution.csv` (trailing space in
PredictionString), and `jpeg=True` draws each box as a filled shape whose colour and form
depend on its class, so a detector can learn it. `jpeg=False` writes empty placeholder
files (fast; enough for XML conversion, not for `--from csv`, which reads image headers).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

_COLOURS = (  # name, BGR
    ("red", (40, 40, 220)), ("blue", (220, 90, 30)), ("green", (60, 200, 60)), ("yellow", (40, 220, 230)),
    ("purple", (200, 60, 150)), ("orange", (20, 140, 250)), ("white", (235, 235, 235)),
    ("pink", (190, 150, 250)), ("teal", (170, 170, 20)), ("brown", (30, 80, 140)),
)
_SHAPES = ("square", "disc", "triangle")


@dataclass(frozen=True)
class SynthSpec:
    """Size of a synthetic tree: classes, train images per class (with / without XML), val."""

    classes: int = 10
    annotated: int = 5
    unannotated: int = 2
    val: int = 10
    jpeg: bool = False
    min_size: int = 64
    max_size: int = 160
    seed: int = 0


def wnid(index: int) -> str:
    """Synthetic WordNet-like id of class `index`, increasing with the index."""
    return f"n{10_000_000 + index * 7_919:08d}"


def class_name(index: int) -> str:
    """Human name of class `index`, saying what is drawn: "red square", "blue disc", ...

    Colour and shape cycle together every 30 classes; later ones get a number.
    """
    name = f"{_COLOURS[index % 10][0]} {_SHAPES[index % 3]}"
    return name if index < 30 else f"{name} {index // 30}"


def _xml(folder: str, stem: str, width: int, height: int, boxes: list[tuple[str, tuple]]) -> str:
    objects = "".join(
        f"\t<object>\n\t\t<name>{name}</name>\n\t\t<pose>Unspecified</pose>\n"
        f"\t\t<truncated>0</truncated>\n\t\t<difficult>0</difficult>\n\t\t<bndbox>\n"
        f"\t\t\t<xmin>{x1}</xmin>\n\t\t\t<ymin>{y1}</ymin>\n\t\t\t<xmax>{x2}</xmax>\n"
        f"\t\t\t<ymax>{y2}</ymax>\n\t\t</bndbox>\n\t</object>\n"
        for name, (x1, y1, x2, y2) in boxes
    )
    return (
        f"<annotation>\n\t<folder>{folder}</folder>\n\t<filename>{stem}</filename>\n"
        f"\t<source>\n\t\t<database>ILSVRC_2012</database>\n\t</source>\n"
        f"\t<size>\n\t\t<width>{width}</width>\n\t\t<height>{height}</height>\n"
        f"\t\t<depth>3</depth>\n\t</size>\n\t<segmented>0</segmented>\n{objects}</annotation>"
    )


def draw_jpeg(width: int, height: int, boxes: list[tuple[int, tuple]], rng: random.Random) -> bytes:
    """JPEG bytes of a plain background with each (class, box) drawn as its class's shape and colour."""
    image = np.full((height, width, 3), rng.randrange(30, 90), np.uint8)
    for cls, (x1, y1, x2, y2) in boxes:
        colour = _COLOURS[cls % 10][1]
        shape = _SHAPES[cls % 3]
        if shape == "square":
            cv2.rectangle(image, (x1, y1), (x2, y2), colour, -1)
        elif shape == "disc":
            cv2.ellipse(image, (((x1 + x2) / 2, (y1 + y2) / 2), (x2 - x1, y2 - y1), 0), colour, -1)
        else:
            pts = np.array([[(x1 + x2) // 2, y1], [x1, y2], [x2, y2]], np.int32)
            cv2.fillPoly(image, [pts], colour)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
    return data.tobytes()


def random_boxes(rng: random.Random, width: int, height: int, classes: list[int]) -> list[tuple[int, tuple]]:
    """One random (class, integer corner box) inside the image per entry of `classes`."""
    out = []
    for cls in classes:
        bw = rng.randint(max(8, width // 5), max(9, width * 3 // 4))
        bh = rng.randint(max(8, height // 5), max(9, height * 3 // 4))
        x1 = rng.randint(0, width - bw)
        y1 = rng.randint(0, height - bh)
        out.append((cls, (x1, y1, x1 + bw - 1, y1 + bh - 1)))
    return out


def make_imagenet_tree(root: str | Path, spec: SynthSpec | None = None, **kwargs: object) -> Path:
    """Write a Kaggle-layout ImageNet tree under `root`; returns `root`.

    Example: `make_imagenet_tree(tmp, classes=3, annotated=4, unannotated=1, val=6, jpeg=True)`
    """
    spec = spec or SynthSpec(**kwargs)  # type: ignore[arg-type]
    root = Path(root)
    rng = random.Random(spec.seed)
    ilsvrc = root / "ILSVRC"
    data, ann, sets = (
        ilsvrc / "Data" / "CLS-LOC",
        ilsvrc / "Annotations" / "CLS-LOC",
        ilsvrc / "ImageSets" / "CLS-LOC",
    )
    for folder in (data / "val", ann / "val", data / "test", sets):
        folder.mkdir(parents=True, exist_ok=True)
    wnids = [wnid(i) for i in range(spec.classes)]
    (root / "LOC_synset_mapping.txt").write_text(
        "".join(f"{w} {class_name(i)}, synthetic class {i}\n" for i, w in enumerate(wnids))
    )
    train_cls, train_loc, train_csv = [], [], []

    def image(path: Path, width: int, height: int, boxes: list) -> None:
        path.write_bytes(draw_jpeg(width, height, boxes, rng) if spec.jpeg else b"")

    for cls, w in enumerate(wnids):
        (data / "train" / w).mkdir(parents=True, exist_ok=True)
        (ann / "train" / w).mkdir(parents=True, exist_ok=True)
        for n in range(1, spec.annotated + spec.unannotated + 1):
            stem = f"{w}_{n}"
            width, height = (
                rng.randint(spec.min_size, spec.max_size),
                rng.randint(spec.min_size, spec.max_size),
            )
            train_cls.append(f"{w}/{stem} {len(train_cls) + 1}\n")
            if n > spec.annotated:
                image(data / "train" / w / f"{stem}.JPEG", width, height, [])
                continue
            boxes = random_boxes(rng, width, height, [cls] * rng.randint(1, 2))
            image(data / "train" / w / f"{stem}.JPEG", width, height, boxes)
            named = [(w, b) for _, b in boxes]
            (ann / "train" / w / f"{stem}.xml").write_text(_xml(w, stem, width, height, named))
            train_loc.append(f"{w}/{stem} {len(train_loc) + 1}\n")
            train_csv.append(f"{stem},{_prediction(named)}\n")
    val_csv, val_list = [], []
    for n in range(1, spec.val + 1):
        stem = f"ILSVRC2012_val_{n:08d}"
        cls = rng.randrange(spec.classes)
        width, height = rng.randint(spec.min_size, spec.max_size), rng.randint(spec.min_size, spec.max_size)
        boxes = random_boxes(rng, width, height, [cls])
        image(data / "val" / f"{stem}.JPEG", width, height, boxes)
        named = [(wnids[c], b) for c, b in boxes]
        (ann / "val" / f"{stem}.xml").write_text(_xml("val", stem, width, height, named))
        val_csv.append(f"{stem},{_prediction(named)}\n")
        val_list.append(f"{stem} {n}\n")
    (root / "LOC_train_solution.csv").write_text("ImageId,PredictionString\n" + "".join(train_csv))
    (root / "LOC_val_solution.csv").write_text("ImageId,PredictionString\n" + "".join(val_csv))
    (sets / "train_cls.txt").write_text("".join(train_cls))
    (sets / "train_loc.txt").write_text("".join(train_loc))
    (sets / "val.txt").write_text("".join(val_list))
    (sets / "test.txt").write_text("")
    return root


def _prediction(named: list[tuple[str, tuple]]) -> str:
    return "".join(f"{name} {x1} {y1} {x2} {y2} " for name, (x1, y1, x2, y2) in named)
