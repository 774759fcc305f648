"""The Ultralytics training worker: runs in a child process of the supervisor.

    python -m pipeline.ultralytics.worker RUN ATTEMPT [--healthy-only]

It picks the checkpoint to continue from (or decides the run is finished), repairs
results.csv to that checkpoint, trains with callbacks that write JSON lines to
RUN/progress.jsonl, keeps a last-good copy of each healthy checkpoint, and ends:
0 finished, 75 stopped at a safe point (resumable), 76 NaN loss, 77 loss explosion,
1 crashed. It kills its own process group when its supervisor disappears.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path

from pipeline.io import copy_atomic
from pipeline.train.options import engine_value
from pipeline.train.protocol import OutcomeKind
from pipeline.train.runs import RunFolder
from pipeline.train.watchdog import LossWatch, NanStreak
from pipeline.ultralytics import messages
from pipeline.ultralytics.env import seed_offline_settings

EXIT_STOPPED, EXIT_NAN, EXIT_EXPLOSION = 75, 76, 77
HEARTBEAT_SECONDS = 2.0


class StopRequested(Exception):
    """SIGTERM/SIGINT arrived: stop at this safe point."""


class LossVerdict(Exception):
    """The watchdog judged the loss (NaN or explosion)."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind


class Reporter:
    """Ultralytics callbacks that report to RUN/progress.jsonl and keep good checkpoints."""

    def __init__(self, run: RunFolder, attempt: int, explode_factor: float) -> None:
        self.run, self.attempt = run, attempt
        self.stop = False
        self.stop_at_epoch_end = False
        self.nan = NanStreak()
        self.watch = LossWatch(explode_factor)
        self.last_beat = 0.0
        self.batch = 0
        self.epoch_started = self.train_ended = time.time()
        self.first_epoch: int | None = None
        self.mosaic_seen: bool | None = None
        self.epoch_loss = math.nan
        self.finite_sum, self.finite_batches, self.nonfinite_batches = 0.0, 0, 0
        self.reported: set[int] = set()
        self.load_wait, self.compute = 0.0, 0.0
        self.last_batch_end: float | None = None
        self.batch_started: float | None = None
        #: `dry-run` probe: stop after this many batches and report their times.
        self.probe = int(os.environ.get("YOLO_PIPELINE_PROBE_BATCHES", "0"))
        self.batch_times: list[float] = []

    def emit(self, message: messages.Message) -> None:
        """Append one progress line (rank 0 only); pipeline.ultralytics.messages documents them."""
        if os.environ.get("RANK", "-1") not in ("-1", "0"):
            return
        message.attempt = self.attempt
        with open(self.run.progress, "ab") as f:
            f.write(messages.encode(message))

    def register(self, model) -> None:
        for event in ("on_train_start", "on_train_epoch_start", "on_train_batch_start", "on_train_batch_end",
                      "on_train_epoch_end", "on_val_batch_end", "on_model_save", "on_fit_epoch_end",
                      "on_train_end"):
            model.add_callback(event, getattr(self, event))

    # -- callbacks ------------------------------------------------------------------------
    def on_train_start(self, trainer) -> None:
        self.first_epoch = trainer.start_epoch
        self.emit(messages.Start(start_epoch=trainer.start_epoch, epochs=trainer.epochs,
                  batches=len(trainer.train_loader), images=len(trainer.train_loader.dataset),
                  device=str(trainer.device)))

    def on_train_epoch_start(self, trainer) -> None:
        self.epoch_started = time.time()
        self.batch = 0
        # the loop's wait for the loader between batches, and the batches' own time (the first
        # batch's wait, the loader workers' start, is left out)
        self.load_wait, self.compute, self.last_batch_end, self.batch_started = 0.0, 0.0, None, None

    def on_train_batch_start(self, trainer) -> None:
        now = time.time()
        if self.last_batch_end is not None:
            self.load_wait += now - self.last_batch_end
        self.batch_started = now
        self.finite_sum, self.finite_batches, self.nonfinite_batches = 0.0, 0, 0

    def on_train_batch_end(self, trainer) -> None:
        now = time.time()
        if self.batch_started is not None:
            self.compute += now - self.batch_started
        self.last_batch_end = now
        self.batch += 1
        if self.probe:
            self.batch_times.append(time.time())
            if self.batch >= self.probe:
                gaps = [b - a for a, b in zip(self.batch_times, self.batch_times[1:], strict=False)][1:]
                self.emit(messages.Probe(batch_seconds=gaps, batches=len(trainer.train_loader),
                          images=len(trainer.train_loader.dataset)))
                raise StopRequested()
        values = _floats(trainer.loss_items)
        if values and all(math.isfinite(v) for v in values):  # our own epoch mean: finite batches only
            self.finite_sum += sum(values)
            self.finite_batches += 1
        elif values:
            self.nonfinite_batches += 1
        if self.nan.check(values):
            self.emit(messages.Nan(epoch=trainer.epoch + 1, batch=self.batch, loss=_json_floats(values)))
            raise LossVerdict(OutcomeKind.NAN,
                              f"non-finite loss {values} in {self.nan.limit} batches in a row "
                                   f"(epoch {trainer.epoch + 1}, batch {self.batch})")
        now = time.time()
        if now - self.last_beat >= HEARTBEAT_SECONDS:
            self.last_beat = now
            self.emit(messages.Batch(epoch=trainer.epoch + 1, batch=self.batch,
                      batches=len(trainer.train_loader), loss=_json_floats(values)))
        if self.stop:
            raise StopRequested()

    def on_train_epoch_end(self, trainer) -> None:
        self.train_ended = time.time()
        # Ultralytics' tloss is a running mean: one NaN batch would make the whole epoch NaN and
        # pre-empt its own recovery. The epoch is judged on its finite batches; NaN only if none.
        self.epoch_loss = self.finite_sum / self.finite_batches if self.finite_batches else math.nan
        mosaic = bool(getattr(trainer.train_loader.dataset, "mosaic", False))
        switched = self.mosaic_seen is not None and mosaic != self.mosaic_seen
        self.mosaic_seen = mosaic
        warmup = trainer.epoch < math.ceil(trainer.args.warmup_epochs) or switched \
            or trainer.epoch == self.first_epoch
        verdict = self.watch.check(self.epoch_loss, warmup=warmup)
        if verdict == OutcomeKind.EXPLOSION:
            self.emit(messages.Explosion(epoch=trainer.epoch + 1, loss=self.epoch_loss,
                                         minimum=self.watch.minimum))
            raise LossVerdict(OutcomeKind.EXPLOSION,
                              f"epoch {trainer.epoch + 1} train loss {self.epoch_loss:.4g} is "
                                         f"over {self.watch.factor:g} x its minimum {self.watch.minimum:.4g}")
        if verdict == OutcomeKind.NAN:
            self.emit(messages.Nan(epoch=trainer.epoch + 1, loss=None))
            raise LossVerdict(OutcomeKind.NAN,
                              f"epoch {trainer.epoch + 1}: every batch's loss was non-finite")
        if self.nonfinite_batches:
            self.emit(messages.NonfiniteBatches(epoch=trainer.epoch + 1, count=self.nonfinite_batches,
                      batches=self.batch))

    def on_val_batch_end(self, validator) -> None:
        now = time.time()
        if now - self.last_beat >= HEARTBEAT_SECONDS:
            self.last_beat = now
            self.emit(messages.ValBatch())

    def on_model_save(self, trainer) -> None:
        fitness = trainer.fitness if trainer.fitness is not None else 0.0
        if math.isfinite(self.epoch_loss) and math.isfinite(float(fitness)) and _finite_weights(trainer):
            good = self.run.checkpoints / "last_good.pt"
            try:
                copy_atomic(trainer.last, good)
            except OSError as exc:  # the previous good copy stays; the engine goes on
                self.emit(messages.CheckpointFailed(epoch=trainer.epoch + 1,
                                                    detail=f"{good}: {exc.strerror}"))
                return
            self.emit(messages.Checkpoint(epoch=trainer.epoch + 1, path=str(good)))

    def on_fit_epoch_end(self, trainer) -> None:
        epoch = trainer.epoch + 1
        if epoch in self.reported or epoch > trainer.epochs:  # final_eval fires it once more
            return
        self.reported.add(epoch)
        now = time.time()
        metrics = {k: float(v) for k, v in (trainer.metrics or {}).items()
                   if isinstance(v, (int, float)) or hasattr(v, "item")}
        self.emit(messages.Epoch(epoch=epoch, epochs=trainer.epochs, seconds=now - self.epoch_started,
                  train_seconds=self.train_ended - self.epoch_started, val_seconds=now - self.train_ended,
                  mosaic=bool(self.mosaic_seen), first_of_session=trainer.epoch == self.first_epoch,
                  loss=_json_float(self.epoch_loss), metrics=metrics,
                  images=len(trainer.train_loader.dataset), batch=trainer.batch_size,
                  close_mosaic=trainer.args.close_mosaic, peak_memory=_peak_memory(),
                  load_wait=round(self.load_wait, 3), compute=round(self.compute, 3)))
        if self.stop or self.stop_at_epoch_end:
            raise StopRequested()

    def on_train_end(self, trainer) -> None:
        done = trainer.epoch + 1
        self.emit(messages.Finished(epochs=trainer.epochs, done=done, early=_early_stop(trainer, done)))


def _early_stop(trainer, done: int) -> str | None:
    """Why Ultralytics ended before its last epoch (patience, time=), or None."""
    if done >= trainer.epochs:
        return None
    args, stopper = trainer.args, getattr(trainer, "stopper", None)
    if stopper is not None and stopper.patience and done - stopper.best_epoch >= stopper.patience:
        return (f"patience={stopper.patience}: no better fitness since epoch {stopper.best_epoch + 1}, "
                f"so it stopped at epoch {done} of {trainer.epochs}")
    if getattr(args, "time", None):
        return f"time={args.time} h reached at epoch {done} of {trainer.epochs}"
    return f"stopped at epoch {done} of {trainer.epochs}"


def _no_amp_download() -> None:
    """Ultralytics' AMP check on a GPU downloads yolo26n.pt to compare FP32 and AMP outputs;
    nothing may download here, so the check is skipped and AMP stays on (`-- amp=False` turns
    it off; the NaN advice says so)."""
    import ultralytics.engine.trainer as trainer_module

    def skipped(model) -> bool:
        print("AMP: Ultralytics' check skipped (it would download a model); amp stays on", flush=True)
        return True
    trainer_module.check_amp = skipped


def _finite_weights(trainer) -> bool:
    """True when every parameter of the trained model is finite (a NaN step can poison them)."""
    model = getattr(trainer, "model", None)
    if model is None or not hasattr(model, "parameters"):
        return True
    import torch

    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


def _floats(items) -> list[float]:
    """Loss items of any Ultralytics version (dict of tensors, or a tensor) as floats."""
    if items is None:
        return []
    if isinstance(items, dict):
        items = list(items.values())
    elif hasattr(items, "tolist"):
        items = items.tolist()
    return [float(v) for v in (items if isinstance(items, (list, tuple)) else [items])]


def _json_float(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _json_floats(values: list[float]) -> list[float | None]:
    return [_json_float(v) for v in values]


def _peak_memory() -> dict:
    """Peak RSS of this process and, on a GPU, peak CUDA memory, in MB."""
    import resource

    import torch

    out = {"rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out


def trim_results(csv: Path, completed_epochs: int) -> int:
    """Keep results.csv rows of epochs 1..completed_epochs and drop a cut-short last line.

    Returns the number of lines dropped. Ultralytics appends without looking, so a row
    written after the checkpoint it resumes from would otherwise appear twice.
    """
    if not csv.exists():
        return 0
    text = csv.read_text(encoding="utf-8", errors="replace")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    elif lines:
        lines.pop()  # no newline at the end: cut short by a kill
    rows: dict[int, str] = {}  # the last row of each epoch: the most recent training of it
    for line in lines[1:]:
        try:
            epoch = int(float(line.split(",", 1)[0]))
        except ValueError:
            continue
        if epoch <= completed_epochs:
            rows[epoch] = line
    keep = lines[:1] + [rows[e] for e in sorted(rows)]
    dropped = len(text.splitlines()) - len(keep)
    if dropped:
        from pipeline.io import atomic_write

        atomic_write(csv, "\n".join(keep) + "\n")
    return dropped


def choose_checkpoint(weights: Path, good: Path, healthy_only: bool,
                      epochs: int | None = None) -> tuple[str, Path | None, int, str]:
    """("finished"|"resume"|"fresh", path, completed epochs, why), judged by loading each file.

    `epochs` is the run's target now (a resume may have raised it): a run that finished its old
    target continues from our own unstripped copy (last_good.pt keeps the optimizer).
    """
    import torch

    candidates = [good] if healthy_only else [weights / "last.pt", good]
    usable: list[tuple[int, Path, int]] = []
    notes = []
    for path in candidates:
        if not path.exists():
            continue
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc:  # a truncated or corrupt file: any error means "not usable"
            notes.append(f"{path.name} unreadable ({type(exc).__name__})")
            continue
        epoch = ckpt.get("epoch", -1) if isinstance(ckpt, dict) else -1
        total = int((ckpt.get("train_args") or {}).get("epochs", 0)) if isinstance(ckpt, dict) else 0
        if path.name == "last.pt" and epoch == -1:
            if not epochs or epochs <= total:
                return "finished", path, total, f"{path} is the final checkpoint (training completed)"
            notes.append(f"{path.name} is final (training to {total} epochs completed)")
            continue
        if epoch >= 0 and ckpt.get("optimizer") is not None:
            usable.append((epoch, path, total))
        else:
            notes.append(f"{path.name} is not resumable (epoch {epoch})")
    if not usable:
        return "fresh", None, 0, "; ".join(notes) or "no checkpoint yet"
    epoch, path, total = max(usable)
    target = epochs or total
    if target and epoch + 1 >= target:
        return "finished", path, epoch + 1, f"{path} holds the last of {target} epochs"
    return "resume", path, epoch + 1, "; ".join(notes)


def with_epochs(path: Path, epochs: int, out: Path) -> Path:
    """`path` itself, or a copy at `out` whose training arguments say `epochs` (Ultralytics' resume
    takes the epoch count from the checkpoint and refuses to change it)."""
    import torch

    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    args = ckpt.get("train_args") or {}
    if int(args.get("epochs", 0)) == epochs:
        return path
    ckpt["train_args"] = {**args, "epochs": epochs}
    tmp = out.with_name(f".{out.name}.tmp")
    torch.save(ckpt, tmp)
    tmp.replace(out)
    return out


def _watch_parent(parent: int) -> None:
    """End this whole process group (dataloader workers too) once the supervisor is gone."""
    while True:
        if os.getppid() != parent:
            os.killpg(os.getpgrp(), signal.SIGKILL)
        time.sleep(1.0)


def main(argv: list[str]) -> int:
    run = RunFolder(Path(argv[0]))
    attempt = int(argv[1])
    healthy_only = "--healthy-only" in argv
    info = run.read_run()
    opts = info["options"]
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    reporter = Reporter(run, attempt, float(opts["explode_factor"]))

    def on_signal(signum, frame):
        reporter.stop = True

    def at_epoch_end(signum, frame):  # `stop --at-epoch-end`: finish this epoch, save, then stop
        reporter.stop_at_epoch_end = True
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGUSR1, at_epoch_end)

    seed_offline_settings(Path(os.environ["YOLO_CONFIG_DIR"]))
    from ultralytics import YOLO

    _no_amp_download()

    save_dir = run.engine_dir("ultralytics")
    data = str(Path(opts["cfgdir"]) / "data.yaml")
    decision, path, done, why = choose_checkpoint(save_dir / "weights", run.checkpoints / "last_good.pt",
                                                  healthy_only, opts["epochs"])
    if decision == "finished":
        reporter.emit(messages.FinishedAlready(detail=why, epochs=done))
        return 0
    common = {"data": data, "save_dir": str(save_dir), "device": opts["device"],
              "workers": opts["workers"]}
    if decision == "resume":
        dropped = trim_results(save_dir / "results.csv", done)
        reporter.emit(messages.Resume(path=str(path), completed=done, dropped_rows=dropped, detail=why))
        path = with_epochs(path, opts["epochs"], run.checkpoints / "continue.pt")
        model = YOLO(str(path))
        kwargs = {**common, "resume": str(path), "batch": opts["batch"]}  # resume may change batch
    else:
        reporter.emit(messages.Fresh(detail=why))
        model = YOLO(info["model"])
        kwargs = {**common, "epochs": opts["epochs"], "imgsz": opts["imgsz"], "batch": opts["batch"],
                  "seed": opts["seed"], "exist_ok": True, "verbose": True}
        if opts["device"] == "cpu":
            kwargs["amp"] = False  # AMP's check would fetch a model; it is off on a CPU anyway
        kwargs.update({k: engine_value(v) for k, v in opts["extra"].items()})
    if opts.get("tensorboard"):  # RUN/tensorboard/ultralytics; first, as the reporter's callbacks may stop
        from pipeline.ultralytics.board import EpochScalars

        EpochScalars(run.root).register(model)
    reporter.register(model)
    try:
        model.train(**kwargs)
    except StopRequested:
        reporter.emit(messages.Stopped())
        return EXIT_STOPPED
    except KeyboardInterrupt:
        reporter.emit(messages.Stopped())
        return EXIT_STOPPED
    except LossVerdict as verdict:
        return EXIT_NAN if verdict.kind == OutcomeKind.NAN else EXIT_EXPLOSION
    except Exception as exc:  # the engine crashed: the traceback goes to the attempt log
        traceback.print_exc()
        reporter.emit(messages.Crash(detail=f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1][:300]}"
                      if str(exc).strip() else type(exc).__name__))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
