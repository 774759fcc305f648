"""TensorBoard scalars written without torch, read back by TensorBoard's own reader: tags,
values, steps, restarts; the darknet and resource mappings; write errors counted, never raised;
the worker's epoch callbacks; `board`'s command line."""

from __future__ import annotations

import json
import math
import pickle
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from pipeline.errors import UserError
from pipeline.train import tensorboard as tb
from pipeline.train.tensorboard import (
    RunBoard,
    ScalarWriter,
    darknet_scalars,
    resource_scalars,
    run_created,
)


def read(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """{tag: [(step, value), ...]} as TensorBoard's reader sees the folder (values are float32)."""
    acc = EventAccumulator(str(folder))
    acc.Reload()
    return {tag: [(e.step, pytest.approx(e.value, rel=1e-6)) for e in acc.Scalars(tag)]
            for tag in acc.Tags()["scalars"]}


def test_scalars_are_read_back_by_tensorboard(tmp_path):
    w = ScalarWriter(tmp_path, "x")
    assert w.path is None and not (tmp_path / "tensorboard").exists()  # made at the first value
    for step in range(1, 4):
        assert w.scalar("train/loss", 1.0 / step, step, wall_time=1000.0 + step)
    w.scalar("metrics/mAP50", 0.25, 3)
    w.close()
    assert w.path.parent == tmp_path / "tensorboard" / "x" and "tfevents" in w.path.name
    data = read(tmp_path / "tensorboard" / "x")
    assert data["train/loss"] == [(1, 1.0), (2, 0.5), (3, 1 / 3)]
    assert data["metrics/mAP50"] == [(3, 0.25)]
    acc = EventAccumulator(str(w.path.parent))
    acc.Reload()
    assert [e.wall_time for e in acc.Scalars("train/loss")] == [1001.0, 1002.0, 1003.0]
    assert (w.written, w.errors, w.skipped) == (4, 0, 0)


def test_non_finite_and_non_numbers_are_skipped_and_counted(tmp_path):
    w = ScalarWriter(tmp_path)
    values = [1.5, math.nan, math.inf, -math.inf, None, "x", True, 2]
    written = [w.scalar("v", v, i) for i, v in enumerate(values)]
    assert w.scalar("v", 1.0, None) is False and w.scalar(None, 1.0, 1) is False  # type: ignore[arg-type]
    w.close()
    assert written == [True, False, False, False, False, False, False, True]
    assert w.skipped == 8
    assert read(tmp_path / "tensorboard")["v"] == [(0, 1.5), (7, 2.0)]


def test_a_write_error_is_counted_never_raised_and_a_new_file_follows(tmp_path, monkeypatch):
    (tmp_path / "tensorboard").write_text("a file where the folder should be")
    w = ScalarWriter(tmp_path, "x")
    assert w.scalar("v", 1.0, 1) is False and w.errors == 1
    assert w.scalar("v", 2.0, 2) is False and w.errors == 1  # waits RETRY_SECONDS before trying again
    (tmp_path / "tensorboard").unlink()
    monkeypatch.setattr(tb, "RETRY_SECONDS", 0.0)
    w._retry_at = 0.0
    assert w.scalar("v", 3.0, 3)
    first = w.path

    class Full:  # the disk filled up under an open file
        def write(self, *data):
            raise OSError(28, "No space left on device")

        flush = close = write

    w._file, w._writer._writer = Full(), Full()
    assert w.scalar("v", 4.0, 4) is False and w.errors == 2 and w._file is None
    assert w.scalar("v", 5.0, 5)  # a fresh file
    w.flush()
    w.close()
    assert w.path != first
    assert read(tmp_path / "tensorboard" / "x")["v"] == [(3, 3.0), (5, 5.0)]
    assert w.scalar("v", 6.0, 6) is False  # closed: skipped, no error


def test_a_restart_marker_drops_the_abandoned_attempts_later_values(tmp_path):
    w = ScalarWriter(tmp_path)
    for step in range(1, 6):
        w.scalar("loss", 10.0 + step, step)
    w.restart(3)
    for step in range(3, 5):
        w.scalar("loss", 20.0 + step, step)
    w.close()
    assert read(tmp_path / "tensorboard")["loss"] == [(1, 11.0), (2, 12.0), (3, 23.0), (4, 24.0)]


def test_a_writer_pickles_without_its_file(tmp_path):
    """Ultralytics sends callbacks to DDP ranks with cloudpickle."""
    w = ScalarWriter(tmp_path, "u")
    w.scalar("v", 1.0, 1)
    copy = pickle.loads(pickle.dumps(w))
    assert copy._file is None and copy.path is None
    assert copy.scalar("v", 2.0, 2)
    w.close()
    copy.close()
    assert sorted(read(tmp_path / "tensorboard" / "u")["v"]) == [(1, 1.0), (2, 2.0)]


def test_darknet_notes_become_loss_rate_and_map():
    assert darknet_scalars("progress", {"done": 7, "total": 20, "loss": 5.4}) == [("train/avg_loss", 5.4, 7)]
    assert darknet_scalars("progress", {"done": 7, "total": 20, "loss": 5.4, "rate": 0.001}) == [
        ("train/avg_loss", 5.4, 7), ("train/learning_rate", 0.001, 7)]
    assert darknet_scalars("metric", {"map": 0.81, "done": 100}) == [("metrics/mAP50", 0.81, 100)]
    assert darknet_scalars("heartbeat", {}) == []
    assert darknet_scalars("timing", {"seconds": 1.2}) == []


def test_resource_samples_become_scalars_per_gpu():
    sample = {"t": 1130.7, "cpu_tree": 180.5, "cpu_machine": 40.0, "rss_mb": 812.3, "mem_avail_mb": 9000,
              "swap_mb": 0, "read_mbps": None, "write_mbps": 0.5,
              "gpus": [{"index": 0, "util": 97, "mem_mb": 4000, "temp_c": 70, "power_w": None},
                       {"index": 1, "util": 12, "mem_mb": None}]}
    got = {tag: (value, step) for tag, value, step in resource_scalars(sample, started=1000.0)}
    assert got["resources/cpu_tree"] == (180.5, 130) and got["resources/rss_mb"] == (812.3, 130)
    assert "resources/read_mbps" not in got and got["resources/write_mbps"] == (0.5, 130)
    assert got["gpu0/util"] == (97, 130) and got["gpu0/mem_mb"] == (4000, 130)
    assert got["gpu1/util"] == (12, 130) and "gpu1/mem_mb" not in got and "gpu0/power_w" not in got


def test_run_created_from_run_json_else_first_event(tmp_path):
    (tmp_path / "run.json").write_text(json.dumps({"created": "2026-11-29T19:21:06+0000"}))
    assert run_created(tmp_path) == datetime(2026, 11, 29, 19, 21, 6, tzinfo=UTC).timestamp()
    (tmp_path / "run.json").write_text("{}")
    (tmp_path / "events.jsonl").write_text('{"kind": "start", "at": 123.5}\n{"kind": "x", "at": 200}\n')
    assert run_created(tmp_path) == 123.5
    assert run_created(tmp_path / "missing") == 0.0


def test_run_board_of_a_darknet_run_with_a_restart_and_a_resume(tmp_path):
    board = RunBoard(tmp_path, "darknet", started=1000.0)
    for it in range(1, 6):
        board.note("progress", {"done": it, "total": 10, "loss": 10.0 - it, "rate": 0.001})
    board.note("metric", {"map": 0.5, "done": 5})
    board.note("metric", {"map": 0.5, "done": 5})  # AlexeyAB prints it twice
    board.note("heartbeat", {})
    for it in (3, 4):  # restarted from the checkpoint of iteration 2
        board.note("progress", {"done": it, "total": 10, "loss": 20.0 + it, "rate": 0.0005})
    board.resources({"t": 1010.2, "cpu_tree": 99.0, "rss_mb": 100.0})
    board.resources({"t": 1010.2, "cpu_tree": 99.0, "rss_mb": 100.0})  # the same latest sample again
    board.resources({"t": 1020.4, "cpu_tree": 150.0, "rss_mb": 120.0})
    board.resources(None)
    board.close()
    again = RunBoard(tmp_path, "darknet", started=1000.0)  # `resume`: a new supervisor, from iteration 4
    again.note("progress", {"done": 5, "total": 10, "loss": 30.0})
    again.close()
    dark = read(tmp_path / "tensorboard" / "darknet")
    assert dark["train/avg_loss"] == [(1, 9.0), (2, 8.0), (3, 23.0), (4, 24.0), (5, 30.0)]
    assert dark["train/learning_rate"] == [(1, 0.001), (2, 0.001), (3, 0.0005), (4, 0.0005)]
    assert dark.get("metrics/mAP50", []) == []  # its iteration 5 was abandoned by the restart
    usage = read(tmp_path / "tensorboard" / "resources")
    assert usage["resources/cpu_tree"] == [(10, 99.0), (20, 150.0)]
    assert board.errors == again.errors == 0


def test_run_board_of_an_ultralytics_run_writes_resources_only(tmp_path):
    board = RunBoard(tmp_path, "ultralytics", started=0.0)
    board.note("progress", {"done": 1, "total": 3, "loss": 4.0})
    board.resources({"t": 50.0, "rss_mb": 10.0, "gpus": [{"index": 0, "util": 5, "mem_mb": 300}]})
    board.close()
    assert sorted(p.name for p in (tmp_path / "tensorboard").iterdir()) == ["resources"]
    assert read(tmp_path / "tensorboard" / "resources")["gpu0/mem_mb"] == [(50, 300.0)]


def test_the_writer_imports_neither_torch_nor_tensorflow(tmp_path):
    code = f"""
import sys
class Spy:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('torch', 'tensorflow', 'ultralytics'):
            raise ImportError('imported ' + name)
sys.meta_path.insert(0, Spy())
from pipeline.train.tensorboard import RunBoard
b = RunBoard({str(tmp_path)!r}, 'darknet', started=0.0)
b.note('progress', {{'done': 1, 'loss': 2.0}})
b.resources({{'t': 5.0, 'rss_mb': 1.0}})
b.close()
print(b.errors)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "0", out.stderr


class FakeTrainer(SimpleNamespace):
    def label_loss_items(self, loss_items=None, prefix="train"):
        return {f"{prefix}/{k}": float(v) for k, v in zip(("box_loss", "cls_loss"), loss_items, strict=True)}


def test_worker_epoch_callbacks_write_ultralytics_tags(tmp_path):
    from pipeline.ultralytics.board import EpochScalars

    cb = EpochScalars(tmp_path)
    trainer = FakeTrainer(start_epoch=0, epochs=3, epoch=0, tloss=[1.5, 0.7], lr={"lr/pg0": 0.01},
                          metrics={"metrics/mAP50(B)": 0.2, "val/box_loss": 1.9, "fitness": math.nan})
    cb.on_train_start(trainer)
    cb.on_fit_epoch_end(trainer)
    trainer.epoch, trainer.tloss, trainer.metrics = 1, [1.2, 0.6], {"metrics/mAP50(B)": 0.4}
    cb.on_fit_epoch_end(trainer)
    cb.on_fit_epoch_end(trainer)  # final_eval fires it once more: not written twice
    cb.teardown(trainer)
    data = read(tmp_path / "tensorboard" / "ultralytics")
    assert data["train/box_loss"] == [(1, 1.5), (2, 1.2)]
    assert data["metrics/mAP50(B)"] == [(1, 0.2), (2, 0.4)]
    assert data["lr/pg0"] == [(1, 0.01), (2, 0.01)]
    assert "fitness" not in data and cb.writer.skipped == 1


def test_board_logdirs_and_command_line(tmp_path):
    from pipeline.watch.board import board_logdirs, tensorboard_argv

    for name in ("a", "sub/b", "x/c"):
        run = tmp_path / name
        run.mkdir(parents=True)
        (run / "run.json").write_text("{}")
        (run / "state.json").write_text("{}")
        if name != "x/c":
            (run / "tensorboard" / "darknet").mkdir(parents=True)
    assert board_logdirs(tmp_path / "a") == [("", tmp_path / "a" / "tensorboard")]
    both = board_logdirs(tmp_path)
    assert both == [("a", tmp_path / "a" / "tensorboard"), ("sub/b", tmp_path / "sub" / "b" / "tensorboard")]
    argv = tensorboard_argv(both, "127.0.0.1", 6006)
    assert argv[1:3] == ["-m", "tensorboard.main"] and "--load_fast" in argv
    assert argv[-2:] == ["--logdir_spec", f"a:{tmp_path}/a/tensorboard,sub/b:{tmp_path}/sub/b/tensorboard"]
    one = tensorboard_argv(board_logdirs(tmp_path / "a"), "0.0.0.0", 7000)
    assert one[-2:] == ["--logdir", str(tmp_path / "a" / "tensorboard")] and "7000" in one
    with pytest.raises(UserError, match="has no TensorBoard logs"):
        board_logdirs(tmp_path / "x" / "c")
    with pytest.raises(UserError, match=r"no run under .* has TensorBoard logs \(1 run"):
        board_logdirs(tmp_path / "x")
