"""The train and summarize stages of a run.

The run folder is `WORK/runs/<backend>-<digest>`, the digest of the run's identity: what
makes the learned model (the files the engine reads, the model, image size, batch, seed,
engine arguments, start weights, backend, fork...; `IDENTITY`). The same identity finds the
same folder:

- an unfinished training is resumed (epochs or iterations continue), with what does not
  change the learned model (device, gpus, workers, the watchdog's options; `APPLIED`) taken
  from the file and recorded in the run as an `options-changed` event;
- a finished one is not retrained, or, given more epochs (Ultralytics) or a larger
  `configs.max_batches` (darknet), continues where the engine allows it;
- a new engine or tool version since the run started resumes it, with a warning
  (`--force train` starts afresh).

A changed identity starts a new folder and never touches the old one. `plan_train` says
which of these applies; `run --dry-run` prints it.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from pipeline import __version__
from pipeline.errors import PipelineError, UserError
from pipeline.runfile.context import Context, Outcome
from pipeline.runfile.stages import TOOL, Stage, section_options
from pipeline.runfile.state import (
    StageRecord,
    digest_value,
    file_digest,
    now,
    stat_fingerprint,
    write_state,
)

#: Train keys that make the learned model, per engine; with the files the engine reads,
#: they are the run's identity. The other keys of `train` are not read by that engine, or
#: are applied to a resumed run (`APPLIED`).
IDENTITY = {"ultralytics": ("backend", "model", "epochs", "imgsz", "batch", "seed", "extra"),
            "darknet": ("backend", "name", "darknet", "fork", "weights")}
#: Train keys that do not change what is learned: a resumed run takes them from the file
#: (those `resume_training` accepts; the others are said and left as the run has them).
APPLIED = {"ultralytics": ("device", "workers", "on_nan", "max_restarts", "explode_factor", "stall_minutes",
                           "sample_seconds", "notify", "tensorboard"),
           "darknet": ("gpus", "map_each", "keep_weights", "on_nan", "max_restarts", "explode_factor",
                       "stall_minutes", "sample_seconds", "notify", "tensorboard")}
#: What makes a run longer, per engine: a finished run continues to more of it when
#: `resume_training` accepts the key (the train key `epochs`, darknet's cfg `max_batches`).
LONGER = {"ultralytics": "epochs", "darknet": "max_batches"}
#: The files of `configs` each engine reads: a changed darknet .cfg does not retrain Ultralytics.
READS = {"ultralytics": ("yaml", "train", "valid", "names"),
         "darknet": ("data", "cfg", "train", "valid", "names")}


def resume_keys() -> frozenset[str]:
    """The options `resume_training(changes=...)` accepts in this version."""
    from pipeline.train.api import RESUME_CHANGES

    return frozenset(RESUME_CHANGES)


def can_lengthen(backend: str) -> bool:
    """Whether a finished run of this engine can continue to more epochs / iterations."""
    return LONGER[backend] in resume_keys()


def engine_version(ctx: Context) -> str:
    """Tool version plus the engine's: the Ultralytics package, or the darknet binary's stat."""
    t = ctx.spec.train
    if t.backend == "ultralytics":
        try:
            return f"{TOOL}, ultralytics {importlib.metadata.version('ultralytics')}"
        except importlib.metadata.PackageNotFoundError:
            return f"{TOOL}, ultralytics missing"
    binary = shutil.which(t.darknet) or t.darknet
    return f"{TOOL}, darknet {binary} {stat_fingerprint([binary])}"


def _train_inputs(ctx: Context) -> dict[str, str]:
    files = ctx.cfg_files()
    t = ctx.spec.train
    found = {k: file_digest(files[k]) for k in READS[t.backend] if k in files}
    if t.backend == "ultralytics" and "/" in t.model:
        found["model"] = file_digest(t.model)
    if t.backend == "darknet" and t.weights:
        found["weights"] = file_digest(t.weights)
    return found


def cfg_without_length(path: str | Path, burn_in: bool = False) -> tuple[str, int | None]:
    """A darknet cfg's digest without what a longer run changes, and its max_batches.

    Left out: [net]'s `max_batches` and `steps` (a continued run gets both in its cfg copy),
    comments, and [net]'s `burn_in` unless `burn_in` (configs derives it from a short
    max_batches; a continued run is past it).
    """
    try:
        text = Path(path).read_bytes().decode("utf-8", "surrogateescape")
    except OSError:
        return "missing", None
    dropped = ("max_batches", "steps") if burn_in else ("max_batches", "steps", "burn_in")
    kept, max_batches, sections = [], None, 0
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        if stripped.startswith("["):
            sections += 1
        key, eq, value = (part.strip() for part in stripped.partition("="))
        if sections == 1 and eq and key.lower() in dropped:
            if key.lower() == "max_batches" and value.isdigit():
                max_batches = int(value)
            continue
        kept.append(stripped)
    return digest_value(kept), max_batches


@dataclass
class Identity:
    """What makes the learned model: train options, the digests of what the engine reads."""

    options: dict
    inputs: dict

    @property
    def digest(self) -> str:
        return digest_value([self.options, self.inputs])


def _plain(value: object) -> object:
    return msgspec.json.decode(msgspec.json.encode(value))


def identity_of(ctx: Context, options: dict, inputs: dict) -> Identity:
    """The identity in a record's train options and input digests (or the file's)."""
    backend = options.get("backend", "ultralytics")
    keys = [k for k in IDENTITY.get(backend, IDENTITY["ultralytics"])
            if not (k == LONGER[backend] and can_lengthen(backend))]
    inputs = dict(inputs)
    if backend == "darknet" and can_lengthen(backend) and "cfg" in inputs:
        cfg = ctx.cfg_files().get("cfg")
        if cfg and inputs["cfg"] == file_digest(cfg):  # the cfg as it is now
            inputs["cfg"] = cfg_without_length(cfg, ctx.spec.configs.burn_in is not None)[0]
    return Identity(_plain({k: options.get(k) for k in keys}), inputs)  # type: ignore[arg-type]


def current_identity(ctx: Context) -> Identity:
    """The identity the pipeline file asks for."""
    return identity_of(ctx, _plain(section_options(ctx.spec.train, ())), _train_inputs(ctx))  # type: ignore[arg-type]


def _old_digest(ctx: Context) -> str:
    """The run digest of versions before the identity (every option but workers, the engine
    version): finds a training they left unfinished."""
    return digest_value([_plain(section_options(ctx.spec.train, ("workers",))),
                         {k: v for k, v in _train_inputs(ctx).items() if k != "weights"},
                         engine_version(ctx)])


def _started(ctx: Context) -> tuple[Path, str | None, dict | None, dict | None] | None:
    """The training started here and not yet recorded as done: (run folder, identity digest,
    identity options, input digests); None when there is none."""
    started = ctx.state.started.get("train")
    if not started:
        return None
    options = json.loads(started["options"]) if "options" in started else None
    inputs = json.loads(started["inputs"]) if "inputs" in started else None
    ident = started.get("identity")
    if ident is None and started.get("digest") == _old_digest(ctx):
        ident = current_identity(ctx).digest
    return Path(started["run_dir"]), ident, options, inputs


def _recorded(ctx: Context) -> tuple[Path, str | None, dict | None, dict | None] | None:
    """The training of the train stage's last success, as `_started` gives it."""
    rec = ctx.state.stages.get("train")
    if rec is None:
        return None
    ident = rec.detail.get("identity") or identity_of(ctx, rec.options, rec.inputs).digest
    return Path(str(rec.detail["run_dir"])), str(ident), rec.options, rec.inputs


def _previous(ctx: Context) -> tuple[Path, str | None, dict | None, dict | None] | None:
    """The training this work folder last started or finished, the newest first."""
    return _started(ctx) or _recorded(ctx)


def run_dir_for(ctx: Context, ident: str) -> Path:
    """The run folder of this identity; `--force train` takes a fresh one beside it."""
    backend = ctx.spec.train.backend
    base = ctx.work / "runs" / f"{backend}-{ident[:8]}"
    if "train" in ctx.forced:
        n = 2
        while base.exists():
            base = base.with_name(f"{backend}-{ident[:8]}-{n}")
            n += 1
        return base
    for found in (_started(ctx), _recorded(ctx)):
        if found is not None and found[1] == ident:
            return found[0]
    return base


def train_options(ctx: Context, run_dir: Path):
    """The `TrainOptions` for this file's train section."""
    from pipeline.train import TrainOptions

    t = ctx.spec.train
    return TrainOptions(
        cfgdir=ctx.cfg_dir, out=run_dir, backend=t.backend, name=t.name or ctx.spec.configs.name,
        model=t.model, epochs=t.epochs, imgsz=t.imgsz, batch=t.batch, device=str(t.device),
        workers=t.workers, seed=t.seed, extra={k: str(v) for k, v in t.extra.items()},
        darknet=t.darknet, fork=t.fork, weights=t.weights, map_each=t.map_each,
        keep_weights=t.keep_weights, gpus=None if t.gpus is None else str(t.gpus), on_nan=t.on_nan,
        max_restarts=t.max_restarts, explode_factor=t.explode_factor, stall_minutes=t.stall_minutes,
        sample_seconds=t.sample_seconds, notify=t.notify, tensorboard=t.tensorboard)


# -- checks before anything runs ---------------------------------------------------------------

def check_train_section(ctx: Context, dry_run: bool) -> list[str]:
    """Refuse what `train` would refuse (engine arguments, model, values), before the first
    stage runs, as a one-line error naming the key. A GPU this machine lacks is a warning in
    a dry run (the file may be meant for another machine) and an error otherwise."""
    from pipeline.train.options import check_engine_args, check_gpus, check_options, resolve_model

    t = ctx.spec.train
    loaded = ctx.loaded
    opts = train_options(ctx, ctx.work / "runs" / "check")
    if t.backend == "ultralytics":
        for key, value in opts.extra.items():
            try:
                check_engine_args({key: value})
            except UserError as exc:
                raise loaded.error(f"train.extra.{key}", str(exc)) from None
        try:
            resolve_model(t.model)
        except UserError as exc:
            raise loaded.error("train.model", str(exc)) from None
    gpu = re.fullmatch(r"\d+(,\d+)*", opts.device) is not None
    # The configs folder is the configs stage's to write (it may not be yet, or be redone
    # first): an empty one stands in for it, and what is said about it is not the file's.
    with tempfile.TemporaryDirectory(prefix="yolo-pipeline-check-") as stand_in:
        for name in ("data.yaml", "check.data", "check.cfg"):
            Path(stand_in, name).touch()
        try:
            check_options(dataclasses.replace(opts, cfgdir=Path(stand_in),
                                              device="cpu" if gpu else opts.device))
        except UserError as exc:
            if stand_in not in str(exc):
                raise loaded.error(_key_of(str(exc)), str(exc)) from None
    if gpu and t.backend == "ultralytics":
        try:
            check_gpus("--device", [int(i) for i in opts.device.split(",")])
        except UserError as exc:
            if not dry_run:
                raise loaded.error("train.device", str(exc)) from None
            return [f"train.device: {exc}"]
    return []


def _key_of(message: str) -> str:
    """The train key an option error is about (`--stall-minutes 0: ...` -> train.stall_minutes)."""
    from pipeline.runfile.schema import Train

    if message.startswith("engine argument"):
        return "train.extra"
    m = re.match(r"--([a-z-]+)", message)
    key = m.group(1).replace("-", "_") if m else ""
    return f"train.{key}" if key in Train.__struct_fields__ else "train"


# -- the plan ----------------------------------------------------------------------------------

@dataclass
class TrainPlan:
    """What the train stage will do: `new` run, `resume` (or continue) a run, leave a
    `finished` one, or refuse a `running` one; `text` says it in one line."""

    mode: str
    run_dir: Path
    identity: Identity
    text: str
    changes: dict = field(default_factory=dict)

    @property
    def action(self) -> str:
        """The step's action: run or skip."""
        return "skip" if self.mode == "finished" else "run"


def _short(value: object) -> str:
    text = json.dumps(value) if isinstance(value, (dict, list)) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _what_changed(ctx: Context, ident: Identity, run_dir: Path) -> str:
    prev = _previous(ctx)
    if prev is None:
        return "never trained in this work folder"
    prev_dir, prev_ident, options, inputs = prev
    if prev_ident == ident.digest:
        return f"{prev_dir} is gone" if prev_dir == run_dir else "a fresh folder"
    said = []
    if options is not None:
        for key in ident.options:
            if _plain(options.get(key)) != ident.options[key]:
                said.append(f"train.{key} {_short(options.get(key))} -> {_short(ident.options[key])}")
    if inputs is not None:  # a record holds whole-file digests, a started run its identity's
        full = _train_inputs(ctx)
        files = [k for k in sorted(set(inputs) | set(full))
                 if inputs.get(k) not in (ident.inputs.get(k), full.get(k))]
        if files:
            configs = READS["darknet"] + READS["ultralytics"]
            said.append("changed: " + ", ".join(f"configs' {k}" if k in configs else f"train.{k} file"
                                                for k in files))
    if not said:
        return f"what the engine reads changed since {prev_dir}"
    return "; ".join(said) + f"; the previous run: {prev_dir}"


def _engine_notes(ctx: Context, info: dict) -> list[str]:
    """What changed in the tool or engine since the run started, in words."""
    from pipeline.train.provenance import file_digest as sha_digest
    from pipeline.train.provenance import package_version

    notes = []
    versions = info.get("versions") or {}
    if versions.get("yolo-pipeline") and versions["yolo-pipeline"] != __version__:
        notes.append(f"yolo-pipeline {versions['yolo-pipeline']} -> {__version__}")
    if info.get("backend") == "darknet":
        engine = (info.get("engine") or {}).get("darknet") or {}
        binary = engine.get("binary") or (info.get("options") or {}).get("darknet")
        was, is_ = engine.get("digest"), sha_digest(binary) if binary else None
        if was and was != is_:
            notes.append(f"darknet binary {binary} rebuilt" if is_ else f"darknet binary {binary} gone")
    elif versions.get("ultralytics"):
        is_ = package_version("ultralytics")
        if is_ != versions["ultralytics"]:
            notes.append(f"ultralytics {versions['ultralytics']} -> {is_}")
    return notes


def _wanted_total(ctx: Context) -> int | None:
    """The epochs (Ultralytics) or max_batches (darknet cfg) the file asks for."""
    if ctx.spec.train.backend == "ultralytics":
        return ctx.spec.train.epochs
    cfg = ctx.cfg_files().get("cfg")
    return cfg_without_length(cfg)[1] if cfg else None


def plan_train(ctx: Context) -> TrainPlan:
    """Which run folder this file's training is, and what the train stage does with it."""
    from pipeline.train import TrainOptions, run_status
    from pipeline.train.options import resolve_auto
    from pipeline.train.runs import RunFolder

    ident = current_identity(ctx)
    run_dir = run_dir_for(ctx, ident.digest)
    backend = ctx.spec.train.backend
    if "train" in ctx.forced:
        return TrainPlan("new", run_dir, ident, f"new run in {run_dir} (forced: --force train)")
    if not (run_dir / "run.json").is_file():
        why = _what_changed(ctx, ident, run_dir)
        return TrainPlan("new", run_dir, ident, f"new run in {run_dir} ({why})")
    status = run_status(run_dir)
    done, total, unit = status.get("done") or 0, status.get("total"), status.get("unit") or "epoch"
    if status["status"] == "running":
        return TrainPlan("running", run_dir, ident,
                         f"{run_dir} is still running (pid {status.get('pid')}): wait for it "
                         f"(yolo-pipeline status {run_dir}) or stop it (yolo-pipeline stop {run_dir})")
    info = RunFolder(run_dir).read_run()
    had = TrainOptions.from_dict(info["options"])
    wanted = train_options(ctx, run_dir)
    resolve_auto(had)  # "auto" device and default workers as this machine resolves them
    resolve_auto(wanted)
    accepted = resume_keys()
    changes: dict = {}
    unapplied = []
    for key in APPLIED[backend]:
        if getattr(had, key) != getattr(wanted, key):
            if key in accepted:
                changes[key] = getattr(wanted, key)
            else:
                unapplied.append(f"{key} {getattr(had, key)} -> {getattr(wanted, key)}")
    notes = _engine_notes(ctx, info)
    longer = LONGER[backend]
    want = _wanted_total(ctx) if can_lengthen(backend) else None
    shorter = None
    said = [f"{k} {getattr(had, k)} -> {v}" for k, v in changes.items()]
    if want is not None and total is not None and want != total:
        if want > done:
            changes[longer] = want
            said.append(f"{longer} {total} -> {want}")
        else:
            shorter = (f"it has done {done} {unit}s, not fewer than the {want} asked for: "
                       f"--force train trains a fresh {want}-{unit} run")
    tail = ""
    if unapplied:
        tail += (f"; {', '.join(unapplied)}: not applied to a resumed run "
                 "(--force train starts afresh with it)")
    if status["status"] == "finished" and longer not in changes:
        text = f"{run_dir} has finished ({done}/{total} {unit}s): not retrained"
        if shorter:
            text += f"; {shorter}"
        if changes:
            text += f"; {', '.join(said)}: nothing to apply it to"
        if notes:
            text += f"; trained with an older engine or tool ({', '.join(notes)}): --force train retrains"
        return TrainPlan("finished", run_dir, ident, text + tail)
    if shorter:
        return TrainPlan("finished", run_dir, ident,
                         f"{run_dir} ({status['status']} at {done}/{total} {unit}s) not resumed: {shorter}")
    verb = "continues" if status["status"] == "finished" else "resumes"
    text = f"{verb} {run_dir} ({status['status']} at {done}/{total} {unit}s)"
    if said:
        text += f" with {', '.join(said)}"
    if notes:
        text += (f"; warning: {', '.join(notes)} since it started: it goes on with the new one "
                 "(--force train starts afresh)")
    return TrainPlan("resume", run_dir, ident, text + tail, changes)


def failure_reason(status: dict) -> str:
    """The run's own reason, else the last event's kind and detail, for a one-line message."""
    if status.get("reason"):
        return str(status["reason"])
    events = status.get("events") or []
    if not events:
        return "no event recorded"
    last = events[-1]
    return f"{last.get('kind')}: {last.get('detail')}".rstrip(": ")


def _started_entry(ctx: Context, plan: TrainPlan) -> dict[str, str]:
    return {"identity": plan.identity.digest, "run_dir": str(plan.run_dir),
            "options": json.dumps(plan.identity.options), "inputs": json.dumps(plan.identity.inputs)}


def record_train(ctx: Context, plan: TrainPlan) -> None:
    """Record a finished run that was found, not retrained (summarize reads the record)."""
    rec = ctx.state.stages.get("train")
    run_json = plan.run_dir / "run.json"
    if (rec is not None and rec.detail.get("run_dir") == str(plan.run_dir)
            and rec.detail.get("identity") == plan.identity.digest
            and rec.outputs.get(str(run_json)) == file_digest(run_json)):
        return
    ctx.state.stages["train"] = StageRecord(
        options=_plain(section_options(ctx.spec.train, ())), inputs=_train_inputs(ctx),  # type: ignore[arg-type]
        tool=engine_version(ctx), outputs={str(run_json): file_digest(run_json)},
        detail={"run_dir": str(plan.run_dir), "identity": plan.identity.digest}, finished_at=now())
    ctx.state.started.pop("train", None)
    write_state(ctx.work, ctx.state)


def _train_run(ctx: Context) -> Outcome:
    from pipeline.train import resume_training, run_status, start_training

    plan = ctx.train_plan if isinstance(ctx.train_plan, TrainPlan) else plan_train(ctx)
    run_dir = plan.run_dir
    if plan.mode == "finished":
        record_train(ctx, plan)
        return Outcome(detail={"run_dir": str(run_dir), "identity": plan.identity.digest}, text=plan.text)
    if plan.mode == "running":
        raise UserError(plan.text.split(": wait")[0],
                        f"wait: yolo-pipeline status {run_dir}; or: yolo-pipeline stop {run_dir}")
    ctx.state.started["train"] = _started_entry(ctx, plan)
    write_state(ctx.work, ctx.state)
    try:
        if plan.mode == "resume":
            code = resume_training(run_dir, detach=ctx.detach, on_progress=ctx.on_progress,
                                   changes=plan.changes or None)
        else:
            code = start_training(train_options(ctx, run_dir), detach=ctx.detach, on_progress=ctx.on_progress)
    except PipelineError:
        if not (run_dir / "run.json").is_file():  # refused before the run existed: name no folder
            ctx.state.started.pop("train", None)
            write_state(ctx.work, ctx.state)
        raise
    status = run_status(run_dir)
    detail = {"run_dir": str(run_dir), "identity": plan.identity.digest}
    if ctx.detach and code == 0 and status["status"] == "running":
        return Outcome(detail=detail, pending=True,
                       text=f"left running (pid {status.get('pid')}): yolo-pipeline status {run_dir}; "
                            "run this file again when it has finished to summarize it")
    if code != 0:
        return Outcome(detail=detail, code=code,
                       text=f"training {status['status']} in {run_dir}: {failure_reason(status)}")
    map50 = final_map50(status.get("metrics") or {})
    score = f", mAP@0.5 {map50:.1%}" if map50 is not None else ""
    return Outcome({str(run_dir / "run.json"): file_digest(run_dir / "run.json")}, detail,
                   f"{status.get('done')}/{status.get('total')} {status.get('unit')}s{score} -> {run_dir}")


def final_map50(metrics: dict) -> float | None:
    """mAP@0.5 of the run's last metrics row, whatever the engine calls it."""
    for key in ("map50", "metrics/mAP50(B)", "mAP50"):
        if isinstance(metrics.get(key), (int, float)):
            return float(metrics[key])
    return None


def summary_dir(ctx: Context, run_dir: Path) -> Path:
    """Where the run's summary goes."""
    out = ctx.spec.summarize.out
    return Path(out) if out else ctx.work / "summary" / run_dir.name


def _summarize_inputs(ctx: Context) -> dict[str, str]:
    run_dir = Path(str(ctx.record("train").detail["run_dir"]))
    return {"run": file_digest(run_dir / "state.json")}


def _summarize_run(ctx: Context) -> Outcome:
    from pipeline.report import summarize_paths
    from pipeline.report.markdown import pct

    run_dir = Path(str(ctx.record("train").detail["run_dir"]))
    out = summary_dir(ctx, run_dir)
    result = summarize_paths([str(run_dir)], out)  # a train run folder: events, ETA checks
    s = result.summaries[0]
    files = {p: file_digest(p) for p in result.files if os.path.exists(p)}
    score = (f"mAP@0.5 final {pct(s.final_map50)}, best {pct(s.best_map50)} at {s.unit} {s.best_map50_step}"
             if s.best_map50 is not None else "no mAP logged")
    return Outcome(files, {"out": str(out), "final_map50": s.final_map50, "best_map50": s.best_map50,
                           "run_dir": str(run_dir)},
                   f"{score}; loss: {s.loss_verdict or 'n/a'} -> {out}")


TRAIN_STAGES = (
    Stage("train", lambda ctx: section_options(ctx.spec.train, ()), _train_inputs, _train_run,
          engine_version),
    Stage("summarize", lambda ctx: section_options(ctx.spec.summarize, ()), _summarize_inputs,
          _summarize_run),
)
