"""What `configs` records in a cfg and `check-cfg` reads back; template names with a typo."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import pipeline.darknet.fork as darknet_fork
from pipeline.darknet.cfg import parse_cfg, read_cfg, render_cfg
from pipeline.darknet.lint import ERROR, WARNING, lint_cfg
from pipeline.darknet.values import CfgOptions, apply_values, chosen_max_batches, compute_values
from pipeline.errors import UserError

DATA = Path(__file__).parents[1] / "data" / "cfg"


def _short_run(max_batches: int = 20) -> str:
    cfg = read_cfg(DATA / "tiny_yolo.cfg")
    opts = CfgOptions(max_batches=max_batches)
    apply_values(cfg, compute_values(cfg, classes=2, train_images=8, opts=opts))
    return render_cfg(cfg)


def _max_batches_findings(text: str) -> list:
    found = lint_cfg(parse_cfg(text), "t.cfg", "pjreddie", data_classes=2, train_images=8)
    return [f for f in found if f.rule == "max-batches"]


def test_a_given_short_max_batches_is_marked_and_only_a_warning():
    text = _short_run(20)
    assert chosen_max_batches(parse_cfg(text)) == 20
    [finding] = _max_batches_findings(text)
    assert finding.severity == WARNING and "chosen with configs --max-batches" in finding.message
    # darknet skips the mark: the line right after it still sets max_batches
    lines = text.splitlines()
    mark = next(i for i, ln in enumerate(lines) if ln.startswith("# yolo-pipeline configs:"))
    assert lines[mark + 1].replace(" ", "") == "max_batches=20"


def test_a_hand_written_or_hand_edited_low_max_batches_stays_an_error():
    cfg = read_cfg(DATA / "tiny_yolo.cfg")
    cfg.net.set("max_batches", "20")
    [finding] = _max_batches_findings(render_cfg(cfg))
    assert finding.severity == ERROR
    edited = re.sub(r"(?m)^max_batches=20$", "max_batches=30", _short_run(20))
    assert "max_batches=30" in edited
    [finding] = _max_batches_findings(edited)
    assert finding.severity == ERROR  # the mark names 20, the cfg now says 30


def test_the_mark_is_not_repeated_or_kept_when_not_given():
    cfg = parse_cfg(_short_run(20))  # a generated cfg used as a template again
    apply_values(cfg, compute_values(cfg, classes=2, train_images=8, opts=CfgOptions(max_batches=50)))
    text = render_cfg(cfg)
    assert text.count("# yolo-pipeline configs:") == 1 and chosen_max_batches(cfg) == 50
    apply_values(cfg, compute_values(cfg, classes=2, train_images=8, opts=CfgOptions()))
    assert chosen_max_batches(cfg) is None and "# yolo-pipeline" not in render_cfg(cfg)


@pytest.fixture
def template_dir(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "darknet"
    (home / "cfg").mkdir(parents=True)
    for name in ("yolov3-tiny", "yolov3", "yolov2-tiny", "resnet50"):
        (home / "cfg" / f"{name}.cfg").write_text((DATA / "tiny_yolo.cfg").read_text())
    monkeypatch.setenv("DARKNET_HOME", str(home))
    monkeypatch.setattr(darknet_fork, "DEBIAN_CFG_DIR", tmp_path / "none")
    return home / "cfg"


def test_a_template_name_with_a_typo_lists_the_closest_names(template_dir):
    assert darknet_fork.find_template("yolov3-tiny") == template_dir / "yolov3-tiny.cfg"
    with pytest.raises(UserError) as err:
        darknet_fork.find_template("yolov3-tinny")
    message = str(err.value)
    assert "closest: yolov3-tiny" in message and "resnet50" not in message
    with pytest.raises(UserError, match="closest: yolov2-tiny"):
        darknet_fork.find_template("YOLOv2-tiny.cfg.cfg")
    with pytest.raises(UserError, match="give --template PATH"):
        darknet_fork.find_template("zzzz")
