"""What a run used, from RUN/resources.jsonl: a chart over time and a table of medians and peaks.

The samples are those of pipeline/train/resources.py (keys documented there). The chart
has one panel each for GPU utilisation and GPU memory (when the run had GPUs), CPU (% of
cores: the training's processes of their usable cores, the whole machine of all), memory
(training RSS, available, swap) and disk I/O of the training; a gap of over three sample
intervals (between attempts, a supervisor restart) breaks the lines.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from statistics import median

GB = 1024.0
#: Table rows: sample key, label, unit; "peak" is the highest value except where said.
ROWS = (("cpu_tree", "CPU, training (% of one core)", "%"),
        ("cpu_machine", "CPU, whole machine (% of all cores)", "%"),
        ("rss_mb", "RSS, training processes", "MB"),
        ("mem_avail_mb", "memory available (peak: lowest)", "MB"),
        ("swap_mb", "swap used, machine", "MB"),
        ("read_mbps", "disk read, training", "MB/s"),
        ("write_mbps", "disk write, training", "MB/s"))
GPU_ROWS = (("util", "busy", "%"), ("mem_mb", "memory used", "MB"), ("temp_c", "temperature", "°C"),
            ("power_w", "power", "W"))


def _num(value: object) -> float | None:
    """A number as float; None for anything else (bool too)."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def gpu_indices(samples: list[dict]) -> list[int]:
    """The GPU indices seen in the samples, in order."""
    return sorted({g.get("index", 0) for s in samples for g in s.get("gpus") or []})


def _gpu_value(sample: dict, index: int, key: str) -> float | None:
    """One figure of GPU `index` in a sample."""
    for g in sample.get("gpus") or []:
        if g.get("index", 0) == index:
            return _num(g.get(key))
    return None


def _row(name: str, label: str, unit: str, values: list[float | None], lowest: bool = False) -> dict | None:
    """A table row of median and peak (lowest with `lowest`); None without values."""
    found = [v for v in values if v is not None]
    if not found:
        return None
    return {"name": name, "label": label, "unit": unit, "median": round(median(found), 1),
            "peak": round(min(found) if lowest else max(found), 1), "samples": len(found)}


def resource_table(samples: list[dict]) -> list[dict]:
    """One row per figure: name, label, unit, median, peak (lowest for available memory), samples;
    figures no sample has are left out."""
    rows = [_row(key, label, unit, [_num(s.get(key)) for s in samples], lowest=key == "mem_avail_mb")
            for key, label, unit in ROWS]
    for i in gpu_indices(samples):
        rows += [_row(f"gpu{i}_{key}", f"GPU {i} {label}", unit, [_gpu_value(s, i, key) for s in samples])
                 for key, label, unit in GPU_ROWS]
    return [r for r in rows if r is not None]


def markdown_table(rows: list[dict]) -> str:
    """The table's rows as markdown (for report.md)."""
    lines = ["| resource | median | peak |", "|---|---:|---:|"]
    lines += [f"| {r['label']} | {r['median']:g} {r['unit']} | {r['peak']:g} {r['unit']} |" for r in rows]
    return "\n".join(lines)


def _times(samples: list[dict], x_of_time: Callable[[float], float] | None) -> tuple[list[float], str]:
    """x of each sample and the x label: elapsed minutes (hours past 3 h) by default."""
    ts = [float(s.get("t", 0.0)) for s in samples]
    if x_of_time is not None:
        return [x_of_time(t) for t in ts], ""
    span = ts[-1] - ts[0] if ts else 0.0
    scale, unit = (3600.0, "hours") if span > 3 * 3600 else (60.0, "minutes")
    return [(t - ts[0]) / scale for t in ts], f"{unit} since the first sample"


def _breaks(samples: list[dict]) -> set[int]:
    """Indices whose sample starts a new stretch (a gap over 3 intervals before it)."""
    ts = [float(s.get("t", 0.0)) for s in samples]
    gaps = [b - a for a, b in zip(ts, ts[1:], strict=False)]
    if not gaps:
        return set()
    limit = 3 * median(gaps)
    return {i + 1 for i, g in enumerate(gaps) if g > limit}


def _line(ax, xs: list[float], values: list[float | None], breaks: set[int], **style) -> bool:
    """Plot with None as missing and a break at each gap; False when there is nothing to draw."""
    if all(v is None for v in values):
        return False
    px, py = [], []
    for i, (x, v) in enumerate(zip(xs, values, strict=True)):
        if i in breaks:
            px.append(x)
            py.append(math.nan)
        px.append(x)
        py.append(math.nan if v is None else v)
    ax.plot(px, py, **style)
    return True


def draw_resources(samples: list[dict], out_png: str | Path,
                   x_of_time: Callable[[float], float] | None = None, x_label: str | None = None,
                   title: str | None = None) -> Path:
    """The resource chart as a PNG; `x_of_time` maps a sample's unix time to x (default:
    elapsed time), with `x_label` naming it. Returns the path written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = sorted((s for s in samples if _num(s.get("t")) is not None), key=lambda s: s["t"])
    xs, default_label = _times(samples, x_of_time)
    breaks = _breaks(samples)
    gpus = gpu_indices(samples)
    panels = (["gpu", "gpu memory"] if gpus else []) + ["cpu", "memory", "io"]
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 2.1 * len(panels) + 0.6), dpi=100, sharex=True,
                             squeeze=False)
    axes = [a[0] for a in axes]
    for ax, panel in zip(axes, panels, strict=True):
        _panel(ax, panel, xs, samples, breaks, gpus)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper right", fontsize=7)
    axes[-1].set_xlabel(x_label or default_label)
    if title:
        axes[0].set_title(title, fontsize=10)
    if not samples:
        axes[0].text(0.5, 0.5, "no resource samples", ha="center", va="center", transform=axes[0].transAxes)
    fig.tight_layout()
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


def _panel(ax, panel: str, xs: list[float], samples: list[dict], breaks: set[int], gpus: list[int]) -> None:
    """Draw one panel: gpu, gpu memory, cpu, memory or io."""
    if panel == "gpu":
        for i in gpus:
            _line(ax, xs, [_gpu_value(s, i, "util") for s in samples], breaks, label=f"GPU {i}")
        ax.set_ylim(0, 105)
        ax.set_ylabel("GPU busy (%)")
    elif panel == "gpu memory":
        for i in gpus:
            _line(ax, xs, [_div(_gpu_value(s, i, "mem_mb"), GB) for s in samples], breaks, label=f"GPU {i}")
            total = [v for s in samples if (v := _gpu_value(s, i, "mem_total_mb")) is not None]
            if total:
                ax.axhline(max(total) / GB, color="gray", linestyle=":", linewidth=1, label=f"GPU {i} total")
        ax.set_ylim(bottom=0)
        ax.set_ylabel("GPU memory (GB)")
    elif panel == "cpu":
        cores = max((c for s in samples if (c := _num(s.get("cores"))) is not None), default=None)
        label = f"training (of {cores:g} usable cores)" if cores else "training"
        _line(ax, xs, [_tree_share(s) for s in samples], breaks, label=label)
        _line(ax, xs, [_num(s.get("cpu_machine")) for s in samples], breaks, label="whole machine", alpha=0.6)
        ax.set_ylim(0, 105)
        ax.set_ylabel("CPU (% of cores)")
    elif panel == "memory":
        for key, label in (("rss_mb", "RSS, training"), ("mem_avail_mb", "available"), ("swap_mb", "swap")):
            _line(ax, xs, [_div(_num(s.get(key)), GB) for s in samples], breaks, label=label)
        ax.set_ylim(bottom=0)
        ax.set_ylabel("memory (GB)")
    else:
        _line(ax, xs, [_num(s.get("read_mbps")) for s in samples], breaks, label="read")
        _line(ax, xs, [_num(s.get("write_mbps")) for s in samples], breaks, label="write")
        ax.set_ylim(bottom=0)
        ax.set_ylabel("disk (MB/s)")


def _div(value: float | None, by: float) -> float | None:
    """value / by, None stays None."""
    return None if value is None else value / by


def _tree_share(sample: dict) -> float | None:
    """The training's CPU as % of the cores it may use."""
    busy, cores = _num(sample.get("cpu_tree")), _num(sample.get("cores"))
    return None if busy is None or not cores else busy / cores
