"""darknet.lint rules (one broken line at a time, with its line number), real cfgs, fork detection."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from pipeline.darknet.cfg import parse_cfg, read_cfg
from pipeline.darknet.fork import (
    DEBIAN_CFG_DIR,
    choose_fork,
    detect_fork,
    find_template,
    fork_of_bytes,
)
from pipeline.darknet.lint import lint_cfg
from pipeline.errors import UserError

DATA = Path(__file__).parents[1] / "data" / "cfg"
TINY = (DATA / "tiny_yolo.cfg").read_text()
needs_debian = pytest.mark.skipif(not DEBIAN_CFG_DIR.is_dir(), reason="no Debian darknet cfgs")


def _lint(text: str, fork: str = "pjreddie", **kw) -> list:
    return lint_cfg(parse_cfg(text), "t.cfg", fork, **kw)


def _errors(found) -> set[tuple[str, int]]:
    return {(f.rule, f.line) for f in found if f.severity == "error"}


def test_the_hand_written_cfg_is_clean_for_both_forks():
    assert _lint(TINY, "pjreddie", data_classes=2) == []
    assert _lint(TINY, "alexeyab", data_classes=2) == []


# (old text, new text, fork, expected (rule, line) errors); lines refer to tiny_yolo.cfg.
MUTATIONS = [
    ("filters=21", "filters=18", "pjreddie", {("filters", 27)}),
    ("classes=2", "classes=3", "pjreddie", {("filters", 27)}),
    ("mask=0,1,2", "mask=0,1,5", "pjreddie", {("mask", 31)}),
    ("37,58", "37", "pjreddie", {("anchors", 32), ("mask", 31)}),  # 2 pairs left
    ("37,58", "37,58, 81,82", "pjreddie", {("anchors", 32)}),
    ("width=160", "width=170", "pjreddie", {("size-32", 5)}),
    ("height=160", "height=150", "alexeyab", {("size-32", 6)}),
    ("subdivisions=16", "subdivisions=10", "pjreddie", {("batch-subdivisions", 3)}),
    ("steps=4800,5400", "steps=5400,4800", "pjreddie", {("steps-order", 12)}),
    ("steps=4800,5400", "steps=400000,450000", "pjreddie", {("steps-beyond", 12)}),
    ("scales=.1,.1", "scales=.1", "pjreddie", {("scales-count", 13)}),
    ("max_batches=6000", "max_batches=3000", "pjreddie", {("max-batches", 10), ("steps-beyond", 12)}),
    ("activation=leaky", "activation=mish", "pjreddie", {("unknown-activation", 21)}),
    ("activation=leaky", "activation=mish", "alexeyab", set()),
    ("random=0", "random=0\nscale_x_y=1.05", "pjreddie", {("unknown-key", 39)}),
    ("random=0", "random=0\nscale_x_y=1.05", "alexeyab", set()),
    ("channels=3", "channels=3\nmosaic=1", "pjreddie", {("unknown-key", 8)}),
    ("policy=steps", "policy=sgdr", "pjreddie", {("unknown-policy", 11)}),
    ("policy=steps", "policy=sgdr", "alexeyab", set()),
    ("\n[yolo]\n", "\n[sam]\nfrom=-1\n\n[yolo]\n", "pjreddie", {("unknown-layer", 30)}),
    ("batch=64", "batch=64\nbatch=32", "pjreddie", {("duplicate-key", 4)}),
    ("size=3", "size 3", "pjreddie", {("junk-line", 18)}),
    ("activation=linear", "activation=linear # head",
     "alexeyab", {("inline-comment", 28), ("unknown-activation", 28)}),
    # no classes=: darknet uses 20, so filters and the max_batches rule follow
    ("classes=2", "num=3", "pjreddie", {("classes-missing", 30), ("filters", 27), ("max-batches", 10)}),
]


@pytest.mark.parametrize(("old", "new", "fork", "want"), MUTATIONS)
def test_each_rule_fires_on_its_line(old, new, fork, want):
    text = TINY.replace(old, new, 1)
    assert text != TINY
    assert _errors(_lint(text, fork)) == want


def test_classes_differing_from_the_data_file():
    found = _lint(TINY, data_classes=3)
    assert _errors(found) == {("classes-mismatch", 33)}
    assert "classes=2 but .data classes says 3" in found[0].message


def test_test_mode_is_a_warning_only():
    found = _lint(TINY.replace("batch=64\nsubdivisions=16", "batch=1\nsubdivisions=1"))
    assert [(f.rule, f.severity, f.line) for f in found] == [("test-mode", "warning", 3)]


def test_crlf_breaks_pjreddie_only():
    crlf = TINY.replace("\n", "\r\n")
    assert _errors(lint_cfg(parse_cfg(crlf), "t", "pjreddie", crlf=True)) == {("crlf", 1)}
    assert _errors(lint_cfg(parse_cfg(crlf), "t", "alexeyab", crlf=True)) == set()


def test_gaussian_head_needs_alexeyab_and_checks_its_own_formula():
    text = (DATA / "tiny_gaussian.cfg").read_text()
    assert _errors(_lint(text, "pjreddie")) == {("unknown-layer", 20)}
    assert _errors(_lint(text, "alexeyab")) == set()
    bad = _errors(_lint(text.replace("filters=33", "filters=21"), "alexeyab"))
    assert bad == {("filters", 17)}  # (2+9)*3 = 33, not the [yolo] 21


def test_region_head_formula():
    text = (DATA / "tiny_region.cfg").read_text()
    assert _errors(_lint(text)) == set()
    assert _errors(_lint(text.replace("num=5", "num=4"))) == {("filters", 17), ("anchors", 21)}


def test_mask_detection_cfg_is_flagged_as_in_the_issue():
    """classes=1 in two heads vs 2 in the last, and filters=18 before the last (must be 21)."""
    found = lint_cfg(read_cfg(DATA / "maskDetectionYolov3_yolo_mask-test.cfg"), "m", "alexeyab")
    assert _errors(found) == {("classes-mismatch", 612), ("classes-mismatch", 697),
                              ("filters", 776), ("max-batches", 22)}
    filters = next(f for f in found if f.rule == "filters")
    assert "filters=18" in filters.message and "must be 21" in filters.message
    # its corrected twin is clean
    assert lint_cfg(read_cfg(DATA / "maskDetectionYolov3_yolo_mask-train.cfg"), "m",
                    "pjreddie") == []


def test_wbc_cfg_left_at_coco_defaults_is_a_warning():
    found = lint_cfg(read_cfg(DATA / "WBC-detection_yolo_custom.cfg"), "w", "pjreddie")
    assert [(f.rule, f.severity, f.line) for f in found] == [
        ("max-batches-high", "warning", 20)]


def test_stoma_yolov4_cfg_per_fork():
    cfg = read_cfg(DATA / "stoma_yolov4-obj.cfg")
    assert _errors(lint_cfg(cfg, "s", "alexeyab")) == {("max-batches", 19)}
    pj = Counter(f.rule for f in lint_cfg(cfg, "s", "pjreddie") if f.severity == "error")
    assert pj["max-batches"] == 1 and pj["unknown-activation"] > 50 and pj["unknown-key"] > 0


def test_sanip_yolov4_tiny_is_clean_for_alexeyab_only():
    cfg = read_cfg(DATA / "Sanip_yolov4-obj.cfg")
    assert lint_cfg(cfg, "s", "alexeyab") == []
    keys = {f.message.split(" read ")[1].split("=")[0] for f in lint_cfg(cfg, "s", "pjreddie")}
    assert {"groups", "group_id", "scale_x_y", "iou_loss", "nms_kind"} <= keys


def test_darknet3_indented_test_values_shadow_training_values():
    found = lint_cfg(read_cfg(DATA / "Darknet3_yolov3-voc.cfg"), "d", "pjreddie")
    assert _errors(found) == {("duplicate-key", 6), ("duplicate-key", 7)}
    assert "darknet uses the first one (batch=1)" in next(f.message for f in found
                                                            if f.line == 6)


@needs_debian
@pytest.mark.parametrize("name", ["yolov3-tiny", "yolov3", "yolov3-spp", "yolov3-voc",
                                  "yolov2", "yolov2-voc", "yolov2-tiny", "yolov1"])
def test_debian_detector_templates_have_no_errors_for_pjreddie(name):
    found = lint_cfg(read_cfg(DEBIAN_CFG_DIR / f"{name}.cfg"), name, "pjreddie")
    assert [f for f in found if f.severity == "error"] == []
    test_mode = read_cfg(DEBIAN_CFG_DIR / f"{name}.cfg").net.get_int("batch", 1) == 1
    assert (("test-mode", 3) in {(f.rule, f.line) for f in found}) == test_mode


# ---- fork detection and templates -----------------------------------------------------

def test_fork_of_bytes():
    assert fork_of_bytes(b"\0[yolo]\0First section must be [net] or [network]\0") == "pjreddie"
    assert fork_of_bytes(b"[yolo]\0[Gaussian_yolo]\0scale_x_y\0") == "alexeyab"
    assert fork_of_bytes(b"\x7fELF nothing here") is None


@pytest.mark.skipif(not os.path.exists("/usr/bin/darknet"), reason="no Debian darknet")
def test_debian_binary_is_pjreddie():
    found = detect_fork("/usr/bin/darknet")
    assert found.fork == "pjreddie" and "parser strings" in found.evidence


def test_darknet_home_binary_is_detected_and_chosen(tmp_path, monkeypatch):
    fake = tmp_path / "darknet"
    fake.write_bytes(b"\x7fELF...[Gaussian_yolo]...scale_x_y...dont_show")
    fake.chmod(0o755)
    monkeypatch.setenv("DARKNET_HOME", str(tmp_path))
    assert detect_fork().fork == "alexeyab"
    fork, why = choose_fork(None)
    assert fork == "alexeyab" and str(fake) in why
    assert choose_fork("pjreddie") == ("pjreddie", "given (--fork)")


def test_no_binary_anywhere_assumes_alexeyab(monkeypatch, tmp_path):
    monkeypatch.delenv("DARKNET_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    fork, why = choose_fork(None)
    assert fork == "alexeyab" and "no darknet binary" in why


def test_template_lookup_order(tmp_path, monkeypatch):
    (tmp_path / "cfg").mkdir()
    own = tmp_path / "cfg" / "yolov3-tiny.cfg"
    own.write_text("[net]\n")
    monkeypatch.setenv("DARKNET_HOME", str(tmp_path))
    assert find_template("yolov3-tiny") == own  # $DARKNET_HOME/cfg first
    assert find_template(str(own)) == own.resolve()  # a path
    if (DEBIAN_CFG_DIR / "yolov2.cfg").is_file():
        assert find_template("yolov2.cfg") == DEBIAN_CFG_DIR / "yolov2.cfg"  # then Debian
    with pytest.raises(UserError, match="unknown template 'yolov9-huge'"):
        find_template("yolov9-huge")
