"""What limits a training, read from a window of resource samples (RUN/resources.jsonl).

Pure functions: `check(samples, ...)` returns a `Bottleneck(kind, message)` for each resource
that holds the run back over the recent window (the keys of a sample are documented in
pipeline/train/resources.py). Each rule looks at medians over the window, so one odd sample
never raises a finding. Kinds:

- `loader`: the GPUs are mostly idle while the training's processes use nearly all the cores
  the data loader may use (Ultralytics: `--workers` per GPU plus the main process); raising
  `--workers` helps.
- `cpu`: the same idle GPUs, but the cores themselves are used up (by the training or, when
  the machine is busy, by something else): more workers cannot help.
- `disk`: a high read rate with idle cores (and idle GPUs, on a GPU run): the images come off
  the disk too slowly.
- `gpu-memory`: a GPU's memory nearly full (device-wide, as NVML sees it).
- `thermal` / `power`: a GPU's clocks lowered for heat / to stay under its power limit.
- `swap`: the machine's swap in use and growing.

CPU-only runs: `loader` and `cpu` are GPU rules only. On the CPU the cores both load the
images and run the model, so a saturated tree is what a healthy CPU run looks like; what would
tell a loading bottleneck apart is the time the trainer waits for each batch, which the worker
does not measure. A CPU run can still raise `disk`, `swap`.

`Once` remembers which kinds were raised, so each kind is said once per run.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from statistics import median

THERMAL = ("thermal", "hw_thermal", "hw_slowdown")
POWER = ("power", "power_brake")


@dataclass(frozen=True)
class Limits:
    """Thresholds and window of the rules (what the CLI may expose as options)."""

    window_s: float = 120.0  # the recent samples looked at
    min_samples: int = 6  # fewer in the window: no finding yet
    settle_s: float = 180.0  # seconds after an attempt's start left out (model build, label scan)
    gpu_idle: float = 50.0  # median GPU utilisation (%) under this: the GPU waits
    cpu_busy: float = 0.85  # tree CPU at this share of the cores it may use: saturated
    machine_busy: float = 90.0  # machine CPU (% of all cores) at which the machine is saturated
    mem_full: float = 0.95  # GPU memory used / total
    throttle_share: float = 0.5  # share of the window's samples with a throttle reason
    disk_mbps: float = 20.0  # median read rate (MB/s) that counts as heavy reading
    disk_cpu: float = 0.5  # ... while the tree uses under this share of its cores
    swap_growth_mb: float = 256.0  # swap growth over the window
    loader_wait: float = 0.4  # share of an epoch's training loop spent waiting for the next batch


@dataclass(frozen=True)
class Bottleneck:
    """One resource that limits the run: `kind` (see the module doc) and a one-line message."""

    kind: str
    message: str


class Once:
    """Remembers raised kinds: `new(findings)` keeps only the kinds not said before."""

    def __init__(self, raised: Iterable[str] = ()) -> None:
        self.raised: set[str] = set(raised)

    def new(self, findings: Iterable[Bottleneck]) -> list[Bottleneck]:
        """The findings whose kind is new (and marks them raised)."""
        fresh = []
        for f in findings:
            if f.kind not in self.raised:
                self.raised.add(f.kind)
                fresh.append(f)
        return fresh


def window(samples: list[dict], limits: Limits, settled: bool = True) -> list[dict]:
    """The samples of the last `window_s` seconds of the latest attempt (with `settled`, not
    its first `settle_s` seconds); [] when fewer than `min_samples`."""
    if not samples:
        return []
    last = samples[-1]
    chosen = [s for s in samples if s.get("t", 0) >= last.get("t", 0) - limits.window_s
              and s.get("pid") == last.get("pid")
              and (not settled or (s.get("up") or 0) >= limits.settle_s)]
    return chosen if len(chosen) >= limits.min_samples else []


def check(samples: list[dict], *, backend: str = "ultralytics", workers: int | None = None,
          cache: str | None = None, limits: Limits | None = None) -> list[Bottleneck]:
    """Every rule over the recent window; the findings (none for a healthy run).

    Example: `check(samples, workers=2)` -> [Bottleneck("loader", "the data loader is ...")].
    """
    limits = limits or Limits()
    found = [_cpu_rule(samples, backend, workers, cache, limits), _disk_rule(samples, backend, limits),
             *_gpu_memory_rule(samples, limits), *_throttle_rule(samples, limits),
             _swap_rule(samples, backend, limits)]
    return [f for f in found if f is not None]


def loader_wait_rule(load_wait: float | None, compute: float | None, workers: int | None,
                     limits: Limits | None = None) -> Bottleneck | None:
    """`loader` from one Ultralytics epoch's own timing, on any device: the training loop
    waited for the next batch for more than `loader_wait` of its time (the worker measures
    the gap between one batch's end and the next one's start). Example:
    `loader_wait_rule(30.0, 10.0, 0)` -> Bottleneck("loader", "the data loader is ... 75% ...")."""
    limits = limits or Limits()
    if load_wait is None or compute is None or load_wait + compute <= 0:
        return None
    share = load_wait / (load_wait + compute)
    if share <= limits.loader_wait:
        return None
    hint = f"raise --workers (now {workers})" if workers is not None else "raise --workers"
    total = load_wait + compute
    return Bottleneck("loader", f"the data loader is the bottleneck: the training loop waited for images "
                                f"{share:.0%} of the epoch ({load_wait:.1f} s of {total:.1f} s); "
                                f"{hint}, use cache=ram, or store smaller images")


def _med(w: list[dict], key: str) -> float | None:
    """Median of a numeric key over the window; None when no sample has it."""
    values = [s[key] for s in w if isinstance(s.get(key), (int, float))]
    return median(values) if values else None


def _gpu_util(w: list[dict]) -> float | None:
    """Median over the window of the mean utilisation of the run's GPUs."""
    means = []
    for s in w:
        utils = [g["util"] for g in s.get("gpus") or [] if isinstance(g.get("util"), (int, float))]
        if utils:
            means.append(sum(utils) / len(utils))
    return median(means) if means else None


def _cores(w: list[dict]) -> int:
    """Usable cores from the newest sample."""
    return int(w[-1].get("cores") or os.cpu_count() or 1)


def _cpu_rule(samples: list[dict], backend: str, workers: int | None, cache: str | None,
              limits: Limits) -> Bottleneck | None:
    """`loader` or `cpu`: GPUs mostly idle while the CPU side is saturated (GPU runs only)."""
    w = window(samples, limits)
    gpu, tree, machine = _gpu_util(w), _med(w, "cpu_tree"), _med(w, "cpu_machine")
    if gpu is None or tree is None or gpu >= limits.gpu_idle:
        return None
    cores = _cores(w)
    ngpu = max(len(w[-1].get("gpus") or []), 1)
    can_use = min(cores, ngpu * (workers + 1)) if workers is not None else cores
    used = tree / 100
    head = f"GPU {gpu:.0f}% busy"
    ram = "" if str(cache).lower() in ("ram", "true") or backend != "ultralytics" else " or use cache=ram"
    if used >= limits.cpu_busy * can_use and workers is not None and can_use < cores:
        per_gpu = " per GPU" if ngpu > 1 else ""
        who = "the main process loading images itself" if workers == 0 else \
            f"{workers} worker{'s' if workers != 1 else ''} + the main process{per_gpu}"
        return Bottleneck("loader", f"the data loader is the bottleneck: {head}, CPU "
                                 f"{100 * used / can_use:.0f}% of the {can_use} cores it may use ({who}); "
                                 f"raise --workers (now {workers}, {cores} cores here){ram}")
    if used >= limits.cpu_busy * can_use:
        more = "more workers cannot help: " if workers is not None else ""
        size = "a smaller --imgsz, lighter augmentation" if backend == "ultralytics" else \
            "a smaller width/height in the cfg"
        return Bottleneck("cpu", f"the CPU is the bottleneck: {head}, the training uses {used:.1f} of "
                              f"{cores} cores; {more}{size}{ram.replace(' or use', ',')} or more cores")
    if machine is not None and machine >= limits.machine_busy:
        return Bottleneck("cpu", f"the CPU is the bottleneck: {head}, the machine's CPU {machine:.0f}% busy "
                              f"while the training uses {used:.1f} of {cores} cores: other processes "
                              "take the cores the data loader needs")
    return None


def _disk_rule(samples: list[dict], backend: str, limits: Limits) -> Bottleneck | None:
    """`disk`: heavy reading while the cores (and the GPUs, if any) mostly wait."""
    w = window(samples, limits)
    read, tree = _med(w, "read_mbps"), _med(w, "cpu_tree")
    if read is None or tree is None or read < limits.disk_mbps:
        return None
    cores, gpu = _cores(w), _gpu_util(w)
    if tree / 100 >= limits.disk_cpu * cores or (gpu is not None and gpu >= limits.gpu_idle):
        return None
    iowait = _med(w, "iowait")
    where = f", GPU {gpu:.0f}% busy" if gpu is not None else ""
    wait = f", CPU waiting on I/O {iowait:.0f}%" if iowait else ""
    cache = "cache=ram if the images fit in memory, or " if backend == "ultralytics" else ""
    return Bottleneck("disk", f"reading from disk is the bottleneck: {read:.0f} MB/s read while the "
                           f"training uses {tree / 100:.1f} of {cores} cores{where}{wait}; use {cache}"
                           "a copy of the dataset on a faster local disk")


def _per_gpu(w: list[dict]) -> dict[int, list[dict]]:
    """The window's GPU readings by GPU index."""
    out: dict[int, list[dict]] = {}
    for s in w:
        for g in s.get("gpus") or []:
            out.setdefault(g.get("index", 0), []).append(g)
    return out


def _gpu_memory_rule(samples: list[dict], limits: Limits) -> list[Bottleneck]:
    """`gpu-memory`: a GPU whose memory stays nearly full."""
    found = []
    for index, readings in _per_gpu(window(samples, limits)).items():
        shares = [g["mem_mb"] / g["mem_total_mb"] for g in readings if g.get("mem_mb") is not None
                  and g.get("mem_total_mb")]
        if shares and median(shares) >= limits.mem_full:
            last = readings[-1]
            found.append(Bottleneck("gpu-memory", (
                f"GPU {index} memory nearly full: {last['mem_mb'] / 1024:.1f} of "
                f"{last['mem_total_mb'] / 1024:.1f} GB ({100 * median(shares):.0f}%, device-wide); "
                "an out-of-memory crash is close: lower --batch or --imgsz")))
            break
    return found


def _throttle_rule(samples: list[dict], limits: Limits) -> list[Bottleneck]:
    """`thermal` / `power`: a GPU whose clocks are lowered in most of the window."""
    found: dict[str, Bottleneck] = {}
    for index, readings in _per_gpu(window(samples, limits, settled=False)).items():
        known = [g for g in readings if g.get("throttle") is not None]
        if not known:
            continue
        thermal = sum(1 for g in known if set(g["throttle"]) & set(THERMAL)) / len(known)
        power = sum(1 for g in known if set(g["throttle"]) & set(POWER)) / len(known)
        temps = [g["temp_c"] for g in known if g.get("temp_c") is not None]
        if thermal >= limits.throttle_share and "thermal" not in found:
            temp = f", {max(temps)} °C" if temps else ""
            found["thermal"] = Bottleneck("thermal", (
                f"GPU {index} is slowed down for heat in {100 * thermal:.0f}% of the last "
                f"{limits.window_s:.0f} s{temp}: its clocks are lowered; check its cooling and airflow"))
        if power >= limits.throttle_share and "power" not in found:
            limit = known[-1].get("power_limit_w")
            at = f" ({limit:.0f} W)" if limit else ""
            found["power"] = Bottleneck("power", f"GPU {index} is held at its power limit{at} in "
                                              f"{100 * power:.0f}% of the last {limits.window_s:.0f} s: its "
                                              "clocks are lowered; usual under full load unless the limit "
                                              "was lowered (nvidia-smi -q -d POWER)")
    return list(found.values())


def _swap_rule(samples: list[dict], backend: str, limits: Limits) -> Bottleneck | None:
    """`swap`: the machine's swap in use and growing over the window."""
    w = window(samples, limits, settled=False)
    swaps = [s["swap_mb"] for s in w if isinstance(s.get("swap_mb"), (int, float))]
    if len(swaps) < 2 or swaps[-1] - swaps[0] < limits.swap_growth_mb:
        return None
    avail = w[-1].get("mem_avail_mb")
    left = f", {avail:.0f} MB of memory available" if isinstance(avail, (int, float)) else ""
    fix = "lower --workers or --batch, or cache=disk instead of cache=ram" if backend == "ultralytics" \
        else "lower the batch in the cfg or stop other programs"
    grew = swaps[-1] - swaps[0]
    return Bottleneck("swap", f"the machine is swapping: swap {swaps[-1]:.0f} MB, +{grew:.0f} MB "
                           f"in {w[-1]['t'] - w[0]['t']:.0f} s{left} (training RSS "
                           f"{w[-1].get('rss_mb') or 0:.0f} MB); {fix}, before it slows to a crawl")
