"""The one rule set for YOLO label files as read back, and the problem names every checker uses.

A line is `<class id> <cx> <cy> <w> <h>`: five fields, a whole id in 0..classes-1, four
finite numbers in [0, 1], width and height above 0 (`parse_line`). `check`, `stats`,
`subset` and `check-cfg --data` all read labels with `label_bytes` and `parse_line`, so a
dataset passes or fails them alike and each problem has one name.
"""

from __future__ import annotations

import math

from pipeline.io import read_bytes

#: What `parse_line` can find wrong in a line.
LINE_PROBLEMS = ("bad_field_count", "bad_number", "class_out_of_range", "coord_out_of_range",
                 "non_positive_size")
#: A listed image path that is not absolute (darknet resolves it from its working folder).
RELATIVE_PATH = "relative_path"
#: A listed image that is not there.
MISSING_IMAGE = "missing_image"
#: No label file where the reading tool looks (or one it cannot read).
MISSING_LABEL = "missing_label"


class LineError(ValueError):
    """A label line that is not `<id> <cx> <cy> <w> <h>` with valid values; `kind` is one
    of `LINE_PROBLEMS`."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


def label_bytes(path: str | None) -> bytes | None:
    """Whole content of a (small) label file, or None when it is missing or unreadable
    (a folder, no permission; or no path at all): darknet cannot use it either.
    """
    if path is None:
        return None
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


def check_lines(data: bytes, num_classes: int) -> tuple[int, list[tuple[int, LineError]]]:
    """(valid boxes, [(1-based line number, what is wrong)]) of one label file's bytes.

    Blank lines are skipped. Example: `check_lines(b"0 0.5 0.5 0 0.1\\n", 1)` ->
    (0, [(1, LineError("non_positive_size", ...))]).
    """
    boxes, bad = 0, []
    for number, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            parse_line(line, num_classes)
            boxes += 1
        except LineError as exc:
            bad.append((number, exc))
    return boxes, bad
