"""The darknet backend: the binary under `stdbuf`, its console read line by line.

The run gets its own copies of the cfg and .data (the .data's `backup=` pointing into
RUN/darknet/backup/), so editing the configs folder later does not change a run.
A checkpoint darknet announces is validated (header, size) once the next iteration line
shows it was written, then copied atomically to RUN/checkpoints/last_good.weights.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from pipeline.configs import check_cfg
from pipeline.darknet.cfg import read_cfg
from pipeline.darknet.fork import choose_fork
from pipeline.darknet.runner import (
    IterationLine,
    cannot_open,
    parse_iteration,
    saved_weights,
    train_command,
    weights_iteration,
)
from pipeline.dataset.datafiles import read_data, read_list, render_data
from pipeline.errors import UserError
from pipeline.io import atomic_write
from pipeline.train.base import (
    CHECKPOINT,
    CRASHED,
    EVENT,
    FAILED,
    FINISHED,
    PROGRESS,
    TIMING,
    VERDICT,
    Launch,
    LineTail,
    Note,
    Outcome,
    copy_atomic,
)
from pipeline.train.options import TrainOptions
from pipeline.train.provenance import darknet_version, file_digest
from pipeline.train.runs import RunFolder
from pipeline.train.watchdog import LossWatch

#: check-cfg rules that do not make darknet abort or mis-train (a short run is a choice).
NOT_BLOCKING = frozenset({"max-batches"})
#: Iterations of each attempt left out of the speed (loading, first allocations).
WARM_ITERATIONS = 3


def find_darknet_files(cfgdir: Path, name: str | None) -> tuple[Path, Path]:
    """`<name>.data` and `<name>.cfg` in the configs folder (name: the only .data there)."""
    if name is None:
        datas = sorted(cfgdir.glob("*.data"))
        if len(datas) != 1:
            found = ", ".join(p.name for p in datas) or "none"
            raise UserError(f"{cfgdir}: cannot tell which .data to train ({found})",
                            "pass --name NAME for NAME.data and NAME.cfg")
        name = datas[0].stem
    data, cfg = cfgdir / f"{name}.data", cfgdir / f"{name}.cfg"
    for path in (data, cfg):
        if not path.is_file():
            raise UserError(f"{path}: no such file", "run `yolo-pipeline configs` first")
    return data, cfg


class DarknetBackend:
    """Supervisor-side view of one darknet run."""

    name = "darknet"
    unit = "iteration"
    poll_seconds = 0.05

    def __init__(self, run: RunFolder, opts: TrainOptions) -> None:
        self.run, self.opts = run, opts
        self.dir = run.engine_dir("darknet")
        self.backup = self.dir / "backup"
        self.index = run.checkpoints / "index.json"
        self.good = run.checkpoints / "last_good.weights"
        self._attempt_reset()

    # -- files ---------------------------------------------------------------------------
    def _run_files(self) -> tuple[Path, Path]:
        info = json.loads(self.run.run_json.read_text()) if self.run.is_run() else {}
        files = info.get("darknet_files") or {}
        if not files:
            raise UserError(f"{self.run.root}: run.json has no darknet files")
        return Path(files["data"]), Path(files["cfg"])

    def _net(self) -> tuple[int, int, int]:
        """max_batches, batch and burn_in of the run's cfg."""
        net = read_cfg(self._run_files()[1]).net
        return (net.get_int("max_batches", 0), max(1, net.get_int("batch", 1)),
                net.get_int("burn_in", 0))

    def inputs(self) -> tuple[Path, Path, str, str]:
        """The configs folder's .data and .cfg, checked with check-cfg's rules, and the fork.

        Findings that make darknet abort or mis-train refuse the start (UserError, exit 2); a
        max_batches below the rule does not (a short run is a choice).
        """
        data_src, cfg_src = find_darknet_files(self.opts.cfgdir, self.opts.name)
        fork, fork_reason = choose_fork(None)
        report = check_cfg(cfg_src, data_src, fork)
        blocking = [f for f in report.findings if f.severity == "error" and f.rule not in NOT_BLOCKING]
        if blocking:
            first = blocking[0]
            raise UserError(f"{len(blocking)} cfg/data error(s) darknet would abort or mis-train on; "
                            f"first: {first}", f"see `yolo-pipeline check-cfg {cfg_src} --data {data_src}`")
        return data_src, cfg_src, fork, fork_reason

    def prepare(self) -> dict:
        """Check the inputs, copy cfg and .data into the run."""
        data_src, cfg_src, fork, fork_reason = self.inputs()
        data = read_data(data_src)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.backup.mkdir(exist_ok=True)
        cfg = self.dir / cfg_src.name
        atomic_write(cfg, cfg_src.read_bytes())
        run_data = self.dir / data_src.name
        atomic_write(run_data, render_data(int(data.get("classes")), data.get("train"),
                                           data.get("valid") or data.get("train"),
                                           data.get("names"), str(self.backup) + "/"))
        net = read_cfg(cfg).net
        train_images = len(read_list(data.get("train")))
        return {
            "total": net.get_int("max_batches", 0),
            "darknet_files": {"data": str(run_data), "cfg": str(cfg), "source_data": str(data_src),
                              "source_cfg": str(cfg_src)},
            "digests": {"cfg": file_digest(cfg_src), "data": file_digest(data_src),
                        "train_list": file_digest(data.get("train"))},
            "dataset": {"classes": int(data.get("classes")), "train_images": train_images},
            "engine": {"fork": fork, "fork_reason": fork_reason,
                       "darknet": darknet_version(self.opts.darknet)},
            "batch": net.get_int("batch", 1),
        }

    # -- checkpoints ----------------------------------------------------------------------
    def _index(self) -> dict:
        try:
            return json.loads(self.index.read_text())
        except (FileNotFoundError, ValueError):
            return {}

    def _valid(self, path: Path, batch: int, size: int | None) -> int | None:
        """The iteration of a complete weights file, else None."""
        try:
            actual = path.stat().st_size
        except OSError:
            return None
        if size is not None and actual != size:
            return None
        return weights_iteration(path, batch)

    def _keep(self, path: str) -> Note | None:
        """Validate a weights file darknet finished writing; copy it as the last good one."""
        _, batch, _ = self._net()
        src = Path(path) if os.path.isabs(path) else self.dir / path
        index = self._index()
        iteration = self._valid(src, batch, index.get("size"))
        if iteration is None or iteration <= index.get("done", -1):
            return None
        try:
            size = copy_atomic(src, self.good)
            atomic_write(self.index, json.dumps({"file": str(self.good), "done": iteration, "size": size,
                                                 "source": str(src)}) + "\n")
        except OSError as exc:  # a full disk: the previous good copy stays
            return Note(EVENT, f"could not keep {src} (iteration {iteration}): {exc.strerror}",
                        {"event": "checkpoint-failed"})
        return Note(CHECKPOINT, str(self.good), {"path": str(self.good), "done": iteration})

    def best_checkpoint(self, healthy_only: bool) -> tuple[Path, int] | None:
        """The newest complete checkpoint: the last good copy, or darknet's own `.backup`."""
        _, batch, _ = self._net()
        index = self._index()
        size = index.get("size")
        found: list[tuple[int, Path]] = []
        if (it := self._valid(self.good, batch, size)) is not None:
            found.append((it, self.good))
        if not healthy_only and size is not None:
            base = self._run_files()[1].stem
            for candidate in (self.backup / f"{base}.backup", self.backup / f"{base}_final.weights"):
                if (it := self._valid(candidate, batch, size)) is not None:
                    found.append((it, candidate))
        if not found:
            return None
        it, path = max(found)
        return path, it

    # -- one attempt ----------------------------------------------------------------------
    def _attempt_reset(self) -> None:
        self.tail: LineTail | None = None
        self.pending: str | None = None
        self.cannot_open: str | None = None
        self.last_iteration: int | None = None
        self.last_line_at: float | None = None
        self.lines_seen = 0
        self.started = time.time()
        self.watch = LossWatch(self.opts.explode_factor)
        self.max_batches, self.burn_in = 0, 0

    def launch(self, attempt: int, healthy_only: bool) -> Launch | None:
        self._attempt_reset()
        self.max_batches, _, self.burn_in = self._net()
        ckpt = self.best_checkpoint(healthy_only)
        if ckpt and ckpt[1] >= self.max_batches:
            return None
        data, cfg = self._run_files()
        self.tail = LineTail(self.run.attempt_log(attempt))
        argv = train_command(self.opts.darknet, data, cfg, ckpt[0] if ckpt else None,
                             json.loads(self.run.run_json.read_text())["engine"]["fork"], self.opts.gpus)
        return Launch(argv, self.dir, dict(os.environ), resumed_from=(
            f"{ckpt[0]} (iteration {ckpt[1]})" if ckpt else None), die_with_parent=True)

    def poll(self, final: bool = False) -> list[Note]:
        notes: list[Note] = []
        if self.tail is None:
            return notes
        for line in self.tail.lines(final):
            if (it := parse_iteration(line)) is not None:
                notes += self._iteration(it)
                continue
            if (path := saved_weights(line)) is not None:
                self.pending = path
            if (path := cannot_open(line)) is not None and self.cannot_open is None:
                self.cannot_open = path
                notes.append(Note(EVENT, f"darknet: Couldn't open file: {path}",
                                  {"event": "cannot-open", "line": line.strip()[:300]}))
        return notes

    def _iteration(self, it: IterationLine) -> list[Note]:
        notes: list[Note] = []
        now = time.time()
        if self.pending:  # darknet wrote the announced file before this iteration
            if (kept := self._keep(self.pending)) is not None:
                notes.append(kept)
            self.pending = None
        self.lines_seen += 1
        if self.last_line_at is not None and self.lines_seen > WARM_ITERATIONS:
            notes.append(Note(TIMING, data={"seconds": now - self.last_line_at}))
        self.last_line_at = now
        self.last_iteration = it.iteration
        verdict = self.watch.check(it.avg, warmup=it.iteration <= self.burn_in)
        notes.append(Note(PROGRESS, data={"done": it.iteration, "total": self.max_batches,
                                          "loss": it.avg}))
        if verdict:
            line = (f"{it.iteration}: {it.loss:f}, {it.avg:f} avg, {it.rate:f} rate, "
                    f"{it.seconds:f} seconds, {it.images} images")
            detail = (f"avg loss {it.avg} at iteration {it.iteration}" if verdict == "nan" else
                      f"avg loss {it.avg:g} at iteration {it.iteration} is over "
                      f"{self.opts.explode_factor:g} x its minimum {self.watch.minimum:g}")
            notes.append(Note(VERDICT, detail, {"kind": verdict, "line": line, "done": it.iteration}))
        return notes

    def outcome(self, returncode: int) -> Outcome:
        max_batches, _, _ = self._net()
        if returncode == 0 and self.pending:
            self._keep(self.pending)
        size = self._index().get("size")
        final = self.backup / f"{self._run_files()[1].stem}_final.weights"
        done = self.last_iteration or 0
        if self.cannot_open:
            return Outcome(FAILED, f"darknet could not open {self.cannot_open} (exit code {returncode}; "
                                   "a missing label or image file?)")
        if returncode == 0 and done >= max_batches and final.is_file() \
                and final.stat().st_mtime >= self.started - 1:
            if size is not None and final.stat().st_size != size:  # darknet does not check fwrite
                return Outcome(FAILED, f"{final} is {final.stat().st_size} bytes, not {size}: "
                                       "cut short (a full disk?)")
            return Outcome(FINISHED, f"{final} written at iteration {done}")
        if returncode == 0:
            return Outcome(CRASHED, f"darknet exited with code 0 at iteration {done} of {max_batches}")
        if returncode < 0:
            return Outcome(CRASHED, f"darknet killed by signal {signal.Signals(-returncode).name}"
                                    f" at iteration {done}")
        return Outcome(CRASHED, f"darknet exited with code {returncode} at iteration {done}")

    def request_stop(self, pid: int) -> float:
        """darknet has no graceful stop: SIGTERM now, the supervisor kills after a short wait."""
        os.kill(pid, signal.SIGTERM)
        return 10.0
