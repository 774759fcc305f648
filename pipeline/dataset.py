"""Read a converted dataset back: manifest, absolute-path list files, label lines.

Used by `subset`, `check` and `stats`. A dataset folder holds `manifest.json`; each split
names its list file (absolute image paths, one a line); each image's label `<stem>.txt`
lies beside it. Label files are read with `pipeline.io.read_bytes` (~3 us a file): at ImageNet
scale (544,546 labels) a full pass takes seconds, so no index is kept.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from pipeline.datafiles import read_list as read_list_file
from pipeline.errors import UserError
from pipeline.io import read_bytes
from pipeline.manifest import Manifest, read_manifest


class LineError(ValueError):
    """A label line that is not `<id> <cx> <cy> <w> <h>` with valid values."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


@dataclass(frozen=True)
class Dataset:
    """A dataset folder and its manifest."""

    root: Path
    manifest: Manifest

    @property
    def num_classes(self) -> int:
        """Number of classes (valid ids are 0..num_classes-1)."""
        return len(self.manifest.classes)

    def list_path(self, split: str) -> Path:
        """The list file of a split (a relative entry is taken from the dataset folder)."""
        info = self.manifest.splits.get(split)
        if info is None:
            raise UserError(f"dataset {self.root} has no split {split!r}",
                            f"splits: {', '.join(self.manifest.splits) or 'none'}")
        path = Path(info.list_file)
        return path if path.is_absolute() else self.root / path

    def images(self, split: str) -> list[str]:
        """The image paths listed for a split, in list order."""
        return read_list(self.list_path(split))


def open_dataset(path: str | Path) -> Dataset:
    """Open a dataset folder (or its manifest file). Example: `open_dataset("data/yolo")`."""
    p = Path(path).absolute()
    manifest = read_manifest(p)
    return Dataset(p if p.is_dir() else p.parent, manifest)


def read_list(path: str | Path) -> list[str]:
    """Lines of a list file, stripped, blank lines left out; a missing file is a UserError.

    Parsing is `pipeline.datafiles.read_list`'s. Example: `read_list("data/in10/train.txt")`.
    """
    if not Path(path).is_file():
        raise UserError(f"list file {path} is missing", "re-run the stage that wrote it")
    return read_list_file(path)


def label_bytes(path: str) -> bytes | None:
    """Whole content of a (small) label file, or None when it is missing or unreadable
    (a folder, no permission): darknet cannot use it either.
    """
    try:
        return read_bytes(path)
    except OSError:
        return None


def parse_line(line: bytes, num_classes: int) -> tuple[int, float, float, float, float]:
    """Parse and check one label line; raises `LineError` naming what is wrong.

    Example: `parse_line(b"1 0.5 0.5 0.2 0.1", 3)` -> `(1, 0.5, 0.5, 0.2, 0.1)`.
    """
    fields = line.split()
    if len(fields) != 5:
        raise LineError("bad_field_count", f"{len(fields)} fields, expected 5")
    try:
        cid = int(fields[0])
        cx, cy, w, h = (float(f) for f in fields[1:])
    except ValueError:
        raise LineError("bad_number", line.decode(errors="replace")[:60]) from None
    if not all(math.isfinite(v) for v in (cx, cy, w, h)):
        raise LineError("bad_number", line.decode(errors="replace")[:60])
    if not 0 <= cid < num_classes:
        raise LineError("class_out_of_range", f"id {cid} not in 0..{num_classes - 1}")
    if not all(0.0 <= v <= 1.0 for v in (cx, cy, w, h)):
        raise LineError("coord_out_of_range", f"{cx:g} {cy:g} {w:g} {h:g} not in [0,1]")
    if w <= 0 or h <= 0:
        raise LineError("non_positive_size", f"width {w:g}, height {h:g}")
    return cid, cx, cy, w, h
