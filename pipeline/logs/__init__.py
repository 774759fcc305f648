"""Training logs -> MetricRows: one parser per format, chosen by `sniff`.

Example::

    fmt, file = sniff("runs/detect/train")          # ("ultralytics", .../results.csv)
    for item in PARSERS[fmt](str(file), LogStats()):
        ...                                           # MetricRow / Event / MapBlock
"""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.errors import FormatError, UserError
from pipeline.logs.darknet import parse_darknet
from pipeline.logs.rows import LogStats, MetricRow
from pipeline.logs.ultralytics import parse_results_csv

PARSERS = {"darknet": parse_darknet, "ultralytics": parse_results_csv}

__all__ = ["PARSERS", "LogStats", "MetricRow", "sniff"]

_DARKNET = re.compile(
    rb"\d+: *[^,\n]*, *[^,\n]* avg(?: loss)?, |Learning Rate: |layer +filters +size|mini_batch = "
    rb"|Loading weights from|Region \d+ Avg IOU|seen \d+|\d+ conv +\d+ "
)
_SNIFF_BYTES = 256 << 10
#: Log names looked for in a run folder without results.csv, in order.
RUN_LOGS = ("train.log", "darknet.log", "log.txt")


def sniff(path: str | Path) -> tuple[str, Path]:
    """(format, file) for a log file or a run folder; raise if it is neither.

    A folder holding `results.csv` is an Ultralytics run; a folder with one of RUN_LOGS
    (or a single `*.log`) is a darknet run. Files are recognised by content.
    """
    p = Path(path)
    if p.is_dir():
        if (p / "results.csv").is_file():
            return "ultralytics", p / "results.csv"
        logs = [p / n for n in RUN_LOGS if (p / n).is_file()] or sorted(p.glob("*.log"))
        if len(logs) >= 1 and (len(logs) == 1 or logs[0].name in RUN_LOGS):
            return sniff(logs[0])[0], logs[0]
        raise UserError(f"{p}: no results.csv or training log in this folder",
                        hint="give the log file itself")
    try:
        with open(p, "rb") as f:
            head = f.read(_SNIFF_BYTES)
    except OSError as exc:
        raise UserError(f"cannot read {p}: {exc.strerror}") from None
    if not head.strip():
        raise FormatError(p, "empty file")
    first = head.split(b"\n", 1)[0]
    if b"epoch" in first and b"," in first:
        return "ultralytics", p
    if _DARKNET.search(head):
        return "darknet", p
    raise FormatError(p, "not a darknet console log or an Ultralytics results.csv")
