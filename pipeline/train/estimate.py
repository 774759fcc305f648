"""`estimate`: the time of a bigger job from a run's own measured speed.

darknet: iterations by the max_batches rule `configs` uses, times the measured seconds per
iteration (which barely depends on the class count: only the heads' filters grow).
Ultralytics: epochs x images / the measured images per second (validation included).
"""

from __future__ import annotations

import statistics
from pathlib import Path

from pipeline.darknet.values import max_batches_formula, max_batches_rule
from pipeline.errors import UserError
from pipeline.train.runs import RunFolder


def estimate_job(run_dir: str | Path, *, classes: int, images: int | None = None,
                 epochs: int | None = None) -> dict:
    """Project a job of `classes` (and `images`, `epochs`) from the run in `run_dir`.

    Example: a darknet run at 0.5 s/iteration, `classes=1000` -> 2,000,000 iterations,
    1,000,000 s.
    """
    run = RunFolder(Path(run_dir).resolve())
    info = run.read_run()
    state = run.read_state()
    dataset = info.get("dataset") or {}
    measured_classes = dataset.get("classes") or 0
    measured_images = dataset.get("train_images") or 0
    if images is None:
        if not (measured_classes and measured_images):
            raise UserError("this run does not record its dataset size: pass --images N")
        images = round(measured_images * classes / measured_classes)
    basis = {"run": str(run.root), "backend": info["backend"], "measured_classes": measured_classes,
             "measured_train_images": measured_images, "done": state.get("done"),
             "classes": classes, "images": images}
    if info["backend"] == "darknet":
        if not state.get("speed"):
            raise UserError(f"{run.root}: no iteration speed measured yet (run it a little longer)")
        per = 1.0 / state["speed"]
        units = max_batches_rule(classes, images)
        basis.update(rule=f"max_batches = {max_batches_formula(classes, images)}",
                     per_unit="median wall seconds per iteration, recent window, first iterations "
                              "of each attempt left out")
        text = (f"{units:,} iterations x {per:.4g} s (measured over this run's iterations) = "
                f"{_human(units * per)}")
        return {"seconds": units * per, "units": units, "unit": "iteration", "per_unit_seconds": per,
                "basis": basis, "text": text}
    rates = [e["images"] / e["seconds"] for e in state.get("epoch_times") or []
             if e.get("images") and e.get("seconds") and not e.get("first_of_session")]
    if not rates:
        rates = [e["images"] / e["seconds"] for e in state.get("epoch_times") or []
                 if e.get("images") and e.get("seconds")]
    if not rates:
        raise UserError(f"{run.root}: no epoch measured yet (wait for the first epoch to end)")
    per_image = 1.0 / statistics.median(rates)
    epochs = epochs or int(info["options"]["epochs"])
    units = epochs * images
    basis.update(epochs=epochs, measured_epochs=len(rates),
                 per_unit="median wall seconds per training image over measured epochs "
                          "(validation included; first epoch of each session left out)")
    text = (f"{epochs} epochs x {images:,} images x {per_image:.4g} s/image = {_human(units * per_image)}")
    return {"seconds": units * per_image, "units": units, "unit": "image-epoch",
            "per_unit_seconds": per_image, "basis": basis, "text": text}


def _human(seconds: float) -> str:
    hours = seconds / 3600
    if hours >= 48:
        return f"{hours:,.0f} hours ({hours / 24:,.1f} days)"
    return f"{hours:,.2f} hours" if hours >= 1 else f"{seconds:,.0f} s"
