"""ImageNet parsing on the real XML / Kaggle files, and hostile or broken XML."""

import time
from pathlib import Path

import pytest

from pipeline.convert.sources.kaggle_files import parse_prediction, parse_synsets
from pipeline.convert.sources.vocxml import parse_voc_xml
from pipeline.dataset.labels import yolo_label
from pipeline.errors import FormatError
from pipeline.io import xml_parser

DATA = Path(__file__).parents[1] / "data" / "imagenet"
CLASSES = parse_synsets((DATA / "LOC_synset_mapping.txt").read_text())
IDS = {c.key: c.id for c in CLASSES}


def parse(path: Path):
    return parse_voc_xml(path.read_bytes(), str(path), xml_parser())


def test_synsets_real_file():
    assert len(CLASSES) == 1000
    assert (CLASSES[0].key, CLASSES[0].name) == ("n01440764", "tench")
    assert CLASSES[7].key == "n01514668"
    cranes = [c.name for c in CLASSES if c.name.startswith("crane")]
    assert cranes == ["crane (n02012849)", "crane (n03126707)"]
    assert len({c.name for c in CLASSES}) == 1000


def test_synsets_colon_variant_and_garbage():
    assert parse_synsets("n01440764 : tench, Tinca tinca\n")[0].name == "tench"
    with pytest.raises(FormatError, match=r"x.txt:2"):
        parse_synsets("n01440764 tench\nhello world\n", "x.txt")


def test_real_xml_nine_objects():
    rec = parse(DATA / "xml/train/n01443537/n01443537_19470.xml")
    assert (rec.width, rec.height, len(rec.objects)) == (500, 375, 9)
    lines = yolo_label(rec, IDS).text.decode().splitlines()
    assert len(lines) == 9
    assert lines[0] == "1 0.604000 0.484000 0.264000 0.264000"  # (236,132)-(368,231)


@pytest.mark.parametrize(
    "rel,line",
    [
        ("train/n01440764/n01440764_107.xml", "0 0.466667 0.616071 0.853333 0.553571"),  # 75x56
        ("val/ILSVRC2012_val_00009510.xml", "7 0.496000 0.426000 0.992000 0.852000"),  # box at 0,0
        ("train/n01514668/n01514668_10171.xml", "7 0.502262 0.498333 0.986425 0.996667"),  # whole image
    ],
)
def test_real_xml_hand_computed(rel, line):
    assert yolo_label(parse(DATA / "xml" / rel), IDS).text.decode() == line + "\n"


def test_every_real_xml_parses_with_boxes_in_range():
    for path in (DATA / "xml").rglob("*.xml"):
        result = yolo_label(parse(path), IDS)
        assert result.class_ids and not result.problems, path
        for row in result.text.decode().splitlines():
            values = [float(v) for v in row.split()[1:]]
            assert all(0 <= v <= 1 for v in values), (path, row)


def test_prediction_string_matches_xml():
    row = "n01514668 0 0 496 426 "  # LOC_val_solution.csv line 309, with its trailing space
    objects = parse_prediction(row, "LOC_val_solution.csv:309")
    assert objects == parse(DATA / "xml/val/ILSVRC2012_val_00009510.xml").objects


@pytest.mark.parametrize("text", ["n01 1 2 3", "n01 1 2 x 4"])
def test_prediction_string_malformed(text):
    with pytest.raises(FormatError, match="sol.csv:3"):
        parse_prediction(text, "sol.csv:3")


XXE = b"""<?xml version="1.0"?>
<!DOCTYPE a [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<annotation><size><width>10</width><height>10</height></size>
<object><name>&xxe;</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax></bndbox></object>
</annotation>"""

LAUGHS = (
    b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol">"""
    + b"".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'.encode()
        for i in range(1, 10)
    )
    + b"""]>
<annotation><size><width>10</width><height>10</height></size>
<object><name>&lol9;</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax></bndbox></object>
</annotation>"""
)


def test_external_entity_is_not_resolved():
    # the entity stays an unexpanded reference: the <name> reads as empty and the file is refused
    with pytest.raises(FormatError, match="xxe.xml:4") as err:
        parse_voc_xml(XXE, "xxe.xml", xml_parser())
    assert "root:" not in str(err.value)


def test_billion_laughs_is_not_expanded():
    start = time.perf_counter()
    try:
        rec = parse_voc_xml(LAUGHS, "lol.xml", xml_parser())
        assert len(rec.objects[0].label) < 1000
    except FormatError:
        pass  # refusing the document is fine too
    assert time.perf_counter() - start < 2


@pytest.mark.parametrize(
    "data,match",
    [
        (b"<annotation><size><width>10</width>", r"t.xml:1: malformed XML"),
        (b"", "t.xml"),
        (b"<html/>", "expected <annotation>"),
        (
            b"<annotation><object><name>a</name><bndbox><xmin>q</xmin></bndbox></object></annotation>",
            "not a number",
        ),
        (b"<annotation>\n<object><name>a</name></object></annotation>", r"t.xml:2: <object> without"),
    ],
)
def test_broken_xml_is_a_format_error(data, match):
    with pytest.raises(FormatError, match=match):
        parse_voc_xml(data, "t.xml", xml_parser())


@pytest.mark.parametrize("value", ["nan", "inf", "1e999", "-inf"])
def test_non_finite_corner_is_a_format_error(value):
    data = (f"<annotation><object><name>a</name><bndbox><xmin>{value}</xmin><ymin>1</ymin>"
            "<xmax>2</xmax><ymax>3</ymax></bndbox></object></annotation>").encode()
    with pytest.raises(FormatError, match="not a finite number"):
        parse_voc_xml(data, "t.xml", xml_parser())


def test_unreadable_size_means_unknown_size():
    data = b"<annotation><size><width>1e999</width><height>nan</height></size></annotation>"
    assert parse_voc_xml(data, "t.xml", xml_parser()).width == 0
