"""`status`, `estimate`, `resume`, `stop` on run folders written here (no engine runs):
exit codes, one-line errors, --json keys, a folder of runs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import invoke

from pipeline.train.runs import process_start_time


def make_run(root: Path, *, backend="ultralytics", state=None, events=(), dataset=None, epochs=10) -> Path:
    root.mkdir(parents=True)
    (root / "run.json").write_text(json.dumps({
        "run_id": "x", "backend": backend, "total": epochs, "options": {"epochs": epochs},
        "dataset": dataset or {"classes": 10, "train_images": 600}}))
    (root / "state.json").write_text(json.dumps(state or {}))
    (root / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    return root


EPOCHS = [{"epoch": 1, "seconds": 60.0, "images": 600, "first_of_session": True},
          {"epoch": 2, "seconds": 20.0, "images": 600}, {"epoch": 3, "seconds": 30.0, "images": 600}]


def test_status_json_has_the_documented_keys(tmp_path):
    run = make_run(tmp_path / "a", state={"status": "stopped", "unit": "epoch", "done": 3, "total": 10,
                                          "restarts": 1, "speed": 0.04, "checkpoint": "/x/last_good.pt"},
                   events=[{"kind": "start", "at": 1.0, "detail": "d"}])
    out = json.loads(invoke("status", run, "--json").output)
    for key in ("status", "backend", "unit", "done", "total", "checkpoint", "restarts", "events",
                "speed", "eta_seconds", "pid"):
        assert key in out, key
    assert out["status"] == "stopped" and out["pid"] is None and out["events"][0]["kind"] == "start"


def test_status_of_a_folder_of_runs_is_one_line_each(tmp_path):
    make_run(tmp_path / "a", state={"status": "finished", "unit": "epoch", "done": 10, "total": 10})
    make_run(tmp_path / "b", state={"status": "running", "pid": 999999999, "unit": "epoch", "done": 2})
    (tmp_path / "not-a-run").mkdir()
    result = invoke("status", tmp_path)
    lines = result.output.strip().splitlines()
    assert len(lines) == 2 and "finished" in lines[0] and "killed" in lines[1]  # b's pid is gone
    runs = json.loads(invoke("status", tmp_path, "--json").output)["runs"]
    assert [r["status"] for r in runs] == ["finished", "killed"]


def test_status_of_an_empty_folder_is_a_one_line_error(tmp_path):
    result = invoke("status", tmp_path)
    assert result.exit_code == 2 and "no training run here" in result.output


def test_a_run_whose_supervisor_ended_without_its_final_state_reports_its_last_event(tmp_path):
    run = make_run(tmp_path / "a", state={"status": "running", "pid": 999999999},
                   events=[{"kind": "gave-up", "at": 2.0, "detail": "gave up: disk full"}])
    out = json.loads(invoke("status", run, "--json").output)
    assert out["status"] == "failed" and out["reason"] == "gave up: disk full"


def test_estimate_ultralytics_from_measured_images_per_second(tmp_path):
    run = make_run(tmp_path / "a", state={"status": "finished", "epoch_times": EPOCHS})
    out = json.loads(invoke("estimate", run, "--classes", 1000, "--epochs", 50, "--json").output)
    per_image = 1 / ((600 / 20 + 600 / 30) / 2)  # median of the two measured epochs, first left out
    assert out["units"] == 50 * 60_000 and out["per_unit_seconds"] == pytest.approx(per_image)
    assert out["seconds"] == pytest.approx(50 * 60_000 * per_image)
    assert out["basis"]["images"] == 60_000 and out["basis"]["measured_epochs"] == 2


def test_estimate_darknet_uses_the_max_batches_rule(tmp_path):
    run = make_run(tmp_path / "a", backend="darknet", state={"status": "finished", "speed": 2.0})
    out = json.loads(invoke("estimate", run, "--classes", 1000, "--json").output)
    assert out["units"] == 2_000_000 and out["seconds"] == pytest.approx(1_000_000)


def test_estimate_without_a_measurement_is_a_one_line_error(tmp_path):
    run = make_run(tmp_path / "a", state={"status": "running", "pid": 999999999})
    result = invoke("estimate", run, "--classes", 100)
    assert result.exit_code == 2 and "no epoch measured yet" in result.output


def test_resume_refuses_a_run_whose_supervisor_is_alive(tmp_path):
    me = os.getpid()
    alive = {"status": "running", "pid": me, "pid_start": process_start_time(me)}
    run = make_run(tmp_path / "a", state=alive)
    result = invoke("resume", run)
    assert result.exit_code == 2 and f"supervisor pid {me}" in result.output


def test_resume_and_stop_on_a_finished_run(tmp_path):
    run = make_run(tmp_path / "a", state={"status": "finished", "unit": "epoch", "done": 10, "total": 10})
    resumed = invoke("resume", run)
    assert resumed.exit_code == 0 and "already finished" in resumed.output
    stopped = invoke("stop", run)
    assert stopped.exit_code == 0 and "finished" in stopped.output


def test_resume_of_a_folder_that_is_no_run(tmp_path):
    result = invoke("resume", tmp_path)
    assert result.exit_code == 2 and "no training run here" in result.output


def test_status_names_the_model_to_use_apart_from_the_resumable_checkpoint(tmp_path):
    run = make_run(tmp_path / "a", state={"status": "finished", "unit": "epoch", "done": 10, "total": 10,
                                          "checkpoint": str(tmp_path / "a/checkpoints/last_good.pt"),
                                          "checkpoint_done": 10})
    (run / "ultralytics" / "weights").mkdir(parents=True)
    (run / "ultralytics" / "weights" / "best.pt").write_bytes(b"x")
    text = invoke("status", run).output
    assert f"model: {run / 'ultralytics/weights/best.pt'}" in text and "checkpoint (to resume):" in text
    assert json.loads(invoke("status", run, "--json").output)["model"].endswith("weights/best.pt")


def test_darknet_status_shows_the_map_and_the_best_weights(tmp_path):
    state = {"status": "running", "unit": "iteration", "done": 300, "total": 1000,
             "map": {"last": {"map": 0.41, "done": 300}, "best": {"map": 0.5, "done": 200},
                     "evaluations": [{"map": 0.5, "done": 200}, {"map": 0.41, "done": 300}]}}
    run = make_run(tmp_path / "d", backend="darknet", state=state)
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "best.weights").write_bytes(b"x")
    out = json.loads(invoke("status", run, "--json").output)
    assert out["map"] == {"last": {"map": 0.41, "done": 300}, "best": {"map": 0.5, "done": 200},
                          "evaluations": 2}
    assert out["model"] == str(run / "checkpoints" / "best.weights")
    assert "mAP@0.5: last 41.0% (iteration 300), best 50.0% (iteration 200)" in invoke("status", run).output


def test_the_progress_line_shows_the_map_and_no_epoch_zero(capsys):
    from pipeline.cli.train import ProgressPrinter

    printer = ProgressPrinter()
    printer.tty = False
    printer({"done": 0, "total": 5, "unit": "epoch"})
    printer({"done": 1, "total": 5, "unit": "epoch", "loss": 3.2, "metrics": {"metrics/mAP50(B)": 0.123}})
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["epoch 1/5  loss 3.2 mAP@0.5 12.3%"]
    resumed = ProgressPrinter()  # resumed after epoch 2: the batches of epoch 3 say done=2
    resumed.tty = False
    resumed({"done": 2, "total": 5, "unit": "epoch", "fraction": 0.3, "loss": 2.0})
    resumed({"done": 3, "total": 5, "unit": "epoch", "loss": 1.9})
    assert capsys.readouterr().err.splitlines() == ["epoch 3/5  loss 1.9"]


def test_train_on_the_dataset_folder_suggests_its_configs_folder(tmp_path):
    (tmp_path / "in10" / "cfg").mkdir(parents=True)
    (tmp_path / "in10" / "cfg" / "data.yaml").write_text("train: x\n")
    result = invoke("train", tmp_path / "in10", "--out", tmp_path / "run")
    assert result.exit_code == 2 and f"did you mean {tmp_path / 'in10' / 'cfg'}?" in result.output
    assert not (tmp_path / "run").exists()
