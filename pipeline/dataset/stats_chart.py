"""`stats --chart`: one PNG with every split side by side (matplotlib, headless).

Panels: images per class (horizontal bars, names readable; past `TOP_CLASSES` classes the
rest is one "others" bar at their median), boxes per image, box size and box aspect
`w/h` on a log axis labelled with the same ratios the text prints. Every panel names its
axes; counts get whole-number ticks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.dataset.stats import SIZE_BINS
from pipeline.errors import UserError

#: Classes drawn by name; the rest become one "others" bar.
TOP_CLASSES = 25
_ASPECT_TICKS = (1 / 8, 1 / 4, 1 / 2, 1, 2, 4, 8)


def class_rows(stats: dict, top: int = TOP_CLASSES) -> tuple[list[str], dict[str, list[float]]]:
    """Bar labels and, per split, the images per class: the `top` classes with the most
    images over all splits, then "N others (median)" when there are more.

    Example: 80 classes -> 25 names and "55 others (median)", one value list per split.
    """
    splits = stats["splits"]
    keys = list(next(iter(splits.values()))["per_class"])
    total = {k: sum(s["per_class"].get(k, {}).get("images", 0) for s in splits.values())
             for k in keys}
    order = sorted(keys, key=lambda k: -total[k])
    shown, rest = order[:top], order[top:]
    names = stats.get("names", {})
    labels = [str(names.get(k, k))[:28] for k in shown]
    values = {split: [s["per_class"].get(k, {}).get("images", 0) for k in shown]
              for split, s in splits.items()}
    if rest:
        labels.append(f"{len(rest)} others (median)")
        for split, s in splits.items():
            values[split].append(float(np.median([s["per_class"].get(k, {}).get("images", 0)
                                                  for k in rest])))
    return labels, values


def draw_chart(stats: dict, path: str | Path) -> None:
    """Write the PNG for every split in `stats`; no split or an unwritable path is a
    UserError. Example: `draw_chart(dataset_stats("data/in10"), "in10.png")`.
    """
    from pipeline.report.chart import pyplot, save_png

    fig = stats_figure(stats)
    try:
        save_png(fig, path)
    except OSError as exc:
        raise UserError(f"cannot write the chart {path}: {exc.strerror}") from None
    finally:
        pyplot().close(fig)


def stats_figure(stats: dict):
    """The chart as a matplotlib figure (see the module docstring for the panels)."""
    if not stats["splits"]:
        raise UserError(f"{stats['dataset']}: no split to chart")
    from pipeline.report.chart import integer_ticks, pyplot

    plt = pyplot()
    labels, values = class_rows(stats)
    fig = plt.figure(figsize=(14, max(8.0, 3 + 0.28 * len(labels))))
    grid = fig.add_gridspec(3, 2, width_ratios=(1.1, 1))
    classes = len(next(iter(stats["splits"].values()))["per_class"])
    _classes(fig.add_subplot(grid[:, 0]), labels, values, classes)
    splits = stats["splits"]
    _per_image(fig.add_subplot(grid[0, 1]), splits)
    _sizes(fig.add_subplot(grid[1, 1]), splits)
    _aspects(fig.add_subplot(grid[2, 1]), splits)
    for ax in fig.axes:
        integer_ticks(ax.xaxis if ax is fig.axes[0] else ax.yaxis)
    fig.suptitle(f"{stats['dataset']}: " + "; ".join(
        f"{name} {s['images']:,} images, {s['boxes']:,} boxes" for name, s in splits.items()))
    fig.tight_layout()
    return fig


def _classes(ax, labels: list[str], values: dict[str, list[float]], classes: int) -> None:
    n, k = len(labels), len(values)
    height = 0.8 / k
    y = np.arange(n)
    for i, (split, vals) in enumerate(values.items()):
        ax.barh(y - 0.4 + height * (i + 0.5), vals, height, label=split, color=f"C{i}")
    ax.set_yticks(y, labels, fontsize=8 if n > 15 else 9)
    ax.invert_yaxis()
    ax.set_xlabel("images with the class")
    ax.set_ylabel("class (most images first)")
    shown = f"top {n - 1} of {classes} classes" if classes > n else f"{classes} classes"
    ax.set_title(f"images per class ({shown})")
    ax.legend(fontsize=8)


def _per_image(ax, splits: dict) -> None:
    bins = list(next(iter(splits.values()))["boxes_per_image"]["histogram"])
    x = np.arange(len(bins))
    width = 0.8 / len(splits)
    for i, (split, s) in enumerate(splits.items()):
        counts = [s["boxes_per_image"]["histogram"].get(b, 0) for b in bins]
        ax.bar(x - 0.4 + width * (i + 0.5), counts, width, label=split, color=f"C{i}")
    ax.set_xticks(x, bins)
    ax.set_xlabel("boxes in the image")
    ax.set_ylabel("images")
    ax.set_title("boxes per image")
    ax.legend(fontsize=8)


def _sizes(ax, splits: dict) -> None:
    bins = np.linspace(0, 1, 41)
    data = [s["_sizes"] for s in splits.values()]
    ax.hist(data, bins=bins, label=list(splits), color=[f"C{i}" for i in range(len(data))])
    ticks = [t for t in SIZE_BINS if t == 0 or t >= 0.1]  # 0.05 would crowd 0 and 0.1
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.set_xlabel("box size sqrt(w*h), as a fraction of the image side")
    ax.set_ylabel("boxes")
    ax.set_title("box sizes")
    ax.legend(fontsize=8)


def _aspects(ax, splits: dict) -> None:
    data = [a[a > 0] for a in (s["_aspects"] for s in splits.values())]
    found = np.concatenate(data) if data else np.array([])
    low, high = (found.min(), found.max()) if found.size else (0.5, 2.0)
    low, high = min(low, 0.5), max(high, 2.0)
    ax.hist(data, bins=np.geomspace(low, high, 41), label=list(splits),
            color=[f"C{i}" for i in range(len(data))])
    ax.set_xscale("log")
    ticks = [t for t in _ASPECT_TICKS if low <= t <= high]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.minorticks_off()
    ax.axvline(1, color="#555555", lw=0.8, ls=":")
    ax.set_xlabel("box aspect w/h (relative to the image; <1 tall, >1 wide)")
    ax.set_ylabel("boxes")
    ax.set_title("box aspects")
    ax.legend(fontsize=8)
