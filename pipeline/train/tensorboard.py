"""TensorBoard scalars of a run, written without torch or TensorFlow: RUN/tensorboard/<name>/.

The supervisor stays light: records are TensorBoard's own `Event`/`Summary` protos
(`tensorboard.compat.proto`) framed by its own `RecordWriter` (what torch.utils.tensorboard
and TensorBoard's `EventFileWriter` write), into a plain file we open ourselves.
`EventFileWriter` itself is not used: it goes through `tensorboard.compat.tf`, which imports
TensorFlow wherever it is installed, and it writes from a thread whose errors surface as
tracebacks on stderr. Here a write is synchronous and never raises: a failed write is
counted in `errors` and the file is given up (a new one is opened RETRY_SECONDS later).

Decisions:
- a non-finite value (NaN, inf) or one that is not a number is **skipped** and counted in
  `skipped` (an inf would flatten the chart; the watchdog's events already say when the loss
  went non-finite);
- one folder per writer, since TensorBoard treats a folder as a run and its steps as one
  axis: `darknet/` (iterations: avg loss, learning rate, mAP), `ultralytics/` (epochs, the
  worker's, see pipeline/ultralytics/board.py), `resources/` (step: seconds since the run
  was created, wall time the sample's);
- a restart continues from an earlier checkpoint: a `SessionLog.START` at the first step
  written after it makes TensorBoard drop that folder's values from the abandoned attempt
  (at that step and later), as TensorFlow's own supervisor did.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from pipeline.train.protocol import METRIC, PROGRESS

TENSORBOARD_DIR = "tensorboard"
#: Seconds between flushes of a writer's file (the last values are at most this late in TensorBoard).
FLUSH_SECONDS = 2.0
#: Seconds after a failed write before a new event file is tried.
RETRY_SECONDS = 30.0

Scalar = tuple[str, float, int]


def board_dir(run_dir: str | Path, name: str = "") -> Path:
    """RUN/tensorboard (or one writer's folder below it)."""
    root = Path(run_dir) / TENSORBOARD_DIR
    return root / name if name else root


def _finite(value: Any) -> float | None:
    """`value` as a finite float, or None."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


class ScalarWriter:
    """Scalars into one TensorBoard event file in RUN/tensorboard/NAME/ (made at the first value)."""

    _serial = 0

    def __init__(self, run_dir: str | Path, name: str = "", flush_seconds: float = FLUSH_SECONDS) -> None:
        self.folder = board_dir(run_dir, name)
        self.flush_seconds = flush_seconds
        self.path: Path | None = None
        self.errors = 0
        self.skipped = 0
        self.written = 0
        self._file = None
        self._writer = None
        self._last_flush = 0.0
        self._retry_at = 0.0
        self._closed = False

    # -- public ---------------------------------------------------------------------------
    def scalar(self, tag: str, value: Any, step: int, wall_time: float | None = None) -> bool:
        """Write one value; False when it was skipped (not finite, no tag or step) or not written."""
        from tensorboard.compat.proto import summary_pb2

        number = _finite(value) if isinstance(tag, str) and tag else None
        try:
            summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=number)])
            event = self._event(wall_time, int(step), summary=summary)
        except (TypeError, ValueError):  # a step or tag that is no such thing
            number = None
        if number is None:
            self.skipped += 1
            return False
        return self._write(event)

    def restart(self, step: int, wall_time: float | None = None) -> bool:
        """Mark a restart at `step`: TensorBoard drops this folder's earlier values at `step` and later."""
        from tensorboard.compat.proto import event_pb2

        log = event_pb2.SessionLog(status=event_pb2.SessionLog.START)
        return self._write(self._event(wall_time, int(step), session_log=log))

    def flush(self) -> None:
        """Push what was written to the disk now."""
        if self._file is not None:
            self._guard(self._file.flush)
            self._last_flush = time.time()

    def flush_due(self) -> None:
        """Flush when the last flush is older than `flush_seconds`."""
        if time.time() - self._last_flush >= self.flush_seconds:
            self.flush()

    def close(self) -> None:
        """Flush and close the file (later values are skipped)."""
        self.flush()
        self._drop()
        self._closed = True

    def __getstate__(self) -> dict:
        """Picklable (Ultralytics sends callbacks to DDP ranks): the open file stays behind."""
        state = dict(self.__dict__)
        state.update(_file=None, _writer=None, path=None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    # -- internals ------------------------------------------------------------------------
    @staticmethod
    def _event(wall_time: float | None, step: int, **fields: Any):
        from tensorboard.compat.proto import event_pb2

        return event_pb2.Event(wall_time=time.time() if wall_time is None else float(wall_time),
                               step=step, **fields)

    def _write(self, event) -> bool:
        if self._closed or not self._open():
            return False
        if not self._guard(self._writer.write, event.SerializeToString()):
            return False
        self.written += 1
        self.flush_due()
        return True

    def _open(self) -> bool:
        """The event file, opened (with its version record) on first use or after a failure."""
        if self._file is not None:
            return True
        if time.time() < self._retry_at:
            return False
        from tensorboard.compat.proto import event_pb2
        from tensorboard.summary.writer.record_writer import RecordWriter

        ScalarWriter._serial += 1
        now = time.time()  # TensorBoard reads a folder's files in name order: seconds, then microseconds
        name = (f"events.out.tfevents.{int(now):010d}.{socket.gethostname()}.{int(now % 1 * 1e6):06d}."
                f"{os.getpid()}.{ScalarWriter._serial:04d}")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._file = open(self.folder / name, "wb")  # noqa: SIM115 - kept open for the run
        except OSError:
            self._failed()
            return False
        self.path = self.folder / name
        self._writer = RecordWriter(self._file)
        head = event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2")
        return self._guard(self._writer.write, head.SerializeToString()) and self._guard(self._file.flush)

    def _guard(self, call, *args) -> bool:
        """Run one file operation; a failure is counted and the file given up."""
        try:
            call(*args)
            return True
        except Exception:  # noqa: BLE001 - a chart must never end a training
            self._failed()
            return False

    def _failed(self) -> None:
        self.errors += 1
        self._retry_at = time.time() + RETRY_SECONDS
        self._drop()

    def _drop(self) -> None:
        file, self._file, self._writer = self._file, None, None
        if file is not None:
            with contextlib.suppress(Exception):  # the file is given up either way
                file.close()


def darknet_scalars(kind: str, data: dict) -> list[Scalar]:
    """(tag, value, step) of a darknet backend's note: PROGRESS -> avg loss (and the learning rate
    when the note carries `rate`), METRIC -> mAP@0.5; nothing for other notes."""
    if kind == PROGRESS and data.get("done") is not None:
        step = int(data["done"])
        out = [("train/avg_loss", data.get("loss"), step)]
        if "rate" in data:
            out.append(("train/learning_rate", data["rate"], step))
        return out
    if kind == METRIC and data.get("done") is not None:
        return [("metrics/mAP50", data.get("map"), int(data["done"]))]
    return []


#: Keys of a resource sample (pipeline/train/resources.py) and of its `gpus` entries written.
RESOURCE_KEYS = ("cpu_tree", "cpu_machine", "rss_mb", "mem_avail_mb", "swap_mb", "read_mbps", "write_mbps")
GPU_KEYS = ("util", "mem_mb", "temp_c", "power_w")


def resource_scalars(sample: dict, started: float) -> list[Scalar]:
    """(tag, value, step) of one resource sample, step = whole seconds since `started`:
    resources/<key> for the tree and machine figures, gpu<index>/<key> per GPU."""
    step = int(sample.get("t", started) - started)
    out: list[Scalar] = [(f"resources/{key}", sample[key], step) for key in RESOURCE_KEYS
                         if sample.get(key) is not None]
    for gpu in sample.get("gpus") or ():
        out += [(f"gpu{gpu.get('index')}/{key}", gpu[key], step) for key in GPU_KEYS
                if gpu.get(key) is not None]
    return out


def run_created(run_dir: str | Path) -> float:
    """When the run was made (run.json's `created`, else its first event), unix seconds; 0 if unknown."""
    root = Path(run_dir)
    try:
        created = json.loads((root / "run.json").read_text(encoding="utf-8")).get("created")
        return datetime.strptime(created, "%Y-%m-%dT%H:%M:%S%z").timestamp()
    except (OSError, ValueError, TypeError, AttributeError):
        pass
    try:
        with open(root / "events.jsonl", encoding="utf-8") as f:
            return float(json.loads(f.readline())["at"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0.0


class RunBoard:
    """What the supervisor writes to RUN/tensorboard: a darknet run's notes, any run's resources.

    Example: `board = RunBoard(run.root, "darknet")`; `board.note(note.kind, note.data)` for
    every note, `board.resources(monitor.latest())` now and then, `board.close()` at the end.
    """

    def __init__(self, run_dir: str | Path, backend: str, started: float | None = None) -> None:
        self.backend = backend
        self.started = run_created(run_dir) if started is None else started
        self.train = ScalarWriter(run_dir, backend) if backend == "darknet" else None
        self.usage = ScalarWriter(run_dir, "resources")
        self._last_step: int | None = None
        self._last_tag_step: dict[str, int] = {}
        self._last_sample_step: int | None = None

    @property
    def errors(self) -> int:
        """Failed writes over both files."""
        return self.usage.errors + (self.train.errors if self.train else 0)

    def note(self, kind: str, data: dict, wall_time: float | None = None) -> None:
        """Write the scalars of one backend note (darknet only; Ultralytics' worker writes its own)."""
        if self.train is None:
            return
        scalars = darknet_scalars(kind, data)
        if kind == PROGRESS and scalars:
            step = scalars[0][2]
            if self._last_step is None or step <= self._last_step:  # a new session or a restart
                self.train.restart(step, wall_time)
                self._last_tag_step.clear()
            self._last_step = step
        for tag, value, step in scalars:
            if self._last_tag_step.get(tag) == step:  # AlexeyAB prints each mAP twice
                continue
            self._last_tag_step[tag] = step
            self.train.scalar(tag, value, step, wall_time)

    def resources(self, sample: dict | None) -> None:
        """Write one resource sample unless it was written already (also flushes what is due)."""
        if sample:
            step = int(sample.get("t", self.started) - self.started)
            if self._last_sample_step is None or step > self._last_sample_step:
                self._last_sample_step = step
                for tag, value, at in resource_scalars(sample, self.started):
                    self.usage.scalar(tag, value, at, sample.get("t"))
        for writer in (self.train, self.usage):
            if writer is not None:
                writer.flush_due()

    def close(self) -> None:
        """Flush and close both files."""
        for writer in (self.train, self.usage):
            if writer is not None:
                writer.close()
