"""`--notify CMD`: a shell command run when something happens to a run (it ends, a bottleneck...).

CMD runs through /bin/sh in a session of its own, with the caller's environment plus
YOLO_PIPELINE_RUN (the run folder), YOLO_PIPELINE_STATUS (running, finished, failed,
stopped), YOLO_PIPELINE_REASON (one line) and YOLO_PIPELINE_EVENT (the event kind), its
stdin empty and stdout discarded. It gets TIMEOUT seconds, then its whole process group is
killed. `notify` never raises: a failure comes back as one line for the caller to record.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path

SHELL = "/bin/sh"
TIMEOUT = 30.0
#: The most characters of the command's stderr quoted in a failure line.
STDERR_CHARS = 200


def _clean(value: object) -> str:
    """An environment value: one line, no NUL bytes."""
    return str(value).replace("\0", " ").replace("\r\n", " ").replace("\n", " ").replace("\r", " ")


def notify(cmd: str, run_dir: str | Path, status: str, reason: str, event: str,
           timeout: float = TIMEOUT) -> str | None:
    """Run CMD with the run's figures in its environment; None on success, else one line
    (exit code and the end of its stderr, the timeout, or why it could not start).

    Example: `notify('mail -s "$YOLO_PIPELINE_STATUS" me < /dev/null', run, "failed", "stall", "gave-up")`.
    """
    env = dict(os.environ, YOLO_PIPELINE_RUN=_clean(Path(run_dir).absolute()),
               YOLO_PIPELINE_STATUS=_clean(status), YOLO_PIPELINE_REASON=_clean(reason),
               YOLO_PIPELINE_EVENT=_clean(event))
    try:
        proc = subprocess.Popen(cmd, shell=True, executable=SHELL, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    except (OSError, ValueError) as exc:
        return f"notify command cannot start: {getattr(exc, 'strerror', None) or exc}"
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(proc)
        return f"notify command timed out after {timeout:g} s and was killed"
    except Exception as exc:  # reading its stderr must not end the run
        _kill(proc)
        return f"notify command failed: {exc}"
    if proc.returncode == 0:
        return None
    tail = " ".join(err.decode("utf-8", "replace").split())[-STDERR_CHARS:]
    code = f"killed by signal {-proc.returncode}" if proc.returncode < 0 else f"exit code {proc.returncode}"
    return f"notify command failed ({code})" + (f": {tail}" if tail else "")


def _kill(proc: subprocess.Popen) -> None:
    """SIGKILL the command's process group and reap it (a grandchild holding stderr open
    must not keep us waiting)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired, OSError):
        proc.communicate(timeout=2)
    if proc.poll() is None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=2)
