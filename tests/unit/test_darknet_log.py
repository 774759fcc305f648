"""darknet console logs: hand-checked lines of real logs, and the awkward cases built small.

Expected values were read off the files with grep/sed (line numbers given), not taken
from the parser's output.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from pipeline.errors import FormatError, UserError
from pipeline.logs import darknet, sniff
from pipeline.logs.darknet import parse_darknet
from pipeline.logs.rows import Event, LogStats, MapBlock, MetricRow, number

LOGS = Path(__file__).parents[1] / "data" / "logs"


def parse(path, **kw):
    stats = LogStats()
    items = list(parse_darknet(str(path), stats, **kw))
    rows = [x for x in items if isinstance(x, MetricRow)]
    events = [x for x in items if isinstance(x, Event)]
    maps = [x for x in items if isinstance(x, MapBlock)]
    return rows, events, maps, stats


@pytest.fixture(scope="module")
def fire():
    return parse(LOGS / "fire-detection_log.txt")


# file, iteration, loss, avg loss, rate, seconds, images, hours left (line in the file)
HAND_CHECKED = [
    ("fire-detection_log.txt", 1, 4113.835938, 4113.835938, 0.0, 6.307, 64, -1.0),  # 20
    ("fire-detection_log.txt", 2500, 2.533453, 2.454712, 0.001, 4.305, 160000, 82.293435),  # 13087
    ("fire-detection_log.txt", 6402, 1.970318, 1.997401, 0.001, 2.917, 409728, 61.903302),  # last
    ("fishv4_log_train.txt", 500, 0.999788, 0.977420, 0.000163, 0.589034, 24000, 0.268002),  # 2013
    ("fishv4_log_train.txt", 1136, 0.687450, 0.798039, 0.00261, 0.590258, 54528, 0.161013),
    ("WBC-detection_training_log.txt", 777, 0.325270, 0.399890, 0.000364, 16.690041, 49728, None),
    ("Darknet3_train.log", 2074, 0.533299, 0.795513, 0.001, 0.183023, 2074, None),  # 10788
]


@pytest.mark.parametrize(("name", "step", "loss", "avg", "lr", "sec", "images", "left"),
                         HAND_CHECKED)
def test_hand_checked_iteration_lines(name, step, loss, avg, lr, sec, images, left):
    rows, *_ = parse(LOGS / name)
    row = next(r for r in rows if r.step == step)
    assert (row.loss, row.avg_loss, row.lr, row.seconds, row.images, row.hours_left) == (
        loss, avg, lr, sec, images, left)


def test_fire_alexeyab_crlf_log_counts(fire):
    rows, events, maps, stats = fire
    assert stats.format == "darknet-alexeyab"
    assert [r.step for r in rows] == list(range(1, 6403))
    assert stats.lines == 35401  # CRLF lines; the bare CRs of `rank =` do not count
    assert (stats.header_lines, stats.unknown_lines, stats.bad_values) == (6, 0, 0)
    assert stats.batch == 64 and stats.base_lr == 0.001
    assert stats.resizes == 696  # grep -c Resizing
    assert not [e for e in events if e.kind in ("nan", "restart", "error")]


def test_fire_map_blocks_and_best(fire):
    rows, _, maps, _ = fire
    assert len(maps) == 55 and [m.step for m in maps] == list(range(1000, 6401, 100))
    first = maps[0]  # lines 4515-4525; the fire class line follows bare-CR progress
    assert (first.line, first.iou_threshold, first.map) == (4525, 0.5, 0.028207)
    assert [(c.class_id, c.name, c.ap, c.tp, c.fp) for c in first.classes] == [
        (0, "fire", 0.0564, 47, 156), (1, "smoke", 0.0, 0, 0)]
    assert (first.precision, first.recall, first.f1) == (0.23, 0.05, 0.08)
    assert (first.tp, first.fp, first.fn, first.avg_iou) == (47, 156, 889, 0.1396)
    best = max(maps, key=lambda m: m.map)
    assert (best.step, best.map) == (6400, 0.481172)
    by_step = {r.step: r for r in rows}
    assert by_step[6400].map50 == 0.481172 and by_step[6400].avg_iou == 0.432
    assert by_step[6401].map50 is None and by_step[1000].map50 == 0.028207


def test_fishv4_cut_last_line_and_single_map():
    rows, events, maps, stats = parse(LOGS / "fishv4_log_train.txt")
    assert rows[-1].step == 1136 and len(rows) == 1136
    assert stats.last_line == "Last accuracy mAP@0.5 = 40.34 %, best = 40"
    assert stats.batch == 48 and stats.base_lr == 0.00261
    assert [(m.step, m.map, m.classes[0].name, m.classes[0].ap) for m in maps] == [
        (1000, 0.403355, "salmon", 0.4034)]
    assert (maps[0].tp, maps[0].fp, maps[0].fn, maps[0].avg_iou) == (149, 108, 257, 0.3751)


def test_wbc_old_alexeyab_without_hours_left_ends_with_ctrl_c():
    rows, events, _, stats = parse(LOGS / "WBC-detection_training_log.txt")
    assert stats.format == "darknet-alexeyab"
    assert len(rows) == 1024 and rows[-1].step == 1028
    assert stats.missing_steps == 4  # 326, 509, 871, 928 are not in the log
    assert stats.truncated_last_line == "^C"
    assert all(r.hours_left is None for r in rows)
    saves = [e for e in events if e.kind == "save"]
    assert len(saves) == 11 and saves[0].line == 479 and saves[0].step == 100
    assert saves[0].detail.endswith("backup//yolo_custom_last.weights")
    load = next(e for e in events if e.kind == "load")
    assert (load.line, load.detail) == (112, "/content/darknet/darknet53.conv.74")
    assert stats.unknown_samples == {"Very small path to the image:": 206}


def test_pjreddie_region_nan_lines_are_not_nan_events():
    rows, events, _, stats = parse(LOGS / "Darknet3_train.log")
    assert "-nan" in (LOGS / "Darknet3_train.log").read_text()
    assert stats.format == "darknet-pjreddie"
    assert len(rows) == 3000 and [r.images for r in rows[:3]] == [1, 2, 3]
    assert not [e for e in events if e.kind == "nan"]
    assert all(math.isfinite(r.avg_loss) for r in rows)
    assert (stats.resizes, stats.unknown_lines) == (300, 0)


def test_failed_run_has_error_events_and_no_rows():
    rows, events, _, stats = parse(LOGS / "maskDetectionYolov3_train_log.txt")
    assert rows == []
    errors = [e for e in events if e.kind == "error"]
    assert [e.line for e in errors] == [114, 115]
    assert errors[1].detail.startswith("Error: l.outputs == params.inputs")


def test_block_boundaries_do_not_change_the_result(monkeypatch):
    whole = parse(LOGS / "fishv4_log_train.txt")
    monkeypatch.setattr(darknet, "BLOCK", 97)  # cuts lines and CRLF pairs everywhere
    small = parse(LOGS / "fishv4_log_train.txt")
    assert small[0] == whole[0] and small[1] == whole[1] and small[2] == whole[2]
    assert small[3].lines == whole[3].lines == 4760


def test_crlf_and_bare_cr_across_tiny_blocks(monkeypatch, fire):
    monkeypatch.setattr(darknet, "BLOCK", 4093)
    rows, events, maps, stats = parse(LOGS / "fire-detection_log.txt")
    assert rows == fire[0] and maps == fire[2] and stats.lines == 35401


SYNTH = (
    "darknet header\n"
    "Region 16 Avg IOU: -nan, Class: -nan, Obj: -nan, No Obj: 0.4, .5R: -nan, .75R: -nan,  count: 0\n"
    " 1: 5.0, 5.0 avg loss, 0.001000 rate, 1.0 seconds, 64 images, 2.0 hours left\n"
    " 2: 4.0, 4.9 avg loss, 0.001000 rate, 1.0 seconds, 128 images, 2.0 hours left\n"
    " 3: -nan, -nan avg loss, 0.001000 rate, 1.0 seconds, 192 images, 2.0 hours left\n"
    " 4: nan, -nan(ind) avg loss, 0.001000 rate, 1.0 seconds, 256 images, 2.0 hours left\n"
    " 5: 3.0, 4.0 avg loss, 0.001000 rate, 1.0 seconds, 320 images, 2.0 hours left\n"
    "something new\n"
    "Loading weights from backup/x_last.weights...\n"
    " 3: 3.0, 3.5 avg loss, 0.001000 rate, 1.0 seconds, 192 images, 2.0 hours left\n"
    " 4: inf, -1.#IND00 avg loss, 0.001000 rate, 1.0 seconds, 256 images, 2.0 hours left\n"
    "CUDA Error: out of memory\n"
    " 5: 3.0, 3.4 avg loss, 0.001000 rate, 1.0 secon"
)


def test_nan_onsets_restarts_errors_and_cut_last_line(tmp_path):
    log = tmp_path / "train.log"
    log.write_text(SYNTH)
    rows, events, _, stats = parse(log)
    assert [r.step for r in rows] == [1, 2, 3, 4, 5, 3, 4]  # the cut line 5 is not parsed
    assert stats.truncated_last_line == "5: 3.0, 3.4 avg loss, 0.001000 rate, 1.0 secon"
    assert stats.lines == 13
    kinds = [(e.kind, e.step, e.line) for e in events]
    assert kinds == [("nan", 3, 5), ("load", 5, 9), ("restart", 3, 10), ("nan", 4, 11),
                     ("error", 4, 12)]
    assert math.isnan(rows[3].avg_loss) and math.isinf(rows[6].loss)
    assert (stats.header_lines, stats.unknown_lines) == (1, 1)
    assert stats.unknown_samples == {"something new": 1}


@pytest.mark.parametrize(("text", "nan", "value"), [
    (b"-nan", True, None), (b"nan", True, None), (b"-nan(ind)", True, None),
    (b"-1.#IND00", True, None), (b"1.#QNAN0", True, None), (b"inf", False, math.inf),
    (b"-inf", False, -math.inf), (b"0.001300", False, 0.0013), (b"1e-05", False, 1e-05),
])
def test_number_spellings(text, nan, value):
    got = number(text)
    assert math.isnan(got) if nan else got == value


def test_number_unreadable_is_none():
    assert number(b"abc") is None


def test_sniff_by_content(tmp_path):
    assert sniff(LOGS / "fire-detection_log.txt") == ("darknet", LOGS / "fire-detection_log.txt")
    assert sniff(LOGS / "maskDetectionYolov3_train_log.txt")[0] == "darknet"
    assert sniff(LOGS / "yolov5_lego_results.csv")[0] == "ultralytics"
    run = tmp_path / "run"
    run.mkdir()
    (run / "train.log").write_bytes((LOGS / "Darknet3_train.log").read_bytes()[:2000])
    assert sniff(run) == ("darknet", run / "train.log")
    (run / "results.csv").write_text("epoch,train/box_loss\n1,0.5\n")
    assert sniff(run) == ("ultralytics", run / "results.csv")


def test_sniff_rejects_other_files(tmp_path):
    other = tmp_path / "notes.txt"
    other.write_text("hello\nworld\n")
    with pytest.raises(FormatError, match="not a darknet console log"):
        sniff(other)
    empty = tmp_path / "empty.log"
    empty.write_text("")
    with pytest.raises(FormatError, match="empty file"):
        sniff(empty)
    (tmp_path / "nothing").mkdir()
    with pytest.raises(UserError, match="no results.csv or training log"):
        sniff(tmp_path / "nothing")


def test_unreadable_map_values_are_not_zero_and_are_counted(tmp_path):
    log = tmp_path / "train.log"
    log.write_text(
        " 100: 3.0, 3.2 avg loss, 0.001000 rate, 1.0 seconds, 6400 images, 1.0 hours left\n"
        "class_id = 0, name = fire, ap = 5?.1%   \t (TP = 47, FP = 156) \n"
        "class_id = 1, name = smoke, ap = 12.50%   \t (TP = 1, FP = 2) \n"
        " mean average precision (mAP@0.50) = 0.3x1, or 31.25 % \n"
        " 101: 3.0, 3.2 avg loss, 0.001000 rate, 1.0 seconds, 6464 images, 1.0 hours left\n")
    rows, _, maps, stats = parse(log)
    assert [(c.name, c.ap) for c in maps[0].classes] == [("fire", None), ("smoke", 0.125)]
    assert math.isnan(maps[0].map) and stats.bad_values == 2
    assert math.isnan(rows[0].map50)


def test_a_long_run_of_blanks_in_an_iteration_line_parses_in_linear_time(tmp_path):
    # found by tools/fuzz.py: 200,000 spaces in one line made the iteration pattern backtrack
    # quadratically (37 s for this file; summarize never finished its time cap)
    line = b" 129: 63.026440, 104.859337 avg loss, 0.000001 rate, 0.613887 seconds, 6192 images\n"
    log = tmp_path / "train.log"
    log.write_bytes(line + line.replace(b"129:", b"130:").replace(b" avg", b" " * 200_000 + b"avg"))
    rows, _, _, stats = parse(log)
    assert [r.step for r in rows] == [129, 130] and rows[1].avg_loss == 104.859337
