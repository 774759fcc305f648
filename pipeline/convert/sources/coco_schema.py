"""What a COCO instances file holds: typed msgspec records, the size-checked decode, class ids.

`CocoFile` (detect) has no `segmentation` field, so msgspec skips those bytes (most of the
file) without building Python objects; `CocoSegFile` keeps each segmentation as raw JSON
bytes. `class_table` turns `categories` into class ids under one of three modes (see
`pipeline.convert.sources.coco` for the rules).
"""

from __future__ import annotations

import codecs
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import msgspec

from pipeline.convert.split_checks import case_duplicates
from pipeline.core import Problem, quoted
from pipeline.dataset.manifest import ClassInfo
from pipeline.errors import FormatError, UserError

ID_MODES = ("contiguous", "coco80", "original")
MAX_JSON_BYTES = 8 * 2**30
#: A JSON integer that fits 64 bits: larger ones cannot be re-encoded for the workers (msgpack).
Int = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]

#: COCO's 80 detection categories as (category id, name), in the standard 80-class order.
COCO80 = tuple(zip(
    (*range(1, 12), *range(13, 26), 27, 28, *range(31, 45), *range(46, 66), 67, 70,
     *range(72, 83), *range(84, 91)),
    ("person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
     "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
     "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
     "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
     "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
     "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich",
     "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
     "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote",
     "keyboard", "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book",
     "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush"),
    strict=True,
))


class Category(msgspec.Struct, gc=False):
    """One entry of `categories`."""

    id: Int
    name: str


class Image(msgspec.Struct, gc=False):
    """One entry of `images`; width/height 0 when the file leaves them out."""

    id: Int | str
    file_name: str
    width: Int = 0
    height: Int = 0


class Annotation(msgspec.Struct, gc=False):
    """One entry of `annotations`, without its segmentation (detect task)."""

    image_id: Int | str
    category_id: Int
    bbox: list[float] | None = None
    iscrowd: Int | bool = 0
    id: Int | str | None = None


class SegAnnotation(Annotation, gc=False):
    """An annotation with its segmentation kept as raw JSON bytes (segment task)."""

    segmentation: msgspec.Raw = msgspec.Raw(b"null")


class CocoFile(msgspec.Struct, gc=False):
    """The parts of an instances file a detect conversion reads."""

    images: list[Image]
    categories: list[Category]
    annotations: list[Annotation] = []


class CocoSegFile(msgspec.Struct, gc=False):
    """The parts of an instances file a segment conversion reads."""

    images: list[Image]
    categories: list[Category]
    annotations: list[SegAnnotation] = []


def read_coco(
    path: str | Path, task: str = "detect", max_bytes: int = MAX_JSON_BYTES
) -> CocoFile | CocoSegFile:
    """Check the file's size, then decode it; any defect is a one-line `FormatError`.

    Example: `read_coco("instances_val2017.json").images[0].file_name`
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"COCO file {path} not found")
    size = path.stat().st_size
    if size == 0:
        raise FormatError(path, "empty file, not a COCO JSON")
    if size > max_bytes:
        raise UserError(f"{path} is {size / 2**20:,.0f} MiB, over the {max_bytes / 2**20:,.0f} MiB limit",
                        "raise it with --max-json-mb if this machine has ~2x that in free memory")
    kind = CocoSegFile if task == "segment" else CocoFile
    try:
        data = path.read_bytes()
        return msgspec.json.decode(data[3:] if data.startswith(codecs.BOM_UTF8) else data, type=kind)
    except msgspec.ValidationError as exc:
        raise FormatError(path, f"not a COCO instances file: {exc}") from None
    except msgspec.DecodeError as exc:
        truncated = "truncated" in str(exc)
        raise FormatError(path, "truncated JSON (the file ends early)" if truncated
                          else f"malformed JSON: {exc}") from None
    except RecursionError:  # msgspec recurses per level, even under keys the schema skips
        raise FormatError(path, "malformed JSON: arrays or objects nested too deeply") from None


@dataclass
class ClassTable:
    """Classes for the manifest, category id -> class key, and what was found on the way."""

    classes: list[ClassInfo]
    key_of: dict[int, str]
    problems: list[Problem] = field(default_factory=list)

    @property
    def class_ids(self) -> dict[str, int]:
        """Class key -> class id, as the engine wants it."""
        return {c.key: c.id for c in self.classes}


def class_table(categories: list[Category], mode: str = "contiguous", where: str = "") -> ClassTable:
    """Class ids for `categories` under an id mode (see the module rules).

    Keys are category names; a repeated name gets `#<id>` appended, in classes.txt and in
    coco.names alike, and is reported, as are names that differ only in case.
    Example: ids 1, 2, 4 -> classes 0, 1, 2 in `contiguous` mode.
    """
    if mode not in ID_MODES:
        raise UserError(f"unknown id mode {mode!r}", f"use one of {', '.join(ID_MODES)}")
    cats = sorted(categories, key=lambda c: c.id)
    ids = [c.id for c in cats]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise FormatError(where, f"category id {dup} is listed twice")
    bad = next((c for c in cats if not c.name.strip() or any(ch in c.name for ch in "\n\r\0")), None)
    if bad is not None:  # one name per line in classes.txt and .names
        raise FormatError(where, f"category {bad.id} has name {bad.name!r}: a class name must be one "
                                 "non-empty line")
    if mode == "coco80":
        coco = dict(COCO80)
        wrong = [c for c in cats if coco.get(c.id) != c.name]
        if wrong:
            c = wrong[0]
            raise UserError(
                f"--ids coco80 needs COCO's categories, but category {c.id} is {c.name!r}"
                + (f" (COCO's {c.id} is {coco[c.id]!r})" if c.id in coco else " (not a COCO id)"),
                "use --ids contiguous")
        classes = [ClassInfo(id=i, key=n, name=n, source_id=cid) for i, (cid, n) in enumerate(COCO80)]
        return ClassTable(classes, {cid: n for cid, n in COCO80})
    if mode == "original" and ids != list(range(len(ids))):
        shown = ", ".join(map(str, ids[:6])) + (", ..." if len(ids) > 6 else "")
        raise UserError(f"--ids original needs category ids 0..{len(ids) - 1}, got {shown}",
                        "use --ids contiguous")
    table = ClassTable([], {})
    seen: Counter = Counter(c.name for c in cats)
    for i, c in enumerate(cats):
        key = c.name if seen[c.name] == 1 else f"{c.name}#{c.id}"
        if key != c.name:
            table.problems.append(Problem("duplicate_category_name", where, f"{quoted(c.name)} (id {c.id})"))
        table.classes.append(ClassInfo(id=i, key=key, name=key, source_id=c.id))
        table.key_of[c.id] = key
    table.problems.extend(case_duplicates((c.name for c in cats if seen[c.name] == 1), where))
    return table
