"""The train stage's pure parts: watchdog, ETA, darknet lines and weights, results.csv repair,
option checks, run-folder liveness."""

from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path

import pytest

from pipeline.darknet.runner import (
    cannot_open,
    parse_iteration,
    saved_weights,
    train_command,
    weights_iteration,
)
from pipeline.errors import UserError
from pipeline.train.eta import END_SECONDS, epoch_eta, iteration_eta
from pipeline.train.options import (
    TrainOptions,
    check_engine_args,
    parse_engine_args,
    resolve_model,
)
from pipeline.train.protocol import OutcomeKind
from pipeline.train.runs import alive, effective_status, process_start_time
from pipeline.train.watchdog import LossWatch, NanStreak
from pipeline.ultralytics.worker import trim_results

REAL_LOGS = Path(__file__).parents[1] / "data" / "logs"


@pytest.mark.parametrize("losses, warm, verdicts", [
    ([5.0, 4.0, 30.0], [False] * 3, [None, None, None]),          # 7.5 x min: fine
    ([5.0, 4.0, 41.0], [False] * 3, [None, None, OutcomeKind.EXPLOSION]),     # over 10 x min 4.0
    ([5.0, float("nan")], [False] * 2, [None, OutcomeKind.NAN]),
    ([5.0, float("-inf")], [False] * 2, [None, OutcomeKind.NAN]),
    ([0.1, 500.0, 1.0], [True, True, False], [None, None, None]),  # warm-up sets no minimum
    ([float("nan")], [True], [OutcomeKind.NAN]),                                # NaN counts even in warm-up
])
def test_loss_watch(losses, warm, verdicts):
    w = LossWatch(10.0)
    assert [w.check(x, warmup=b) for x, b in zip(losses, warm, strict=True)] == verdicts


def test_nan_streak_needs_consecutive_batches():
    s = NanStreak(limit=3)
    nan = float("nan")
    assert [s.check(v) for v in ([nan], [1.0], [nan], [nan, 1.0], [nan])] == [False] * 4 + [True]


def test_iteration_eta_counts_a_pause_spread_over_its_period():
    # the 9 s gap is a pause (a save): its 8.5 extra seconds spread over 100 iterations
    eta = iteration_eta([0.5] * 10 + [9.0], done=100, total=300)
    assert eta.speed == pytest.approx(1 / 0.585) and eta.seconds == pytest.approx(200 * 0.585)
    assert iteration_eta([], 1, 10).seconds is None


def test_epoch_eta_keeps_mosaic_and_plain_epochs_apart():
    epochs = [{"seconds": 50.0, "mosaic": True, "first_of_session": True},   # label scan: left out
              {"seconds": 10.0, "mosaic": True}, {"seconds": 10.0, "mosaic": True}]
    # done 3 of 10, the last 2 epochs without mosaic; none measured yet -> mosaic speed; the end
    assert epoch_eta(epochs, 3, 10, close_mosaic=2).seconds == pytest.approx(70.0 + END_SECONDS)
    epochs.append({"seconds": 4.0, "mosaic": False})
    assert epoch_eta(epochs, 4, 10, close_mosaic=2).seconds == pytest.approx(4 * 10 + 2 * 4 + END_SECONDS)


@pytest.mark.parametrize("line, expected", [
    ("29: 5.335289, 9.208831 avg, 0.000010 rate, 0.177885 seconds, 58 images", (29, 9.208831)),
    ("4: -nan, -nan avg, 1000.000000 rate, 0.181745 seconds, 8 images", (4, math.nan)),
    ("3: inf, inf avg, 1000.000000 rate, 0.18 seconds, 6 images", (3, math.inf)),
    (" 1234: 5.12, 5.40 avg loss, 0.001000 rate, 3.21 seconds, 78976 images, 12.3 hours left",
     (1234, 5.40)),
    ("\x1b[H\x1b[J 7: 2.0, 3.0 avg loss, 0.001 rate, 1.0 seconds, 448 images, -1.0 hours left\x07",
     (7, 3.0)),
    ("Region 16 Avg IOU: -nan, Class: -nan, Obj: -nan, No Obj: 0.5, .5R: -nan, .75R: -nan,  count: 0",
     None),
])
def test_parse_iteration(line, expected):
    it = parse_iteration(line)
    if expected is None:
        assert it is None
    else:
        assert it.iteration == expected[0]
        assert (math.isnan(it.avg) and math.isnan(expected[1])) or it.avg == expected[1]


def test_messages_found_mid_line():
    line = "Region 23 Avg IOU: 0.5, count: 2Saving weights to /r/backup/toy.backup"
    assert saved_weights(line) == "/r/backup/toy.backup"
    assert cannot_open("Region 1 ...Couldn't open file: /d/a.txt") == "/d/a.txt"
    assert saved_weights("29: 5.3, 9.2 avg, 0.1 rate, 0.1 seconds, 58 images") is None


def test_a_real_healthy_log_gives_finite_averages_only():
    """Real pjreddie/AlexeyAB logs: every iteration line parses, no avg is non-finite."""
    logs = sorted(REAL_LOGS.glob("*.txt")) + sorted(REAL_LOGS.glob("*.log"))
    assert logs
    parsed = []
    for log in logs:
        for line in log.read_text(errors="replace").replace("\r", "\n").splitlines():
            if (it := parse_iteration(line)) is not None:
                parsed.append(it.avg)
    assert len(parsed) > 100 and all(math.isfinite(x) for x in parsed)
    assert sum("nan" in line for log in logs for line in log.read_text(errors="replace").splitlines()
               if "Region" in line or "IOU" in line) > 0  # their Region lines do carry -nan


def test_weights_header_gives_the_iteration(tmp_path):
    new = tmp_path / "a.weights"
    new.write_bytes(struct.pack("<3iQ", 0, 2, 0, 200) + b"\0" * 64)
    old = tmp_path / "b.weights"
    old.write_bytes(struct.pack("<3ii", 0, 1, 0, 640) + b"\0" * 64)
    assert weights_iteration(new, batch=2) == 100
    assert weights_iteration(old, batch=64) == 10
    short = tmp_path / "c.weights"
    short.write_bytes(b"\0" * 10)
    assert weights_iteration(short, batch=2) is None
    garbage = tmp_path / "d.weights"
    garbage.write_bytes(struct.pack("<3iQ", 70000, 2, 0, 1))
    assert weights_iteration(garbage, batch=2) is None


def test_train_command_flags_by_fork():
    pj = train_command("darknet", "a.data", "a.cfg", "w.weights", "pjreddie", "0,1")
    assert pj[-7:] == ["darknet", "detector", "train", "a.data", "a.cfg", "w.weights", "-gpus"][:7] \
        or pj[-2:] == ["-gpus", "0,1"]
    assert "-dont_show" not in pj and "-clear" not in pj
    ab = train_command("darknet", "a.data", "a.cfg", None, "alexeyab")
    assert ab[-2:] == ["-dont_show", "-map"]


def test_trim_results_keeps_the_checkpoint_epochs(tmp_path):
    csv = tmp_path / "results.csv"
    csv.write_text("epoch,time,x\n1,1,0.5\n2,2,0.4\n3,3,0.3\n3,1,0.3\n4,2,0.")  # dup + cut-short
    assert trim_results(csv, completed_epochs=3) == 2
    assert csv.read_text() == "epoch,time,x\n1,1,0.5\n2,2,0.4\n3,1,0.3\n"
    assert trim_results(csv, completed_epochs=3) == 0
    assert trim_results(tmp_path / "none.csv", 1) == 0


def test_engine_args_are_checked_against_ultralytics_own_list():
    assert parse_engine_args(["lr0=0.02", "mosaic=0"]) == {"lr0": "0.02", "mosaic": "0"}
    check_engine_args({"lr0": "0.02", "close_mosaic": "2"})
    with pytest.raises(UserError, match="did you mean.*lr0"):
        check_engine_args({"lr1": "0.1"})
    with pytest.raises(UserError, match="--epochs"):
        check_engine_args({"epochs": "3"})
    with pytest.raises(UserError, match="key=value"):
        parse_engine_args(["lr0"])


def test_models_resolve_offline_or_are_refused(tmp_path):
    assert resolve_model("yolov8n.yaml") == "yolov8n.yaml"
    assert resolve_model("yolo11s.yaml") == "yolo11s.yaml"
    with pytest.raises(UserError, match="nothing is downloaded"):
        resolve_model("yolov8n.pt")
    with pytest.raises(UserError, match="no such model YAML"):
        resolve_model("yolov8q-nothing.yaml")
    local = tmp_path / "mine.pt"
    local.write_bytes(b"x")
    assert resolve_model(str(local)) == str(local.resolve())


def test_liveness_is_tied_to_the_process_start_time():
    me = os.getpid()
    start = process_start_time(me)
    assert alive(me, start) and not alive(me, start + 1) and not alive(None, None)
    assert effective_status({"status": "running", "pid": me, "pid_start": start}) == "running"
    assert effective_status({"status": "running", "pid": me, "pid_start": start + 1}) == "killed"
    assert effective_status({"status": "stopped"}) == "stopped"


def test_options_round_trip():
    opts = TrainOptions(cfgdir=Path("/c"), out=Path("/r"), extra={"lr0": "0.1"})
    assert TrainOptions.from_dict(opts.as_dict()) == opts


def test_the_worker_raises_on_three_nan_batches_and_reports_it(tmp_path):
    from types import SimpleNamespace

    from pipeline.train.runs import RunFolder
    from pipeline.ultralytics.worker import LossVerdict, Reporter

    run = RunFolder(tmp_path)
    reporter = Reporter(run, attempt=1, explode_factor=10.0)
    trainer = SimpleNamespace(epoch=4, train_loader=[0] * 10, loss_items=None)
    nan = float("nan")
    for items in ({"box": 1.0, "cls": 2.0}, {"box": nan, "cls": 2.0}, {"box": nan, "cls": nan}):
        trainer.loss_items = items
        reporter.on_train_batch_end(trainer)
    trainer.loss_items = {"box": 1.0, "cls": float("inf")}
    with pytest.raises(LossVerdict) as raised:
        reporter.on_train_batch_end(trainer)
    assert raised.value.kind == OutcomeKind.NAN and "epoch 5, batch 4" in str(raised.value)
    lines = [json.loads(x) for x in run.progress.read_text().splitlines()]
    assert lines[-1]["kind"] == "nan" and lines[-1]["epoch"] == 5 and lines[-1]["loss"] == [1.0, None]


def test_the_worker_stops_at_the_next_batch_when_asked(tmp_path):
    from types import SimpleNamespace

    from pipeline.train.runs import RunFolder
    from pipeline.ultralytics.worker import Reporter, StopRequested

    reporter = Reporter(RunFolder(tmp_path), attempt=1, explode_factor=10.0)
    trainer = SimpleNamespace(epoch=0, train_loader=[0] * 10, loss_items={"box": 1.0})
    reporter.on_train_batch_end(trainer)
    reporter.stop = True
    with pytest.raises(StopRequested):
        reporter.on_train_batch_end(trainer)


def test_one_nan_batch_does_not_make_the_epoch_nan(tmp_path):
    """Ultralytics' tloss is a running mean (NaN after one NaN batch); ours counts finite batches."""
    from types import SimpleNamespace

    from pipeline.train.runs import RunFolder
    from pipeline.ultralytics.worker import Reporter

    run = RunFolder(tmp_path)
    reporter = Reporter(run, attempt=1, explode_factor=10.0)
    nan = float("nan")
    class Loader(list):
        dataset = SimpleNamespace(mosaic=False)

    trainer = SimpleNamespace(epoch=3, train_loader=Loader([0, 0, 0]), loss_items=None, tloss=[nan, nan],
                              args=SimpleNamespace(warmup_epochs=0))
    reporter.first_epoch = 0
    reporter.on_train_epoch_start(trainer)
    for items in ({"box": 1.0, "cls": 2.0}, {"box": nan, "cls": 2.0}, {"box": 2.0, "cls": 3.0}):
        trainer.loss_items = items
        reporter.on_train_batch_end(trainer)
    reporter.on_train_epoch_end(trainer)  # no LossVerdict
    assert reporter.epoch_loss == 4.0  # (3 + 5) / 2 finite batches
    lines = [json.loads(x) for x in run.progress.read_text().splitlines()]
    assert lines[-1]["kind"] == "nonfinite_batches" and lines[-1]["count"] == 1


def test_an_early_stop_by_patience_is_said_and_keeps_the_epochs_done(tmp_path):
    from types import SimpleNamespace

    from pipeline.train.options import TrainOptions
    from pipeline.train.protocol import OutcomeKind
    from pipeline.train.runs import RunFolder
    from pipeline.ultralytics.backend import UltralyticsBackend
    from pipeline.ultralytics.messages import Finished, decode, encode
    from pipeline.ultralytics.worker import _early_stop

    trainer = SimpleNamespace(epochs=100, args=SimpleNamespace(time=None),
                              stopper=SimpleNamespace(patience=5, best_epoch=11))
    why = _early_stop(trainer, 17)
    assert why == "patience=5: no better fitness since epoch 12, so it stopped at epoch 17 of 100"
    assert _early_stop(trainer, 100) is None
    backend = UltralyticsBackend(RunFolder(tmp_path), TrainOptions(cfgdir=tmp_path, out=tmp_path))
    backend.ended, backend.early = None, None
    backend._note(decode(encode(Finished(epochs=100, done=17, early=why))))
    outcome = backend.outcome(0)
    assert outcome.kind == OutcomeKind.FINISHED and outcome.at == 17 and "patience=5" in outcome.detail


def test_a_failed_attempt_names_the_engines_exception_and_its_log(tmp_path):
    from pipeline.ultralytics.backend import _last_error

    log = tmp_path / "logs" / "attempt-01.log"
    log.parent.mkdir()
    log.write_text("Traceback (most recent call last):\n  File x\nRuntimeError: CUDA error: no kernel image\n"
                   "See https://pytorch.org/docs for details\n")
    assert _last_error([log]) == "RuntimeError: CUDA error: no kernel image (see logs/attempt-01.log)"


@pytest.mark.slow  # imports torch
def test_the_worker_never_downloads_for_the_amp_check():
    import ultralytics.engine.trainer as trainer_module

    from pipeline.ultralytics.worker import _no_amp_download

    original = trainer_module.check_amp
    try:
        _no_amp_download()
        assert trainer_module.check_amp(object()) is True  # no model loaded, nothing fetched
    finally:
        trainer_module.check_amp = original
