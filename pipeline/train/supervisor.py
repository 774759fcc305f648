"""The supervisor: starts the engine as a child, watches it, restarts it, records everything.

It is light (no torch) and owns the policy: a crash, stall, NaN or explosion ends the
attempt; the run continues from the last healthy checkpoint up to `max_restarts` times,
then fails with exit code 1 and a one-line reason. SIGTERM/SIGINT (`stop`, Ctrl-C) stop
the engine at a safe point: exit code 130, resumable. state.json is rewritten atomically
at most once a second and at every change of status.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable

from pipeline.train.bottleneck import loader_wait_rule
from pipeline.train.eta import run_eta
from pipeline.train.notify import notify
from pipeline.train.options import TrainOptions
from pipeline.train.policy import Decision, RestartPolicy
from pipeline.train.processes import die_with_parent, kill_group, kill_marked
from pipeline.train.protocol import (
    CHECKPOINT,
    ENGINE_DONE,
    EVENT,
    HEARTBEAT,
    METRIC,
    PROGRESS,
    TIMING,
    VERDICT,
    Backend,
    Launch,
    Outcome,
    OutcomeKind,
)
from pipeline.train.resources import ResourceMonitor, run_gpus
from pipeline.train.runs import RunFolder, RunLock, process_start_time
from pipeline.train.tensorboard import RunBoard

EXIT_FINISHED, EXIT_FAILED, EXIT_STOPPED = 0, 1, 130
ETA_MILESTONES = (5, 25, 50, 75)
RESERVE_BYTES = 1 << 20
#: Below this much free space (or three checkpoints) an attempt starts with a low-disk event.
LOW_DISK_BYTES = 500_000_000
#: The newest events kept in state.json (all of them are in events.jsonl).
STATE_EVENTS = 50
#: Seconds before the first progress line counts as a stall (model build, label scan).
STARTUP_GRACE = 600.0


class Supervisor:
    """Runs one training to its end (finished, failed or stopped)."""

    def __init__(self, run: RunFolder, opts: TrainOptions, backend: Backend,
                 on_progress: Callable[[dict], None] | None = None) -> None:
        self.run, self.opts, self.backend = run, opts, backend
        self.on_progress = on_progress or (lambda state: None)
        self.stop_asked = False
        self.hard_stop = False
        self.at_epoch_end = False
        self.state = run.read_state()
        self.iteration_times: list[float] = []
        self.epochs: list[dict] = list(self.state.get("epoch_times") or [])
        self.last_write = 0.0
        self.last_warning = 0.0
        self.checkpoints_since_restart = 0
        self.policy = RestartPolicy(max_restarts=opts.max_restarts, on_nan=opts.on_nan, backend=backend.name,
                                    unit=backend.unit)
        self.monitor = ResourceMonitor(
            run.root, opts.sample_seconds, run_gpus(opts.backend, opts.device, opts.gpus),
            backend=opts.backend, workers=opts.workers if opts.backend == "ultralytics" else None,
            cache=opts.extra.get("cache"), raised=self.state.get("bottlenecks") or ())
        self.board = RunBoard(run.root, opts.backend) if opts.tensorboard else None

    # -- state ----------------------------------------------------------------------------
    def _save(self, force: bool = False) -> None:
        now = time.time()
        if force or now - self.last_write >= 1.0:
            self.state["updated"] = round(now, 3)
            if (latest := self.monitor.latest()) is not None:
                self.state["resources"] = latest
                if self.board is not None:
                    self.board.resources(latest)
            self._guard(self.run.write_state, self.state)
            self.last_write = now

    def _event(self, kind: str, detail: str = "", **extra) -> None:
        self._guard(self.run.add_event, kind, detail, step=self.state.get("done"), **extra)
        events = self.state.setdefault("events", [])
        events.append({"kind": kind, "at": round(time.time(), 3), "detail": detail})
        del events[:-STATE_EVENTS]
        self._save(force=True)

    def _guard(self, write: Callable, *args, **kwargs) -> None:
        """Our own bookkeeping must not kill the run. On a full disk the reserve file made at
        the start is given up so state.json and events.jsonl can still be written; otherwise
        the state stays in memory and the problem is said (at most once a minute)."""
        try:
            write(*args, **kwargs)
            return
        except OSError as exc:
            error = exc
        if error.errno == errno.ENOSPC and self.run.reserve.exists():
            self.run.reserve.unlink()
            try:
                write(*args, **kwargs)
                return
            except OSError as exc:
                error = exc
        if time.time() - self.last_warning > 60:
            self.last_warning = time.time()
            print(f"warning: cannot write to {self.run.root}: {error.strerror}; the run goes on, "
                  "its state is kept in memory", file=sys.stderr, flush=True)

    def _reserve(self) -> None:
        """Keep RESERVE_BYTES of disk for our own files (freed when the disk is full)."""
        with contextlib.suppress(OSError):
            if not self.run.reserve.exists():
                with open(self.run.reserve, "wb") as f:
                    f.write(b"\0" * RESERVE_BYTES)

    def _set_status(self, status: str, reason: str = "") -> None:
        self.state["status"] = status
        self.state["reason"] = reason
        self._save(force=True)
        if status != "running":
            self._notify(status, reason)

    def _notify(self, status: str, reason: str) -> None:
        """Run --notify CMD (finished, failed, gave-up, stopped, restart); a failure is an event."""
        if not self.opts.notify:
            return
        kind = self.state["events"][-1]["kind"] if self.state.get("events") else status
        if failure := notify(self.opts.notify, self.run.root, status, reason, kind):
            self._event("notify-failed", failure)

    # -- signals --------------------------------------------------------------------------
    def _on_signal(self, signum, frame) -> None:
        """SIGTERM (`stop`), SIGHUP (the SSH session closed) and a first Ctrl-C stop at the next
        safe point; a second Ctrl-C kills the engine now. The run stays resumable either way."""
        if signum == signal.SIGINT and self.stop_asked:
            self.hard_stop = True
            print("\nkilling the engine now; the run stays resumable: "
                  f"yolo-pipeline resume {self.run.root}", file=sys.stderr, flush=True)
            return
        if signum == signal.SIGUSR1:  # `stop --at-epoch-end`
            self.at_epoch_end = True
        if signum == signal.SIGINT:
            print(f"\nstopping at the next safe point (Ctrl-C again to kill now); resume with: "
                  f"yolo-pipeline resume {self.run.root}", file=sys.stderr, flush=True)
        self.stop_asked = True

    # -- the run --------------------------------------------------------------------------
    def run_to_end(self, resuming: bool) -> int:
        """Supervise attempts until the run finishes, fails or is stopped; the exit code.

        The run's lock is held throughout (RunBusy, exit 2, when another supervisor owns it).
        """
        with RunLock(self.run):
            try:
                return self._run(resuming)
            finally:
                self.monitor.stop()
                if self.monitor.write_errors:
                    self._event("resources",
                                f"{self.monitor.write_errors} resource samples could not be written")
                if self.board is not None:
                    self.board.close()
                    if self.board.errors:
                        self._event("tensorboard", f"{self.board.errors} TensorBoard writes failed")

    def _run(self, resuming: bool) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1):
            signal.signal(signum, self._on_signal)
        self._reserve()
        info = self.run.read_run()
        # this supervisor session's marker: a copied run (same run_id) never kills the original's workers
        marker = f"{info.get('run_id')}:{uuid.uuid4().hex[:12]}"
        self.state.update(backend=self.backend.name, unit=self.backend.unit, run_id=info.get("run_id"),
                          marker=marker, host=socket.gethostname(),
                          total=self.state.get("total") or info.get("total"), pid=os.getpid(),
                          pid_start=process_start_time(os.getpid()), worker_pid=None)
        self.state.setdefault("done", 0)
        self.state.setdefault("restarts", 0)
        self.state.setdefault("attempts", 0)
        self._set_status("running")
        self._event("resume" if resuming else "start",
                    f"supervisor pid {os.getpid()}" + (f", after status {self.state.get('previous')}"
                                                      if resuming and self.state.get("previous") else ""))
        healthy_only = False
        while True:
            self.state["attempts"] += 1
            attempt = self.state["attempts"]
            if low := self._low_disk():
                self._event("low-disk", f"before attempt {attempt}: {low}")
            launch = self.backend.launch(attempt, healthy_only)
            if launch is None:
                self._event("finished", "nothing left to train: the checkpoint is already at the end")
                self.state["done"] = self.state.get("total") or self.state["done"]
                self._set_status("finished", "already complete")
                return EXIT_FINISHED
            outcome = self._attempt(attempt, launch)
            if outcome.kind not in (OutcomeKind.FINISHED, OutcomeKind.STOPPED):
                self._event(outcome.kind, outcome.detail)
            decision = self.policy.decide(outcome, checkpoints=self.checkpoints_since_restart)
            self.checkpoints_since_restart = 0
            if decision.action != "restart":
                return self._end(decision, outcome)
            self.state["restarts"] += 1
            healthy_only = decision.healthy_only
            where = "the last healthy checkpoint" if healthy_only else "the last checkpoint"
            changed = self._remedy(outcome)
            self._event("restart", f"restart {decision.restart}/{self.opts.max_restarts} from {where} "
                                   f"{decision.reason}" + (f", with {changed}" if changed else ""))
            self._notify("restarting", self.state["events"][-1]["detail"])
            if self._sleep(min(2.0 ** decision.restart, 30.0)):
                self._event("stopped", "stop requested while waiting to restart")
                self._set_status("stopped", "stop requested")
                return EXIT_STOPPED

    def _end(self, decision: Decision, outcome: Outcome) -> int:
        """Record how the run ended (finished, stopped, failed or gave up); its exit code."""
        if decision.action == "finish":
            self.state["eta_seconds"] = 0
            if outcome.at is not None:  # ended early (patience, time=): done stays what it is
                self.state["done"], self.state["ended_early"] = outcome.at, outcome.detail
            else:
                self.state["done"] = self.state.get("total") or self.state["done"]
            self._event("finished", outcome.detail)
            self._set_status("finished", outcome.detail)
            return EXIT_FINISHED
        if decision.action == "stop":
            self._event("stopped", outcome.detail)
            self._set_status("stopped", outcome.detail)
            return EXIT_STOPPED
        if decision.gave_up:
            self._event("gave-up", decision.reason)
        self._set_status("failed", decision.reason)
        return EXIT_FAILED

    def _remedy(self, outcome: Outcome) -> str | None:
        """With --on-nan lower-lr, let the backend change what made the loss non-finite."""
        remedy = getattr(self.backend, "remedy", None)
        if outcome.kind != OutcomeKind.NAN or self.opts.on_nan != "lower-lr" or remedy is None:
            return None
        changed = remedy(outcome)
        if changed:
            self.policy.remedied()
            self._event("remedy", changed)
        return changed

    def _low_disk(self) -> str | None:
        """Free space where the run lives, in words, when it is below LOW_DISK_BYTES or below three
        checkpoints; else None."""
        try:
            free = shutil.disk_usage(self.run.root).free
            ckpt = os.path.getsize(self.state["checkpoint"]) if self.state.get("checkpoint") else 0
        except OSError:
            return None
        if free >= max(LOW_DISK_BYTES, 3 * ckpt):
            return None
        return f"the disk holding {self.run.root} has {free / 1e6:,.0f} MB free" + (
            f" (a checkpoint is {ckpt / 1e6:,.0f} MB)" if ckpt else "")

    def _sleep(self, seconds: float) -> bool:
        """Wait; True if a stop was asked meanwhile."""
        end = time.time() + seconds
        while time.time() < end and not self.stop_asked:
            time.sleep(0.1)
        return self.stop_asked

    def _attempt(self, attempt: int, launch: Launch) -> Outcome:
        """Run one engine process to its end and say how it ended."""
        try:
            self.run.logs.mkdir(parents=True, exist_ok=True)
            with open(self.run.attempt_log(attempt), "ab") as log:
                env = {**launch.env, "YOLO_PIPELINE_RUN_ID": self.state["marker"]}
                proc = subprocess.Popen(launch.argv, cwd=launch.cwd, env=env, stdout=log,
                                        stderr=subprocess.STDOUT,
                                        stdin=subprocess.PIPE if launch.stdin_text else subprocess.DEVNULL,
                                        start_new_session=True,
                                        preexec_fn=die_with_parent if launch.die_with_parent else None)
            if launch.stdin_text and proc.stdin:
                with contextlib.suppress(OSError):
                    proc.stdin.write(launch.stdin_text.encode())
                    proc.stdin.close()
        except OSError as exc:  # a missing or foreign binary: no restart cures it
            return Outcome(OutcomeKind.FAILED, f"cannot start {launch.argv[0]}: {exc.strerror}"
                           + (f" ({exc.filename})" if exc.filename else ""))
        self.state["worker_pid"] = proc.pid
        self.monitor.retarget(proc.pid)
        self._event("attempt", f"attempt {attempt}: " + " ".join(launch.argv)
                    + (f"; resumes from {launch.resumed_from}" if launch.resumed_from else ""),
                    attempt=attempt)
        last_progress = time.time()
        seen_progress = False
        verdict: Outcome | None = None
        stop_deadline: float | None = None
        engine_done = False
        grace = 0.0
        while True:
            for note in self.backend.poll():
                if note.kind == ENGINE_DONE and not engine_done:
                    engine_done = True
                    self._event("engine-done", f"{note.detail}; ending the engine process")
                    kill_group(proc)
                if note.kind in (PROGRESS, TIMING, HEARTBEAT, CHECKPOINT):
                    last_progress = time.time()
                    if stop_deadline is not None:  # stopping (e.g. in a validation): alive, wait on
                        stop_deadline = max(stop_deadline, last_progress + grace)
                    # start-up (model build, label scan, cache=) keeps its grace until training
                    # reports progress: its heartbeats alone do not end it
                    seen_progress = seen_progress or note.kind != HEARTBEAT
                self._apply(note)
                if note.kind == VERDICT and verdict is None:
                    verdict = Outcome(note.data["kind"], note.detail + (
                        f" [{note.data['line']}]" if note.data.get("line") else ""), at=note.data.get("done"))
                    if not note.data.get("handled_by_worker"):
                        kill_group(proc)
            rc = proc.poll()
            if rc is not None:
                for note in self.backend.poll(final=True):
                    self._apply(note)
                kill_group(proc)  # leftovers (dataloader workers) of a finished engine
                kill_marked(self.state.get("marker"))  # DDP ranks run in sessions of their own
                self.state["worker_pid"] = None
                if verdict is not None:
                    return verdict
                outcome = self.backend.outcome(0 if engine_done else rc)
                if stop_deadline is not None and outcome.kind != OutcomeKind.FINISHED:
                    return Outcome(OutcomeKind.STOPPED, "stopped on request; resumable")
                return outcome
            if self.stop_asked and stop_deadline is None:
                loss = getattr(self.backend, "stop_loss", lambda: "")()
                self._event("stop-requested",
                            "stopping at the next safe point" + (f"; {loss}" if loss else ""))
                grace = self.backend.request_stop(proc.pid, at_epoch_end=self.at_epoch_end)
                stop_deadline = time.time() + grace
            if stop_deadline is not None and (time.time() > stop_deadline or self.hard_stop):
                kill_group(proc)
            limit = self.opts.stall_minutes * 60 + (0 if seen_progress else STARTUP_GRACE)
            if verdict is None and stop_deadline is None and time.time() - last_progress > limit:
                low = self._low_disk()
                verdict = Outcome(OutcomeKind.STALL,
                                  f"no progress for {(time.time() - last_progress) / 60:.1f} min"
                                  + (f"; {low}" if low else ""))
                kill_group(proc)
            for finding in self.monitor.take_findings():
                self.state.setdefault("bottlenecks", []).append(finding.kind)
                self._event("bottleneck", finding.message, finding=finding.kind)
            self._save()
            with contextlib.suppress(subprocess.TimeoutExpired):  # returns at once when it exits
                proc.wait(timeout=self.backend.poll_seconds)

    def _apply(self, note) -> None:
        """Fold one note into the state (and the progress display)."""
        if self.board is not None:
            self.board.note(note.kind, note.data)
        if note.kind == PROGRESS:
            d = note.data
            self.state["done"] = d["done"]
            self.state["total"] = d.get("total") or self.state.get("total")
            self.state["fraction"] = d.get("fraction", 0.0)
            if d.get("loss") is not None:
                self.state["loss"] = d["loss"]
            if d.get("metrics"):
                self.state["metrics"] = d["metrics"]
            self._update_eta()
            self.on_progress(self.state)
        elif note.kind == TIMING:
            if "seconds" in note.data and "epoch" not in note.data:  # (iteration before the gap, s)
                self.iteration_times.append((self.state.get("done") or 0, note.data["seconds"]))
                del self.iteration_times[:-1000]
            else:
                self.epochs.append({k: note.data.get(k) for k in (
                    "epoch", "seconds", "train_seconds", "val_seconds", "mosaic", "first_of_session",
                    "images", "batch", "peak_memory", "close_mosaic", "t")})
                self.state["epoch_times"] = self.epochs[-50:]
                self._loader_check(note.data)
        elif note.kind == CHECKPOINT:
            self.state["checkpoint"] = note.data["path"]
            self.state["checkpoint_done"] = note.data["done"]
            self.checkpoints_since_restart += 1
        elif note.kind == METRIC:
            self._metric(note.data["map"], note.data["done"])
        elif note.kind == EVENT:
            self._event(note.data.get("event", "note"), note.detail)

    def _loader_check(self, epoch: dict) -> None:
        """A `loader` bottleneck event (once) when the epoch's loop mostly waited for data."""
        found = loader_wait_rule(epoch.get("load_wait"), epoch.get("compute"), self.opts.workers)
        raised = self.state.setdefault("bottlenecks", [])
        if found is not None and found.kind not in raised:
            raised.append(found.kind)
            self._event("bottleneck", found.message, finding=found.kind)

    def _metric(self, value: float, done: int) -> None:
        """One mAP evaluation: state["map"] keeps the last and the best (over the whole run)."""
        record = self.state.setdefault("map", {"last": None, "best": None, "evaluations": []})
        entry = {"map": round(value, 6), "done": done}
        evaluations = [e for e in record["evaluations"] if e["done"] != done]  # AB prints it twice
        record["evaluations"] = [*evaluations, entry][-200:]
        record["last"] = entry
        if record["best"] is None or value > record["best"]["map"]:
            record["best"] = entry
        self._save(force=True)

    def _update_eta(self) -> None:
        done, total = self.state.get("done", 0), self.state.get("total")
        eta = run_eta(self.run.root, self.state, self.backend.unit, self.iteration_times, self.epochs,
                      self.opts.extra)
        if eta.speed is not None:
            self.state["speed"] = eta.speed
            self.state["eta_seconds"] = round(eta.seconds, 1)
            self.state["eta_basis"] = eta.basis
            self._eta_milestone(done, total, eta.seconds)
        if eta.note and eta.note != self.state.get("eta_note"):
            self.state["eta_note"] = eta.note
            self._event("eta-note", eta.note)

    def _eta_milestone(self, done: int, total: int | None, seconds_left: float) -> None:
        """Record the predicted finish when the run first passes 5, 25, 50 and 75%."""
        if not total:
            return
        passed = self.state.setdefault("eta_milestones", [])
        for percent in ETA_MILESTONES:
            if percent not in passed and done >= total * percent / 100:
                passed.append(percent)
                finish = time.time() + seconds_left
                self._event("eta", f"{percent}% done: finish predicted at "
                                   f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(finish))}",
                            percent=percent, predicted_finish=round(finish, 1))
