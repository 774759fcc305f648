"""chart.png: loss over steps with mAP on a second axis, events marked, LR plateaus shaded.

`Series` keeps what a chart needs from one run in bounded memory (every n-th row, n
doubling past `LIMIT` points; mAP points, NaN onsets and restarts in full).
`draw_run` draws one run, `draw_comparison` several (one column of panels per unit:
epochs and iterations never share an axis); the matplotlib helpers are in plot.py. A
chart annotates at most `MAX_MARKS` restarts, NaN onsets and learning-rate plateaus (a
log with ~900 restarts took a minute to draw one line and label each); the legend and a
note say how many were left out.

After a resume or restart a log goes back over steps it had logged: each attempt is drawn
as its own stretch of the line (a new one wherever the step goes back), and what a later
attempt redid is faded (`split_redone`). Legends sit under the axes, never on a curve.
"""

from __future__ import annotations

import math
from pathlib import Path

from pipeline.logs.rows import Event, Item, MetricRow
from pipeline.report.markdown import pct, run_label
from pipeline.report.plot import (
    attempt_plot,
    finite_values,
    fit_y,
    integer_ticks,
    legend_below,
    pick_evenly,
    pyplot,
    redone_handle,
    save_png,
)
from pipeline.report.summary import LOSS_LIMIT, Summary, in_range, lr_plateaus, plateau_len

#: Rows kept per series before thinning to every other one.
LIMIT = 20000
#: At most this many restart / NaN lines and learning-rate labels on a chart.
MAX_MARKS = 20
_SHADES = ("#e8eef7", "#f7efe2")


class Series:
    """Chart data of one run. Example: `s = Series(); [s.add(x) for x in items]`.

    Values that cannot be drawn (infinite, beyond ±LOSS_LIMIT, an mAP outside 0..1) become
    gaps and are counted in `skipped`; nan stays a gap (the NaN events say where).
    """

    def __init__(self) -> None:
        self.stride, self._seen, self.skipped = 1, 0, 0
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
                self.maps.append((item.step, self._clean(item.map50, 1.0), self._clean(item.map50_95, 1.0)))
            values = (self._clean(item.loss), self._clean(item.avg_loss), self._clean(item.val_loss))
            self._seen += 1
            if (self._seen - 1) % self.stride:
                return
            for name, value in zip(("x", "loss", "avg", "val"), (item.step, *values), strict=True):
                getattr(self, name).append(value)
            if len(self.x) > 2 * LIMIT:
                for name in ("x", "loss", "avg", "val"):
                    setattr(self, name, getattr(self, name)[::2])
                self.stride *= 2
        elif isinstance(item, Event) and item.kind == "nan":
            self.nans.append(item.step)
        elif isinstance(item, Event) and item.kind == "restart":
            self.restarts.append((item.step, item.detail))

    def _clean(self, x: float | None, limit: float = LOSS_LIMIT) -> float:
        """`x` as drawn: nan for None or nan; nan, counted in `skipped`, when out of range."""
        if x is None or math.isnan(x):
            return math.nan
        if not in_range(x, limit):
            self.skipped += 1
            return math.nan
        return x

    def main_loss(self) -> list[float]:
        """The smoothed loss where the log has one, else the train loss."""
        return self.avg if any(not math.isnan(v) for v in self.avg) else self.loss


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


#: Supervisor findings of a `train` run folder drawn on its chart.
WATCHDOG_KINDS = ("nan", "explosion", "stall", "crashed")
#: How an attempt that began with a `resume` command or a watchdog restart is marked.
CAUSE_MARKS = (("resume", "resumed (resume command)", {"color": "#1a9850", "lw": 1.8, "ls": "-"}),
               ("restart", "watchdog restart", {"color": "#e66101", "lw": 1.8, "ls": (0, (6, 2))}))


def _supervisor_lines(ax, events: list[dict]) -> list:
    """The watchdog's findings in a `train` run, where they happened."""
    steps = [e["step"] for e in events if e["kind"] in WATCHDOG_KINDS and e.get("step") is not None]
    if not steps:
        return []
    return _event_lines(ax, steps, "watchdog: " + "/".join(WATCHDOG_KINDS), color="#e377c2",
                        lw=1.6, ls="-.")


def _attempt_marks(ax, series: Series, summary: Summary) -> list:
    """Where each attempt began: by a `resume` command or a watchdog restart (a run folder),
    else wherever the log's step went back."""
    if not summary.attempts:
        return _event_lines(ax, [s for s, _ in series.restarts], "restart", color="#7b3294",
                            lw=1.4, ls="--")
    handles = []
    for cause, label, style in CAUSE_MARKS:
        steps = [a["step"] for a in summary.attempts if a["cause"] == cause and a["step"] is not None]
        if steps:
            handles += _event_lines(ax, steps, label, **style)
    return handles


def _loss_lines(ax, series: Series, summary: Summary) -> list:
    """The loss curves, attempt by attempt; their legend handles."""
    if summary.unit == "iteration":
        curves = ((series.loss, {"color": "#7f93b5", "lw": 0.8, "label": "loss (batch)"}),
                  (series.avg, {"color": "#12306b", "lw": 1.8, "label": "avg loss"}))
    else:
        curves = ((series.loss, {"color": "#1f4e9c", "lw": 1.6, "marker": ".", "label": "train loss"}),
                  (series.val, {"color": "#c05a00", "lw": 1.2, "ls": "--", "label": "val loss"}))
    handles, redone = [], False
    for ys, style in curves:
        line, faded = attempt_plot(ax, series.x, ys, **style)
        handles.append(line)
        redone = redone or faded is not None
    return handles + ([redone_handle()] if redone else [])


def run_figure(series: Series, summary: Summary, lr_points: list[tuple[int, float]]):
    """One run's chart as a matplotlib figure (`draw_run` saves it)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(11, 6.2), dpi=100)
    first = summary.first_step or 0
    span = max((summary.last_step or 1) - first, 1)
    plateaus = lr_plateaus(lr_points, summary.last_step or 0, plateau_len(span))
    unlabelled = _plateaus(ax, plateaus, first, span)
    handles = _loss_lines(ax, series, summary)
    fit_y(ax, finite_values(series.loss + series.avg + series.val))
    integer_ticks(ax.xaxis)
    ax.set_xlabel(summary.unit)
    ax.set_ylabel("loss" + (" (log scale)" if ax.get_yscale() == "log" else ""))
    handles += _event_lines(ax, series.nans, "NaN loss", color="#d62728", lw=1.4)
    handles += _attempt_marks(ax, series, summary)
    handles += _supervisor_lines(ax, summary.run_events)
    if series.maps:
        handles += _map_axis(ax, series, summary)
    if unlabelled:
        ax.text(1.0, -0.09, f"{unlabelled} of {len(plateaus)} lr plateaus not labelled",
                transform=ax.transAxes, ha="right", va="top", fontsize=8, color="#555555")
    ax.set_title(_title(summary), fontsize=10)
    ax.grid(alpha=0.3)
    legend_below(fig, ax, handles)
    return fig


def _map_axis(ax, series: Series, summary: Summary) -> list:
    ax2 = ax.twinx()
    xs = [m[0] for m in series.maps]
    handles = []
    for k, label, color in ((1, "mAP@0.5", "#2ca02c"), (2, "mAP@0.5:0.95", "#8c564b")):
        ys = [m[k] * 100 for m in series.maps]
        if finite_values(ys):
            line, _ = attempt_plot(ax2, xs, ys, color=color, marker="o", ms=3, lw=1.3, label=label)
            handles.append(line)
    ax2.set_ylabel("mAP (%)")
    ax2.set_ylim(0, max(100 * max(finite_values([m[1] for m in series.maps] + [0.0])) * 1.25, 5))
    if summary.best_map50 is not None:
        ax2.plot([summary.best_map50_step], [summary.best_map50 * 100], marker="*", ms=14,
                 color="#2ca02c", mec="black", zorder=5)
        ax2.annotate(f"best {pct(summary.best_map50)} @ {summary.best_map50_step}",
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
    steps = f"{s.last_step or 0} {s.unit}s"
    if s.status == "running":
        head = f"{s.name}: STILL RUNNING, {steps} so far ({run_label(s)})"
    else:
        head = f"{s.name}  ({run_label(s)}, {steps})"
    bits = [head]
    if s.final_loss is not None:
        bits.append(f"{'latest' if s.status == 'running' else 'final'} {s.loss_name} {s.final_loss:.4g}")
    if s.best_map50 is not None:
        bits.append(f"best mAP@0.5 {pct(s.best_map50)} at {s.best_map50_step}")
    if s.nan_events:
        bits.append(f"NaN from {s.first_nan_step}")
    bits += _restart_words(s)
    if s.chart_skipped:
        bits.append(f"{s.chart_skipped} out-of-range value(s) not drawn")
    return " | ".join(bits)


def _restart_words(s: Summary) -> list[str]:
    """How the run went on after stopping. Example: a run folder's ["1 watchdog restart",
    "2 resumes"]; a bare log's ["3 restart(s)"] (the step went back 3 times)."""
    if not s.attempts:
        return [f"{s.restarts} restart(s)"] if s.restarts else []
    out = []
    for cause, word in (("restart", "watchdog restart"), ("resume", "resume")):
        n = sum(a["cause"] == cause for a in s.attempts)
        if n:
            out.append(f"{n} {word}{'s' if n > 1 else ''}")
    return out


def comparison_figure(runs: list[tuple[Series, Summary]]):
    """Several runs: loss on top, mAP@0.5 below when any run logged mAP (else loss only,
    saying so); one column of panels per unit, so epochs and iterations never share an
    axis. `draw_comparison` saves it."""
    plt = pyplot()
    units = list(dict.fromkeys(s.unit for _, s in runs))
    with_map = any(finite_values([m[1] for m in series.maps]) for series, _ in runs)
    fig, axes = plt.subplots(2 if with_map else 1, len(units), squeeze=False, dpi=100,
                             figsize=(11 if len(units) == 1 else 15, 8 if with_map else 5.4))
    handles: list = []
    redone = False
    for col, unit in enumerate(units):
        group = [(f"C{i % 10}", series, s) for i, (series, s) in enumerate(runs) if s.unit == unit]
        lines, faded = _compare_loss(axes[0][col], group, unit, with_map)
        handles, redone = handles + lines, redone or faded
        if with_map:
            _compare_map(axes[1][col], group, unit)
    if redone:
        handles.append(redone_handle("#555555"))
    if len(units) > 1:
        fig.suptitle("runs counted in " + " and ".join(f"{u}s" for u in units)
                     + ": one column per unit (not comparable step for step)", fontsize=11)
    legend_below(fig, axes[0][0], handles)
    return fig


def _run_name(s: Summary) -> str:
    return f"{s.name} ({s.loss_name}{', still running' if s.status == 'running' else ''})"


def _compare_loss(ax, group: list[tuple[str, Series, Summary]], unit: str,
                  with_map: bool) -> tuple[list, bool]:
    """One panel of loss curves (the runs counted in `unit`): (legend handles, whether a
    stretch is faded as redone)."""
    values: list[float] = []
    handles: list = []
    redone = False
    for color, series, s in group:
        loss = series.main_loss()
        values += finite_values(loss)
        line, faded = attempt_plot(ax, series.x, loss, color=color, lw=1.3, label=_run_name(s))
        handles.append(line)
        redone = redone or faded is not None
        for step in pick_evenly(series.nans, MAX_MARKS):
            ax.axvline(step, color=color, lw=1, ls=":")
    fit_y(ax, values)
    ax.set_ylabel("loss" + (" (log scale)" if ax.get_yscale() == "log" else ""))
    title = f"loss per {unit}" + (" (dotted lines: NaN onsets)" if any(g[1].nans for g in group) else "")
    ax.set_title(title + ("" if with_map else "; no run logged mAP"), fontsize=10)
    _step_axis(ax, unit)
    return handles, redone


def _compare_map(ax, group: list[tuple[str, Series, Summary]], unit: str) -> None:
    """One panel of mAP@0.5 curves (the runs counted in `unit`)."""
    drawn = [g for g in group if finite_values([m[1] for m in g[1].maps])]
    for color, series, _ in drawn:
        attempt_plot(ax, [m[0] for m in series.maps], [m[1] * 100 for m in series.maps], color=color,
                     marker="o" if len(series.maps) < 60 else None, ms=3, lw=1.3)
    ax.set_ylabel("mAP@0.5 (%)")
    ax.set_title(f"mAP@0.5 per {unit}" + ("" if drawn else ": none of these runs logged mAP"),
                 fontsize=10)
    _step_axis(ax, unit)


def _step_axis(ax, unit: str) -> None:
    ax.set_xlabel(unit)
    integer_ticks(ax.xaxis)
    ax.grid(alpha=0.3)


def draw_comparison(runs: list[tuple[Series, Summary]], path: str | Path) -> None:
    """Write one chart comparing several runs to `path` (PNG)."""
    fig = comparison_figure(runs)
    try:
        save_png(fig, path)
    finally:
        pyplot().close(fig)
