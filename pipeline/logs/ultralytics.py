"""Ultralytics `results.csv` (YOLOv5, YOLOv8, YOLO11 eras) into MetricRows.

The eras differ only in names and padding::

    YOLOv5      epoch (from 0), train/obj_loss, metrics/mAP_0.5, metrics/mAP_0.5:0.95, x/lr0
    YOLOv8      epoch (from 0 in 8.0, from 1 later), metrics/mAP50(B), metrics/mAP50-95(B), lr/pg0
    YOLO11      as v8 plus `time` (seconds since start) after epoch, no padding

Names and values are stripped of padding; each MetricRow field takes the first alias
present. `loss` / `val_loss` sum every `train/*_loss` / `val/*_loss` column (box, obj,
cls, dfl, seg...). Steps count epochs from 1 whatever the file's base.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Iterator
from typing import Any

from pipeline.errors import FormatError
from pipeline.io import read_text
from pipeline.logs.rows import Event, Item, LogStats, MetricRow, finite, number

#: MetricRow field -> results.csv column names, newest first.
ALIASES: dict[str, tuple[str, ...]] = {
    "map50": ("metrics/mAP50(B)", "metrics/mAP_0.5", "metrics/mAP50"),
    "map50_95": ("metrics/mAP50-95(B)", "metrics/mAP_0.5:0.95", "metrics/mAP50-95"),
    "precision": ("metrics/precision(B)", "metrics/precision"),
    "recall": ("metrics/recall(B)", "metrics/recall"),
    "lr": ("lr/pg0", "x/lr0"),
    "elapsed": ("time",),
}


def _era(names: list[str]) -> str:
    if "train/obj_loss" in names or "x/lr0" in names:
        return "ultralytics-v5"
    return "ultralytics-11" if "time" in names else "ultralytics-v8"


def _columns(names: list[str]) -> dict[str, int]:
    """MetricRow field -> column index, for the fields this header has."""
    index = {n: i for i, n in enumerate(names)}
    cols = {}
    for field, aliases in ALIASES.items():
        hit = next((index[a] for a in aliases if a in index), None)
        if hit is not None:
            cols[field] = hit
    return cols


def _loss_sum(values: list[str], idx: list[int], stats: LogStats) -> float | None:
    if not idx:
        return None
    total = 0.0
    for i in idx:
        v = number(values[i]) if values[i] else None
        if v is None:
            stats.bad_values += 1
            return None
        total += v
    return round(total, 9)


def parse_results_csv(path: str, stats: LogStats | None = None,
                      progress: Callable[[int], None] | None = None) -> Iterator[Item]:
    """Yield one MetricRow per epoch line of a results.csv, plus nan and restart events.

    Example: `[r.map50 for r in parse_results_csv("runs/detect/train/results.csv")]`.
    """
    stats = stats if stats is not None else LogStats()
    reader = csv.reader(io.StringIO(read_text(path, "results.csv"), newline=""))
    try:
        yield from _rows(reader, path, stats)
    except csv.Error as exc:  # a field over the csv module's limit (128 KiB)
        raise FormatError(path, f"malformed CSV: {exc}", line=reader.line_num) from None
    stats.bytes = os.path.getsize(path)
    if progress:
        progress(stats.bytes)


def _rows(reader: Any, path: str, stats: LogStats) -> Iterator[Item]:
    """The body of `parse_results_csv`, over a csv reader."""
    header = next(reader, None)
    names = [h.strip() for h in header or []]
    if "epoch" not in names:
        raise FormatError(path, "no 'epoch' column: not an Ultralytics results.csv", line=1)
    stats.format, stats.header_lines, stats.lines = _era(names), 1, 1
    epoch_i = names.index("epoch")
    cols = _columns(names)
    train_i = [i for i, n in enumerate(names) if n.startswith("train/") and n.endswith("loss")]
    val_i = [i for i, n in enumerate(names) if n.startswith("val/") and n.endswith("loss")]
    base: int | None = None
    last_step, last_elapsed = 0, 0.0
    loss_ok = val_ok = True
    for values in reader:
        stats.lines += 1
        line = reader.line_num
        values = [v.strip() for v in values]
        if not any(values):
            continue
        if len(values) != len(names) or not values[epoch_i].lstrip("-").isdigit():
            stats.unknown_lines += 1
            continue
        epoch = int(values[epoch_i])
        base = (1 if epoch == 0 else 0) if base is None else base
        row = MetricRow(step=epoch + base)
        for field, i in cols.items():
            setattr(row, field, number(values[i]) if values[i] else None)
        row.loss = _loss_sum(values, train_i, stats)
        row.val_loss = _loss_sum(values, val_i, stats)
        if row.elapsed is not None:
            row.seconds = round(row.elapsed - last_elapsed, 6) if row.step > last_step else None
            last_elapsed = row.elapsed
        if last_step and row.step <= last_step:
            yield Event(kind="restart", step=row.step, line=line,
                        detail=f"epoch {last_step} -> {row.step}")
        elif last_step and row.step > last_step + 1:
            stats.missing_steps += row.step - last_step - 1
        ok = finite(row.loss) or row.loss is None
        if not ok and loss_ok:
            yield Event(kind="nan", step=row.step, line=line, detail=f"train loss {row.loss}")
        vok = finite(row.val_loss) or row.val_loss is None
        if not vok and val_ok:
            yield Event(kind="val-nan", step=row.step, line=line,
                        detail=f"val loss {row.val_loss}")
        loss_ok, val_ok, last_step = ok, vok, row.step
        yield row
