"""Library calls behind `train`, `resume`, `stop` and `status` (the CLI and `run` use these)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from pipeline.errors import PipelineError, UserError
from pipeline.io import atomic_write
from pipeline.train.options import TrainOptions, check_cfgdir, check_options
from pipeline.train.protocol import Backend
from pipeline.train.provenance import provenance
from pipeline.train.runs import (
    RunBusy,
    RunFolder,
    effective_status,
    ensure_new_run_folder,
    lock_holder,
    supervisor_alive,
)
from pipeline.train.supervisor import EXIT_FINISHED, Supervisor

#: Seconds `train --detach` waits for the background supervisor to report in.
DETACH_WAIT = 20.0


def make_backend(run: RunFolder, opts: TrainOptions) -> Backend:
    """The backend object for `opts.backend`."""
    if opts.backend == "darknet":
        from pipeline.darknet.backend import DarknetBackend

        return DarknetBackend(run, opts)
    from pipeline.ultralytics.backend import UltralyticsBackend

    return UltralyticsBackend(run, opts)


def start_training(opts: TrainOptions, *, detach: bool = False, argv: list[str] | None = None,
                   on_progress: Callable[[dict], None] | None = None, force: bool = False) -> int:
    """Start a new run in `opts.out`; returns 0 finished, 1 failed, 130 stopped (0 when detached).

    Example: `start_training(TrainOptions(cfgdir=Path("cfg"), out=Path("runs/a"), epochs=3))`.
    """
    check_options(opts)
    check_cfgdir(opts)
    opts.out = opts.out.resolve()
    opts.cfgdir = opts.cfgdir.resolve()
    run = RunFolder(opts.out)
    existed = run.root.exists()
    if note := ensure_new_run_folder(run.root, force=force):
        print(f"note: {note}", file=sys.stderr)
    backend = make_backend(run, opts)
    try:
        prepared = backend.prepare()
    except BaseException:
        if not existed:
            _remove_tree_we_made(run.root)
        raise
    info = {"run_id": uuid.uuid4().hex, "backend": opts.backend, "options": opts.as_dict(),
            **prepared, **provenance(argv or sys.argv)}
    atomic_write(run.run_json, json.dumps(info, indent=2) + "\n")
    run.write_state({"status": "running", "backend": opts.backend, "unit": backend.unit, "done": 0,
                     "total": prepared.get("total"), "restarts": 0, "attempts": 0})
    if detach:
        return _spawn_detached(run, resuming=False)
    return Supervisor(run, opts, backend, on_progress).run_to_end(resuming=False)


#: Options a resume may change: they do not change what the model learns (device, data
#: loading, memory per step, supervision), so the run stays the same run.
RESUME_CHANGES = ("device", "batch", "workers", "gpus", "on_nan", "max_restarts", "explode_factor",
                  "stall_minutes", "keep_weights", "epochs", "max_batches", "tensorboard", "notify",
                  "sample_seconds")


def resume_training(run_dir: str | Path, *, detach: bool = False,
                    on_progress: Callable[[dict], None] | None = None,
                    changes: dict | None = None) -> int:
    """Continue a run from its last good checkpoint; 0 at once when it already finished.

    `changes` (keys of RESUME_CHANGES) are checked, written into run.json's options and
    recorded as an `options-changed` event. A run whose supervisor still runs is a UserError
    (it names the pid).
    """
    run = RunFolder(Path(run_dir).resolve())
    info = run.read_run()
    state = run.read_state()
    status = effective_status(state, run.read_events(), run.root)
    holder = lock_holder(run.root)
    if status == "running" or holder is not None:
        pid, host = (holder or state).get("pid"), (holder or state).get("host") or "this host"
        raise RunBusy(f"{run.root} is running (supervisor pid {pid} on {host})",
                      f"stop it first with `yolo-pipeline stop {run.root}`")
    if changes:
        _apply_changes(run, info, changes)
        state = run.read_state()
        status = effective_status(state, run.read_events(), run.root)
    if status == "finished":
        return EXIT_FINISHED
    state["previous"] = status
    run.write_state(state)
    if detach:
        return _spawn_detached(run, resuming=True)
    return supervise(run.root, resuming=True, on_progress=on_progress, info=info)


def _apply_changes(run: RunFolder, info: dict, changes: dict) -> None:
    """Check a resume's option changes, keep them in run.json and say them as an event."""
    unknown = set(changes) - set(RESUME_CHANGES)
    if unknown:
        raise UserError(f"a resume cannot change {', '.join(sorted(unknown))}")
    changes = dict(changes)
    old = TrainOptions.from_dict(info["options"])
    darknet = old.backend == "darknet"
    for key, engine in (("batch", "ultralytics"), ("epochs", "ultralytics"), ("max_batches", "darknet")):
        if key in changes and old.backend != engine:
            hint = {"batch": "darknet takes batch from the run's cfg: start a new run to change it",
                    "epochs": "darknet counts iterations: use --max-batches",
                    "max_batches": "Ultralytics counts epochs: use --epochs"}[key]
            raise UserError(f"--{key.replace('_', '-')} does not apply to a {old.backend} run", hint)
    said = []
    if (more := changes.pop("epochs", None) or changes.pop("max_batches", None)) is not None:
        said += _extend(run, info, more, darknet)
    new = TrainOptions.from_dict({**info["options"], **changes})
    check_options(new)
    said += [f"{k} {getattr(old, k)} -> {v}" for k, v in changes.items() if getattr(old, k) != v]
    if not said:
        return
    info["options"] = new.as_dict()
    atomic_write(run.run_json, json.dumps(info, indent=2) + "\n")
    run.add_event("options-changed", "resume with " + ", ".join(said))


def _extend(run: RunFolder, info: dict, total: int, darknet: bool) -> list[str]:
    """A longer run: more epochs (Ultralytics) or iterations (darknet: max_batches and steps
    in the run's cfg copy); never fewer than are done. What changed, in words."""
    state = run.read_state()
    done, unit, before = state.get("done", 0), state.get("unit") or "epoch", info.get("total")
    if total <= done:
        raise UserError(f"{total} {unit}s: the run has done {done} already", f"give more than {done}")
    if total == before:
        return []
    said = [f"{'max_batches' if darknet else 'epochs'} {before} -> {total}"]
    if darknet:
        from pipeline.darknet.cfg import read_cfg, write_cfg
        from pipeline.darknet.values import steps_for

        cfg_path = run.root / info["darknet_files"]["cfg"]
        cfg = read_cfg(cfg_path)
        cfg.net.set("max_batches", str(total))
        if cfg.net.get("policy", "steps") == "steps":
            steps = ",".join(map(str, steps_for(total)))
            cfg.net.set("steps", steps)
            said.append(f"steps -> {steps}")
        write_cfg(cfg, cfg_path)
    else:
        info["options"]["epochs"] = total
    info["total"] = total
    state["total"] = total
    if state.get("status") == "finished":
        state["status"], state["reason"] = "stopped", f"continued to {total} {unit}s"
    run.write_state(state)
    return said


def supervise(root: Path, *, resuming: bool, on_progress: Callable[[dict], None] | None = None,
              info: dict | None = None) -> int:
    """Run the supervisor for an existing run folder (the detached entry point calls this)."""
    run = RunFolder(root)
    try:
        info = info or run.read_run()
        opts = TrainOptions.from_dict(info["options"])
        return Supervisor(run, opts, make_backend(run, opts), on_progress).run_to_end(resuming=resuming)
    except RunBusy as exc:  # another supervisor owns the run: leave its state alone
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    except PipelineError as exc:
        run.add_event("failed", str(exc))
        state = run.read_state()
        state.update(status="failed", reason=str(exc))
        run.write_state(state)
        print(f"Error: {exc}", file=sys.stderr)
        return 2


def _spawn_detached(run: RunFolder, resuming: bool) -> int:
    """Start the supervisor in a session of its own and wait until it reports in."""
    argv = [sys.executable, "-m", "pipeline.train.detached", str(run.root)]
    if resuming:
        argv.append("--resume")
    with open(run.supervisor_log, "ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, cwd=run.root)
    deadline = time.time() + DETACH_WAIT
    while time.time() < deadline:
        if run.read_state().get("pid") == proc.pid or proc.poll() is not None:
            break
        time.sleep(0.1)
    if proc.poll() not in (None, 0):
        raise UserError(f"the background supervisor exited at once (code {proc.returncode})",
                        f"see {run.supervisor_log}")
    return 0


def stop_run(run_dir: str | Path, timeout: float | None = None, *, at_epoch_end: bool = False) -> str:
    """Ask the supervisor to stop at the next safe point (Ultralytics, `at_epoch_end`: once the
    epoch in progress is trained, validated and saved); wait for it; the final status."""
    run = RunFolder(Path(run_dir).resolve())
    if at_epoch_end and run.read_run().get("backend") != "ultralytics":
        raise UserError("--at-epoch-end: only Ultralytics runs have epochs", "a plain `stop` for darknet")
    run.read_run()
    state = run.read_state()
    if not supervisor_alive(state, run.root):
        return effective_status(state, run.read_events(), run.root)
    if state.get("host") and state["host"] != socket.gethostname():
        raise UserError(f"{run.root} runs on host {state['host']} (supervisor pid {state.get('pid')})",
                        f"stop it there: ssh {state['host']} yolo-pipeline stop {run.root}")
    os.kill(state["pid"], signal.SIGUSR1 if at_epoch_end else signal.SIGTERM)
    deadline = None if timeout is None else time.time() + timeout
    while supervisor_alive(state, run.root):
        if deadline is not None and time.time() > deadline:
            raise UserError(f"{run.root}: still stopping after {timeout:.0f} s (pid {state['pid']})")
        time.sleep(0.2)
    return effective_status(run.read_state(), run.read_events(), run.root)


def run_status(run_dir: str | Path) -> dict:
    """The run's status as one dict (the keys of `status --json`)."""
    run = RunFolder(Path(run_dir).resolve())
    info = run.read_run()
    state = run.read_state()
    events = run.read_events()
    status = effective_status(state, events, run.root)
    running = status == "running"
    if status != state.get("status") and events and status != "killed":
        state["reason"] = events[-1].get("detail")
    return {
        "run": str(run.root),
        "status": status,
        "backend": info.get("backend"),
        "unit": state.get("unit"),
        "done": state.get("done", 0),
        "total": state.get("total", info.get("total")),
        "checkpoint": state.get("checkpoint"),
        "checkpoint_done": state.get("checkpoint_done"),
        "restarts": state.get("restarts", 0),
        "attempts": state.get("attempts", 0),
        "speed": state.get("speed"),
        "eta_seconds": state.get("eta_seconds") if running else (0 if status == "finished" else None),
        "pid": state.get("pid") if running else None,
        "loss": state.get("loss"),
        "metrics": state.get("metrics"),
        "map": _map_summary(state.get("map")),
        "model": model_to_use(run, info),
        "resources": state.get("resources"),
        "host": state.get("host"),
        "reason": state.get("reason"),
        "updated": state.get("updated"),
        "events": [{"kind": e.get("kind"), "at": e.get("at"), "detail": e.get("detail", "")}
                   for e in events],
    }


def model_to_use(run: RunFolder, info: dict) -> str | None:
    """The trained model to use (not the resumable checkpoint): Ultralytics best.pt (else
    last.pt); darknet the run's best-mAP weights (else the final weights); None before any."""
    if info.get("backend") == "darknet":
        cfg = Path((info.get("darknet_files") or {}).get("cfg") or "x.cfg").stem
        candidates = [run.checkpoints / "best.weights",
                      run.engine_dir("darknet") / "backup" / f"{cfg}_final.weights"]
    else:
        weights = run.engine_dir("ultralytics") / "weights"
        candidates = [weights / "best.pt", weights / "last.pt"]
    return next((str(p) for p in candidates if p.is_file()), None)


def _map_summary(record: dict | None) -> dict | None:
    """`status --json`'s "map": the last and best evaluation ({"map", "done"}) and how many."""
    if not record:
        return None
    return {"last": record.get("last"), "best": record.get("best"),
            "evaluations": len(record.get("evaluations") or [])}


def _remove_tree_we_made(root: Path) -> None:
    """Undo a run folder created by a start that was refused (it holds nothing of value)."""
    import shutil

    shutil.rmtree(root, ignore_errors=True)
