"""A run folder written by `train`, as `summarize` reads it: the engine's own log or
results.csv, the total, the supervisor's events, its attempts (and what began each: the
start, a `resume` command or a watchdog restart), its status, and how good its ETAs were."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from pipeline.logs.darknet import parse_darknet
from pipeline.logs.rows import LogStats, MetricRow
from pipeline.train.runs import effective_status

#: Events a person wants on the chart and in the report (not attempts, ETA notes, ...).
NOTABLE = ("start", "resume", "nan", "explosion", "stall", "crashed", "failed", "restart", "stopped",
           "gave-up", "finished", "remedy", "best", "bottleneck", "notify-failed", "options-changed",
           "checkpoint-rejected", "fresh-start")


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


def _events(root: Path) -> list[dict]:
    """Every event of events.jsonl; a line cut short by a kill is skipped."""
    try:
        lines = (root / "events.jsonl").read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return []
    out = []
    for line in lines:
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if isinstance(e, dict):
            out.append(e)
    return out


def run_events(root: Path) -> list[dict]:
    """The notable supervisor events `{kind, at, step, detail}`."""
    return [{"kind": e["kind"], "at": e.get("at"), "step": e.get("step"),
             "detail": e.get("detail", "")} for e in _events(root) if e.get("kind") in NOTABLE]


#: What begins an attempt: the first start, the `resume` command, the watchdog's restart.
CAUSES = ("start", "resume", "restart")
_AFTER_EPOCH = re.compile(r"after epoch (\d+)")


def attempts(root: Path, backend: str) -> list[dict]:
    """Each attempt `{attempt, cause, detail, step, fresh}`, in order.

    `cause` is one of CAUSES; `step` is the attempt's first iteration (its log) or epoch
    (the checkpoint it continued from), else the step recorded with its cause; `fresh`:
    it started from scratch. Example: a watchdog restart after a crash at iteration 59
    with no checkpoint -> `{"attempt": 2, "cause": "restart", "step": 1, ...}`.
    """
    out: list[dict] = []
    cause: dict = {"kind": "start", "detail": "", "step": 0}
    for e in _events(root):
        kind = e.get("kind")
        if kind in CAUSES:
            cause = e
        elif kind == "attempt":
            number = e.get("attempt") or len(out) + 1
            first = _first_iteration(root / "logs" / f"attempt-{number:02d}.log") \
                if backend == "darknet" else None
            out.append({"attempt": number, "cause": cause["kind"], "detail": cause.get("detail", ""),
                        "step": first or cause.get("step"), "fresh": first == 1})
        elif kind == "fresh-start" and out:
            out[-1].update(step=1, fresh=True)
        elif kind == "checkpoint-chosen" and out and (m := _AFTER_EPOCH.search(e.get("detail", ""))):
            out[-1]["step"] = int(m.group(1)) + 1
    return out


def _first_iteration(log: Path) -> int | None:
    """The first iteration in a darknet attempt's log (None: no such log, or no iteration)."""
    if not log.is_file():
        return None
    items = parse_darknet(str(log), LogStats())
    try:
        return next((i.step for i in items if isinstance(i, MetricRow)), None)
    finally:
        items.close()


def run_model(root: Path) -> str | None:
    """The model the run was asked to train (run.json), e.g. "yolov8n"; None for darknet."""
    try:
        info = json.loads((root / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or info.get("backend") == "darknet":
        return None
    value = (info.get("options") or {}).get("model") or info.get("model")
    return model_name(value) if value else None


def model_name(value: object) -> str:
    """A model as people name it: "yolov8n.yaml" and "/m/yolo11s.pt" -> "yolov8n", "yolo11s";
    a resumed run's "weights/last.pt" stays "last.pt"."""
    path = Path(str(value))
    if path.suffix in (".yaml", ".yml") or (path.suffix == ".pt" and path.stem not in ("last", "best")):
        return path.stem
    return path.name


def run_status(root: Path) -> str:
    """The run's status as `status` reports it: running, finished, failed, stopped, killed."""
    try:
        state = json.loads((root / "state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        state = {}
    return effective_status(state if isinstance(state, dict) else {}, _events(root))


def eta_checks(root: Path) -> list[dict]:
    """Each recorded prediction (at 5/25/50/75% done) against the actual finish.

    `error_seconds` > 0: the run finished later than predicted. `error_percent` is relative
    to the time that was left when the prediction was made.
    """
    events = _events(root)
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
