"""matplotlib helpers the report charts share: headless pyplot, axis scales and ticks, a
curve drawn attempt by attempt (what a later attempt redid faded), the legend under the
axes, atomic PNG writes."""

from __future__ import annotations

import math
from bisect import bisect_left
from pathlib import Path

from pipeline.io import atomic_writer

#: Opacity of the steps a later attempt redid.
REDONE_ALPHA = 0.25


def finite_values(values: list[float]) -> list[float]:
    """The finite values of a list."""
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


def fit_y(ax, values: list[float]) -> None:
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


def segments(xs: list[float]) -> list[tuple[int, int]]:
    """[start, end) index ranges over which x grows: a new one starts wherever x goes back
    (a resume or restart). Example: `segments([1, 2, 3, 1, 2])` -> [(0, 3), (3, 5)]."""
    bounds = [0, *(i for i in range(1, len(xs)) if xs[i] <= xs[i - 1]), len(xs)]
    return [(a, b) for a, b in zip(bounds, bounds[1:], strict=False) if b > a]


def split_redone(xs: list[float], ys: list[float]) -> tuple[tuple[list, list], tuple[list, list]]:
    """((kept x, y), (redone x, y)), each one line with nan between attempts.

    A point is redone when a later attempt started at or before its step; a redone stretch
    starts at its attempt's last kept point, so each attempt stays one unbroken line.
    Example: attempts over steps 1-59, 1-112, 101-200 keep 1-100 and 101-200 and fade
    1-59 and 100-112.
    """
    kept: tuple[list, list] = ([], [])
    redone: tuple[list, list] = ([], [])
    spans = segments(xs)
    later, lows = math.inf, []  # the lowest start of the attempts after each one
    for a, _ in reversed(spans):
        lows.append(later)
        later = min(later, xs[a])
    for (a, b), low in zip(spans, reversed(lows), strict=True):
        j = bisect_left(xs, low, a, b)
        _extend(kept, xs[a:j], ys[a:j])
        if j < b:
            k = max(j - 1, a)
            _extend(redone, xs[k:b], ys[k:b])
    return kept, redone


def _extend(line: tuple[list, list], xs: list, ys: list) -> None:
    if xs:
        if line[0]:
            line[0].append(math.nan)
            line[1].append(math.nan)
        line[0].extend(xs)
        line[1].extend(ys)


def attempt_plot(ax, xs: list[float], ys: list[float], **style) -> tuple:
    """Plot a curve attempt by attempt, what later attempts redid faded.

    Returns (the kept line, the faded line or None).
    """
    (kept_x, kept_y), (gone_x, gone_y) = split_redone(xs, ys)
    (line,) = ax.plot(kept_x, kept_y, **style)
    if not gone_x:
        return line, None
    faded = {**style, "alpha": REDONE_ALPHA, "label": None}
    (gone,) = ax.plot(gone_x, gone_y, **faded)
    return line, gone


def redone_handle(color: str = "#12306b"):
    """The legend entry of the faded stretches."""
    from matplotlib.lines import Line2D

    return Line2D([], [], color=color, alpha=REDONE_ALPHA, lw=2.5,
                  label="faded: steps a later attempt redid")


def legend_below(fig, ax, handles: list) -> None:
    """The legend under the axes (the axes are laid out above it), never over a curve."""
    legend = ax.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 0.005),
                       bbox_transform=fig.transFigure, ncol=min(len(handles), 3), fontsize=8,
                       frameon=False)
    legend.set_in_layout(False)
    fig.tight_layout()
    height = legend.get_window_extent(fig.canvas.get_renderer()).height / fig.bbox.height
    fig.tight_layout(rect=(0, min(height + 0.01, 0.6), 1, 1))


def save_png(fig, path: str | Path) -> None:
    """Write a figure as PNG atomically. Example: `save_png(fig, "chart.png")`."""
    with atomic_writer(path, "wb") as f:
        fig.savefig(f, format="png")
