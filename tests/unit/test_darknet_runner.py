"""The darknet runner's pure parts per fork: iteration and -map lines (hank-ai's coloured ones
written from the facts in shared/research/darknet-forks.md §1-2), command lines, the NaN
remedy, the checkpoint float scan."""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest

from pipeline.darknet.backend import finite_floats, nan_remedy
from pipeline.darknet.runner import parse_iteration, parse_map, train_command

HANK = ("\x1b]2;27/150: loss=nan time=45 seconds\x07\x1b[1;37m27\x1b[0m: loss=\x1b[1;31m-nan\x1b[0m, "
        "avg loss=\x1b[1;31mnan\x1b[0m, last=none, best=none, mAP=100, rate=0.00261000, load 4=1.2 "
        "milliseconds, train=330.2 milliseconds, 108 images, time remaining=45 seconds")
HANK_V2 = "12: loss=5.123, avg loss=5.456, rate=0.001000, 2.1 seconds, 48 images, time remaining=3 minutes"


@pytest.mark.parametrize("line, expected", [
    (" 12: 5.1, 5.4 avg loss, 0.001000 rate, 3.2 seconds, 24 images, -1.000000 hours left", (12, 5.4, 24)),
    ("12: 5.1, 5.4 avg, 0.001000 rate, 3.2 seconds, 24 images", (12, 5.4, 24)),
    (HANK_V2, (12, 5.456, 48)),
])
def test_iteration_lines_of_each_fork(line, expected):
    it = parse_iteration(line)
    assert (it.iteration, it.avg, it.images) == expected


def test_hank_coloured_nan_line_is_an_iteration_with_a_nan_avg():
    it = parse_iteration(HANK)
    assert it.iteration == 27 and math.isnan(it.avg) and it.rate == pytest.approx(0.00261)


@pytest.mark.parametrize("line, value", [
    (" mean_average_precision (mAP@0.50) = 0.801234 ", 0.801234),
    (" mean average precision (mAP@0.50) = 0.023810, or 2.38 % ", 0.02381),
    ("-> mean average precision (mAP@0.50)=87.23%", 0.8723),
    ("\x1b[1;32m-> mean average precision (mAP@0.50)=\x1b[1;37m87.23%\x1b[0m", 0.8723),
    ("calculation mAP (mean average precision)...", None),
    ("class_id = 0, name = cat, ap = 80.00%   \t (TP = 4, FP = 1)", None),
])
def test_map_lines(line, value):
    assert parse_map(line) == (pytest.approx(value) if value is not None else None)


@pytest.mark.parametrize("fork, kwargs, flags", [
    ("pjreddie", {}, []),
    ("alexeyab", {}, ["-dont_show", "-map"]),
    ("alexeyab", {"map_each": False, "clear": True}, ["-dont_show", "-clear"]),
    ("hank", {}, ["-dont_show", "-map", "-nocolour"]),
])
def test_train_command_flags_per_fork(fork, kwargs, flags):
    cmd = train_command("/opt/dk/darknet", "a.data", "a.cfg", "w.weights", fork, **kwargs)
    at = cmd.index("/opt/dk/darknet")
    assert cmd[at:at + 6] == ["/opt/dk/darknet", "detector", "train", "a.data", "a.cfg", "w.weights"]
    assert cmd[at + 6:] == flags


def test_nan_remedy_halves_the_rate_and_burns_in_past_the_resume_point():
    assert nan_remedy(0.00261, 1000, 0) == (0.001305, 2000)
    assert nan_remedy(0.001, 100, 500) == (0.0005, 600)
    assert nan_remedy(0.001, 0, 0) == (0.0005, 100)


def test_a_checkpoint_with_a_nan_float_is_not_finite(tmp_path):
    good = tmp_path / "good.weights"
    header = struct.pack("<3iQ", 0, 2, 5, 64)
    good.write_bytes(header + np.arange(10, dtype="<f4").tobytes())
    assert finite_floats(good)
    bad = tmp_path / "bad.weights"
    values = np.arange(10, dtype="<f4")
    values[7] = np.nan
    bad.write_bytes(header + values.tobytes())
    assert not finite_floats(bad)


def test_summarize_reads_a_hank_console():
    """hank-ai's -nocolour lines (written from HK:src-lib/detector.cpp:604-618 and
    detector_map.cpp:1056-1059, as the research file quotes them)."""
    from pathlib import Path

    from pipeline.logs.darknet import parse_darknet
    from pipeline.logs.rows import Event, LogStats, MetricRow

    stats = LogStats()
    log = Path(__file__).parents[1] / "data/logs/hank_written_from_source.hanklog"
    items = list(parse_darknet(str(log), stats))
    rows = [x for x in items if isinstance(x, MetricRow)]
    assert stats.format == "darknet-hank" and stats.unknown_lines == 0
    assert [r.step for r in rows] == [1, 2, 3] and rows[1].avg_loss == 7.1 and rows[1].map50 == 0.125
    assert rows[0].lr == pytest.approx(1e-8) and rows[2].images == 12
    assert [e.kind for e in items if isinstance(e, Event)] == ["nan"]
