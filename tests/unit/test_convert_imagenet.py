"""convert imagenet on real fixtures and generated trees: lists, policies, reruns, problems."""

import os
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.convert.engine import ConvertOptions
from pipeline.convert.sources.imagenet import convert_imagenet
from pipeline.dataset.manifest import read_manifest
from pipeline.errors import UserError
from pipeline.synth.imagenet import SynthSpec, make_imagenet_tree

TRAIN = Path("ILSVRC/Data/CLS-LOC/train")
VAL = Path("ILSVRC/Data/CLS-LOC/val")


def labels_of(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted((root / "ILSVRC/Data").rglob("*.txt"))}


def tag(xml: Path, name: str) -> str:
    return re.search(f"<{name}>([^<]*)</{name}>", xml.read_text()).group(1)


def set_tag(xml: Path, name: str, value: str) -> None:
    xml.write_text(re.sub(f"<{name}>[^<]*</{name}>", f"<{name}>{value}</{name}>", xml.read_text(), count=1))


def one(workers=1, **kw):
    return ConvertOptions(workers=workers, **kw)


@pytest.fixture
def tree(tmp_path):
    return make_imagenet_tree(tmp_path / "in", SynthSpec(classes=4, annotated=3, unannotated=2, val=6))


def test_real_fixtures_exact_lines(real_kaggle_tree):
    manifest = convert_imagenet(real_kaggle_tree, options=one())
    root = real_kaggle_tree
    assert (
        root / VAL / "ILSVRC2012_val_00009510.txt"
    ).read_text() == "7 0.496000 0.426000 0.992000 0.852000\n"
    assert (
        root / TRAIN / "n01440764/n01440764_107.txt"
    ).read_text() == "0 0.466667 0.616071 0.853333 0.553571\n"
    assert len((root / TRAIN / "n01443537/n01443537_17565.txt").read_text().splitlines()) == 10
    train, val = manifest.splits["train"], manifest.splits["val"]
    assert (train.images, val.images) == (15, 10)
    assert train.per_class["n01443537"].boxes == 10 + 9 + 8
    assert not train.problems and not val.problems
    listed = Path(train.list_file).read_text().splitlines()
    assert all(os.path.isabs(p) and os.path.exists(p) for p in listed)
    assert (root / "yolo/imagenet.names").read_text().splitlines()[:2] == ["tench", "goldfish"]
    assert (root / "yolo/classes.txt").read_text().splitlines()[0] == "n01440764"


def test_csv_and_xml_agree_on_real_val(real_kaggle_tree, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(real_kaggle_tree, copy)
    convert_imagenet(real_kaggle_tree, splits=("val",), options=one())
    convert_imagenet(copy, splits=("val",), source="csv", options=one())
    xml_labels, csv_labels = labels_of(real_kaggle_tree), labels_of(copy)
    assert len(xml_labels) == 10 and xml_labels == csv_labels


def test_csv_and_xml_agree_on_generated_tree(tmp_path):
    spec = SynthSpec(classes=3, annotated=4, unannotated=1, val=8, jpeg=True)
    a, b = make_imagenet_tree(tmp_path / "a", spec), make_imagenet_tree(tmp_path / "b", spec)
    ma = convert_imagenet(a, options=one())
    mb = convert_imagenet(b, source="csv", options=one(workers=2))
    assert labels_of(a) == labels_of(b) and len(labels_of(a)) == 12 + 8
    assert ma.splits["train"].per_class == mb.splits["train"].per_class


def test_unannotated_policies(tree):
    m = convert_imagenet(tree, splits=("train",), options=one())
    info = m.splits["train"]
    assert (info.images, info.unannotated, info.unannotated_listed) == (12, 8, 0)
    assert not (tree / TRAIN / "n10000000/n10000000_4.txt").exists()
    m = convert_imagenet(tree, splits=("train",), options=one(unannotated="empty"))
    info = m.splits["train"]
    assert (info.images, info.unannotated_listed) == (20, 8)
    assert (tree / TRAIN / "n10000000/n10000000_4.txt").read_bytes() == b""
    assert str(tree / TRAIN / "n10000000/n10000000_4.JPEG") in Path(info.list_file).read_text()


def test_rerun_is_idempotent_and_says_so(tree):
    first = convert_imagenet(tree, options=one(workers=2))
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (tree / "ILSVRC/Data").rglob("*.txt")}
    lists = {s: Path(i.list_file).read_bytes() for s, i in first.splits.items()}
    second = convert_imagenet(tree, options=one(workers=2))
    after = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (tree / "ILSVRC/Data").rglob("*.txt")}
    assert before == after  # same bytes, not even touched
    for split, info in second.splits.items():
        assert info.labels_written == 0
        assert info.labels_unchanged == first.splits[split].labels_written
        assert Path(info.list_file).read_bytes() == lists[split]


def test_rerun_redoes_a_short_label_and_an_edited_xml(tree):
    convert_imagenet(tree, splits=("train",), options=one())
    good = labels_of(tree)
    short = tree / TRAIN / "n10007919/n10007919_2.txt"
    short.write_bytes(short.read_bytes()[:7])  # as a killed run could leave it
    info = convert_imagenet(tree, splits=("train",), options=one()).splits["train"]
    assert info.labels_written == 1 and labels_of(tree) == good
    xml = tree / "ILSVRC/Annotations/CLS-LOC/train/n10000000/n10000000_1.xml"
    text = xml.read_text()
    xmin = text.split("<xmin>")[1].split("<")[0]
    xml.write_text(text.replace(f"<xmin>{xmin}</xmin>", f"<xmin>{int(xmin) + 1}</xmin>", 1))
    info = convert_imagenet(tree, splits=("train",), options=one()).splits["train"]
    assert info.labels_written == 1
    assert (
        labels_of(tree)[str(TRAIN / "n10000000/n10000000_1.txt")]
        != good[str(TRAIN / "n10000000/n10000000_1.txt")]
    )


def test_rerun_redoes_a_label_edited_to_the_same_size_and_a_deleted_one(tree):
    convert_imagenet(tree, splits=("train",), options=one())
    good = labels_of(tree)
    edited = tree / TRAIN / "n10007919/n10007919_1.txt"
    edited.write_bytes(b"3" + edited.read_bytes()[1:])  # another class id, same size
    os.utime(edited, ns=(1, 1))  # and an mtime of its own, whatever the clock's grain
    (tree / TRAIN / "n10015838/n10015838_2.txt").unlink()
    info = convert_imagenet(tree, splits=("train",), options=one()).splits["train"]
    assert info.labels_written == 2 and labels_of(tree) == good

def test_problems_are_counted_listed_and_do_not_stop_the_run(tree):
    ann = tree / "ILSVRC/Annotations/CLS-LOC/train"
    (ann / "n10000000/n10000000_1.xml").write_text("<annotation><size><width>5")  # truncated
    (tree / TRAIN / "n10000000/n10000000_2.JPEG").unlink()  # XML without image
    bad = ann / "n10007919/n10007919_1.xml"
    bad_text = bad.read_text()
    alone = bad_text.count("<object>") == 1  # its only box dropped -> image has no box left
    bad.write_text(bad_text.replace("<name>n10007919</name>", "<name>n99999999</name>", 1))
    inverted = ann / "n10015838/n10015838_1.xml"
    text = inverted.read_text()
    alone += text.count("<object>") == 1
    xmin, xmax = text.split("<xmin>")[1].split("<")[0], text.split("<xmax>")[1].split("<")[0]
    inverted.write_text(
        text.replace(f"<xmin>{xmin}<", f"<xmin>{xmax}<", 1).replace(f"<xmax>{xmax}<", f"<xmax>{xmin}<", 1)
    )
    zero = ann / "n10023757/n10023757_1.xml"
    width, height = tag(zero, "width"), tag(zero, "height")
    set_tag(zero, "width", "0")  # size missing -> read from the image header (a counted fix)
    cv2.imwrite(
        str(tree / TRAIN / "n10023757/n10023757_1.JPEG"), np.zeros((int(height), int(width), 3), np.uint8)
    )
    (tree / TRAIN / "n10023757/n10023757_2.JPEG").write_bytes(b"not an image")
    set_tag(zero.with_name("n10023757_2.xml"), "width", "0")  # ... and the header is unreadable
    info = convert_imagenet(tree, splits=("train",), options=one()).splits["train"]
    assert {k: v.count for k, v in info.problems.items()} == {
        "inverted_box": 1,
        "malformed_xml": 1,
        "missing_image": 1,
        "unknown_class": 1,
        "unreadable_image": 1,
    }
    assert info.problems["malformed_xml"].examples == [str(ann / "n10000000/n10000000_1.xml")]
    assert info.fixes.get("size_from_image") == 1
    report = Path(info.problems_file).read_text()
    assert "malformed_xml\t" in report and "line 1" in report and "n99999999" in report
    # the truncated XML, the missing and the unreadable image are not listed, nor one without boxes
    assert info.images == 12 - 3 - alone
    assert info.fixes.get("no_boxes_left", 0) == alone
    assert not (tree / TRAIN / "n10000000/n10000000_1.txt").exists()


def test_labels_root_writes_nothing_under_root(tree, tmp_path):
    before = sorted(str(p) for p in tree.rglob("*"))
    mirror = tmp_path / "mirror"
    m = convert_imagenet(tree, options=one(), labels_root=mirror)
    assert sorted(str(p) for p in tree.rglob("*")) == before
    listed = Path(m.splits["train"].list_file).read_text().splitlines()
    assert listed and all(p.startswith(str(mirror)) and os.path.islink(p) for p in listed)
    assert all(os.path.exists(p[: -len(".JPEG")] + ".txt") for p in listed)
    assert Path(m.splits["train"].list_file).parent == mirror / "yolo"


def test_ilsvrc_folder_as_root_and_val_in_class_folders(tree):
    val = tree / VAL
    ann = tree / "ILSVRC/Annotations/CLS-LOC/val"
    for xml in sorted(ann.glob("*.xml")):
        wnid = xml.read_text().split("<name>")[1].split("<")[0]
        for folder, name in ((ann, xml.name), (val, xml.stem + ".JPEG")):
            (folder / wnid).mkdir(exist_ok=True)
            (folder / name).rename(folder / wnid / name)
    m = convert_imagenet(tree / "ILSVRC", splits=("val",), options=one())
    assert m.splits["val"].images == 6
    assert len(list(val.rglob("*.txt"))) == 6


def test_manifest_merges_splits_and_out_manifest(tree, tmp_path):
    out = tmp_path / "ds" / "in4.json"
    convert_imagenet(tree, splits=("train",), options=one(), out_manifest=out)
    convert_imagenet(tree, splits=("val",), options=one(), out_manifest=out)
    m = read_manifest(out)
    assert set(m.splits) == {"train", "val"}
    assert (tmp_path / "ds" / "train.txt").exists() and (tmp_path / "ds" / "val.txt").exists()


@pytest.mark.parametrize("remove", ["root", "synsets", "ilsvrc"])
def test_missing_inputs_are_user_errors(tree, remove):
    if remove == "synsets":
        (tree / "LOC_synset_mapping.txt").unlink()
    elif remove == "ilsvrc":
        shutil.rmtree(tree / "ILSVRC")
    root = tree / "nope" if remove == "root" else tree
    with pytest.raises(UserError):
        convert_imagenet(root, options=one())


def test_csv_missing_is_a_user_error(tree):
    (tree / "LOC_val_solution.csv").unlink()
    with pytest.raises(UserError, match="LOC_val_solution.csv"):
        convert_imagenet(tree, splits=("val",), source="csv", options=one())


def test_hostile_file_names_in_reports(tree):
    folder = os.fsencode(tree / "ILSVRC/Annotations/CLS-LOC/train/n10000000")
    for name in (b"caf\xe9.xml", b"tab\there.xml", b"line\nbreak.xml"):
        with open(os.path.join(folder, name), "wb") as f:
            f.write(b"<annotation>")  # truncated, and no image either
    info = convert_imagenet(tree, splits=("train",), options=one()).splits["train"]
    assert info.problems["missing_image"].count == 3
    rows = Path(info.problems_file).read_bytes().splitlines()
    assert len(rows) == 1 + 3  # header + one row per problem: names cannot break rows
    assert any(b"caf\xe9.xml" in r for r in rows) and any(b"tab\\there.xml" in r for r in rows)
    assert any(e.endswith("caf\ufffd.xml") for e in info.problems["missing_image"].examples)
    assert read_manifest(tree / "yolo").splits["train"].problems["missing_image"].count == 3
    again = convert_imagenet(tree, splits=("train",), options=one()).splits["train"]  # not cached, redone
    assert again.problems["missing_image"].count == 3 and again.labels_written == 0
