"""Logs from real training runs, made here: the Debian darknet binary and Ultralytics on CPU.

Both runs are tiny (4-8 drawn images, a few iterations/epochs); what is checked is that
the parsers read what the real programs print today, not what old logs printed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import invoke

from pipeline.logs import PARSERS, sniff
from pipeline.logs.rows import Event, LogStats, MetricRow

DARKNET_CFG = Path("/usr/share/darknet/cfg/yolov3-tiny.cfg")


def draw_set(folder: Path, n: int, size: int) -> list[tuple[Path, str]]:
    """n JPEGs with one filled rectangle each; returns (image, YOLO label line)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        img = np.full((size, size, 3), 255, np.uint8)
        x0, y0, x1, y1 = 8 + 4 * i, 10, size // 2 + 8 + 4 * i, size // 2 + 10
        cv2.rectangle(img, (x0, y0), (x1, y1), (40, 40, 200), -1)
        path = folder / f"s{i}.jpg"
        cv2.imwrite(str(path), img)
        line = (f"0 {(x0 + x1) / 2 / size:.6f} {(y0 + y1) / 2 / size:.6f} "
                f"{(x1 - x0) / size:.6f} {(y1 - y0) / size:.6f}\n")
        out.append((path, line))
    return out


def tiny_cfg(text: str, classes: int) -> str:
    """yolov3-tiny edited for a run of 8 iterations at 96 px (the template is not copied)."""
    edits = [(r"(?m)^batch=\d+", "batch=2"), (r"(?m)^subdivisions=\d+", "subdivisions=1"),
             (r"(?m)^width=\d+", "width=96"), (r"(?m)^height=\d+", "height=96"),
             (r"(?m)^max_batches *= *\d+", "max_batches=8"), (r"(?m)^steps=.*", "steps=4,6"),
             (r"(?m)^burn_in=\d+", "burn_in=2"), (r"(?m)^classes=\d+", f"classes={classes}"),
             (r"(?m)^random=1", "random=0")]
    for pattern, value in edits:
        text, n = re.subn(pattern, value, text)
        assert n >= 1, pattern
    parts = re.split(r"(?m)^(?=\[yolo\])", text)  # filters= of the conv before each [yolo]
    for i in range(len(parts) - 1):
        head, sep, tail = parts[i].rpartition("filters=")
        parts[i] = head + sep + f"{(classes + 5) * 3}" + tail[tail.index("\n"):]
    return "".join(parts)


@pytest.mark.slow
@pytest.mark.darknet
def test_log_of_the_real_darknet_binary(tmp_path):
    if not shutil.which("darknet") or not DARKNET_CFG.is_file():
        pytest.skip("the Debian darknet package is not installed")
    assert not re.search("images|JPEGImages|raw", str(tmp_path))  # pjreddie's label rewrite
    pics = draw_set(tmp_path / "pics", 4, 96)
    for path, line in pics:
        path.with_suffix(".txt").write_text(line)
    (tmp_path / "train.txt").write_text("".join(f"{p}\n" for p, _ in pics))
    (tmp_path / "t.names").write_text("box\n")
    (tmp_path / "backup").mkdir()
    (tmp_path / "t.data").write_text(
        f"classes=1\ntrain={tmp_path}/train.txt\nvalid={tmp_path}/train.txt\n"
        f"names={tmp_path}/t.names\nbackup={tmp_path}/backup\n")
    (tmp_path / "t.cfg").write_text(tiny_cfg(DARKNET_CFG.read_text(), classes=1))
    log = tmp_path / "train.log"
    with open(log, "wb") as f:
        proc = subprocess.run(["stdbuf", "-oL", "-eL", "darknet", "detector", "train", "t.data",
                               "t.cfg"], cwd=tmp_path, stdout=f, stderr=subprocess.STDOUT,
                              timeout=120)
    text = log.read_text(errors="replace")
    assert proc.returncode == 0, text[-2000:]
    assert sniff(log)[0] == "darknet"

    stats = LogStats()
    items = list(PARSERS["darknet"](str(log), stats))
    rows = [x for x in items if isinstance(x, MetricRow)]
    assert stats.format == "darknet-pjreddie"
    assert [r.step for r in rows] == list(range(1, 9))
    assert [r.images for r in rows] == [2 * i for i in range(1, 9)]  # batch=2
    assert rows[1].lr == 0.001 and rows[-1].lr == 0.00001  # steps=4,6 scales=.1,.1
    assert len(re.findall(r"(?m)^\d+: .* avg, ", text)) == 8
    saves = [e for e in items if isinstance(e, Event) and e.kind == "save"]
    assert saves[-1].detail == f"{tmp_path}/backup/t_final.weights"
    if "Avg IOU: -nan" in text:  # a head without objects in the batch: not a NaN event
        assert not [e for e in items if isinstance(e, Event) and e.kind == "nan"]

    result = invoke("summarize", log, "--out", tmp_path / "summary", "--json")
    assert result.exit_code == 0, result.output
    s = json.loads(result.output)["runs"][0]
    assert (s["max_steps"], s["max_steps_source"], s["remaining_steps"]) == (
        8, "max_batches in t.cfg", 0)
    assert s["ended"] == f"finished: {tmp_path}/backup/t_final.weights"
    assert [lr for _, lr in s["lr_schedule"]] == [0.001, 0.0001, 0.00001]
    assert (tmp_path / "summary" / "chart.png").stat().st_size > 10_000


@pytest.mark.slow
def test_results_csv_of_a_real_ultralytics_run(tmp_path):
    from pipeline.ultralytics.env import offline_ultralytics

    offline_ultralytics()
    from ultralytics import YOLO

    for split in ("train", "val"):
        for path, line in draw_set(tmp_path / "data" / "images" / split, 8, 64):
            label = tmp_path / "data" / "labels" / split / f"{path.stem}.txt"
            label.parent.mkdir(parents=True, exist_ok=True)
            label.write_text(line)
    (tmp_path / "data.yaml").write_text(
        f"path: {tmp_path / 'data'}\ntrain: images/train\nval: images/val\nnames:\n  0: box\n")
    YOLO("yolov8n.yaml").train(
        data=str(tmp_path / "data.yaml"), imgsz=32, epochs=2, batch=4, workers=0, plots=False,
        device="cpu", project=str(tmp_path / "runs"), name="tiny", exist_ok=True, verbose=False,
        amp=False, seed=0)
    run = tmp_path / "runs" / "tiny"
    assert sniff(run) == ("ultralytics", run / "results.csv")

    stats = LogStats()
    rows = [x for x in PARSERS["ultralytics"](str(run / "results.csv"), stats)
            if isinstance(x, MetricRow)]
    assert stats.format == "ultralytics-11"  # 8.3+ layout: a `time` column
    assert [r.step for r in rows] == [1, 2]
    assert all(r.loss is not None and r.loss > 0 and r.val_loss is not None for r in rows)
    assert all(r.map50 is not None and 0 <= r.map50 <= 1 for r in rows)
    assert 0 < rows[0].elapsed < rows[1].elapsed

    result = invoke("summarize", run, "--json")
    assert result.exit_code == 0, result.output
    s = json.loads(result.output)["runs"][0]
    assert (s["unit"], s["last_step"], s["max_steps"], s["max_steps_source"]) == (
        "epoch", 2, 2, "args.yaml epochs")
    assert s["ended"] == "finished: epoch 2 of 2" and s["remaining_steps"] == 0
    assert (run / "summary" / "report.md").is_file()
