"""Summary numbers (hand-computed), projection, verdicts, report text and charts."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from pipeline.logs import PARSERS
from pipeline.logs.rows import Event, LogStats, MapBlock, MetricRow
from pipeline.report.chart import Series, draw_comparison, draw_run
from pipeline.report.markdown import duration, facts, pct, render_report, size
from pipeline.report.plot import segments
from pipeline.report.summary import Summary, SummaryBuilder, lr_plateaus

LOGS = Path(__file__).parents[1] / "data" / "logs"


def build(items, fmt="darknet-alexeyab", **kw):
    b, series = SummaryBuilder(), Series()
    for item in items:
        b.add(item)
        series.add(item)
    stats = LogStats(format=fmt, lines=len(items))
    return b.finish(stats, name="run", source="train.log", **kw), series, b


def darknet_rows(n=10, sec=2.0, batch=64, lr=0.001):
    return [MetricRow(step=i, loss=10.0 / i, avg_loss=12.0 / i, lr=lr, seconds=sec,
                      images=batch * i) for i in range(1, n + 1)]


def test_projection_speed_and_loss_numbers():
    s, _, _ = build(darknet_rows(), max_steps=100, max_steps_source="--max-batches")
    assert (s.first_step, s.last_step, s.steps_logged) == (1, 10, 10)
    assert (s.first_loss, s.final_loss, s.min_loss, s.min_loss_step) == (12.0, 1.2, 1.2, 10)
    assert s.train_seconds == 20.0 and s.seconds_per_step == 2.0
    assert s.images_per_second == 32.0  # 64 images per 2 s
    assert (s.remaining_steps, s.projected_seconds_left, s.projected_total_seconds) == (
        90, 180.0, 200.0)
    assert s.loss_verdict == "fell from 12 to 1.2 (min 1.2 at iteration 10) and stayed down"
    assert s.ended == "log ends at iteration 10 (stopped, cut, or still running)"


def test_projection_uses_the_last_100_steps():
    rows = darknet_rows(150, sec=1.0)
    for r in rows[50:]:
        r.seconds = 3.0
    s, _, _ = build(rows, max_steps=250)
    assert s.seconds_per_step == 3.0 and s.projected_seconds_left == 300.0
    assert s.train_seconds == 50 * 1.0 + 100 * 3.0


def test_best_and_final_map_with_blocks():
    rows = darknet_rows(4)
    rows[1].map50, rows[3].map50 = 0.5, 0.4
    block = MapBlock(step=2, line=9, iou_threshold=0.5, map=0.5)
    s, series, _ = build([rows[0], rows[1], block, rows[2], rows[3]])
    assert (s.best_map50, s.best_map50_step, s.final_map50, s.final_map50_step) == (0.5, 2, 0.4, 4)
    assert s.best_map_block == block and s.map_evaluations == 1
    assert [m[:2] for m in series.maps] == [(2, 0.5), (4, 0.4)]


def test_nan_restart_and_rise_verdicts():
    rows = darknet_rows(6)
    rows[4].avg_loss = rows[5].avg_loss = math.nan
    nan = Event(kind="nan", step=5, line=30)
    s, series, _ = build([*rows[:4], nan, *rows[4:]])
    assert (s.nan_events, s.nan_steps, s.first_nan_step) == (1, 2, 5)
    assert s.loss_verdict == "turned nan/inf at iteration 5"
    assert series.nans == [5]
    rise = darknet_rows(5)
    rise[-1].avg_loss = 11.0
    restart = Event(kind="restart", step=2, line=40, detail="iteration 5 -> 2")
    s, series, _ = build([*rise, restart, MetricRow(step=2, avg_loss=11.5)])
    assert s.loss_verdict.endswith(", then rose again")
    assert (s.restarts, s.restart_steps) == (1, [2])
    assert segments(series.x) == [(0, 5), (5, 6)]  # the line breaks where the step goes back


def test_flat_loss_and_empty_run():
    flat = [MetricRow(step=i, avg_loss=5.0) for i in range(1, 4)]
    assert build(flat)[0].loss_verdict == "did not fall: 5 at the start, 5 at the end"
    s, _, _ = build([Event(kind="error", step=0, line=115, detail="Error: bad cfg")])
    assert s.loss_verdict == "no loss values in the log"
    assert s.ended == "error: Error: bad cfg" and s.errors == ["line 115: Error: bad cfg"]


def test_lr_plateaus_skip_ramps_and_zero():
    points = [(1, 0.0), (150, 1e-5)] + [(i, i * 1e-6) for i in range(151, 1000)] + [
        (1000, 0.001), (8000, 0.0001)]
    assert lr_plateaus(points, 10000, 200) == [(1000, 8000, 0.001), (8000, 10000, 0.0001)]
    assert lr_plateaus([(1, 0.01), (2, 0.009), (3, 0.008)], 3, 2) == []
    burn_in = [(1, 0.0), (150, 1e-6), (200, 2e-6), (225, 3e-6), (1000, 0.001)]  # WBC's
    assert lr_plateaus(burn_in, 1028, 20) == [(1000, 1028, 0.001)]


def test_series_thins_but_keeps_map_points(monkeypatch):
    from pipeline.report import chart

    monkeypatch.setattr(chart, "LIMIT", 50)
    rows = darknet_rows(1000)
    for r in rows[::100]:
        r.map50 = 0.3
    _, series, _ = build(rows)
    assert len(series.x) <= 100 and series.stride >= 8
    assert len(series.maps) == 10


def test_fire_log_summary_hand_checked():
    items, stats = [], LogStats()
    items = list(PARSERS["darknet"](str(LOGS / "fire-detection_log.txt"), stats))
    b = SummaryBuilder()
    for x in items:
        b.add(x)
    s = b.finish(stats, name="fire", source="fire.log", max_steps=10000, max_steps_source="x")
    assert (s.best_map50, s.best_map50_step, s.final_map50) == (0.481172, 6400, 0.481172)
    assert (s.min_loss, s.min_loss_step, s.final_loss) == (1.891789, 6325, 1.997401)
    assert s.train_seconds == pytest.approx(16544.989)  # awk sum of the seconds field
    assert s.images_per_second == pytest.approx(409728 / 16544.989)
    assert s.seconds_per_step == pytest.approx(2.24097, abs=1e-5)  # last 100 iterations
    assert s.remaining_steps == 3598 and s.engine_hours_left == 61.903302
    assert s.lr_schedule == [(1000, 0.001)]  # burn-in ramp, then one plateau
    assert [c.name for c in s.best_map_block.classes] == ["fire", "smoke"]


def test_wbc_and_failed_run_endings():
    for name, expected in (("WBC-detection_training_log.txt", "interrupted (^C) after iteration 1028"),
                           ("maskDetectionYolov3_train_log.txt", "error: Error: l.outputs ==")):
        stats = LogStats()
        b = SummaryBuilder()
        for x in PARSERS["darknet"](str(LOGS / name), stats):
            b.add(x)
        assert b.finish(stats, name="r", source=name).ended.startswith(expected)


@pytest.mark.parametrize(("seconds", "text"), [
    (None, "—"), (42, "42 s"), (5340, "89 min"), (5400, "1 h 30 min"), (16544.989, "4 h 36 min"),
    (8537 * 3600, "8,537 h 00 min"), (float("inf"), "—"), (float("nan"), "—")])
def test_duration(seconds, text):
    assert duration(seconds) == text


def test_formatting_helpers():
    assert pct(0.481172) == "48.12 %" and pct(None) == "—"
    assert size(1632282) == "1.6 MB" and size(2517) == "2.5 kB" and size(12) == "12 B"


def test_report_single_and_comparison():
    s1, _, _ = build(darknet_rows(), max_steps=100, max_steps_source="--max-batches")
    labels = dict(facts(s1))
    assert labels["projected finish"] == ("100 iterations (--max-batches): 90 left ≈ 3 min, "
                                          "whole run ≈ 3 min")
    one = render_report([s1])
    assert one.startswith("# Training summary: run") and "![chart](chart.png)" in one
    s2 = Summary(name="other|run", source="results.csv", format="ultralytics-11", unit="epoch")
    two = render_report([s1, s2])
    assert "| | run | other\\|run |" in two and "| trained | 10 iterations" in two


def test_charts_are_pngs(tmp_path):
    rows = darknet_rows(300)
    rows[150].map50 = 0.2
    items = [*rows[:200], Event(kind="nan", step=201, line=1), *rows[200:]]
    s, series, b = build(items)
    draw_run(series, s, b.lr_points, tmp_path / "one.png")
    draw_comparison([(series, s), (series, s)], tmp_path / "two.png")
    for name in ("one.png", "two.png"):
        data = (tmp_path / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
