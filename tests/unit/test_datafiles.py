""".names/.data/list/data.yaml read and write, real .data quirks, and the --data dataset rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.darknet.data import lint_data
from pipeline.darknet.paths import alexeyab_label_path
from pipeline.dataset.datafiles import (
    parse_list,
    parse_names,
    read_data,
    read_list,
    read_names,
    read_ultralytics_yaml,
    write_data,
    write_list,
    write_names,
    write_ultralytics_yaml,
)
from pipeline.errors import CfgError, FormatError

DATA = Path(__file__).parents[1] / "data" / "cfg"


def test_real_names_files():
    assert read_names(DATA / "Sanip_classes.names")[7:] == ["Shopping cart", "Exit sign"]
    assert len(read_names(DATA / "Sanip_classes.names")) == 9  # CRLF, no final newline
    assert read_names(DATA / "maskDetectionYolov3_class.names") == ["mask", "nomask"]
    assert parse_names("a\n\nb\n") == ["a", "", "b"]  # darknet counts the empty line


def test_real_data_files_read_as_darknet_reads_them():
    stoma = read_data(DATA / "stoma_obj.data")
    assert stoma.get("classes").startswith("1#")  # the comment is glued on; atoi -> 1
    assert stoma.get("valid") is None and stoma.get("vaild") is not None
    wbc = read_data(DATA / "WBC-detection_WBC-obj.data")
    assert wbc.get("train") == "/content/drive/My\\Drive/Projects/BCCD/train_annotations_yolo/train.txt"
    assert wbc.raw_value("train").startswith("/content/drive/My\\ Drive/")
    d3 = read_data(DATA / "Darknet3_trainer.data")
    assert d3.get("backup") == "custom/backup" and d3.find("backup").number == 5


def test_data_with_missing_keys_is_a_cfg_error(tmp_path):
    p = tmp_path / "x.data"
    p.write_text("names=/a.names\nvalid=/v.txt\n")
    with pytest.raises(CfgError, match="missing classes, train"):
        read_data(p)
    p.write_bytes(b"\x00\x01binary")
    with pytest.raises(CfgError, match="binary data"):
        read_data(p)


def test_write_then_read_round_trip(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_names("a.names", ["red disc", "blue disc"])
    assert read_names("a.names") == ["red disc", "blue disc"]
    write_list("train.txt", ["/d/a.jpg", "/d/b.jpg"])
    assert read_list("train.txt") == ["/d/a.jpg", "/d/b.jpg"]
    write_data("a.data", 2, "train.txt", "train.txt", "a.names", "backup")
    data = read_data("a.data")
    assert [ln.key for ln in data.lines] == ["classes", "train", "valid", "names", "backup"]
    assert data.get("backup") == str(tmp_path / "backup")  # always absolute
    assert data.get("train") == str(tmp_path / "train.txt")
    with pytest.raises(CfgError, match="cannot be written"):
        write_names("b.names", ["ok", ""])


def test_list_parsing_drops_blank_lines_and_crs_and_resolves_relative():
    assert parse_list("a.jpg\r\n\r\n  \n/abs/b.jpg\n", "/d") == ["/d/a.jpg", "/abs/b.jpg"]
    assert parse_list("a.jpg\n") == ["a.jpg"]


def test_ultralytics_yaml_round_trip(tmp_path):
    yml = tmp_path / "data.yaml"
    write_ultralytics_yaml(yml, tmp_path / "train.txt", tmp_path / "valid.txt", ["a: b", "c"])
    doc = read_ultralytics_yaml(yml)
    assert doc == {"path": str(tmp_path), "train": str(tmp_path / "train.txt"),
                   "val": str(tmp_path / "valid.txt"), "nc": 2, "names": {0: "a: b", 1: "c"}}
    yml.write_text("- just\n- a list\n")
    with pytest.raises(FormatError, match="not a YAML mapping"):
        read_ultralytics_yaml(yml)


@pytest.mark.parametrize(("image", "label"), [
    ("/voc/JPEGImages/a.jpg", "/voc/labels/a.txt"),
    ("/coco/images/train2017/a.jpg", "/coco/labels/train2017/a.txt"),
    ("/x/drawings/a.jpg", "/x/drawings/a.txt"),  # pjreddie: /x/dlabelsings/a.txt
    ("/x/images/a.bmp", "/x/images/a.txt"),
    ("/x/a.gif", None),
])
def test_alexeyab_label_path(image, label):
    assert alexeyab_label_path(image) == label


# ---- the dataset rules of check-cfg --data -------------------------------------------------


def _dataset(root: Path, images: dict[str, str | None], classes: int = 2,
             names: int | None = None) -> Path:
    """Images (placeholder bytes) with label text beside them (None: no label)."""
    assert not any(s in str(root) for s in ("images", "JPEGImages", "raw")), root
    paths = []
    for rel, label in images.items():
        img = root / rel
        img.parent.mkdir(parents=True, exist_ok=True)
        img.write_bytes(b"jpeg")
        if label is not None:
            img.with_suffix(".txt").write_text(label)
        paths.append(str(img))
    write_list(root / "train.txt", paths)
    write_names(root / "x.names", [f"c{i}" for i in range(names or classes)])
    write_data(root / "x.data", classes, str(root / "train.txt"), str(root / "train.txt"),
               str(root / "x.names"), str(root / "backup"))
    return root / "x.data"


def _rules(summary) -> dict[str, int]:
    return {rule: n for (rule, _sev), n in summary.findings.counts.items()}


def test_clean_dataset_has_no_findings(tmp_path):
    data = _dataset(tmp_path / "ds", {"a/1.jpg": "0 0.5 0.5 0.2 0.2\n", "a/2.png": "1 0.5 0.5 0.1 0.1\n"})
    for fork in ("pjreddie", "alexeyab"):
        summary = lint_data(read_data(data), fork)
        assert summary.findings.counts == {} and summary.train_images == 2


def test_pjreddie_path_rewrite_and_extensions(tmp_path):
    root = tmp_path / "ds"
    data = _dataset(root, {
        "drawings/1.jpg": "0 0.5 0.5 0.2 0.2\n",  # pjreddie reads dlabelsings/1.txt
        "ok/2.jpeg": "0 0.5 0.5 0.2 0.2\n",       # pjreddie: not an extension it knows
        "ok/3.jpg": "0 0.5 0.5 0.2 0.2\n",
    })
    pj = lint_data(read_data(data), "pjreddie")
    assert _rules(pj) == {"missing_label": 2}
    unknown = next(f for f in pj.findings.items if "2.jpeg" in f.message)
    assert "knows only .jpg .png .JPG .JPEG" in unknown.message
    missing = next(f for f in pj.findings.items if "dlabelsings" in f.message)
    assert "dlabelsings/1.txt" in missing.message and "beside the image" in missing.message
    assert missing.file == str(root / "train.txt") and missing.line == 1
    assert lint_data(read_data(data), "alexeyab").findings.counts == {}


def test_labels_pictures_and_class_ids(tmp_path):
    root = tmp_path / "ds"
    data = _dataset(root, {
        "a/1.jpg": "0 0.5 0.5 0.2 0.2\n2 0.5 0.5 0.2 0.2\n",  # id 2 with 2 classes
        "a/2.jpg": None,                                      # no label
        "a/3.jpg": "zero 0.5 0.5\n",                          # malformed
    })
    with open(root / "train.txt", "a") as f:
        f.write(f"{root}/a/gone.jpg\nrel/4.jpg\n")
    summary = lint_data(read_data(data), "pjreddie")
    assert _rules(summary) == {"class_out_of_range": 1, "missing_label": 1, "bad_field_count": 1,
                               "missing_image": 2, "relative_path": 1}
    cid = next(f for f in summary.findings.items if f.rule == "class_out_of_range")
    assert (cid.file, cid.line) == (str(root / "a" / "1.txt"), 2)


def test_data_file_rules_on_real_files():
    summary = lint_data(read_data(DATA / "stoma_obj.data"), "pjreddie")
    found = {(f.rule, f.line) for f in summary.findings.items}
    assert ("data-unknown-key", 3) in found and ("data-key-missing", 0) in found
    assert ("data-path-relative", 4) in found and ("data-path-relative", 5) in found
    assert ("inline-comment", 1) in found and summary.classes == 1
    hint = next(f for f in summary.findings.items if f.rule == "data-unknown-key")
    assert "did you mean valid?" in hint.message
    wbc = lint_data(read_data(DATA / "WBC-detection_WBC-obj.data"), "alexeyab")
    spaces = sorted(f.line for f in wbc.findings.items if f.rule == "data-path-space")
    assert spaces == [2, 3, 4, 5]


def test_names_count_and_classes(tmp_path):
    data = _dataset(tmp_path / "ds", {"a/1.jpg": "0 0.5 0.5 0.2 0.2\n"}, classes=2, names=3)
    assert _rules(lint_data(read_data(data), "pjreddie")) == {"names-count": 1}
    bad = tmp_path / "bad.data"
    bad.write_text("classes=two\ntrain=/t.txt\n")
    with pytest.raises(CfgError, match="is not a positive whole number"):
        lint_data(read_data(bad), "pjreddie")


def test_binary_list_is_a_cfg_error(tmp_path):
    data = _dataset(tmp_path / "ds", {"a/1.jpg": "0 0.5 0.5 0.2 0.2\n"})
    (tmp_path / "ds" / "train.txt").write_bytes(b"\x7fELF\x00\x00\n")
    with pytest.raises(CfgError, match="not a list file"):
        lint_data(read_data(data), "pjreddie")
