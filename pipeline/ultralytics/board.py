"""TensorBoard scalars of an Ultralytics training, written by our worker into RUN/tensorboard/ultralytics/.

The same tags and steps as Ultralytics' own TensorBoard callback (train/box_loss ..., lr/pg0 ...,
metrics/mAP50(B) ..., val/box_loss ...; step = the epoch, 1-based), written through our
`ScalarWriter` instead of turning that callback on, because the callback:
- is silently off whenever PYTEST_CURRENT_TEST or GitHub Actions' variables are in the
  environment (Ultralytics' TESTS_RUNNING), so it could be neither tested nor relied on in CI;
- is switched by the `tensorboard` key of the settings file every run on the machine shares
  (our private YOLO_CONFIG_DIR), so two runs would flip it for each other;
- writes into trainer.save_dir (RUN/ultralytics) through a module-level writer, which only
  patching Ultralytics' internals would move to RUN/tensorboard.
It also traces the model for a graph (seconds, and warnings); we write scalars only.
"""

from __future__ import annotations

import os
from pathlib import Path

from pipeline.train.tensorboard import ScalarWriter


class EpochScalars:
    """Worker callbacks: each epoch's losses, learning rates and metrics as TensorBoard scalars."""

    def __init__(self, run_dir: str | Path) -> None:
        self.writer = ScalarWriter(run_dir, "ultralytics")
        self.done: set[int] = set()

    def register(self, model) -> None:
        """Add the callbacks to an Ultralytics `YOLO` model."""
        for event in ("on_train_start", "on_fit_epoch_end", "teardown"):
            model.add_callback(event, getattr(self, event))

    @staticmethod
    def _rank0() -> bool:
        return os.environ.get("RANK", "-1") in ("-1", "0")

    def on_train_start(self, trainer) -> None:
        """A (re)start at epoch start_epoch + 1: values of an abandoned attempt from there on are dropped."""
        if self._rank0():
            self.writer.restart(int(trainer.start_epoch) + 1)
            self.writer.flush()

    def on_fit_epoch_end(self, trainer) -> None:
        """Train losses, learning rates and validation metrics of the epoch just ended."""
        epoch = trainer.epoch + 1
        if not self._rank0() or epoch in self.done or epoch > trainer.epochs:  # final_eval fires it again
            return
        self.done.add(epoch)
        try:
            values: dict = {}
            if trainer.tloss is not None:
                values.update(trainer.label_loss_items(trainer.tloss, prefix="train"))
            values.update(trainer.lr or {})
            values.update(trainer.metrics or {})
        except Exception:  # noqa: BLE001 - a scalar we cannot read must never end the training
            self.writer.skipped += 1
            return
        for tag, value in values.items():
            self.writer.scalar(str(tag), value.item() if hasattr(value, "item") else value, epoch)
        self.writer.flush()

    def teardown(self, trainer) -> None:
        """Close the file (Ultralytics calls this after a training, also a failed one)."""
        self.writer.close()
