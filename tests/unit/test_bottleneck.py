"""Bottleneck rules over recorded windows of resource samples (12 samples, 10 s apart, after
the settling time): one case per kind, a healthy GPU run and healthy CPU runs raising none."""

from __future__ import annotations

from pipeline.train.bottleneck import Bottleneck, Limits, Once, check, window

T0 = 1_700_000_000.0
# A healthy single-GPU Ultralytics run on a 16-core machine (--workers 2), as recorded.
GPU_UTIL = [96, 94, 97, 95, 93, 98, 96, 95, 97, 94, 96, 95]
TREE = [182, 175, 190, 186, 179, 181, 188, 177, 184, 180, 183, 185]


def gpu(util: float = 95, mem_mb: float = 12_400, temp: float = 64, power: float = 310,
        throttle: list[str] | None = None, index: int = 0) -> dict:
    return {"index": index, "util": util, "mem_mb": mem_mb, "mem_total_mb": 81_559, "temp_c": temp,
            "power_w": power, "power_limit_w": 700.0, "throttle": throttle or []}


def samples(n: int = 12, up0: float = 200.0, pid: int = 4242, **columns) -> list[dict]:
    """n samples of a healthy GPU run; `columns` replace a key with one value per sample."""
    rows = []
    for i in range(n):
        row = {"t": T0 + 10 * i, "up": up0 + 10 * i, "pid": pid, "procs": 4, "cpu_tree": TREE[i % 12],
               "cpu_machine": 14.0, "iowait": 0.3, "cores": 16, "rss_mb": 5_210.0, "mem_avail_mb": 98_000,
               "swap_mb": 0, "read_mbps": 1.5, "write_mbps": 0.4, "gpus": [gpu(GPU_UTIL[i % 12])]}
        for key, values in columns.items():
            row[key] = values[i]
        rows.append(row)
    return rows


def kinds(found: list[Bottleneck]) -> list[str]:
    return [f.kind for f in found]


def test_a_healthy_gpu_run_raises_nothing():
    assert check(samples(), workers=2) == []


def test_idle_gpu_and_busy_workers_blame_the_data_loader():
    utils = [30, 42, 35, 28, 40, 37, 33, 36, 31, 39, 34, 38]
    tree = [292, 296, 288, 299, 294, 291, 297, 290, 295, 293, 298, 289]
    found = check(samples(gpus=[[gpu(u)] for u in utils], cpu_tree=tree), workers=2)
    assert kinds(found) == ["loader"]
    message = found[0].message
    assert message.startswith("the data loader is the bottleneck: GPU 36% busy, CPU 98% of the 3 cores")
    assert "(2 workers + the main process)" in message
    assert "raise --workers (now 2, 16 cores here) or use cache=ram" in message
    assert "cache=ram" not in check(samples(gpus=[[gpu(u)] for u in utils], cpu_tree=tree), workers=2,
                                    cache="ram")[0].message


def test_workers_zero_the_main_process_loads():
    found = check(samples(gpus=[[gpu(20)]] * 12, cpu_tree=[99] * 12), workers=0)
    assert kinds(found) == ["loader"]
    assert "the main process loading images itself" in found[0].message and "(now 0" in found[0].message


def test_every_core_used_more_workers_cannot_help():
    found = check(samples(gpus=[[gpu(25)]] * 12, cpu_tree=[780] * 12, cores=[8] * 12), workers=8)
    assert kinds(found) == ["cpu"]
    assert "the training uses 7.8 of 8 cores; more workers cannot help" in found[0].message


def test_a_busy_machine_starves_the_loader():
    found = check(samples(gpus=[[gpu(30)]] * 12, cpu_tree=[150] * 12, cpu_machine=[97] * 12), workers=2)
    assert kinds(found) == ["cpu"] and "other processes take the cores" in found[0].message


def test_darknet_has_no_workers_option():
    found = check(samples(gpus=[[gpu(20)]] * 12, cpu_tree=[1_500] * 12), backend="darknet")
    assert kinds(found) == ["cpu"]
    assert "--workers" not in found[0].message and "width/height in the cfg" in found[0].message
    assert check(samples(gpus=[[gpu(20)]] * 12, cpu_tree=[300] * 12), backend="darknet") == []


def test_gpu_memory_near_full():
    found = check(samples(gpus=[[gpu(mem_mb=79_800 + 10 * i)] for i in range(12)]), workers=2)
    assert kinds(found) == ["gpu-memory"]
    assert found[0].message.startswith("GPU 0 memory nearly full: 78.0 of 79.6 GB (98%, device-wide)")


def test_thermal_and_power_throttling():
    heat = [["thermal"] if i % 3 else [] for i in range(12)]  # 8 of 12
    found = check(samples(gpus=[[gpu(temp=88, throttle=h)] for h in heat]), workers=2)
    assert kinds(found) == ["thermal"] and "67% of the last 120 s, 88 °C" in found[0].message
    found = check(samples(gpus=[[gpu(throttle=["power"])]] * 12), workers=2)
    assert kinds(found) == ["power"] and "power limit (700 W) in 100%" in found[0].message
    few = [["thermal"] if i < 3 else [] for i in range(12)]
    assert check(samples(gpus=[[gpu(throttle=h)] for h in few]), workers=2) == []


def test_reading_from_disk_with_idle_cores_and_gpu():
    reads = [118, 125, 131, 122, 119, 127, 124, 120, 129, 121, 126, 123]
    found = check(samples(gpus=[[gpu(15)]] * 12, cpu_tree=[45] * 12, read_mbps=reads,
                          iowait=[31.0] * 12), workers=2)
    assert kinds(found) == ["disk"]
    assert found[0].message.startswith("reading from disk is the bottleneck: 124 MB/s read while the "
                                       "training uses 0.5 of 16 cores, GPU 15% busy, CPU waiting on I/O 31%")


def test_growing_swap():
    swap = [0, 40, 120, 210, 300, 380, 460, 530, 610, 700, 790, 880]
    found = check(samples(swap_mb=swap, mem_avail_mb=[400] * 12), workers=2)
    assert kinds(found) == ["swap"]
    assert found[0].message.startswith("the machine is swapping: swap 880 MB, +880 MB in 110 s, 400 MB")
    assert check(samples(swap_mb=[2_000] * 12), workers=2) == []  # old swap, not growing


def test_healthy_cpu_runs_raise_nothing():
    cpu = [1_512, 1_498, 1_530, 1_507, 1_521, 1_515, 1_502, 1_526, 1_509, 1_518, 1_504, 1_523]
    for workers in (0, 2, 8):
        assert check(samples(gpus=[None] * 12, cpu_tree=cpu, cpu_machine=[96] * 12), workers=workers) == []
    # one busy core of 16 with --workers 0: no loader verdict without GPU figures (see the module doc)
    assert check(samples(gpus=[[]] * 12, cpu_tree=[99] * 12), workers=0) == []


def test_the_window_waits_for_settling_and_enough_samples():
    idle = {"gpus": [[gpu(10)]] * 12, "cpu_tree": [298] * 12}
    assert check(samples(up0=0, **idle), workers=2) == []  # the first 3 minutes of an attempt
    assert check(samples(n=5, **idle), workers=2) == []  # fewer than min_samples
    assert kinds(check(samples(n=5, **idle), workers=2, limits=Limits(min_samples=3))) == ["loader"]
    # a new attempt (another root pid) starts its window afresh
    rows = samples(**idle)[:8] + samples(pid=5151, up0=0)[:4]
    assert window(rows, Limits(settle_s=0)) == []


def test_each_kind_is_raised_once():
    once = Once(raised=["swap"])
    loader, swap = Bottleneck("loader", "a"), Bottleneck("swap", "b")
    assert once.new([loader, swap]) == [loader]
    assert once.new([Bottleneck("loader", "again"), Bottleneck("disk", "c")]) == [Bottleneck("disk", "c")]
    assert once.raised == {"loader", "swap", "disk"}


def test_an_epoch_that_mostly_waits_for_its_loader_is_a_loader_bottleneck():
    from pipeline.train.bottleneck import loader_wait_rule

    found = loader_wait_rule(30.0, 10.0, 0)
    assert found.kind == "loader" and "waited for images 75% of the epoch" in found.message
    assert "raise --workers (now 0)" in found.message
    assert loader_wait_rule(3.0, 10.0, 2) is None and loader_wait_rule(None, 10.0, 2) is None
