"""VOC devkit source: hand-computed labels, class order, difficult, darknet label paths, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import black_jpeg

from pipeline.convert.engine import ConvertOptions
from pipeline.convert.sources.voc import convert_voc, darknet_label_paths, read_class_file
from pipeline.errors import FormatError, UserError
from pipeline.synth.voc import make_voc_tree

ONE = ConvertOptions(workers=1)


def _xml(width: int, height: int, objects: list[tuple[str, tuple[int, int, int, int], int]]) -> str:
    body = "".join(
        f"<object><name>{n}</name><difficult>{d}</difficult><bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin>"
        f"<xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>"
        for n, (x1, y1, x2, y2), d in objects
    )
    return f"<annotation><size><width>{width}</width><height>{height}</height></size>{body}</annotation>"


def voc_tree(root: Path) -> Path:
    """Three images by hand: 000001 (dog + difficult cat), 000002 (cat), 000003 (size 0 in XML)."""
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "Annotations/000001.xml").write_text(
        _xml(500, 375, [("dog", (236, 132, 368, 231), 0), ("cat", (0, 0, 50, 75), 1)]))
    (root / "Annotations/000002.xml").write_text(_xml(200, 100, [("cat", (10, 20, 110, 80), 0)]))
    (root / "Annotations/000003.xml").write_text(_xml(0, 0, [("dog", (0, 0, 20, 10), 0)]))
    black_jpeg(root / "JPEGImages/000001.jpg", 500, 375)
    black_jpeg(root / "JPEGImages/000002.jpg", 200, 100)
    black_jpeg(root / "JPEGImages/000003.jpg", 40, 20)
    (root / "ImageSets/Main/trainval.txt").write_text("000001\n000002\n")
    (root / "ImageSets/Main/test.txt").write_text("000003\n")
    (root / "ImageSets/Main/dog_trainval.txt").write_text("000001  1\n000002 -1\n")
    return root


def label(root: Path, stem: str) -> list[str]:
    return (root / "JPEGImages" / f"{stem}.txt").read_text().splitlines()


def test_labels_beside_images_with_sorted_classes(tmp_path):
    root = voc_tree(tmp_path / "VOC2007")
    manifest = convert_voc(root, options=ONE)
    assert manifest.class_names() == ["cat", "dog"]
    # dog (236,132)-(368,231) in 500x375; difficult cat (0,0)-(50,75) kept by default
    assert label(root, "000001") == ["1 0.604000 0.484000 0.264000 0.264000",
                                     "0 0.050000 0.100000 0.100000 0.200000"]
    assert label(root, "000002") == ["0 0.300000 0.500000 0.500000 0.600000"]
    # size 0 in the XML: read from the 40x20 JPEG
    assert label(root, "000003") == ["1 0.250000 0.250000 0.500000 0.500000"]
    assert manifest.splits["test"].fixes["size_from_image"] == 1
    assert (manifest.splits["trainval"].images, manifest.splits["trainval"].boxes) == (2, 3)
    listed = (root / "yolo" / "trainval.txt").read_text().splitlines()
    assert listed == [str(root / "JPEGImages" / "000001.jpg"), str(root / "JPEGImages" / "000002.jpg")]
    assert (root / "yolo" / "voc.names").read_text() == "cat\ndog\n"
    assert not (root / "labels").exists()


def test_difficult_skip_and_class_file(tmp_path):
    root = voc_tree(tmp_path / "VOC2007")
    classes = tmp_path / "classes.txt"
    classes.write_text("dog\ncat\n")  # the file's order, not sorted
    manifest = convert_voc(root, sets=("trainval",), classes_file=classes,
                           options=ConvertOptions(difficult="skip", workers=1))
    assert manifest.class_names() == ["dog", "cat"]
    assert label(root, "000001") == ["0 0.604000 0.484000 0.264000 0.264000"]
    assert label(root, "000002") == ["1 0.300000 0.500000 0.500000 0.600000"]
    assert manifest.splits["trainval"].fixes["difficult_skipped"] == 1


def test_objects_outside_the_class_file_are_reported(tmp_path):
    root = voc_tree(tmp_path / "VOC2007")
    classes = tmp_path / "classes.txt"
    classes.write_text("dog\n")
    info = convert_voc(root, sets=("trainval",), classes_file=classes, options=ONE).splits["trainval"]
    assert info.problems["unknown_class"].count == 2  # the cats of 000001 and 000002
    assert info.images == 1  # 000002 has no box left and is not listed


def test_darknet_labels_are_written_where_both_forks_look(tmp_path):
    root = voc_tree(tmp_path / "images" / "VOC2007")
    manifest = convert_voc(root, darknet_labels=True, options=ONE)
    beside = (root / "JPEGImages/000001.txt").read_bytes()
    # AlexeyAB: /JPEGImages/ -> /labels/ (inside ROOT: written)
    assert (root / "labels/000001.txt").read_bytes() == beside
    # pjreddie: first "images" in the path -> outside ROOT: not written, counted and warned
    assert not (tmp_path / "labels").exists()
    outside = manifest.splits["trainval"].problems["darknet_label_outside_root"]
    assert outside.count == 2 and outside.examples[0] == str(tmp_path / "labels/VOC2007/labels/000001.txt")
    assert manifest.splits["test"].problems["darknet_label_outside_root"].count == 1
    assert manifest.source["warnings"][0].startswith("3 darknet label copies would land outside")


def test_darknet_label_paths():
    assert darknet_label_paths("/v/VOC2007/JPEGImages/a.jpg") == ["/v/VOC2007/labels/a.txt"]
    assert darknet_label_paths("/data/images/VOC/JPEGImages/a.jpg") == [
        "/data/labels/VOC/labels/a.txt", "/data/images/VOC/labels/a.txt"]
    assert darknet_label_paths("/plain/a.jpg") == []


def test_missing_and_malformed_files_are_counted(tmp_path):
    root = voc_tree(tmp_path / "VOC2007")
    (root / "ImageSets/Main/trainval.txt").write_text("000001\n000002\n000009\n000004\n000005\n")
    black_jpeg(root / "JPEGImages/000004.jpg", 10, 10)  # no XML
    black_jpeg(root / "JPEGImages/000005.jpg", 10, 10)
    (root / "Annotations/000005.xml").write_text("<annotation><size>")
    info = convert_voc(root, sets=("trainval",), options=ONE).splits["trainval"]
    counts = {k: v.count for k, v in info.problems.items()}
    assert counts == {"missing_image": 1, "missing_annotation": 1, "malformed_xml": 1}
    assert info.images == 2


def test_synthetic_tree_converts_all_sets(tmp_path):
    counts = make_voc_tree(tmp_path / "VOC2007", images=8, seed=3)
    manifest = convert_voc(tmp_path / "VOC2007", sets=("train", "val", "test"), options=ONE)
    assert {k: v.images for k, v in manifest.splits.items()} == {
        "train": counts["train"], "val": counts["val"], "test": counts["test"]}
    assert manifest.class_names() == sorted(manifest.class_names())


def test_bad_roots_and_sets_are_one_line_errors(tmp_path):
    devkit = tmp_path / "VOCdevkit"
    voc_tree(devkit / "VOC2012")
    with pytest.raises(UserError, match=r"has no Annotations, JPEGImages, ImageSets/Main") as exc:
        convert_voc(devkit, options=ONE)
    assert exc.value.hint == f"give {devkit / 'VOC2012'}"
    with pytest.raises(UserError, match="no image set") as exc:
        convert_voc(devkit / "VOC2012", sets=("train",), options=ONE)
    assert exc.value.hint == "sets here: test, trainval"


def test_set_names_cannot_write_outside_the_dataset_folder(tmp_path):
    root = voc_tree(tmp_path / "VOC2007")
    (root / "ImageSets/evil.txt").write_text("000001\n")
    with pytest.raises(UserError, match=r"split name '../evil' is not a plain file name \(give --sets"):
        convert_voc(root, sets=("../evil",), options=ONE)
    with pytest.raises(UserError, match="no image sets given"):
        convert_voc(root, sets=(), options=ONE)
    assert not (root / "evil.txt").exists()


def test_hostile_set_lines_folders_and_broken_images_are_counted(tmp_path):
    root = voc_tree(tmp_path / "VOC2007")
    outside = tmp_path / "outside"
    outside.mkdir()
    black_jpeg(outside / "x.jpg", 10, 10)
    (outside / "x.xml").write_text(_xml(10, 10, [("dog", (1, 1, 5, 5), 0)]))
    (root / "ImageSets/Main/trainval.txt").write_text(
        f"../../outside/x\n{outside / 'x'}\n000001\x00\n000001\n000002\n000003\n")
    (root / "Annotations/000002.xml").unlink()
    (root / "Annotations/000002.xml").mkdir()  # a folder where the XML should be
    (root / "JPEGImages/000003.jpg").write_bytes(b"not an image")  # and its XML has no size
    info = convert_voc(root, sets=("trainval",), options=ONE).splits["trainval"]
    counts = {k: v.count for k, v in info.problems.items()}
    assert counts == {"unsafe_stem": 3, "unreadable_annotation": 1, "unreadable_image": 1}
    assert info.images == 1 and sorted(p.name for p in outside.iterdir()) == ["x.jpg", "x.xml"]


def test_non_utf8_set_and_class_files_and_multiline_names(tmp_path):
    root = voc_tree(tmp_path / "VOC2007")
    (root / "ImageSets/Main/test.txt").write_bytes(b"00000\xff3\n")
    with pytest.raises(FormatError, match=r"test.txt:1: not UTF-8 text: bad byte at offset 5 "):
        convert_voc(root, options=ONE)
    classes = tmp_path / "classes.txt"
    classes.write_bytes(b"cat\n\xff\xfd")
    with pytest.raises(FormatError, match=r"classes.txt:2: not UTF-8 text: bad byte at offset 4 "):
        convert_voc(root, sets=("trainval",), classes_file=classes, options=ONE)
    (root / "Annotations/000002.xml").write_text(_xml(200, 100, [("c\nat", (10, 20, 110, 80), 0)]))
    manifest = convert_voc(root, sets=("trainval",), options=ONE)
    assert (root / "yolo" / "voc.names").read_text() == "cat\ndog\n"  # "c\nat" left out
    assert manifest.splits["trainval"].problems["unknown_class"].count == 1


def test_comments_in_image_sets_are_skipped(tmp_path):
    root = voc_tree(tmp_path / "VOC2007")
    (root / "ImageSets/Main/trainval.txt").write_text("# VOC2007 trainval\n000001\n  # 000002 left out\n")
    info = convert_voc(root, sets=("trainval",), options=ONE).splits["trainval"]
    assert info.images == 1 and not info.problems


def test_filename_that_disagrees_with_the_stem_is_counted(tmp_path):
    root = voc_tree(tmp_path / "VOC2007")
    xml = root / "Annotations/000002.xml"
    xml.write_text(xml.read_text().replace("<annotation>", "<annotation><filename>000009.jpg</filename>"))
    one = root / "Annotations/000001.xml"  # the stem with an extension, or none: agrees
    one.write_text(one.read_text().replace("<annotation>", "<annotation><filename>000001.JPG</filename>"))
    info = convert_voc(root, sets=("trainval",), options=ONE).splits["trainval"]
    assert {k: v.count for k, v in info.problems.items()} == {"filename_mismatch": 1}
    assert info.problems["filename_mismatch"].examples == [str(xml)]
    assert info.images == 2 and label(root, "000002") == ["0 0.300000 0.500000 0.500000 0.600000"]


def test_class_names_differing_only_in_case_are_counted_once(tmp_path):
    root = voc_tree(tmp_path / "VOC2007")
    (root / "Annotations/000002.xml").write_text(_xml(200, 100, [("Cat", (10, 20, 110, 80), 0)]))
    manifest = convert_voc(root, options=ONE)
    assert manifest.class_names() == ["Cat", "cat", "dog"]
    dup = manifest.splits["trainval"].problems["class_case_duplicate"]  # with the first set only
    assert dup.count == 1 and dup.examples == [str(root)]
    assert "class_case_duplicate" not in manifest.splits["test"].problems
    assert "'cat' and 'Cat' differ only in case" in (root / "yolo/problems-trainval.tsv").read_text()


def test_an_image_listed_in_two_splits_is_counted(tmp_path):
    root = voc_tree(tmp_path / "VOC2007")
    (root / "ImageSets/Main/train.txt").write_text("000001\n")
    manifest = convert_voc(root, sets=("trainval", "train"), options=ONE)
    image = str(root / "JPEGImages/000001.jpg")
    overlap = manifest.splits["train"].problems["listed_in_two_splits"]
    assert overlap.count == 1 and overlap.examples == [image]
    assert "listed_in_two_splits" in manifest.splits["trainval"].problems
    report = (root / "yolo/problems-train.tsv").read_text().splitlines()
    assert report[-1] == f"listed_in_two_splits\t{image}\talso in trainval"
    assert "listed_in_two_splits" not in convert_voc(root, options=ONE).splits["test"].problems


def test_a_long_class_file_is_read_in_linear_time(tmp_path):
    names = tmp_path / "classes.txt"
    names.write_text("".join(f"class{i}\n" for i in range(100_000)) + "class7\n")
    with pytest.raises(FormatError, match="class 'class7' is listed twice"):
        read_class_file(names)
    names.write_text("".join(f"class{i}\n" for i in range(100_000)))
    assert len(read_class_file(names)) == 100_000
