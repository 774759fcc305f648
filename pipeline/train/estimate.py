"""`estimate`: the time of a bigger job from a run's own measured speed, probed at the
bigger job's class count.

darknet: iterations by the max_batches rule `configs` uses, times the seconds per iteration.
Those depend on the class count (yolov3-tiny's heads go from 45 to 3,015 filters at 1,000
classes, and darknet computes the YOLO loss on the CPU over the larger output), so the run's
cfg copy is given the target classes and filters and really trained for a few iterations on
the run's data (the probe `--dry-run` uses; class ids in the labels stay valid). Pauses
(weight saves, resizes: this run's measured share; `-map`: the bigger job's schedule with
this run's measured cost per valid image) are added.
Ultralytics: epochs x images x seconds per training image probed with nc=N (a data.yaml
naming N classes: Ultralytics builds the model's head from it), plus validation at this
run's share of the training time.

`--no-probe` keeps the fast path: the run's own speed, as if the class count did not
matter. What the projection rests on is said in `assumptions` (and the text), and
`probe` (classes, seconds per unit, units measured) and `range` ([low, high] seconds: the
fastest and slowest probed unit) in the JSON.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import tempfile
from pathlib import Path

import yaml

from pipeline.darknet.cfg import Cfg, read_cfg, write_cfg
from pipeline.darknet.values import max_batches_formula, max_batches_rule, steps_for
from pipeline.dataset.datafiles import read_data, read_ultralytics_yaml, render_data
from pipeline.errors import PipelineError, UserError
from pipeline.io import atomic_write
from pipeline.train.eta import FORWARD_SHARE, MapPlan, map_plan, run_map_plan
from pipeline.train.runs import RunFolder

#: Said when the image count is scaled: the size of the job people usually mean.
IMAGENET_NOTE = "ImageNet CLS-LOC has 1,281,167 train images, about 544k of them with boxes"
#: darknet without `-gpus`.
DARKNET_DEFAULT_DEVICE = "darknet's default device (GPU 0 if built with CUDA, else CPU)"
#: Iteration lines the darknet probe waits for (the first gap is left out).
PROBE_ITERATIONS = 10
#: Batches the Ultralytics probe trains (the first gap is left out).
PROBE_BATCHES = 10


def estimate_job(run_dir: str | Path, *, classes: int, images: int | None = None,
                 epochs: int | None = None, probe: bool = True) -> dict:
    """Project a job of `classes` (and `images`, `epochs`) from the run in `run_dir`.

    Example: a darknet run at 0.5 s/iteration, `classes=1000`, `probe=False` -> 2,000,000
    iterations, 1,000,000 s; with the probe, its seconds per iteration at 1,000 classes instead.
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
    result.update(probe=None, range=None)
    lines = assumptions(basis)
    if probe and classes < (basis["measured_classes"] or 0):
        lines.append(f"not probed (the run's labels hold class ids up to {basis['measured_classes'] - 1}: "
                     f"out of range at {classes:,} classes): assumes the seconds per {result['unit']} "
                     "measured hold")
    elif probe:
        probed = (_probe_darknet(run, info, state, result) if info["backend"] == "darknet"
                  else _probe_ultralytics(info, state, result))
        lines += probed
    else:
        lines.append(f"not probed (--no-probe): assumes the seconds per {result['unit']} measured at "
                     f"{basis['measured_classes']} classes hold at {classes:,}")
    result["assumptions"] = lines
    result["text"] += "".join(f"\n  {line}" for line in lines)
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
            net = read_cfg(_in_run(run, (info.get("darknet_files") or {})["cfg"])).net
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
                 per_unit="wall seconds per iteration this run measured (its ETA's speed: the "
                          "recent window's mean without pauses + its pauses spread out)")
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


def cfg_for_classes(cfg: Cfg, classes: int, max_batches: int) -> list[int]:
    """The cfg as the bigger job would run it: `classes` and the filters before each head,
    max_batches and steps of the job (pjreddie trains at 608 px near max_batches with
    random=1). The heads' new filters."""
    filters = []
    for head in cfg.heads():
        head.section.set("classes", str(classes))
        if head.before is not None:
            n = head.expected_filters(classes)
            head.before.set(head.filters_key(), str(n))
            filters.append(n)
    cfg.net.set("max_batches", str(max_batches))
    if cfg.net.get("steps") is not None:
        cfg.net.set("steps", ",".join(map(str, steps_for(max_batches))))
    return filters


def _spread(result: dict, samples: list[float], per: float, factor: float) -> None:
    """The projection from the probed seconds per unit: headline and [fastest, slowest]."""
    units = result["units"]
    result["seconds"] = units * per * factor
    result["per_unit_seconds"] = per
    result["range"] = [units * min(samples) * factor, units * max(samples) * factor]


def _probe_darknet(run: RunFolder, info: dict, state: dict, result: dict) -> list[str]:
    """Probe the run's cfg at the job's class count; update `result`; the lines to say."""
    from pipeline.train.dry_run import probe_darknet

    basis, classes = result["basis"], result["basis"]["classes"]
    opts, files = info.get("options") or {}, info.get("darknet_files") or {}
    fork, binary = (info.get("engine") or {}).get("fork"), opts.get("darknet")
    try:
        if not files or not fork or not binary:
            raise UserError("run.json names no darknet cfg, fork or binary")
        resolved = shutil.which(binary) if os.sep not in binary else binary
        if not resolved or not os.access(resolved, os.X_OK):
            raise UserError(f"{binary}: not found or not executable")
        cfg_path, data_path = (_in_run(run, files["cfg"]), _in_run(run, files["data"]))
        cfg, data = read_cfg(cfg_path), read_data(data_path)
    except PipelineError as exc:
        return [f"not probed ({exc}): assumes the seconds per iteration measured at "
                f"{basis['measured_classes']} classes hold at {classes:,}"]
    filters = cfg_for_classes(cfg, classes, result["units"])
    with tempfile.TemporaryDirectory(prefix="yolo-pipeline-estimate-") as tmp:
        names = Path(tmp) / "probe.names"
        atomic_write(names, "".join(f"class{i}\n" for i in range(classes)))
        probe_cfg, probe_data = Path(tmp) / cfg_path.name, Path(tmp) / "probe.data"
        write_cfg(cfg, probe_cfg)
        valid = data.get("valid") or data.get("train")
        atomic_write(probe_data, render_data(classes, data.get("train"), valid, str(names), tmp))
        gaps, code = probe_darknet(resolved, fork, probe_data, probe_cfg, opts.get("gpus"), Path(tmp),
                                   PROBE_ITERATIONS)
    if not gaps:
        return [f"not probed (the probe at {classes:,} classes ran no iteration, exit code {code}): "
                f"assumes the seconds per iteration measured at {basis['measured_classes']} classes hold"]
    per = statistics.median(gaps)
    saves, maps, job = _darknet_pauses(run, info, state, basis, per)
    before = {"seconds": result["seconds"], "per_unit_seconds": result["per_unit_seconds"],
              "classes": basis["measured_classes"]}
    _spread(result, gaps, per, 1 + saves + maps)
    result["probe"] = {"classes": classes, "seconds_per_unit": per, "units": len(gaps), "unit": "iteration",
                       "sampled": "iteration",
                       "samples": [round(g, 4) for g in gaps], "filters": filters,
                       "pauses": {"saves_resizes": round(saves, 4), "map": round(maps, 4)},
                       "unprobed": before}
    basis["per_unit"] = (f"median wall seconds per iteration of {len(gaps)} iterations of this run's cfg "
                         f"with {classes:,} classes, + pauses")
    result["text"] = (f"{result['units']:,} iterations x {per:.4g} s (probed at {classes:,} classes)"
                      f" + {100 * (saves + maps):.1f}% pauses = {_human(result['seconds'])} "
                      f"(range {_human(result['range'][0])} to {_human(result['range'][1])}); "
                      f"unprobed, at {before['per_unit_seconds']:.4g} s measured at "
                      f"{before['classes']} classes: {_human(before['seconds'])}")
    return [f"probe: {len(gaps)} iterations of this run's cfg with classes={classes:,} "
            f"(filters {', '.join(map(str, filters))}) on this run's images, {min(gaps):.3g}-"
            f"{max(gaps):.3g} s each; the range spans them",
            f"pauses: weight saves and resizes {100 * saves:.1f}% (this run's share), -map "
            + (f"{100 * maps:.1f}% (every {job.every:,} iterations over {job.valid_images:,} valid images: "
               "this run's valid/train ratio and cost per valid image)" if job else "none")]


def _darknet_pauses(run: RunFolder, info: dict, state: dict, basis: dict,
                    per: float) -> tuple[float, float, MapPlan | None]:
    """Shares of the steady per-iteration time the bigger job adds: (weight saves and resizes,
    -map evaluations, the job's -map schedule)."""
    eta = state.get("eta_basis") or {}
    steady = eta.get("per_iteration") or 0.0
    saves = (eta.get("pause_per_iteration") or 0.0) / steady if steady else 0.0
    plan = run_map_plan(run.root)
    if plan is None or not basis.get("measured_train_images"):
        return saves, 0.0, None
    scale = basis["images"] / basis["measured_train_images"]
    fork = (info.get("engine") or {}).get("fork")
    job = map_plan(fork, train_images=basis["images"], batch=plan.batch, burn_in=plan.burn_in,
                   valid_images=round(plan.valid_images * scale))
    if job is None:
        return saves, 0.0, None
    share = FORWARD_SHARE  # of a training image's time, per valid image
    if eta.get("map_measured") and steady and plan.valid_images:
        share = eta["map_seconds"] / (plan.valid_images * steady / plan.batch)
    each = job.valid_images * per / job.batch * share
    return saves, each / (job.every * per), job


def _in_run(run: RunFolder, path: str) -> Path:
    return Path(path) if os.path.isabs(path) else run.root / path


def _probe_ultralytics(info: dict, state: dict, result: dict) -> list[str]:
    """Probe the run's model with a data.yaml of the job's class count; update `result`."""
    from pipeline.train.dry_run import probe_ultralytics

    basis, classes = result["basis"], result["basis"]["classes"]
    opts = info.get("options") or {}
    try:
        if not opts.get("cfgdir") or not info.get("model"):
            raise UserError("run.json names no configs folder or model")
        source = Path(opts["cfgdir"]) / "data.yaml"
        spec = read_ultralytics_yaml(source)
    except PipelineError as exc:
        return [f"not probed ({exc}): assumes the seconds per image measured at "
                f"{basis['measured_classes']} classes hold at {classes:,}"]
    names = spec.get("names") or {}
    known = dict(enumerate(names)) if isinstance(names, list) else {int(k): v for k, v in names.items()}
    root = Path(str(spec.get("path") or source.parent))
    spec.update(path=str(root if root.is_absolute() else source.parent / root), nc=classes,
                names={i: known.get(i, f"class{i}") for i in range(classes)})
    with tempfile.TemporaryDirectory(prefix="yolo-pipeline-estimate-") as tmp:
        cfgdir = Path(tmp) / "cfg"
        cfgdir.mkdir()
        atomic_write(cfgdir / "data.yaml", yaml.safe_dump(spec, sort_keys=False))
        (Path(tmp) / "run").mkdir()
        probe, epoch, tail = probe_ultralytics({**opts, "cfgdir": str(cfgdir)}, info["model"],
                                               Path(tmp) / "run", PROBE_BATCHES)
    if probe and probe.get("batch_seconds"):
        per_image = probe["batches"] / max(1, probe["images"])  # batches per image
        samples = [g * per_image for g in probe["batch_seconds"]]
    elif epoch and epoch.get("images") and (epoch.get("train_seconds") or epoch.get("seconds")):
        # fewer batches than the probe's in an epoch: the whole (first) epoch's training
        samples = [(epoch.get("train_seconds") or epoch["seconds"]) / epoch["images"]]
    else:
        return [f"not probed (the probe at {classes:,} classes did not train: {tail}): assumes the "
                f"seconds per image measured at {basis['measured_classes']} classes hold"]
    per = statistics.median(samples)
    times = [e for e in state.get("epoch_times") or []
             if e.get("train_seconds") and e.get("val_seconds") is not None and not e.get("first_of_session")]
    val = sum(e["val_seconds"] for e in times) / sum(e["train_seconds"] for e in times) if times else 0.0
    before = {"seconds": result["seconds"], "per_unit_seconds": result["per_unit_seconds"],
              "classes": basis["measured_classes"]}
    _spread(result, samples, per, 1 + val)
    unit = "batch" if probe else "epoch"
    result["probe"] = {"classes": classes, "seconds_per_unit": per, "units": len(samples),
                       "unit": result["unit"], "sampled": unit, "samples": [round(x, 6) for x in samples],
                       "validation_share": round(val, 4), "unprobed": before}
    basis["per_unit"] = (f"median wall seconds per training image over {len(samples)} {unit}(s) with nc="
                         f"{classes:,}, + validation at this run's share")
    result["text"] = (f"{basis['epochs']} epochs x {basis['images']:,} images x {per:.4g} s/image (probed at "
                      f"{classes:,} classes) + {100 * val:.0f}% validation = {_human(result['seconds'])} "
                      f"(range {_human(result['range'][0])} to {_human(result['range'][1])}); unprobed, "
                      f"at {before['per_unit_seconds']:.4g} s/image measured at {before['classes']} "
                      f"classes: {_human(before['seconds'])}")
    return [f"probe: {len(samples)} {unit}(s) of {info['model']} with nc={classes:,} on this run's images, "
            f"{min(samples):.3g}-{max(samples):.3g} s per image; the range spans them",
            f"validation: {100 * val:.0f}% of the training time, as in this run"
            + ("" if times else " (not measured: none counted)")]


def _human(seconds: float) -> str:
    hours = seconds / 3600
    if hours >= 48:
        return f"{hours:,.0f} hours ({hours / 24:,.1f} days)"
    return f"{hours:,.2f} hours" if hours >= 1 else f"{seconds:,.0f} s"
