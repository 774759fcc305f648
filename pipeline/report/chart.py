"""chart.png: loss over steps with mAP on a second axis, events marked, LR plateaus shaded.

`Series` keeps what a chart needs from one run in bounded memory (every n-th row, n
doubling past `LIMIT` points; mAP points, NaN onsets and restarts in full).
`draw_run` draws one run, `draw_comparison` several. matplotlib runs headless (Agg).
A chart annotates at most `MAX_MARKS` restarts, NaN onsets and learning-rate plateaus
(a log with ~900 restarts took a minute to draw one line and label each); the legend
and a note say how many were left out.
"""

from __future__ import annotations

import math
from pathlib import Path

from pipeline.io import atomic_writer
from pipeline.logs.rows import Event, Item, MetricRow
from pipeline.report.summary import Summary, lr_plateaus, plateau_len

#: Rows kept per series before thinning to every other one.
LIMIT = 20000
#: At most this many restart / NaN lines and learning-rate labels on a chart.
MAX_MARKS = 20
_SHADES = ("#e8eef7", "#f7efe2")


class Series:
    """Chart data of one run. Example: `s = Series(); [s.add(x) for x in items]`."""

    def __init__(self) -> None:
        self.stride, self._seen = 1, 0
        self.x: list[float] = []
        self.loss: list[float] = []
        self.avg: list[float] = []
        self.val: list[float] = []
        self.maps: list[tuple[int, float, float]] = []
        self.nans: list[int] = []
        self.restarts: list[tuple[int, str]] = []

    def add(self, item: Item) -> None:
        """Take one parser item."""
        if isinstance(item, MetricRow):
            if item.map50 is not None or item.map50_95 is not None:
                self.maps.append((item.step, _f(item.map50), _f(item.map50_95)))
            self._seen += 1
            if (self._seen - 1) % self.stride:
                return
            self._point(item.step, _f(item.loss), _f(item.avg_loss), _f(item.val_loss))
            if len(self.x) > 2 * LIMIT:
                for name in ("x", "loss", "avg", "val"):
                    setattr(self, name, getattr(self, name)[::2])
                self.stride *= 2
        elif isinstance(item, Event) and item.kind == "nan":
            self.nans.append(item.step)
        elif isinstance(item, Event) and item.kind == "restart":
            self.restarts.append((item.step, item.detail))
            self._point(item.step, math.nan, math.nan, math.nan)  # breaks the lines

    def _point(self, x: float, loss: float, avg: float, val: float) -> None:
        self.x.append(x)
        self.loss.append(loss)
        self.avg.append(avg)
        self.val.append(val)

    def main_loss(self) -> list[float]:
        """The smoothed loss where the log has one, else the train loss."""
        return self.avg if any(not math.isnan(v) for v in self.avg) else self.loss


def _f(x: float | None) -> float:
    return math.nan if x is None else x


def _finite(values: list[float]) -> list[float]:
    return [v for v in values if math.isfinite(v)]


def pyplot():
    """matplotlib.pyplot on the headless Agg backend (imported on first use)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _log_scale(values: list[float]) -> bool:
    pos = [v for v in values if v > 0]
    return bool(pos) and max(pos) / min(pos) > 100


def _fit_y(ax, values: list[float]) -> None:
    """Log scale when the loss spans orders of magnitude; limits that suit the scale (a
    log axis gets a positive lower limit, so matplotlib has nothing to warn about)."""
    if _log_scale(values):
        ax.set_yscale("log")
        pos = [v for v in values if v > 0]
        ax.set_ylim(min(pos) * 0.8, max(pos) * 1.15)
    elif values:
        ax.set_ylim(min(0.0, min(values) * 1.15), max(max(values) * 1.15, 1e-9))


def integer_ticks(axis) -> None:
    """Whole-number ticks (iterations, epochs, counts). Example: `integer_ticks(ax.xaxis)`."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def pick_evenly(items: list, n: int) -> list:
    """At most `n` of `items`, evenly spaced, first and last kept.

    Example: `pick_evenly(list(range(10)), 3)` -> [0, 4, 9].
    """
    if len(items) <= n:
        return list(items)
    if n <= 1:
        return items[:n]
    return [items[round(i * (len(items) - 1) / (n - 1))] for i in range(n)]


def _plateaus(ax, plateaus: list[tuple[int, int, float]], first: int, span: int) -> int:
    """Shade every plateau; label at most MAX_MARKS, left to right, each with room for its
    text. Returns how many plateaus got no label."""
    style = {"transform": ax.get_xaxis_transform(), "va": "top", "fontsize": 8.5,
             "color": "#333333", "bbox": {"boxstyle": "round,pad=0.2", "fc": "white",
                                          "ec": "none", "alpha": 0.75}}
    for i, (start, end, _lr) in enumerate(plateaus):
        ax.axvspan(start, end, color=_SHADES[i % 2], zorder=0, lw=0)
    room = 0.09 * span  # about the width of one label: closer labels would overlap
    labelled, last = 0, -math.inf
    if plateaus and plateaus[0][0] - first >= room:
        ax.text(first + 0.005 * span, 0.985, "lr ramp", **style)
        last = first
    for start, _end, lr in plateaus:
        if start - last >= room and labelled < MAX_MARKS:
            ax.text(start + 0.005 * span, 0.985, f"lr {lr:g}", **style)
            labelled, last = labelled + 1, start
    return len(plateaus) - labelled


def _event_lines(ax, steps: list[int], label: str, **style) -> list:
    """One vertical line per event, at most MAX_MARKS (evenly picked); the legend entry
    says how many were drawn."""
    shown = pick_evenly(steps, MAX_MARKS)
    name = label if len(shown) == len(steps) else f"{label} ({len(shown)} of {len(steps)} shown)"
    lines = [ax.axvline(step, label=name if j == 0 else None, **style) for j, step in enumerate(shown)]
    return lines[:1]


#: Supervisor events of a `train` run folder drawn on its chart, by group.
WATCHDOG_KINDS = ("nan", "explosion", "stall", "crashed")
CONTINUE_KINDS = ("resume", "restart")


def _supervisor_lines(ax, events: list[dict]) -> list:
    """Watchdog findings and resumes/restarts of a `train` run, where they happened."""
    handles = []
    for kinds, label, style in ((WATCHDOG_KINDS, "watchdog: " + "/".join(WATCHDOG_KINDS),
                                 {"color": "#e377c2", "lw": 1.6, "ls": "-."}),
                                (CONTINUE_KINDS, "resume / restart",
                                 {"color": "#17becf", "lw": 1.4, "ls": ":"})):
        steps = [e["step"] for e in events if e["kind"] in kinds and e.get("step") is not None]
        if steps:
            handles += _event_lines(ax, steps, label, **style)
    return handles


def run_figure(series: Series, summary: Summary, lr_points: list[tuple[int, float]]):
    """One run's chart as a matplotlib figure (`draw_run` saves it)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(11, 5.6), dpi=100)
    first = summary.first_step or 0
    span = max((summary.last_step or 1) - first, 1)
    plateaus = lr_plateaus(lr_points, summary.last_step or 0, plateau_len(span))
    unlabelled = _plateaus(ax, plateaus, first, span)
    darknet = summary.unit == "iteration"
    if darknet:
        ax.plot(series.x, series.loss, color="#7f93b5", lw=0.8, alpha=0.9, label="loss (batch)")
        ax.plot(series.x, series.avg, color="#12306b", lw=1.8, label="avg loss")
    else:
        ax.plot(series.x, series.loss, color="#1f4e9c", lw=1.6, marker=".", label="train loss")
        ax.plot(series.x, series.val, color="#c05a00", lw=1.2, ls="--", label="val loss")
    _fit_y(ax, _finite(series.loss + series.avg + series.val))
    integer_ticks(ax.xaxis)
    ax.set_xlabel(summary.unit)
    ax.set_ylabel("loss" + (" (log scale)" if ax.get_yscale() == "log" else ""))
    handles = ax.get_lines()[:]
    handles += _event_lines(ax, series.nans, "NaN loss", color="#d62728", lw=1.4)
    handles += _event_lines(ax, [s for s, _ in series.restarts], "restart", color="#7b3294",
                            lw=1.4, ls="--")
    handles += _supervisor_lines(ax, summary.run_events)
    if series.maps:
        handles += _map_axis(ax, series, summary)
    if unlabelled:
        ax.text(0.995, 0.015, f"{unlabelled} of {len(plateaus)} lr plateaus not labelled",
                transform=ax.transAxes, ha="right", fontsize=8, color="#555555")
    ax.legend(handles=handles, loc="center right", fontsize=8, framealpha=0.9)
    ax.set_title(_title(summary), fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def _map_axis(ax, series: Series, summary: Summary) -> list:
    ax2 = ax.twinx()
    xs = [m[0] for m in series.maps]
    handles = []
    for k, label, color in ((1, "mAP@0.5", "#2ca02c"), (2, "mAP@0.5:0.95", "#8c564b")):
        ys = [m[k] * 100 for m in series.maps]
        if _finite(ys):
            (h,) = ax2.plot(xs, ys, color=color, marker="o", ms=3, lw=1.3, label=label)
            handles.append(h)
    ax2.set_ylabel("mAP (%)")
    ax2.set_ylim(0, max(100 * max(_finite([m[1] for m in series.maps] + [0.0])) * 1.25, 5))
    if summary.best_map50 is not None:
        ax2.plot([summary.best_map50_step], [summary.best_map50 * 100], marker="*", ms=14,
                 color="#2ca02c", mec="black", zorder=5)
        ax2.annotate(f"best {summary.best_map50:.1%} @ {summary.best_map50_step}",
                     (summary.best_map50_step, summary.best_map50 * 100),
                     textcoords="offset points", xytext=(-10, 10), ha="right", fontsize=9)
    return handles


def draw_run(series: Series, summary: Summary, lr_points: list[tuple[int, float]],
             path: str | Path) -> None:
    """Write one run's chart to `path` (PNG)."""
    fig = run_figure(series, summary, lr_points)
    try:
        save_png(fig, path)
    finally:
        pyplot().close(fig)


def _title(s: Summary) -> str:
    bits = [f"{s.name}  ({s.format}, {s.last_step or 0} {s.unit}s)"]
    if s.final_loss is not None:
        bits.append(f"final {s.loss_name} {s.final_loss:.4g}")
    if s.best_map50 is not None:
        bits.append(f"best mAP@0.5 {s.best_map50:.1%} at {s.best_map50_step}")
    if s.nan_events:
        bits.append(f"NaN from {s.first_nan_step}")
    if s.restarts:
        bits.append(f"{s.restarts} restart(s)")
    return " | ".join(bits)


def comparison_figure(runs: list[tuple[Series, Summary]]):
    """Several runs: loss on top, mAP@0.5 below when any run logged mAP (else loss only,
    saying so). `draw_comparison` saves it."""
    plt = pyplot()
    with_map = any(_finite([m[1] for m in series.maps]) for series, _ in runs)
    if with_map:
        fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 7.5), dpi=100)
    else:
        fig, top = plt.subplots(figsize=(11, 4.8), dpi=100)
    units = " / ".join(sorted({s.unit for _, s in runs}))
    values: list[float] = []
    any_nan = False
    for i, (series, s) in enumerate(runs):
        color = f"C{i % 10}"
        loss = series.main_loss()
        values += _finite(loss)
        top.plot(series.x, loss, color=color, lw=1.3, label=f"{s.name} ({s.loss_name})")
        for step in pick_evenly(series.nans, MAX_MARKS):
            top.axvline(step, color=color, lw=1, ls=":")
        any_nan = any_nan or bool(series.nans)
        if with_map and series.maps:
            bottom.plot([m[0] for m in series.maps], [m[1] * 100 for m in series.maps],
                        color=color, marker="o" if len(series.maps) < 60 else None, ms=3,
                        lw=1.3, label=s.name)
    _fit_y(top, values)
    top.set_ylabel("loss" + (" (log scale)" if top.get_yscale() == "log" else ""))
    top.legend(fontsize=8)
    title = "loss per run" + (" (dotted lines: NaN onsets)" if any_nan else "")
    top.set_title(title + ("" if with_map else "; no run logged mAP"), fontsize=10)
    axes = [top]
    if with_map:
        bottom.set_ylabel("mAP@0.5 (%)")
        bottom.set_title("mAP@0.5 per run", fontsize=10)
        bottom.legend(fontsize=8)
        axes.append(bottom)
    for ax in axes:
        ax.set_xlabel(units)
        integer_ticks(ax.xaxis)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def draw_comparison(runs: list[tuple[Series, Summary]], path: str | Path) -> None:
    """Write one chart comparing several runs to `path` (PNG)."""
    fig = comparison_figure(runs)
    try:
        save_png(fig, path)
    finally:
        pyplot().close(fig)


def save_png(fig, path: str | Path) -> None:
    """Write a figure as PNG atomically. Example: `save_png(fig, "chart.png")`."""
    with atomic_writer(path, "wb") as f:
        fig.savefig(f, format="png")
