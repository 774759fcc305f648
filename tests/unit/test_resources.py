"""ResourceMonitor against real processes: rows in resources.jsonl, retarget, writes that fail,
findings once per kind; a GPU reading from a stand-in NVML."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import types

import psutil
import pytest

from pipeline.train.bottleneck import Limits
from pipeline.train.resources import RESOURCES_FILE, ResourceMonitor, read_samples, run_gpus
from pipeline.train.sampler import gpu_reading, nvml_handle

# A busy parent with a sleeping child, writing a little: a tree of two processes.
TREE = """
import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
end = time.time() + 60
with open(sys.argv[1], "wb") as f:
    while time.time() < end:
        f.write(b"x" * 65536)
        f.flush()
        x = sum(range(20000))
"""
KEYS = {"t", "up", "pid", "procs", "cpu_tree", "cpu_machine", "iowait", "cores", "rss_mb", "mem_avail_mb",
        "swap_mb", "read_mbps", "write_mbps"}


def tree_cpu(root: psutil.Process) -> float:
    """CPU seconds of a process and its children."""
    return sum(sum(p.cpu_times()[:2]) for p in [root, *root.children(recursive=True)])


@pytest.fixture
def tree(tmp_path):
    """Start a process tree (in a session of its own); yields a starter, ends every tree at teardown."""
    procs = []

    def start() -> subprocess.Popen:
        out = tmp_path / f"out-{len(procs)}.bin"
        procs.append(subprocess.Popen([sys.executable, "-c", TREE, str(out)], start_new_session=True))
        return procs[-1]

    yield start
    for p in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)
        p.wait(timeout=10)


@pytest.mark.slow  # a real process tree sampled for seconds
def test_samples_a_real_tree_every_interval(tmp_path, tree):
    proc = tree()
    root = psutil.Process(proc.pid)
    deadline = time.time() + 20
    while not root.children() and time.time() < deadline:  # let it fork its child
        time.sleep(0.05)
    monitor = ResourceMonitor(tmp_path, sample_seconds=0.5)
    monitor.start(proc.pid)
    began = time.time()
    used0 = tree_cpu(root)
    time.sleep(2.2)
    monitor.stop()
    used = tree_cpu(root) - used0
    rows = read_samples(tmp_path)
    assert len(rows) >= 2 and rows == read_samples(tmp_path / RESOURCES_FILE)
    assert all(set(r) == KEYS for r in rows)  # no GPU asked for: no `gpus` key
    assert all(r["pid"] == proc.pid for r in rows)
    assert max(r["procs"] for r in rows) == 2
    # the busy parent (its share depends on what else runs), and never more than the tree used
    assert max(r["cpu_tree"] for r in rows) > 5
    spans = [b["t"] - a["t"] for a, b in zip([{"t": began}, *rows], rows, strict=False)]
    assert sum(r["cpu_tree"] / 100 * dt for r, dt in zip(rows, spans, strict=True)) <= used * 1.05 + 0.05
    assert min(r["rss_mb"] for r in rows) > 5
    assert rows[-1]["up"] > rows[0]["up"] > 0.3
    assert all(0 <= r["cpu_machine"] <= 100 and r["mem_avail_mb"] > 0 for r in rows)
    assert all(r["write_mbps"] is None or r["write_mbps"] >= 0 for r in rows)
    assert monitor.latest() == rows[-1] and monitor.write_errors == 0 and monitor.sample_errors == 0


@pytest.mark.slow
def test_retarget_follows_the_next_attempt_and_a_gone_tree_is_sampled_empty(tmp_path, tree):
    first = tree()
    monitor = ResourceMonitor(tmp_path, sample_seconds=0.3)
    monitor.start(first.pid)
    time.sleep(0.8)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    gone = monitor.sample()  # between attempts: machine figures only
    assert gone["procs"] == 0 and gone["cpu_tree"] is None and gone["rss_mb"] is None
    second = tree()
    monitor.retarget(second.pid)
    time.sleep(0.8)
    monitor.stop()
    pids = [r["pid"] for r in read_samples(tmp_path)]
    assert first.pid in pids and pids[-1] == second.pid
    assert monitor.latest()["up"] < 1.5  # counted from the retarget


def test_a_failing_write_is_counted_not_raised(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monitor = ResourceMonitor(blocker, sample_seconds=0.5)
    monitor.start(os.getpid())
    row = monitor.sample()
    monitor.stop()
    monitor.record(row)
    assert monitor.write_errors >= 1 and monitor.latest() == row


def test_findings_wait_for_the_supervisor_once_per_kind(tmp_path):
    limits = Limits(min_samples=3, settle_s=0)
    monitor = ResourceMonitor(tmp_path, workers=2, limits=limits, raised=["swap"])
    for i in range(4):
        monitor.record({"t": 100.0 + i, "up": i, "pid": 1, "cpu_tree": 295, "cores": 16, "swap_mb": 1_000 * i,
                        "gpus": [{"index": 0, "util": 20}]})
    found = monitor.take_findings()
    assert [f.kind for f in found] == ["loader"] and monitor.take_findings() == []
    monitor.record({"t": 105.0, "up": 5, "pid": 1, "cpu_tree": 295, "cores": 16,
                    "gpus": [{"index": 0, "util": 20}]})
    assert monitor.take_findings() == []
    assert len(read_samples(tmp_path)) == 5


def test_the_gpus_of_a_run():
    assert run_gpus("ultralytics", "0,1", None) == [0, 1]
    assert run_gpus("ultralytics", "cpu", None) == [] and run_gpus("ultralytics", "mps", None) == []
    assert run_gpus("darknet", "cpu", "1") == [1] and run_gpus("darknet", "cpu", None) == []


class FakeNVML:
    """The few pynvml calls a reading makes, for a machine without a GPU; temperature fails."""

    NVML_TEMPERATURE_GPU = 0

    class NVMLError(Exception):
        pass

    def __init__(self) -> None:
        self.by_index: list[int] = []

    def nvmlInit(self) -> None:  # noqa: N802 - pynvml's names
        pass

    def nvmlDeviceGetHandleByIndex(self, index: int) -> str:  # noqa: N802
        self.by_index.append(index)
        return f"gpu{index}"

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> str:  # noqa: N802
        return uuid

    def nvmlDeviceGetUtilizationRates(self, h):  # noqa: N802
        return types.SimpleNamespace(gpu=87, memory=40)

    def nvmlDeviceGetMemoryInfo(self, h):  # noqa: N802
        return types.SimpleNamespace(used=12 * 2**30, total=80 * 2**30)

    def nvmlDeviceGetTemperature(self, h, sensor):  # noqa: N802
        raise self.NVMLError("not supported")

    def nvmlDeviceGetPowerUsage(self, h) -> int:  # noqa: N802
        return 312_456

    def nvmlDeviceGetEnforcedPowerLimit(self, h) -> int:  # noqa: N802
        return 700_000

    def nvmlDeviceGetCurrentClocksEventReasons(self, h) -> int:  # noqa: N802
        return 0x1 | 0x4 | 0x20  # idle (not a limit), power cap, thermal


def test_a_gpu_reading_and_the_cuda_index_mapping(monkeypatch):
    fake = FakeNVML()
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,GPU-abc")
    assert nvml_handle(0) == "gpu3" and nvml_handle(1) == "GPU-abc" and fake.by_index == [3]
    assert gpu_reading("gpu3", 0) == {"index": 0, "util": 87, "mem_mb": 12_288, "mem_total_mb": 81_920,
                                      "temp_c": None, "power_w": 312.5, "power_limit_w": 700.0,
                                      "throttle": ["power", "thermal"]}
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert nvml_handle(2) == "gpu2"
