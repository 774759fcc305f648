"""The train and summarize stages of a run.

The run folder is `WORK/runs/<backend>-<digest>`, the digest of the train options, the
configs it reads and the engine version: the same inputs find the same folder, so an
unfinished training is resumed (epochs or iterations continue) and a finished one is
not retrained; changed inputs start a new folder and never touch the old one.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
from pathlib import Path

from pipeline.errors import UserError
from pipeline.runfile.context import Context, Outcome
from pipeline.runfile.stages import TOOL, Stage, section_options
from pipeline.runfile.state import file_digest, stat_fingerprint, write_state

#: Train keys that do not change what is learned (resume may differ in them).
NOT_DIGESTED = ("workers",)
#: The files of `configs` each engine reads: a changed darknet .cfg does not retrain Ultralytics.
READS = {"ultralytics": ("yaml", "train", "valid", "names"),
         "darknet": ("data", "cfg", "train", "valid", "names")}


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
    found = {k: file_digest(files[k]) for k in READS[ctx.spec.train.backend] if k in files}
    if "/" in ctx.spec.train.model:
        found["model"] = file_digest(ctx.spec.train.model)
    return found


def run_dir_for(ctx: Context, digest: str) -> Path:
    """The run folder for these inputs; `--force train` takes a fresh one beside it."""
    started = ctx.state.started.get("train")
    if started and started.get("digest") == digest and "train" not in ctx.forced:
        return Path(started["run_dir"])
    base = ctx.work / "runs" / f"{ctx.spec.train.backend}-{digest[:8]}"
    if "train" in ctx.forced:
        n = 2
        while base.exists():
            base = base.with_name(f"{ctx.spec.train.backend}-{digest[:8]}-{n}")
            n += 1
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
        max_restarts=t.max_restarts, explode_factor=t.explode_factor, stall_minutes=t.stall_minutes)


def failure_reason(status: dict) -> str:
    """The run's own reason, else the last event's kind and detail, for a one-line message."""
    if status.get("reason"):
        return str(status["reason"])
    events = status.get("events") or []
    if not events:
        return "no event recorded"
    last = events[-1]
    return f"{last.get('kind')}: {last.get('detail')}".rstrip(": ")


def _train_run(ctx: Context) -> Outcome:
    from pipeline.train import resume_training, run_status, start_training

    digest = ctx.digests["train"]
    run_dir = run_dir_for(ctx, digest)
    ctx.state.started["train"] = {"digest": digest, "run_dir": str(run_dir)}
    write_state(ctx.work, ctx.state)
    if (run_dir / "run.json").is_file():
        status = run_status(run_dir)
        if status["status"] == "running":
            raise UserError(f"the training in {run_dir} is still running (pid {status.get('pid')})",
                            f"wait: yolo-pipeline status {run_dir}; or: yolo-pipeline stop {run_dir}")
        if status["status"] == "finished":
            ctx.say(f"  {run_dir} has finished already: not retrained")
            code = 0
        else:
            ctx.say(f"  resuming {run_dir} ({status['status']} at {status.get('done')}/"
                    f"{status.get('total')} {status.get('unit')}s)")
            code = resume_training(run_dir, detach=ctx.detach, on_progress=ctx.on_progress)
    else:
        ctx.say(f"  training in {run_dir}")
        code = start_training(train_options(ctx, run_dir), detach=ctx.detach, on_progress=ctx.on_progress)
    status = run_status(run_dir)
    detail = {"run_dir": str(run_dir)}
    if ctx.detach and code == 0 and status["status"] == "running":
        return Outcome(detail=detail, pending=True,
                       text=f"left running (pid {status.get('pid')}): yolo-pipeline status {run_dir}; "
                            "run this file again when it has finished to summarize it")
    if code != 0:
        return Outcome(detail=detail, code=code,
                       text=f"training {status['status']} in {run_dir}: {failure_reason(status)}")
    map50 = final_map50(status.get("metrics") or {})
    score = f", mAP@0.5 {map50:.3f}" if map50 is not None else ""
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
    return Outcome(files, {"out": str(out), "final_map50": s.final_map50, "best_map50": s.best_map50},
                   f"{score}; loss: {s.loss_verdict or 'n/a'} -> {out}")


TRAIN_STAGES = (
    Stage("train", lambda ctx: section_options(ctx.spec.train, NOT_DIGESTED), _train_inputs, _train_run,
          engine_version),
    Stage("summarize", lambda ctx: section_options(ctx.spec.summarize, ()), _summarize_inputs,
          _summarize_run),
)
