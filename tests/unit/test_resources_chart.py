"""The resource chart and table from recorded samples (a GPU run with a restart gap, a CPU run)."""

from __future__ import annotations

from pipeline.report.resources_chart import draw_resources, markdown_table, resource_table

T0 = 1_700_000_000.0
UTIL = [0, 88, 93, 95, 97, 91, 94, 96]
MEM = [900, 11_800, 12_300, 12_400, 12_400, 12_500, 12_400, 12_600]
TREE = [140, 185, 178, 190, 182, 176, 188, 181]
AVAIL = [101_000, 99_500, 99_200, 98_900, 99_000, 98_700, 98_800, 98_600]


def gpu_run() -> list[dict]:
    rows = []
    for i in range(8):
        t = T0 + 10 * i + (300 if i >= 5 else 0)  # attempt 2 starts after a 5-minute gap
        rows.append({"t": t, "up": 10 * (i % 5), "pid": 100 if i < 5 else 200, "procs": 4,
                     "cpu_tree": TREE[i], "cpu_machine": 13.5, "iowait": 0.2, "cores": 16,
                     "rss_mb": 5_000 + 10 * i,
                     "mem_avail_mb": AVAIL[i], "swap_mb": 0, "read_mbps": 2.0 + i, "write_mbps": None,
                     "gpus": [{"index": 0, "util": UTIL[i], "mem_mb": MEM[i], "mem_total_mb": 81_559,
                               "temp_c": 60 + i, "power_w": 200.0 + 10 * i, "power_limit_w": 700.0,
                               "throttle": []}]})
    return rows


def test_the_table_has_medians_and_peaks():
    rows = {r["name"]: r for r in resource_table(gpu_run())}
    assert rows["cpu_tree"] == {"name": "cpu_tree", "label": "CPU, training (% of one core)", "unit": "%",
                                "median": 181.5, "peak": 190.0, "samples": 8}
    assert (rows["mem_avail_mb"]["median"], rows["mem_avail_mb"]["peak"]) == (98_950.0, 98_600.0)  # lowest
    assert (rows["gpu0_util"]["median"], rows["gpu0_util"]["peak"]) == (93.5, 97.0)
    assert (rows["gpu0_mem_mb"]["median"], rows["gpu0_mem_mb"]["peak"]) == (12_400.0, 12_600.0)
    assert rows["gpu0_power_w"]["peak"] == 270.0 and rows["read_mbps"]["median"] == 5.5
    assert "write_mbps" not in rows  # no sample could read it
    assert "| GPU 0 busy | 93.5 % | 97 % |" in markdown_table(list(rows.values()))


def test_a_cpu_run_has_no_gpu_rows():
    cpu = [{k: v for k, v in r.items() if k != "gpus"} for r in gpu_run()]
    assert not any(r["name"].startswith("gpu") for r in resource_table(cpu))
    assert resource_table([]) == []


def test_the_chart_is_drawn(tmp_path):
    png = draw_resources(gpu_run(), tmp_path / "summary" / "resources.png", title="run 1")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    cpu = [{k: v for k, v in r.items() if k != "gpus"} for r in gpu_run()]
    by_epoch = draw_resources(cpu, tmp_path / "cpu.png", x_of_time=lambda t: (t - T0) / 40, x_label="epoch")
    empty = draw_resources([], tmp_path / "empty.png")
    assert by_epoch.stat().st_size > 5_000 and empty.stat().st_size > 5_000
