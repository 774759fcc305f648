"""The engine's processes: made to die with the supervisor, and killed with everything they
started (their process group; DDP ranks, which torchrun puts in sessions of their own, by the
supervisor session's marker in their environment)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Let the kernel SIGKILL this process when its parent dies (a `preexec_fn`)."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def kill_marked(marker_value: str | None) -> int:
    """SIGKILL every process whose environment carries this supervisor session's marker
    (state.json "marker": run_id:session); the count."""
    if not marker_value:
        return 0
    marker = f"YOLO_PIPELINE_RUN_ID={marker_value}".encode()
    killed = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as f:
                if marker in f.read().split(b"\0"):
                    os.kill(int(entry.name), signal.SIGKILL)
                    killed += 1
        except (OSError, ProcessLookupError):
            continue
    return killed


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the engine's process group (it runs in a session of its own)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    if proc.poll() is None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
