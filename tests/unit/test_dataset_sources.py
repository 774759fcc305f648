"""Reading datasets this tool did not convert: data.yaml (Roboflow, Ultralytics), darknet
.data with relative paths; the folder above a dataset; a folder with no dataset."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeline.dataset.folder import open_dataset
from pipeline.dataset.labels import ultralytics_label_path
from pipeline.errors import FormatError, UserError
from pipeline.synth.yolo import CLASSES, make_darknet_tree, make_roboflow_export, make_ultralytics_tree


@pytest.mark.parametrize(("image", "label"), [
    ("/d/train/images/a.jpg", "/d/train/labels/a.txt"),
    ("/d/images/x/images/b.png", "/d/images/x/labels/b.txt"),  # the last images folder
    ("/d/myimages/c.jpeg", "/d/myimages/c.txt"),  # a folder merely containing 'images'
    ("/d/c.rf.abc.jpg", "/d/c.rf.abc.txt"),
])
def test_ultralytics_label_path(image, label):
    assert ultralytics_label_path(image) == label


def test_roboflow_export_from_its_folder(tmp_path):
    yaml = make_roboflow_export(tmp_path / "rf", counts=(5, 3, 2))
    ds = open_dataset(tmp_path / "rf")
    assert ds.layout.file == yaml and ds.manifest.class_names() == list(CLASSES)
    assert {s: len(ds.images(s)) for s in ds.manifest.splits} == {"train": 5, "val": 3, "test": 2}
    image = ds.images("val")[0]
    # '../valid/images' did not exist from the YAML's folder: retried as 'valid/images'
    assert image.startswith(str(tmp_path / "rf" / "valid" / "images") + os.sep)
    assert ds.label_path(image) == image.replace("/images/", "/labels/")[:-4] + ".txt"
    assert os.path.isfile(ds.label_path(image))


def test_ultralytics_yaml_with_path_and_dict_names(tmp_path):
    yaml = make_ultralytics_tree(tmp_path / "shapes8", counts=(4, 2))
    ds = open_dataset(yaml)
    assert ds.name == "shapes8" and ds.num_classes == len(CLASSES)
    assert ds.images("train") == sorted(str(p) for p in (tmp_path / "shapes8/images/train").iterdir())
    assert all(os.path.isfile(ds.label_path(p)) for p in ds.images("val"))


def test_ultralytics_list_files_and_lists_of_folders(tmp_path):
    make_ultralytics_tree(tmp_path / "u", counts=(4, 2))
    (tmp_path / "u" / "train.txt").write_text(
        "./images/train/train_0000.jpg\nimages/train/train_0001.jpg\nnotes.md\n")
    yaml = tmp_path / "u" / "mixed.yaml"
    yaml.write_text("train: train.txt\nval: [images/val, images/train]\nnames: [a, b, c, d]\n")
    ds = open_dataset(yaml)
    assert ds.images("train") == [str(tmp_path / "u/images/train/train_0000.jpg"),
                                  str(tmp_path / "u/images/train/train_0001.jpg")]
    assert len(ds.images("val")) == 6
    assert any("1 relative lines without './'" in n for n in ds.notes)
    assert any("1 lines are not images" in n for n in ds.notes)


@pytest.mark.parametrize(("text", "message"), [
    ("train: images/train\nnames: {0: a, 2: c}\n", "'names' ids must be 0..1 without gaps"),
    ("train: images/train\nnc: 3\nnames: [a, b]\n", "nc=3 but 'names' has 2 entries"),
    ("train: images/nope\nnames: [a]\n", "train: {root}/images/nope does not exist"),
    ("names: [a]\n", "no train, val or test key"),
    ("- a\n- b\n", "not a YAML mapping"),
    ("train: images/train\nnc: 1000000000\n", "no 'names' and no 'nc' in 1..100,000"),
    ("train: images/train\nnames: [a, \"b\\nc\"]\n", "class 1: 'b\\nc' is not a one-line name"),
    ("train: images/train\nx: &a [q, q, q]\ny: &b [*a, *a, *a]\nnames: [*b, *b]\n",
     "class 0: \"[['q', 'q', 'q']"),
    ("train: 5\nnames: [a]\n", "train: 5 is not a path"),
])
def test_bad_yaml_is_one_line(tmp_path, text, message):
    make_ultralytics_tree(tmp_path / "u", counts=(1, 1))
    (tmp_path / "u" / "bad.yaml").write_text(text)
    with pytest.raises((FormatError, UserError)) as err:
        open_dataset(tmp_path / "u" / "bad.yaml")
    assert message.format(root=tmp_path / "u") in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("fork", ["pjreddie", "alexeyab"])
def test_darknet_relative_paths_do_not_depend_on_the_working_folder(tmp_path, monkeypatch, fork):
    data = make_darknet_tree(tmp_path / "darknet", counts=(5, 3))
    monkeypatch.chdir(tmp_path)  # not darknet's folder: relative paths are found anyway
    ds = open_dataset(data, fork=fork)
    assert ds.name == "obj" and ds.manifest.class_names() == list(CLASSES)
    assert ds.images("train")[0] == str(tmp_path / "darknet/data/obj/00000.jpg")
    assert len(ds.images("val")) == 3
    assert all(os.path.isfile(ds.label_path(p)) for p in ds.images("train"))
    assert any("relative paths (names, train, train.txt, valid, valid.txt) taken from "
               f"{tmp_path / 'darknet'}; darknet reads them from its working folder" in n
               for n in ds.notes)
    assert any(f"where {fork}'s darknet reads them" in n for n in ds.notes)


def test_darknet_fork_decides_where_labels_are(tmp_path):
    data = make_darknet_tree(tmp_path / "dk", counts=(2, 1))
    jpeg = tmp_path / "dk" / "data" / "JPEGImages"
    (tmp_path / "dk" / "data" / "obj").rename(jpeg)
    (tmp_path / "dk" / "data" / "train.txt").write_text(f"{jpeg}/00000.jpeg\n")
    pj, ab = open_dataset(data, fork="pjreddie"), open_dataset(data, fork="alexeyab")
    image = str(jpeg / "00000.jpeg")
    assert pj.label_path(image) is None  # pjreddie knows no .jpeg: it reads the image itself
    assert ab.label_path(image) == str(tmp_path / "dk/data/labels/00000.txt")


def test_darknet_names_count_must_match_classes(tmp_path):
    data = make_darknet_tree(tmp_path / "dk", counts=(1, 1))
    (tmp_path / "dk" / "data" / "obj.names").write_text("bus\ncar\n")
    with pytest.raises(FormatError, match=r"obj.data:1: classes=4 but .*obj.names has 2 lines"):
        open_dataset(data, fork="alexeyab")


def test_the_folder_above_a_converted_dataset_is_used_and_said(tmp_path):
    from pipeline.dataset.manifest import Manifest, write_manifest

    write_manifest(Manifest(source={}, classes=[]), tmp_path / "in" / "yolo" / "manifest.json")
    ds = open_dataset(tmp_path / "in")
    assert ds.root == tmp_path / "in" / "yolo"
    assert ds.notes == (f"using {tmp_path / 'in' / 'yolo'} (the dataset convert wrote)",)


def test_no_dataset_names_what_was_looked_for_and_a_folder_nearby(tmp_path):
    make_roboflow_export(tmp_path / "rf", counts=(1, 1, 1))
    with pytest.raises(UserError) as err:
        open_dataset(tmp_path / "rf" / "train")  # one level too deep
    assert str(err.value) == (f"no dataset in {tmp_path / 'rf' / 'train'} (looked for "
                              f"manifest.json, data.yaml, *.data; did you mean {tmp_path / 'rf'}?)")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=r"\*\.data; run 'yolo-pipeline convert' first\)$"):
        open_dataset(tmp_path / "empty")
    with pytest.raises(UserError, match="is not a dataset file"):
        open_dataset(tmp_path / "rf" / "train" / "images" / os.listdir(
            tmp_path / "rf" / "train" / "images")[0])


def test_two_data_files_are_ambiguous(tmp_path):
    data = make_darknet_tree(tmp_path / "dk", counts=(1, 1))
    (data.parent / "copy.data").write_text(data.read_text())
    with pytest.raises(UserError, match="holds 2 .data files"):
        open_dataset(data.parent)


def test_counted_manifest_counts_a_foreign_datasets_labels(tmp_path):
    from pipeline.dataset.folder import counted_manifest

    ds = open_dataset(make_ultralytics_tree(tmp_path / "u", counts=(6, 2)))
    lines = [ln.split()[0] for p in ds.images("train")
             for ln in Path(ds.label_path(p)).read_text().splitlines()]
    per_class = counted_manifest(ds).splits["train"].per_class
    assert {k: c.boxes for k, c in per_class.items()} == {
        CLASSES[int(i)]: lines.count(i) for i in set(lines)}


def test_darknet_class_count_out_of_reach_is_one_line(tmp_path):
    data = make_darknet_tree(tmp_path / "dk", counts=(1, 1))
    data.write_text("classes=99999999999\ntrain=data/train.txt\n")
    with pytest.raises(FormatError, match=r"obj.data:1: classes='99999999999' is not a whole "
                                          r"number in 1..100,000"):
        open_dataset(data, fork="alexeyab")
