"""`summarize` through the CLI on what misled before (issue 20): broken extreme values, a
run folder still running, the model a run used, percentages next to fractions."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

from pipeline.train.runs import process_start_time

LOGS = Path(__file__).parents[1] / "data" / "logs"


def results_with(path: Path, values: dict[int, tuple[str, str]]) -> Path:
    """A copy of a real YOLO11 results.csv with `{row: (column, value)}` written in."""
    with open(LOGS / "yolo11_resume-ocr_results.csv", newline="") as f:
        rows = list(csv.reader(f))
    for i, (column, value) in values.items():
        rows[i][rows[0].index(column)] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    return path


def test_extreme_values_are_left_off_the_chart_and_counted(tmp_path, cli_run):
    csv_file = results_with(tmp_path / "results.csv", {
        5: ("train/box_loss", "-1e308"), 8: ("train/box_loss", "1e308"),
        11: ("val/box_loss", "inf"), 14: ("metrics/mAP50(B)", "1e308")})
    out = tmp_path / "o"
    result = cli_run("summarize", csv_file, "--out", out)
    assert result.exit_code == 0, result.output
    assert (out / "chart.png").read_bytes()[:4] == b"\x89PNG"
    run = json.loads((out / "summary.json").read_text())["runs"][0]
    assert run["chart_skipped"] == 4
    assert run["min_loss"] > 0 and run["best_map50"] <= 1  # the broken values are no minimum/best
    assert "not drawn          4 value(s) infinite, beyond ±1e15 or an mAP outside 0..1" in result.output
    assert "4 value(s) infinite" in (out / "report.md").read_text()


def test_a_run_folder_still_running_says_so(tmp_path, cli_run):
    run = tmp_path / "run"
    results_with(run / "ultralytics" / "results.csv", {})
    me = os.getpid()
    (run / "run.json").write_text(json.dumps({"run_id": "x", "backend": "ultralytics", "total": 100,
                                              "model": "/abs/cfg/models/v8/yolov8n.yaml",
                                              "options": {"model": "yolov8n.yaml", "epochs": 100}}))
    (run / "state.json").write_text(json.dumps({"status": "running", "pid": me,
                                                "pid_start": process_start_time(me), "done": 50}))
    start = {"kind": "start", "at": 1.0, "detail": "", "step": 0}
    (run / "events.jsonl").write_text(json.dumps(start) + "\n")
    result = cli_run("summarize", run, "--json")
    assert result.exit_code == 0, result.output
    s = json.loads(result.output)["runs"][0]
    assert (s["status"], s["model"]) == ("running", "yolov8n")
    report = (run / "summary" / "report.md").read_text()
    assert report.startswith("# Training summary: run (still running)")
    assert "| status | still running: these numbers are a snapshot |" in report
    text = cli_run("summarize", run).output.splitlines()
    assert text[0].endswith("(STILL RUNNING)") and "[yolov8n, ultralytics results.csv]" in text[0]


def test_an_ultralytics_folder_is_labelled_with_its_model(tmp_path, cli_run):
    run = tmp_path / "train"
    run.mkdir()
    shutil.copy(LOGS / "yolo11_resume-ocr_results.csv", run / "results.csv")
    (run / "args.yaml").write_text("task: detect\nmodel: yolov8n.yaml\nepochs: 100\n")
    result = cli_run("summarize", run)
    first = result.output.splitlines()[0]
    assert first.startswith("train  [yolov8n, ultralytics results.csv]") and "ultralytics-11" not in first
    assert "(yolov8n, ultralytics results.csv)" in (run / "summary" / "report.md").read_text()
    data = json.loads(cli_run("summarize", run, "--json").output)["runs"][0]
    assert (data["model"], data["format"]) == ("yolov8n", "ultralytics-11")


def test_summarize_does_not_mix_fractions_and_percentages(tmp_path, cli_run):
    result = cli_run("summarize", LOGS / "fire-detection_log.txt", "--out", tmp_path)
    lines = {ln.split("  ", 2)[1].strip(): ln for ln in result.output.splitlines()[1:-1]
             if ln.startswith("  ")}
    assert "best 48.12 % at iteration 6400" in lines["mAP@0.5"]
    assert "P 61.00 %, R 34.00 %, F1 43.00 %" in lines["at best mAP"]
    assert "P 0.61" not in (tmp_path / "report.md").read_text()
