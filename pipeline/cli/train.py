"""`train`, `resume`, `stop`, `status`, `estimate`: supervised trainings from the CLI."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from pipeline.cli import CONTEXT_SETTINGS, emit, json_option
from pipeline.darknet.fork import FORKS
from pipeline.train.options import BACKENDS
from pipeline.train.watchdog import ON_NAN_CHOICES

_EXIT_WORDS = {0: "finished", 1: "failed", 130: "stopped (resumable: yolo-pipeline resume RUN)"}


def _quiet() -> bool:
    ctx = click.get_current_context(silent=True)
    return bool(ctx and ctx.find_root().obj and ctx.find_root().obj.get("quiet"))


class ProgressPrinter:
    """A tqdm bar on a terminal; otherwise one line per epoch or per 100 iterations."""

    def __init__(self) -> None:
        self.bar = None
        self.last_key: int | None = None
        self.tty = sys.stderr.isatty()

    def __call__(self, state: dict) -> None:
        done, total = state.get("done") or 0, state.get("total")
        unit = state.get("unit") or "unit"
        eta = state.get("eta_seconds")
        loss = state.get("loss")
        post = (f"loss {loss:.4g}" if isinstance(loss, (int, float)) else "") + (
            f" mAP@0.5 {m:.1%}" if (m := _last_map(state)) is not None else "") + (
            f" eta {_hms(eta)}" if eta is not None else "")
        if self.tty:
            if self.bar is None:
                from tqdm import tqdm

                self.bar = tqdm(total=total, unit=unit, dynamic_ncols=True, leave=True)
            self.bar.n = done
            self.bar.set_postfix_str(post.strip(), refresh=True)
            return
        key = done if unit == "epoch" else done // 100
        if self.last_key is None and unit == "epoch":
            # the first look (a fresh start, or a resume in the middle of epoch done+1): a line
            # is printed when an epoch completes, labelled with that epoch
            self.last_key = key
            return
        if key != self.last_key:
            self.last_key = key
            click.echo(f"{unit} {done}/{total}  {post.strip()}", err=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _last_map(state: dict) -> float | None:
    """The newest mAP@0.5 (a fraction): darknet's last -map, Ultralytics' last validation."""
    record = state.get("map") or {}
    if record.get("last"):
        return record["last"]["map"]
    value = (state.get("metrics") or {}).get("metrics/mAP50(B)")
    return value if isinstance(value, (int, float)) else None


def _hms(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


@click.command(context_settings={**CONTEXT_SETTINGS, "ignore_unknown_options": False})
@click.argument("cfgdir", type=click.Path(file_okay=False, path_type=Path))
@click.argument("engine_args", nargs=-1, type=click.UNPROCESSED)
@click.option("--out", "-o", required=True, type=click.Path(path_type=Path),
              help="The run folder (new or empty): state, events, logs, checkpoints, engine outputs.")
@click.option("--backend", type=click.Choice(BACKENDS), default="ultralytics", show_default=True)
@click.option("--name", help="darknet: NAME.data and NAME.cfg in CFGDIR (default: the only .data).")
@click.option("--model", default="yolov8n.yaml", show_default=True,
              help="Ultralytics: a model YAML (from scratch) or a local .pt (fine-tune); nothing is "
                   "downloaded.")
@click.option("--epochs", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--imgsz", type=click.IntRange(min=32), default=640, show_default=True)
@click.option("--batch", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--device", default="auto", show_default=True,
              help="cpu, a GPU (0) or several (0,1: DDP); auto: the first GPU if one is visible, else cpu.")
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="Ultralytics data-loader workers [default: CPU cores per GPU, at most 8, as Ultralytics "
                   "picks].")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--darknet", "darknet_bin", default="darknet", show_default=True, metavar="PATH",
              help="darknet: the binary that will run (a path, or a name on PATH); its fork is detected.")
@click.option("--fork", type=click.Choice(FORKS), help="darknet: override the fork detected from the binary.")
@click.option("--weights", type=click.Path(dir_okay=False),
              help="darknet: start weights for the first attempt: a partial file (yolov4-tiny.conv.29) "
                   "starts at iteration 1, a full .weights gets -clear. Checked against the cfg first.")
@click.option("--map/--no-map", "map_each", default=True, show_default=True,
              help="darknet (AlexeyAB, hank-ai): mAP on the valid list during training (-map).")
@click.option("--keep-weights", type=click.IntRange(min=0), default=3, show_default=True,
              help="darknet: periodic <cfg>_<N>.weights kept in the backup folder (0: all).")
@click.option("--gpus", help="darknet: -gpus list, e.g. 0,1.")
@click.option("--on-nan", type=click.Choice(ON_NAN_CHOICES), default="lower-lr", show_default=True,
              help="A non-finite loss: restart from the last healthy checkpoint with the learning rate "
                   "halved and burn-in lengthened (lower-lr; darknet), restart unchanged, or stop.")
@click.option("--max-restarts", type=click.IntRange(min=0), default=2, show_default=True)
@click.option("--explode-factor", type=float, default=10.0, show_default=True,
              help="A loss above this many times its running minimum is an explosion.")
@click.option("--stall-minutes", type=float, default=30.0, show_default=True,
              help="No progress for this long is a stall (the engine is restarted).")
@click.option("--notify", metavar="CMD",
              help="Run CMD (shell) when the run finishes, fails, gives up, stops or restarts; "
                   "YOLO_PIPELINE_RUN/STATUS/REASON/EVENT in its environment.")
@click.option("--sample-seconds", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              help="Resource samples (CPU, memory, GPU, I/O) into RUN/resources.jsonl this often.")
@click.option("--tensorboard", is_flag=True,
              help="TensorBoard scalars into RUN/tensorboard (loss, learning rate, mAP, resources); "
                   "view them with `yolo-pipeline board RUN`.")
@click.option("--force", is_flag=True, help="--out holds a run: move it aside (RUN.replaced-TIME) and "
                                            "start over. A run that never reached a checkpoint is "
                                            "started over without it.")
@click.option("--detach", is_flag=True, help="Return at once; the supervisor goes on in the background.")
@click.option("--dry-run", is_flag=True, help="Print the engine command, the work and a time estimate "
                                               "from a short probe; train nothing.")
@json_option
def train(cfgdir, engine_args, out, backend, name, model, epochs, imgsz, batch, device, workers, seed,
          darknet_bin, fork, weights, map_each, keep_weights, gpus, on_nan, max_restarts, explode_factor,
          stall_minutes, notify, sample_seconds, tensorboard, force, detach, dry_run, as_json):
    """Train from the folder `configs` wrote, supervised: NaN, crash and stall are caught,
    checkpoints kept, and the run can be resumed.

    Engine arguments for Ultralytics go after `--` as key=value (checked against its own
    argument list). Exit code 0 finished, 1 failed, 2 user error, 130 stopped (resumable).

    \b
    Examples:
      yolo-pipeline train data/in10/cfg --out runs/in10 --epochs 50 --imgsz 416 -- lr0=0.02
      yolo-pipeline train data/in10/cfg --out runs/dk --backend darknet --detach
    """
    from pipeline.train import TrainOptions, start_training
    from pipeline.train.options import parse_engine_args

    opts = TrainOptions(cfgdir=cfgdir, out=out, backend=backend, name=name, model=model, epochs=epochs,
                        imgsz=imgsz, batch=batch, device=device, workers=workers, seed=seed,
                        extra=parse_engine_args(engine_args), darknet=darknet_bin, fork=fork,
                        weights=weights, map_each=map_each, keep_weights=keep_weights, gpus=gpus,
                        on_nan=on_nan, max_restarts=max_restarts, explode_factor=explode_factor,
                        stall_minutes=stall_minutes, notify=notify, sample_seconds=sample_seconds,
                        tensorboard=tensorboard)
    if dry_run:
        from pipeline.train.dry_run import dry_run as plan

        result = plan(opts)
        emit(result, as_json, _plan_text(result))
        return
    _finish(lambda progress: start_training(opts, detach=detach, argv=["yolo-pipeline", *sys.argv[1:]],
                                            on_progress=progress, force=force), out, detach, as_json)


def _finish(call, run: Path, detach: bool, as_json: bool) -> None:
    """Run a supervisor call with a progress display, then print the outcome and exit."""
    from pipeline.train import run_status

    printer = ProgressPrinter() if not (_quiet() or as_json or detach) else None
    try:
        code = call(printer)
    finally:
        if printer:
            printer.close()
    status = run_status(run)
    if detach:
        text = (f"started in the background (supervisor pid {status['pid']}); "
                f"follow it with: yolo-pipeline status {run}")
    else:
        text = f"{status['status']}: {status['reason'] or _EXIT_WORDS.get(code, '')}\nrun folder: {run}"
        if status.get("model"):
            text += f"\nmodel: {status['model']}"
    emit(status, as_json, "" if _quiet() and code == 0 else text)
    sys.exit(code)


def _plan_text(plan: dict) -> str:
    lines = [f"engine command: {plan['command']}",
             f"work: {plan['images']} training images, {plan['total']} {plan['unit']}s"]
    if plan.get("probe"):
        p = plan["probe"]
        lines.append(f"probe: {p['measured']}; estimate for the whole run: {_hms(p['seconds'])}")
    for note in plan.get("notes", []):
        lines.append(f"note: {note}")
    return "\n".join(lines)


@click.command(context_settings=CONTEXT_SETTINGS)
@click.argument("run", type=click.Path(file_okay=False, path_type=Path))
@click.option("--detach", is_flag=True, help="Return at once; the supervisor goes on in the background.")
@click.option("--device", help="Ultralytics: train on this device from now on (cpu, 0, 0,1).")
@click.option("--batch", type=click.IntRange(min=1), help="Ultralytics: a new batch size (after an OOM).")
@click.option("--workers", type=click.IntRange(min=0), help="Ultralytics: data-loader workers.")
@click.option("--gpus", help="darknet: a new -gpus list.")
@click.option("--epochs", type=click.IntRange(min=1),
              help="Ultralytics: train to this many epochs in all (a finished run continues).")
@click.option("--max-batches", type=click.IntRange(min=1),
              help="darknet: train to this many iterations in all (steps recomputed; a finished run "
                   "continues).")
@click.option("--on-nan", type=click.Choice(ON_NAN_CHOICES))
@click.option("--max-restarts", type=click.IntRange(min=0))
@click.option("--explode-factor", type=float)
@click.option("--stall-minutes", type=float)
@click.option("--keep-weights", type=click.IntRange(min=0))
@json_option
def resume(run, detach, as_json, **changes):
    """Continue a stopped, crashed or killed run from its last good checkpoint.

    Same log folder, same metrics file, counts continuing. The options given here (device,
    batch, workers, watchdog) apply from now on and are recorded as an event. A finished run:
    says so, exit 0. A run whose supervisor is still alive: exit 2, naming it.

    RUN may also be a folder of runs: every run that was killed (a reboot, a lost machine) is
    resumed in the background, one line each; the others are left alone. For a crontab:
    `@reboot yolo-pipeline resume /data/runs`.
    """
    from pipeline.train import resume_training, run_status
    from pipeline.train.runs import RunFolder

    changes = {k: v for k, v in changes.items() if v is not None}
    if not RunFolder(run).is_run() and run.is_dir():
        _resume_folder(run, changes, as_json)
        return
    before = run_status(run)
    if before["status"] == "finished" and not (changes.get("epochs") or changes.get("max_batches")):
        more = "--max-batches N" if before["unit"] == "iteration" else "--epochs N"
        emit(before, as_json, f"{run}: already finished ({before['done']}/{before['total']} "
                              f"{before['unit']}s); nothing to resume (to train longer: "
                              f"yolo-pipeline resume {run} {more})")
        sys.exit(0)
    _finish(lambda progress: resume_training(run, detach=detach, on_progress=progress, changes=changes),
            run, detach, as_json)


def _resume_folder(folder: Path, changes: dict, as_json: bool) -> None:
    """Resume, detached, every killed run under `folder`; one line per run."""
    from pipeline.errors import PipelineError
    from pipeline.train import resume_training, run_status
    from pipeline.train.runs import RunFolder

    runs = sorted(p for p in folder.iterdir() if RunFolder(p).is_run())
    if not runs:
        from pipeline.errors import UserError

        raise UserError(f"{folder}: no training run here (no run.json in it or its sub-folders)")
    rows = []
    for path in runs:
        status = run_status(path)["status"]
        row = {"run": str(path), "was": status, "resumed": False}
        if status == "killed":
            try:
                resume_training(path, detach=True, changes=changes)
                row["resumed"] = True
            except PipelineError as exc:
                row["error"] = str(exc)
        rows.append(row)
    lines = [f"{r['run']}: {r['was']}, " + ("resumed in the background" if r["resumed"] else
                                            r.get("error") or "left alone") for r in rows]
    emit({"runs": rows}, as_json, "\n".join(lines))
    sys.exit(1 if any("error" in r for r in rows) else 0)


@click.command(context_settings=CONTEXT_SETTINGS)
@click.argument("run", type=click.Path(file_okay=False, path_type=Path))
@click.option("--timeout", type=float, default=None, help="Give up waiting after this many seconds.")
@click.option("--at-epoch-end", is_flag=True,
              help="Ultralytics: finish the epoch in progress (trained, validated, saved), then stop; "
                   "a plain stop discards the partial epoch.")
def stop(run, timeout, at_epoch_end):
    """Ask a running training to stop at its next safe point (checkpoint kept), and wait.

    The run can then be continued with `yolo-pipeline resume RUN`.
    """
    from pipeline.train import run_status, stop_run

    before = run_status(run)
    if before["status"] == "running":
        loss = "at the end of the epoch in progress" if at_epoch_end else _stop_loss(before)
        click.echo(f"{run}: stopping; {loss}", err=True)
    status = stop_run(run, timeout, at_epoch_end=at_epoch_end)
    click.echo(f"{run}: {status}" + (f"; continue with: yolo-pipeline resume {run}"
                                     if status == "stopped" else ""))


def _stop_loss(st: dict) -> str:
    """What a stop now throws away, from the run's status."""
    unit, done, kept = st["unit"] or "unit", st["done"], st.get("checkpoint_done")
    if kept is None:
        return f"no checkpoint yet: a resume starts over ({done} {unit}s done are lost)"
    if unit == "epoch":
        return f"the epoch in progress ({done + 1}) is lost; the checkpoint of epoch {kept} is kept"
    return f"{unit}s {kept + 1}..{done} are lost; the checkpoint of {unit} {kept} is kept"


@click.command(context_settings=CONTEXT_SETTINGS)
@click.argument("run", type=click.Path(exists=True, file_okay=False, path_type=Path))
@json_option
def status(run, as_json):
    """Where a run stands: status, progress, speed, ETA, checkpoint, restarts, events.

    RUN may also be a folder of runs: one line each.
    """
    from pipeline.train import run_status
    from pipeline.train.runs import RunFolder

    if RunFolder(run).is_run():
        st = run_status(run)
        emit(st, as_json, _status_text(st, full=True))
        return
    runs = sorted(p for p in run.iterdir() if RunFolder(p).is_run())
    if not runs:
        from pipeline.errors import UserError

        raise UserError(f"{run}: no training run here (no run.json in it or its sub-folders)")
    statuses = [run_status(p) for p in runs]
    emit({"runs": statuses}, as_json, "\n".join(_status_text(s, full=False) for s in statuses))


def _status_text(st: dict, full: bool) -> str:
    done, total = st["done"], st["total"]
    line = f"{st['run']}: {st['status']} {st['backend']} {st['unit']} {done}/{total}"
    if st.get("speed"):
        per = 1 / st["speed"]
        line += f", {per:.3g} s/{st['unit']}"
    if st.get("eta_seconds") and st["status"] == "running":
        finish = time.strftime("%a %H:%M", time.localtime(time.time() + st["eta_seconds"]))
        line += f", eta {_hms(st['eta_seconds'])} (finish ~{finish})"
    if st.get("restarts"):
        line += f", {st['restarts']} restart(s)"
    if st.get("pid"):
        line += f", pid {st['pid']}"
    if not full:
        return line
    lines = [line]
    if st.get("reason"):
        lines.append(f"  reason: {st['reason']}")
    if st.get("model"):
        lines.append(f"  model: {st['model']}")
    if st.get("checkpoint"):
        lines.append(f"  checkpoint (to resume): {st['checkpoint']} "
                     f"({st['unit']} {st.get('checkpoint_done')})")
    if (record := st.get("map")) and record.get("best"):
        best, last = record["best"], record["last"]
        lines.append(f"  mAP@0.5: last {last['map']:.1%} ({st['unit']} {last['done']}), "
                     f"best {best['map']:.1%} ({st['unit']} {best['done']})")
    if sample := st.get("resources"):
        gpu = "".join(f", GPU{g['index']} {g.get('util')}% {g.get('mem_mb')} MB"
                      for g in sample.get("gpus") or [])
        lines.append(f"  resources: CPU {sample.get('cpu_tree', 0):.0f}% of a core, "
                     f"RSS {sample.get('rss_mb', 0):,.0f} MB{gpu}")
    for e in st["events"][-8:]:
        when = time.strftime("%m-%d %H:%M:%S", time.localtime(e["at"] or 0))
        lines.append(f"  {when} {e['kind']}: {e['detail']}")
    return "\n".join(lines)


@click.command(context_settings=CONTEXT_SETTINGS)
@click.argument("run", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--classes", type=click.IntRange(min=1), required=True, help="Classes of the bigger job.")
@click.option("--images", type=click.IntRange(min=1), help="Training images of the bigger job "
              "(default: this run's, scaled by classes).")
@click.option("--epochs", type=click.IntRange(min=1), help="Ultralytics: epochs of the bigger job "
              "(default: this run's).")
@click.option("--no-probe", is_flag=True, help="Skip the probe at N classes: the run's own speed, as if "
              "the class count did not matter (fast).")
@json_option
def estimate(run, classes, images, epochs, no_probe, as_json):
    """Project the time of a bigger job from this run's measured speed, probed at N classes.

    darknet: the max_batches rule x seconds per iteration; Ultralytics: epochs x images x
    seconds per image. Both depend on the class count, so a few iterations (batches) of the
    run's cfg (model) with N classes are trained on the run's data first; the result is a
    figure and a range with what it rests on. The seed case: 10 classes measured, 1,000
    projected.
    """
    from pipeline.train.estimate import estimate_job

    result = estimate_job(run, classes=classes, images=images, epochs=epochs, probe=not no_probe)
    emit(result, as_json, result["text"])
