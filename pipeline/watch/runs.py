"""The runs under a folder, as rows for the page, and the checks that keep the page inside it.

A run folder holds run.json and state.json (what `train` writes), at any depth below DIR.
Symbolic links are never followed while looking, and a run whose files resolve outside DIR
is left out: the page shows nothing from outside DIR.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from pipeline.train.api import run_status
from pipeline.train.runs import RunFolder

#: The file another part of the tool appends resource samples to, one JSON object a line.
RESOURCES_FILE = "resources.jsonl"
#: Keys of a resource sample shown on the page, in this order.
RESOURCE_KEYS = ("cpu_tree", "rss_mb", "gpu_util", "gpu_mem_mb")
#: Events shown per run on the list page.
LIST_EVENTS = 3


def is_inside(root: Path, path: Path) -> bool:
    """True when `path`, symbolic links resolved, is `root` or below it (root already resolved)."""
    try:
        real = path.resolve()
    except (OSError, RuntimeError):  # a symlink loop
        return False
    return real == root or real.is_relative_to(root)


def run_id_path(root: Path, run_id: str, runs: dict[str, Path]) -> Path | None:
    """The folder of a run id taken from a URL, or None: only ids of runs found under `root`
    are accepted, never a path built from the URL (so `..`, `%2e%2e`, `/etc` find nothing)."""
    path = runs.get(run_id)
    if path is None or not is_inside(root, path):
        return None
    return path


def is_run_folder(root: Path, folder: Path) -> bool:
    """A run folder under `root`: run.json and state.json present, they and events.jsonl (when
    there is one) resolving inside root."""
    files = (folder / "run.json", folder / "state.json")
    if not all(f.is_file() for f in files):
        return False
    events = folder / "events.jsonl"
    return all(is_inside(root, f) for f in (*files, events) if f.exists() or f.is_symlink())


def find_runs(root: Path) -> dict[str, Path]:
    """Every run folder under `root` (root included) by its id: the path relative to root
    ("." for root itself). Symlinked folders are not entered; a run's own folder is not searched."""
    root = root.resolve()
    found: dict[str, Path] = {}
    for here, dirs, _files in os.walk(root, followlinks=False):
        folder = Path(here)
        if is_run_folder(root, folder):
            found[folder.relative_to(root).as_posix()] = folder
            dirs[:] = []
            continue
        dirs[:] = sorted(d for d in dirs if not (folder / d).is_symlink())
    return dict(sorted(found.items()))


def last_json_line(path: Path, limit: int = 65536) -> dict | None:
    """The last line of a JSON-lines file that holds an object (read from its end; a line
    being written is passed over), or None."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - limit))
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def resource_sample(root: Path, folder: Path, state: dict) -> dict | None:
    """The latest resource sample: the last line of RUN/resources.jsonl, else `resources` in
    state.json; None when neither holds one."""
    path = folder / RESOURCES_FILE
    sample = last_json_line(path) if path.is_file() and is_inside(root, path) else None
    if sample is None:
        sample = state.get("resources")
    return _flat(sample) if isinstance(sample, dict) else None


def _flat(sample: dict) -> dict:
    """The sample with its first GPU's figures as top-level `gpu_util`/`gpu_mem_mb` (the page's
    keys); pipeline.train.resources writes them per GPU under `gpus`."""
    gpus = sample.get("gpus")
    if isinstance(gpus, list) and gpus and isinstance(gpus[0], dict):
        sample = {**sample, "gpu_util": gpus[0].get("util"), "gpu_mem_mb": gpus[0].get("mem_mb")}
    return sample


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def map50(status: dict) -> float | None:
    """The latest mAP@0.5 (a fraction) of a status: Ultralytics' metrics, whatever the engine
    calls the key, else darknet's last `-map` evaluation (`map.last.map`)."""
    metrics = status.get("metrics") or {}
    for key in ("map50", "metrics/mAP50(B)", "mAP50"):
        if (value := _number(metrics.get(key))) is not None:
            return value
    last = (status.get("map") or {}).get("last") if isinstance(status.get("map"), dict) else None
    return _number(last.get("map")) if isinstance(last, dict) else None


def run_row(root: Path, run_id: str, folder: Path, now: float | None = None) -> dict:
    """`status --json` of one run plus what the page shows: id, percent, finish, mAP, resources.

    A run that cannot be read gives a row with `error` set instead of failing the page.
    """
    now = time.time() if now is None else now
    try:
        return _with_extras(root, run_id, folder, run_status(folder), now)
    except Exception as exc:  # a cut or hand-edited state.json: shown, not fatal to the page
        return {"id": run_id, "run": str(folder), "status": "unreadable", "error": str(exc) or repr(exc),
                "events": []}


def _with_extras(root: Path, run_id: str, folder: Path, row: dict, now: float) -> dict:
    done, total = _number(row.get("done")) or 0, _number(row.get("total"))
    row["id"] = run_id
    row["percent"] = round(100 * done / total, 1) if total else None
    eta = _number(row.get("eta_seconds"))
    row["finish_at"] = now + eta if row["status"] == "running" and eta is not None else None
    row["map50"] = map50(row)
    row["resources"] = resource_sample(root, folder, RunFolder(folder).read_state())
    return row


def run_rows(root: Path, runs: dict[str, Path], now: float | None = None) -> list[dict]:
    """One row per run, in id order."""
    root = root.resolve()
    return [run_row(root, run_id, folder, now) for run_id, folder in runs.items()]


class RunIndex:
    """The runs under a folder, looked for again at most every `rescan` seconds."""

    def __init__(self, root: Path, rescan: float = 10.0) -> None:
        self.root = root.resolve()
        self.rescan = rescan
        self._runs: dict[str, Path] = {}
        self._at = float("-inf")

    def runs(self) -> dict[str, Path]:
        """The runs by id (a fresh search when the last one is older than `rescan`)."""
        if time.monotonic() - self._at > self.rescan:
            self._runs = find_runs(self.root)
            self._at = time.monotonic()
        return self._runs

    def folder(self, run_id: str) -> Path | None:
        """The folder of a run id from a URL, or None (searching again once if it is new)."""
        path = run_id_path(self.root, run_id, self.runs())
        if path is None and run_id not in self._runs and time.monotonic() - self._at > 1.0:
            self._at = float("-inf")  # a run started since the last search
            path = run_id_path(self.root, run_id, self.runs())
        return path
