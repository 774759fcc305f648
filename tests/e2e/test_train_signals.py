"""One owner per run and the signals a long run meets, with the REAL Debian darknet: SIGHUP
(an SSH session closing) stops at a safe point instead of killing the run, a first Ctrl-C says
what happens and a second kills the engine now, a second supervisor on a run is refused."""

from __future__ import annotations

import json
import shutil
import signal

import pytest
from runkit import cli, start, state, toy_configs, wait_for

from pipeline.train.runs import RunBusy, RunFolder, RunLock, lock_holder

pytestmark = [
    pytest.mark.slow,
    pytest.mark.darknet,
    pytest.mark.skipif(shutil.which("darknet") is None, reason="darknet not installed"),
]


@pytest.fixture(scope="module")
def cfg(tmp_path_factory):
    return toy_configs(tmp_path_factory.mktemp("sig"), extra=("--max-batches", 5000))


def _started(cfg, run):
    proc = start("train", cfg, "--out", run, "--backend", "darknet")
    wait_for(lambda: state(run).get("done", 0) >= 3, 120, "iteration 3")
    return proc


def test_sighup_stops_at_a_safe_point_and_the_run_resumes(cfg, tmp_path):
    run = tmp_path / "hup"
    proc = _started(cfg, run)
    proc.send_signal(signal.SIGHUP)
    assert proc.wait(timeout=60) == 130
    status = json.loads(cli("status", run, "--json").stdout)
    assert status["status"] == "stopped"
    assert any(e["kind"] == "stop-requested" and "no checkpoint yet" in e["detail"] for e in status["events"])


def test_ctrl_c_twice_kills_the_engine_now_and_says_how_to_resume(cfg, tmp_path):
    run = tmp_path / "int"
    proc = _started(cfg, run)
    proc.send_signal(signal.SIGINT)
    wait_for(lambda: any(e["kind"] == "stop-requested" for e in state(run).get("events", [])), 10,
             "the stop request")
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert "Ctrl-C again to kill now" in out and f"yolo-pipeline resume {run}" in out
    assert json.loads(cli("status", run, "--json").stdout)["status"] == "stopped"


def test_a_second_supervisor_is_refused_naming_the_owner(cfg, tmp_path):
    run = tmp_path / "two"
    proc = _started(cfg, run)
    try:
        holder = lock_holder(run)
        assert holder and holder["pid"] == proc.pid
        second = cli("resume", run)
        assert second.returncode == 2 and f"pid {proc.pid}" in second.stderr, second.stderr
        with pytest.raises(RunBusy, match=f"pid {proc.pid}"):
            RunLock(RunFolder(run)).acquire()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert lock_holder(run) is None  # free once its supervisor ended


def test_resume_of_a_folder_restarts_every_killed_run_with_the_changes_recorded(cfg, tmp_path):
    from runkit import sigkill

    runs = tmp_path / "runs"
    killed = runs / "a"
    proc = _started(cfg, killed)
    sigkill(proc)  # as a reboot would
    wait_for(lambda: json.loads(cli("status", killed, "--json").stdout)["status"] == "killed", 30, "killed")
    (runs / "b").mkdir()
    (runs / "b" / "run.json").write_text((killed / "run.json").read_text())
    (runs / "b" / "state.json").write_text(json.dumps({"status": "failed", "reason": "an old failure"}))
    result = cli("resume", runs, "--max-restarts", 7)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{killed}: killed, resumed in the background" in result.stdout
    assert f"{runs / 'b'}: failed, left alone" in result.stdout
    wait_for(lambda: state(killed).get("status") == "running" and state(killed).get("done", 0) > 3, 60,
             "the resumed run to train")
    info = json.loads((killed / "run.json").read_text())
    assert info["options"]["max_restarts"] == 7
    events = (killed / "events.jsonl").read_text()
    assert "options-changed" in events and "max_restarts 2 -> 7" in events
    assert cli("stop", killed).returncode == 0


def test_stop_before_the_first_checkpoint_says_a_resume_starts_over(cfg, tmp_path):
    run = tmp_path / "early"
    proc = _started(cfg, run)
    stopped = cli("stop", run)
    proc.wait(timeout=60)
    assert "no checkpoint yet: a resume starts over" in stopped.stderr, stopped.stderr
    assert f"stopped; continue with: yolo-pipeline resume {run}" in stopped.stdout
    resumed = start("resume", run)
    wait_for(lambda: any(e["kind"] == "fresh-start" for e in state(run).get("events", [])), 60,
             "a fresh-start event")
    resumed.send_signal(signal.SIGTERM)
    resumed.wait(timeout=60)
