"""YOLO label lines from records, and where each tool looks for a label file.

Line format: `<class id> <cx> <cy> <w> <h>`, normalised, 6 decimals (`LINE_FORMAT`).
Every fix is counted: boxes clipped to the image, zero-area boxes dropped, inverted
boxes (max < min) dropped as problems, unknown classes dropped as problems.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field

from pipeline.core import ImageRecord

LINE_FORMAT = "{:d} {:.6f} {:.6f} {:.6f} {:.6f}\n"
DIFFICULT_POLICIES = ("keep", "skip")
#: Substrings pjreddie's darknet replaces (first occurrence) to find a label; in this order.
PJREDDIE_REWRITES = (("images", "labels"), ("JPEGImages", "labels"), ("raw", "labels"))
PJREDDIE_EXTENSIONS = (".jpg", ".png", ".JPG", ".JPEG")


@dataclass(slots=True)
class LabelResult:
    """Label file bytes for one image, with what was counted on the way."""

    text: bytes
    class_ids: list[int] = field(default_factory=list)
    fixes: Counter = field(default_factory=Counter)
    problems: list[tuple[str, str]] = field(default_factory=list)


def yolo_label(record: ImageRecord, class_ids: dict[str, int], difficult: str = "keep") -> LabelResult:
    """Turn one record into label bytes, clipping and counting as the module says.

    Example: a 500x375 image with box (236,132)-(368,231) of class 1 gives
    `b"1 0.604000 0.484000 0.264000 0.264000\\n"`.
    """
    result = LabelResult(b"")
    lines = []
    w, h = record.width, record.height
    for obj in record.objects:
        cid = class_ids.get(obj.label)
        if cid is None:
            result.problems.append(("unknown_class", obj.label))
            continue
        if obj.difficult and difficult == "skip":
            result.fixes["difficult_skipped"] += 1
            continue
        box = obj.box
        if box.inverted:
            result.problems.append(
                ("inverted_box", f"{obj.label} {box.xmin:g},{box.ymin:g},{box.xmax:g},{box.ymax:g}")
            )
            continue
        clipped = box.clip(w, h)
        if clipped != box:
            result.fixes["clipped"] += 1
        if clipped.xmax <= clipped.xmin or clipped.ymax <= clipped.ymin:
            result.fixes["zero_area_dropped"] += 1
            continue
        lines.append(LINE_FORMAT.format(cid, *clipped.to_yolo(w, h)))
        result.class_ids.append(cid)
    result.text = "".join(lines).encode()
    return result


def label_path_beside(image_path: str) -> str:
    """The label file Ultralytics and darknet read for an image with no `images` folder."""
    return os.path.splitext(image_path)[0] + ".txt"


def pjreddie_label_path(image_path: str) -> str | None:
    """Where pjreddie's darknet (the Debian package) looks for an image's label.

    Like its C code, it replaces the FIRST occurrence of each of `images`, `JPEGImages`,
    `raw`, then of each of `.jpg .png .JPG .JPEG`, anywhere in the path; None when no
    extension matched (it would then read the image itself as its label).
    Example: "/x/drawings/a.jpg" -> "/x/dlabelsings/a.txt".
    """
    path = image_path
    for old, new in PJREDDIE_REWRITES:
        path = path.replace(old, new, 1)
    replaced = path
    for ext in PJREDDIE_EXTENSIONS:
        replaced = replaced.replace(ext, ".txt", 1)
    return replaced if replaced != path else None
