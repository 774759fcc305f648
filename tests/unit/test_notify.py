"""notify: the run's figures reach the command's environment; failures come back as one line."""

from __future__ import annotations

import shlex
import time

import pipeline.train.notify as notify_module
from pipeline.train.notify import notify


def test_the_command_sees_the_run_in_its_environment(tmp_path):
    out = tmp_path / "env.txt"
    cmd = f"env | grep '^YOLO_PIPELINE_' | sort > {shlex.quote(str(out))}"
    assert notify(cmd, tmp_path / "run", "failed", "stall: no progress\nfor 31 min", "gave-up") is None
    env = dict(line.split("=", 1) for line in out.read_text().splitlines())
    assert env == {"YOLO_PIPELINE_RUN": str(tmp_path / "run"), "YOLO_PIPELINE_STATUS": "failed",
                   "YOLO_PIPELINE_REASON": "stall: no progress for 31 min", "YOLO_PIPELINE_EVENT": "gave-up"}


def test_a_failing_command_says_its_exit_code_and_stderr(tmp_path):
    said = notify("echo 'no route to host' >&2; exit 3", tmp_path, "finished", "", "finished")
    assert said == "notify command failed (exit code 3): no route to host"
    assert "exit code 127" in notify("no-such-notifier-here", tmp_path, "finished", "", "finished")


def test_a_hanging_command_is_killed_with_its_children(tmp_path):
    began = time.monotonic()
    said = notify("sleep 30 & sleep 30", tmp_path, "running", "", "bottleneck", timeout=0.5)
    assert said == "notify command timed out after 0.5 s and was killed"
    assert time.monotonic() - began < 5


def test_a_command_that_cannot_start(tmp_path, monkeypatch):
    monkeypatch.setattr(notify_module, "SHELL", str(tmp_path / "no-shell"))
    said = notify("true", tmp_path, "finished", "", "finished")
    assert said is not None and said.startswith("notify command cannot start: ")
