"""results.csv of the YOLOv5, YOLOv8 and YOLO11 eras into the same MetricRows (real files)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from pipeline.errors import FormatError
from pipeline.logs.rows import Event, LogStats, MetricRow
from pipeline.logs.ultralytics import parse_results_csv

LOGS = Path(__file__).parents[1] / "data" / "logs"


def parse(path):
    stats = LogStats()
    items = list(parse_results_csv(str(path), stats))
    return ([x for x in items if isinstance(x, MetricRow)],
            [x for x in items if isinstance(x, Event)], stats)


# file, era, epochs, first step's (loss sum, val loss sum, mAP50, mAP50-95, P, R, lr)
FIRST_ROWS = [
    ("yolov5_lego_results.csv", "ultralytics-v5", 50,  # epoch 0 row, padded with spaces
     (0.156567, 0.103055, 0.28274, 0.15845, 0.24098, 0.59397, 0.0033121)),
    ("yolov8-0_fire-smoke_results.csv", "ultralytics-v8", 25,  # epoch 0, lr/pg0
     (7.2167, 8.4964, 0.15826, 0.05583, 0.1762, 0.2, 0.070545)),
    ("yolov8-2_object-identification_results.csv", "ultralytics-v8", 50,  # epoch from 1
     (6.10109, 6.42514, 0.13882, 0.09281, 0.04201, 0.66662, 0.0001578)),
    ("yolo11_resume-ocr_results.csv", "ultralytics-11", 50,  # time column
     (6.07617, 4.40721, 0.25574, 0.16917, 0.47096, 0.32943, 0.000184849)),
    ("seg2026_pothole_results.csv", "ultralytics-11", 10,  # (B) metrics, not (M)
     (10.6767, 9.10934, 0.09555, 0.05117, 0.32828, 0.0597, 0.00198889)),
]


@pytest.mark.parametrize(("name", "era", "epochs", "first"), FIRST_ROWS)
def test_eras_map_to_the_same_fields(name, era, epochs, first):
    rows, events, stats = parse(LOGS / name)
    assert stats.format == era
    assert [r.step for r in rows] == list(range(1, epochs + 1))  # epochs counted from 1
    r = rows[0]
    assert (r.loss, r.val_loss, r.map50, r.map50_95, r.precision, r.recall, r.lr) == first
    assert r.avg_loss is None and r.images is None
    assert not [e for e in events if e.kind in ("nan", "restart")]
    assert (stats.unknown_lines, stats.bad_values) == (0, 0)


def test_yolov5_best_epoch_is_shifted_to_one_based():
    rows, _, _ = parse(LOGS / "yolov5_lego_results.csv")
    best = max(rows, key=lambda r: r.map50)
    assert (best.step, best.map50, best.map50_95) == (49, 0.98026, 0.93394)  # file epoch 48


def test_yolo11_time_column_gives_elapsed_and_epoch_seconds():
    rows, _, _ = parse(LOGS / "yolo11_resume-ocr_results.csv")
    assert (rows[0].elapsed, rows[0].seconds) == (84.3061, 84.3061)
    assert rows[1].elapsed == 162.304 and rows[1].seconds == pytest.approx(77.9979)
    assert rows[-1].elapsed == 4087.99
    assert rows[0].hours_left is None


def test_inf_validation_loss_is_a_val_nan_event_not_a_nan_event():
    rows, events, _ = parse(LOGS / "yolov12n.csv")
    assert len(rows) == 600 and math.isinf(rows[0].val_loss)
    assert [(e.kind, e.step, e.line) for e in events] == [("val-nan", 1, 2)]


def test_restart_bad_rows_and_nan_train_loss(tmp_path):
    f = tmp_path / "results.csv"
    f.write_text(
        "epoch,time,train/box_loss,train/cls_loss,metrics/mAP50(B),lr/pg0\n"
        "1,10,1.0,2.0,0.1,0.01\n"
        "2,20,nan,2.0,0.2,0.01\n"
        "3,30,1.0\n"
        "\n"
        "1,5,0.9,1.9,0.1,0.01\n"
    )
    rows, events, stats = parse(f)
    assert [r.step for r in rows] == [1, 2, 1]
    assert math.isnan(rows[1].loss) and rows[0].loss == 3.0
    assert [(e.kind, e.step, e.line) for e in events] == [("nan", 2, 3), ("restart", 1, 6)]
    assert stats.unknown_lines == 1 and stats.lines == 6
    assert rows[2].seconds is None  # a restart has no epoch time


def test_not_a_results_csv(tmp_path):
    f = tmp_path / "other.csv"
    f.write_text("a,b\n1,2\n")
    with pytest.raises(FormatError, match=r"other.csv:1: no 'epoch' column"):
        list(parse_results_csv(str(f)))


@pytest.mark.parametrize("at", ["head", "past 8 KiB"])
def test_a_bad_byte_is_a_format_error_naming_line_and_offset(tmp_path, at):
    data = (LOGS / "yolov12n.csv").read_bytes()
    cut = data.index(b"\n", 100 if at == "head" else 9000) + 1
    f = tmp_path / "results.csv"
    f.write_bytes(data[:cut] + b"1,\xff" + data[cut:])
    line = data[:cut].count(b"\n") + 1
    message = rf"results.csv:{line}: not UTF-8 text: bad byte at offset {cut + 2} "
    with pytest.raises(FormatError, match=message):
        parse(f)


def test_bom_utf16_and_a_huge_field(tmp_path):
    text = (LOGS / "yolo11_resume-ocr_results.csv").read_text()
    rows = parse(LOGS / "yolo11_resume-ocr_results.csv")[0]
    f = tmp_path / "results.csv"
    for encoding in ("utf-8-sig", "utf-16"):
        f.write_bytes(text.encode(encoding))
        assert parse(f)[0] == rows
    f.write_text(text + '51,"' + "9" * 200_000 + '"\n')
    with pytest.raises(FormatError, match=rf"results.csv:{len(rows) + 2}: malformed CSV: field larger"):
        parse(f)
