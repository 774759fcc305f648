"""darknet.cfg and .values: byte-exact round trip, darknet's reading of lines, edits, computed values."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.darknet.cfg import c_float, c_int, parse_cfg, read_cfg, render_cfg
from pipeline.darknet.fork import DEBIAN_CFG_DIR
from pipeline.darknet.lint import lint_cfg
from pipeline.darknet.values import CfgOptions, apply_values, compute_values, max_batches_rule
from pipeline.errors import CfgError

DATA = Path(__file__).parents[1] / "data" / "cfg"
DEBIAN = sorted(DEBIAN_CFG_DIR.glob("*.cfg"))
needs_debian = pytest.mark.skipif(not DEBIAN, reason="Debian darknet package not installed")


def _text(path: Path) -> str:
    return path.read_bytes().decode("utf-8", "surrogateescape")


@needs_debian
def test_every_debian_template_round_trips_byte_for_byte():
    assert len(DEBIAN) >= 40
    for path in DEBIAN:
        text = _text(path)
        cfg = parse_cfg(text, path)
        assert render_cfg(cfg) == text, path
        assert parse_cfg(render_cfg(cfg)) == cfg, path


def test_real_world_cfgs_round_trip():
    cfgs = sorted(DATA.glob("*.cfg"))
    for path in cfgs:
        if path.name == "not_a_cfg.cfg":
            continue
        text = _text(path)
        assert render_cfg(parse_cfg(text)) == text, path
    # one of them has no final newline; it must stay without one
    last = (DATA / "maskDetectionYolov3_yolo_mask-train.cfg").read_bytes()
    assert not last.endswith(b"\n")


_line = st.one_of(
    st.sampled_from(["", "# c", ";x", "  ", "[yolo]", "[convolutional]", "\t[route]"]),
    st.builds(lambda k, v, sp: f"{k}{sp}={sp}{v}", st.sampled_from(["classes", "mask", "a b"]),
              st.text("0123456789,. #\t\u00e9", max_size=8), st.sampled_from(["", " ", "\t"])),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_line, max_size=12), st.sampled_from(["\n", "\r\n"]), st.booleans())
def test_round_trip_property(lines, eol, final_newline):
    text = eol.join(["[net]", *lines]) + (eol if final_newline else "")
    cfg = parse_cfg(text)
    assert render_cfg(cfg) == text
    assert parse_cfg(render_cfg(cfg)) == cfg


def test_lines_are_read_as_darknet_reads_them():
    cfg = parse_cfg("[net]\n max_batches = 500200 \nbatch=1 # test\nhue=.1\n"
                    "anchors = 10,14,  23,27\njunk line\n[yolo] # head\n")
    net = cfg.net
    assert net.get("max_batches") == "500200"
    assert net.get_int("batch", 0) == 1 and net.get("batch") == "1#test"
    assert net.get_floats("hue") == [0.1]
    assert net.get_floats("anchors") == [10, 14, 23, 27]
    assert [ln.number for ln in net.lines if ln.is_junk] == [6]
    assert cfg.sections[1].type == "[yolo]#head"  # darknet: "Type not recognized"


@pytest.mark.parametrize(("text", "i", "f"), [
    ("12", 12, 12.0), ("1#x", 1, 1.0), (".1", 0, 0.1), ("", 0, 0.0), ("-3", -3, -3.0),
    ("5e-4", 5, 0.0005), ("abc", 0, 0.0),
])
def test_c_number_semantics(text, i, f):
    assert c_int(text) == i
    assert c_float(text) == pytest.approx(f)


def test_first_repeated_key_wins_like_option_find():
    cfg = parse_cfg((DATA / "Darknet3_yolov3-voc.cfg").read_text())
    assert cfg.net.get_int("batch", 0) == 1  # " batch=1" on line 3 is active


@pytest.mark.parametrize(("text", "message"), [
    ("", "no [section] found"),
    ("# only a comment\n", "no [section] found"),
    ("width=416\n[net]\n", "text before the first [section]"),
    ("[convolutional]\nfilters=3\n", "first section must be [net]"),
    ("[net]\x00\x01", "binary data"),
])
def test_not_a_cfg_is_a_cfg_error(text, message):
    with pytest.raises(CfgError, match=message.replace("[", r"\[")):
        parse_cfg(text, "x.cfg")


def test_read_cfg_of_missing_file_is_a_cfg_error(tmp_path):
    with pytest.raises(CfgError, match="cannot read cfg"):
        read_cfg(tmp_path / "nope.cfg")


def test_edit_keeps_spacing_and_touches_only_that_line():
    text = "[net]\r\nmax_batches = 500200\r\nsteps=400000,450000\r\n\r\n[yolo]\r\nclasses=80\r\n"
    cfg = parse_cfg(text)
    cfg.net.set("max_batches", "6000")
    cfg.sections[1].set("random", "0")  # absent: added after the last option, same line end
    out = render_cfg(cfg)
    diff = [d for d in difflib.ndiff(text.splitlines(True), out.splitlines(True))
            if d[0] in "+-"]
    assert diff == ["- max_batches = 500200\r\n", "+ max_batches = 6000\r\n",
                    "+ random=0\r\n"]


def test_adding_a_key_after_a_last_line_without_newline():
    cfg = parse_cfg("[net]\nwidth=32\n[yolo]\nclasses=2")
    cfg.sections[1].set("random", "0")
    assert render_cfg(cfg) == "[net]\nwidth=32\n[yolo]\nclasses=2\nrandom=0\n"


@needs_debian
def test_filters_formula_matches_every_debian_detector():
    """(classes+5)*masks, (classes+coords+1)*num, side^2*((1+coords)*num+classes): the
    templates' own filters= / output= agree with our formulas for yolo, region and detection."""
    kinds = set()
    for path in DEBIAN:
        cfg = read_cfg(path)
        for head in cfg.heads():
            classes = head.section.get_int("classes", 20)
            assert head.before.get_int(head.filters_key(), 1) == head.expected_filters(classes)
            kinds.add(head.section.type)
    assert kinds == {"[yolo]", "[region]", "[detection]"}


def test_gaussian_and_region_formulas_on_hand_written_cfgs():
    g = read_cfg(DATA / "tiny_gaussian.cfg").heads()[0]
    assert g.expected_filters(2) == (2 + 9) * 3 == g.before.get_int("filters", 0)
    r = read_cfg(DATA / "tiny_region.cfg").heads()[0]
    assert r.expected_filters(2) == (2 + 4 + 1) * 5 == r.before.get_int("filters", 0)


@pytest.mark.parametrize(("classes", "images", "want"), [
    (1, 0, 6000), (2, 100, 6000), (3, 6500, 6500), (10, 5000, 20000), (5, 123456, 123456),
])
def test_max_batches_rule(classes, images, want):
    assert max_batches_rule(classes, images) == want


def _values(choices):
    return {(c.where, c.key): c.value for c in choices}


@needs_debian
def test_compute_values_for_yolov3_tiny_test_mode_template():
    cfg = read_cfg(DEBIAN_CFG_DIR / "yolov3-tiny.cfg")
    choices = compute_values(cfg, classes=10, train_images=5000, opts=CfgOptions())
    v = _values(choices)
    # the 10-class run of the report: max_batches 20000, steps 16000/18000
    assert v[("[net]", "max_batches")] == "20000"
    assert v[("[net]", "steps")] == "16000,18000" and v[("[net]", "scales")] == ".1,.1"
    assert v[("[net]", "batch")] == "64" and v[("[net]", "subdivisions")] == "16"
    assert v[("[net]", "width")] == "416"
    assert [c.value for c in choices if c.key == "filters"] == ["45", "45"]  # (10+5)*3
    assert [c.value for c in choices if c.key == "classes"] == ["10", "10"]
    assert not [c for c in choices if c.key == "random"]  # long run: template's random=1 kept
    assert all(c.reason for c in choices)
    assert "test mode" in next(c.reason for c in choices if c.key == "batch")


@needs_debian
@pytest.mark.parametrize("template", ["yolov3-tiny", "yolov3", "yolov3-spp", "yolov2-voc",
                                      "yolov2-tiny", "yolov1-tiny"])
@pytest.mark.parametrize("classes", [1, 3])
def test_generated_cfgs_pass_every_rule(template, classes):
    cfg = read_cfg(DEBIAN_CFG_DIR / f"{template}.cfg")
    apply_values(cfg, compute_values(cfg, classes=classes, train_images=300, opts=CfgOptions()))
    again = parse_cfg(render_cfg(cfg))
    found = lint_cfg(again, template, "pjreddie", data_classes=classes, train_images=300)
    assert [f for f in found if f.severity == "error"] == []
    assert again.net.get_int("max_batches", 0) == 6000


def test_short_run_gets_random_0_and_small_burn_in():
    cfg = read_cfg(DATA / "tiny_yolo.cfg")
    cfg.sections[-1].set("random", "1")
    choices = compute_values(cfg, classes=2, train_images=8, opts=CfgOptions(max_batches=10))
    v = _values(choices)
    assert v[("[yolo]#1", "random")] == "0"
    assert v[("[net]", "steps")] == "8,9"
    assert v[("[net]", "burn_in")] == "1"  # template's 100 >= 10 iterations
    assert "below the rule" in next(c.reason for c in choices if c.key == "max_batches")


@pytest.mark.parametrize(("opts", "message"), [
    (CfgOptions(width=100), "--width 100: must be a positive multiple of 32"),
    (CfgOptions(batch=64, subdivisions=10), "batch 64 must be a positive multiple of subdivisions 10"),
    (CfgOptions(max_batches=0), "--max-batches 0"),
])
def test_bad_options_are_cfg_errors(opts, message):
    with pytest.raises(CfgError, match=message.replace("(", r"\(")):
        compute_values(read_cfg(DATA / "tiny_yolo.cfg"), classes=2, train_images=8, opts=opts)


def test_template_without_detection_layer_is_refused():
    cfg = parse_cfg("[net]\nwidth=224\n\n[convolutional]\nfilters=8\n")
    with pytest.raises(CfgError, match="no detection layer"):
        compute_values(cfg, classes=2, train_images=0, opts=CfgOptions())
