"""The worker-to-backend protocol (pipeline.ultralytics.messages): each kind round-trips,
a bad line is skipped, and the backend turns each into the notes the supervisor needs."""

from __future__ import annotations

import json

import pytest

from pipeline.train.options import TrainOptions
from pipeline.train.protocol import CHECKPOINT, EVENT, HEARTBEAT, PROGRESS, TIMING, VERDICT, OutcomeKind
from pipeline.train.runs import RunFolder
from pipeline.ultralytics import messages as m
from pipeline.ultralytics.backend import UltralyticsBackend

SAMPLES = [
    m.Start(start_epoch=0, epochs=5, batches=10, images=40, device="cpu"),
    m.Batch(epoch=2, batch=5, batches=10, loss=[1.0, None]),
    m.ValBatch(),
    m.Epoch(epoch=2, epochs=5, seconds=3.0, train_seconds=2.5, val_seconds=0.5, mosaic=True,
            first_of_session=False, loss=None, metrics={"metrics/mAP50(B)": 0.5}),
    m.Checkpoint(epoch=2, path="/r/checkpoints/last_good.pt"),
    m.CheckpointFailed(epoch=3, detail="No space left on device"),
    m.NonfiniteBatches(epoch=2, count=1, batches=10),
    m.Nan(epoch=3, batch=4, loss=[None, 2.0]),
    m.Explosion(epoch=4, loss=90.0, minimum=3.0),
    m.Resume(path="/r/last.pt", completed=2, dropped_rows=1, detail=""),
    m.Fresh(detail="no checkpoint yet"),
    m.Finished(epochs=5, done=5),
    m.FinishedAlready(epochs=5, detail="last.pt is final"),
    m.Stopped(),
    m.Crash(detail="RuntimeError: boom"),
    m.Probe(batch_seconds=[0.1, 0.2], batches=10, images=40),
]


@pytest.mark.parametrize("message", SAMPLES, ids=lambda x: type(x).__name__)
def test_every_kind_round_trips_with_its_kind_field(message):
    line = m.encode(message)
    assert line.endswith(b"\n") and json.loads(line)["kind"] == type(message).__struct_config__.tag
    assert m.decode(line) == message


@pytest.mark.parametrize("line", ['{"kind": "epoch", "epoch": 1', '{"kind": "nope"}', "not json", ""])
def test_a_bad_line_is_skipped(line):
    assert m.decode(line) is None


def test_the_backend_turns_messages_into_notes(tmp_path):
    backend = UltralyticsBackend(RunFolder(tmp_path), TrainOptions(cfgdir=tmp_path, out=tmp_path, epochs=5))
    backend.ended = backend.crash = backend.early = None
    kinds = {type(s).__name__: [n.kind for n in backend._note(s)] for s in SAMPLES}
    assert kinds["Batch"] == [PROGRESS] and kinds["Epoch"] == [TIMING, PROGRESS]
    assert kinds["Checkpoint"] == [CHECKPOINT] and kinds["Resume"] == [HEARTBEAT, EVENT]
    assert kinds["Nan"] == [VERDICT] and kinds["Probe"] == [] and kinds["Start"] == [HEARTBEAT]
    assert backend.verdict.data["kind"] == OutcomeKind.EXPLOSION and backend.crash == "RuntimeError: boom"
    assert backend.training
