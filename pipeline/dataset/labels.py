"""YOLO label lines from records, and where Ultralytics looks for a label file (darknet's
forks: `pipeline.darknet.paths`).

Line format: `<class id> <cx> <cy> <w> <h>`, normalised, 6 decimals (`LINE_FORMAT`).
Every fix is counted: boxes clipped to the image, zero-area boxes dropped, inverted
boxes (max < min) dropped as problems, unknown classes dropped as problems.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pipeline import __version__
from pipeline.core import ImageRecord, ObjectAnnotation

LINE_FORMAT = "{:d} {:.6f} {:.6f} {:.6f} {:.6f}\n"
#: Normalised widths/heights up to this print as 0.000000: such boxes are dropped as zero-area.
MIN_SIZE = 5e-7
DIFFICULT_POLICIES = ("keep", "skip")
#: One object as plain values: class key, `difficult` flag, corners (`core.Box`'s convention).
ObjectRow = tuple[str, bool, float, float, float, float]
#: The modules whose code decides label bytes (box rules, records, XML/CSV/JSON readers).
RULE_MODULES = ("dataset/labels.py", "core.py", "convert/sources/vocxml.py", "convert/sources/imagenet.py",
                "convert/sources/kaggle_files.py", "convert/sources/coco.py", "convert/sources/polygons.py",
                "convert/sources/voc.py")


@functools.cache
def rules_version() -> str:
    """The version of the label rules: the package version and a digest of `RULE_MODULES`.

    The rerun cache stores it, so an upgrade that changes any rule redoes every job (and
    rewrites exactly the labels whose bytes change). Example: `"0.1.0+3f2a..."`.
    """
    root = Path(__file__).parents[1]
    h = hashlib.blake2b(digest_size=8)
    for name in RULE_MODULES:
        h.update((root / name).read_bytes())
    return f"{__version__}+{h.hexdigest()}"


@dataclass(slots=True)
class LabelResult:
    """Label file bytes for one image, with what was counted on the way."""

    text: bytes
    class_ids: list[int] = field(default_factory=list)
    fixes: Counter = field(default_factory=Counter)
    problems: list[tuple[str, str]] = field(default_factory=list)


def append_box_line(
    lines: list[str], result: LabelResult, label: str, cid: int,
    xmin: float, ymin: float, xmax: float, ymax: float, width: float, height: float,
) -> None:
    """The box rules, in the one place they live: one box -> one label line in `lines`.

    Corners follow `core.Box`'s convention. An inverted box (max < min) is a problem; a
    box is clipped to the image (counted `clipped`); a box left without area, or so thin
    that its normalised size prints as 0.000000, is dropped (counted `zero_area_dropped`).
    Called per object (860k times for COCO train2017), so it builds no objects.
    Example: (236,132)-(368,231) of class 1 in 500x375 appends
    `"1 0.604000 0.484000 0.264000 0.264000\\n"`.
    """
    if xmax < xmin or ymax < ymin:
        result.problems.append(("inverted_box", f"{label} {xmin:g},{ymin:g},{xmax:g},{ymax:g}"))
        return
    x1, y1 = min(max(xmin, 0.0), width), min(max(ymin, 0.0), height)
    x2, y2 = min(max(xmax, 0.0), width), min(max(ymax, 0.0), height)
    if x1 != xmin or y1 != ymin or x2 != xmax or y2 != ymax:
        result.fixes["clipped"] += 1
    w, h = (x2 - x1) / width, (y2 - y1) / height
    if w <= MIN_SIZE or h <= MIN_SIZE:  # no area, or a size that prints as 0.000000
        result.fixes["zero_area_dropped"] += 1
        return
    lines.append(LINE_FORMAT.format(cid, (x1 + x2) / 2 / width, (y1 + y2) / 2 / height, w, h))
    result.class_ids.append(cid)


def yolo_label(record: ImageRecord, class_ids: dict[str, int], difficult: str = "keep") -> LabelResult:
    """Turn one record into label bytes with `append_box_line`, counting as it goes.

    Objects of a class not in `class_ids` are problems (`unknown_class`); `difficult=1`
    objects are dropped under `difficult="skip"` (counted). Example: a 500x375 image with
    box (236,132)-(368,231) of class 1 gives `b"1 0.604000 0.484000 0.264000 0.264000\\n"`.
    """
    return label_of_rows(object_rows(record.objects), record.width, record.height, class_ids, difficult)


def object_rows(objects: Iterable[ObjectAnnotation]) -> list[ObjectRow]:
    """Objects as `ObjectRow`s. Example: `ObjectAnnotation("cat", Box(1, 2, 3, 4))` ->
    `("cat", False, 1, 2, 3, 4)`."""
    return [(o.label, o.difficult, o.box.xmin, o.box.ymin, o.box.xmax, o.box.ymax) for o in objects]


def label_of_rows(
    rows: Iterable[ObjectRow], width: float, height: float, class_ids: dict[str, int], difficult: str = "keep"
) -> LabelResult:
    """`yolo_label` of objects given as `ObjectRow`s in a `width` x `height` image (the
    ImageNet reader builds rows, not records: ~2 us less per file)."""
    result = LabelResult(b"")
    lines: list[str] = []
    skip_difficult = difficult == "skip"
    for label, is_difficult, xmin, ymin, xmax, ymax in rows:
        cid = class_ids.get(label)
        if cid is None:
            result.problems.append(("unknown_class", label))
            continue
        if is_difficult and skip_difficult:
            result.fixes["difficult_skipped"] += 1
            continue
        append_box_line(lines, result, label, cid, xmin, ymin, xmax, ymax, width, height)
    result.text = "".join(lines).encode()
    return result


def label_path_beside(image_path: str) -> str:
    """The label file Ultralytics and darknet read for an image with no `images` folder."""
    return os.path.splitext(image_path)[0] + ".txt"


def ultralytics_label_path(image_path: str) -> str:
    """Where Ultralytics looks for an image's label: the last `/images/` folder of the path
    becomes `/labels/`, the extension `.txt`; with no `images` folder, beside the image.

    Example: "/d/train/images/a.jpg" -> "/d/train/labels/a.txt"; "/d/a.png" -> "/d/a.txt".
    """
    head, found, tail = image_path.rpartition(f"{os.sep}images{os.sep}")
    path = f"{head}{os.sep}labels{os.sep}{tail}" if found else image_path
    return os.path.splitext(path)[0] + ".txt"
