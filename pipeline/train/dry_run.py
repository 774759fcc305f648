"""`train --dry-run`: the exact engine command, the work, and a time estimate from a probe.

The probe really trains a few batches (Ultralytics: our worker stops itself after
PROBE_BATCHES; darknet: the binary is killed after PROBE_ITERATIONS lines) in a temporary
folder, so nothing is written to the run folder.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pipeline.darknet.cfg import read_cfg
from pipeline.darknet.runner import parse_iteration, train_command
from pipeline.dataset.datafiles import read_data, read_list, render_data
from pipeline.errors import UserError
from pipeline.io import LineTail, atomic_write
from pipeline.train.options import TrainOptions, check_cfgdir, check_options
from pipeline.train.processes import kill_group
from pipeline.train.runs import RunFolder
from pipeline.ultralytics.env import worker_env

PROBE_BATCHES = 8
PROBE_ITERATIONS = 6
PROBE_TIMEOUT = 600.0


def dry_run(opts: TrainOptions) -> dict:
    """What `train` would run, and how long the whole run would take at the probe's speed."""
    check_options(opts)
    check_cfgdir(opts)
    opts.out, opts.cfgdir = opts.out.resolve(), opts.cfgdir.resolve()
    if opts.backend == "darknet":
        return _darknet_plan(opts)
    return _ultralytics_plan(opts)


def _ultralytics_plan(opts: TrainOptions) -> dict:
    from pipeline.ultralytics.backend import UltralyticsBackend

    with tempfile.TemporaryDirectory(prefix="yolo-pipeline-probe-") as tmp:
        prepared = UltralyticsBackend(RunFolder(Path(tmp)), opts).prepare()
        args = {"data": str(opts.cfgdir / "data.yaml"), "model": prepared["model"], "epochs": opts.epochs,
                "imgsz": opts.imgsz, "batch": opts.batch, "device": opts.device, "workers": opts.workers,
                "seed": opts.seed, "save_dir": str(opts.out / "ultralytics"),
                **({"amp": "False"} if opts.device == "cpu" else {}), **opts.extra}
        command = "yolo detect train " + " ".join(f"{k}={shlex.quote(str(v))}" for k, v in args.items())
        probe, epoch, tail = probe_ultralytics(opts.as_dict(), prepared["model"], Path(tmp))
    result = {"backend": "ultralytics", "command": command, "unit": "epoch", "total": opts.epochs,
              "images": prepared["dataset"]["train_images"], "notes": []}
    if probe and probe["batch_seconds"]:
        per = statistics.median(probe["batch_seconds"])
        seconds = per * probe["batches"] * opts.epochs
        result["probe"] = {"measured": f"{len(probe['batch_seconds'])} batches at {per:.3g} s "
                                       f"({probe['batches']} batches per epoch); validation not included",
                           "seconds": seconds, "per_batch_seconds": per}
    elif epoch:
        result["probe"] = {"measured": f"one whole epoch in {epoch['seconds']:.3g} s (fewer than "
                                       f"{PROBE_BATCHES} batches per epoch)",
                           "seconds": epoch["seconds"] * opts.epochs}
    else:
        result["notes"].append(f"the probe did not train: {tail}")
    return result


def probe_ultralytics(options: dict, model: str, workdir: Path,
                      batches: int = PROBE_BATCHES) -> tuple[dict | None, dict | None, str]:
    """Train `batches` batches with our worker in `workdir` (a run folder of its own, one epoch):
    (its `probe` line, its `epoch` line if a whole epoch ended first, why it did not train).

    `options` are a run's TrainOptions as a dict; the data is `options["cfgdir"]/data.yaml`.
    """
    run = RunFolder(workdir)
    probe_opts = TrainOptions.from_dict({**options, "out": str(workdir), "epochs": 1})
    atomic_write(run.run_json, json.dumps({"run_id": "probe", "options": probe_opts.as_dict(),
                                           "model": model}))
    env = {**worker_env("probe"), "YOLO_PIPELINE_PROBE_BATCHES": str(batches)}
    try:
        done = subprocess.run([sys.executable, "-m", "pipeline.ultralytics.worker", str(workdir), "1"],
                              env=env, cwd=workdir, capture_output=True, timeout=PROBE_TIMEOUT)
        lines = done.stdout.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        tail = f"exit code {done.returncode}: {lines[0][:200]}"
    except subprocess.TimeoutExpired:
        tail = f"no batch within {PROBE_TIMEOUT:.0f} s"
    return _last(run.progress, "probe"), _last(run.progress, "epoch"), tail


def _darknet_plan(opts: TrainOptions) -> dict:
    from pipeline.darknet.backend import DarknetBackend

    backend = DarknetBackend(RunFolder(opts.out), opts)
    data_src, cfg_src, fork, _ = backend.inputs()
    net = read_cfg(cfg_src).net
    max_batches = net.get_int("max_batches", 0)
    data = read_data(data_src)
    run_data = opts.out / "darknet" / data_src.name
    notes: list[str] = []
    clear = False
    if opts.weights:
        from pipeline.darknet.weights import match_weights

        match = match_weights(cfg_src, opts.weights, fork)
        if not match.ok_for_start:
            raise UserError(f"--weights {opts.weights} does not match {cfg_src.name}: {match.message}")
        clear = match.kind == "full"
        notes.append(f"start weights: {match.message}"
                     + (" (-clear added: trained elsewhere)" if clear else ""))
    command = shlex.join(train_command(opts.darknet, run_data, opts.out / "darknet" / cfg_src.name,
                                       opts.out / "checkpoints" / "start.weights" if opts.weights else None,
                                       fork, opts.gpus, map_each=opts.map_each, clear=clear))
    result = {"backend": "darknet", "command": command, "unit": "iteration", "total": max_batches,
              "images": len(read_list(data.get("train"))), "fork": fork, "darknet": opts.darknet,
              "notes": notes}
    with tempfile.TemporaryDirectory(prefix="yolo-pipeline-probe-") as tmp:
        probe_data = Path(tmp) / data_src.name
        atomic_write(probe_data, render_data(int(data.get("classes")), data.get("train"),
                                             data.get("valid") or data.get("train"), data.get("names"),
                                             tmp))
        gaps, code = probe_darknet(opts.darknet, fork, probe_data, cfg_src, opts.gpus, Path(tmp))
    if gaps:
        per = statistics.median(gaps)
        result["probe"] = {"measured": f"{len(gaps)} iterations at {per:.3g} s", "seconds": per * max_batches,
                           "per_iteration_seconds": per}
    else:
        result["notes"].append(f"the probe ran no iteration (exit code {code}); "
                               "run `yolo-pipeline check-cfg` on the cfg")
    return result


def probe_darknet(binary: str, fork: str, data: Path, cfg: Path, gpus: str | None, workdir: Path,
                  iterations: int = PROBE_ITERATIONS) -> tuple[list[float], int | None]:
    """Train until `iterations` iteration lines (no -map), then kill darknet: (the wall seconds
    between consecutive lines, the first gap left out; darknet's exit code if it ended itself).

    Example: 6 lines 0.3 s apart -> ([0.3, 0.3, 0.3, 0.3], None).
    """
    log = workdir / "probe.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(train_command(binary, data, cfg, None, fork, gpus, map_each=False),
                                cwd=workdir, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                stdin=subprocess.PIPE)
        with contextlib.suppress(OSError):  # hank-ai's CPU build asks to type "yes"
            proc.stdin.write(b"yes\n")  # type: ignore[union-attr]
            proc.stdin.close()  # type: ignore[union-attr]
    tail, stamps = LineTail(log), []
    deadline = time.time() + PROBE_TIMEOUT
    try:
        while len(stamps) < iterations and proc.poll() is None and time.time() < deadline:
            stamps += [time.time() for line in tail.lines() if parse_iteration(line)]
            time.sleep(0.02)
    finally:
        kill_group(proc)
    gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)][1:]
    return gaps, proc.returncode if len(stamps) < iterations else None


def _last(progress: Path, kind: str) -> dict | None:
    """The last progress line of `kind`, if any."""
    try:
        lines = progress.read_text().splitlines()
    except FileNotFoundError:
        return None
    for line in reversed(lines):
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if msg.get("kind") == kind:
            return msg
    return None
