"""convert voc on a flat export (XML beside the images, or apart with --images; no
ImageSets), then subset / check / stats / configs on what it wrote."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from conftest import invoke

from pipeline.synth.voc import make_flat_voc

TEMPLATE = Path(__file__).parents[1] / "data" / "cfg" / "tiny_yolo.cfg"


def expected_label(xml: Path, names: list[str]) -> str:
    """The label computed by hand from the XML: centre and size over the image size."""
    text = xml.read_text()
    width, height = (int(re.search(f"<{k}>(\\d+)</{k}>", text).group(1)) for k in ("width", "height"))
    lines = []
    for obj in re.findall(r"<object>.*?</object>", text, re.S):
        name = re.search(r"<name>(.*?)</name>", obj).group(1)
        x1, y1, x2, y2 = (float(re.search(f"<{k}>(.*?)</{k}>", obj).group(1))
                          for k in ("xmin", "ymin", "xmax", "ymax"))
        lines.append(f"{names.index(name)} {(x1 + x2) / 2 / width:.6f} {(y1 + y2) / 2 / height:.6f} "
                     f"{(x2 - x1) / width:.6f} {(y2 - y1) / height:.6f}\n")
    return "".join(lines)


def test_flat_export_beside_the_images_is_one_train_split(tmp_path):
    root = make_flat_voc(tmp_path / "export", images=10)
    result = invoke("convert", "voc", root, "-j", 1, "--json")
    assert result.exit_code == 0, result.output
    assert list(json.loads(result.stdout)) == ["train"]
    names = (root / "yolo" / "voc.names").read_text().splitlines()
    listed = (root / "yolo" / "train.txt").read_text().splitlines()
    assert sorted(Path(p).stem for p in listed) == sorted(p.stem for p in root.glob("*.xml"))
    for image in listed:
        assert Path(image).with_suffix(".txt").read_text() == expected_label(
            root / f"{Path(image).stem}.xml", names)


def test_flat_export_apart_with_a_seeded_val_fraction(tmp_path):
    xml, photos = tmp_path / "xml", tmp_path / "photos"
    make_flat_voc(xml, images_dir=photos, images=10)
    before = sorted(os.listdir(xml))
    splits = []
    for seed in (0, 0, 1, 2, 3):
        result = invoke("-q", "convert", "voc", xml, "--images", photos, "--val-fraction", 0.3,
                        "--seed", seed, "-j", 1, "--out", tmp_path / f"ds{len(splits)}")
        assert result.exit_code == 0, result.output
        ds = tmp_path / f"ds{len(splits)}"
        train, val = ((ds / f"{s}.txt").read_text().splitlines() for s in ("train", "val"))
        assert len(val) == 3 and len(train) == 7 and not set(train) & set(val)
        assert {Path(p).stem for p in train + val} == {p[:-4] for p in before}
        assert all(p.startswith(str(photos)) and os.path.isfile(p[:-4] + ".txt") for p in val)
        splits.append(frozenset(val))
    assert splits[0] == splits[1] and len(set(splits)) > 1  # the seed decides, and only it
    assert sorted(os.listdir(xml)) == before  # nothing written beside the XML


@pytest.mark.parametrize(("args", "message"), [
    (["--sets", "train"], "Error: --sets needs ImageSets/Main/ (a devkit year folder)"),
    (["--images", "{tmp}/nope"], "Error: --images {tmp}/nope is not a folder"),
])
def test_flat_export_bad_options_are_one_line(tmp_path, args, message):
    root = make_flat_voc(tmp_path / "export", images=4)
    result = invoke("convert", "voc", root, *[a.format(tmp=tmp_path) for a in args])
    assert result.exit_code == 2 and result.output.startswith(message.format(tmp=tmp_path))
    assert len(result.output.splitlines()) == 1


def test_a_folder_without_xml_is_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    result = invoke("convert", "voc", tmp_path / "empty", "--images", tmp_path / "empty")
    assert result.exit_code == 2
    assert result.output == (f"Error: {tmp_path / 'empty'} holds no .xml files and no Annotations/ "
                             "folder (give a VOC year folder or a folder of VOC XML)\n")


def test_subset_check_stats_configs_on_the_flat_conversion(tmp_path):
    root = make_flat_voc(tmp_path / "export", images=12)
    assert invoke("-q", "convert", "voc", root, "-j", 1).exit_code == 0
    names = (root / "yolo" / "voc.names").read_text().splitlines()
    chosen = ["cat", "dog"]
    sub = invoke("subset", root, "--classes", ",".join(chosen), "--out", tmp_path / "sub", "-j", 1)
    assert sub.exit_code == 0, sub.output
    assert f"Warning: using {root / 'yolo'} (the dataset convert wrote)" in sub.output
    remap = {str(names.index(n)): str(i) for i, n in enumerate(chosen)}
    listed = (tmp_path / "sub" / "train.txt").read_text().splitlines()
    assert listed
    for link in listed:
        src = Path(os.path.realpath(link)).with_suffix(".txt").read_text().splitlines()
        want = [" ".join([remap[ln.split()[0]], *ln.split()[1:]]) for ln in src
                if ln.split()[0] in remap]
        assert Path(link).with_suffix(".txt").read_text().splitlines() == want
    checked = invoke("check", root, "--json")
    assert checked.exit_code == 0 and json.loads(checked.stdout)["images"] == 12
    stats = json.loads(invoke("stats", root, "--json").stdout)
    boxes = sum(len(Path(p).with_suffix(".txt").read_text().splitlines())
                for p in (root / "yolo" / "train.txt").read_text().splitlines())
    assert stats["splits"]["train"]["boxes"] == boxes
    configs = invoke("configs", root, "-t", TEMPLATE, "-o", tmp_path / "cfg", "--fork",
                     "alexeyab")
    assert configs.exit_code == 0, configs.output
    assert (tmp_path / "cfg" / "yolo.names").read_text().splitlines() == names
