"""CLI of configs / check-cfg: files written, reasons printed, exit codes 0/1/2, --json,
and Ultralytics accepting the generated data.yaml."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import invoke

from pipeline.darknet.fork import DEBIAN_CFG_DIR
from pipeline.dataset.manifest import read_manifest

CFG = Path(__file__).parents[1] / "data" / "cfg"
needs_debian = pytest.mark.skipif(not (DEBIAN_CFG_DIR / "yolov3-tiny.cfg").is_file(),
                                  reason="Debian darknet cfg templates not installed")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> str:
    """tests/data/cfg/tiny_yolo.cfg set up for 80 classes in test mode (batch=1), so every value
    the generator computes differs from the template's: the template where no Debian one is."""
    text = (CFG / "tiny_yolo.cfg").read_text()
    for old, new in (("classes=2", "classes=80"), ("filters=21", "filters=255"), ("batch=64", "batch=1"),
                     ("subdivisions=16", "subdivisions=1"), ("max_batches=6000", "max_batches=500200"),
                     ("random=0", "random=1")):
        assert old in text
        text = text.replace(old, new)
    path = tmp_path_factory.mktemp("tpl") / "tiny80.cfg"
    path.write_text(text)
    return str(path)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """A converted synthetic dataset (2 classes, 6 train + 4 val JPEGs, labels beside)."""
    root = tmp_path_factory.mktemp("cfgds") / "in"
    assert invoke("synth", "imagenet", root, "--classes", 2, "--annotated", 3,
                  "--unannotated", 0, "--val", 4).exit_code == 0
    assert invoke("-q", "convert", "imagenet", root, "--workers", 1).exit_code == 0
    return root / "yolo"


@pytest.mark.parametrize(("template", "head"), [
    ("tiny", "[convolutional]->[yolo]#1"),
    pytest.param("yolov3-tiny", "[convolutional]->[yolo]#2", marks=needs_debian),
])
def test_configs_writes_every_file_with_absolute_paths(dataset, tmp_path, tiny, template, head):
    out = tmp_path / "cfg"
    result = invoke("configs", dataset, "--template", tiny if template == "tiny" else template, "--out", out,
                    "--name", "toy", "--fork", "pjreddie", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    files = {k: Path(v) for k, v in report["files"].items()}
    assert files["cfg"] == out / "toy.cfg" and files["backup"].is_dir()
    manifest = read_manifest(dataset)
    train = (out / "train.txt").read_text().splitlines()
    assert train == Path(manifest.splits["train"].list_file).read_text().splitlines()
    assert len(train) == 6 and all(p.startswith("/") for p in train)
    assert len((out / "valid.txt").read_text().splitlines()) == 4
    assert (out / "toy.names").read_text() == "red square\nblue disc\n"
    data = dict(line.split("=", 1) for line in (out / "toy.data").read_text().splitlines())
    assert data == {"classes": "2", "train": str(out / "train.txt"),
                    "valid": str(out / "valid.txt"), "names": str(out / "toy.names"),
                    "backup": str(out / "backup")}
    values = {(v["where"], v["key"]): v for v in report["values"]}
    assert values[("[net]", "max_batches")]["value"] == "6000"
    assert "max(2000 x 2 classes = 4000, 6 training images, 6000)" in \
        values[("[net]", "max_batches")]["reason"]
    assert values[(head, "filters")]["value"] == "21"
    assert values[("[net]", "batch")]["value"] == "64" and values[("[net]", "subdivisions")]["value"] == "16"
    assert report["findings"] == []
    cfg = (out / "toy.cfg").read_text()
    assert "classes=2" in cfg and "classes=80" not in cfg and "filters=255" not in cfg
    # the generated set passes every check, dataset rules included
    check = invoke("check-cfg", out / "toy.cfg", "--data", out / "toy.data", "--fork",
                   "pjreddie")
    assert check.exit_code == 0, check.output
    assert "0 errors" in check.output


def test_configs_prints_each_value_with_its_reason(dataset, tmp_path, tiny):
    result = invoke("configs", dataset, "-t", tiny, "-o", tmp_path, "--width", 320,
                    "--height", 320, "--max-batches", 100, "--fork", "pjreddie")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("configs: 2 classes, 6 train / 4 valid images")
    assert any("width=320" in ln and "given (--width)" in ln for ln in lines)
    assert any("filters=21" in ln and "(classes 2 + 5) x 3 masks" in ln for ln in lines)
    assert any("random=0" in ln and "608 px" in ln for ln in lines)
    assert any("steps=80,90" in ln and "80% and 90%" in ln for ln in lines)
    assert lines[-1].startswith("train: darknet detector train ")


@pytest.mark.parametrize(("args", "message"), [
    (("--template", "yolov9-huge"), "Error: unknown template 'yolov9-huge'"),
    (("--width", 100), "Error: --width 100: must be a positive multiple of 32"),
    (("--template", str(CFG / "not_a_cfg.cfg")), "Error: "),
    (("--max-batches", 2**31), "Error: --max-batches 2147483648: above 2147483647"),
    (("--learning-rate", "1e400"), "Error: --learning-rate inf"),
    (("--name", "a/b"), "Error: --name 'a/b' must be a plain"),
])
def test_configs_bad_input_is_one_line_exit_2(dataset, tmp_path, tiny, args, message):
    if "--template" not in args:
        args = ("--template", tiny, *args)  # a real template: the option is what is wrong
    result = invoke("configs", dataset, "--out", tmp_path, *args)
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1
    assert result.output.startswith(message)


def test_configs_unwritable_out_is_exit_2(dataset, tmp_path, tiny):
    (tmp_path / "file").write_text("")
    result = invoke("configs", dataset, "-t", tiny, "-o", tmp_path / "file" / "cfg")
    assert result.exit_code == 2 and result.output.startswith("Error: cannot write to ")


def test_configs_reads_relative_list_files_from_the_dataset_folder(dataset, tmp_path, tiny):
    import shutil

    copy = tmp_path / "ds"
    shutil.copytree(dataset, copy)
    doc = json.loads((copy / "manifest.json").read_text())
    for info in doc["splits"].values():
        info["list_file"] = Path(info["list_file"]).name  # relative to the dataset folder
    (copy / "manifest.json").write_text(json.dumps(doc))
    result = invoke("configs", copy, "-t", tiny, "-o", tmp_path / "cfg")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "cfg" / "train.txt").read_text() == (dataset / "train.txt").read_text()


def test_configs_without_manifest_is_exit_2(tmp_path, tiny):
    result = invoke("configs", tmp_path, "-t", tiny, "-o", tmp_path / "o")
    assert result.exit_code == 2 and result.output.startswith(f"Error: no dataset in {tmp_path} ")


def test_check_cfg_finds_the_mask_detection_mistakes():
    cfg = CFG / "maskDetectionYolov3_yolo_mask-test.cfg"
    result = invoke("check-cfg", cfg, "--fork", "alexeyab")
    assert result.exit_code == 1
    assert (f"{cfg}:776: error: filters=18 before [yolo] #3 (line 779) must be 21 for its "
            "classes=2") in result.output
    assert f"{cfg}:612: error: [yolo] #1 has classes=1 but the last detection layer says 2" \
        in result.output
    assert result.output.splitlines()[-1].startswith(f"{cfg}: 4 errors, 1 warnings")
    js = json.loads(invoke("check-cfg", cfg, "--fork", "alexeyab", "--json").output)
    assert js["errors"] == 4 and js["fork"] == "alexeyab"
    assert {(f["rule"], f["line"]) for f in js["findings"]} >= {("filters", 776)}


def test_check_cfg_clean_is_exit_0():
    result = invoke("check-cfg", CFG / "tiny_yolo.cfg", "--fork", "pjreddie")
    assert result.exit_code == 0 and "0 errors, 0 warnings" in result.output


@pytest.mark.parametrize(("args", "message"), [
    ((CFG / "not_a_cfg.cfg",), "not a darknet cfg (text before the first [section])"),
    ((CFG / "missing.cfg",), "cannot read cfg"),
    ((CFG / "tiny_yolo.cfg", "--data", CFG / "Sanip_classes.names"), "not a usable .data file"),
])
def test_check_cfg_unusable_input_is_one_line_exit_2(args, message):
    result = invoke("check-cfg", *args, "--fork", "pjreddie")
    assert result.exit_code == 2
    assert result.output.startswith("Error: ") and message in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.slow
def test_ultralytics_accepts_generated_data_yaml(dataset, tmp_path, tiny):
    """check_det_dataset reads the YAML; a YOLODataset built from it finds every label
    beside the images (no `images` folder in the path)."""
    assert not any(s in str(dataset) for s in ("images", "JPEGImages", "raw"))
    out = tmp_path / "cfg"
    assert invoke("configs", dataset, "-t", tiny, "-o", out).exit_code == 0
    from ultralytics.data.build import build_yolo_dataset
    from ultralytics.data.utils import check_det_dataset
    from ultralytics.utils import DEFAULT_CFG

    info = check_det_dataset(str(out / "data.yaml"))
    assert info["nc"] == 2 and info["names"] == {0: "red square", 1: "blue disc"}
    cfg = DEFAULT_CFG
    cfg.imgsz = 64
    ds = build_yolo_dataset(cfg, info["train"], batch=2, data=info, mode="val")
    assert len(ds.im_files) == 6 and len(ds.labels) == 6
    assert sum(len(lb["cls"]) for lb in ds.labels) == sum(
        len(Path(f).with_suffix(".txt").read_text().splitlines()) for f in ds.im_files) > 0
    # Ultralytics 8.4 writes its cache beside the first label's folder, in the dataset
    # tree (not beside the list file): that folder's parent must be writable.
    first_label_dir = Path(ds.label_files[0]).parent
    assert first_label_dir.with_suffix(".cache").is_file()
    assert not list(out.glob("*.cache"))


def test_check_cfg_given_the_configs_folder_names_the_file_in_it(tmp_path):
    (tmp_path / "toy.cfg").write_text("[net]\n")
    (tmp_path / "toy.data").write_text("classes=1\n")
    result = invoke("check-cfg", tmp_path)
    assert result.exit_code == 2
    assert f"did you mean {tmp_path / 'toy.cfg'} --data {tmp_path / 'toy.data'}?" in result.output
