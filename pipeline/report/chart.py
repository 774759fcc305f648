"""chart.png: loss over steps with mAP on a second axis, events marked, LR plateaus shaded.

`Series` keeps what a chart needs from one run in bounded memory (every n-th row, n
doubling past `LIMIT` points; mAP points, NaN onsets and restarts in full).
`draw_run` draws one run, `draw_comparison` several. matplotlib runs headless (Agg).
"""

from __future__ import annotations

import math
from pathlib import Path

from pipeline.io import atomic_writer
from pipeline.logs.rows import Event, Item, MetricRow
from pipeline.report.summary import Summary, lr_plateaus, plateau_len

#: Rows kept per series before thinning to every other one.
LIMIT = 20000
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


def draw_run(series: Series, summary: Summary, lr_points: list[tuple[int, float]],
             path: str | Path) -> None:
    """Write one run's chart to `path` (PNG)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(11, 5.6), dpi=100)
    span = max((summary.last_step or 1) - (summary.first_step or 0), 1)
    plateaus = lr_plateaus(lr_points, summary.last_step or 0, plateau_len(span))
    for i, (start, end, lr) in enumerate(plateaus):
        ax.axvspan(start, end, color=_SHADES[i % 2], zorder=0, lw=0)
        ax.text(start + 0.005 * span, 0.985, f"lr {lr:g}", transform=ax.get_xaxis_transform(),
                va="top", fontsize=8, color="#555555")
    if plateaus and plateaus[0][0] - (summary.first_step or 0) >= 0.02 * span:
        ax.text((summary.first_step or 0) + 0.005 * span, 0.985, "lr ramp",
                transform=ax.get_xaxis_transform(), va="top", fontsize=8, color="#555555")
    darknet = summary.unit == "iteration"
    if darknet:
        ax.plot(series.x, series.loss, color="#9db4d3", lw=0.6, label="loss (batch)")
        ax.plot(series.x, series.avg, color="#1f4e9c", lw=1.6, label="avg loss")
    else:
        ax.plot(series.x, series.loss, color="#1f4e9c", lw=1.6, marker=".", label="train loss")
        ax.plot(series.x, series.val, color="#c05a00", lw=1.2, ls="--", label="val loss")
    shown = _finite(series.loss + series.avg + series.val)
    if _log_scale(shown):
        ax.set_yscale("log")
    if shown:
        low, high = min(shown), max(shown)
        ax.set_ylim(low * 0.8 if ax.get_yscale() == "log" else 0, high * 1.15)
    ax.set_xlabel(summary.unit)
    ax.set_ylabel("loss" + (" (log scale)" if ax.get_yscale() == "log" else ""))
    handles = ax.get_lines()[:]
    for j, step in enumerate(series.nans):
        h = ax.axvline(step, color="#d62728", lw=1.4, label="NaN loss" if j == 0 else None)
        handles += [h] if j == 0 else []
    for j, (step, _detail) in enumerate(series.restarts):
        h = ax.axvline(step, color="#7b3294", lw=1.4, ls="--", label="restart" if j == 0 else None)
        handles += [h] if j == 0 else []
    if series.maps:
        ax2 = ax.twinx()
        xs = [m[0] for m in series.maps]
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
    ax.legend(handles=handles, loc="center right", fontsize=8, framealpha=0.9)
    ax.set_title(_title(summary), fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_png(fig, path)
    plt.close(fig)


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


def draw_comparison(runs: list[tuple[Series, Summary]], path: str | Path) -> None:
    """Write one chart comparing several runs: loss on top, mAP@0.5 below."""
    plt = pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 7.5), dpi=100, sharex=False)
    units = sorted({s.unit for _, s in runs})
    values: list[float] = []
    for i, (series, s) in enumerate(runs):
        color = f"C{i % 10}"
        loss = series.main_loss()
        values += _finite(loss)
        top.plot(series.x, loss, color=color, lw=1.3, label=f"{s.name} ({s.loss_name})")
        for step in series.nans:
            top.axvline(step, color=color, lw=1, ls=":")
        if series.maps:
            bottom.plot([m[0] for m in series.maps], [m[1] * 100 for m in series.maps],
                        color=color, marker="o" if len(series.maps) < 60 else None, ms=3,
                        lw=1.3, label=s.name)
    if _log_scale(values):
        top.set_yscale("log")
    top.set_ylabel("loss")
    top.legend(fontsize=8)
    top.set_title("loss per run (dotted lines: NaN onsets)", fontsize=10)
    bottom.set_ylabel("mAP@0.5 (%)")
    bottom.set_title("mAP@0.5 per run", fontsize=10)
    if bottom.get_lines():
        bottom.legend(fontsize=8)
    for ax in (top, bottom):
        ax.set_xlabel(" / ".join(units))
        ax.grid(alpha=0.3)
    fig.tight_layout()
    save_png(fig, path)
    plt.close(fig)


def save_png(fig, path: str | Path) -> None:
    """Write a figure as PNG atomically. Example: `save_png(fig, "chart.png")`."""
    with atomic_writer(path, "wb") as f:
        fig.savefig(f, format="png")
