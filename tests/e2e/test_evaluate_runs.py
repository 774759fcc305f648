"""`evaluate` on REAL trainings at toy size: Ultralytics `val` of a 2-epoch 64 px run, and
AlexeyAB's `detector map` of a 30-iteration yolov4-tiny run (val, and test through a temp
.data); the files, a row per class, the overall figures."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from runkit import ab_toy_configs, cli, toy_configs

pytestmark = pytest.mark.slow
OVERALL = {"precision", "recall", "f1", "map50", "map50_95", "tp", "fp", "fn"}


def check_files(doc: dict, classes: int) -> None:
    files = {k: Path(v) for k, v in doc["files"].items()}
    assert sorted(files) == ["chart", "csv", "json", "markdown"] and all(p.is_file() for p in files.values())
    assert files["chart"].read_bytes()[:4] == b"\x89PNG"
    rows = list(csv.DictReader(files["csv"].open()))
    assert len(rows) == classes + 1 and rows[-1]["name"] == "all"
    assert json.loads(files["json"].read_text())["classes"] == doc["classes"]


def test_ultralytics_run(tmp_path):
    cfg = toy_configs(tmp_path, classes=2, annotated=4, val=2)
    run = tmp_path / "run"
    done = cli("train", cfg, "--out", run, "--epochs", 2, "--imgsz", 64, "--batch", 4, "--workers", 0)
    assert done.returncode == 0, done.stdout + done.stderr
    result = cli("evaluate", run, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    doc = json.loads(result.stdout)
    assert doc["engine"] == "ultralytics" and doc["weights"].endswith("weights/best.pt")
    assert [c["name"] for c in doc["classes"]] == (cfg / "toy.names").read_text().split("\n")[:2]
    for row in doc["classes"]:
        assert row["instances"] >= 0 and row["tp"] is not None and row["fn"] == row["instances"] - row["tp"]
    assert set(doc["overall"]) >= OVERALL and doc["overall"]["map50"] is not None
    assert doc["images"] == 2 and (doc["degenerate"] is None or doc["degenerate"].startswith("degenerate:"))
    check_files(doc, 2)
    assert (run / "evaluation" / "ultralytics-val-val.log").is_file()
    refused = cli("evaluate", run, "--split", "test")
    assert refused.returncode == 2 and "has no test list" in refused.stderr


@pytest.mark.darknet
def test_alexeyab_run_val_and_test(tmp_path, ab_darknet):
    ab_toy_configs(tmp_path, ab_darknet, annotated=4, max_batches=30)
    run = tmp_path / "run"
    done = cli("train", tmp_path / "cfg", "--out", run, "--backend", "darknet", "--darknet", ab_darknet)
    assert done.returncode == 0, done.stdout + done.stderr
    result = cli("evaluate", run)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[darknet alexeyab]" in result.stdout and "AP@0.5" in result.stdout
    assert "AP@0.5:0.95" not in result.stdout
    doc = json.loads((run / "evaluation" / "evaluation-val.json").read_text())
    assert doc["command"][1:3] == ["detector", "map"] and doc["source"] == "darknet detector map"
    assert doc["weights"] in (str(run / "checkpoints" / "best.weights"),
                              str(run / "darknet" / "backup" / "toy_final.weights"))
    assert [c["instances"] for c in doc["classes"]] and sum(c["instances"] for c in doc["classes"]) >= 3
    assert doc["overall"]["map50"] is not None and doc["overall"]["map50_95"] is None
    check_files(doc, 2)
    # --split test: a test= list in the source .data becomes valid= of a temp .data
    source = tmp_path / "cfg" / "toy.data"
    source.write_text(source.read_text() + f"test={tmp_path / 'cfg' / 'valid.txt'}\n")
    test = cli("evaluate", run, "--split", "test", "--weights", "last", "--json")
    assert test.returncode == 0, test.stdout + test.stderr
    tdoc = json.loads(test.stdout)
    assert tdoc["split"] == "test" and tdoc["weights"].endswith("toy_final.weights")
    assert tdoc["command"][3].endswith("toy-test.data") and (run / "evaluation" / "ap-test.png").is_file()
