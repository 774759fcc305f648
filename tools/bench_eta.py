"""`make bench` section (`--only eta`): how good the ETAs were, as `summarize RUN` reports them.

Two real supervised runs on this machine's CPU, each from a generated toy set:
- darknet: AlexeyAB's build (`make darknet-ab`, or DARKNET_AB), yolov4-tiny at 64 px, batch 4,
  `ITERATIONS` iterations with `-map` on `VALID` valid images (an evaluation every 100
  iterations, and one at the end), as tests/e2e/test_train_darknet_ab.py builds it;
- Ultralytics: yolov8n.yaml, `EPOCHS` epochs at 64 px.
The supervisor records its predicted finish when each run passes 5, 25, 50 and 75%; the table
is `summarize`'s "How good were the ETAs" (error as a share of the time that was left). Goal:
within +-10% at 5%. The load average is taken before and after each run: the machine is shared.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ITERATIONS, VALID = 400, 150
EPOCHS, CLASSES, PER_CLASS = 10, 6, 80
GOAL = 10.0


def _cli(*args, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "pipeline", *map(str, args)], capture_output=True, text=True)
    if check and done.returncode:
        raise RuntimeError(f"yolo-pipeline {' '.join(map(str, args))}: exit {done.returncode}\n"
                           f"{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return done


def _ab_darknet() -> str | None:
    path = os.environ.get("DARKNET_AB") or str(REPO / ".darknet-ab" / "darknet")
    return path if os.access(path, os.X_OK) else None


def _toy(root: Path, *, classes: int, annotated: int, val: int) -> Path:
    if not (root / "in" / "yolo").is_dir():
        _cli("-q", "synth", "imagenet", root / "in", "--classes", classes, "--annotated", annotated,
             "--unannotated", 0, "--val", val)
        _cli("-q", "convert", "imagenet", root / "in", "--workers", 1)
    return root / "in" / "yolo"


def _train(cfg: Path, run: Path, *args) -> dict:
    """Train to the end; what the bench reports about the run."""
    shutil.rmtree(run, ignore_errors=True)
    load = os.getloadavg()[0]
    t = time.time()
    _cli("-q", "train", cfg, "--out", run, *args)
    wall = time.time() - t
    summary = json.loads(_cli("summarize", run, "--out", run.parent / f"{run.name}-summary", "--json").stdout)
    state = json.loads((run / "state.json").read_text())
    return {"checks": summary["runs"][0]["eta_checks"], "wall": wall, "load": (load, os.getloadavg()[0]),
            "restarts": state.get("restarts", 0), "done": state.get("done"),
            "basis": state.get("eta_basis") or {}}


def _darknet(work: Path) -> dict | None:
    binary = _ab_darknet()
    if binary is None:
        return None
    data = _toy(work / "ab", classes=2, annotated=12, val=VALID)
    cfg = work / "ab" / "cfg"
    if not (cfg / "toy.cfg").exists():
        template = Path(binary).parent / "cfg" / "yolov4-tiny.cfg"
        _cli("-q", "configs", data, "--template", template, "--out", cfg, "--name", "toy", "--width", 64,
             "--height", 64, "--batch", 4, "--subdivisions", 1, "--max-batches", ITERATIONS,
             "--learning-rate", 0.0003, "--burn-in", 20, "--darknet", binary)
    return _train(cfg, work / "ab" / "run", "--backend", "darknet", "--darknet", binary)


def _ultralytics(work: Path) -> dict:
    data = _toy(work / "ul", classes=CLASSES, annotated=PER_CLASS, val=60)
    cfg = work / "ul" / "cfg"
    if not (cfg / "data.yaml").exists():
        _cli("-q", "configs", data, "--template", _template(), "--out", cfg)
    return _train(cfg, work / "ul" / "run", "--epochs", EPOCHS, "--imgsz", 64, "--batch", 8, "--workers", 0,
                  "--device", "cpu")


def _template() -> Path:
    debian = Path("/usr/share/darknet/cfg/yolov3-tiny.cfg")
    return debian if debian.exists() else REPO / "tests/data/cfg/tiny_yolo.cfg"


def _row(name: str, what: str, r: dict | None) -> str:
    if r is None:
        return f"| {name} | {what} | not run (no AlexeyAB build: `make darknet-ab`) | | | | | | |"
    by = {c["percent"]: c for c in r["checks"]}
    cells = []
    for p in (5, 25, 50, 75):
        e = (by.get(p) or {}).get("error_percent")
        cells.append("—" if e is None else f"{e:+.1f}%")
    first = by.get(5) or {}
    five = first.get("error_percent")
    verdict = "—" if five is None else ("yes" if abs(five) <= GOAL else "no")
    left = "—"
    if first.get("predicted_finish") and first.get("actual_finish"):
        left = (f"{first['predicted_finish'] - first['made_at']:.0f} s / "
                f"{first['actual_finish'] - first['made_at']:.0f} s")
    return (f"| {name} | {what} | {r['wall']:.0f} s | {left} | " + " | ".join(cells)
            + f" | {verdict} | {r['load'][0]:.1f} / {r['load'][1]:.1f} |")


def run(work: Path) -> str:
    ab = _darknet(work)
    ul = _ultralytics(work)
    rows = [_row("darknet (AlexeyAB)", f"yolov4-tiny 64 px, batch 4, {ITERATIONS} iterations, -map "
                                       f"over {VALID} valid images", ab),
            _row("Ultralytics", f"yolov8n.yaml 64 px, batch 8, {EPOCHS} epochs, {CLASSES * PER_CLASS} images",
                 ul)]
    notes = []
    if ab is not None:
        b = ab["basis"]
        notes.append(f"- darknet's last ETA parts: {b.get('per_iteration', 0):.3f} s per iteration, "
                     f"pauses {b.get('pause_per_iteration', 0):.4f} s per iteration, mAP "
                     f"{b.get('map_seconds', 0):.2f} s per evaluation ({b.get('map_measured', 0)} measured, "
                     f"one every {b.get('map_every')} iterations); restarts: {ab['restarts']}.")
    notes.append(f"- Ultralytics: restarts {ul['restarts']}; at 5% of {EPOCHS} epochs the prediction is made "
                 "after the first epoch, from it alone.")
    notes.append("- Two earlier runs of the darknet half while the load rose during the run (1.3 to 2.5) "
                 "were +8% and +13% off at 5%: an ETA measures the speed so far, and a machine that slows "
                 "down afterwards is in none.")
    return "\n".join([
        "## train: how good the ETAs were (`summarize RUN`)", "",
        "Real supervised runs on this machine's CPU from generated toy sets; the supervisor records its "
        "predicted finish at 5/25/50/75% done, `summarize` compares it with the actual finish "
        "(+: finished later than predicted, as a share of the time that was left). Goal: within "
        f"+-{GOAL:.0f}% at 5%. **The machine is shared and loaded** ({os.cpu_count()} cores; the load "
        "average before / after each run is in the last column): other work running at the same "
        "time moves these numbers.", "",
        "| engine | run | wall | at 5%: predicted / actual time left | off at 5% | at 25% | at 50% | at 75% "
        "| within +-10% at 5% | load before / after |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|---|", *rows, "", *notes, ""])
