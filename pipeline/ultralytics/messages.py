"""The worker's reports to its supervisor: one JSON object per line in RUN/progress.jsonl.

The worker (pipeline.ultralytics.worker) appends a line from rank 0 at each Ultralytics
callback that matters; the backend (pipeline.ultralytics.backend) reads the new lines at
every poll and turns them into the supervisor's notes. Every line carries `kind` (the tag
below), `attempt` and `t` (unix seconds). A line that does not decode (cut short by a kill,
from a newer version) is skipped.

    start              training began: start_epoch, epochs, batches, images, device
    batch              a heartbeat every few seconds: epoch, batch, batches, loss items
    val_batch          a heartbeat during validation
    epoch              an epoch is trained and validated: times (and how long the loop waited
                       for the data loader), loss, metrics, memory
    checkpoint         our healthy copy of last.pt (path) for the epoch
    checkpoint_failed  that copy could not be written (detail)
    nonfinite_batches  batches of the epoch with a non-finite loss (count of batches)
    nan, explosion     the watchdog's verdict; the worker exits with its own code
    resume, fresh      which checkpoint this attempt continues from, or none (detail)
    finished           every epoch done, or ended early (`early` says why, `done` epochs)
    finished_already   the checkpoint already holds the last epoch
    stopped            a stop request was honoured at a safe point
    crash              the engine raised (detail: the exception's last line)
    probe              `--dry-run`: the seconds of the first batches
"""

from __future__ import annotations

import time
from typing import Union

import msgspec


class Message(msgspec.Struct, tag_field="kind", kw_only=True):
    """Fields every line has."""

    attempt: int = 0
    t: float = msgspec.field(default_factory=lambda: round(time.time(), 3))


class Start(Message, tag="start"):
    start_epoch: int
    epochs: int
    batches: int
    images: int
    device: str


class Batch(Message, tag="batch"):
    epoch: int
    batch: int
    batches: int
    loss: list[float | None] = []


class ValBatch(Message, tag="val_batch"):
    pass


class Epoch(Message, tag="epoch"):
    epoch: int
    epochs: int
    seconds: float
    train_seconds: float
    val_seconds: float
    mosaic: bool
    first_of_session: bool
    loss: float | None
    metrics: dict[str, float | None] = {}
    images: int = 0
    batch: int = 0
    close_mosaic: int | None = None
    peak_memory: dict = {}
    #: Seconds the training loop waited for the next batch (the data loader), and computed.
    load_wait: float | None = None
    compute: float | None = None


class Checkpoint(Message, tag="checkpoint"):
    epoch: int
    path: str


class CheckpointFailed(Message, tag="checkpoint_failed"):
    epoch: int
    detail: str


class NonfiniteBatches(Message, tag="nonfinite_batches"):
    epoch: int
    count: int
    batches: int


class Nan(Message, tag="nan"):
    epoch: int
    batch: int | None = None
    loss: list[float | None] | None = None


class Explosion(Message, tag="explosion"):
    epoch: int
    loss: float
    minimum: float


class Resume(Message, tag="resume"):
    path: str
    completed: int
    dropped_rows: int = 0
    detail: str = ""


class Fresh(Message, tag="fresh"):
    detail: str = ""


class Finished(Message, tag="finished"):
    epochs: int
    done: int | None = None
    early: str | None = None


class FinishedAlready(Message, tag="finished_already"):
    epochs: int
    detail: str = ""


class Stopped(Message, tag="stopped"):
    pass


class Crash(Message, tag="crash"):
    detail: str


class Probe(Message, tag="probe"):
    batch_seconds: list[float]
    batches: int
    images: int


AnyMessage = Union[Start, Batch, ValBatch, Epoch, Checkpoint, CheckpointFailed, NonfiniteBatches,  # noqa: UP007
                   Nan, Explosion, Resume, Fresh, Finished, FinishedAlready, Stopped, Crash, Probe]
_DECODER = msgspec.json.Decoder(AnyMessage)
_ENCODER = msgspec.json.Encoder()


def encode(message: Message) -> bytes:
    """One line of progress.jsonl (with its newline)."""
    return _ENCODER.encode(message) + b"\n"


def decode(line: str | bytes) -> AnyMessage | None:
    """The message of one line, or None for a line that does not decode.

    Example: `decode('{"kind": "val_batch", "attempt": 1, "t": 0}')` -> ValBatch(attempt=1, t=0.0).
    """
    try:
        return _DECODER.decode(line)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
