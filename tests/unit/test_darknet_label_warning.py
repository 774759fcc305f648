"""`check` warns only where the label darknet will read is missing or differs."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import invoke

from pipeline.darknet.paths import LABEL_PATH, unread_by
from pipeline.dataset.checks import check_dataset
from pipeline.dataset.labels import label_path_beside


@pytest.fixture
def voc(tmp_path) -> Path:
    root = tmp_path / "VOCdevkit" / "VOC2007"
    assert invoke("synth", "voc", root, "--images", 8).exit_code == 0
    return root


def test_darknet_label_copies_silence_the_warning_and_a_changed_copy_brings_it_back(voc):
    assert invoke("-q", "convert", "voc", voc, "--workers", 1).exit_code == 0
    [warning] = check_dataset(voc / "yolo").warnings
    assert "will not read the labels of 8 images (missing where it looks 8)" in warning
    assert invoke("-q", "convert", "voc", voc, "--darknet-labels", "--workers", 1).exit_code == 0
    report = check_dataset(voc / "yolo")
    assert report.ok and report.warnings == []
    copy = sorted((voc / "labels").glob("*.txt"))[0]
    copy.write_text("0 0.5 0.5 0.1 0.1\n")
    [warning] = check_dataset(voc / "yolo").warnings
    assert "of 1 images (a different file there 1)" in warning and str(copy) in warning


def test_unread_by_names_each_reason(tmp_path):
    jpeg = tmp_path / "JPEGImages"
    labels = tmp_path / "labels"
    jpeg.mkdir()
    labels.mkdir()
    for stem, ours, theirs in (("same", "0 .5 .5 .1 .1\n", "0 .5 .5 .1 .1\n"),
                               ("other", "0 .5 .5 .1 .1\n", "1 .5 .5 .1 .1\n"),
                               ("gone", "0 .5 .5 .1 .1\n", None)):
        (jpeg / f"{stem}.txt").write_text(ours)
        if theirs is not None:
            (labels / f"{stem}.txt").write_text(theirs)
    beside = tmp_path / "flat"
    images = [str(jpeg / f"{s}.jpg") for s in ("same", "other", "gone")]
    images += [str(beside / "a.jpg"), str(jpeg / "pic.bmp")]
    found = unread_by(images, LABEL_PATH["pjreddie"], label_path_beside)
    assert found == [(images[1], str(labels / "other.txt"), "differs"),
                     (images[2], str(labels / "gone.txt"), "missing"),
                     (images[4], None, "extension")]
    assert unread_by(images[:3], LABEL_PATH["alexeyab"], label_path_beside)[0][2] == "differs"
