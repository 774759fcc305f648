"""The darknet backend: the binary under `stdbuf`, its console read line by line.

The run gets its own copies of the cfg and .data (the .data re-rendered at every launch with
`backup=` pointing into RUN/darknet/backup/, and run.json holding run-relative paths), so
editing the configs folder later does not change a run, and a moved or copied run resumes
in its new place. A checkpoint darknet announces is kept (copied atomically to
RUN/checkpoints/last_good.weights) only once the next iteration line shows a finite loss and
the file's floats are all finite; with -map, the weights of the best mAP of the whole run
(across restarts and resumes) are kept in RUN/checkpoints/best.weights.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import time
from pathlib import Path

import numpy as np

from pipeline.configs import check_cfg
from pipeline.darknet.cfg import read_cfg, write_cfg
from pipeline.darknet.fork import binary_runs, choose_fork, resolve_binary
from pipeline.darknet.runner import (
    IterationLine,
    cannot_open,
    parse_iteration,
    parse_map,
    saved_weights,
    train_command,
    weights_iteration,
)
from pipeline.darknet.weights import HEADER_BYTES
from pipeline.dataset.datafiles import read_data, read_list, render_data
from pipeline.errors import UserError
from pipeline.io import LineTail, atomic_write, copy_atomic
from pipeline.train.options import TrainOptions
from pipeline.train.protocol import (
    CHECKPOINT,
    ENGINE_DONE,
    EVENT,
    HEARTBEAT,
    METRIC,
    PROGRESS,
    TIMING,
    VERDICT,
    Launch,
    Note,
    Outcome,
    OutcomeKind,
)
from pipeline.train.provenance import darknet_version, file_digest
from pipeline.train.runs import RunFolder
from pipeline.train.watchdog import LossWatch

#: check-cfg rules that do not make darknet abort or mis-train (a short run is a choice).
NOT_BLOCKING = frozenset({"max-batches"})
#: Iterations of each attempt left out of the speed (loading, first allocations).
WARM_ITERATIONS = 3
#: Exit codes of a binary that could not be run at all (not a crash a restart cures).
CANNOT_RUN = (126, 127)
#: Floats checked per read when a checkpoint is scanned for NaN/inf.
SCAN_CHUNK = 1 << 22


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


def finite_floats(path: Path) -> bool:
    """True when every float after the header of a weights file is finite (NaN/inf: False)."""
    size = path.stat().st_size
    if size <= HEADER_BYTES:
        return True
    data = np.memmap(path, dtype="<f4", mode="r", offset=HEADER_BYTES, shape=((size - HEADER_BYTES) // 4,))
    return all(bool(np.isfinite(data[i:i + SCAN_CHUNK]).all()) for i in range(0, data.size, SCAN_CHUNK))


def nan_remedy(learning_rate: float, burn_in: int, resume_at: int) -> tuple[float, int]:
    """The learning rate halved and a burn-in that reaches past the resume point, so the rate
    ramps up again from there (darknet's burn-in counts from iteration 0).

    Example: `nan_remedy(0.00261, 1000, 0)` -> (0.001305, 2000); `nan_remedy(0.001, 100, 500)`
    -> (0.0005, 600).
    """
    return learning_rate / 2, max(2 * burn_in, resume_at + max(burn_in, 100))


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
        self.best = run.checkpoints / "best.weights"
        self.best_index = run.checkpoints / "best.json"
        self.start = run.checkpoints / "start.weights"
        self._attempt_reset()

    # -- files ---------------------------------------------------------------------------
    def _info(self) -> dict:
        return json.loads(self.run.run_json.read_text()) if self.run.is_run() else {}

    def _in_run(self, path: str) -> Path:
        """A run.json path: relative ones are inside the run folder (wherever it is now)."""
        return Path(path) if os.path.isabs(path) else self.run.root / path

    def _run_files(self) -> tuple[Path, Path]:
        files = self._info().get("darknet_files") or {}
        if not files:
            raise UserError(f"{self.run.root}: run.json has no darknet files")
        return self._in_run(files["data"]), self._in_run(files["cfg"])

    def _fork(self) -> str:
        return self._info()["engine"]["fork"]

    def _net(self) -> tuple[int, int, int]:
        """max_batches, batch and burn_in of the run's cfg."""
        net = read_cfg(self._run_files()[1]).net
        return (net.get_int("max_batches", 0), max(1, net.get_int("batch", 1)),
                net.get_int("burn_in", 0))

    def inputs(self) -> tuple[Path, Path, str, str]:
        """The configs folder's .data and .cfg, checked with check-cfg's rules for the fork of the
        binary that will run (`--darknet`, made absolute here; `--fork` overrides), and that fork.

        Findings that make darknet abort or mis-train refuse the start (UserError, exit 2); a
        max_batches below the rule does not (a short run is a choice).
        """
        self.opts.darknet = resolve_binary(self.opts.darknet)
        binary_runs(self.opts.darknet)
        data_src, cfg_src = find_darknet_files(self.opts.cfgdir, self.opts.name)
        fork, fork_reason = choose_fork(self.opts.fork, self.opts.darknet)
        report = check_cfg(cfg_src, data_src, fork)
        blocking = [f for f in report.findings if f.severity == "error" and f.rule not in NOT_BLOCKING]
        if blocking:
            first = blocking[0]
            raise UserError(f"{len(blocking)} cfg/data error(s) darknet would abort or mis-train on; "
                            f"first: {first}", f"see `yolo-pipeline check-cfg {cfg_src} --data {data_src}`")
        data = read_data(data_src)
        if self.opts.map_each and fork != "pjreddie":
            valid, train = data.get("valid"), data.get("train")
            if not valid or os.path.abspath(valid) == os.path.abspath(train or ""):
                raise UserError(f"{data_src}: {'no valid= list' if not valid else 'valid= is the train list'}"
                                ": -map would measure the training images",
                                "add a separate valid list (configs writes one), or pass --no-map")
        return data_src, cfg_src, fork, fork_reason

    def _start_weights(self, cfg: Path, fork: str) -> dict | None:
        """Check --weights against the cfg and keep a copy in the run; what run.json records."""
        if not self.opts.weights:
            return None
        from pipeline.darknet.weights import match_weights

        given = Path(self.opts.weights).expanduser().resolve()
        if not given.is_file():
            raise UserError(f"--weights {self.opts.weights}: no such file")
        match = match_weights(cfg, given, fork)
        if not match.ok_for_start:
            raise UserError(f"--weights {given} does not match {cfg.name}: {match.message}",
                            f"check a pair with `yolo-pipeline check-cfg {cfg} --weights FILE`")
        if fork == "hank" and match.kind != "full":
            raise UserError(f"--weights {given}: hank-ai darknet refuses a partial file ({match.message}): "
                            "it reads every layer's weights and stops at the first short read",
                            "start from a full .weights file, or train with AlexeyAB's darknet")
        copy_atomic(given, self.start)
        return {"path": str(given), "kind": match.kind, "layers": match.layers, "message": match.message,
                "clear": match.kind == "full", "digest": file_digest(given)}

    def prepare(self) -> dict:
        """Check the inputs and start weights; copy cfg and .data into the run."""
        data_src, cfg_src, fork, fork_reason = self.inputs()
        data = read_data(data_src)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.backup.mkdir(exist_ok=True)
        cfg = self.dir / cfg_src.name
        atomic_write(cfg, cfg_src.read_bytes())
        start = self._start_weights(cfg_src, fork)
        net = read_cfg(cfg).net
        train_images = len(read_list(data.get("train")))
        digests = {"cfg": file_digest(cfg_src), "data": file_digest(data_src),
                   "train_list": file_digest(data.get("train"))}
        if start:
            digests["weights"] = start["digest"]
        return {
            "total": net.get_int("max_batches", 0),
            "darknet_files": {"data": f"darknet/{data_src.name}", "cfg": f"darknet/{cfg_src.name}",
                              "source_data": str(data_src), "source_cfg": str(cfg_src)},
            "digests": digests,
            "start_weights": start,
            "dataset": {"classes": int(data.get("classes")), "train_images": train_images},
            "engine": {"fork": fork, "fork_reason": fork_reason,
                       "darknet": darknet_version(self.opts.darknet)},
            "batch": net.get_int("batch", 1),
        }

    def _write_run_data(self) -> Path:
        """The run's .data from the source .data, with backup= in this run folder (as it is now)."""
        info = self._info()
        data_path, _ = self._run_files()
        src = read_data(info["darknet_files"]["source_data"])
        valid = src.get("valid") or src.get("train")
        atomic_write(data_path, render_data(int(src.get("classes")), src.get("train"), valid,
                                            src.get("names"), str(self.backup)))
        return data_path

    # -- checkpoints ----------------------------------------------------------------------
    @staticmethod
    def _read_json(path: Path) -> dict:
        try:
            return json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            return {}

    def _expected_size(self) -> int | None:
        """Bytes of a complete weights file for the run's cfg (header + every layer's floats)."""
        if not hasattr(self, "_size"):
            from pipeline.darknet.layers import layer_floats
            from pipeline.errors import PipelineError

            try:
                counts = layer_floats(read_cfg(self._run_files()[1]), self._fork())
                self._size: int | None = HEADER_BYTES + 4 * sum(c.floats for c in counts)
            except PipelineError:
                self._size = None
        return self._size

    def _valid(self, path: Path, batch: int) -> int | None:
        """The iteration of a complete weights file (the size the cfg implies), else None."""
        try:
            actual = path.stat().st_size
        except OSError:
            return None
        size = self._expected_size() or self._read_json(self.index).get("size")
        if size is not None and actual != size:
            return None
        return weights_iteration(path, batch)

    def _resolve(self, path: str) -> Path:
        return Path(path) if os.path.isabs(path) else self.dir / path

    def _keep(self, path: str) -> Note | None:
        """Keep a weights file darknet finished writing: the last good copy, or the run's best."""
        src = self._resolve(path)
        if src.name.endswith("_best.weights"):
            return self._keep_best(src)
        _, batch, _ = self._net()
        index = self._read_json(self.index)
        iteration = self._valid(src, batch)
        if iteration is None or iteration <= index.get("done", -1):
            return None
        if not finite_floats(src):
            return Note(EVENT, f"{src.name} (iteration {iteration}) holds NaN or inf weights: not kept",
                        {"event": "checkpoint-rejected"})
        try:
            size = copy_atomic(src, self.good)
            atomic_write(self.index, json.dumps({"file": self.good.name, "done": iteration, "size": size,
                                                 "source": src.name}) + "\n")
        except OSError as exc:  # a full disk: the previous good copy stays
            return Note(EVENT, f"could not keep {src} (iteration {iteration}): {exc.strerror}",
                        {"event": "checkpoint-failed"})
        self._prune()
        return Note(CHECKPOINT, str(self.good), {"path": str(self.good), "done": iteration})

    def _keep_best(self, src: Path) -> Note | None:
        """darknet's _best.weights, kept only if its mAP beats the best of the whole run (darknet's
        own best starts again at every restart, so its file can be worse than ours)."""
        if self.last_map is None:
            return None
        value, iteration = self.last_map
        best = self._read_json(self.best_index)
        if value <= best.get("map", -1.0) or self._valid(src, self._net()[1]) is None:
            return None
        try:
            copy_atomic(src, self.best)
            atomic_write(self.best_index, json.dumps({"file": self.best.name, "map": value,
                                                      "iteration": iteration}) + "\n")
        except OSError as exc:
            return Note(EVENT, f"could not keep the best weights ({src}): {exc.strerror}",
                        {"event": "checkpoint-failed"})
        return Note(EVENT, f"best mAP so far {value:.4f} at iteration {iteration}: {self.best}",
                    {"event": "best"})

    def _prune(self) -> None:
        """Remove darknet's periodic <cfg>_<N>.weights beyond the newest `keep_weights`."""
        if self.opts.keep_weights <= 0:
            return
        pattern = re.compile(re.escape(self._run_files()[1].stem) + r"_(\d+)\.weights$")
        numbered = sorted((int(m[1]), p) for p in self.backup.glob("*.weights")
                          if (m := pattern.match(p.name)))
        for _, old in numbered[:-self.opts.keep_weights]:
            old.unlink(missing_ok=True)

    def best_checkpoint(self, healthy_only: bool) -> tuple[Path, int] | None:
        """The newest complete checkpoint: the last good copy, or darknet's own `.backup`."""
        _, batch, _ = self._net()
        found: list[tuple[int, Path]] = []
        if (it := self._valid(self.good, batch)) is not None:
            found.append((it, self.good))
        if not healthy_only:
            base = self._run_files()[1].stem
            for candidate in (self.backup / f"{base}.backup", self.backup / f"{base}_final.weights"):
                if (it := self._valid(candidate, batch)) is not None:
                    found.append((it, candidate))
        if not found:
            return None
        it, path = max(found)
        return path, it

    def remedy(self, outcome: Outcome) -> str | None:
        """After a NaN: halve learning_rate and lengthen burn_in in the run's cfg copy (how, in words)."""
        cfg_path = self._run_files()[1]
        cfg = read_cfg(cfg_path)
        net = cfg.net
        rate = float(net.get("learning_rate") or 0.001)
        burn_in = net.get_int("burn_in", 0)
        ckpt = self.best_checkpoint(healthy_only=True)
        new_rate, new_burn = nan_remedy(rate, burn_in, ckpt[1] if ckpt else 0)
        net.set("learning_rate", f"{new_rate:.6g}")
        net.set("burn_in", str(new_burn))
        write_cfg(cfg, cfg_path)
        return (f"learning_rate {rate:g} -> {new_rate:g}, burn_in {burn_in} -> {new_burn} "
                f"in {cfg_path.relative_to(self.run.root)}")

    # -- one attempt ----------------------------------------------------------------------
    def _attempt_reset(self) -> None:
        self.tail: LineTail | None = None
        self.pending: list[str] = []
        self.cannot_open: str | None = None
        self.last_iteration: int | None = None
        self.last_line_at: float | None = None
        self.last_map: tuple[float, int] | None = None
        self.last_avg = math.nan
        self.final_seen: float | None = None
        self.intro: list[Note] = []  # said at the attempt's first look
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
        cfg = self._run_files()[1]
        data = self._write_run_data()
        info = self._info()
        start = info.get("start_weights") if not ckpt and self.start.is_file() else None
        weights = ckpt[0] if ckpt else (self.start if start else None)
        fork = info["engine"]["fork"]
        self.tail = LineTail(self.run.attempt_log(attempt))
        argv = train_command(self.opts.darknet, data, cfg, weights, fork, self.opts.gpus,
                             map_each=self.opts.map_each, clear=bool(start and start["clear"]))
        if ckpt:
            source = f"{ckpt[0]} (iteration {ckpt[1]})"
        elif start:
            source = (f"start weights {start['path']} ({start['message']}"
                      + ("; -clear: trained elsewhere, so its iteration count is reset" if start["clear"]
                         else "") + ")")
        else:
            source = None
        if not ckpt and attempt > 1:
            self.intro.append(Note(EVENT, "no checkpoint yet: starts over from "
                                   + (f"the start weights {start['path']}" if start else "iteration 0"),
                                   {"event": "fresh-start"}))
        return Launch(argv, self.dir, dict(os.environ), resumed_from=source, die_with_parent=True,
                      stdin_text="yes\n" if fork == "hank" else None)

    def poll(self, final: bool = False) -> list[Note]:
        notes, self.intro = self.intro, []
        if self.tail is None:
            return notes
        other = False
        for line in self.tail.lines(final):
            if (it := parse_iteration(line)) is not None:
                notes += self._iteration(it)
                continue
            other = True
            if (path := saved_weights(line)) is not None:
                self.pending.append(path)
                if path.endswith("_final.weights"):
                    self.final_seen = time.time()
            if (value := parse_map(line)) is not None and self.last_iteration is not None:
                self.last_map = (value, self.last_iteration)
                notes.append(Note(METRIC, data={"map": value, "done": self.last_iteration}))
            if (path := cannot_open(line)) is not None and self.cannot_open is None:
                self.cannot_open = path
                notes.append(Note(EVENT, f"darknet: Couldn't open file: {path}",
                                  {"event": "cannot-open", "line": line.strip()[:300]}))
        if other:  # mAP evaluation, weight saves, loading: alive, not stalled
            notes.append(Note(HEARTBEAT))
        if final:  # the process ended: files saved after the last iteration line (size-checked)
            notes += self._keep_pending(math.isfinite(self.last_avg), self.last_avg)
        notes += self._finished_but_running()
        return notes

    def _finished_but_running(self) -> list[Note]:
        """hank-ai can abort and hang after writing _final.weights: once that file is complete,
        the attempt is done whatever the process does next."""
        if self.final_seen is None or time.time() - self.final_seen < 2:
            return []
        final = self.backup / f"{self._run_files()[1].stem}_final.weights"
        if self._valid(final, self._net()[1]) is None:
            return []
        self.final_seen = None
        return [Note(ENGINE_DONE, f"{final.name} is complete")]

    def _iteration(self, it: IterationLine) -> list[Note]:
        notes: list[Note] = []
        now = time.time()
        notes += self._keep_pending(math.isfinite(it.avg), it.avg)  # written before this line
        self.lines_seen += 1
        if self.last_line_at is not None and self.lines_seen > WARM_ITERATIONS:
            notes.append(Note(TIMING, data={"seconds": now - self.last_line_at}))
        self.last_line_at = now
        self.last_iteration, self.last_avg = it.iteration, it.avg
        verdict = self.watch.check(it.avg, warmup=it.iteration <= self.burn_in)
        notes.append(Note(PROGRESS, data={"done": it.iteration, "total": self.max_batches,
                                          "loss": it.avg, "rate": it.rate}))
        if verdict:
            line = (f"{it.iteration}: {it.loss:f}, {it.avg:f} avg, {it.rate:f} rate, "
                    f"{it.images} images")
            detail = (f"avg loss {it.avg} at iteration {it.iteration}" if verdict == "nan" else
                      f"avg loss {it.avg:g} at iteration {it.iteration} is over "
                      f"{self.opts.explode_factor:g} x its minimum {self.watch.minimum:g}")
            notes.append(Note(VERDICT, detail, {"kind": verdict, "line": line, "done": it.iteration}))
        return notes

    def _keep_pending(self, healthy: bool, avg: float) -> list[Note]:
        """Keep (or reject, after a non-finite avg loss) the files announced since the last look."""
        notes = []
        for path in self.pending:
            if not healthy:
                notes.append(Note(EVENT, f"{Path(path).name} not kept: the avg loss after it is {avg}",
                                  {"event": "checkpoint-rejected"}))
            elif (kept := self._keep(path)) is not None:
                notes.append(kept)
        self.pending = []
        return notes

    def outcome(self, returncode: int) -> Outcome:
        max_batches, batch, _ = self._net()
        final = self.backup / f"{self._run_files()[1].stem}_final.weights"
        done = self.last_iteration or 0
        if self.cannot_open:
            return Outcome(OutcomeKind.FAILED,
                           f"darknet could not open {self.cannot_open} (exit code {returncode}; "
                                   "a missing label or image file?)")
        if returncode in CANNOT_RUN:
            return Outcome(OutcomeKind.FAILED,
                           f"{self.opts.darknet} could not be run (exit code {returncode})")
        if done >= max_batches and final.is_file() and final.stat().st_mtime >= self.started - 1:
            if self._valid(final, batch) is None:  # darknet does not check fwrite
                return Outcome(OutcomeKind.FAILED, f"{final} is {final.stat().st_size} bytes, not "
                                       f"{self._expected_size()}: cut short (a full disk?)")
            return Outcome(OutcomeKind.FINISHED, f"{final} written at iteration {done}")
        if returncode == 0:
            return Outcome(OutcomeKind.CRASHED,
                           f"darknet exited with code 0 at iteration {done} of {max_batches}")
        if returncode < 0:
            return Outcome(OutcomeKind.CRASHED, f"darknet killed by signal {signal.Signals(-returncode).name}"
                                    f" at iteration {done}")
        return Outcome(OutcomeKind.CRASHED, f"darknet exited with code {returncode} at iteration {done}")

    def request_stop(self, pid: int, at_epoch_end: bool = False) -> float:
        """darknet has no graceful stop (and no epochs): SIGTERM now, killed after a short wait."""
        os.kill(pid, signal.SIGTERM)
        return 10.0

    def stop_loss(self) -> str:
        """What a stop now loses (darknet saves nothing on a signal)."""
        index = self._read_json(self.index)
        if "done" not in index:
            return "no checkpoint yet: a resume starts over from iteration 0"
        return f"iterations after {index['done']} (the last checkpoint) are lost"
