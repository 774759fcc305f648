"""A run folder written by `train`, as `summarize` reads it: the engine's own log or
results.csv, the total, the supervisor's events, and how good its ETAs were."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

#: Events a person wants on the chart and in the report (not attempts, ETA notes, ...).
NOTABLE = ("start", "resume", "nan", "explosion", "stall", "crashed", "failed", "restart", "stopped",
           "gave-up", "finished")


def is_training_run(path: Path) -> bool:
    """True for a folder `train` made (it holds run.json)."""
    return path.is_dir() and (path / "run.json").is_file()


def engine_input(root: Path, scratch: Path) -> tuple[str, Path, int | None, str]:
    """(parser format, file to parse, total steps, where the total came from).

    darknet attempts log to one file each; they are joined into `scratch` (in attempt
    order) so the parser sees the whole run, restarts included.
    """
    info = json.loads((root / "run.json").read_text(encoding="utf-8"))
    total = info.get("total")
    if info.get("backend") == "darknet":
        logs = sorted((root / "logs").glob("attempt-*.log"))
        with open(scratch, "wb") as out:
            for log in logs:
                with open(log, "rb") as f:
                    shutil.copyfileobj(f, out, 1 << 20)
                out.write(b"\n")
        return "darknet", scratch, total, "run.json (max_batches of the run's cfg)"
    return "ultralytics", root / "ultralytics" / "results.csv", total, "run.json (epochs)"


def run_events(root: Path) -> list[dict]:
    """The notable supervisor events `{kind, at, step, detail}`."""
    out = []
    try:
        lines = (root / "events.jsonl").read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return out
    for line in lines:
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if e.get("kind") in NOTABLE:
            out.append({"kind": e["kind"], "at": e.get("at"), "step": e.get("step"),
                        "detail": e.get("detail", "")})
    return out


def eta_checks(root: Path) -> list[dict]:
    """Each recorded prediction (at 5/25/50/75% done) against the actual finish.

    `error_seconds` > 0: the run finished later than predicted. `error_percent` is relative
    to the time that was left when the prediction was made.
    """
    events = []
    try:
        for line in (root / "events.jsonl").read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                events.append(json.loads(line))
            except ValueError:
                continue
    except FileNotFoundError:
        return []
    finished = [e["at"] for e in events if e.get("kind") == "finished"]
    actual = finished[-1] if finished else None
    out = []
    for e in events:
        if e.get("kind") != "eta":
            continue
        row = {"percent": e.get("percent"), "made_at": e.get("at"),
               "predicted_finish": e.get("predicted_finish"), "actual_finish": actual,
               "error_seconds": None, "error_percent": None}
        if actual is not None and e.get("predicted_finish") is not None:
            row["error_seconds"] = round(actual - e["predicted_finish"], 1)
            left = actual - e["at"]
            if left > 0:
                row["error_percent"] = round(100 * (actual - e["predicted_finish"]) / left, 1)
        out.append(row)
    return out
