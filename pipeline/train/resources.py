"""The supervisor's resource monitor: one sample every `sample_seconds` to RUN/resources.jsonl.

A daemon thread samples the engine's process tree (the root pid given to `start` /
`retarget`: the worker, its data-loader workers, DDP ranks), the machine and the run's GPUs,
appends one JSON object per line to RUN/resources.jsonl (flushed; a failed write is counted
in `write_errors`, never raised) and keeps the latest in memory (`latest()`). After each
sample the rules of pipeline/train/bottleneck.py run over the recent window; each kind is
found once per run and waits in `take_findings()` for the supervisor to make it an event.

Keys of a sample (MB = 2**20 bytes; None where a figure cannot be read):

- `t`: unix time; `up`: seconds since this attempt's tree was given; `pid`: the tree's root;
  `procs`: processes in the tree (0 while no tree runs, e.g. between attempts);
- `cpu_tree`: the tree's CPU over the last interval, % of one core (250 = 2.5 cores busy);
  processes that ended within the interval are missed;
- `cpu_machine`: the whole machine's CPU, % of all its cores; `iowait`: % of all cores idle
  waiting on I/O; `cores`: the cores this process may use (affinity, cgroup quota);
- `rss_mb`: RSS summed over the tree (shared pages of forked workers counted per process);
- `mem_avail_mb`: the machine's available memory; `swap_mb`: the machine's swap in use;
- `read_mbps` / `write_mbps`: the tree's storage reads/writes (page-cache hits are not reads),
  MB/s over the interval; None where /proc/PID/io may not be read;
- `gpus` (only when NVML and the run's GPUs are there): one entry per GPU of the run:
  `index` (the CUDA index the run was given), `util` (%), `mem_mb`, `mem_total_mb`
  (device-wide), `temp_c`, `power_w`, `power_limit_w`, `throttle` (limits lowering the clocks:
  power, thermal, hw_thermal, hw_slowdown, power_brake).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import psutil

from pipeline.train.bottleneck import Bottleneck, Limits, Once, check
from pipeline.train.sampler import TreeReading, gpu_reading, nvml_handle, read_tree

RESOURCES_FILE = "resources.jsonl"
MB = float(2**20)


def usable_cores() -> int:
    """Cores this process may use: its CPU affinity, narrowed by a cgroup v2 CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    with contextlib.suppress(OSError, ValueError, IndexError):
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, round(int(quota) / int(period))))
    return cores


def run_gpus(backend: str, device: str | None, gpus: str | None) -> list[int]:
    """The CUDA indices a training uses: Ultralytics `--device 0,1`; darknet `--gpus 0,1`
    (a darknet without --gpus: none, since a CPU build cannot be told apart cheaply)."""
    text = (device if backend == "ultralytics" else gpus) or ""
    return [int(x) for x in text.split(",") if x.strip().isdigit()]


def read_samples(path: str | Path) -> list[dict]:
    """The samples of a resources.jsonl (or of RUN/resources.jsonl); torn lines are skipped."""
    path = Path(path)
    if path.is_dir():
        path = path / RESOURCES_FILE
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        with contextlib.suppress(ValueError):
            item = json.loads(line)
            if isinstance(item, dict):
                out.append(item)
    return out


def _delta(now: dict, before: dict, since: float, pick) -> float:
    """Sum over processes of pick(now) - pick(before); a process born after `since` counts
    from zero, one seen neither then nor born since (a missed walk) is left out."""
    total = 0.0
    for key, value in now.items():
        if key in before:
            total += pick(value) - pick(before[key])
        elif key[1] >= since - 0.5:
            total += pick(value)
    return max(total, 0.0)


class ResourceMonitor:
    """Samples a process tree, the machine and the run's GPUs in a daemon thread.

    Example: `m = ResourceMonitor(run.root, gpus=[0], workers=2); m.start(proc.pid); ...;
    m.retarget(new_proc.pid); ...; m.stop()`.
    """

    def __init__(self, run_dir: str | Path, sample_seconds: float = 10.0, gpus: Sequence[int] = (),
                 *, backend: str = "ultralytics", workers: int | None = None, cache: str | None = None,
                 limits: Limits | None = None, raised: Iterable[str] = ()) -> None:
        self.path = Path(run_dir) / RESOURCES_FILE
        self.sample_seconds = sample_seconds
        self.gpus = list(gpus)
        self.backend, self.workers, self.cache, self.limits = backend, workers, cache, limits or Limits()
        self.write_errors = 0
        self.sample_errors = 0
        self._once = Once(raised)
        self._pending: list[Bottleneck] = []
        self._latest: dict | None = None
        self._window: deque[dict] = deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._handles: list[tuple[int, object]] = []
        self._root: psutil.Process | None = None
        self._pid = 0
        self._since = 0.0
        self._tree: TreeReading | None = None
        self._tree_t = 0.0
        self._machine: Any = None  # psutil.cpu_times() of the previous sample
        self._cores = usable_cores()

    # -- control (the supervisor's thread) -------------------------------------------------
    def start(self, pid: int) -> None:
        """Sample the tree rooted at `pid` from now on (starts the thread on the first call)."""
        with self._lock:
            self._target(pid)
        if self._thread is not None and self._thread.is_alive():
            return
        self._handles = [(i, h) for i in self.gpus if (h := nvml_handle(i)) is not None]
        self._machine = psutil.cpu_times()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="resource-monitor", daemon=True)
        self._thread.start()

    def retarget(self, pid: int) -> None:
        """A new attempt: sample the tree rooted at `pid` instead (findings stay remembered)."""
        if self._thread is None or not self._thread.is_alive():
            self.start(pid)
            return
        with self._lock:
            self._target(pid)

    def stop(self) -> None:
        """End the thread (waits at most a few seconds for a sample in progress)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    def latest(self) -> dict | None:
        """The newest sample (a copy), None before the first."""
        with self._lock:
            return None if self._latest is None else dict(self._latest)

    def take_findings(self) -> list[Bottleneck]:
        """Findings raised since the last call (each kind once per run)."""
        with self._lock:
            found, self._pending = self._pending, []
        return found

    # -- sampling (the monitor's thread) ---------------------------------------------------
    def _target(self, pid: int) -> None:
        """Make `pid` the tree's root and take the baseline walk (under the lock)."""
        try:
            self._root = psutil.Process(pid)
        except psutil.Error:
            self._root = None
        self._pid, self._since = pid, time.time()
        self._tree = read_tree(self._root, io=True) if self._root is not None else None
        self._tree_t = time.time()

    def _loop(self) -> None:
        """Sample until stopped; an error in one sample is counted and the next one tried."""
        while not self._stop.wait(self.sample_seconds):
            try:
                self.record(self.sample())
            except Exception:  # the monitor must never take the supervisor down
                self.sample_errors += 1

    def sample(self) -> dict:
        """Read everything once: the figures since the previous sample (see the module doc)."""
        with self._lock:
            root, pid, since, before, before_t = self._root, self._pid, self._since, self._tree, self._tree_t
        now = time.time()
        tree = read_tree(root, io=True) if root is not None else None
        sample: dict = {"t": round(now, 2), "up": round(now - since, 1), "pid": pid,
                        "procs": len(tree.pids) if tree else 0}
        span = max(now - before_t, 1e-6)
        if tree is not None and before is not None:
            sample["cpu_tree"] = round(100 * _delta(tree.cpu, before.cpu, before_t, float) / span, 1)
        else:
            sample["cpu_tree"] = None
        sample.update(self._machine_figures())
        sample["rss_mb"] = round(tree.rss / MB, 1) if tree else None
        mem, swap = psutil.virtual_memory(), psutil.swap_memory()
        sample["mem_avail_mb"], sample["swap_mb"] = round(mem.available / MB), round(swap.used / MB)
        for name, part in (("read_mbps", 0), ("write_mbps", 1)):
            sample[name] = None
            if tree is not None and before is not None and tree.io and before.io:
                moved = _delta(tree.io, before.io, before_t, lambda v, p=part: v[p])
                sample[name] = round(moved / MB / span, 2)
        if self._handles:
            sample["gpus"] = [gpu_reading(h, i) for i, h in self._handles]
        with self._lock:
            if self._pid == pid:  # not retargeted meanwhile: this walk is the next baseline
                self._tree, self._tree_t = tree, now
        return sample

    def _machine_figures(self) -> dict:
        """cpu_machine, iowait and cores since the previous sample."""
        times = psutil.cpu_times()
        before, self._machine = self._machine, times
        if before is None:
            return {"cpu_machine": None, "iowait": None, "cores": self._cores}
        total = sum(times) - sum(before)
        idle = times.idle - before.idle
        wait = getattr(times, "iowait", 0.0) - getattr(before, "iowait", 0.0)
        if total <= 0:
            return {"cpu_machine": None, "iowait": None, "cores": self._cores}
        return {"cpu_machine": round(100 * max(total - idle - wait, 0) / total, 1),
                "iowait": round(100 * max(wait, 0) / total, 1), "cores": self._cores}

    def record(self, sample: dict) -> None:
        """Append `sample` to resources.jsonl, make it the latest, and run the bottleneck rules."""
        try:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(sample, separators=(",", ":")) + "\n")
                f.flush()
        except (OSError, ValueError):
            self.write_errors += 1
        keep = self.limits.window_s + 2 * self.sample_seconds
        with self._lock:
            self._latest = sample
            self._window.append(sample)
            while self._window and self._window[0].get("t", 0) < sample.get("t", 0) - keep:
                self._window.popleft()
            window = list(self._window)
        found = self._once.new(check(window, backend=self.backend, workers=self.workers, cache=self.cache,
                                     limits=self.limits))
        if found:
            with self._lock:
                self._pending.extend(found)
