"""Resource use of a process tree while it works: peak RSS, CPU share, GPU utilisation.

A background thread samples this process and all its descendants (the training's
supervisor, trainer and data-loader workers) every `interval` seconds with psutil. RSS
is summed over the tree, so pages shared by forked workers count once per process: the
figure is an upper bound of what the tree needs. CPU is the tree's CPU time over the
wall time and all cores (100 % = every core busy). GPU utilisation and memory come from
NVML (the tree's own processes) when a GPU index is given.

The tree walk (`read_tree`) and the NVML readings (`nvml_handle`, `gpu_reading`) are
shared with the supervisor's `ResourceMonitor` (pipeline/train/resources.py).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

import psutil

#: NVML clock-throttle reasons that slow a busy GPU down, by the short name a sample uses
#: (idle, application-clock, sync-boost and display reasons are not limits and are left out).
THROTTLE_NAMES = {0x4: "power", 0x8: "hw_slowdown", 0x20: "thermal", 0x40: "hw_thermal",
                  0x80: "power_brake"}


@dataclass(frozen=True)
class Usage:
    """What a `TreeSampler` saw; None where a figure does not apply."""

    seconds: float
    peak_rss_mb: float
    cpu_percent: float
    gpu_percent: float | None
    peak_gpu_mb: float | None


@dataclass
class TreeReading:
    """One walk of a process tree: summed RSS and, per process, CPU seconds and I/O bytes."""

    rss: int = 0
    cpu: dict[tuple[int, float], float] = field(default_factory=dict)
    io: dict[tuple[int, float], tuple[int, int]] = field(default_factory=dict)
    pids: set[int] = field(default_factory=set)


def read_tree(root: psutil.Process, io: bool = False) -> TreeReading | None:
    """RSS, CPU seconds (and, with `io`, storage read/write bytes where permitted) of `root`
    and all its descendants, keyed by (pid, start time); None when `root` is gone."""
    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return None
    reading = TreeReading()
    for p in procs:
        try:
            with p.oneshot():
                key = (p.pid, p.create_time())
                rss = p.memory_info().rss
                t = p.cpu_times()
                counters = _io_counters(p) if io else None
        except psutil.Error:  # a worker that just ended: left out of this walk
            continue
        reading.rss += rss
        reading.cpu[key] = t.user + t.system
        reading.pids.add(p.pid)
        if counters is not None:
            reading.io[key] = counters
    return reading


def _io_counters(p: psutil.Process) -> tuple[int, int] | None:
    """Bytes the process made the storage layer read and write; None where not permitted."""
    try:
        c = p.io_counters()
    except (psutil.AccessDenied, AttributeError, NotImplementedError):
        return None
    return int(c.read_bytes), int(c.write_bytes)


class TreeSampler:
    """Use as a context manager around the work; `usage` holds the result afterwards.

    Example: `with TreeSampler() as s: train(); print(s.usage.peak_rss_mb)`.
    """

    def __init__(self, interval: float = 0.25, gpu_index: int | None = None) -> None:
        self.interval = interval
        self.gpu_index = gpu_index
        self.usage: Usage | None = None
        self._root = psutil.Process(os.getpid())
        self._stop = threading.Event()
        self._cpu: dict[tuple[int, float], float] = {}
        self._peak_rss = 0
        self._peak_gpu = 0
        self._gpu_base = 0
        self._gpu_samples: list[int] = []
        self._nvml = None
        self._thread = threading.Thread(target=self._loop, name="tree-sampler", daemon=True)

    def __enter__(self) -> TreeSampler:
        self._start = time.monotonic()
        times = self._root.cpu_times()
        self._root_cpu0 = times.user + times.system
        if self.gpu_index is not None:
            self._nvml = nvml_handle(self.gpu_index)
            self._gpu_base = gpu_used(self._nvml) if self._nvml is not None else 0
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        wall = max(time.monotonic() - self._start, 1e-9)
        cpu = sum(self._cpu.values()) - self._root_cpu0
        gpu = (sum(self._gpu_samples) / len(self._gpu_samples)) if self._gpu_samples else None
        self.usage = Usage(
            seconds=round(wall, 2), peak_rss_mb=round(self._peak_rss / 2**20, 1),
            cpu_percent=round(100 * cpu / wall / (psutil.cpu_count() or 1), 1),
            gpu_percent=None if gpu is None else round(gpu, 1),
            peak_gpu_mb=round(self._peak_gpu / 2**20, 1) if self._nvml is not None else None)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def _sample(self) -> None:
        reading = read_tree(self._root)
        if reading is None:
            return
        self._cpu.update(reading.cpu)  # a worker that ended: its last sample stands
        self._peak_rss = max(self._peak_rss, reading.rss)
        if self._nvml is not None:
            self._sample_gpu(reading.pids)

    def _sample_gpu(self, pids: set[int]) -> None:
        import pynvml

        try:
            self._gpu_samples.append(pynvml.nvmlDeviceGetUtilizationRates(self._nvml).gpu)
            ours = [p.usedGpuMemory or 0 for p in pynvml.nvmlDeviceGetComputeRunningProcesses(self._nvml)
                    if p.pid in pids]
            # In a container NVML may report host pids: then the device's growth since start.
            used = sum(ours) if ours else gpu_used(self._nvml) - self._gpu_base
        except pynvml.NVMLError:
            return
        self._peak_gpu = max(self._peak_gpu, used)


def gpu_used(handle) -> int:
    """Bytes in use on the device."""
    import pynvml

    return int(pynvml.nvmlDeviceGetMemoryInfo(handle).used)


def nvml_handle(index: int):
    """An NVML handle for CUDA GPU `index` (CUDA_VISIBLE_DEVICES applied), or None when NVML
    or that GPU is not there."""
    try:
        import pynvml

        pynvml.nvmlInit()
        visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
        if "CUDA_VISIBLE_DEVICES" not in os.environ or index >= len(visible):
            return pynvml.nvmlDeviceGetHandleByIndex(index)
        if visible[index].isdigit():
            return pynvml.nvmlDeviceGetHandleByIndex(int(visible[index]))
        return pynvml.nvmlDeviceGetHandleByUUID(visible[index])
    except Exception:  # no driver, no package, no such GPU: GPU figures stay None
        return None


def gpu_reading(handle, index: int) -> dict:
    """One NVML reading of a device: `index`, `util` (%), `mem_mb`, `mem_total_mb`, `temp_c`,
    `power_w`, `power_limit_w`, `throttle` (names from THROTTLE_NAMES); None for a figure the
    device does not report."""
    import pynvml

    def ask(call, *args):
        try:
            return call(handle, *args)
        except pynvml.NVMLError:
            return None

    util = ask(pynvml.nvmlDeviceGetUtilizationRates)
    mem = ask(pynvml.nvmlDeviceGetMemoryInfo)
    power = ask(pynvml.nvmlDeviceGetPowerUsage)
    limit = ask(pynvml.nvmlDeviceGetEnforcedPowerLimit)
    reasons = ask(getattr(pynvml, "nvmlDeviceGetCurrentClocksEventReasons", None)
                  or pynvml.nvmlDeviceGetCurrentClocksThrottleReasons)
    return {"index": index, "util": None if util is None else int(util.gpu),
            "mem_mb": None if mem is None else round(mem.used / 2**20),
            "mem_total_mb": None if mem is None else round(mem.total / 2**20),
            "temp_c": ask(pynvml.nvmlDeviceGetTemperature, pynvml.NVML_TEMPERATURE_GPU),
            "power_w": None if power is None else round(power / 1000, 1),
            "power_limit_w": None if limit is None else round(limit / 1000, 1),
            "throttle": None if reasons is None else
            [name for bit, name in THROTTLE_NAMES.items() if int(reasons) & bit]}
