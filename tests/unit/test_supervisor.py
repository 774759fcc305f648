"""The supervisor's state machine with a fake engine (milliseconds): restarts, give-up, NaN
policy, stall, stop. The real engines are exercised in tests/e2e/test_train_*_runs.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from pipeline.train import supervisor as sup
from pipeline.train.options import TrainOptions
from pipeline.train.protocol import PROGRESS, VERDICT, Launch, Note, Outcome, OutcomeKind
from pipeline.train.runs import RunFolder


class FakeBackend:
    """Each attempt runs `script[i]` = (python code, notes to report, outcome)."""

    name, unit, poll_seconds = "fake", "iteration", 0.01

    def __init__(self, script):
        self.script = list(script)
        self.launches: list[bool] = []
        self.pending: list[Note] = []
        self.current = None

    def launch(self, attempt, healthy_only):
        self.launches.append(healthy_only)
        if not self.script:
            return None
        code, notes, outcome = self.script.pop(0)
        self.pending, self.current = list(notes), outcome
        return Launch([sys.executable, "-c", code], Path("."), {})

    def poll(self, final=False):
        out, self.pending = self.pending, []
        return out

    def outcome(self, returncode):
        return self.current

    def request_stop(self, pid, at_epoch_end=False):
        import os
        import signal

        os.kill(pid, signal.SIGTERM)
        return 5.0


def make(tmp_path, script, **opts):
    run = RunFolder(tmp_path)
    run.run_json.write_text(json.dumps({"run_id": "x", "total": 10}))
    options = TrainOptions(cfgdir=tmp_path, out=tmp_path, backend="ultralytics", **opts)
    backend = FakeBackend(script)
    return sup.Supervisor(run, options, backend), backend, run


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch):
    monkeypatch.setattr(sup.Supervisor, "_sleep", lambda self, seconds: self.stop_asked)


EXIT0 = "pass"


def kinds(run):
    return [e["kind"] for e in run.read_events()]


def test_crashes_are_restarted_then_given_up(tmp_path):
    crash = ("import sys; sys.exit(3)", [], Outcome(OutcomeKind.CRASHED, "exit 3"))
    s, backend, run = make(tmp_path, [crash] * 3, max_restarts=2)
    assert s.run_to_end(resuming=False) == 1
    assert kinds(run).count("crashed") == 3 and kinds(run).count("restart") == 2
    assert "gave-up" in kinds(run)
    state = run.read_state()
    assert state["status"] == "failed" and state["restarts"] == 2 and "gave up after 2" in state["reason"]


def test_a_crash_then_a_finish(tmp_path):
    script = [("import sys; sys.exit(3)", [Note(PROGRESS, data={"done": 4, "total": 10})],
               Outcome(OutcomeKind.CRASHED, "boom")),
              (EXIT0, [Note(PROGRESS, data={"done": 10, "total": 10})], Outcome(OutcomeKind.FINISHED,
                                                                                "done"))]
    s, backend, run = make(tmp_path, script)
    assert s.run_to_end(resuming=False) == 0
    state = run.read_state()
    assert state["status"] == "finished" and state["done"] == 10 and state["restarts"] == 1
    assert backend.launches == [False, False]  # a crash resumes from the newest checkpoint


def test_nan_restarts_from_a_healthy_checkpoint(tmp_path):
    nan = (EXIT0, [Note(VERDICT, "avg nan", {"kind": "nan", "line": "3: nan, nan avg"})], None)
    ok = (EXIT0, [], Outcome(OutcomeKind.FINISHED, "done"))
    s, backend, run = make(tmp_path, [nan, ok])
    assert s.run_to_end(resuming=False) == 0
    assert backend.launches == [False, True]
    nan_event = next(e for e in run.read_events() if e["kind"] == "nan")
    assert "3: nan, nan avg" in nan_event["detail"]


def test_on_nan_stop_fails_at_once(tmp_path):
    nan = (EXIT0, [Note(VERDICT, "avg nan", {"kind": "nan"})], None)
    s, backend, run = make(tmp_path, [nan, nan], on_nan="stop")
    assert s.run_to_end(resuming=False) == 1
    assert len(backend.launches) == 1 and "--on-nan stop" in run.read_state()["reason"]


def test_a_stall_is_killed_and_restarted(tmp_path, monkeypatch):
    monkeypatch.setattr(sup, "STARTUP_GRACE", 0.0)
    hang = ("import time; time.sleep(60)", [], Outcome(OutcomeKind.CRASHED, "never used"))
    ok = (EXIT0, [], Outcome(OutcomeKind.FINISHED, "done"))
    s, backend, run = make(tmp_path, [hang, ok], stall_minutes=0.02)
    assert s.run_to_end(resuming=False) == 0
    assert "stall" in kinds(run) and run.read_state()["restarts"] == 1


def test_stop_request_ends_with_130_and_stopped(tmp_path):
    code = "import signal, time, sys\nsignal.signal(signal.SIGTERM, lambda *a: sys.exit(75))\ntime.sleep(60)"
    s, backend, run = make(tmp_path, [(code, [], Outcome(OutcomeKind.STOPPED, "stopped at a safe point"))])
    backend.pending = []
    original = backend.poll

    def poll(final=False):
        s.stop_asked = True  # as if SIGTERM reached the supervisor
        return original(final)
    backend.poll = poll
    assert s.run_to_end(resuming=False) == 130
    assert run.read_state()["status"] == "stopped"
    assert kinds(run)[-2:] == ["stop-requested", "stopped"]


def test_nothing_left_to_train_is_finished(tmp_path):
    s, backend, run = make(tmp_path, [])
    assert s.run_to_end(resuming=True) == 0
    assert run.read_state()["status"] == "finished" and kinds(run)[0] == "resume"


class FullDiskRun(RunFolder):
    """A run folder whose state.json cannot be written the first `failures` times."""

    failures = 4

    def write_state(self, state: dict) -> None:
        import errno

        if FullDiskRun.failures:
            FullDiskRun.failures -= 1
            raise OSError(errno.ENOSPC, "No space left on device")
        super().write_state(state)


def test_a_full_disk_for_our_own_files_does_not_stop_the_run(tmp_path, capsys):
    ok = (EXIT0, [Note(PROGRESS, data={"done": 10, "total": 10})], Outcome(OutcomeKind.FINISHED, "done"))
    s, backend, run = make(tmp_path, [ok])
    s.run = FullDiskRun(tmp_path)
    assert s.run_to_end(resuming=False) == 0
    assert "No space left on device" in capsys.readouterr().err
    assert FullDiskRun.failures == 0
    assert run.read_state()["status"] == "finished"  # written once space came back
    assert not run.reserve.exists()  # given up at the first failure


NAN_AT_7 = ("import sys; sys.exit(1)", [Note(VERDICT, "avg loss nan at iteration 7",
                                             {"kind": "nan", "done": 7, "handled_by_worker": True})],
            Outcome(OutcomeKind.CRASHED, "unused"))


def test_the_same_nan_at_the_same_point_restarted_unchanged_stops_with_advice(tmp_path):
    s, backend, run = make(tmp_path, [NAN_AT_7] * 3, max_restarts=5, on_nan="restart")
    assert s.run_to_end(resuming=False) == 1
    assert kinds(run).count("restart") == 1 and kinds(run)[-1] == "gave-up"
    reason = run.read_state()["reason"]
    assert "nan again at iteration 7" in reason and "will repeat" in reason and "lr0" in reason


def test_a_remedy_changes_the_next_attempt_so_a_repeat_is_retried(tmp_path):
    s, backend, run = make(tmp_path, [NAN_AT_7, NAN_AT_7, (EXIT0, [], Outcome(OutcomeKind.FINISHED, "done"))],
                           max_restarts=5, on_nan="lower-lr")
    backend.remedy = lambda outcome: "learning_rate 0.01 -> 0.005"
    assert s.run_to_end(resuming=False) == 0
    assert kinds(run).count("remedy") == 2 and kinds(run)[-1] == "finished"
    restart = next(e for e in run.read_events() if e["kind"] == "restart")
    assert "with learning_rate 0.01 -> 0.005" in restart["detail"]


def test_the_restart_budget_refills_after_a_healthy_checkpoint(tmp_path):
    from pipeline.train.protocol import CHECKPOINT

    def crash_after(done):
        return ("import sys; sys.exit(3)", [Note(CHECKPOINT, "c", {"path": "c", "done": done})],
                Outcome(OutcomeKind.CRASHED, f"crash after {done}"))

    script = [crash_after(i) for i in range(1, 5)] + [(EXIT0, [], Outcome(OutcomeKind.FINISHED, "done"))]
    s, backend, run = make(tmp_path, script, max_restarts=1)
    assert s.run_to_end(resuming=False) == 0  # 4 crashes, each after progress: never gave up
    assert kinds(run).count("restart") == 4


def test_a_binary_that_cannot_start_fails_without_restarts(tmp_path):
    s, backend, run = make(tmp_path, [(EXIT0, [], Outcome(OutcomeKind.FINISHED, "x"))], max_restarts=3)
    backend.launch = lambda attempt, healthy: Launch(["/nonexistent/darknet"], Path("."), {})
    assert s.run_to_end(resuming=False) == 1
    assert "restart" not in kinds(run) and "cannot start /nonexistent/darknet" in run.read_state()["reason"]


def test_engine_done_ends_a_process_that_hangs_after_its_work(tmp_path):
    from pipeline.train.protocol import ENGINE_DONE

    hang = ("import time; time.sleep(60)", [Note(ENGINE_DONE, "toy_final.weights is complete")],
            Outcome(OutcomeKind.FINISHED, "final written"))
    s, backend, run = make(tmp_path, [hang])
    seen = []
    backend.outcome = lambda rc: seen.append(rc) or Outcome(OutcomeKind.FINISHED, "final written")
    assert s.run_to_end(resuming=False) == 0
    assert seen == [0] and "engine-done" in kinds(run)


def test_map_evaluations_keep_the_last_and_the_best(tmp_path):
    from pipeline.train.protocol import METRIC

    notes = [Note(METRIC, data={"map": m, "done": d}) for m, d in ((0.2, 100), (0.5, 200), (0.5, 200),
                                                                   (0.3, 300))]
    s, backend, run = make(tmp_path, [(EXIT0, notes, Outcome(OutcomeKind.FINISHED, "done"))])
    assert s.run_to_end(resuming=False) == 0
    record = run.read_state()["map"]
    assert record["last"] == {"map": 0.3, "done": 300} and record["best"] == {"map": 0.5, "done": 200}
    assert [e["done"] for e in record["evaluations"]] == [100, 200, 300]


def test_each_supervisor_session_marks_its_engine_with_its_own_marker(tmp_path):
    out = tmp_path / "env.txt"
    code = f"import os; open({str(out)!r}, 'a').write(os.environ['YOLO_PIPELINE_RUN_ID'] + '\\n')"
    markers = []
    for _ in range(2):  # e.g. a run and its copy: same run_id, never the same marker
        s, backend, run = make(tmp_path, [(code, [], Outcome(OutcomeKind.FINISHED, "done"))])
        assert s.run_to_end(resuming=False) == 0
        markers.append(run.read_state()["marker"])
    assert markers[0] != markers[1] and all(m.startswith("x:") for m in markers)
    assert out.read_text().split() == markers


def test_start_up_heartbeats_keep_the_grace_until_training_reports(tmp_path, monkeypatch):
    """A label scan that prints (a heartbeat) but has not trained yet is not a stall."""
    import time

    from pipeline.train.protocol import HEARTBEAT

    monkeypatch.setattr(sup, "STARTUP_GRACE", 3.0)
    s, backend, run = make(tmp_path, [("import time; time.sleep(1.5)", [], Outcome(OutcomeKind.FINISHED,
                                                                                   "done"))],
                           stall_minutes=0.005)  # 0.3 s
    started = time.time()

    def poll(final=False):  # heartbeats for 0.2 s, silence, then training progress at 1.2 s
        elapsed = time.time() - started
        if final or 0.2 <= elapsed <= 1.2:
            return []
        return [Note(HEARTBEAT)] if elapsed < 0.2 else [Note(PROGRESS, data={"done": 1, "total": 10})]
    backend.poll = poll
    assert s.run_to_end(resuming=False) == 0
    assert "stall" not in kinds(run)


def test_a_run_ended_early_keeps_its_done_count(tmp_path):
    early = Outcome(OutcomeKind.FINISHED, "Ultralytics ended early: patience=5 ...", at=17)
    s, backend, run = make(tmp_path, [(EXIT0, [Note(PROGRESS, data={"done": 17, "total": 100})], early)])
    assert s.run_to_end(resuming=False) == 0
    state = run.read_state()
    assert state["done"] == 17 and state["total"] == 100 and "patience=5" in state["ended_early"]


def test_low_disk_is_said_before_an_attempt_and_named_in_a_stall(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 1000, 1000))
    monkeypatch.setattr(sup, "STARTUP_GRACE", 0.0)
    hang = ("import time; time.sleep(60)", [], Outcome(OutcomeKind.CRASHED, "never used"))
    s, backend, run = make(tmp_path, [hang], stall_minutes=0.01, max_restarts=0)
    assert s.run_to_end(resuming=False) == 1
    events = run.read_events()
    assert events[1]["kind"] == "low-disk" and "has 0 MB free" in events[1]["detail"]
    stall = next(e for e in events if e["kind"] == "stall")
    assert "no progress" in stall["detail"] and "0 MB free" in stall["detail"]
