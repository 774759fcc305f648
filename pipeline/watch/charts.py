"""A run's chart and summary facts for its page, drawn by `summarize RUN` into RUN/summary.

They are drawn again when the run's logs (results.csv, the attempt logs, events.jsonl) are
newer than chart.png, at most once every `min_age` seconds, one drawing at a time (pyplot is
not thread-safe). A run with a file that resolves outside DIR is not drawn.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from pipeline.errors import PipelineError
from pipeline.watch.runs import is_inside

log = logging.getLogger(__name__)

SUMMARY_DIR = "summary"
CHART = "chart.png"
_LOCK = threading.Lock()
#: When drawing last failed, by run folder (so a run without a log yet is not retried per request).
_FAILED: dict[Path, tuple[float, str]] = {}


@dataclass
class Drawn:
    """The chart (None when there is none), the summary's labelled facts, and a note on why not."""

    chart: Path | None
    facts: list[tuple[str, str]] = field(default_factory=list)
    note: str = ""


def chart_inputs(folder: Path) -> list[Path]:
    """The files the chart is drawn from (those that exist)."""
    candidates = [folder / "run.json", folder / "events.jsonl", folder / "ultralytics" / "results.csv",
                  *sorted((folder / "logs").glob("attempt-*.log"))]
    return [p for p in candidates if p.exists()]


def newest_mtime(paths: list[Path]) -> float:
    """The latest modification time of `paths` (0 when none can be read)."""
    times = []
    for p in paths:
        try:
            times.append(p.stat().st_mtime)
        except OSError:
            continue
    return max(times, default=0.0)


def outside(root: Path, folder: Path) -> list[Path]:
    """The chart's inputs and outputs that resolve outside `root` (symbolic links pointing out)."""
    paths = [*chart_inputs(folder), folder / "ultralytics", folder / "logs", folder / SUMMARY_DIR,
             folder / SUMMARY_DIR / CHART, folder / SUMMARY_DIR / "summary.json"]
    return [p for p in paths if (p.exists() or p.is_symlink()) and not is_inside(root, p)]


def is_stale(folder: Path, min_age: float, now: float | None = None) -> bool:
    """True when chart.png is missing, or older than the logs and at least `min_age` s old."""
    now = time.time() if now is None else now
    try:
        drawn = (folder / SUMMARY_DIR / CHART).stat().st_mtime
    except OSError:
        return True
    return newest_mtime(chart_inputs(folder)) > drawn and now - drawn >= min_age


def summary_facts(folder: Path) -> list[tuple[str, str]]:
    """The labelled facts of RUN/summary/summary.json as `summarize` words them ([] if none)."""
    try:
        from pipeline.report.markdown import facts
        from pipeline.report.summary import Summary

        data = (folder / SUMMARY_DIR / "summary.json").read_bytes()
        runs = msgspec.json.decode(data, type=dict[str, list[Summary]])["runs"]
        return facts(runs[0]) if runs else []
    except Exception:  # no summary yet, or one of an older layout: the page goes without
        return []


def draw(folder: Path) -> str:
    """`summarize RUN` into RUN/summary; "" or why it could not."""
    try:
        from pipeline.report import summarize_paths

        summarize_paths([str(folder)], folder / SUMMARY_DIR)
    except (PipelineError, OSError) as exc:
        return str(exc)
    except Exception as exc:  # a parser's bug must not take the page down
        log.warning("summarize %s failed: %r", folder, exc)
        return f"summarize failed: {exc!r}"
    return ""


def ensure_chart(root: Path, folder: Path, min_age: float = 10.0) -> Drawn:
    """The run's chart and facts, drawn first when stale; never draws outside `root`."""
    root = root.resolve()
    out_of_root = outside(root, folder)
    if out_of_root:
        return Drawn(None, [], f"not drawn: {out_of_root[0].relative_to(folder)} points outside the folder")
    note = ""
    with _LOCK:
        failed_at, failed_note = _FAILED.get(folder, (float("-inf"), ""))
        if time.time() - failed_at < min_age:
            note = failed_note
        elif is_stale(folder, min_age):
            note = draw(folder)
            if note:
                _FAILED[folder] = (time.time(), note)
            else:
                _FAILED.pop(folder, None)
    png = folder / SUMMARY_DIR / CHART
    chart = png if png.is_file() and is_inside(root, png) else None
    return Drawn(chart, summary_facts(folder), note)
