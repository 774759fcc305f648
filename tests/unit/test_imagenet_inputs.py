"""convert imagenet on hostile inputs: text encodings, huge CSV fields, unreadable XML, and a
rerun cache that follows the label rules and the images that gave a size."""

import codecs
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

import pipeline.convert.engine
import pipeline.dataset.labels
from pipeline.convert.engine import ConvertOptions
from pipeline.convert.sources.imagenet import convert_imagenet
from pipeline.errors import FormatError
from pipeline.synth.imagenet import SynthSpec, make_imagenet_tree

TRAIN = Path("ILSVRC/Data/CLS-LOC/train")
ANN = Path("ILSVRC/Annotations/CLS-LOC/train")
ONE = ConvertOptions(workers=1)


@pytest.fixture
def tree(tmp_path):
    spec = SynthSpec(classes=3, annotated=2, unannotated=0, val=4, jpeg=True)
    return make_imagenet_tree(tmp_path / "in", spec)


def labels(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted((root / "ILSVRC/Data").rglob("*.txt"))}


def test_synset_file_with_bom_and_bad_byte(tree):
    synsets = tree / "LOC_synset_mapping.txt"
    text = synsets.read_bytes()
    synsets.write_bytes(codecs.BOM_UTF8 + text)  # accepted, as in VOC files
    manifest = convert_imagenet(tree, splits=("train",), options=ONE)
    assert manifest.classes[0].key == "n10000000" and manifest.classes[0].name == "red square"
    second = text.index(b"\n") + 1
    synsets.write_bytes(text[:second + 12] + b"\xe9" + text[second + 12:])
    with pytest.raises(FormatError) as err:
        convert_imagenet(tree, splits=("train",), options=ONE)
    assert str(err.value) == (f"{synsets}:2: not UTF-8 text: bad byte at offset {second + 12} of this "
                              "synset mapping file")


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16"])
def test_solution_csv_with_bom_or_utf16_gives_the_xml_labels(tree, tmp_path, encoding):
    convert_imagenet(tree, splits=("val",), options=ONE)
    xml_labels = labels(tree)
    for p in (tree / "ILSVRC/Data").rglob("*.txt"):
        p.unlink()
    csv_file = tree / "LOC_val_solution.csv"
    csv_file.write_bytes(csv_file.read_text(encoding="utf-8").encode(encoding))
    convert_imagenet(tree, splits=("val",), source="csv", options=ONE)
    assert labels(tree) == xml_labels and len(xml_labels) == 4


def test_solution_csv_bad_byte_and_huge_field_are_one_line_errors(tree):
    csv_file = tree / "LOC_val_solution.csv"
    rows = csv_file.read_bytes().splitlines(keepends=True)
    csv_file.write_bytes(rows[0] + rows[1] + b"\xff" + rows[2])
    with pytest.raises(FormatError, match=r"LOC_val_solution.csv:3: not UTF-8 text: bad byte at offset"):
        convert_imagenet(tree, splits=("val",), source="csv", options=ONE)
    csv_file.write_bytes(rows[0] + rows[1] + b'x,"' + b"n1 " * 60_000 + b'"\n')  # a 180 KB field
    with pytest.raises(FormatError, match=r"LOC_val_solution.csv:3: malformed CSV: field larger than"):
        convert_imagenet(tree, splits=("val",), source="csv", options=ONE)


@pytest.mark.parametrize("kind", ["folder", "dangling", "loop"])
def test_an_unreadable_xml_is_counted_and_the_run_goes_on(tree, kind):
    xml = tree / ANN / "n10000000/n10000000_1.xml"
    xml.unlink()
    if kind == "folder":
        xml.mkdir()
    elif kind == "dangling":
        xml.symlink_to(xml.with_name("gone.xml"))
    else:
        xml.symlink_to(xml)
    info = convert_imagenet(tree, splits=("train",), options=ONE).splits["train"]
    assert {k: v.count for k, v in info.problems.items()} == {"unreadable_annotation": 1}
    assert info.problems["unreadable_annotation"].examples == [str(xml)]
    assert info.images == 5 and not (tree / TRAIN / "n10000000/n10000000_1.txt").exists()
    again = convert_imagenet(tree, splits=("train",), options=ONE).splits["train"]  # the cache too
    assert again.problems["unreadable_annotation"].count == 1 and again.images == 5


def test_rerun_after_a_rule_change_rewrites_what_it_changes(tree, monkeypatch):
    convert_imagenet(tree, splits=("train",), options=ONE)
    before = labels(tree)
    monkeypatch.setattr(pipeline.dataset.labels, "LINE_FORMAT", "{:d} {:.3f} {:.3f} {:.3f} {:.3f}\n")
    monkeypatch.setattr(pipeline.dataset.labels, "rules_version", lambda: "a later release")
    monkeypatch.setattr(pipeline.convert.engine, "rules_version", lambda: "a later release")
    info = convert_imagenet(tree, splits=("train",), options=ONE).splits["train"]
    after = labels(tree)
    assert info.labels_written == 6 and info.labels_unchanged == 0
    first_lines = [after[k].split(b"\n")[0].split()[1:] for k in before]
    assert all(after[k] != before[k] for k in before)
    assert all(len(v.split(b".")[1]) == 3 for line in first_lines for v in line)


def test_rerun_after_an_image_that_gave_the_size_changed(tree):
    xml = tree / ANN / "n10000000/n10000000_1.xml"
    text = xml.read_text()
    width = text.split("<width>")[1].split("<")[0]
    xml.write_text(text.replace(f"<width>{width}</width>", "<width>0</width>"))
    image = tree / TRAIN / "n10000000/n10000000_1.JPEG"
    height = int(text.split("<height>")[1].split("<")[0])
    cv2.imwrite(str(image), np.zeros((height, int(width), 3), np.uint8))
    first = convert_imagenet(tree, splits=("train",), options=ONE).splits["train"]
    assert first.fixes["size_from_image"] == 1
    label = tree / TRAIN / "n10000000/n10000000_1.txt"
    old = label.read_bytes()
    cv2.imwrite(str(image), np.zeros((height, int(width) * 2, 3), np.uint8))  # a wider image, same name
    st = os.stat(image)
    os.utime(image, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    again = convert_imagenet(tree, splits=("train",), options=ONE).splits["train"]
    assert again.labels_written == 1
    cx_old, cx_new = float(old.split()[1]), float(label.read_bytes().split()[1])
    assert cx_new == pytest.approx(cx_old / 2, abs=2e-6)


def test_workers_are_spawned_not_forked_while_other_threads_run(tree, tmp_path):
    import shutil
    import threading

    from pipeline.convert.pool import start_method

    copy = tmp_path / "copy"
    shutil.copytree(tree, copy)
    convert_imagenet(tree, options=ConvertOptions(workers=2))
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)  # as torch's or a watchdog's threads would be
    other.start()
    try:
        assert start_method() == "spawn"
        manifest = convert_imagenet(copy, options=ConvertOptions(workers=2))
    finally:
        stop.set()
        other.join()
    assert manifest.splits["train"].images == 6
    assert labels(copy) == labels(tree)
