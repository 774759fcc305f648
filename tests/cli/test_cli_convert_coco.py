"""CLI of convert coco / convert voc / synth coco / synth voc: exit codes, one-line errors, --json."""

import json
import shutil
from pathlib import Path

from conftest import invoke

COCO = Path(__file__).parents[1] / "data" / "coco"


def _coco(tmp_path: Path, name: str = "instances_val2017_first4.json") -> tuple[Path, Path]:
    js = tmp_path / "annotations" / name
    js.parent.mkdir(parents=True)
    shutil.copy(COCO / name, js)
    images = tmp_path / "val"
    images.mkdir()
    for img in json.loads(js.read_text())["images"]:
        (images / img["file_name"]).touch()
    return js, images


def test_convert_coco_text_json_and_rerun(tmp_path):
    js, images = _coco(tmp_path)
    result = invoke("convert", "coco", js, "--images", images, "-j", 1)
    assert result.exit_code == 0, result.output
    assert "val2017_first4: 4 images listed, 56 boxes" in result.output
    assert "fixes: crowd_skipped 1" in result.output
    assert "unused categories (kept, no annotation): 'car' (id 3) -> class 2" in result.output
    assert "(59 in all)" in result.output
    again = invoke("convert", "coco", js, "--images", images, "--crowd", "keep", "--json", "-j", 1)
    data = json.loads(again.output)["val2017_first4"]
    assert data["boxes"] == 57 and data["labels_written"] == 1 and data["labels_unchanged"] == 3
    assert (tmp_path / "yolo" / "manifest.json").is_file()


def test_convert_coco_segment_with_split_and_out(tmp_path):
    js, images = _coco(tmp_path, "coco_example.json")
    out = tmp_path / "ds"
    result = invoke("convert", "coco", js, "--images", images, "--task", "segment", "--split", "train",
                    "--out", out, "--json", "-j", 1)
    data = json.loads(result.output)["train"]
    assert data["fixes"] == {"crowd_skipped": 1} and data["boxes"] == 2
    assert (out / "train.txt").read_text() == f"{images / '100.jpg'}\n"
    assert all(len(line.split()) > 5 for line in (images / "100.txt").read_text().splitlines())


def test_truncated_json_is_one_line_exit_2(tmp_path):
    js, images = _coco(tmp_path)
    js.write_bytes(js.read_bytes()[:20000])
    result = invoke("convert", "coco", js, "--images", images)
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [f"Error: {js}: truncated JSON (the file ends early)"]


def test_id_mode_refusals_are_one_line_exit_2(tmp_path):
    js, images = _coco(tmp_path, "datumaro_instances_val.json")
    result = invoke("convert", "coco", js, "--images", images, "--ids", "coco80")
    assert result.exit_code == 2
    assert result.output.strip() == (
        "Error: --ids coco80 needs COCO's categories, but category 1 is 'a' (COCO's 1 is 'person') "
        "(use --ids contiguous)")
    result = invoke("convert", "coco", js, "--images", images, "--ids", "original")
    assert result.exit_code == 2
    assert result.output.strip() == (
        "Error: --ids original needs category ids 0..2, got 1, 2, 4 (use --ids contiguous)")


def test_missing_inputs_are_one_line_exit_2(tmp_path):
    js, images = _coco(tmp_path)
    result = invoke("convert", "coco", js, "--images", tmp_path / "nope")
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"Error: images folder {tmp_path / 'nope'} not found "
        "(give --images the folder the file_names start in)")
    result = invoke("convert", "coco", tmp_path / "none.json", "--images", images)
    assert result.exit_code == 2
    assert result.output.strip() == f"Error: COCO file {tmp_path / 'none.json'} not found"
    result = invoke("convert", "coco", js)
    assert result.exit_code == 2 and "Missing option '--images'" in result.output


def test_synth_voc_then_convert_voc(tmp_path):
    root = tmp_path / "VOCdevkit" / "VOC2007"
    result = invoke("synth", "voc", root, "--images", 8)
    assert result.exit_code == 0 and "train 4, val 2, trainval 6, test 2" in result.output
    result = invoke("convert", "voc", root, "--darknet-labels", "--difficult", "skip", "-j", 1, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["trainval"]["images"] + data["test"]["images"] <= 8
    assert sorted(p.name for p in (root / "labels").iterdir()) == sorted(
        p.name for p in (root / "JPEGImages").glob("*.txt"))
    result = invoke("convert", "voc", tmp_path / "VOCdevkit")
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"Error: {tmp_path / 'VOCdevkit'} has no Annotations, JPEGImages, ImageSets/Main (give {root})")


def test_synth_coco_then_convert(tmp_path):
    result = invoke("synth", "coco", tmp_path / "c", "--images", 6, "--annotations", 30, "--placeholder")
    assert result.exit_code == 0, result.output
    result = invoke("convert", "coco", tmp_path / "c/annotations/instances_train.json",
                    "--images", tmp_path / "c/train", "--ids", "coco80", "--json", "-j", 1)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)["train"]
    assert data["boxes"] + data["fixes"].get("crowd_skipped", 0) == 30
