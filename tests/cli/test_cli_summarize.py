"""`yolo-pipeline summarize`: outputs, --json, several runs, projections, user errors."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

from conftest import invoke

LOGS = Path(__file__).parents[1] / "data" / "logs"


def test_one_darknet_log_writes_four_files(tmp_path):
    out = tmp_path / "rep"
    result = invoke("summarize", LOGS / "fire-detection_log.txt", "--out", out)
    assert result.exit_code == 0, result.output
    assert "best 48.12 % at iteration 6400" in result.output
    summary = json.loads((out / "summary.json").read_text())["runs"][0]
    assert (summary["best_map50"], summary["best_map50_step"]) == (0.481172, 6400)
    assert summary["format"] == "darknet-alexeyab" and summary["last_step"] == 6402
    with open(out / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6402 and rows[0]["run"] == "fire-detection_log"
    assert (rows[2499]["step"], rows[2499]["avg_loss"], rows[2499]["images"]) == (
        "2500", "2.454712", "160000")
    assert rows[6399]["map50"] == "0.481172" and rows[6400]["map50"] == ""
    report = (out / "report.md").read_text()
    assert "| 0 | fire | 50.11 % | 280 | 195 |" in report
    assert (out / "chart.png").read_bytes()[:4] == b"\x89PNG"


def test_json_and_max_batches(tmp_path):
    result = invoke("summarize", LOGS / "fishv4_log_train.txt", "--out", tmp_path,
                    "--max-batches", "2000", "--json")
    assert result.exit_code == 0
    data = json.loads(result.output)
    run = data["runs"][0]
    assert (run["max_steps"], run["max_steps_source"], run["remaining_steps"]) == (
        2000, "--max-batches", 864)
    assert run["projected_seconds_left"] > 0
    assert data["files"] == [str(tmp_path / n) for n in
                             ("summary.json", "metrics.csv", "report.md", "chart.png")]


def test_cfg_beside_the_log_and_cfg_option(tmp_path):
    log = tmp_path / "train.log"
    shutil.copy(LOGS / "Darknet3_train.log", log)
    (tmp_path / "model.cfg").write_text("[net]\nbatch=64\nmax_batches = 6000\n")
    result = invoke("summarize", log, "--json", "--out", tmp_path / "a")
    run = json.loads(result.output)["runs"][0]
    assert (run["max_steps"], run["max_steps_source"]) == (6000, "max_batches in model.cfg")
    assert run["remaining_steps"] == 3000 and run["nan_events"] == 0
    other = tmp_path / "other.cfg"
    other.write_text("[net]\nmax_batches=3000\n")
    result = invoke("summarize", log, "--cfg", other, "--json", "--out", tmp_path / "b")
    run = json.loads(result.output)["runs"][0]
    assert (run["remaining_steps"], run["ended"]) == (0, "finished: iteration 3000 of 3000")


def test_ultralytics_run_folder_with_args_yaml(tmp_path):
    run = tmp_path / "train"
    run.mkdir()
    shutil.copy(LOGS / "yolo11_resume-ocr_results.csv", run / "results.csv")
    (run / "args.yaml").write_text("task: detect\nepochs: 100\nimgsz: 640\n")
    result = invoke("summarize", run, "--json")
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert data["out"] == str(run / "summary")
    s = data["runs"][0]
    assert (s["name"], s["unit"], s["last_step"], s["max_steps"]) == ("train", "epoch", 50, 100)
    # 50 epochs left at the mean epoch time (4087.99 s / 50 epochs)
    assert abs(s["projected_seconds_left"] - 4087.99) < 1e-6
    assert s["train_seconds"] == 4087.99


def test_epochs_true_in_args_yaml_is_not_one_epoch(tmp_path):
    run = tmp_path / "train"
    run.mkdir()
    shutil.copy(LOGS / "yolo11_resume-ocr_results.csv", run / "results.csv")
    (run / "args.yaml").write_text("epochs: true\n")
    result = invoke("summarize", run, "--json")
    assert result.exit_code == 0 and json.loads(result.output)["runs"][0]["max_steps"] is None


def test_several_runs_side_by_side(tmp_path):
    out = tmp_path / "cmp"
    result = invoke("summarize", LOGS / "yolov5_lego_results.csv",
                    LOGS / "yolov8-0_fire-smoke_results.csv", LOGS / "WBC-detection_training_log.txt",
                    "--out", out)
    assert result.exit_code == 0
    report = (out / "report.md").read_text()
    assert report.startswith("# Training comparison")
    assert ("| | yolov5_lego_results | yolov8-0_fire-smoke_results | "
            "WBC-detection_training_log |") in report
    assert "interrupted (^C) after iteration 1028" in report
    with open(out / "metrics.csv", newline="") as f:
        runs = [r["run"] for r in csv.DictReader(f)]
    assert runs.count("yolov5_lego_results") == 50 and runs.count("WBC-detection_training_log") == 1024
    assert len(json.loads((out / "summary.json").read_text())["runs"]) == 3


def test_nan_values_are_null_in_json(tmp_path):
    log = tmp_path / "nan.log"
    log.write_text(" 1: 5.0, 5.0 avg loss, 0.001 rate, 1.0 seconds, 64 images, 1.0 hours left\n"
                   " 2: -nan, -nan avg loss, 0.001 rate, 1.0 seconds, 128 images, 1.0 hours left\n")
    result = invoke("summarize", log, "--out", tmp_path / "o", "--json")
    run = json.loads(result.output)["runs"][0]
    assert run["final_loss"] is None and run["nan_events"] == 1
    assert "turned nan/inf at iteration 2" in (tmp_path / "o" / "report.md").read_text()


def test_user_errors_are_one_line_exit_2(tmp_path):
    junk = tmp_path / "notes.txt"
    junk.write_text("nothing to see\n")
    result = invoke("summarize", junk, "--out", tmp_path / "o")
    assert result.exit_code == 2
    assert result.output.strip() == f"Error: {junk}: not a darknet console log or an Ultralytics results.csv"
    empty = tmp_path / "emptydir"
    empty.mkdir()
    result = invoke("summarize", empty)
    assert result.exit_code == 2 and "no results.csv or training log in this folder" in result.output
    result = invoke("summarize", tmp_path / "missing.log")
    assert result.exit_code == 2 and "does not exist" in result.output
    result = invoke("summarize", LOGS / "fishv4_log_train.txt", "--out", junk)
    assert result.exit_code == 2 and "is a file" in result.output
    result = invoke("summarize", LOGS / "fishv4_log_train.txt", "--out", tmp_path / "x",
                    "--cfg", tmp_path / "nope.cfg")
    assert result.exit_code == 2 and "--cfg" in result.output
    result = invoke("summarize")
    assert result.exit_code == 2 and "Missing argument" in result.output


def test_huge_numbers_and_unwritable_out_are_not_tracebacks(tmp_path):
    log = tmp_path / "huge.log"
    log.write_text("1: 1e999, 1e999 avg, 0.001 rate, 1e308 seconds, 64 images\n"
                   "2: 5.0, 5.0 avg, 0.001 rate, 1e308 seconds, 99999999999999999999 images\n")
    result = invoke("summarize", log, "--out", tmp_path / "o", "--max-batches", 10**22)
    assert result.exit_code == 0 and "projected finish" in result.output
    (tmp_path / "file").write_text("")
    result = invoke("summarize", log, "--out", tmp_path / "file" / "o")
    assert result.exit_code == 2 and result.output.startswith("Error: cannot write to ")


def test_help_has_examples():
    result = invoke("summarize", "--help")
    assert result.exit_code == 0 and "yolo-pipeline summarize runs/detect/train" in result.output
