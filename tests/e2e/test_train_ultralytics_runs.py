"""`train` with REAL Ultralytics on the CPU at toy size: SIGKILL of the supervisor and
`resume`; `--detach`, `status`, `stop` and `resume`; what run.json records."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from runkit import cli, events, marked_processes, sigkill, start, toy_configs, wait_for

pytestmark = pytest.mark.slow
TOY = ("--imgsz", 64, "--batch", 4, "--workers", 0)


@pytest.fixture(scope="module")
def cfg(tmp_path_factory) -> Path:
    return toy_configs(tmp_path_factory.mktemp("ultra"), annotated=10, val=2)


def checkpoint_of(run: Path, epoch: int) -> bool:
    """The worker reported the checkpoint of `epoch` (read at once, not via state.json)."""
    path = run / "progress.jsonl"
    return path.exists() and any(
        json.loads(x).get("kind") == "checkpoint" and json.loads(x)["epoch"] == epoch
        for x in path.read_text().splitlines() if x.endswith("}"))


def epochs_in(results: Path) -> list[int]:
    with open(results) as f:
        return [int(float(row["epoch"])) for row in csv.DictReader(f)]


def test_sigkill_supervisor_after_epoch_2_then_resume(cfg, tmp_path):
    run = tmp_path / "run"
    proc = start("train", cfg, "--out", run, "--epochs", 5, *TOY)
    wait_for(lambda: checkpoint_of(run, 2), 300, "the checkpoint of epoch 2")
    assert marked_processes(run), "the worker runs"
    sigkill(proc)
    wait_for(lambda: not marked_processes(run), 10, "the worker to end with its supervisor")
    assert json.loads(cli("status", run, "--json").stdout)["status"] == "killed"
    resumed = cli("resume", run, "--json")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    st = json.loads(resumed.stdout)
    assert st["status"] == "finished" and st["done"] == st["total"] == 5
    assert epochs_in(run / "ultralytics" / "results.csv") == [1, 2, 3, 4, 5]  # each exactly once
    chosen = [e for e in events(run) if e["kind"] == "checkpoint-chosen"]
    assert chosen and "after epoch" in chosen[0]["detail"]
    again = cli("resume", run)
    assert again.returncode == 0 and "already finished" in again.stdout
    info = json.loads((run / "run.json").read_text())
    for key in ("command", "backend", "options", "digests", "versions", "host", "created", "run_id"):
        assert info[key], key
    assert info["versions"]["ultralytics"] and info["options"]["seed"] == 0
    assert not (run / "ultralytics" / "state.json").exists()  # ours stays out of the engine folder


def test_detach_status_stop_resume(cfg, tmp_path):
    run = tmp_path / "run"
    started = cli("train", cfg, "--out", run, "--epochs", 3, "--detach", *TOY)
    assert started.returncode == 0 and "background" in started.stdout, started.stdout + started.stderr
    st = json.loads(cli("status", run, "--json").stdout)
    assert st["status"] == "running" and st["pid"] and st["unit"] == "epoch" and st["total"] == 3
    again = cli("resume", run)
    assert again.returncode == 2 and f"pid {st['pid']}" in again.stderr
    wait_for(lambda: checkpoint_of(run, 1), 300, "epoch 1")
    stopped = cli("stop", run)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout, stopped.stdout + stopped.stderr
    st = json.loads(cli("status", run, "--json").stdout)
    assert st["status"] == "stopped" and st["pid"] is None and st["done"] < 3
    assert not marked_processes(run)
    resumed = cli("resume", run, "--json")
    assert resumed.returncode == 0, resumed.stderr
    final = json.loads(resumed.stdout)
    assert final["status"] == "finished" and final["done"] == 3
    assert epochs_in(run / "ultralytics" / "results.csv") == [1, 2, 3]
    kinds = [e["kind"] for e in final["events"]]
    assert kinds.index("stop-requested") < kinds.index("stopped") < kinds.index("resume")
    assert final["speed"] and final["eta_seconds"] == 0


def test_dry_run_probes_and_writes_nothing(cfg, tmp_path):
    run = tmp_path / "run"
    plan = cli("train", cfg, "--out", run, "--epochs", 7, "--dry-run", "--json", *TOY, "--", "lr0=0.02")
    assert plan.returncode == 0, plan.stderr
    result = json.loads(plan.stdout)
    assert result["command"].startswith("yolo detect train data=") and "lr0=0.02" in result["command"]
    assert result["total"] == 7 and result["images"] == 20
    assert result["probe"]["seconds"] > 0
    assert not run.exists()


def test_user_errors_are_one_line_and_write_nothing(cfg, tmp_path):
    for args, words in ((("--model", "yolov8n.pt"), "nothing is downloaded"),
                        (("--", "lr1=0.1"), "not an Ultralytics train argument"),
                        (("--", "epochs=3"), "--epochs")):
        done = cli("train", cfg, "--out", tmp_path / "r", *args)
        assert done.returncode == 2 and words in done.stderr and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
        assert not (tmp_path / "r").exists()


def test_a_killed_worker_is_restarted_from_its_checkpoint(cfg, tmp_path):
    """The trainer dying (OOM killer, segfault) never takes the supervisor down."""
    import os
    import signal

    run = tmp_path / "run"
    proc = start("train", cfg, "--out", run, "--epochs", 4, "--max-restarts", 1, *TOY)
    wait_for(lambda: checkpoint_of(run, 2), 300, "the checkpoint of epoch 2")
    worker = json.loads((run / "state.json").read_text())["worker_pid"]
    os.kill(worker, signal.SIGKILL)
    assert proc.wait(timeout=300) == 0, proc.stdout.read()
    st = json.loads(cli("status", run, "--json").stdout)
    assert st["status"] == "finished" and st["restarts"] == 1 and st["done"] == 4
    crash = next(e for e in st["events"] if e["kind"] == "crashed")
    assert "SIGKILL" in crash["detail"]
    assert epochs_in(run / "ultralytics" / "results.csv") == [1, 2, 3, 4]


def test_an_engine_refusing_its_arguments_fails_without_restarts(cfg, tmp_path):
    run = tmp_path / "run"
    done = cli("train", cfg, "--out", run, "--epochs", 2, *TOY, "--", "lr0=5")  # Ultralytics: 0..1
    assert done.returncode == 1
    st = json.loads(cli("status", run, "--json").stdout)
    assert st["status"] == "failed" and st["restarts"] == 0
    assert "before training" in st["reason"] and "lr0" in st["reason"]


@pytest.fixture
def small_disk(tmp_path):
    """A 40 MB tmpfs (one in-training last.pt is ~30 MB); grown later with `remount`."""
    import subprocess

    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", str(mount)],
                          capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({made.stderr.decode().strip()}); "
                    "tests/unit/test_supervisor.py covers the supervisor's side")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_fails_with_its_reason_then_resumes_once_there_is_room(cfg, small_disk):
    import subprocess

    run = small_disk / "run"
    done = cli("train", cfg, "--out", run, "--epochs", 3, "--max-restarts", 1, *TOY)
    assert done.returncode == 1, done.stdout + done.stderr
    st = json.loads(cli("status", run, "--json").stdout)
    assert st["status"] == "failed" and "No space left on device" in st["reason"], st["reason"]
    subprocess.run(["mount", "-o", "remount,size=400m", str(small_disk)], check=True)
    resumed = cli("resume", run, "--json")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert json.loads(resumed.stdout)["status"] == "finished"
    assert epochs_in(run / "ultralytics" / "results.csv") == [1, 2, 3]
