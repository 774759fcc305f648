"""The REAL darknet (Debian package, pjreddie 2018) on files made by `configs`, and on cfgs
`check-cfg` rejects: what check-cfg says must be what darknet does."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from conftest import invoke

from pipeline.darknet.cfg import read_cfg
from pipeline.darknet.lint import lint_cfg

pytestmark = [
    pytest.mark.darknet,
    pytest.mark.skipif(shutil.which("darknet") is None, reason="darknet not installed"),
]
CFG = Path(__file__).parents[1] / "data" / "cfg"
ITERATION = re.compile(r"^\s*(\d+): [-\d.naif]+, [-\d.naif]+ avg, [\d.]+ rate, [\d.]+ seconds, "
                       r"(\d+) images", re.M)


def _darknet(*args: str | Path, timeout: int = 60, stdin: str = "") -> tuple[int, str]:
    cmd = ["stdbuf", "-oL", "-eL", "darknet", *map(str, args)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=stdin)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    """synth -> convert -> configs: 2 classes, 8 train JPEGs, 160x160, 10 iterations."""
    root = tmp_path_factory.mktemp("dktrain")
    # pjreddie would look for labels elsewhere if the path held one of these
    assert not any(s in str(root) for s in ("images", "JPEGImages", "raw")), root
    assert invoke("synth", "imagenet", root / "in", "--classes", 2, "--annotated", 4,
                  "--unannotated", 0, "--val", 2).exit_code == 0
    assert invoke("-q", "convert", "imagenet", root / "in", "--workers", 1).exit_code == 0
    out = root / "cfg"
    result = invoke("configs", root / "in" / "yolo", "--template", "yolov3-tiny", "--out", out,
                    "--name", "toy", "--width", 160, "--height", 160, "--batch", 2,
                    "--subdivisions", 1, "--max-batches", 10)
    assert result.exit_code == 0, result.output
    assert "random=0" in result.output  # short run: no 608 px multi-scale
    return out


@pytest.mark.slow
def test_darknet_trains_on_generated_files(generated):
    check = invoke("check-cfg", generated / "toy.cfg", "--data", generated / "toy.data", "--json")
    report = json.loads(check.output)
    assert report["fork"] == "pjreddie" and "detected from" in report["fork_reason"]
    # dataset, lists, labels, heads: all clean; the short run chosen with --max-batches is
    # only a warning, so `check-cfg && darknet ...` goes on
    assert report["counts"] == {"max-batches:warning": 1}, report
    assert check.exit_code == 0
    rc, log = _darknet("detector", "train", generated / "toy.data", generated / "toy.cfg")
    assert rc == 0, log[-2000:]
    iterations = [int(m[0]) for m in ITERATION.findall(log)]
    assert iterations == list(range(1, 11)), log[-2000:]
    assert [int(m[1]) for m in ITERATION.findall(log)][-1] == 10 * 2  # 10 x batch 2
    assert "Couldn't open file" not in log  # every label found beside its image
    weights = generated / "backup" / "toy_final.weights"
    assert weights.is_file() and weights.stat().st_size > 1_000_000


def test_wrong_filters_is_caught_before_darknet_aborts_on_it(generated, tmp_path):
    text = (generated / "toy.cfg").read_text()
    bad = tmp_path / "bad.cfg"
    bad.write_text(text.replace("filters=21", "filters=18", 1))
    line = bad.read_text().splitlines().index("filters=18") + 1
    check = invoke("check-cfg", bad, "--data", generated / "toy.data")
    assert check.exit_code == 1
    assert f"{bad}:{line}: error: filters=18 before [yolo] #1" in check.output
    rc, log = _darknet("detector", "train", generated / "toy.data", bad, timeout=30)
    assert rc != 0 and "l.outputs == params.inputs" in log  # darknet's own abort


def test_first_of_two_batch_lines_is_what_darknet_uses(generated, tmp_path):
    text = (generated / "toy.cfg").read_text()
    dup = tmp_path / "dup.cfg"
    dup.write_text(text.replace("batch=2\n", "batch=2\nbatch=4\n", 1)
                   .replace("max_batches = 10", "max_batches = 2"))
    check = invoke("check-cfg", dup, "--json")
    assert check.exit_code == 1 and '"duplicate-key"' in check.output
    rc, log = _darknet("detector", "train", generated / "toy.data", dup, timeout=60)
    assert rc == 0, log[-2000:]
    assert [int(m[1]) for m in ITERATION.findall(log)] == [2, 4]  # 2 images per iteration


@pytest.mark.parametrize("name", ["Sanip_yolov4-obj.cfg", "stoma_yolov4-obj.cfg"])
def test_pjreddie_parser_ignores_exactly_what_check_cfg_reports(name, generated):
    """darknet's own "Unused field" / "Couldn't find activation" lines vs our findings."""
    rc, log = _darknet("detector", "test", generated / "toy.data", CFG / name, timeout=60)
    unused = Counter(re.findall(r"Unused field: '(\S+) = ", log))
    no_act = len(re.findall(r"Couldn't find activation function", log))
    found = lint_cfg(read_cfg(CFG / name), name, "pjreddie")
    ours = Counter(f.message.split(" read ")[1].split("=")[0] for f in found
                   if f.rule == "unknown-key" and "in [net]" not in f.message)
    assert unused == ours and sum(ours.values()) > 0
    assert no_act == sum(f.rule == "unknown-activation" for f in found)
