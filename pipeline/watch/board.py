"""`board`: TensorBoard on one run's RUN/tensorboard, or on every run under a folder.

TensorBoard runs as our child (`python -m tensorboard.main`), with the Python loader
(`--load_fast false`: it honours the restart markers our writers leave, see
pipeline/train/tensorboard.py, and starts no data-server binary). TensorBoard itself fetches
nothing from the network and has no update check. A folder of runs becomes one
`--logdir_spec NAME:RUN/tensorboard,...` (NAME: the run's path under the folder), fixed
when `board` starts: a run started later needs a new `board`.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pipeline.errors import UserError
from pipeline.train.tensorboard import TENSORBOARD_DIR

#: Seconds TensorBoard gets to start listening.
START_SECONDS = 60.0
#: Seconds between TensorBoard's re-reads of the event files.
RELOAD_SECONDS = 5
_PR_SET_PDEATHSIG = 1


def board_logdirs(path: Path) -> list[tuple[str, Path]]:
    """(name, RUN/tensorboard) to show: ("", ...) for a run folder, one per run under a folder."""
    path = path.resolve()
    hint = "train with --tensorboard (pipeline files: train.tensorboard: true)"
    if (path / "run.json").is_file():
        folder = path / TENSORBOARD_DIR
        if not folder.is_dir():
            raise UserError(f"{path} has no TensorBoard logs ({folder} is missing)", hint)
        return [("", folder)]
    from pipeline.watch.runs import find_runs

    runs = find_runs(path)
    found = [(path.name if rid == "." else rid, run / TENSORBOARD_DIR) for rid, run in runs.items()
             if (run / TENSORBOARD_DIR).is_dir()]
    if not found:
        raise UserError(f"no run under {path} has TensorBoard logs ({len(runs)} run(s) found)", hint)
    return found


def tensorboard_argv(logdirs: list[tuple[str, Path]], host: str, port: int) -> list[str]:
    """The TensorBoard command line for these folders."""
    argv = [sys.executable, "-m", "tensorboard.main", "--host", host, "--port", str(port),
            "--load_fast", "false", "--reload_interval", str(RELOAD_SECONDS)]
    if len(logdirs) == 1 and not logdirs[0][0]:
        return [*argv, "--logdir", str(logdirs[0][1])]
    specs = []
    for name, folder in logdirs:
        if "," in str(folder):
            raise UserError(f"{folder}: a comma in the path cannot be given to TensorBoard's --logdir_spec",
                            f"run `yolo-pipeline board {folder.parent}` for this run alone")
        specs.append(f"{name.replace(':', '_').replace(',', '_')}:{folder}")
    return [*argv, "--logdir_spec", ",".join(specs)]


def free_port(host: str, port: int) -> int:
    """`port` when it can be bound on `host` (0: a free one picked now), else a UserError."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise UserError(f"port {port} on {host} is in use", "give another --port (0: any free one)") \
                    from None
            raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        return s.getsockname()[1]


def url_of(host: str, port: int) -> str:
    """The address to open: this machine's name when listening on every interface."""
    shown = socket.gethostname() if host in ("0.0.0.0", "::", "") else host
    return f"http://[{shown}]:{port}/" if ":" in shown else f"http://{shown}:{port}/"


def _probe_host(host: str) -> str:
    return {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class Board:
    """A TensorBoard child process: `start()` returns once it listens, `stop()` ends it."""

    def __init__(self, logdirs: list[tuple[str, Path]], host: str = "127.0.0.1", port: int = 6006) -> None:
        self.host = host
        self.port = free_port(host, port)
        self.argv = tensorboard_argv(logdirs, host, self.port)
        self.url = url_of(host, self.port)
        self.proc: subprocess.Popen | None = None
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - TensorBoard's output, read on failure

    def start(self, timeout: float = START_SECONDS) -> str:
        """Start TensorBoard and wait until it accepts connections; its URL. UserError if it fails."""
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                raise UserError(f"TensorBoard exited with code {self.proc.returncode}: {self.output(1)}")
            with contextlib.suppress(OSError), \
                    socket.create_connection((_probe_host(self.host), self.port), timeout=1):
                return self.url
            time.sleep(0.2)
        self.stop()
        raise UserError(f"TensorBoard did not listen on {self.host}:{self.port} within {timeout:.0f} s: "
                        f"{self.output(1)}")

    def wait(self) -> int:
        """Block until TensorBoard ends; its exit code."""
        return self.proc.wait() if self.proc else 0

    def stop(self) -> None:
        """End TensorBoard (SIGTERM, then SIGKILL after 10 s)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def output(self, lines: int = 20) -> str:
        """The last lines TensorBoard printed."""
        self._log.seek(0)
        text = self._log.read().decode("utf-8", "replace").strip().splitlines()
        return "\n".join(text[-lines:]) if text else "(no output)"
