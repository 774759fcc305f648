"""`estimate`: the time of a bigger job from a run's own measured speed.

darknet: iterations by the max_batches rule `configs` uses, times the measured seconds per
iteration (which barely depends on the class count: only the heads' filters grow).
Ultralytics: epochs x images / the measured images per second (validation included).

What the projection rests on is said in `assumptions` (and the text): where the image
count came from (scaled from this run's images per class unless `--images` is given) and
the image size, batch and device the speed was measured at.
"""

from __future__ import annotations

import contextlib
import statistics
from pathlib import Path

from pipeline.darknet.cfg import read_cfg
from pipeline.darknet.values import max_batches_formula, max_batches_rule
from pipeline.dataset.datafiles import read_ultralytics_yaml
from pipeline.errors import PipelineError, UserError
from pipeline.train.runs import RunFolder

#: Said when the image count is scaled: the size of the job people usually mean.
IMAGENET_NOTE = "ImageNet CLS-LOC has 1,281,167 train images, about 544k of them with boxes"
#: darknet without `-gpus`.
DARKNET_DEFAULT_DEVICE = "darknet's default device (GPU 0 if built with CUDA, else CPU)"


def estimate_job(run_dir: str | Path, *, classes: int, images: int | None = None,
                 epochs: int | None = None) -> dict:
    """Project a job of `classes` (and `images`, `epochs`) from the run in `run_dir`.

    Example: a darknet run at 0.5 s/iteration, `classes=1000` -> 2,000,000 iterations,
    1,000,000 s.
    """
    run = RunFolder(Path(run_dir).resolve())
    info = run.read_run()
    state = run.read_state()
    images, image_basis = _images(info, classes, images)
    basis = {"run": str(run.root), "backend": info["backend"], **image_basis, "done": state.get("done"),
             "classes": classes, "images": images, "measured_at": measured_at(run, info)}
    if info["backend"] == "darknet":
        result = _darknet(run, state, basis)
    else:
        result = _ultralytics(run, info, state, basis, epochs)
    result["assumptions"] = assumptions(basis)
    result["text"] += "".join(f"\n  {line}" for line in result["assumptions"])
    return result


def _images(info: dict, classes: int, images: int | None) -> tuple[int, dict]:
    """(training images of the bigger job, what that number rests on)."""
    dataset = info.get("dataset") or {}
    measured_classes = dataset.get("classes") or 0
    measured_images = dataset.get("train_images") or 0
    basis = {"measured_classes": measured_classes, "measured_train_images": measured_images}
    if images is not None:
        return images, {**basis, "images_source": "--images"}
    if not (measured_classes and measured_images):
        raise UserError("this run does not record its dataset size: pass --images N")
    per_class = measured_images / measured_classes
    return round(per_class * classes), {**basis, "images_source": "scaled from this run",
                                        "images_per_class": round(per_class, 2)}


def measured_at(run: RunFolder, info: dict) -> dict:
    """Image size, batch and device the run's speed was measured at.

    Ultralytics: its args.yaml (what the engine used), else run.json's options; darknet:
    the run's cfg (width x height, batch, subdivisions) and `--gpus`.
    """
    opts = info.get("options") or {}
    if info["backend"] == "darknet":
        out = {"imgsz": None, "batch": info.get("batch"), "subdivisions": None,
               "device": f"GPUs {opts['gpus']}" if opts.get("gpus") else DARKNET_DEFAULT_DEVICE,
               "from": "run.json"}
        try:
            net = read_cfg((info.get("darknet_files") or {})["cfg"]).net
        except (KeyError, PipelineError):
            return out
        return {**out, "imgsz": [net.get_int("width", 0), net.get_int("height", 0)],
                "batch": net.get_int("batch", 1), "subdivisions": net.get_int("subdivisions", 1),
                "from": "the run's cfg"}
    args, source = opts, "run.json"
    engine_args = run.engine_dir("ultralytics") / "args.yaml"
    if engine_args.is_file():
        with contextlib.suppress(PipelineError):  # unreadable: run.json's options stand
            args, source = read_ultralytics_yaml(engine_args), "args.yaml"
    return {"imgsz": args.get("imgsz"), "batch": args.get("batch"), "device": _device(args.get("device")),
            "from": source}


def _device(value: object) -> str:
    """A device as people say it. Example: "0" -> "GPU 0", "0,1" -> "GPUs 0,1", "cpu" -> "CPU"."""
    text = "" if value is None else str(value).strip()
    if not text or text.lower() == "cpu":
        return "CPU" if text else "the engine's default device"
    if text.replace(",", "").isdigit():
        return ("GPUs " if "," in text else "GPU ") + text
    return text


def assumptions(basis: dict) -> list[str]:
    """What the projection assumes, one line each (the image count, the measuring setup)."""
    images = f"{basis['images']:,} training images"
    if basis["images_source"] == "--images":
        lines = [f"assumes {images} (--images)"]
    else:
        lines = [f"assumes {images}: {basis['classes']:,} classes x {basis['images_per_class']:g} "
                 f"images/class as measured in this run; pass --images N ({IMAGENET_NOTE})"]
    m = basis["measured_at"]
    size = "x".join(map(str, m["imgsz"])) if isinstance(m["imgsz"], list) else m["imgsz"]
    batch = f"batch {m['batch']}" + (f" (subdivisions {m['subdivisions']})" if m.get("subdivisions") else "")
    lines.append(f"speed measured at image size {size if size else 'unknown'}, {batch}, on {m['device']} "
                 f"({m['from']}); another size, batch or device changes it")
    return lines


def _darknet(run: RunFolder, state: dict, basis: dict) -> dict:
    """The max_batches rule x measured seconds per iteration."""
    if not state.get("speed"):
        raise UserError(f"{run.root}: no iteration speed measured yet (run it a little longer)")
    classes, images = basis["classes"], basis["images"]
    per = 1.0 / state["speed"]
    units = max_batches_rule(classes, images)
    basis.update(rule=f"max_batches = {max_batches_formula(classes, images)}",
                 per_unit="median wall seconds per iteration, recent window, first iterations "
                          "of each attempt left out")
    text = (f"{units:,} iterations x {per:.4g} s (measured over this run's iterations) = "
            f"{_human(units * per)}")
    return {"seconds": units * per, "units": units, "unit": "iteration", "per_unit_seconds": per,
            "basis": basis, "text": text}


def _ultralytics(run: RunFolder, info: dict, state: dict, basis: dict, epochs: int | None) -> dict:
    """Epochs x images x measured seconds per image."""
    times = state.get("epoch_times") or []
    rates = [e["images"] / e["seconds"] for e in times
             if e.get("images") and e.get("seconds") and not e.get("first_of_session")]
    if not rates:
        rates = [e["images"] / e["seconds"] for e in times if e.get("images") and e.get("seconds")]
    if not rates:
        raise UserError(f"{run.root}: no epoch measured yet (wait for the first epoch to end)")
    per_image = 1.0 / statistics.median(rates)
    epochs = epochs or int(info["options"]["epochs"])
    images = basis["images"]
    units = epochs * images
    basis.update(epochs=epochs, measured_epochs=len(rates),
                 per_unit="median wall seconds per training image over measured epochs "
                          "(validation included; first epoch of each session left out)")
    text = f"{epochs} epochs x {images:,} images x {per_image:.4g} s/image = {_human(units * per_image)}"
    return {"seconds": units * per_image, "units": units, "unit": "image-epoch",
            "per_unit_seconds": per_image, "basis": basis, "text": text}


def _human(seconds: float) -> str:
    hours = seconds / 3600
    if hours >= 48:
        return f"{hours:,.0f} hours ({hours / 24:,.1f} days)"
    return f"{hours:,.2f} hours" if hours >= 1 else f"{seconds:,.0f} s"
