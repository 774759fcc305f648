"""Rows -> Summary: what a person asks after a long run, computed in one streaming pass.

`SummaryBuilder.add(item)` takes every MetricRow / Event / MapBlock of one run in order;
`finish(stats, ...)` returns the `Summary`. Nothing is kept per row except the last 100
step times (for the projection) and the learning-rate change points (for the chart).

Definitions:
- loss: darknet's `avg` (smoothed) loss, else the summed train loss (Ultralytics).
- train time: the sum of darknet's per-iteration `seconds` (mAP evaluation and data
  loading pauses not included), or Ultralytics' `time` column at the last epoch.
- seconds per step: mean over the last 100 steps; projected time left =
  (max_steps - last step) x seconds per step.
- images/s: images gained between consecutive iterations / their seconds.
- NaN events: onsets of a non-finite loss (one per run of nan iterations).
"""

from __future__ import annotations

import math
from collections import deque

import msgspec

from pipeline.logs.rows import Event, Item, LogStats, MapBlock, MetricRow

#: How many error lines a summary keeps.
MAX_ERRORS = 5
#: Learning-rate change points kept for the chart (burn-in ramps make many).
MAX_LR_POINTS = 20000
#: A loss beyond this is no loss but a broken value (`-1e308`): left off the chart and out
#: of the minimum; mAP values outside 0..1 likewise.
LOSS_LIMIT = 1e15


def in_range(x: float | None, limit: float = LOSS_LIMIT) -> bool:
    """True for a finite number within ±`limit`. Example: `in_range(-1e308)` -> False."""
    return x is not None and math.isfinite(x) and abs(x) <= limit


class Summary(msgspec.Struct, kw_only=True):
    """One run at a glance; None where the log does not tell."""

    name: str
    source: str
    format: str
    unit: str
    #: The model the run used (args.yaml or run.json), e.g. "yolov8n"; None where not recorded.
    model: str | None = None
    #: A `train` run folder's status (running, finished, failed, stopped, killed).
    status: str | None = None
    steps_logged: int = 0
    first_step: int | None = None
    last_step: int | None = None
    loss_name: str = "loss"
    first_loss: float | None = None
    final_loss: float | None = None
    min_loss: float | None = None
    min_loss_step: int | None = None
    final_batch_loss: float | None = None
    final_val_loss: float | None = None
    loss_verdict: str = ""
    best_map50: float | None = None
    best_map50_step: int | None = None
    final_map50: float | None = None
    final_map50_step: int | None = None
    best_map50_95: float | None = None
    best_map50_95_step: int | None = None
    final_map50_95: float | None = None
    map_evaluations: int = 0
    best_map_block: MapBlock | None = None
    final_lr: float | None = None
    lr_schedule: list[tuple[int, float]] = msgspec.field(default_factory=list)
    nan_events: int = 0
    nan_steps: int = 0
    first_nan_step: int | None = None
    val_nan_events: int = 0
    restarts: int = 0
    restart_steps: list[int] = msgspec.field(default_factory=list)
    missing_steps: int = 0
    train_seconds: float | None = None
    seconds_per_step: float | None = None
    images: int | None = None
    images_per_second: float | None = None
    batch: int | None = None
    max_steps: int | None = None
    max_steps_source: str | None = None
    remaining_steps: int | None = None
    projected_seconds_left: float | None = None
    projected_total_seconds: float | None = None
    engine_hours_left: float | None = None
    saves: int = 0
    last_save: str | None = None
    #: A `train` run folder: the supervisor's notable events and its ETA predictions.
    run_events: list[dict] = msgspec.field(default_factory=list)
    eta_checks: list[dict] = msgspec.field(default_factory=list)
    #: A `train` run folder's attempts: what began each (start, resume, restart) and where.
    attempts: list[dict] = msgspec.field(default_factory=list)
    #: A `train` run folder's resource samples: median and peak of each figure.
    resources: list[dict] = msgspec.field(default_factory=list)
    #: Values left off the chart: infinite, beyond ±LOSS_LIMIT, or an mAP outside 0..1.
    chart_skipped: int = 0
    errors: list[str] = msgspec.field(default_factory=list)
    ended: str = ""
    lines: int = 0
    bytes: int = 0
    header_lines: int = 0
    unknown_lines: int = 0
    unknown_samples: dict[str, int] = msgspec.field(default_factory=dict)
    truncated_last_line: str | None = None
    bad_values: int = 0


def _main_loss(row: MetricRow) -> float | None:
    return row.avg_loss if row.avg_loss is not None else row.loss


class SummaryBuilder:
    """Accumulates one run. Example: `b = SummaryBuilder(); [b.add(x) for x in items]`."""

    def __init__(self) -> None:
        self.n = 0
        self.first: MetricRow | None = None
        self.last: MetricRow | None = None
        self.min_loss: tuple[float, int] | None = None
        self.best50: tuple[float, int] | None = None
        self.best5095: tuple[float, int] | None = None
        self.final50: tuple[float, int] | None = None
        self.final5095: float | None = None
        self.map_blocks = 0
        self.best_block: MapBlock | None = None
        self.nan_steps = 0
        self.events: dict[str, list[Event]] = {}
        self.event_counts: dict[str, int] = {}
        self.sum_seconds = 0.0
        self.has_seconds = False
        self.recent: deque[float] = deque(maxlen=100)
        self.img_gain = 0
        self.img_seconds = 0.0
        self.lr_points: list[tuple[int, float]] = []

    def add(self, item: Item) -> None:
        """Take one parser item."""
        if isinstance(item, MetricRow):
            self._row(item)
        elif isinstance(item, Event):
            self.event_counts[item.kind] = self.event_counts.get(item.kind, 0) + 1
            kept = self.events.setdefault(item.kind, [])
            if len(kept) < (MAX_ERRORS if item.kind == "error" else 1000):
                kept.append(item)
        elif isinstance(item, MapBlock):
            self.map_blocks += 1
            if self.best_block is None or item.map > self.best_block.map:
                self.best_block = item

    def _row(self, r: MetricRow) -> None:
        prev = self.last
        self.n += 1
        self.first = self.first or r
        self.last = r
        loss = _main_loss(r)
        if loss is not None and not math.isfinite(loss):
            self.nan_steps += 1
        elif in_range(loss) and (self.min_loss is None or loss < self.min_loss[0]):
            self.min_loss = (loss, r.step)
        if in_range(r.map50, 1.0):
            self.final50 = (r.map50, r.step)
            if self.best50 is None or r.map50 > self.best50[0]:
                self.best50 = (r.map50, r.step)
        if in_range(r.map50_95, 1.0):
            self.final5095 = r.map50_95
            if self.best5095 is None or r.map50_95 > self.best5095[0]:
                self.best5095 = (r.map50_95, r.step)
        if r.seconds is not None and math.isfinite(r.seconds) and r.seconds >= 0:
            self.has_seconds = True
            self.sum_seconds += r.seconds
            self.recent.append(r.seconds)
            if r.images is not None and r.seconds > 0:
                before = prev.images if prev is not None and prev.step == r.step - 1 else None
                if before is None and r.step == 1:
                    before = 0
                if before is not None and r.images > before:
                    self.img_gain += r.images - before
                    self.img_seconds += r.seconds
        lrs = self.lr_points
        if r.lr is not None and (not lrs or _changed(lrs[-1][1], r.lr)) and len(lrs) < MAX_LR_POINTS:
            lrs.append((r.step, r.lr))

    def finish(self, stats: LogStats, *, name: str, source: str, max_steps: int | None = None,
               max_steps_source: str | None = None) -> Summary:
        """The Summary of everything added, with the projection to `max_steps` if known."""
        first, last = self.first, self.last
        unit = "epoch" if stats.format.startswith("ultralytics") else "iteration"
        s = Summary(
            name=name, source=source, format=stats.format, unit=unit, steps_logged=self.n,
            lines=stats.lines, bytes=stats.bytes, header_lines=stats.header_lines,
            unknown_lines=stats.unknown_lines, truncated_last_line=stats.truncated_last_line,
            unknown_samples=dict(sorted(stats.unknown_samples.items(), key=lambda kv: -kv[1])[:5]),
            bad_values=stats.bad_values, missing_steps=stats.missing_steps, batch=stats.batch,
            map_evaluations=self.map_blocks, best_map_block=self.best_block,
            nan_steps=self.nan_steps, nan_events=self.event_counts.get("nan", 0),
            val_nan_events=self.event_counts.get("val-nan", 0),
            restarts=self.event_counts.get("restart", 0),
            restart_steps=[e.step for e in self.events.get("restart", [])],
            saves=self.event_counts.get("save", 0),
            errors=[f"line {e.line}: {e.detail}" for e in self.events.get("error", [])],
            max_steps=max_steps, max_steps_source=max_steps_source,
        )
        s.first_nan_step = self.events["nan"][0].step if "nan" in self.events else None
        s.last_save = self.events["save"][-1].detail if "save" in self.events else None
        if first is not None and last is not None:
            _fill_steps(s, self, first, last)
        s.loss_verdict = loss_verdict(s)
        s.ended = ending(s, stats.last_line)
        return s


def _changed(a: float, b: float) -> bool:
    return abs(a - b) > 1e-9 * max(abs(a), abs(b), 1e-12)


def _fill_steps(s: Summary, b: SummaryBuilder, first: MetricRow, last: MetricRow) -> None:
    s.first_step, s.last_step = first.step, last.step
    s.loss_name = "avg loss" if last.avg_loss is not None else "train loss"
    s.first_loss, s.final_loss = _main_loss(first), _main_loss(last)
    s.final_batch_loss = last.loss if last.avg_loss is not None else None
    s.final_val_loss = last.val_loss
    if b.min_loss:
        s.min_loss, s.min_loss_step = b.min_loss
    if b.best50:
        s.best_map50, s.best_map50_step = b.best50
    if b.final50:
        s.final_map50, s.final_map50_step = b.final50
    if b.best5095:
        s.best_map50_95, s.best_map50_95_step = b.best5095
    s.final_map50_95 = b.final5095
    s.final_lr = last.lr
    span = max(last.step - first.step, 1)
    s.lr_schedule = [(a, lr) for a, _, lr in lr_plateaus(b.lr_points, last.step, plateau_len(span))]
    s.images = last.images
    s.engine_hours_left = last.hours_left if last.hours_left and last.hours_left >= 0 else None
    if last.elapsed is not None:
        s.train_seconds = last.elapsed
    elif b.has_seconds:
        s.train_seconds = round(b.sum_seconds, 3)
    if b.recent:
        s.seconds_per_step = sum(b.recent) / len(b.recent)
    if b.img_seconds > 0:
        s.images_per_second = b.img_gain / b.img_seconds
    if s.max_steps is not None:
        s.remaining_steps = max(s.max_steps - last.step, 0)
        if s.seconds_per_step is not None:
            s.projected_seconds_left = s.remaining_steps * s.seconds_per_step
            if s.train_seconds is not None:
                s.projected_total_seconds = s.train_seconds + s.projected_seconds_left


def plateau_len(span: int) -> float:
    """Steps a learning rate must hold to count as a plateau: 2 % of the run, at least 2."""
    return max(0.02 * span, 2)


def lr_plateaus(points: list[tuple[int, float]], last_step: int, min_len: float
                ) -> list[tuple[int, int, float]]:
    """(start, end, lr) spans of a positive rate held for at least `min_len` steps.

    `points` are (step, lr) where the rate changed. Burn-in and warm-up ramps (everything
    before the rate first reaches its peak) give no span, even where the printed rate
    holds a while. Example: `lr_plateaus([(1, 0.0), (2, 0.001), (400, 0.0001)], 500, 10)`
    -> [(2, 400, 0.001), (400, 500, 0.0001)].
    """
    spans = []
    peak = max((lr for _, lr in points), default=0.0)
    first = next((i for i, (_, lr) in enumerate(points) if lr == peak), 0)
    for i, (start, lr) in enumerate(points[first:], start=first):
        end = points[i + 1][0] if i + 1 < len(points) else last_step
        if spans and lr == spans[-1][2] and start <= spans[-1][1]:  # same rate after a restart
            spans[-1] = (spans[-1][0], max(end, spans[-1][1]), lr)
        elif lr > 0 and end - start >= min_len:
            spans.append((start, end, lr))
    return spans


def loss_verdict(s: Summary) -> str:
    """One line: did the loss fall, and did it stay down?

    Example: "fell from 4113.84 to 2.00 (min 1.93 at iteration 6383) and stayed down".
    """
    unit = s.unit
    if s.first_loss is None or s.final_loss is None:
        return "no loss values in the log"
    if s.first_nan_step is not None:
        return f"turned nan/inf at {unit} {s.first_nan_step}"
    if s.min_loss is None:
        return "no finite loss values"
    first, final, low = s.first_loss, s.final_loss, s.min_loss
    if low >= first * 0.9:
        return f"did not fall: {first:.4g} at the start, {final:.4g} at the end"
    head = f"fell from {first:.4g} to {final:.4g} (min {low:.4g} at {unit} {s.min_loss_step})"
    if low > 0:  # compare on a log scale: losses fall by orders of magnitude
        first, final, low = math.log(first), math.log(final), math.log(low)
    if final <= low + 0.25 * (first - low):
        return head + " and stayed down"
    return head + ", then rose again"


def ending(s: Summary, last_line: str) -> str:
    """How the log ends: finished, interrupted, error, or still running/cut."""
    if s.errors:
        return "error: " + s.errors[-1].split(": ", 1)[-1][:160]
    if "^C" in last_line:
        return f"interrupted (^C) after {s.unit} {s.last_step}"
    if s.last_save and "_final" in s.last_save:
        return f"finished: {s.last_save}"
    if s.max_steps is not None and s.last_step is not None and s.last_step >= s.max_steps:
        return f"finished: {s.unit} {s.last_step} of {s.max_steps}"
    if s.last_step is None:
        return "no training steps"
    return f"log ends at {s.unit} {s.last_step} (stopped, cut, or still running)"
