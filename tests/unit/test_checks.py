"""check: a clean converted tree passes; each planted kind of problem is caught and named."""

import os
import shutil
from pathlib import Path

import pytest

from pipeline.convert.engine import ConvertOptions
from pipeline.convert.sources.imagenet import convert_imagenet
from pipeline.dataset.checks import check_dataset, check_label
from pipeline.dataset.folder import open_dataset
from pipeline.dataset.labels import label_path_beside
from pipeline.synth.imagenet import make_imagenet_tree


@pytest.fixture
def dataset(tmp_path) -> Path:
    root = make_imagenet_tree(tmp_path / "in", classes=3, annotated=3, unannotated=0, val=3,
                              jpeg=True)
    convert_imagenet(root, options=ConvertOptions(workers=1))
    return root / "yolo"


def first_image(dataset: Path, split: str = "train") -> str:
    return open_dataset(dataset).images(split)[0]


def set_label(dataset: Path, text: str) -> str:
    label = label_path_beside(first_image(dataset))
    Path(label).write_text(text)
    return f"{label}:1"


def edit_list(dataset: Path, change) -> str:
    path = dataset / "train.txt"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(change(lines)) + "\n")
    return str(path)


def plant_relative(dataset):
    edit_list(dataset, lambda lines: [os.path.relpath(lines[0], dataset)] + lines[1:])
    return f"{dataset / 'train.txt'}:1"


def plant_missing_image(dataset):
    image = first_image(dataset)
    os.unlink(image)
    os.unlink(label_path_beside(image))
    return image


def plant_orphan(dataset):
    orphan = Path(first_image(dataset)).with_name("stray.txt")
    orphan.write_text("0 0.5 0.5 0.1 0.1\n")
    return str(orphan)


def plant_duplicate(dataset):
    images = open_dataset(dataset).images("train")
    shutil.copy(images[0], images[1])
    return images[1]


def plant_names(dataset):
    names = next(dataset.glob("*.names"))
    names.write_text("only one\n")
    return str(names)


def plant_missing_list(dataset):
    (dataset / "val.txt").unlink()
    return str(dataset / "val.txt")


def plant_undecodable(dataset):
    image = first_image(dataset)
    Path(image).write_bytes(b"\xff\xd8 not really a jpeg")
    return image


def plant_missing_label(dataset):
    label = label_path_beside(first_image(dataset))
    os.unlink(label)
    return label


PLANTS = {
    "bad_field_count": lambda d: set_label(d, "0 0.5 0.5 0.1\n"),
    "bad_number": lambda d: set_label(d, "0 0.5 nan 0.1 0.1\n"),
    "class_out_of_range": lambda d: set_label(d, "3 0.5 0.5 0.1 0.1\n"),
    "coord_out_of_range": lambda d: set_label(d, "1 1.2 0.5 0.1 0.1\n"),
    "non_positive_size": lambda d: set_label(d, "1 0.5 0.5 0.0 0.1\n"),
    "listed_twice": lambda d: edit_list(d, lambda lines: lines + lines[:1]) + f":{10}",
    "relative_path": plant_relative,
    "missing_image": plant_missing_image,
    "missing_label": plant_missing_label,
    "orphan_label": plant_orphan,
    "names_mismatch": plant_names,
    "missing_list": plant_missing_list,
    "undecodable_image": plant_undecodable,
    "duplicate_image": plant_duplicate,
}


def test_clean_dataset_passes(dataset):
    report = check_dataset(dataset, decode=True, duplicates=True)
    assert report.ok, report.problems
    assert (report.images, report.labels) == (12, 12) and report.boxes >= 12
    assert Path(report.report_file).read_text() == "kind\tfile\tdetail\n"


@pytest.mark.parametrize("kind", sorted(PLANTS))
def test_each_planted_problem_is_caught(dataset, kind):
    where = PLANTS[kind](dataset)
    report = check_dataset(dataset, decode=True, duplicates=True)
    expected = {kind: 1}
    if kind == "relative_path":  # not found from here either (darknet resolves it from its cwd)
        expected["missing_image"] = 1
    assert dict(report.problems) == expected
    rows = Path(report.report_file).read_text().splitlines()[1:]
    assert [r.split("\t")[:2] for r in rows if r.startswith(kind)] == [[kind, where]]


def test_report_file_option_and_pure_label_check(dataset, tmp_path):
    report = check_dataset(dataset, report_file=tmp_path / "r.tsv")
    assert report.report_file == str(tmp_path / "r.tsv") and (tmp_path / "r.tsv").is_file()
    boxes, problems = check_label(b"0 0.5 0.5 0.2 0.2\r\n\n2 0.5 0.5 0.2 0.2 9\n", 1, "x.txt")
    assert boxes == 1
    assert [(p.kind, p.file) for p in problems] == [("bad_field_count", "x.txt:3")]


def test_pjreddie_paths_are_a_warning_not_a_failure(tmp_path):
    root = make_imagenet_tree(tmp_path / "raw_images", classes=2, annotated=1, unannotated=0,
                              val=1)
    convert_imagenet(root, options=ConvertOptions(workers=1))
    report = check_dataset(root / "yolo")
    assert report.ok and "pjreddie" in report.warnings[0]


def test_label_that_is_a_folder_is_a_missing_label(dataset):
    label = label_path_beside(first_image(dataset))
    os.unlink(label)
    os.mkdir(label)
    assert dict(check_dataset(dataset).problems) == {"missing_label": 1}


def test_list_file_that_is_a_folder_is_a_user_error(dataset):
    from pipeline.dataset.folder import read_list
    from pipeline.errors import UserError

    with pytest.raises(UserError, match="is missing"):
        read_list(dataset)


def test_non_utf8_paths_and_names_are_reported_not_raised(dataset):
    with open(dataset / "train.txt", "ab") as f:
        f.write(b"/no/such/\xff\xfe.jpg\n")
    names = next(dataset.glob("*.names"))
    names.write_bytes(b"\xff\xfe\n" * 3)
    report = check_dataset(dataset)
    assert dict(report.problems) == {"missing_image": 1}
    assert b"/no/such/\xff\xfe.jpg" in Path(report.report_file).read_bytes()
    names.write_bytes(b"a\x00b\n")
    assert check_dataset(dataset).problems["names_mismatch"] == 1


def test_unwritable_report_is_a_user_error(dataset, tmp_path):
    from pipeline.errors import UserError

    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UserError, match="cannot write the report"):
        check_dataset(dataset, report_file=blocker / "r.tsv")
