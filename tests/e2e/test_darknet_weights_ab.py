"""Real weights files from the AlexeyAB binary against the cfgs they were made for.

A 64 px, 2-class yolov4-tiny trained for one iteration writes a full `_final.weights`;
`darknet partial` cuts it; a yolov3-tiny file comes from `partial` on a header-only file
(darknet saves its random init). What `match_weights` says about each must agree with
what darknet itself wrote and read back.
"""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import black_jpeg

from pipeline.darknet.cfg import read_cfg, write_cfg
from pipeline.darknet.layers import layer_floats
from pipeline.darknet.weights import make_partial, match_weights
from pipeline.errors import UserError

pytestmark = pytest.mark.darknet
FORK = "alexeyab"


def small_cfg(template: Path, out: Path) -> Path:
    """`template` at 64 px, 2 classes, batch 2, one iteration."""
    cfg = read_cfg(template)
    for key, value in (("batch", "2"), ("subdivisions", "1"), ("width", "64"), ("height", "64"),
                       ("max_batches", "1")):
        cfg.net.set(key, value)
    for head in cfg.heads():
        head.section.set("classes", "2")
        head.before.set("filters", str(head.expected_filters(2)))
    write_cfg(cfg, out)
    return out


def darknet(binary: str, *args: str | Path, cwd: Path) -> str:
    proc = subprocess.run([binary, *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          errors="replace", stdin=subprocess.DEVNULL, timeout=120)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def made(ab_darknet, tmp_path_factory) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("weights")
    templates = Path(ab_darknet).parent / "cfg"
    v4 = small_cfg(templates / "yolov4-tiny.cfg", root / "yolov4-tiny-64.cfg")
    v3 = small_cfg(templates / "yolov3-tiny.cfg", root / "yolov3-tiny-64.cfg")
    for i in range(2):
        black_jpeg(root / "data" / f"img{i}.jpg", 64, 64)
        (root / "data" / f"img{i}.txt").write_text("0 0.5 0.5 0.25 0.25\n")
    (root / "train.txt").write_text("".join(f"{root}/data/img{i}.jpg\n" for i in range(2)))
    (root / "obj.names").write_text("a\nb\n")
    (root / "backup").mkdir()
    (root / "obj.data").write_text(f"classes=2\ntrain={root}/train.txt\nvalid={root}/train.txt\n"
                                   f"names={root}/obj.names\nbackup={root}/backup/\n")
    log = darknet(ab_darknet, "detector", "train", root / "obj.data", v4, "-dont_show", cwd=root)
    assert " 1: " in log and "avg loss" in log
    final = root / "backup" / "yolov4-tiny-64_final.weights"
    # a header-only input: partial loads nothing and saves every layer's random init
    (root / "header.weights").write_bytes(struct.pack("<3iQ", 0, 2, 5, 0))
    v3_full = root / "yolov3-tiny-64.weights"
    darknet(ab_darknet, "partial", v3, root / "header.weights", v3_full, 1000, cwd=root)
    return SimpleNamespace(root=root, binary=ab_darknet, v4=v4, v3=v3, final=final,
                           v3_full=v3_full, templates=templates)


def test_trained_file_holds_all_layers(made):
    match = match_weights(made.v4, made.final, FORK)
    assert (match.kind, match.layers, match.message) == ("full", 38, "all layers of yolov4-tiny-64.cfg")
    assert (match.version, match.seen, match.iteration) == ((0, 2, 5), 2, 1)  # 1 iteration x batch 2
    assert match.floats_in_file == match.floats_expected == 5_882_634
    assert made.final.stat().st_size == 20 + 4 * 5_882_634 == 23_530_556
    v3 = match_weights(made.v3, made.v3_full, FORK)
    assert (v3.kind, v3.message, v3.seen) == ("full", "all layers of yolov3-tiny-64.cfg", 0)
    assert made.v3_full.stat().st_size == 20 + 4 * 8_678_554


@pytest.mark.parametrize(("cut", "kind", "layers", "message"), [
    (15, "partial", 14, "layers 0..13 of yolov4-tiny-64.cfg"),  # layer 14 is a [route]
    (29, "partial", 29, "layers 0..28 of yolov4-tiny-64.cfg"),  # yolov4-tiny.conv.29
    (31, "partial", 30, "layers 0..29 of yolov4-tiny-64.cfg"),  # 30 [yolo], 31 [route]
    (38, "full", 38, "all layers of yolov4-tiny-64.cfg"),
])
def test_make_partial_cuts_the_trained_file(made, tmp_path, cut, kind, layers, message):
    out = tmp_path / f"yolov4-tiny-64.conv.{cut}"
    match = make_partial(made.binary, FORK, made.v4, made.final, cut, out)
    assert (match.kind, match.layers, match.message) == (kind, layers, message)
    assert (match.version, match.seen, match.iteration) == ((0, 2, 5), 0, 0)
    assert match.ok_for_start
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temp file left
    floats = sum(c.floats for c in layer_floats(read_cfg(made.v4), FORK)[:cut])
    data = out.read_bytes()
    assert len(data) == 20 + 4 * floats
    # the same floats as the first layers of the trained file
    assert data[20:] == made.final.read_bytes()[20:20 + 4 * floats]


def test_darknet_reads_a_partial_file_where_we_say_it_ends(made, tmp_path):
    conv29 = make_partial(made.binary, FORK, made.v4, made.final, 29, tmp_path / "a.conv.29")
    again = make_partial(made.binary, FORK, made.v4, tmp_path / "a.conv.29", 29, tmp_path / "b.conv.29")
    assert conv29 == again
    # the backbone does not depend on classes or input size: the published conv.29 size
    assert (tmp_path / "a.conv.29").stat().st_size == 19_789_716
    assert (tmp_path / "a.conv.29").read_bytes() == (tmp_path / "b.conv.29").read_bytes()


def test_other_cfgs_weights_do_not_match(made):
    v3_on_v4 = match_weights(made.v4, made.v3_full, FORK)
    assert (v3_on_v4.kind, v3_on_v4.ok_for_start) == ("mismatch", False)
    assert v3_on_v4.message == "the file is 2,795,920 floats longer than the cfg"
    v4_on_v3 = match_weights(made.v3, made.final, FORK)
    assert (v4_on_v3.kind, v4_on_v3.layers) == ("mismatch", 12)
    assert v4_on_v3.message == "layer 12 expects 4,722,688 floats; the file ends 4,306,842 floats into it"


def test_truncated_copy_names_the_layer(made, tmp_path):
    counts = layer_floats(read_cfg(made.v4), FORK)
    upto = sum(c.floats for c in counts[:29])
    cut = tmp_path / "cut.weights"
    cut.write_bytes(made.final.read_bytes()[:20 + 4 * (upto + 2_076)])
    match = match_weights(made.v4, cut, FORK)
    assert (match.kind, match.layers, match.seen) == ("mismatch", 29, 2)
    assert match.message == "layer 29 expects 10,773 floats; the file ends 2,076 floats into it"
    # a file too short for the layers asked is refused before darknet runs
    with pytest.raises(UserError, match=r"cut\.weights cannot give 31 layers of yolov4-tiny-64\.cfg "
                                        r"\(4,958,197 floats\): layer 29 expects"):
        make_partial(made.binary, FORK, made.v4, cut, 31, tmp_path / "out.weights")
    # layers 0..28 are all there
    ok = make_partial(made.binary, FORK, made.v4, cut, 29, tmp_path / "out.weights")
    assert ok.message == "layers 0..28 of yolov4-tiny-64.cfg"


def test_failing_darknet_is_a_user_error_with_its_reason(made, tmp_path):
    # AlexeyAB's own resnet50.cfg trips an assert in its parser (a shortcut between layers
    # of different sizes): darknet aborts before it reads the weights
    cfg = made.templates / "resnet50.cfg"
    need = sum(c.floats for c in layer_floats(read_cfg(cfg), FORK)[:10])
    source = tmp_path / "resnet50.weights"
    with open(source, "wb") as f:
        f.write(struct.pack("<3iQ", 0, 2, 5, 0))
        f.truncate(20 + 4 * need)
    with pytest.raises(UserError, match=r"^darknet partial failed \(killed by SIGABRT\): darknet: "
                                        r".*parse_shortcut: Assertion .* failed\.$"):
        make_partial(made.binary, FORK, cfg, source, 10, tmp_path / "out.weights")
    assert [p.name for p in tmp_path.iterdir()] == ["resnet50.weights"]
