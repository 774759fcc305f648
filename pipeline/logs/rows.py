"""The one schema every log parser emits: metric rows, events, mAP blocks, parse stats.

A parser is a generator over one file that yields `MetricRow`, `Event` and `MapBlock`
values in file order and fills a `LogStats` the caller passes in. Rows are per step: a
darknet iteration, or an Ultralytics epoch (counted from 1, whatever the file's base).
Fields a format does not have stay None. mAP values are fractions (0.481172, not 48.12 %).
"""

from __future__ import annotations

import math
import re

import msgspec

#: MetricRow fields in metrics.csv order.
ROW_FIELDS = (
    "step", "loss", "avg_loss", "val_loss", "lr", "seconds", "elapsed", "images",
    "hours_left", "map50", "map50_95", "precision", "recall", "f1", "avg_iou",
)


class MetricRow(msgspec.Struct, kw_only=True):
    """One step of training.

    darknet: `loss` is the batch loss, `avg_loss` darknet's running average, `seconds`
    the iteration time, `images` the images seen so far, `hours_left` AlexeyAB's estimate;
    the mAP fields come from a `-map` block printed after this iteration.
    Ultralytics: `loss` / `val_loss` are the sums of the train/ and val/ loss columns,
    `elapsed` the `time` column (seconds since start), `seconds` the epoch's share of it.
    """

    step: int
    loss: float | None = None
    avg_loss: float | None = None
    val_loss: float | None = None
    lr: float | None = None
    seconds: float | None = None
    elapsed: float | None = None
    images: int | None = None
    hours_left: float | None = None
    map50: float | None = None
    map50_95: float | None = None
    precision: float | None = None
    recall: float | None = None
    f1: float | None = None
    avg_iou: float | None = None


class Event(msgspec.Struct, kw_only=True):
    """Something that happened at a step: kind is one of EVENT_KINDS; line is 1-based."""

    kind: str
    step: int
    line: int
    detail: str = ""


#: nan: the smoothed (avg) train loss turned nan/inf (one event per onset); val-nan: a
#: validation loss did; restart: the step number went back; save: weights written;
#: load: weights read at start; error: an error line; resize: multi-scale resize.
EVENT_KINDS = ("nan", "val-nan", "restart", "save", "load", "error", "resize")


class ClassAP(msgspec.Struct, kw_only=True):
    """One class line of a darknet mAP block: `class_id = 0, name = fire, ap = 50.11%`."""

    class_id: int
    name: str
    ap: float | None  # None: the log printed something unreadable (counted in bad_values)
    tp: int | None = None
    fp: int | None = None


class MapBlock(msgspec.Struct, kw_only=True):
    """A darknet `-map` evaluation printed after iteration `step`."""

    step: int
    line: int
    iou_threshold: float
    map: float
    precision: float | None = None
    recall: float | None = None
    f1: float | None = None
    tp: int | None = None
    fp: int | None = None
    fn: int | None = None
    avg_iou: float | None = None
    classes: list[ClassAP] = msgspec.field(default_factory=list)


class LogStats(msgspec.Struct, kw_only=True):
    """What a parser saw besides metrics: sizes, skipped lines, how the file ends."""

    format: str = ""
    bytes: int = 0
    lines: int = 0
    header_lines: int = 0
    unknown_lines: int = 0
    unknown_samples: dict[str, int] = msgspec.field(default_factory=dict)
    truncated_last_line: str | None = None
    last_line: str = ""
    bad_values: int = 0
    missing_steps: int = 0
    batch: int | None = None
    base_lr: float | None = None
    resizes: int = 0
    saves: int = 0


#: What a parser yields.
Item = MetricRow | Event | MapBlock

_DIGITS = re.compile(r"\d+")


def number(text: bytes | str) -> float | None:
    """A printed number, with the nan/inf spellings of glibc and MSVC; None if unreadable.

    Example: `number(b"-nan")` is nan, `number("-1.#IND00")` is nan, `number("x")` is None.
    """
    try:
        return float(text)
    except ValueError:
        low = text.lower() if isinstance(text, str) else text.decode("ascii", "replace").lower()
        if "nan" in low or "ind" in low:
            return math.nan
        if "inf" in low:
            return -math.inf if low.strip().startswith("-") else math.inf
        return None


def finite(x: float | None) -> bool:
    """True for a number that is neither None, nan nor inf."""
    return x is not None and math.isfinite(x)


def note_unknown(stats: LogStats, line: str, limit: int = 40) -> None:
    """Count an unknown line under a key with digits folded, keeping at most `limit` keys."""
    key = _DIGITS.sub("#", line.strip())[:60]
    samples = stats.unknown_samples
    if key in samples:
        samples[key] += 1
    elif len(samples) < limit:
        samples[key] = 1
