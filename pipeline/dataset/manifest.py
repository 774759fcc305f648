"""The dataset manifest: the hand-off between stages.

A dataset folder holds `manifest.json` (this schema), the class files and one absolute-path
image list per split. `convert` writes it; `subset`, `check`, `stats` and `configs` read it.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from pipeline.errors import FormatError, UserError
from pipeline.io import atomic_write

MANIFEST_NAME = "manifest.json"
FORMAT = "yolo-pipeline/dataset"


class ClassInfo(msgspec.Struct, frozen=True):
    """One class: contiguous `id`, source `key` (wnid, COCO category...), human `name`."""

    id: int
    key: str
    name: str
    source_id: int | None = None


class ClassCount(msgspec.Struct):
    """Images holding at least one box of a class, and its boxes."""

    images: int = 0
    boxes: int = 0


class ProblemSummary(msgspec.Struct):
    """How often one kind of problem or fix happened, with the first files it hit."""

    count: int = 0
    examples: list[str] = msgspec.field(default_factory=list)


class SplitInfo(msgspec.Struct):
    """One converted split (train, val...): its list file and what was counted."""

    list_file: str
    images: int = 0
    boxes: int = 0
    unannotated: int = 0
    unannotated_listed: int = 0
    per_class: dict[str, ClassCount] = msgspec.field(default_factory=dict)
    fixes: dict[str, int] = msgspec.field(default_factory=dict)
    problems: dict[str, ProblemSummary] = msgspec.field(default_factory=dict)
    problems_file: str | None = None
    labels_written: int = 0
    labels_unchanged: int = 0


class Manifest(msgspec.Struct):
    """A dataset: where it came from, its classes, its splits."""

    source: dict[str, object]
    classes: list[ClassInfo]
    splits: dict[str, SplitInfo] = msgspec.field(default_factory=dict)
    names_file: str | None = None
    format: str = FORMAT
    version: int = 1

    def class_keys(self) -> list[str]:
        """Class keys in id order."""
        return [c.key for c in self.classes]

    def class_names(self) -> list[str]:
        """Human names in id order."""
        return [c.name for c in self.classes]


def manifest_path(dataset: str | Path) -> Path:
    """The manifest file of a dataset given as its folder or as the file itself."""
    p = Path(dataset)
    return p / MANIFEST_NAME if p.is_dir() else p


def read_manifest(dataset: str | Path) -> Manifest:
    """Read a dataset's manifest; a missing or malformed one is a one-line error."""
    path = manifest_path(dataset)
    if not path.is_file():
        raise UserError(f"no dataset manifest at {path}", "run 'yolo-pipeline convert' first")
    try:
        return msgspec.json.decode(path.read_bytes(), type=Manifest)
    except msgspec.DecodeError as exc:
        raise FormatError(path, f"not a valid manifest: {exc}") from None
    except RecursionError:  # msgspec recurses per nesting level
        raise FormatError(path, "not a valid manifest: JSON nested too deeply") from None


def write_manifest(manifest: Manifest, path: str | Path) -> None:
    """Write the manifest atomically, pretty-printed so people can read it."""
    data = msgspec.json.format(msgspec.json.encode(manifest), indent=2) + b"\n"
    atomic_write(path, data)
