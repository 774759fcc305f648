"""Writing an evaluation: evaluation-<split>.json / .csv / .md and ap-<split>.png (a horizontal
bar per class, AP@0.5), atomically, in RUN/evaluation/ or the folder given."""

from __future__ import annotations

import json
import math
from pathlib import Path

from pipeline.evaluate.table import Evaluation, render_csv, render_markdown
from pipeline.io import atomic_write, atomic_writer

#: Bars drawn at most: past it, the worst and the best half of this many each.
MAX_BARS = 60


def chart_classes(ev: Evaluation) -> tuple[list[str], list[float], int]:
    """(labels, AP@0.5, classes left out), worst first; many classes: the worst and best 30.

    Example: 100 classes -> 60 labels and 40 left out.
    """
    pairs = sorted(((r.ap50 if r.ap50 is not None and math.isfinite(r.ap50) else 0.0, f"{r.id} {r.name}")
                    for r in ev.classes), key=lambda p: p[0])
    left_out = max(0, len(pairs) - MAX_BARS)
    if left_out:
        pairs = pairs[:MAX_BARS // 2] + pairs[-MAX_BARS // 2:]
    return [p[1] for p in pairs], [p[0] for p in pairs], left_out


def draw_chart(ev: Evaluation, path: Path) -> None:
    """Horizontal bars of AP@0.5 per class, the mAP as a dashed line (Agg, no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import PercentFormatter

    labels, values, left_out = chart_classes(ev)
    fig, ax = plt.subplots(figsize=(7, 1.2 + 0.28 * max(1, len(labels))))
    try:
        ax.barh(range(len(labels)), values, color="#4878a8")
        ax.set_yticks(range(len(labels)), labels, fontsize=8)
        ax.set_xlim(0, 1)
        ax.xaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_xlabel("AP@0.5")
        if ev.overall.map50 is not None:
            ax.axvline(ev.overall.map50, color="#c44e52", linestyle="--",
                       label=f"mAP@0.5 {ev.overall.map50:.1%}")
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)  # never over a bar
        more = f" ({left_out} middle classes left out)" if left_out else ""
        ax.set_title(f"AP per class, {ev.split} split{more}", fontsize=10)
        fig.tight_layout()
        with atomic_writer(path, "wb") as f:
            fig.savefig(f, format="png", dpi=100)
    finally:
        plt.close(fig)


def write_outputs(ev: Evaluation, out: Path) -> dict[str, str]:
    """Write the four files; `ev.files` is set to their paths (also returned)."""
    out.mkdir(parents=True, exist_ok=True)
    stem = f"evaluation-{ev.split}"
    files = {"json": out / f"{stem}.json", "csv": out / f"{stem}.csv", "markdown": out / f"{stem}.md",
             "chart": out / f"ap-{ev.split}.png"}
    ev.files = {k: str(v) for k, v in files.items()}
    draw_chart(ev, files["chart"])
    atomic_write(files["csv"], render_csv(ev))
    atomic_write(files["markdown"], render_markdown(ev, files["chart"].name))
    atomic_write(files["json"], json.dumps(ev.as_dict(), indent=2) + "\n")
    return ev.files
