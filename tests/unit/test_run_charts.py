"""What the summarize charts draw: capped annotations, integer ticks, no matplotlib warnings,
and a comparison without an empty mAP panel."""

from __future__ import annotations

import warnings

import pytest

from pipeline.logs.darknet import parse_darknet
from pipeline.logs.rows import Event, LogStats, MetricRow
from pipeline.report.chart import (
    MAX_MARKS,
    Series,
    comparison_figure,
    pick_evenly,
    pyplot,
    run_figure,
)
from pipeline.report.summary import SummaryBuilder

RESTARTS = 900


def restart_log(path, restarts: int = RESTARTS, segment: int = 12, back: int = 2) -> None:
    """A pjreddie log resumed `restarts` times (each resume `back` steps before the last
    step), its learning rate changing every 20 segments."""
    lines, step = ["Learning Rate: 0.001, Momentum: 0.9, Decay: 0.0005\n"], 0
    for r in range(restarts + 1):
        start = max(step - back, 0) + 1
        lr = 0.001 if (r // 20) % 2 == 0 else 0.0005
        for step in range(start, start + segment):
            loss = 5.0 / (1 + step / 1000)
            lines.append(f"{step}: {loss:.6f}, {loss:.6f} avg, {lr:.6f} rate, 1.0 seconds, "
                         f"{step * 64} images\n")
    path.write_text("".join(lines))


def _build(items):
    b, series = SummaryBuilder(), Series()
    for item in items:
        b.add(item)
        series.add(item)
    return b.finish(LogStats(format="darknet-pjreddie"), name="run", source="t.log"), series, b


@pytest.fixture(scope="module")
def restarted(tmp_path_factory):
    path = tmp_path_factory.mktemp("restarts") / "train.log"
    restart_log(path)
    return _build(parse_darknet(str(path), LogStats()))


def test_a_log_with_900_restarts_annotates_at_most_the_cap(restarted):
    summary, series, builder = restarted
    assert summary.restarts == RESTARTS and len(series.restarts) == RESTARTS
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = run_figure(series, summary, builder.lr_points)
    ax = fig.axes[0]
    restart_lines = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    assert len(restart_lines) == MAX_MARKS
    assert f"restart ({MAX_MARKS} of {RESTARTS} shown)" in [
        t.get_text() for t in ax.get_legend().get_texts()]
    labels = [t.get_text() for t in ax.texts if t.get_text().startswith("lr 0")]
    assert 0 < len(labels) <= MAX_MARKS
    [note] = [t.get_text() for t in ax.texts if "not labelled" in t.get_text()]
    plateaus = len(ax.patches)  # one shaded span per plateau
    assert plateaus > MAX_MARKS and note == f"{plateaus - len(labels)} of {plateaus} lr plateaus not labelled"
    pyplot().close(fig)


def test_integer_ticks_and_no_warning_for_a_zero_loss_on_a_log_axis():
    rows = [MetricRow(step=i, loss=1000.0 / i**2 if i != 5 else 0.0,
                      avg_loss=1000.0 / i**2 if i != 5 else 0.0, lr=0.001, seconds=1.0,
                      images=64 * i) for i in range(1, 12)]
    summary, series, builder = _build(rows)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "non-positive ylim on a log-scaled axis" was one
        fig = run_figure(series, summary, builder.lr_points)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log" and ax.get_ylim()[0] > 0
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks)
    pyplot().close(fig)


def test_comparison_without_map_has_one_panel_and_says_so():
    one, s1, _ = _build([MetricRow(step=i, loss=5 / i, avg_loss=5 / i, lr=0.001, seconds=1.0,
                                   images=64 * i) for i in range(1, 30)])
    a = (s1, one)
    fig = comparison_figure([a, a])
    assert len(fig.axes) == 1
    title = fig.axes[0].get_title()
    assert "no run logged mAP" in title and "NaN" not in title
    pyplot().close(fig)
    rows = [MetricRow(step=i, loss=5 / i, avg_loss=5 / i if i < 20 else float("nan"),
                      lr=0.001, seconds=1.0, images=64 * i, map50=0.1 if i == 10 else None)
            for i in range(1, 30)]
    items = [*rows[:19], Event(kind="nan", step=20, line=1), *rows[19:]]
    two, s2, _ = _build(items)
    fig = comparison_figure([a, (s2, two)])
    assert len(fig.axes) == 2 and "dotted lines: NaN onsets" in fig.axes[0].get_title()
    pyplot().close(fig)


def test_pick_evenly_keeps_first_and_last():
    assert pick_evenly(list(range(10)), 3) == [0, 4, 9]
    assert pick_evenly([1, 2], 5) == [1, 2]
    assert len(pick_evenly(list(range(900)), MAX_MARKS)) == MAX_MARKS
