"""Box convention and label lines on hand-computed cases; darknet's label path rule."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.core import Box, ImageRecord, ObjectAnnotation
from pipeline.darknet.paths import pjreddie_label_path
from pipeline.dataset.labels import label_path_beside, yolo_label

IDS = {"a": 0, "b": 1}


def record(w, h, *objects):
    return ImageRecord(w, h, tuple(ObjectAnnotation(label, Box(*box), diff) for label, box, diff in objects))


@pytest.mark.parametrize(
    "w,h,box,expected",
    [
        # 500x375, (236,132)-(368,231): cx 302/500, cy 181.5/375, w 132/500, h 99/375
        (500, 375, (236, 132, 368, 231), "1 0.604000 0.484000 0.264000 0.264000\n"),
        # corners used as they are: full-width box 0..W has w = 1
        (640, 480, (0, 0, 640, 480), "1 0.500000 0.500000 1.000000 1.000000\n"),
        # 75x56, (3,19)-(67,50): 35/75, 34.5/56, 64/75, 31/56
        (75, 56, (3, 19, 67, 50), "1 0.466667 0.616071 0.853333 0.553571\n"),
    ],
)
def test_box_to_line_hand_computed(w, h, box, expected):
    result = yolo_label(record(w, h, ("b", box, False)), IDS)
    assert result.text.decode() == expected
    assert result.class_ids == [1]
    assert not result.fixes and not result.problems


def test_clip_counts_and_keeps_the_inside():
    result = yolo_label(record(100, 200, ("a", (-10, 5, 50, 400), False)), IDS)
    # clipped to (0,5)-(50,200): cx 25/100, cy 102.5/200, w 50/100, h 195/200
    assert result.text == b"0 0.250000 0.512500 0.500000 0.975000\n"
    assert result.fixes == {"clipped": 1}


def test_zero_area_and_outside_boxes_are_dropped_and_counted():
    result = yolo_label(
        record(
            100,
            100,
            ("a", (10, 10, 10, 20), False),
            ("a", (150, 10, 180, 20), False),
            ("b", (1, 2, 3, 4), False),
        ),
        IDS,
    )
    assert result.text == b"1 0.020000 0.030000 0.020000 0.020000\n"
    assert result.fixes == {"zero_area_dropped": 2, "clipped": 1}


def test_inverted_and_unknown_are_problems():
    result = yolo_label(record(100, 100, ("a", (50, 10, 20, 30), False), ("zzz", (1, 1, 5, 5), False)), IDS)
    assert result.text == b""
    assert [p[0] for p in result.problems] == ["inverted_box", "unknown_class"]
    assert result.problems[1][1] == "zzz"


@pytest.mark.parametrize("policy,lines", [("keep", 2), ("skip", 1)])
def test_difficult_policy(policy, lines):
    rec = record(10, 10, ("a", (1, 1, 5, 5), True), ("a", (2, 2, 6, 6), False))
    result = yolo_label(rec, IDS, difficult=policy)
    assert result.text.count(b"\n") == lines
    assert result.fixes.get("difficult_skipped", 0) == 2 - lines


def test_box_from_xywh():
    assert Box.from_xywh(10, 20, 30, 40) == Box(10, 20, 40, 60)


@pytest.mark.parametrize(
    "image,expected",
    [
        ("/x/drawings/a.jpg", "/x/dlabelsings/a.txt"),  # the first 'raw' anywhere is replaced
        ("/voc/JPEGImages/a.jpg", "/voc/labels/a.txt"),
        ("/coco/images/train2017/a.jpg", "/coco/labels/train2017/a.txt"),
        ("/in/ILSVRC/Data/CLS-LOC/train/n1/n1_5.JPEG", "/in/ILSVRC/Data/CLS-LOC/train/n1/n1_5.txt"),
        ("/d/a.jpeg", None),  # unknown extension: pjreddie reads the image as its label
        ("/d/a.bmp", None),
    ],
)
def test_pjreddie_label_path(image, expected):
    assert pjreddie_label_path(image) == expected


def test_label_beside():
    assert label_path_beside("/a/b/c.JPEG") == "/a/b/c.txt"


coordinate = st.floats(min_value=-300, max_value=900, allow_nan=False, allow_infinity=False)


@settings(max_examples=300, deadline=None)
@given(boxes=st.lists(st.tuples(coordinate, coordinate, coordinate, coordinate), max_size=6),
       width=st.integers(1, 640), height=st.integers(1, 640))
def test_every_box_gives_a_valid_line_or_is_counted(boxes, width, height):
    record = ImageRecord(width, height, tuple(ObjectAnnotation("a", Box.from_xywh(*b)) for b in boxes))
    result = yolo_label(record, IDS)
    lines = result.text.decode().splitlines()
    assert len(lines) + result.fixes["zero_area_dropped"] + len(result.problems) == len(boxes)
    for line in lines:
        cid, cx, cy, w, h = line.split()
        assert cid == "0" and all(0 <= float(v) <= 1 for v in (cx, cy, w, h))
        assert float(w) > 0 and float(h) > 0
