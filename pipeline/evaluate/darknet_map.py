"""Parsing darknet's mAP output: `detector map` or a `-map` block of a training log.

AlexeyAB (`src/detector.c`, validate_detector_map) prints, per class and then overall:

    class_id = 0, name = red square, ap = 80.00%   	 (TP = 4, FP = 1)
     for conf_thresh = 0.25, precision = 0.67, recall = 0.50, F1-score = 0.57
     for conf_thresh = 0.25, TP = 4, FP = 2, FN = 4, average IoU = 43.20 %
     mean average precision (mAP@0.50) = 0.800000, or 80.00 %

hank-ai prints a table (`  Id Name  AP  TP ...`, columns differing between versions: read
from its header; AP in percent) and `-> for conf_thresh=0.25, precision=..., F1 score=...`,
`-> for conf_thresh=0.25, TP=4, FP=2, FN=4, average IoU=43.2%`,
`-> mean average precision (mAP@0.5)=80.0000%`. Colour codes are removed first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pipeline.darknet.runner import parse_map, strip_ansi
from pipeline.evaluate.table import ClassRow

_NUM = r"([-+]?(?:\d+\.?\d*|\.\d+|nan|inf)(?:e[-+]?\d+)?)"
_AB_CLASS = re.compile(r"class_id = (\d+), name = (.*?), ap = " + _NUM + r"\s*%\s*\(TP = (\d+), FP = (\d+)\)",
                       re.I)
_PRF = re.compile(r"for conf_thresh\s*=\s*" + _NUM + r",\s*precision\s*=\s*" + _NUM + r",\s*recall\s*=\s*"
                  + _NUM + r",\s*F1[- ]score\s*=\s*" + _NUM, re.I)
_COUNTS = re.compile(r"for conf_thresh\s*=\s*" + _NUM + r",\s*TP\s*=\s*(\d+),\s*FP\s*=\s*(\d+),\s*FN\s*=\s*"
                     r"(-?\d+),\s*average IoU\s*=\s*" + _NUM + r"\s*%", re.I)
_HANK_HEADER = re.compile(r"^\s*Id\s+Name\s+(.+?)\s*$")
#: hank-ai table headings -> (ClassRow field, divisor).
_HANK_COLUMNS = {"ap": ("ap50", 100.0), "avgprecision": ("ap50", 100.0), "tp": ("tp", None),
                 "fp": ("fp", None), "fn": ("fn", None), "gt": ("instances", None),
                 "precision": ("precision", 1.0), "recall": ("recall", 1.0)}


@dataclass(slots=True)
class MapResult:
    """One mAP evaluation as darknet printed it (fractions; IoU as a fraction)."""

    classes: list[ClassRow] = field(default_factory=list)
    conf_thresh: float | None = None
    precision: float | None = None
    recall: float | None = None
    f1: float | None = None
    tp: int | None = None
    fp: int | None = None
    fn: int | None = None
    avg_iou: float | None = None
    map50: float | None = None


def _f(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")


def parse_map_blocks(text: str) -> list[MapResult]:
    """Every complete mAP block (ended by its mAP line) in darknet output, in order.

    Example: the AlexeyAB lines above -> one block, 1 class, map50 0.8, tp 4.
    """
    blocks: list[MapResult] = []
    cur = MapResult()
    hank_columns: list[str] | None = None
    for raw in text.splitlines():
        line = strip_ansi(raw).rstrip("\r")
        if m := _AB_CLASS.search(line):
            if int(m[1]) == 0:
                cur = MapResult()
            cur.classes.append(ClassRow(id=int(m[1]), name=m[2].strip(), ap50=_f(m[3]) / 100,
                                        tp=int(m[4]), fp=int(m[5])))
        elif m := _HANK_HEADER.match(line):
            cur, hank_columns = MapResult(), m[1].split()
        elif hank_columns and (row := _hank_row(line, hank_columns)) is not None:
            cur.classes.append(row)
        elif m := _PRF.search(line):
            cur.conf_thresh, cur.precision, cur.recall, cur.f1 = (_f(m[i]) for i in range(1, 5))
        elif m := _COUNTS.search(line):
            cur.tp, cur.fp, cur.fn, cur.avg_iou = int(m[2]), int(m[3]), int(m[4]), _f(m[5]) / 100
        elif "mean" in line and (value := parse_map(line)) is not None and "mean_average" not in line:
            cur.map50 = value
            blocks.append(cur)
            cur, hank_columns = MapResult(), None
    return blocks


def _hank_row(line: str, columns: list[str]) -> ClassRow | None:
    """One row of hank-ai's per-class table (`  0 red square   80.0000  4  2 ...`), or None."""
    n = len(columns)
    m = re.match(r"^\s*(\d+)\s+(.+?)\s+((?:\S+\s+){" + str(n - 1) + r"}\S+)\s*$", line)
    if not m:
        return None
    values = m[3].split()
    row = ClassRow(id=int(m[1]), name=m[2].strip())
    for heading, value in zip(columns, values, strict=True):
        key = re.sub(r"[^a-z]", "", heading.lower())
        if key in _HANK_COLUMNS:
            name, divisor = _HANK_COLUMNS[key]
            number = _f(value.rstrip("%"))
            setattr(row, name, number / divisor if divisor else int(number) if number == number else None)
    return row


def last_block(text: str) -> MapResult | None:
    """The last complete mAP block, or None."""
    blocks = parse_map_blocks(text)
    return blocks[-1] if blocks else None
