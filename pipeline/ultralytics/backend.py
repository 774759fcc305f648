"""The Ultralytics backend: our own worker process (`pipeline.ultralytics.worker`), read through the
JSON lines it writes. The supervisor never imports torch or Ultralytics."""

from __future__ import annotations

import os
import re
import signal
import sys
from pathlib import Path

import msgspec

from pipeline.dataset.datafiles import read_list, read_ultralytics_yaml
from pipeline.errors import UserError
from pipeline.io import LineTail
from pipeline.train.options import TrainOptions, check_engine_args, resolve_model
from pipeline.train.protocol import (
    CHECKPOINT,
    EVENT,
    HEARTBEAT,
    PROGRESS,
    TIMING,
    VERDICT,
    Launch,
    Note,
    Outcome,
    OutcomeKind,
)
from pipeline.train.provenance import file_digest
from pipeline.train.runs import RunFolder
from pipeline.ultralytics import messages
from pipeline.ultralytics.env import worker_env
from pipeline.ultralytics.worker import EXIT_EXPLOSION, EXIT_NAN, EXIT_STOPPED

#: Seconds a stopping worker gets to reach its next batch end before it is killed.
STOP_GRACE = 120.0


class UltralyticsBackend:
    """Supervisor-side view of one Ultralytics run."""

    name = "ultralytics"
    unit = "epoch"
    poll_seconds = 0.5

    def __init__(self, run: RunFolder, opts: TrainOptions) -> None:
        self.run, self.opts = run, opts
        self.tail: LineTail | None = None
        self.ended: str | None = None
        self.crash: str | None = None
        self.verdict: Note | None = None
        self.training = False

    def prepare(self) -> dict:
        """Resolve the model offline and read the dataset the engine will see."""
        data = self.opts.cfgdir / "data.yaml"
        if not data.is_file():
            raise UserError(f"{data}: no such file", "run `yolo-pipeline configs` first, or give its --out")
        model = resolve_model(self.opts.model)
        check_engine_args(self.opts.extra)
        spec = read_ultralytics_yaml(data)
        train_list = spec.get("train")
        images = len(read_list(train_list)) if train_list and Path(str(train_list)).is_file() else None
        names = spec.get("names") or {}
        return {
            "total": self.opts.epochs,
            "model": model,
            "digests": {"data_yaml": file_digest(data), "train_list": file_digest(train_list),
                        "model": file_digest(model) if os.path.isabs(model) else model},
            "dataset": {"classes": len(names), "train_images": images},
        }

    def launch(self, attempt: int, healthy_only: bool) -> Launch | None:
        self.tail = LineTail(self.run.progress, start_at_end=True)
        self.ended = self.crash = None
        self.early: tuple[str, int | None] | None = None
        self.verdict = None
        self.training = False  # the engine reached on_train_start
        self.log, self.log_size = self.run.attempt_log(attempt), 0
        argv = [sys.executable, "-m", "pipeline.ultralytics.worker", str(self.run.root), str(attempt)]
        if healthy_only:
            argv.append("--healthy-only")
        run_id = self.run.read_run()["run_id"]
        return Launch(argv, self.run.root, worker_env(run_id))

    def poll(self, final: bool = False) -> list[Note]:
        notes: list[Note] = []
        if self.tail is None:
            return notes
        for line in self.tail.lines(final):
            if (message := messages.decode(line)) is not None:
                notes += self._note(message)
        return notes + self._console_heartbeat()

    def _console_heartbeat(self) -> list[Note]:
        """The engine's console grew (the label scan, `cache=` and validation print progress
        there before any callback runs): alive, though not yet training."""
        try:
            size = self.log.stat().st_size
        except OSError:
            return []
        grew, self.log_size = size > self.log_size, size
        return [Note(HEARTBEAT)] if grew else []

    def _note(self, message: messages.AnyMessage) -> list[Note]:
        """The supervisor's notes for one worker message (none for those it need not hear)."""
        handler = _HANDLERS.get(type(message))
        return handler(self, message) if handler else []

    def _batch(self, m: messages.Batch) -> list[Note]:
        loss = [v for v in m.loss if v is not None]
        return [Note(PROGRESS, data={"done": m.epoch - 1, "total": self.opts.epochs,
                                     "fraction": m.batch / max(1, m.batches),
                                     "loss": sum(loss) if loss else None})]

    def _epoch(self, m: messages.Epoch) -> list[Note]:
        return [Note(TIMING, data=msgspec.structs.asdict(m)),
                Note(PROGRESS, data={"done": m.epoch, "total": m.epochs, "loss": m.loss,
                                     "metrics": m.metrics})]

    def _alive(self, m: messages.AnyMessage) -> list[Note]:
        self.training = self.training or isinstance(m, messages.Start)
        return [Note(HEARTBEAT)]

    def _resume(self, m: messages.Resume) -> list[Note]:
        extra = f"; {m.dropped_rows} results.csv row(s) past it removed" if m.dropped_rows else ""
        return [Note(HEARTBEAT), Note(EVENT, f"continues from {m.path} after epoch {m.completed}{extra}",
                                      {"event": "checkpoint-chosen", "done": m.completed})]

    def _fresh(self, m: messages.Fresh) -> list[Note]:
        return [Note(HEARTBEAT), Note(EVENT, f"starts from {self.opts.model} ({m.detail})",
                                      {"event": "fresh-start"})]

    def _checkpoint(self, m: messages.Checkpoint) -> list[Note]:
        return [Note(CHECKPOINT, m.path, {"path": m.path, "done": m.epoch})]

    def _checkpoint_failed(self, m: messages.CheckpointFailed) -> list[Note]:
        return [Note(EVENT, f"could not keep a copy of the checkpoint of epoch {m.epoch}: {m.detail}",
                     {"event": "checkpoint-failed"})]

    def _nonfinite(self, m: messages.NonfiniteBatches) -> list[Note]:
        return [Note(EVENT, f"epoch {m.epoch}: {m.count} of {m.batches} batches had a non-finite loss "
                            "(skipped by the engine; the epoch is judged on the rest)",
                     {"event": "nonfinite-batches"})]

    def _verdict(self, m: messages.Nan | messages.Explosion) -> list[Note]:
        if isinstance(m, messages.Nan):
            kind, detail = OutcomeKind.NAN, f"non-finite loss at epoch {m.epoch} batch {m.batch}: {m.loss}"
        else:
            kind = OutcomeKind.EXPLOSION
            detail = (f"epoch {m.epoch} train loss {m.loss:.4g} over {self.opts.explode_factor:g} x its "
                      f"minimum {m.minimum:.4g}")
        self.verdict = Note(VERDICT, detail, {"kind": kind, "done": m.epoch - 1, "handled_by_worker": True})
        return [self.verdict]

    def _ended(self, m: messages.Finished | messages.FinishedAlready | messages.Stopped) -> list[Note]:
        self.ended = {messages.Finished: "finished", messages.FinishedAlready: "finished_already",
                      messages.Stopped: "stopped"}[type(m)]
        if isinstance(m, messages.Finished) and m.early:
            self.early = (m.early, m.done)
        if isinstance(m, messages.FinishedAlready):
            return [Note(EVENT, f"already finished: {m.detail}", {"event": "finished-already"})]
        return []

    def _crash(self, m: messages.Crash) -> list[Note]:
        self.crash = m.detail
        return []

    def outcome(self, returncode: int) -> Outcome:
        if returncode == 0 and self.ended in ("finished", "finished_already"):
            if self.early:
                return Outcome(OutcomeKind.FINISHED,
                               f"Ultralytics ended early: {self.early[0]}", at=self.early[1])
            return Outcome(OutcomeKind.FINISHED, "Ultralytics finished every epoch")
        if returncode == EXIT_STOPPED:
            return Outcome(OutcomeKind.STOPPED, "stopped at a safe point; resumable")
        if returncode in (EXIT_NAN, EXIT_EXPLOSION) and self.verdict is not None:
            return Outcome(self.verdict.data["kind"], self.verdict.detail)
        if returncode < 0:
            return Outcome(OutcomeKind.CRASHED, f"worker killed by signal {signal.Signals(-returncode).name}")
        detail = self.crash or _last_error(self.run.attempt_logs())
        if not self.training:  # a bad argument, an unreadable dataset: a restart cannot help
            return Outcome(OutcomeKind.FAILED, f"Ultralytics stopped before training: {detail}")
        return Outcome(OutcomeKind.CRASHED, f"worker exited with code {returncode}: {detail}")

    def request_stop(self, pid: int, at_epoch_end: bool = False) -> float:
        """SIGTERM to the worker: it stops at its next batch end (SIGUSR1: at the end of the epoch,
        its checkpoint saved). Under DDP the ranks run in torchrun's children, so the whole group
        gets it (torchrun ends the ranks). The supervisor waits while heartbeats arrive."""
        signum = signal.SIGUSR1 if at_epoch_end else signal.SIGTERM
        if "," in self.opts.device:
            os.killpg(pid, signum)
        else:
            os.kill(pid, signum)  # not the data-loader workers: they would crash it
        return STOP_GRACE


_HANDLERS = {
    messages.Batch: UltralyticsBackend._batch, messages.Epoch: UltralyticsBackend._epoch,
    messages.Start: UltralyticsBackend._alive, messages.ValBatch: UltralyticsBackend._alive,
    messages.Resume: UltralyticsBackend._resume, messages.Fresh: UltralyticsBackend._fresh,
    messages.Checkpoint: UltralyticsBackend._checkpoint,
    messages.CheckpointFailed: UltralyticsBackend._checkpoint_failed,
    messages.NonfiniteBatches: UltralyticsBackend._nonfinite,
    messages.Nan: UltralyticsBackend._verdict, messages.Explosion: UltralyticsBackend._verdict,
    messages.Finished: UltralyticsBackend._ended, messages.FinishedAlready: UltralyticsBackend._ended,
    messages.Stopped: UltralyticsBackend._ended, messages.Crash: UltralyticsBackend._crash,
}

_EXCEPTION = re.compile(r"^\s*(?:[\w.]+\.)?\w*(?:Error|Exception)\b:")
_ERRORISH = re.compile(r"[Ee]rror|Killed")


def _last_error(logs: list[Path]) -> str:
    """The engine's real error from the newest attempt log: the last exception line
    (`ValueError: ...`), else the last line that says error; with the log's name."""
    if not logs:
        return "no log"
    try:
        lines = logs[-1].read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "no log"
    where = f" (see {logs[-1].parent.name}/{logs[-1].name})"
    for pattern in (_EXCEPTION, _ERRORISH):
        for line in reversed(lines):
            if pattern.search(line):
                return line.strip()[:300] + where
    return (lines[-1].strip()[:300] if lines else "empty log") + where
