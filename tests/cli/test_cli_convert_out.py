"""Outputs where a user expects them: `convert imagenet --out`, `--images` one level off."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import invoke


@pytest.fixture(scope="module")
def imagenet(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("inout") / "in"
    assert invoke("synth", "imagenet", root, "--classes", 2, "--annotated", 2,
                  "--unannotated", 0, "--val", 2, "--placeholder").exit_code == 0
    return root


def test_convert_imagenet_out_puts_the_dataset_folder_there(imagenet, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("-q", "convert", "imagenet", imagenet, "--out", "in-yolo", "--workers", 1)
    assert result.exit_code == 0, result.output
    out = tmp_path / "in-yolo"
    for name in ("manifest.json", "train.txt", "val.txt", "classes.txt", "imagenet.names"):
        assert (out / name).is_file(), name
    assert (out / ".state").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in-yolo"]  # nothing scattered
    assert not (imagenet / "yolo").exists()


@pytest.mark.parametrize(("args", "message"), [
    (("--out-manifest", "in-yolo"), "Error: --out-manifest 'in-yolo' is not a .json file path"),
    (("--out-manifest", "."), "Error: --out-manifest '.' is not a .json file path"),
    (("--out", "a", "--out-manifest", "b.json"), "Error: give --out DIR or --out-manifest FILE"),
])
def test_convert_imagenet_refuses_an_out_manifest_that_is_not_a_json_path(
        imagenet, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    result = invoke("convert", "imagenet", imagenet, *args)
    assert result.exit_code == 2 and len(result.output.splitlines()) == 1
    assert result.output.startswith(message)
    assert list(tmp_path.iterdir()) == []


def test_convert_imagenet_out_manifest_json_still_works(imagenet, tmp_path):
    result = invoke("-q", "convert", "imagenet", imagenet, "--out-manifest",
                    tmp_path / "d" / "m.json", "--workers", 1)
    assert result.exit_code == 0 and (tmp_path / "d" / "m.json").is_file()
    assert (tmp_path / "d" / "train.txt").is_file()


@pytest.fixture(scope="module")
def coco(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cocoout") / "coco"
    assert invoke("synth", "coco", root, "--images", 6, "--annotations", 20,
                  "--placeholder").exit_code == 0
    return root


def test_convert_coco_images_one_level_too_high_names_the_folder(coco):
    result = invoke("convert", "coco", coco / "annotations" / "instances_train.json",
                    "--images", coco)
    assert result.exit_code == 1 and len(result.output.splitlines()) == 1, result.output
    assert "none of the 6 images of instances_train.json is under --images" in result.output
    assert f"give --images {coco / 'train'}" in result.output
    assert not (coco.parent / "yolo").exists() and not (coco / "yolo").exists()


def test_convert_coco_images_one_level_too_low_names_the_parent(coco, tmp_path):
    data = json.loads((coco / "annotations" / "instances_train.json").read_text())
    for image in data["images"]:
        image["file_name"] = "train/" + image["file_name"]
    path = tmp_path / "instances_x.json"
    path.write_text(json.dumps(data))
    result = invoke("convert", "coco", path, "--images", coco / "train", "--out", tmp_path / "y")
    assert result.exit_code == 1 and f"give --images {coco}" in result.output
    assert not (tmp_path / "y").exists()
    ok = invoke("-q", "convert", "coco", path, "--images", coco, "--out", tmp_path / "y")
    assert ok.exit_code == 0 and (tmp_path / "y" / "x.txt").read_text().count("/train/") >= 1
