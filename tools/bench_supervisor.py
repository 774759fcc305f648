"""Supervisor overhead: the same tiny Ultralytics training through `train` and plain, paired.

Both run YOLOv8n from its YAML on the CPU with the same data, seed, size and offline
environment; they alternate (plain, supervised, plain, ...) so drift on a shared machine
hits both. Two ratios: whole-command wall time (start-up of the supervisor and worker
included), and the engine's own training time (the last `time` of results.csv: what the
callbacks cost while training).
"""

from __future__ import annotations

import csv
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROUNDS = 4
EPOCHS, IMGSZ, BATCH = 3, 64, 8


def _dataset(work: Path) -> Path:
    cfg = work / "cfg"
    if (cfg / "data.yaml").exists():
        return cfg
    py = [sys.executable, "-m", "pipeline", "-q"]
    subprocess.run([*py, "synth", "imagenet", str(work / "in"), "--classes", "6", "--annotated", "30",
                    "--unannotated", "0", "--val", "12"], check=True)
    subprocess.run([*py, "convert", "imagenet", str(work / "in")], check=True)
    subprocess.run([*py, "configs", str(work / "in" / "yolo"), "--template", str(_template()),
                    "--out", str(cfg)], check=True)
    return cfg


def _template() -> Path:
    debian = Path("/usr/share/darknet/cfg/yolov3-tiny.cfg")
    return debian if debian.exists() else Path(__file__).parents[1] / "tests/data/cfg/tiny_yolo.cfg"


def _engine_seconds(results: Path) -> float:
    with open(results) as f:
        return float(list(csv.DictReader(f))[-1]["time"])


def _plain(cfg: Path, out: Path, env: dict) -> tuple[float, float]:
    code = (f"from ultralytics import YOLO; YOLO('yolov8n.yaml').train(data={str(cfg / 'data.yaml')!r}, "
            f"epochs={EPOCHS}, imgsz={IMGSZ}, batch={BATCH}, workers=0, device='cpu', amp=False, "
            f"seed=0, save_dir={str(out)!r}, exist_ok=True)")
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=env, capture_output=True)
    return time.perf_counter() - t, _engine_seconds(out / "results.csv")


def _supervised(cfg: Path, out: Path, env: dict) -> tuple[float, float]:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pipeline", "-q", "train", str(cfg), "--out", str(out),
                    "--epochs", str(EPOCHS), "--imgsz", str(IMGSZ), "--batch", str(BATCH), "--workers", "0"],
                   check=True, env=env, capture_output=True)
    return time.perf_counter() - t, _engine_seconds(out / "ultralytics" / "results.csv")


def run(work: Path) -> str:
    from pipeline.ultralytics.env import worker_env

    cfg = _dataset(work)
    env = {**worker_env("bench"), "YOLO_PIPELINE_RUN_ID": ""}
    plain, ours = [], []
    for i in range(ROUNDS):
        for name, fn, bucket in (("plain", _plain, plain), ("train", _supervised, ours)):
            out = work / f"{name}-{i}"
            shutil.rmtree(out, ignore_errors=True)
            bucket.append(fn(cfg, out, env))
    rows = []
    for label, k in (("whole command, wall s", 0), ("engine training time, s", 1)):
        p, s = statistics.median(x[k] for x in plain), statistics.median(x[k] for x in ours)
        pairs = [b[k] / a[k] for a, b in zip(plain, ours, strict=True)]
        rows.append(f"| {label} | {p:.2f} | {s:.2f} | {statistics.median(pairs):.3f} "
                    f"({min(pairs):.3f}-{max(pairs):.3f}) |")
    return "\n".join([
        "## train: supervisor overhead (Ultralytics on the CPU)", "",
        f"YOLOv8n from yolov8n.yaml, {EPOCHS} epochs, imgsz {IMGSZ}, batch {BATCH}, 180 train images, "
        f"workers 0; {ROUNDS} paired rounds (plain `YOLO().train()` in a fresh process vs "
        f"`yolo-pipeline train`), alternating; {os.cpu_count()} cores. Target: under 3% (ratio < 1.03).", "",
        "| measure | plain (median) | through train (median) | paired ratio (min-max) |",
        "|---|---|---|---|", *rows, "",
        "The engine training time is results.csv's last `time` (training + validation of every "
        "epoch, without process start-up): the cost of our callbacks. The whole-command time "
        "adds the supervisor's start, the worker's checkpoint choice and the last-good copies.", ""])
