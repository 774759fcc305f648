"""Weights files against cfgs by size: the floats per layer, the header, the three kinds.

The published pretrained files (shared/research/darknet-forks.md §4) must come out exactly
from the AlexeyAB snapshot's cfg templates, which are read from the snapshot, never copied
here. The per-layer formulas are checked on tiny cfgs worked out by hand.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest
from conftest import alexeyab_darknet

from pipeline.darknet.cfg import parse_cfg
from pipeline.darknet.layers import LayerFloats, images_per_iteration, layer_floats
from pipeline.darknet.weights import (
    _last_meaningful,
    make_partial,
    match_size,
    match_weights,
    parse_header,
)
from pipeline.errors import CfgError, UserError

SHARED_CFG = Path(__file__).resolve().parents[2].parent / "shared" / "darknet-alexeyab" / "cfg"


@pytest.fixture(scope="module")
def ab_cfg() -> Path:
    """The AlexeyAB cfg templates: beside the built binary, else the shared snapshot."""
    binary = alexeyab_darknet()
    for folder in ([Path(binary).parent / "cfg"] if binary else []) + [SHARED_CFG]:
        if (folder / "yolov4-tiny.cfg").is_file():
            return folder
    reason = f"no AlexeyAB cfg templates (no binary with cfg/, no {SHARED_CFG})"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def counts_of(folder: Path, name: str, fork: str = "alexeyab") -> list[LayerFloats]:
    path = folder / name
    return layer_floats(parse_cfg(path.read_text(), path), fork, path)


# --- the published files (80-class templates, as published) -----------------------------


@pytest.mark.parametrize(("cfg", "size", "kind", "layers", "message"), [
    ("yolov4.cfg", 170_038_676, "partial", 137, "layers 0..136 of yolov4.cfg"),  # yolov4.conv.137
    ("yolov4-tiny.cfg", 24_251_276, "full", 38, "all layers of yolov4-tiny.cfg"),  # yolov4-tiny.weights
    ("yolov4-tiny.cfg", 19_789_716, "partial", 29, "layers 0..28 of yolov4-tiny.cfg"),  # .conv.29
    ("yolov4-tiny-custom.cfg", 19_789_716, "partial", 29, "layers 0..28 of yolov4-tiny-custom.cfg"),
    # darknet53.conv.74: layer 74 is a [shortcut], so the file ends after layer 73
    ("yolov3.cfg", 162_482_580, "partial", 74, "layers 0..73 of yolov3.cfg"),
    # yolov3-tiny.conv.11: layer 11 is a [maxpool]; .conv.15: layer 15 a [convolutional]
    ("yolov3-tiny.cfg", 6_303_188, "partial", 11, "layers 0..10 of yolov3-tiny.cfg"),
    ("yolov3-tiny.cfg", 30_973_396, "partial", 15, "layers 0..14 of yolov3-tiny.cfg"),
    # the full files of the same templates (sizes of the published yolov4/yolov3 .weights)
    ("yolov4.cfg", 257_717_640, "full", 162, "all layers of yolov4.cfg"),
    ("yolov3.cfg", 248_007_048, "full", 107, "all layers of yolov3.cfg"),
    ("yolov3-tiny.cfg", 35_434_956, "full", 24, "all layers of yolov3-tiny.cfg"),
])
def test_published_files_match_their_cfgs(ab_cfg, cfg, size, kind, layers, message):
    match = match_size(counts_of(ab_cfg, cfg), size, 20, cfg)
    assert (match.kind, match.layers, match.message) == (kind, layers, message)
    assert match.ok_for_start
    assert match.floats_in_file == (size - 20) // 4


def test_yolov4_tiny_layer_counts(ab_cfg):
    counts = counts_of(ab_cfg, "yolov4-tiny.cfg")
    assert len(counts) == 38
    assert sum(c.floats for c in counts[:29]) == 4_947_424
    assert counts[29] == LayerFloats(29, "[convolutional]", 130_815, counts[29].line, (13, 13, 255))
    assert counts[0].floats == 32 + 3 * 32 + 3 * 3 * 3 * 32  # biases, batch norm, weights
    assert sum(c.floats for c in counts) == 6_062_814
    assert [c.index for c in counts if c.floats == 0] == [3, 6, 8, 9, 11, 14, 16, 17, 19, 22, 24,
                                                          25, 30, 31, 33, 34, 37]


def test_file_ending_inside_a_layer_names_it(ab_cfg):
    counts = counts_of(ab_cfg, "yolov4-tiny.cfg")
    match = match_size(counts, 20 + 4 * (4_947_424 + 2_076), 20, "yolov4-tiny.cfg")
    assert match.kind == "mismatch" and not match.ok_for_start
    assert match.message == "layer 29 expects 130,815 floats; the file ends 2,076 floats into it"
    assert match.layers == 29
    assert (match.floats_expected, match.floats_in_file) == (6_062_814, 4_949_500)


def test_longer_file_says_by_how_much(ab_cfg):
    counts = counts_of(ab_cfg, "yolov4-tiny.cfg")
    match = match_size(counts, 24_251_276 + 4 * 4_464_640, 20, "yolov4-tiny.cfg")
    assert (match.kind, match.layers) == ("mismatch", 38)
    assert match.message == "the file is 4,464,640 floats longer than the cfg"


@pytest.mark.parametrize(("size", "layers", "message"), [
    (10, 0, "the file is 10 bytes, shorter than a 20-byte weights header"),
    (20, 0, "the file holds no weights, only its 20-byte header"),
    (20 + 4 * 10 + 2, 2, "the 42 bytes after the 20-byte header are not a whole number of "
                         "4-byte floats"),
    (20 + 4 * 3, 0, "layer 0 expects 10 floats; the file ends 3 floats into it"),
    (20 + 4 * 10, 1, "layers 0..0 of t.cfg"),
    (20 + 4 * 15, 3, "layers 0..2 of t.cfg"),  # layers 1 and 3 hold nothing
    (20 + 4 * 22, 5, "all layers of t.cfg"),
])
def test_match_size_edges(size, layers, message):
    match = match_size([10, 0, 5, 0, 7], size, 20, "t.cfg")
    assert (match.layers, match.message) == (layers, message)
    assert match.kind == ("full" if "all" in message else "partial" if "layers 0" in message
                          else "mismatch")


# --- floats per layer type, worked out by hand -------------------------------------------

NET = "[net]\nbatch=64\nsubdivisions=16\nheight=8\nwidth=8\nchannels=3\n"


def floats(body: str, fork: str = "alexeyab", net: str = NET) -> list[int]:
    return [c.floats for c in layer_floats(parse_cfg(net + body), fork)]


def shapes(body: str, fork: str = "alexeyab", net: str = NET) -> list[tuple[int, int, int]]:
    return [c.shape for c in layer_floats(parse_cfg(net + body), fork)]


CONV1 = "[convolutional]\nfilters=4\nsize=1\n"  # 3 -> 4 channels: 4 + 3*4 = 16 floats


@pytest.mark.parametrize(("body", "fork", "expected"), [
    # convolutional: biases + 3n batch norm + (c/groups) n size^2
    ("[convolutional]\nbatch_normalize=1\nfilters=4\nsize=3\npad=1\n", "alexeyab", [124]),
    ("[convolutional]\nfilters=4\nsize=3\npad=1\n", "pjreddie", [4 + 108]),
    (CONV1 + "[convolutional]\ngroups=2\nfilters=6\nsize=3\n", "alexeyab", [16, 6 + 2 * 6 * 9]),
    # xnor=1 turns groups off in AlexeyAB's parser only
    (CONV1 + "[convolutional]\nxnor=1\ngroups=2\nfilters=6\nsize=3\n", "alexeyab", [16, 222]),
    (CONV1 + "[convolutional]\nxnor=1\ngroups=2\nfilters=6\nsize=3\n", "pjreddie", [16, 114]),
    # share_index: the shared layer saves nothing (AlexeyAB); pjreddie ignores the key
    (CONV1 + "[convolutional]\nfilters=4\nsize=1\n[convolutional]\nshare_index=-1\nfilters=4\n"
     "size=1\n", "alexeyab", [16, 20, 0]),
    (CONV1 + "[convolutional]\nfilters=4\nsize=1\n[convolutional]\nshare_index=1\nfilters=4\n"
     "size=1\n", "pjreddie", [16, 20, 20]),
    ("[convolutional]\ncbn=1\nfilters=2\nsize=1\n", "alexeyab", [2 + 6 + 6]),
    # connected: out + in*out (+3 out); in = the previous layer's h*w*c
    ("[connected]\noutput=5\n", "alexeyab", [5 + 192 * 5]),
    ("[connected]\noutput=5\nbatch_normalize=1\n", "pjreddie", [5 + 960 + 15]),
    # local: biases per location, size^2 c n per location
    ("[local]\nfilters=2\nsize=3\n", "alexeyab", [36 * 2 + 9 * 3 * 2 * 36]),
    ("[local]\nfilters=2\nsize=3\npad=1\n", "pjreddie", [64 * 2 + 9 * 3 * 2 * 64]),
    # batchnorm: AlexeyAB saves biases too (4c), pjreddie 3c
    ("[batchnorm]\n", "alexeyab", [12]),
    ("[batchnorm]\n", "pjreddie", [9]),
    # shortcut weights: per_feature k+1, per_channel (k+1) c, k = entries in from=
    (CONV1 + CONV1 + "[shortcut]\nfrom=-2\n", "alexeyab", [16, 20, 0]),
    (CONV1 + CONV1 + "[shortcut]\nfrom=-2\nweights_type=per_feature\n", "alexeyab", [16, 20, 2]),
    (CONV1 + CONV1 + "[shortcut]\nfrom=-2,-1\nweights_type=per_channel\n", "alexeyab",
     [16, 20, 3 * 4]),
    (CONV1 + CONV1 + "[shortcut]\nfrom=-2\nweights_type=per_channel\n", "pjreddie", [16, 20, 0]),
    ("[implicit]\nfilters=4\natoms=2\n", "alexeyab", [8]),
    # recurrent layers over connected blocks (in = 192)
    ("[rnn]\noutput=4\nhidden=6\n", "alexeyab", [(6 + 192 * 6) + (6 + 36) + (4 + 24)]),
    ("[rnn]\noutput=4\n", "pjreddie", [(4 + 192 * 4) + 2 * (4 + 16)]),
    ("[lstm]\noutput=4\n", "alexeyab", [4 * (4 + 768) + 4 * (4 + 16)]),
    ("[gru]\noutput=4\nbatch_normalize=1\n", "pjreddie", [3 * (4 + 768 + 12) + 3 * (4 + 16 + 12)]),
    # crnn: three convolutions c->hidden->hidden->output; pjreddie's are always 3x3
    ("[crnn]\nhidden=2\noutput=4\nsize=3\npad=1\n", "alexeyab", [56 + 38 + 76]),
    ("[crnn]\nhidden=2\noutput=4\nsize=1\n", "alexeyab", [8 + 6 + 12]),
    ("[crnn]\nhidden=2\noutput=4\nsize=1\n", "pjreddie", [56 + 38 + 76]),
    # conv_lstm: u* from the input, w* (one wf on 2*out with bottleneck), v* with peephole
    ("[conv_lstm]\noutput=2\nsize=3\npad=1\n", "alexeyab", [4 * 56 + 4 * 38]),
    ("[conv_lstm]\noutput=2\nsize=3\npad=1\npeephole=1\n", "alexeyab", [4 * 56 + 7 * 38]),
    ("[conv_lstm]\noutput=2\nsize=3\npad=1\nbottleneck=1\n", "alexeyab", [4 * 56 + 74]),
    ("[deconvolutional]\nfilters=2\nsize=2\nstride=2\n", "pjreddie", [2 + 3 * 2 * 4]),
    # route: channels summed, divided by groups (AlexeyAB); pjreddie ignores groups
    (CONV1 + "[route]\nlayers=-1\ngroups=2\n" + "[convolutional]\nfilters=1\nsize=1\n",
     "alexeyab", [16, 0, 1 + 2]),
    (CONV1 + "[route]\nlayers=-1\ngroups=2\n" + "[convolutional]\nfilters=1\nsize=1\n",
     "pjreddie", [16, 0, 1 + 4]),
    (CONV1 + CONV1 + "[route]\nlayers=-1,0\n" + "[convolutional]\nfilters=1\nsize=1\n",
     "alexeyab", [16, 20, 0, 1 + 8]),
    # maxpool_depth: out_channels channels (AlexeyAB); then a 1x1 conv sees them
    ("[maxpool]\nmaxpool_depth=1\nout_channels=1\nsize=2\nstride=2\n[convolutional]\nfilters=1\n"
     "size=1\n", "alexeyab", [0, 1 + 1]),
    ("[maxpool]\nmaxpool_depth=1\nout_channels=1\nsize=2\nstride=2\n[convolutional]\nfilters=1\n"
     "size=1\n", "pjreddie", [0, 1 + 3]),
    ("[avgpool]\n[connected]\noutput=2\n", "alexeyab", [0, 2 + 3 * 2]),
    ("[upsample]\nstride=-2\n[connected]\noutput=1\n", "alexeyab", [0, 1 + 4 * 4 * 3]),
    ("[upsample]\nstride=2\n[connected]\noutput=1\n", "pjreddie", [0, 1 + 16 * 16 * 3]),
    ("[reorg3d]\nstride=2\n[convolutional]\nfilters=1\nsize=1\n", "alexeyab", [0, 1 + 12]),
    ("[reorg]\nstride=2\n[connected]\noutput=1\n", "pjreddie", [0, 1 + 4 * 4 * 12]),
    ("[reorg]\nstride=2\nextra=5\n[connected]\noutput=1\n", "pjreddie", [0, 1 + 192 + 5]),
    ("[yolo]\n[dropout]\n[activation]\n[empty]\n[connected]\noutput=1\n", "alexeyab",
     [0, 0, 0, 0, 1 + 192]),
    ("[softmax]\n[connected]\noutput=1\n", "hank", [0, 1 + 192]),
])
def test_layer_floats_by_type(body, fork, expected):
    assert floats(body, fork) == expected


@pytest.mark.parametrize(("body", "net", "expected"), [
    ("[convolutional]\nfilters=2\nsize=3\nstride=2\npad=1\n", NET, [(4, 4, 2)]),
    ("[convolutional]\nfilters=2\nsize=3\nstride_x=2\nstride_y=1\npad=1\n", NET, [(8, 4, 2)]),
    # antialiasing: stride-1 host layer, then a 2x2 (=2) or 3x3 blur with the stride
    ("[convolutional]\nfilters=2\nsize=3\nstride=2\npad=1\nantialiasing=2\n",
     NET.replace("=8", "=7"), [(3, 3, 2)]),
    ("[convolutional]\nfilters=2\nsize=3\nstride=2\npad=1\nantialiasing=1\n",
     NET.replace("=8", "=7"), [(4, 4, 2)]),
    ("[maxpool]\nsize=2\nstride=2\n", NET, [(4, 4, 3)]),
    ("[maxpool]\nsize=3\nstride=1\n", NET, [(8, 8, 3)]),
    ("[local_avgpool]\nsize=2\nstride=2\n", NET, [(4, 4, 3)]),
    ("[upsample]\nstride=2\n", NET, [(16, 16, 3)]),
    ("[reorg3d]\nstride=2\nreverse=1\n", NET.replace("channels=3", "channels=8"), [(16, 16, 2)]),
    ("[history]\nhistory_size=3\n", NET, [(8, 8, 9)]),
    (CONV1 + "[avgpool]\n[convolutional]\nfilters=4\nsize=1\n[scale_channels]\nfrom=-3\n"
     "[sam]\nfrom=-4\n", NET, [(8, 8, 4), (1, 1, 4), (1, 1, 4), (8, 8, 4), (8, 8, 4)]),
    ("[implicit]\nfilters=4\natoms=2\n", NET, [(2, 1, 4)]),
])
def test_layer_shapes(body, net, expected):
    assert shapes(body, "alexeyab", net) == expected


def test_net_inputs_without_an_image_feed_connected_layers():
    net = "[net]\ninputs=10\nbatch=1\n"
    assert floats("[connected]\noutput=2\n", net=net) == [2 + 20]
    with pytest.raises(CfgError, match=r"layer 0 \[convolutional\]: the layer before it outputs no "
                                       r"image \(h x w x c is 0 x 0 x 0\)"):
        floats("[convolutional]\nfilters=1\nsize=1\n", net=net)


@pytest.mark.parametrize(("body", "fork", "pattern"), [
    ("[bogus]\n", "alexeyab", r"^x\.cfg:7: unknown layer type \[bogus\] \(layer 0; alexeyab"),
    ("[batchnorm]\n", "hank", r"^x\.cfg:7: unknown layer type \[batchnorm\] \(layer 0; hank"),
    (CONV1 + "[sam]\nfrom=-1\n", "pjreddie", r"^x\.cfg:10: unknown layer type \[sam\] \(layer 1;"),
    ("[implicit_add]\n", "alexeyab", r"unknown layer type \[implicit_add\]"),
    (CONV1 + "[net]\nwidth=1\n", "alexeyab", r"^x\.cfg:10: unknown layer type \[net\]"),
    ("[route]\nlayers=0\n", "alexeyab", r"^x\.cfg:7: layer 0 \[route\]: layers=0 names layer 0, "
                                        r"which is not a layer before it"),
    (CONV1 + "[route]\nlayers=-3\n", "alexeyab", r"layers=-3 names layer -2"),
    (CONV1 + "[shortcut]\n", "alexeyab", r"layer 1 \[shortcut\]: from= is missing"),
    (CONV1 + "[shortcut]\nfrom=-1\nweights_type=odd\n", "alexeyab", r"weights_type=odd is not"),
    (CONV1 + "[maxpool]\nsize=2\nstride=2\n[route]\nlayers=0,1\n", "alexeyab",
     r"layer 0 is 8x8 but layer 1 is 4x4"),
    ("[softmax]\n[maxpool]\n", "alexeyab", r"layer 1 \[maxpool\]: the layer before it outputs "
                                           r"no image"),
])
def test_cfg_errors_name_file_line_and_type(body, fork, pattern):
    with pytest.raises(CfgError, match=pattern):
        layer_floats(parse_cfg(NET + body), fork, "x.cfg")


def test_unknown_fork_is_a_user_error():
    with pytest.raises(UserError, match="unknown darknet fork 'yolov5'"):
        layer_floats(parse_cfg(NET), "yolov5")


@pytest.mark.parametrize(("net", "expected"), [
    ("batch=64\nsubdivisions=16", 64),
    ("batch=64\nsubdivisions=3", 63),  # darknet's mini-batch is 64/3 = 21
    ("batch=8\nsubdivisions=2\ntime_steps=4", 32),
    ("batch=8\nsubdivisions=0", 0),
])
def test_images_per_iteration(net, expected):
    assert images_per_iteration(parse_cfg(f"[net]\n{net}\n")) == expected


# --- the header and real files ----------------------------------------------------------


def test_parse_header_versions():
    ab = parse_header(struct.pack("<3iQ", 0, 2, 5, 128_000) + b"rest")
    assert ab is not None and (ab.version, ab.seen, ab.size) == ((0, 2, 5), 128_000, 20)
    old = parse_header(struct.pack("<3iI", 0, 1, 0, 3200) + b"\0" * 8)
    assert old is not None and (old.version, old.seen, old.size) == ((0, 1, 0), 3200, 16)
    assert parse_header(b"\xff\xd8\xff\xe0" + b"\0" * 20) is None  # a JPEG
    assert parse_header(struct.pack("<3i", 0, 2, 5)) is None  # no seen
    assert parse_header(b"") is None


TINY = NET + CONV1 + "[maxpool]\nsize=2\nstride=2\n" + "[convolutional]\nfilters=2\nsize=1\n"


def write_weights(path: Path, floats: int, seen: int = 0, version=(0, 2, 5)) -> Path:
    head = struct.pack("<3iQ" if version[0] * 10 + version[1] >= 2 else "<3iI", *version, seen)
    path.write_bytes(head + struct.pack(f"<{floats}f", *([0.5] * floats)))
    return path


def test_match_weights_reads_header_and_size(tmp_path):
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(TINY)
    full = match_weights(cfg, write_weights(tmp_path / "a.weights", 16 + 10, seen=6400), "alexeyab")
    assert (full.kind, full.message, full.layers) == ("full", "all layers of tiny.cfg", 3)
    assert (full.version, full.seen, full.iteration) == ((0, 2, 5), 6400, 100)
    part = match_weights(cfg, write_weights(tmp_path / "b.weights", 16), "pjreddie")
    assert (part.kind, part.message, part.layers, part.ok_for_start) == (
        "partial", "layers 0..0 of tiny.cfg", 1, True)
    old = match_weights(cfg, write_weights(tmp_path / "c.weights", 26, 640, (0, 1, 0)), "alexeyab")
    assert (old.kind, old.header_bytes, old.iteration) == ("full", 16, 10)
    (tmp_path / "d.weights").write_bytes(b"\xff\xd8\xff\xe0 not weights at all")
    bad = match_weights(cfg, tmp_path / "d.weights", "alexeyab")
    assert (bad.kind, bad.ok_for_start, bad.version) == ("mismatch", False, None)
    assert bad.message == ("not a darknet weights file: its header says version "
                           "-520103681.1953459744.1768257312")
    (tmp_path / "e.weights").write_bytes(b"\0" * 7)
    assert match_weights(cfg, tmp_path / "e.weights", "alexeyab").message == (
        "not a darknet weights file: 7 bytes, shorter than a weights header")
    (tmp_path / "f.weights").write_bytes(struct.pack("<3iI", 0, 2, 5, 0))
    assert match_weights(cfg, tmp_path / "f.weights", "alexeyab").message == (
        "not a darknet weights file: 16 bytes, shorter than its 20-byte header")
    with pytest.raises(UserError, match=r"cannot read weights .*missing\.weights"):
        match_weights(cfg, tmp_path / "missing.weights", "alexeyab")


# --- make_partial without darknet: a stand-in binary ------------------------------------


@pytest.fixture
def tiny(tmp_path) -> tuple[Path, Path]:
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(TINY)
    return cfg, write_weights(tmp_path / "full.weights", 26, seen=6400)


def fake_darknet(tmp_path: Path, script: str) -> Path:
    """A stand-in for `darknet partial CFG IN OUT N` ($2 $3 $4 $5)."""
    path = tmp_path / "fake-darknet"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)
    return path


def test_make_partial_keeps_a_right_result(tmp_path, tiny):
    cfg, full = tiny
    # like darknet: header 0,2,5 with seen 0, then the first layers' floats
    binary = fake_darknet(tmp_path, 'printf "\\0\\0\\0\\0\\2\\0\\0\\0\\5\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0\\0"'
                          ' > "$4"\ntail -c +21 "$3" | head -c 64 >> "$4"\n'
                          'case "$4" in */.out.conv.2.tmp.weights) ;; *) exit 3;; esac\n')
    out = tmp_path / "out.conv.2"
    match = make_partial(binary, "alexeyab", cfg, full, 2, out)
    assert (match.kind, match.layers, match.message) == ("partial", 1, "layers 0..0 of tiny.cfg")
    assert (match.seen, match.iteration) == (0, 0)
    assert out.stat().st_size == 20 + 64
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["tiny.cfg", "full.weights", "fake-darknet", "out.conv.2"])


def test_make_partial_refuses_a_wrong_result(tmp_path, tiny):
    cfg, full = tiny
    binary = fake_darknet(tmp_path, 'head -c 80 "$3" > "$4"\n')  # 15 floats: inside layer 0
    with pytest.raises(UserError, match=r"darknet partial wrote a file that is not layers 0\.\.0 of "
                                        r"tiny\.cfg: layer 0 expects 16 floats; the file ends 15"):
        make_partial(binary, "alexeyab", cfg, full, 1, tmp_path / "out.weights")
    assert not (tmp_path / "out.weights").exists()
    assert not (tmp_path / ".out.weights.tmp.weights").exists()


AB_FAILURE = """ GPU isn't used
   0 conv     32       3 x 3/ 2     64 x  64 x   3 ->   32 x  32 x  32 0.002 BF
Darknet error location: ./src/detector.c, train_detector(), line #91
Error: You set incorrect value batch=1 for Training! You should set batch=64 subdivision=64: Success
backtrace (8 entries)
1/8: /x/darknet(log_backtrace+0x21) [0x560f2568e8c1]
2/8: /x/darknet(error+0x34) [0x560f2568e974]
8/8: /x/darknet(_start+0x21) [0x560f25685261]
"""
HANK_FAILURE = """\x1b[1;31m* Error location: weights.cpp, load_weights_upto(), line #27
* Error message: \x1b[0mexpected to read 64 fields, but only read 0
* Call stack:
  0: darknet_fatal_error
**********************
"""


@pytest.mark.parametrize(("output", "line"), [
    (AB_FAILURE, "Error: You set incorrect value batch=1 for Training! You should set batch=64 "
                 "subdivision=64"),
    (HANK_FAILURE, "Error message: expected to read 64 fields, but only read 0"),
    ("Couldn't open file: /nope/x.weights\n", "Couldn't open file: /nope/x.weights"),
    ("something\nlast words\n\n   \n", "last words"),
    ("", "no output"),
])
def test_last_meaningful_line(output, line):
    assert _last_meaningful(output) == line


def test_make_partial_reports_darknet_failure(tmp_path, tiny):
    cfg, full = tiny
    binary = fake_darknet(tmp_path, f"cat >&2 <<'EOF'\n{AB_FAILURE}EOF\nexit 1\n")
    with pytest.raises(UserError, match=r"^darknet partial failed \(exit code 1\): Error: You set "
                                        r"incorrect value batch=1"):
        make_partial(binary, "alexeyab", cfg, full, 1, tmp_path / "out.weights")
    with pytest.raises(UserError, match=r"exit code 0\): no output"):  # exit 0, no file
        make_partial(fake_darknet(tmp_path, "exit 0\n"), "alexeyab", cfg, full, 1, tmp_path / "o")


@pytest.mark.parametrize(("layers", "weights_floats", "fork", "name", "pattern"), [
    (0, 26, "alexeyab", "a.weights", r"at least 1 layer, not 0"),
    (2, 10, "alexeyab", "a.weights", r"a\.weights cannot give 2 layers of tiny\.cfg \(16 floats\): "
                                     r"layer 0 expects 16 floats; the file ends 10 floats into it"),
    (2, 26, "hank", "a.conv.2", r"hank-ai darknet ignores .*a\.conv\.2: its name must end in "
                                r"\.weights"),
    (2, 26, "alexeyab", "a.weights", r"cannot write .*/nowhere/out"),
])
def test_make_partial_checks_before_running(tmp_path, tiny, layers, weights_floats, fork, name,
                                            pattern):
    cfg, _ = tiny
    weights = write_weights(tmp_path / name, weights_floats)
    never = fake_darknet(tmp_path, "exit 99\n")
    out = tmp_path / ("nowhere/out" if "nowhere" in pattern else "out")
    with pytest.raises(UserError, match=pattern):
        make_partial(never, fork, cfg, weights, layers, out)


def test_make_partial_of_layers_without_weights(tmp_path):
    cfg = tmp_path / "pool.cfg"
    cfg.write_text(NET + "[maxpool]\nsize=2\nstride=2\n" + CONV1)
    weights = write_weights(tmp_path / "a.weights", 16)
    with pytest.raises(UserError, match=r"layers 0\.\.0 of pool\.cfg hold no weights"):
        make_partial(fake_darknet(tmp_path, "exit 99\n"), "alexeyab", cfg, weights, 1,
                     tmp_path / "out")
