"""Value types shared by every stage: boxes, annotated images, per-file problems.

Box convention (stated here, applied once in `labels.append_box_line`)::

    (0,0) ------------------------> x
      |    (xmin,ymin)
      |        +-----------+
      |        |           |
      |        +-----------+
      |               (xmax,ymax)
      v y                           image is width x height pixels

Corners are continuous pixel coordinates: a box spans xmin..xmax, so its width is
`xmax - xmin` and its centre `(xmin + xmax) / 2` (applied in `labels.append_box_line`).
ImageNet and VOC store integer corners; they are used as they are (no +1/-1 shift:
darknet's voc_label.py subtracts 1 px from the centre, Ultralytics' own VOC script does
not). The CSV and XML of the Kaggle download give the same corners, so both sources give
the same labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


@dataclass(frozen=True, slots=True)
class Box:
    """Pixel corners (xmin, ymin, xmax, ymax); see the module docstring for the convention."""

    xmin: float
    ymin: float
    xmax: float
    ymax: float

    @classmethod
    def from_xywh(cls, x: float, y: float, w: float, h: float) -> Box:
        """From COCO's `[x, y, w, h]` (top-left corner, size in pixels)."""
        return cls(x, y, x + w, y + h)


@dataclass(frozen=True, slots=True)
class ObjectAnnotation:
    """One annotated object: class key (wnid, category name...), box, VOC `difficult` flag."""

    label: str
    box: Box
    difficult: bool = False


@dataclass(frozen=True, slots=True)
class ImageRecord:
    """One image's annotation: its size (0 when unknown), its objects, and the file name the
    annotation gives for its image ("" when it gives none)."""

    width: int
    height: int
    objects: tuple[ObjectAnnotation, ...]
    filename: str = ""


class Problem(NamedTuple):
    """One thing wrong or fixed in one input file, for the problems report.

    The report escapes tabs, line breaks and backslashes itself: name things in `detail`
    with `quoted`, not `repr` (which would escape a backslash a second time).
    """

    kind: str
    file: str
    detail: str = ""


def quoted(text: str) -> str:
    """A name in single quotes, as it is. Example: `quoted("a\\b.jpg")` -> `'a\\b.jpg'`."""
    return f"'{text}'"
