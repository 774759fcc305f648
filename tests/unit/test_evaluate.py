"""`evaluate`'s pure layer: darknet's mAP output parsed (a recorded AlexeyAB `detector map`,
a real AlexeyAB training log, hank-ai's table from its source), the degenerate verdict, the
table's renderings and files; and the CLI on hand-made run folders (no engine runs)."""

from __future__ import annotations

import csv
import json
import shutil
import sys
from pathlib import Path

import pytest
from conftest import DATA, invoke

from pipeline.evaluate.darknet import class_rows, count_labels
from pipeline.evaluate.darknet_map import last_block, parse_map_blocks
from pipeline.evaluate.output import MAX_BARS, chart_classes, write_outputs
from pipeline.evaluate.table import ClassRow, Evaluation, Overall, degenerate_verdict, render_csv, render_text
from pipeline.evaluate.ultralytics import to_evaluation

#: stdout of `darknet detector map toy.data toy.cfg toy_final.weights -dont_show` (AlexeyAB
#: 59596d78, CPU build), yolov4-tiny at 64 px after 30 iterations on a 3-class synth set;
#: the progress `rank = 0 of ranks = 26` ends in a bare CR, F1 is 0/0.
AB_MAP = (
    " calculation mAP (mean average precision)...\n"
    " Detection layer: 30 - type = 28 \n"
    " Detection layer: 37 - type = 28 \n"
    "\n"
    " detections_count = 26, unique_truth_count = 6  \n"
    " rank = 0 of ranks = 26 \rclass_id = 0, name = red square, ap = 0.00%   \t (TP = 0, FP = 0) \n"
    "class_id = 1, name = blue disc, ap = 0.00%   \t (TP = 0, FP = 7) \n"
    "class_id = 2, name = green triangle, ap = 0.00%   \t (TP = 0, FP = 0) \n"
    "\n"
    " for conf_thresh = 0.25, precision = 0.00, recall = 0.00, F1-score = -nan \n"
    " for conf_thresh = 0.25, TP = 0, FP = 7, FN = 6, average IoU = 0.00 % \n"
    "\n"
    " IoU threshold = 50 %, used Area-Under-Curve for each unique Recall \n"
    " mean average precision (mAP@0.50) = 0.000000, or 0.00 % \n"
    "\n"
    "Set -points flag:\n"
    " `-points 101` for MS COCO \n"
)
#: hank-ai's table as its source prints it (src-lib/detector_map.cpp, darknet_utils.cpp
#: format_map_ap_row_values; not run here): AP in percent, colour codes around the values.
HANK_MAP = (
    "detections_count=40, unique_truth_count=9\n"
    "\n"
    "  Id         Name             AP      TP     TN     FP     FN     GT   AvgIoU@conf(%)\n"
    "  -- -------------------- --------- ------ ------ ------ ------ ------ --------------\n"
    "   0 red square           \x1b[1;32m 87.5000\x1b[0m      4      0      1      1      5       61.2000\n"
    "   1 blue disc            \x1b[1;31m 25.0000\x1b[0m      1      0      3      3      4       40.0000\n"
    "\n"
    "-> for conf_thresh=0.25, precision=0.555556, recall=0.555556, F1 score=0.555556\n"
    "-> for conf_thresh=0.25, TP=5, FP=4, FN=4, average IoU=52.3%\n"
    "-> IoU threshold=50%, used area-under-curve for each unique recall\n"
    "-> mean average precision (mAP@0.5)=56.2500%\n"
)


def test_recorded_alexeyab_detector_map():
    block = last_block(AB_MAP)
    assert [(r.id, r.name, r.ap50, r.tp, r.fp) for r in block.classes] == [
        (0, "red square", 0.0, 0, 0), (1, "blue disc", 0.0, 0, 7), (2, "green triangle", 0.0, 0, 0)]
    assert (block.conf_thresh, block.precision, block.recall) == (0.25, 0.0, 0.0)
    assert block.f1 != block.f1  # -nan
    assert (block.tp, block.fp, block.fn, block.avg_iou, block.map50) == (0, 7, 6, 0.0, 0.0)


def test_real_alexeyab_training_log_every_map_block_and_the_last():
    text = (DATA / "logs" / "fire-detection_log.txt").read_text(errors="replace")
    blocks = parse_map_blocks(text)
    assert len(blocks) == text.count("mean average precision (mAP@0.50)") == 55
    last = blocks[-1]
    assert [(r.name, r.ap50, r.tp, r.fp) for r in last.classes] == [
        ("fire", pytest.approx(0.5011), 280, 195), ("smoke", pytest.approx(0.4612), 35, 6)]
    assert (last.precision, last.recall, last.f1) == (0.61, 0.34, 0.43)
    assert (last.tp, last.fp, last.fn) == (315, 201, 621)
    assert last.avg_iou == pytest.approx(0.432) and last.map50 == pytest.approx(0.481172)


def test_hank_table_read_by_its_header():
    block = last_block(HANK_MAP)
    rows = [(r.id, r.name, r.ap50, r.tp, r.fp, r.fn, r.instances) for r in block.classes]
    assert rows == [(0, "red square", pytest.approx(0.875), 4, 1, 1, 5),
                    (1, "blue disc", pytest.approx(0.25), 1, 3, 3, 4)]
    assert block.map50 == pytest.approx(0.5625) and (block.tp, block.fp, block.fn) == (5, 4, 4)
    assert block.f1 == pytest.approx(0.555556) and block.avg_iou == pytest.approx(0.523)


def test_no_block_without_the_map_line():
    assert last_block(AB_MAP.split(" IoU threshold")[0]) is None
    assert last_block("") is None


def rows_of(*counts: tuple[int, int]) -> list[ClassRow]:
    return [ClassRow(id=i, name=f"c{i}", tp=tp, fp=fp) for i, (tp, fp) in enumerate(counts)]


@pytest.mark.parametrize(("rows", "images", "per_image", "expected"), [
    (rows_of((0, 0), (0, 0)), 10, None, "no detections"),
    (rows_of((0, 0), (0, 0)), 10, [0] * 10, "no detections"),
    (rows_of((1, 9), (2, 8)), 10, None, "every class in every image"),
    (rows_of((1, 9), (2, 8)), 10, [2] * 10, "every class in every image"),
    (rows_of((0, 12), (0, 0), (0, 0)), 10, None, "predicts only 'c0'"),
    (rows_of((1, 30), (0, 10), (0, 10)), 40, None, "nearly every detection is false"),
    (rows_of((5, 1), (4, 0)), 10, None, None),
    (rows_of((1, 9), (2, 8)), 10, [1] * 10, None),  # many boxes, but one class an image
    (rows_of((9, 1)), 10, None, None),  # one class found in every image: fine
])
def test_degenerate_verdict(rows, images, per_image, expected):
    verdict = degenerate_verdict(rows, images, per_image)
    if expected is None:
        assert verdict is None
    else:
        assert verdict.startswith("degenerate: ") and expected in verdict


def darknet_evaluation() -> Evaluation:
    block = last_block(AB_MAP)
    rows = class_rows(block, ["red square", "blue disc", "green triangle"], [3, 1, 2], [3, 1, 2])
    return Evaluation(run="RUN", engine="darknet", fork="alexeyab", split="val", weights="w", source="map",
                      images=6, classes=rows, overall=Overall(precision=0.0, recall=0.0, map50=0.0, tp=0,
                                                              fp=7, fn=6))


def test_darknet_rows_get_fn_p_r_from_the_labels():
    ev = darknet_evaluation()
    blue = ev.classes[1]
    assert (blue.instances, blue.fn, blue.precision, blue.recall) == (1, 1, 0.0, 0.0)
    assert ev.classes[0].precision is None  # no detection: no precision, as darknet's -nan


def test_text_table_leaves_out_what_the_engine_does_not_give():
    text = render_text(darknet_evaluation())
    head = text.splitlines()[1].split()
    assert head == ["id", "class", "images", "instances", "AP@0.5", "P", "R", "TP", "FP", "FN"]
    assert "AP@0.5:0.95" not in text and "green triangle" in text and "TP/FP/FN at conf 0.25" in text
    rows = list(csv.DictReader(render_csv(darknet_evaluation()).splitlines()))
    assert [r["name"] for r in rows] == ["red square", "blue disc", "green triangle", "all"]
    assert rows[1]["fp"] == "7" and rows[1]["ap50_95"] == "" and rows[-1]["instances"] == "6"


def test_files_written(tmp_path):
    ev = darknet_evaluation()
    files = write_outputs(ev, tmp_path / "out")
    assert sorted(Path(p).name for p in files.values()) == [
        "ap-val.png", "evaluation-val.csv", "evaluation-val.json", "evaluation-val.md"]
    doc = json.loads(Path(files["json"]).read_text())
    assert doc["engine"] == "darknet" and len(doc["classes"]) == 3 and doc["overall"]["fp"] == 7
    assert Path(files["chart"]).read_bytes()[:4] == b"\x89PNG"
    assert "| 1 | blue disc |" in Path(files["markdown"]).read_text()


def test_many_classes_chart_the_worst_and_the_best():
    ev = Evaluation(run="R", engine="darknet", split="val", weights="w", source="s",
                    classes=[ClassRow(id=i, name=f"c{i}", ap50=i / 100) for i in range(100)])
    labels, values, left_out = chart_classes(ev)
    assert len(labels) == MAX_BARS and left_out == 100 - MAX_BARS
    assert labels[0] == "0 c0" and labels[-1] == "99 c99" and values == sorted(values)


def test_ultralytics_result_as_the_table():
    res = {"names": {"0": "cat", "1": "dog", "2": "owl"}, "ap_class_index": [0, 1],
           "ap50": [0.9, 0.5], "ap50_95": [0.6, 0.3], "p": [0.8, 0.7], "r": [0.9, 0.4],
           "mean": [0.75, 0.65, 0.7, 0.45], "instances": [10, 5, 0], "images_per_class": [8, 4, 0],
           "tp": [9, 2, 0], "detections": [10, 3, 1], "classes_per_image": [1, 1, 2, 0], "images": 4}
    ev = to_evaluation(res, Path("RUN"), "val", Path("best.pt"))
    cat, dog, owl = ev.classes
    assert (cat.ap50, cat.ap50_95, cat.tp, cat.fp, cat.fn) == (0.9, 0.6, 9, 1, 1)
    assert (owl.ap50, owl.instances, owl.fp) == (None, 0, 1)
    assert ev.overall.f1 == pytest.approx(2 * 0.75 * 0.65 / 1.4) and ev.overall.fn == 1 + 3 + 0
    assert ev.degenerate is None and "1 of 4 images without a detection" in ev.notes[0]


def test_count_labels_where_the_fork_reads_them(tmp_path):
    for name, text in (("a", "0 .5 .5 .1 .1\n0 .2 .2 .1 .1\n"), ("b", "1 .5 .5 .1 .1\n"), ("c", "")):
        (tmp_path / f"{name}.jpg").write_bytes(b"")
        (tmp_path / f"{name}.txt").write_text(text)
    images = [str(tmp_path / f"{n}.jpg") for n in "abc"]
    assert count_labels(images, "alexeyab", 2) == ([1, 1], [2, 1])


def fake_darknet_run(root: Path, fork: str, log: Path | None = None) -> Path:
    """A darknet run folder as `train` leaves it, without darknet: .data, .names, list, cfg."""
    run = root / "run"
    (run / "darknet").mkdir(parents=True)
    (run / "checkpoints").mkdir()
    (root / "toy.names").write_text("fire\nsmoke\n")
    (root / "valid.txt").write_text(f"{root / 'a.jpg'}\n")
    (root / "a.txt").write_text("0 .5 .5 .1 .1\n1 .4 .4 .1 .1\n")
    data = f"classes=2\ntrain={root / 'valid.txt'}\nvalid={root / 'valid.txt'}\nnames={root / 'toy.names'}\n"
    (run / "darknet" / "toy.data").write_text(data)
    (run / "darknet" / "toy.cfg").write_text("[net]\n")
    (run / "checkpoints" / "best.weights").write_bytes(b"\0" * 20)
    info = {"backend": "darknet", "options": {"darknet": sys.executable}, "engine": {"fork": fork},
            "darknet_files": {"data": "darknet/toy.data", "cfg": "darknet/toy.cfg"}}
    (run / "run.json").write_text(json.dumps(info))
    if log:
        (run / "logs").mkdir()
        shutil.copy(log, run / "logs" / "attempt-01.log")
    return run


def test_pjreddie_without_a_map_block_cannot_evaluate(tmp_path):
    run = fake_darknet_run(tmp_path, "pjreddie")
    result = invoke("evaluate", run)
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert "has no `detector map`" in result.output and "--darknet PATH" in result.output
    assert not (run / "evaluation").exists()


def test_pjreddie_run_read_from_its_log(tmp_path):
    run = fake_darknet_run(tmp_path, "pjreddie", DATA / "logs" / "fire-detection_log.txt")
    result = invoke("evaluate", run, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["source"].startswith("the last -map block") and doc["overall"]["map50"] == 0.481172
    assert [c["instances"] for c in doc["classes"]] == [1, 1] and doc["classes"][0]["tp"] == 280
    assert (run / "evaluation" / "evaluation-val.csv").is_file()


def test_not_a_run_and_no_test_list(tmp_path):
    result = invoke("evaluate", tmp_path)
    assert result.exit_code == 2 and "not a training run" in result.output
    run = fake_darknet_run(tmp_path, "alexeyab")
    result = invoke("evaluate", run, "--split", "test")
    assert result.exit_code == 2 and "no test list" in result.output
