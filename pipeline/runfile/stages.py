"""The data stages of a run: convert, subset, configs, check-cfg; and evaluate, after the training.

Each is a `Stage`: its options (what the record compares), the digests of its inputs,
the tool version, and `run`, which makes the same library call as its command.
Training and summary are in `training.py`; the chain is in `chain.py`.
"""

from __future__ import annotations

import glob
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import msgspec

from pipeline import __version__
from pipeline.errors import UserError
from pipeline.runfile.context import Context, Outcome
from pipeline.runfile.state import file_digest, stat_fingerprint, subfolders

TOOL = f"yolo-pipeline {__version__}"


@dataclass(frozen=True)
class Stage:
    """One stage of the chain; `inputs` may raise when an earlier stage's outputs are gone."""

    name: str
    options: Callable[[Context], dict]
    inputs: Callable[[Context], dict[str, str]]
    run: Callable[[Context], Outcome]
    tool: Callable[[Context], str] = lambda ctx: TOOL
    #: The pipeline file's section its options come from (`train` for check-cfg's backend),
    #: so a change is reported with the user's own key; None: the stage's name.
    section: str | None = None
    #: What a run of the stage will do that the user must know before it does (or "").
    note: Callable[[Context], str] = lambda ctx: ""


def section_options(section: msgspec.Struct | None, drop: tuple[str, ...] = ("workers",)) -> dict:
    """A section as a dict for the record, without keys that do not change the result."""
    if section is None:
        return {}
    return {k: v for k, v in msgspec.to_builtins(section).items() if k not in drop}


# -- convert ---------------------------------------------------------------------------------

def source_paths(ctx: Context) -> list[str]:
    """What is stat'ed to tell whether the download changed (see `stat_fingerprint`)."""
    src = ctx.spec.source
    if src.kind == "coco":
        return [p for f in src.files for p in (f.json, f.images)]
    root = Path(src.path or "")
    if src.kind == "voc":
        sets = src.splits or ["trainval", "test"]
        return [str(root / "Annotations"), str(root / "JPEGImages"),
                *([src.classes_file] if src.classes_file else []),
                *(str(root / "ImageSets" / "Main" / f"{s}.txt") for s in sets)]
    base = root / "ILSVRC" if (root / "ILSVRC").is_dir() else root
    paths = glob.glob(str(root / "LOC_*")) + glob.glob(str(base / "ImageSets" / "CLS-LOC" / "*"))
    for split in src.splits or ["train", "val"]:
        ann = base / "Annotations" / "CLS-LOC" / split
        # Class folders only: Ultralytics puts its .cache beside a label folder, i.e. in
        # Data/CLS-LOC/<split>, which must not look like a changed download.
        paths += [str(ann), *subfolders(ann), *subfolders(base / "Data" / "CLS-LOC" / split)]
    return paths


def _convert_inputs(ctx: Context) -> dict[str, str]:
    return {"source": stat_fingerprint(source_paths(ctx))}


def _convert_run(ctx: Context) -> Outcome:
    from pipeline.convert.engine import ConvertOptions

    src = ctx.spec.source
    options = ConvertOptions(unannotated=src.unannotated, difficult=src.difficult,
                             workers=src.workers, progress=ctx.progress)
    out = ctx.dataset_dir
    if src.kind == "imagenet":
        from pipeline.convert.sources.imagenet import SPLITS, convert_imagenet

        if will_generate(ctx):
            _make_synth(ctx)
        manifest = convert_imagenet(src.path or "", splits=tuple(src.splits or SPLITS),
                                    source=src.annotations, options=options,
                                    labels_root=src.labels_root, out_manifest=out / "manifest.json")
    elif src.kind == "coco":
        from pipeline.convert.sources.coco import convert_coco

        for f in src.files:
            manifest = convert_coco(f.json, f.images, out=out, split=f.split, ids=src.ids,
                                    crowd=src.crowd, options=options)
    else:
        from pipeline.convert.sources.voc import convert_voc

        manifest = convert_voc(src.path or "", sets=tuple(src.splits or ("trainval", "test")),
                               classes_file=src.classes_file, darknet_labels=src.darknet_labels,
                               out=out, options=options)
    text = "; ".join(f"{name} {info.images:,} images, {info.boxes:,} boxes"
                     for name, info in manifest.splits.items())
    manifest_file = out / "manifest.json"
    return Outcome({str(manifest_file): file_digest(manifest_file)}, {"dataset": str(out)},
                   f"{len(manifest.classes)} classes; {text} -> {out}")


def will_generate(ctx: Context) -> bool:
    """True when convert generates a synthetic tree: the file asks for it explicitly
    (`source.synth.generate: true`) and `source.path` is missing. Never a fallback for a
    missing download: without `generate`, a missing path is refused when the file is read."""
    src = ctx.spec.source
    return (src.kind == "imagenet" and src.synth is not None and src.synth.generate
            and not Path(src.path or "").exists())


def _synth_note(ctx: Context) -> str:
    if not will_generate(ctx):
        return ""
    from pipeline.runfile.load import nearest_existing

    path = ctx.spec.source.path or ""
    near = nearest_existing(path, folders=True)
    return (f"GENERATES a synthetic tree of drawn shapes at {path}, which does not exist "
            f"(source.synth.generate: true)" + (f"; did you mean {near}?" if near else ""))


def _make_synth(ctx: Context) -> None:
    from pipeline.synth.imagenet import SynthSpec, make_imagenet_tree

    s = ctx.spec.source.synth
    if s is None:
        return
    ctx.say(f"  WARNING: {_synth_note(ctx)}: not your download")
    spec = SynthSpec(classes=s.classes, annotated=s.annotated, unannotated=s.unannotated,
                     val=s.val, jpeg=True, seed=s.seed)
    make_imagenet_tree(ctx.spec.source.path or "", spec)
    ctx.say(f"  generated a SYNTHETIC Kaggle-layout tree at {ctx.spec.source.path}: {s.classes} classes, "
            f"{s.classes * (s.annotated + s.unannotated)} train and {s.val} val images")


# -- subset ----------------------------------------------------------------------------------

def _subset_inputs(ctx: Context) -> dict[str, str]:
    return {"dataset": _manifest_digest(ctx.dataset_dir, "convert")}


def _manifest_digest(folder: Path, stage: str) -> str:
    digest = file_digest(folder / "manifest.json")
    if digest == "missing":
        raise UserError(f"{folder / 'manifest.json'} is missing: stage {stage} must run first",
                        "run without --from")
    return digest


def _subset_run(ctx: Context) -> Outcome:
    from pipeline.dataset.class_choice import ClassRule
    from pipeline.dataset.subset import SubsetOptions, build_subset

    s = ctx.spec.subset
    if s is None:
        return Outcome()
    rule = ClassRule(top=s.top, classes=tuple(s.classes), spread=s.spread, min_images=s.min_images,
                     exclude=tuple(s.exclude))
    options = SubsetOptions(link=s.link, unannotated=s.unannotated, max_per_class=s.max_per_class,
                            val_fraction=s.val_fraction, seed=s.seed, workers=s.workers,
                            progress=ctx.progress)
    report = build_subset(ctx.dataset_dir, ctx.subset_dir, rule, options)
    for warning in report.warnings:
        ctx.say(f"  warning: {warning}")
    names = ", ".join(c.name for c in report.manifest.classes)
    splits = "; ".join(f"{k} {v.images:,} images" for k, v in report.manifest.splits.items())
    manifest_file = ctx.subset_dir / "manifest.json"
    return Outcome({str(manifest_file): file_digest(manifest_file)}, {"subset": str(ctx.subset_dir)},
                   f"{len(report.manifest.classes)} classes ({names}); {splits}")


# -- configs ---------------------------------------------------------------------------------

def _configs_inputs(ctx: Context) -> dict[str, str]:
    from pipeline.darknet.fork import find_template

    stage = "subset" if ctx.spec.subset is not None else "convert"
    return {"dataset": _manifest_digest(ctx.train_input, stage),
            "template": file_digest(find_template(ctx.spec.configs.template))}


def _configs_run(ctx: Context) -> Outcome:
    from pipeline.configs import make_configs
    from pipeline.darknet.values import CfgOptions

    c = ctx.spec.configs
    opts = CfgOptions(width=c.width, height=c.height, batch=c.batch, subdivisions=c.subdivisions,
                      max_batches=c.max_batches, learning_rate=c.learning_rate, burn_in=c.burn_in,
                      random=c.random)
    report = make_configs(ctx.train_input, c.template, ctx.cfg_dir, name=c.name, opts=opts, fork=_fork(ctx))
    for note in report.notes:
        ctx.say(f"  note: {note}")
    for finding in report.findings:
        ctx.say(f"  {report.fork}: {finding}")
    files = {k: v for k, v in report.files.items() if k != "backup"}
    values = ", ".join(f"{ch.key}={ch.value}" for ch in report.choices
                       if ch.key in ("max_batches", "steps", "width", "batch"))
    return Outcome({v: file_digest(v) for v in files.values()}, {"files": report.files},
                   f"{report.classes} classes, {report.train_images:,} train / {report.valid_images:,} "
                   f"valid images; {values} -> {ctx.cfg_dir}")


def _fork(ctx: Context) -> str:
    from pipeline.darknet.fork import choose_fork

    t = ctx.spec.train
    return choose_fork(ctx.spec.configs.fork or t.fork, shutil.which(t.darknet) or t.darknet)[0]


# -- check-cfg -------------------------------------------------------------------------------

def _check_inputs(ctx: Context) -> dict[str, str]:
    files = ctx.cfg_files()
    return {k: file_digest(v) for k, v in files.items() if k != "backup"}


def _check_run(ctx: Context) -> Outcome:
    from pipeline.configs import check_cfg

    files = ctx.cfg_files()
    report = check_cfg(files["cfg"], files["data"], _fork(ctx))
    errors = [f for f in report.findings if f.severity == "error"]
    count = report.errors
    for f in errors[:5]:
        ctx.say(f"  {f}")
    text = f"{count} errors, {report.warnings} warnings (darknet fork: {report.fork})"
    if count and ctx.spec.train.backend == "darknet":
        return Outcome(text=f"{text}: darknet would abort or mis-train; fix the configs", code=1)
    if count:
        text += "; not used by the Ultralytics training, which goes on"
    return Outcome({}, {"errors": count, "warnings": report.warnings}, text)


DATA_STAGES = (
    Stage("convert", lambda ctx: section_options(ctx.spec.source), _convert_inputs, _convert_run,
          section="source", note=_synth_note),
    Stage("subset", lambda ctx: section_options(ctx.spec.subset), _subset_inputs, _subset_run),
    Stage("configs", lambda ctx: section_options(ctx.spec.configs), _configs_inputs, _configs_run,
          lambda ctx: f"{TOOL}, darknet fork {_fork(ctx)}"),
    Stage("check-cfg", lambda ctx: {"backend": ctx.spec.train.backend},
          _check_inputs, _check_run, lambda ctx: f"{TOOL}, darknet fork {_fork(ctx)}", section="train"),
)


# -- evaluate (after train and summarize) --------------------------------------------------

def _evaluate_inputs(ctx: Context) -> dict[str, str]:
    run_dir = Path(str(ctx.record("train").detail["run_dir"]))
    return {"run": file_digest(run_dir / "state.json")}


def _evaluate_run(ctx: Context) -> Outcome:
    from pipeline.evaluate import evaluate_run, render_text

    run_dir = Path(str(ctx.record("train").detail["run_dir"]))
    e = ctx.spec.evaluate
    try:
        ev = evaluate_run(run_dir, split=e.split, weights=e.weights, out=e.out)
    except UserError as exc:  # pjreddie's darknet has no `map`: the training stands, say why
        return Outcome(text=f"not evaluated: {exc}")
    for line in render_text(ev).splitlines():
        ctx.say(f"  {line}")
    files = {p: file_digest(p) for p in ev.files.values()}
    out = str(Path(ev.files["json"]).parent)
    score = f"mAP@0.5 {ev.overall.map50:.1%}" if ev.overall.map50 is not None else "no mAP"
    return Outcome(files, {"out": out, "map50": ev.overall.map50, "degenerate": ev.degenerate},
                   f"{score}{' (degenerate)' if ev.degenerate else ''} -> {out}")


EVALUATE_STAGES = (
    Stage("evaluate", lambda ctx: section_options(ctx.spec.evaluate, ()), _evaluate_inputs, _evaluate_run),
)
