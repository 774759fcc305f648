"""`bench train`: rows from real (tiny) CPU trainings through the train stage; the table,
the JSON rows and the chart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import invoke

from pipeline.errors import UserError
from pipeline.train.bench import BenchRow, make_row, parse_batches, render_table
from pipeline.train.sampler import Usage

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = Path("/usr/share/darknet/cfg/yolov3-tiny.cfg")


def test_batches_are_positive_integers():
    assert parse_batches("8, 16,32") == [8, 16, 32]
    for bad in ("8,x", "0,8", ""):
        with pytest.raises(UserError):
            parse_batches(bad)


def test_a_row_times_the_epochs_after_the_first_and_keeps_the_error():
    usage = Usage(seconds=30, peak_rss_mb=900.0, cpu_percent=95.0, gpu_percent=40.0, peak_gpu_mb=2000.0)
    records = [{"seconds": 20, "train_seconds": 15, "images": 100, "peak_memory": {"gpu_mb": 1500.0}},
               {"seconds": 10, "train_seconds": 8, "images": 100, "peak_memory": {"gpu_mb": 1600.0}}]
    row = make_row(16, records, usage, gpu=True, error=None)
    assert (row.epoch_seconds, row.images_per_second, row.peak_memory_mb) == (10, 12.5, 1600.0)
    assert row.gpu_percent == 40.0
    cpu = make_row(16, records[:1], usage, gpu=False, error="failed: out of memory")
    assert (cpu.epoch_seconds, cpu.peak_memory_mb, cpu.gpu_percent) == (20, 900.0, None)
    table = render_table([row, cpu, BenchRow(64, None, None, None, 1.0, None, "failed: oom")], "cpu")
    assert table.splitlines()[-1] == "| 64 | — | — | — | 1.0 | — | failed: oom |"


@pytest.mark.slow
@pytest.mark.skipif(not TEMPLATE.exists(), reason="needs the Debian darknet package's templates")
def test_bench_train_on_the_cpu_at_tiny_size(tmp_path):
    sets = {"work": tmp_path / "work", "source.path": tmp_path / "raw", "source.synth.classes": 3,
            "source.synth.annotated": 6, "source.synth.val": 6, "subset.spread": 2}
    args = [a for k, v in sets.items() for a in ("--set", f"{k}={v}")]
    assert invoke("run", REPO / "cfg" / "demo.yaml", *args, "--until", "configs").exit_code == 0
    out = tmp_path / "bench"
    result = invoke("bench", "train", tmp_path / "work" / "configs", "--out", out, "--batches", "2,4",
                    "--imgsz", "32", "--workers", "0", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)["rows"]
    assert [r["batch"] for r in rows] == [2, 4]
    for r in rows:
        assert set(r) == {"batch", "epoch_seconds", "images_per_second", "peak_memory_mb", "cpu_percent",
                          "gpu_percent", "error"}
        assert r["error"] is None and r["gpu_percent"] is None
        assert r["epoch_seconds"] > 0 and r["images_per_second"] > 0 and r["cpu_percent"] > 0
        assert r["peak_memory_mb"] > 100  # a torch process tree on the CPU
    for batch in (2, 4):
        state = json.loads((out / f"batch-{batch}" / "state.json").read_text())
        assert state["status"] == "finished"
    assert (out / "bench.png").read_bytes()[:4] == b"\x89PNG"
    assert len((out / "bench.md").read_text().strip().splitlines()) == 6  # title, blank, head, rule, 2 rows
    assert json.loads((out / "bench.json").read_text()) == rows
