"""Resource use of a process tree while it works: peak RSS, CPU share, GPU utilisation.

A background thread samples this process and all its descendants (the training's
supervisor, trainer and data-loader workers) every `interval` seconds with psutil. RSS
is summed over the tree, so pages shared by forked workers count once per process: the
figure is an upper bound of what the tree needs. CPU is the tree's CPU time over the
wall time and all cores (100 % = every core busy). GPU utilisation and memory come from
NVML (the tree's own processes) when a GPU index is given.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

import psutil


@dataclass(frozen=True)
class Usage:
    """What a `TreeSampler` saw; None where a figure does not apply."""

    seconds: float
    peak_rss_mb: float
    cpu_percent: float
    gpu_percent: float | None
    peak_gpu_mb: float | None


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
        self._cpu: dict[int, float] = {}
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
            self._nvml = _nvml_handle(self.gpu_index)
            self._gpu_base = _gpu_used(self._nvml) if self._nvml is not None else 0
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
        try:
            procs = [self._root, *self._root.children(recursive=True)]
        except psutil.Error:
            return
        rss = 0
        for p in procs:
            try:
                with p.oneshot():
                    rss += p.memory_info().rss
                    t = p.cpu_times()
                    self._cpu[p.pid] = t.user + t.system
            except psutil.Error:  # a worker that just ended: its last sample stands
                continue
        self._peak_rss = max(self._peak_rss, rss)
        if self._nvml is not None:
            self._sample_gpu({p.pid for p in procs})

    def _sample_gpu(self, pids: set[int]) -> None:
        import pynvml

        try:
            self._gpu_samples.append(pynvml.nvmlDeviceGetUtilizationRates(self._nvml).gpu)
            ours = [p.usedGpuMemory or 0 for p in pynvml.nvmlDeviceGetComputeRunningProcesses(self._nvml)
                    if p.pid in pids]
            # In a container NVML may report host pids: then the device's growth since start.
            used = sum(ours) if ours else _gpu_used(self._nvml) - self._gpu_base
        except pynvml.NVMLError:
            return
        self._peak_gpu = max(self._peak_gpu, used)


def _gpu_used(handle) -> int:
    """Bytes in use on the device."""
    import pynvml

    return int(pynvml.nvmlDeviceGetMemoryInfo(handle).used)


def _nvml_handle(index: int):
    """An NVML handle for GPU `index`, or None when NVML is not there."""
    try:
        import pynvml

        pynvml.nvmlInit()
        return pynvml.nvmlDeviceGetHandleByIndex(index)
    except Exception:  # no driver, no package, no such GPU: GPU figures stay None
        return None
