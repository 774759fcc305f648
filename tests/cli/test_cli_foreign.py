"""subset / check / stats / configs on datasets this tool did not convert: a Roboflow
data.yaml tree, an Ultralytics images/labels tree, a darknet .data with relative paths.
Subset labels are checked line by line against the source labels; the source is hashed
before and after."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from conftest import invoke

from pipeline.synth.yolo import CLASSES, make_darknet_tree, make_roboflow_export, make_ultralytics_tree

TEMPLATE = Path(__file__).parents[1] / "data" / "cfg" / "tiny_yolo.cfg"
CHOSEN = ("car", "person")  # source ids 1 and 2 -> 0 and 1


def _source_label(kind: str, image: str) -> Path:
    """Where the source's own tool keeps the label (written out here, not taken from the code)."""
    if kind == "darknet":
        return Path(image).with_suffix(".txt")
    head, _, tail = image.rpartition("/images/")
    return Path(f"{head}/labels/{tail}").with_suffix(".txt")


# kind -> (what the user gives, relative to the tree, splits and their image counts)
LAYOUTS = {
    "roboflow": (".", {"train": 8, "val": 4, "test": 4}),
    "ultralytics": ("tree.yaml", {"train": 8, "val": 4}),
    "darknet": ("data/obj.data", {"train": 8, "val": 4}),
}


@pytest.fixture(params=sorted(LAYOUTS))
def foreign(request, tmp_path) -> tuple[str, Path, Path]:
    """(kind, the argument a user gives, the tree root)."""
    kind = request.param
    root = tmp_path / "tree"
    {"roboflow": make_roboflow_export, "ultralytics": make_ultralytics_tree,
     "darknet": make_darknet_tree}[kind](root)
    return kind, root / LAYOUTS[kind][0], root


def tree_digest(root: Path) -> str:
    """Every path, file content and link target under `root`."""
    h = hashlib.sha256()
    for top, dirs, files in sorted(os.walk(root)):
        dirs.sort()
        for name in sorted(files):
            p = Path(top, name)
            h.update(str(p).encode() + b"\0")
            h.update(os.readlink(p).encode() if p.is_symlink() else p.read_bytes())
    return h.hexdigest()


def test_subset_remaps_labels_line_by_line_and_leaves_the_source_alone(foreign, tmp_path):
    kind, given, root = foreign
    before = tree_digest(root)
    out = tmp_path / "sub"
    result = invoke("subset", given, "--classes", ",".join(CHOSEN), "--out", out, "-j", 1, "--json")
    assert result.exit_code == 0, result.output
    assert tree_digest(root) == before
    manifest = json.loads(result.stdout)
    assert [c["name"] for c in manifest["classes"]] == list(CHOSEN)
    assert [c["source_id"] for c in manifest["classes"]] == [CLASSES.index(n) for n in CHOSEN]
    remap = {str(CLASSES.index(n)): str(i) for i, n in enumerate(CHOSEN)}
    splits = LAYOUTS[kind][1]
    assert set(manifest["splits"]) == set(splits)
    for split in splits:
        listed = (out / f"{split}.txt").read_text().splitlines()
        assert listed
        for link in listed:
            assert link.startswith(str(out / split) + os.sep) and os.path.islink(link)
            src = _source_label(kind, os.path.realpath(link)).read_text().splitlines()
            want = [" ".join([remap[ln.split()[0]], *ln.split()[1:]]) for ln in src
                    if ln.split()[0] in remap]
            assert want and Path(link).with_suffix(".txt").read_text().splitlines() == want
    again = invoke("check", out)
    assert again.exit_code == 0, again.output


def test_every_source_image_with_a_chosen_class_is_taken(foreign, tmp_path):
    kind, given, root = foreign
    invoke("subset", given, "--classes", ",".join(CHOSEN), "--out", tmp_path / "sub", "-j", 1)
    taken = {os.path.realpath(p) for s in LAYOUTS[kind][1]
             for p in (tmp_path / "sub" / f"{s}.txt").read_text().splitlines()}
    wanted = {str(img) for img in root.rglob("*.jpg")
              if any(ln.split()[0] in ("1", "2")
                     for ln in _source_label(kind, str(img)).read_text().splitlines())}
    assert taken == wanted


def test_check_and_stats_count_the_source_labels(foreign, tmp_path):
    kind, given, root = foreign
    images = sorted(str(p) for p in root.rglob("*.jpg"))
    lines = [ln for img in images for ln in _source_label(kind, img).read_text().splitlines()]
    report = tmp_path / "report.tsv"
    checked = invoke("check", given, "--report", report, "--json")
    assert checked.exit_code == 0, checked.output
    got = json.loads(checked.stdout)
    assert (got["images"], got["labels"], got["boxes"]) == (len(images), len(images), len(lines))
    stats = json.loads(invoke("stats", given, "--json").stdout)
    boxes = {name: sum(s["per_class"][name]["boxes"] for s in stats["splits"].values())
             for name in CLASSES}
    assert boxes == {name: sum(ln.split()[0] == str(i) for ln in lines)
                     for i, name in enumerate(CLASSES)}
    # a broken line in a source label: named with its file and line
    victim = _source_label(kind, images[0])
    victim.write_text(victim.read_text() + "1 0.5 nan 0.1 0.1\n")
    bad = invoke("check", given, "--report", report)
    assert bad.exit_code == 1 and "bad_number 1" in bad.output
    n = len(victim.read_text().splitlines())
    assert f"bad_number\t{victim}:{n}\t" in report.read_text()
    # a label no image owns, in the source's label folder
    stray = victim.parent / "stray.txt"
    stray.write_text("0 0.5 0.5 0.1 0.1\n")
    invoke("check", given, "--report", report)
    assert f"orphan_label\t{stray}\t" in report.read_text()


def test_configs_lists_the_source_images(foreign, tmp_path):
    kind, given, root = foreign
    out = tmp_path / "cfg"
    result = invoke("configs", given, "-t", TEMPLATE, "-o", out, "--fork", "alexeyab", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    train = (out / "train.txt").read_text().splitlines()
    assert len(train) == LAYOUTS[kind][1]["train"] and all(os.path.isfile(p) for p in train)
    assert Path(report["files"]["names"]).read_text().splitlines() == list(CLASSES)
    # AlexeyAB reads /labels/ only for JPEGImages and COCO folders: said for the two YAML trees
    lost = [n for n in report["notes"]
            if n.startswith("alexeyab's darknet will not read the labels of")]
    assert len(lost) == (0 if kind == "darknet" else 1)


@pytest.mark.slow
def test_configs_data_yaml_loads_in_ultralytics(foreign, tmp_path):
    from ultralytics.data.utils import check_det_dataset

    kind, given, _ = foreign
    out = tmp_path / "cfg"
    assert invoke("configs", given, "-t", TEMPLATE, "-o", out, "--fork", "alexeyab").exit_code == 0
    data = check_det_dataset(str(out / "data.yaml"), autodownload=False)
    assert data["nc"] == len(CLASSES) and list(data["names"].values()) == list(CLASSES)
    assert Path(data["train"]).read_text() == (out / "train.txt").read_text()


def test_the_convert_root_is_used_and_said(tmp_path):
    assert invoke("synth", "voc", tmp_path / "VOC", "--images", 8).exit_code == 0
    assert invoke("-q", "convert", "voc", tmp_path / "VOC", "-j", 1).exit_code == 0
    result = invoke("stats", tmp_path / "VOC", "--json")
    assert result.exit_code == 0
    assert f"Warning: using {tmp_path / 'VOC' / 'yolo'} (the dataset convert wrote)" in result.output


def test_dry_run_ranks_classes_by_the_source_labels(foreign):
    kind, given, root = foreign
    train = [p for p in root.rglob("*.jpg")
             if kind != "roboflow" or "/train/" in str(p)]
    if kind != "roboflow":  # the first 8 images (sorted) are train in both other trees
        train = sorted(train)[:8]
    images = {name: sum(str(i) in {ln.split()[0] for ln in
                                   _source_label(kind, str(p)).read_text().splitlines()}
                        for p in train)
              for i, name in enumerate(CLASSES)}
    result = invoke("subset", given, "--top", 2, "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    got = {c["name"]: c["images"] for c in json.loads(result.stdout)["classes"]}
    best = sorted(images.values(), reverse=True)[:2]
    assert sorted(got.values(), reverse=True) == best
    assert all(images[name] == n for name, n in got.items())
