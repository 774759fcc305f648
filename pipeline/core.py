"""Value types shared by every stage: boxes, annotated images, per-file problems.

Box convention (stated once, applied once in `Box.to_yolo`)::

    (0,0) ------------------------> x
      |    (xmin,ymin)
      |        +-----------+
      |        |           |
      |        +-----------+
      |               (xmax,ymax)
      v y                           image is width x height pixels

Corners are continuous pixel coordinates: a box spans xmin..xmax, so its width is
`xmax - xmin` and its centre `(xmin + xmax) / 2`. ImageNet and VOC store integer
corners; they are used as they are (no +1/-1 shift; darknet's voc_label.py subtracts
1 px from the centre, Ultralytics' own VOC script does not). The CSV and XML of the
Kaggle download give the same corners, so both sources give the same labels.
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

    @property
    def inverted(self) -> bool:
        """True when a max corner lies before its min corner (a broken annotation)."""
        return self.xmax < self.xmin or self.ymax < self.ymin

    def clip(self, width: float, height: float) -> Box:
        """The part of the box inside a `width` x `height` image."""
        return Box(
            min(max(self.xmin, 0.0), width),
            min(max(self.ymin, 0.0), height),
            min(max(self.xmax, 0.0), width),
            min(max(self.ymax, 0.0), height),
        )

    def to_yolo(self, width: float, height: float) -> tuple[float, float, float, float]:
        """Normalised (cx, cy, w, h) in [0, 1] for an image of `width` x `height`."""
        return (
            (self.xmin + self.xmax) / 2 / width,
            (self.ymin + self.ymax) / 2 / height,
            (self.xmax - self.xmin) / width,
            (self.ymax - self.ymin) / height,
        )


@dataclass(frozen=True, slots=True)
class ObjectAnnotation:
    """One annotated object: class key (wnid, category name...), box, VOC `difficult` flag."""

    label: str
    box: Box
    difficult: bool = False


@dataclass(frozen=True, slots=True)
class ImageRecord:
    """One image's annotation: its size (0 when unknown) and its objects."""

    width: int
    height: int
    objects: tuple[ObjectAnnotation, ...]


class Problem(NamedTuple):
    """One thing wrong or fixed in one input file, for the problems report."""

    kind: str
    file: str
    detail: str = ""
