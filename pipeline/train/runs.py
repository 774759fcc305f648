"""The run folder: what a training records so it can be understood and continued.

    RUN/run.json         written once: command line, backend, options, digests, versions
    RUN/state.json       replaced atomically as the run goes: what `status` prints
    RUN/events.jsonl     one JSON object per event (start, resume, nan, restart, ...)
    RUN/logs/attempt-NN.log   the engine's console output, one file per attempt
    RUN/checkpoints/     validated last-good copies (ours)
    RUN/ultralytics/ or RUN/darknet/   the engine's own outputs

Nothing of ours lives inside the engine's folder (Ultralytics may delete its save_dir).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import UserError
from pipeline.io import atomic_write

STATUSES = ("running", "finished", "failed", "stopped", "killed")


@dataclass(frozen=True, slots=True)
class RunFolder:
    """Paths of one run folder."""

    root: Path

    @property
    def run_json(self) -> Path:
        return self.root / "run.json"

    @property
    def state_json(self) -> Path:
        return self.root / "state.json"

    @property
    def events(self) -> Path:
        return self.root / "events.jsonl"

    @property
    def progress(self) -> Path:
        """JSON lines the Ultralytics worker writes (batches, epochs, checkpoints)."""
        return self.root / "progress.jsonl"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def supervisor_log(self) -> Path:
        """Where a detached supervisor's own output goes."""
        return self.root / "supervisor.log"

    @property
    def reserve(self) -> Path:
        """Disk space the supervisor keeps for its own files (given up on a full disk)."""
        return self.root / ".reserve"

    def engine_dir(self, backend: str) -> Path:
        """The engine's own output folder (Ultralytics' save_dir, darknet's files)."""
        return self.root / backend

    def attempt_log(self, attempt: int) -> Path:
        return self.logs / f"attempt-{attempt:02d}.log"

    def attempt_logs(self) -> list[Path]:
        """The attempt logs in order."""
        return sorted(self.logs.glob("attempt-*.log"))

    def is_run(self) -> bool:
        return self.run_json.is_file()

    def read_run(self) -> dict:
        """run.json, or a UserError naming the folder."""
        try:
            return json.loads(self.run_json.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UserError(f"{self.root} is not a training run (no run.json)",
                            "start one with `yolo-pipeline train CFGDIR --out RUN`") from None
        except (OSError, ValueError) as exc:
            raise UserError(f"{self.run_json}: unreadable ({exc})") from None

    def read_state(self) -> dict:
        """state.json as last written ({} before the first write)."""
        try:
            return json.loads(self.state_json.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return {}

    def write_state(self, state: dict) -> None:
        atomic_write(self.state_json, json.dumps(state, indent=2) + "\n")

    def add_event(self, kind: str, detail: str = "", **extra) -> dict:
        """Append one event `{kind, at, detail, ...}` to events.jsonl and return it."""
        event = {"kind": kind, "at": round(time.time(), 3), "detail": detail, **extra}
        with open(self.events, "a", encoding="utf-8") as f:
            f.write(json.dumps(event) + "\n")
        return event

    def read_events(self) -> list[dict]:
        """Every event; a line cut short by a kill is skipped."""
        try:
            lines = self.events.read_text(encoding="utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out


class RunBusy(UserError):
    """Another supervisor owns the run (it holds the run's lock)."""


class RunLock:
    """An exclusive lock on RUN/.lock, held for a supervisor's whole life: one owner per run.

    The lock is the kernel's (flock; NFS passes it to its lock manager), so it is free the
    moment its holder dies, whatever host it ran on; the file names the holder (pid, host).
    Example: `with RunLock(run): ...` raises RunBusy while another supervisor runs it.
    """

    def __init__(self, run: RunFolder) -> None:
        self.path = run.root / ".lock"
        self.fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise RunBusy naming the holder."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise RunBusy(f"{self.path.parent} is owned by supervisor pid {holder.get('pid', '?')} on "
                          f"{holder.get('host', '?')} (since {holder.get('since', '?')})",
                          f"stop it with `yolo-pipeline stop {self.path.parent}` or wait for it") from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "since": time.strftime("%Y-%m-%d %H:%M:%S")}).encode())
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing drops the flock
            self.fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _holder(fd: int) -> dict:
    try:
        return json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        return {}


def lock_holder(root: Path) -> dict | None:
    """Who holds the run's lock ({pid, host, since}), or None when it is free."""
    try:
        fd = os.open(root / ".lock", os.O_RDWR)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return _holder(fd) or {"pid": None}
    finally:
        os.close(fd)
    return None


def process_start_time(pid: int) -> int | None:
    """The start time of `pid` in clock ticks since boot (from /proc), or None if gone.

    Stored beside a pid so a recycled pid is not taken for our supervisor.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":  # a zombie has finished
        return None
    return int(fields[19])


def alive(pid: int | None, start_time: int | None) -> bool:
    """True when `pid` runs and is the same process that was recorded."""
    if not pid:
        return False
    now = process_start_time(pid)
    return now is not None and (start_time is None or now == start_time)


def supervisor_alive(state: dict, root: Path | None = None) -> bool:
    """True when the supervisor recorded in `state` still runs. A supervisor on another host
    (a shared filesystem) cannot be seen in /proc: there, its lock on the run says it."""
    host = state.get("host")
    if host and host != socket.gethostname():
        return root is not None and lock_holder(root) is not None
    return alive(state.get("pid"), state.get("pid_start"))


#: The last event of a supervisor that ended, and the status it means.
_ENDING_EVENTS = {"finished": "finished", "gave-up": "failed", "failed": "failed", "stopped": "stopped"}


def effective_status(state: dict, events: list[dict] | None = None, root: Path | None = None) -> str:
    """The status to report. A 'running' run whose supervisor is gone was killed, unless
    its last event says how it ended (on a full disk, events.jsonl may be written when the
    final state.json could not)."""
    status = state.get("status", "killed")
    if status == "running" and not supervisor_alive(state, root):
        last = events[-1]["kind"] if events else None
        return _ENDING_EVENTS.get(last, "killed")
    return status


def ensure_new_run_folder(root: Path, *, force: bool = False) -> str | None:
    """Make `root` ready for a new run: absent or empty; a run that never got a checkpoint (a
    wrong device or binary, a bad argument) is cleared, since it holds nothing of value;
    `force` moves any other run aside to `ROOT.replaced-<time>` (nothing is deleted). A note
    saying what was done, or None.
    """
    if root.exists() and not root.is_dir():
        raise UserError(f"--out {root} is a file")
    note = None
    if (root / "run.json").exists():
        state = RunFolder(root).read_state()
        if supervisor_alive(state, root) or lock_holder(root) is not None:
            raise RunBusy(f"{root} is running (supervisor pid {state.get('pid')})",
                          f"stop it first with `yolo-pipeline stop {root}`")
        if not state.get("checkpoint") and not state.get("done"):
            _clear(root)
            note = f"{root} held a run that never reached a checkpoint: cleared and started again"
        elif force:
            aside = root.with_name(f"{root.name}.replaced-{time.strftime('%Y%m%d-%H%M%S')}")
            root.rename(aside)
            note = f"the previous run was moved to {aside}"
        else:
            raise UserError(f"{root} already holds a run ({state.get('status', 'unknown')}, "
                            f"{state.get('done', 0)} {state.get('unit') or 'unit'}s done)",
                            f"continue it with `yolo-pipeline resume {root}`, or start over with --force "
                            "(the old run is moved aside, not deleted)")
    if root.is_dir() and any(root.iterdir()):
        raise UserError(f"--out {root} is not empty", "give a new folder for the run")
    os.makedirs(root, exist_ok=True)
    return note


#: What a run folder holds (all of it ours or the engine's): cleared for a run that never trained.
_RUN_ENTRIES = ("run.json", "state.json", "events.jsonl", "progress.jsonl", "resources.jsonl",
                "supervisor.log", ".reserve", ".lock", "logs", "checkpoints", "ultralytics", "darknet",
                "tensorboard", "summary", "evaluation")


def _clear(root: Path) -> None:
    import shutil

    for name in _RUN_ENTRIES:
        path = root / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
