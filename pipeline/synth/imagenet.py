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

from pipeline.synth.draw import COLOURS, SHAPES, draw_jpeg, random_boxes
from pipeline.synth.voc import voc_xml


@dataclass(frozen=True, kw_only=True)
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
    name = f"{COLOURS[index % 10][0]} {SHAPES[index % 3]}"
    return name if index < 30 else f"{name} {index // 30}"


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


def _xml(folder: str, stem: str, width: int, height: int, named: list[tuple[str, tuple]]) -> str:
    """CLS-LOC's XML: `<filename>` is the stem, no final newline."""
    return voc_xml(folder=folder, filename=stem, database="ILSVRC_2012", width=width, height=height,
                   objects=[(name, box, False) for name, box in named], final_newline=False)


def _prediction(named: list[tuple[str, tuple]]) -> str:
    return "".join(f"{name} {x1} {y1} {x2} {y2} " for name, (x1, y1, x2, y2) in named)
