"""`make bench` section: `bench train` on the demo's data on this machine's CPU.

The demo pipeline file (cfg/demo.yaml) is run up to its configs in WORK, then one 2-epoch
Ultralytics training per batch size goes through the `train` stage (the first epoch is
left out of the timing). The chart is copied to bench/train-cpu.png.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BATCHES = [8, 16, 32]
IMGSZ = 128


def run(workdir: Path) -> str:
    from pipeline.train.bench import bench_train, render_table, write_outputs

    subprocess.run([sys.executable, "-m", "pipeline", "-q", "run", str(REPO / "cfg" / "demo.yaml"),
                    "--set", f"work={workdir / 'work'}", "--set", f"source.path={workdir / 'imagenet'}",
                    "--until", "configs"], check=True)
    out = workdir / "sweep"
    shutil.rmtree(out, ignore_errors=True)
    rows = bench_train(workdir / "work" / "configs", out, BATCHES, imgsz=IMGSZ, epochs=2, device="cpu",
                       workers=2)
    title = f"bench train: yolov8n.yaml, {IMGSZ} px, 600 train / 205 val images, CPU"
    files = write_outputs(rows, out, title, "cpu")
    chart = REPO / "bench" / "train-cpu.png"
    shutil.copyfile(files["chart"], chart)
    return (f"## train: batch size on the CPU (`yolo-pipeline bench train`)\n\n"
            f"The demo's 10-class data (cfg/demo.yaml up to configs), YOLOv8n from scratch at {IMGSZ} px, "
            f"2 epochs per batch size through the `train` stage (the first left out of the timing), "
            f"2 loader workers. Peak memory is RSS summed over the process tree.\n\n"
            f"{render_table(rows, 'cpu')}\n\n![images/s and memory against batch size]"
            f"({chart.name})\n")
