"""One-line errors and exit codes the CLI owes every command: nothing converted (exit 1), a
folder or dangling link for a file argument, bytes that are not UTF-8 echoed back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import invoke

TINY_CFG = Path(__file__).parents[1] / "data" / "cfg" / "tiny_yolo.cfg"


@pytest.fixture
def imagenet(tmp_path) -> Path:
    root = tmp_path / "in"
    assert invoke("synth", "imagenet", root, "--classes", 2, "--annotated", 2, "--unannotated", 1,
                  "--val", 2, "--placeholder").exit_code == 0
    return root


def test_every_image_missing_exits_1_with_the_reason_and_the_report(imagenet):
    for image in (imagenet / "ILSVRC/Data/CLS-LOC/val").glob("*.JPEG"):
        image.unlink()
    result = invoke("convert", "imagenet", imagenet, "--split", "val", "-j", 1)
    assert result.exit_code == 1
    problems = imagenet / "yolo/problems-val.tsv"
    assert result.output.splitlines()[-1] == (
        f"Error: nothing converted in val: missing_image 2 (see {problems})")
    assert problems.read_text().count("missing_image\t") == 2


def test_only_unannotated_images_exit_1_and_name_the_option(imagenet):
    for xml in (imagenet / "ILSVRC/Annotations/CLS-LOC/train").rglob("*.xml"):
        xml.unlink()
    result = invoke("convert", "imagenet", imagenet, "--split", "train", "-j", 1, "--json")
    assert result.exit_code == 1
    assert json.loads(result.output[: result.output.rindex("}") + 1])["train"]["images"] == 0
    assert result.output.splitlines()[-1] == (
        "Error: nothing converted in train: 6 images without annotation (--unannotated empty lists them)")
    assert invoke("convert", "imagenet", imagenet, "--split", "train", "--unannotated",
                  "empty").exit_code == 0


def test_a_voc_set_of_missing_images_exits_1(tmp_path):
    root = tmp_path / "VOC2007"
    assert invoke("synth", "voc", root, "--images", 4).exit_code == 0
    for image in (root / "JPEGImages").iterdir():
        image.unlink()
    result = invoke("convert", "voc", root, "--sets", "trainval", "-j", 1)
    assert result.exit_code == 1 and result.output.splitlines()[-1].startswith(
        "Error: nothing converted in trainval: missing_image ")


@pytest.mark.parametrize("kind", ["folder", "dangling"])
def test_a_folder_or_dangling_link_for_a_file_argument_is_one_line(tmp_path, kind):
    target = tmp_path / "x.json"
    if kind == "folder":
        target.mkdir()
    else:
        target.symlink_to(tmp_path / "gone.json")
    (tmp_path / "images").mkdir()
    runs = [("convert", "coco", target, "--images", tmp_path / "images"),
            ("convert", "voc", tmp_path, "--classes", target),
            ("check-cfg", target), ("summarize", target)]
    for args in runs:
        result = invoke(*args)
        assert result.exit_code == 2, (args, result.output)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: ") and "Usage:" not in result.output, (
            args, result.output)


def test_non_utf8_bytes_in_a_finding_are_printed_not_a_crash(tmp_path):
    cfg = tmp_path / "bad.cfg"
    cfg.write_bytes(TINY_CFG.read_bytes().replace(b"width=", b"wid\xffth=", 1))
    result = invoke("check-cfg", cfg, "--fork", "pjreddie")
    assert result.exit_code == 1 and "does not read wid\\xffth= in [net]" in result.output
    as_json = json.loads(invoke("check-cfg", cfg, "--fork", "pjreddie", "--json").output)
    assert any("wid\udcffth" in f["message"] for f in as_json["findings"])
    env = {**os.environ, "PYTHONIOENCODING": "ascii"}  # a terminal that prints nothing but ASCII
    run = subprocess.run([sys.executable, "-m", "pipeline", "check-cfg", str(cfg), "--fork", "pjreddie"],
                         capture_output=True, env=env, check=False)
    assert run.returncode == 1 and b"wid\\xffth" in run.stdout and b"Traceback" not in run.stderr


@pytest.mark.parametrize(("args_yaml", "steps"), [
    (b"\xef\xbb\xbfepochs: 60\n", 60),  # a BOM: read
    ("epochs: 60\n".encode("utf-16"), 60),  # UTF-16: read
    (b"epochs: 6\xff0\n", None),  # not UTF-8: no projection, and no traceback
    (b"epochs: 6" + b"0" * 5000 + b"\n", None),  # over Python's 4300-digit int limit (fuzz)
    (b"epochs: 60\nx: " + b"[" * 700 + b"]" * 700 + b"\n", None),  # RecursionError in PyYAML (fuzz)
])
def test_run_folder_args_yaml_in_any_encoding(tmp_path, args_yaml, steps):
    run = tmp_path / "train"
    run.mkdir()
    (run / "results.csv").write_bytes((Path(__file__).parents[1] / "data" / "logs" /
                                       "yolo11_resume-ocr_results.csv").read_bytes())
    (run / "args.yaml").write_bytes(args_yaml)
    result = invoke("summarize", run, "--out", tmp_path / "report", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["runs"][0]["max_steps"] == steps
