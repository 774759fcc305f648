"""Floats per layer from a darknet .cfg alone, as each fork saves them (the counting behind
`check-cfg --weights` and the size of a complete checkpoint).

Each layer's output (h, w, c) is tracked from `[net]` height/width/channels (or `inputs=`) as
the fork's parser builds it; a layer with weights stores, in cfg order, the float32 arrays
the fork's save_weights writes (shared/research/darknet-forks.md §6; AlexeyAB
`src/parser.c` save_weights_upto / load_weights_upto). Layers without weights (route,
maxpool, yolo, ...) count 0.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from pipeline.darknet.cfg import Cfg, Section
from pipeline.errors import CfgError, UserError

#: Forks whose weights layout this module knows.
WEIGHT_FORKS = ("pjreddie", "alexeyab", "hank")
_SHARE_UNSET = -1000000000  # AlexeyAB's "no share_index" default


@dataclass(frozen=True, slots=True)
class LayerFloats:
    """One cfg layer: its darknet index (0 = first section after [net]), section type,
    cfg line, the float32 values the weights file holds for it (0 for route, maxpool,
    yolo, ...), and its output shape (h, w, c) as darknet computes it."""

    index: int
    type: str
    floats: int
    line: int
    shape: tuple[int, int, int]



@dataclass(slots=True)
class _Out:
    """A layer's output as darknet's parser passes it on: out_h, out_w, out_c, outputs."""

    h: int
    w: int
    c: int
    outputs: int

    @classmethod
    def image(cls, h: int, w: int, c: int) -> _Out:
        return cls(h, w, c, h * w * c)

    @classmethod
    def flat(cls, outputs: int) -> _Out:
        """No image shape (detection, softmax, cost): out_h = out_w = out_c = 0."""
        return cls(0, 0, 0, outputs)


@dataclass(slots=True)
class _Ctx:
    fork: str
    name: str
    index: int
    section: Section
    inp: _Out
    prev: list[_Out]

    def fail(self, reason: str) -> CfgError:
        s = self.section
        return CfgError(f"{self.name}:{s.line}: layer {self.index} {s.type}: {reason}")

    def image(self) -> _Out:
        """The input, which must be an image (darknet: "Layer before ... must output image")."""
        if not (self.inp.h and self.inp.w and self.inp.c):
            raise self.fail("the layer before it outputs no image (h x w x c is "
                            f"{self.inp.h} x {self.inp.w} x {self.inp.c})")
        return self.inp

    def layer_ref(self, key: str, value: str | None = None) -> int:
        """`from=`/`layers=` entry as darknet resolves it: negative is relative."""
        text = self.section.get(key) if value is None else value
        if text is None:
            raise self.fail(f"{key}= is missing")
        ref = _c_int(text)
        at = ref + self.index if ref < 0 else ref
        if not 0 <= at < self.index:
            raise self.fail(f"{key}={text} names layer {at}, which is not a layer before it")
        return at

    @property
    def ab(self) -> bool:
        """AlexeyAB's parser (hank-ai keeps it): stride_x, share_index, route groups, ..."""
        return self.fork != "pjreddie"


def _c_int(text: str) -> int:
    m = re.match(r"^[+-]?\d+", text)
    return int(m.group()) if m else 0


def _cdiv(a: int, b: int) -> int:
    """C integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def _conv_floats(c: int, n: int, size: int, groups: int, bn: bool) -> int:
    """A convolutional layer's biases, [scales, rolling mean, rolling variance], weights."""
    return n + (3 * n if bn else 0) + (c // max(groups, 1)) * n * size * size


def _connected_floats(inputs: int, outputs: int, bn: bool) -> int:
    return outputs + inputs * outputs + (3 * outputs if bn else 0)


def _padding(s: Section, size: int) -> int:
    padding = s.get_int("padding", 0)
    return size // 2 if s.get_int("pad", 0) else padding


def _blur(h: int, w: int, kind: int, stride_y: int, stride_x: int) -> tuple[int, int]:
    """AlexeyAB `antialiasing=`: a stride-1 host layer, then a blur with the real stride."""
    size, pad = (2, 0) if kind == 2 else (3, 1)
    return _cdiv(h + 2 * pad - size, stride_y) + 1, _cdiv(w + 2 * pad - size, stride_x) + 1


def _convolutional(x: _Ctx) -> tuple[int, _Out]:
    s, i = x.section, x.image()
    n, size = s.get_int("filters", 1), s.get_int("size", 1)
    groups = s.get_int("groups", 1)
    stride = s.get_int("stride", 1)
    sx = sy = stride
    bn = bool(s.get_int("batch_normalize", 0))
    shared = False
    antialiasing = 0
    if x.ab:
        sx, sy = s.get_int("stride_x", -1), s.get_int("stride_y", -1)
        if sx < 1 or sy < 1:
            sx, sy = (stride if sx < 1 else sx), (stride if sy < 1 else sy)
        bn = bn or bool(s.get_int("cbn", 0))
        if s.get_int("xnor", 0):
            groups = 1
        share = s.get_int("share_index", _SHARE_UNSET)
        if share != _SHARE_UNSET:
            x.layer_ref("share_index")
            shared = True
        antialiasing = s.get_int("antialiasing", 0)
    groups = max(groups, 1)
    padding = _padding(s, size)
    hy, hx = (1, 1) if antialiasing else (sy, sx)
    oh, ow = _cdiv(i.h + 2 * padding - size, hy) + 1, _cdiv(i.w + 2 * padding - size, hx) + 1
    if antialiasing:
        oh, ow = _blur(oh, ow, antialiasing, sy, sx)
    floats = 0 if shared else _conv_floats(i.c, n, size, groups, bn)
    return floats, _Out.image(oh, ow, n)


def _deconvolutional(x: _Ctx) -> tuple[int, _Out]:
    s, i = x.section, x.image()
    n, size, stride = s.get_int("filters", 1), s.get_int("size", 1), s.get_int("stride", 1)
    padding = _padding(s, size)
    oh, ow = (i.h - 1) * stride + size - 2 * padding, (i.w - 1) * stride + size - 2 * padding
    bn = bool(s.get_int("batch_normalize", 0))
    return _conv_floats(i.c, n, size, 1, bn), _Out.image(oh, ow, n)


def _local(x: _Ctx) -> tuple[int, _Out]:
    s, i = x.section, x.image()
    n, size = s.get_int("filters", 1), s.get_int("size", 1)
    stride, pad = s.get_int("stride", 1), s.get_int("pad", 0)
    oh = _cdiv(i.h - (1 if pad else size), stride) + 1
    ow = _cdiv(i.w - (1 if pad else size), stride) + 1
    locations = oh * ow
    return locations * n + size * size * i.c * n * locations, _Out.image(oh, ow, n)


def _connected(x: _Ctx) -> tuple[int, _Out]:
    s = x.section
    out = s.get_int("output", 1)
    bn = bool(s.get_int("batch_normalize", 0))
    return _connected_floats(x.inp.outputs, out, bn), _Out.image(1, 1, out)


def _batchnorm(x: _Ctx) -> tuple[int, _Out]:
    # AlexeyAB also saves the biases (4c); pjreddie saves scales, mean, variance (3c)
    per_channel = 3 if x.fork == "pjreddie" else 4
    return per_channel * x.inp.c, replace(x.inp)


def _shortcut(x: _Ctx) -> tuple[int, _Out]:
    s = x.section
    text = s.get("from")
    if text is None:
        raise x.fail("from= is missing")
    refs = [x.layer_ref("from", part) for part in text.split(",")]
    if not x.ab:
        return 0, replace(x.inp)
    kind = s.get("weights_type", "none")
    if kind == "none":
        floats = 0
    elif kind in ("per_feature", "per_layer"):
        floats = len(refs) + 1
    elif kind == "per_channel":
        floats = (len(refs) + 1) * x.inp.c
    else:
        raise x.fail(f"weights_type={kind} is not none, per_feature or per_channel")
    return floats, replace(x.inp)


def _implicit(x: _Ctx) -> tuple[int, _Out]:
    filters, atoms = x.section.get_int("filters", 128), x.section.get_int("atoms", 1)
    return filters * atoms, _Out.image(atoms, 1, filters)


def _crnn(x: _Ctx) -> tuple[int, _Out]:
    s, i = x.section, x.image()
    hidden, out = s.get_int("hidden", 1), s.get_int("output", 1)
    bn = bool(s.get_int("batch_normalize", 0))
    if x.ab:
        size, stride = s.get_int("size", 3), s.get_int("stride", 1)
        padding, groups = _padding(s, size), s.get_int("groups", 1)
        groups = 1 if s.get_int("xnor", 0) else max(groups, 1)
    else:  # pjreddie: three 3x3 stride-1 pad-1 convolutions, no groups
        size, stride, padding, groups = 3, 1, 1, 1
    floats = (_conv_floats(i.c, hidden, size, groups, bn) + _conv_floats(hidden, hidden, size, groups, bn)
              + _conv_floats(hidden, out, size, groups, bn))
    oh, ow = _cdiv(i.h + 2 * padding - size, stride) + 1, _cdiv(i.w + 2 * padding - size, stride) + 1
    return floats, _Out.image(oh, ow, out)


def _rnn(x: _Ctx) -> tuple[int, _Out]:
    s, inputs = x.section, x.inp.outputs
    out = s.get_int("output", 1)
    bn = bool(s.get_int("batch_normalize", 0))
    # AlexeyAB: input->hidden, hidden->hidden, hidden->output; pjreddie has no hidden
    hidden = s.get_int("hidden", 1) if x.ab else out
    floats = (_connected_floats(inputs, hidden, bn) + _connected_floats(hidden, hidden, bn)
              + _connected_floats(hidden, out, bn))
    return floats, _Out.image(1, 1, out)


def _lstm(x: _Ctx) -> tuple[int, _Out]:
    out = x.section.get_int("output", 1)
    bn = bool(x.section.get_int("batch_normalize", 0))
    floats = 4 * _connected_floats(x.inp.outputs, out, bn) + 4 * _connected_floats(out, out, bn)
    return floats, _Out.image(1, 1, out)


def _gru(x: _Ctx) -> tuple[int, _Out]:
    out = x.section.get_int("output", 1)
    bn = bool(x.section.get_int("batch_normalize", 0))
    floats = 3 * _connected_floats(x.inp.outputs, out, bn) + 3 * _connected_floats(out, out, bn)
    return floats, _Out.flat(out)  # darknet sets no out_h/out_w/out_c for a GRU


def _conv_lstm(x: _Ctx) -> tuple[int, _Out]:
    s, i = x.section, x.image()
    size, stride = s.get_int("size", 3), s.get_int("stride", 1)
    padding, out = _padding(s, size), s.get_int("output", 1)
    groups = 1 if s.get_int("xnor", 0) else max(s.get_int("groups", 1), 1)
    bn = bool(s.get_int("batch_normalize", 0))
    peephole, bottleneck = s.get_int("peephole", 0), s.get_int("bottleneck", 0)
    state = _conv_floats(out, out, size, groups, bn)
    floats = 4 * _conv_floats(i.c, out, size, groups, bn)  # uf ui ug uo
    floats += _conv_floats(2 * out, out, size, groups, bn) if bottleneck else 4 * state  # wf [wi wg wo]
    floats += 3 * state if peephole else 0  # vf vi vo
    oh, ow = _cdiv(i.h + 2 * padding - size, stride) + 1, _cdiv(i.w + 2 * padding - size, stride) + 1
    return floats, _Out.image(oh, ow, out)


def _history(x: _Ctx) -> tuple[int, _Out]:
    i = x.inp
    return 0, _Out.image(i.h, i.w, i.c * x.section.get_int("history_size", 4))


def _route(x: _Ctx) -> tuple[int, _Out]:
    text = x.section.get("layers")
    if text is None:
        raise x.fail("layers= is missing")
    refs = [x.layer_ref("layers", part) for part in text.split(",")]
    first = x.prev[refs[0]]
    h, w, c = first.h, first.w, first.c
    outputs = first.outputs
    for ref in refs[1:]:
        other = x.prev[ref]
        if (other.h, other.w) != (first.h, first.w):
            raise x.fail(f"layers={text}: layer {refs[0]} is {first.h}x{first.w} but layer {ref} "
                         f"is {other.h}x{other.w} (darknet: 'The width and height of the input "
                         "layers are different')")
        c += other.c
        outputs += other.outputs
    groups = max(x.section.get_int("groups", 1), 1) if x.ab else 1
    return 0, _Out(h, w, c // groups, outputs // groups)


def _maxpool(x: _Ctx) -> tuple[int, _Out]:
    s, i = x.section, x.image()
    stride = s.get_int("stride", 1)
    sx = sy = stride
    if x.ab:
        sx, sy = s.get_int("stride_x", stride), s.get_int("stride_y", stride)
    size = s.get_int("size", stride)
    padding = s.get_int("padding", size - 1)
    if x.ab and s.type != "[local_avgpool]" and s.type != "[local_avg]":
        if s.get_int("maxpool_depth", 0):
            return 0, _Out.image(i.h, i.w, s.get_int("out_channels", 1))
        antialiasing = s.get_int("antialiasing", 0)
    else:
        antialiasing = 0
    hy, hx = (1, 1) if antialiasing else (sy, sx)
    oh, ow = _cdiv(i.h + padding - size, hy) + 1, _cdiv(i.w + padding - size, hx) + 1
    if antialiasing:
        oh, ow = _blur(oh, ow, antialiasing, sy, sx)
    return 0, _Out.image(oh, ow, i.c)


def _avgpool(x: _Ctx) -> tuple[int, _Out]:
    return 0, _Out.image(1, 1, x.image().c)


def _upsample(x: _Ctx) -> tuple[int, _Out]:
    i, stride = x.inp, x.section.get_int("stride", 2)
    if stride < 0:  # a negative stride downsamples
        return 0, _Out.image(_cdiv(i.h, -stride), _cdiv(i.w, -stride), i.c)
    return 0, _Out.image(i.h * stride, i.w * stride, i.c)


def _reorg(x: _Ctx) -> tuple[int, _Out]:
    s, i = x.section, x.image()
    stride = max(s.get_int("stride", 1), 1)
    if not x.ab and s.get_int("extra", 0):  # pjreddie's reorg with extra= flattens
        return 0, _Out.flat(i.outputs + s.get_int("extra", 0))
    if s.get_int("reverse", 0):
        return 0, _Out.image(i.h * stride, i.w * stride, i.c // (stride * stride))
    return 0, _Out.image(i.h // stride, i.w // stride, i.c * stride * stride)


def _from_shape(x: _Ctx) -> tuple[int, _Out]:
    """scale_channels, sam: the output has the shape of the `from` layer."""
    src = x.prev[x.layer_ref("from")]
    return 0, _Out.image(src.h, src.w, src.c)


def _crop(x: _Ctx) -> tuple[int, _Out]:
    s, i = x.section, x.image()
    return 0, _Out.image(s.get_int("crop_height", 1), s.get_int("crop_width", 1), i.c)


def _iseg(x: _Ctx) -> tuple[int, _Out]:
    s, i = x.section, x.inp
    return 0, _Out.image(i.h, i.w, s.get_int("classes", 20) + s.get_int("ids", 32))


def _same(x: _Ctx) -> tuple[int, _Out]:
    """No weights, output shaped like the input (yolo, region, dropout, activation, ...)."""
    return 0, replace(x.inp)


def _flat(x: _Ctx) -> tuple[int, _Out]:
    """No weights, no image shape after it (detection, softmax, cost, contrastive)."""
    return 0, _Out.flat(x.inp.outputs)


_Handler = Callable[[_Ctx], tuple[int, _Out]]
_COMMON: dict[str, _Handler] = {
    "[convolutional]": _convolutional, "[conv]": _convolutional,
    "[connected]": _connected, "[conn]": _connected,
    "[maxpool]": _maxpool, "[max]": _maxpool,
    "[avgpool]": _avgpool, "[avg]": _avgpool,
    "[upsample]": _upsample, "[route]": _route, "[shortcut]": _shortcut,
    "[crnn]": _crnn, "[rnn]": _rnn, "[lstm]": _lstm,
    "[yolo]": _same, "[region]": _same, "[dropout]": _same,
    "[softmax]": _flat, "[soft]": _flat, "[cost]": _flat,
}
#: Section types each fork's parser builds, with how to count them.
LAYER_HANDLERS: dict[str, dict[str, _Handler]] = {
    "pjreddie": {
        **_COMMON,
        "[deconvolutional]": _deconvolutional, "[deconv]": _deconvolutional,
        "[local]": _local, "[batchnorm]": _batchnorm, "[gru]": _gru, "[reorg]": _reorg,
        "[crop]": _crop, "[iseg]": _iseg, "[detection]": _flat,
        "[activation]": _same, "[logistic]": _same, "[l2norm]": _same,
        "[normalization]": _same, "[lrn]": _same,
    },
    "alexeyab": {
        **_COMMON,
        "[local]": _local, "[batchnorm]": _batchnorm, "[gru]": _gru,
        "[conv_lstm]": _conv_lstm, "[history]": _history, "[implicit]": _implicit,
        "[reorg3d]": _reorg, "[reorg]": _reorg, "[local_avgpool]": _maxpool,
        "[local_avg]": _maxpool, "[scale_channels]": _from_shape, "[sam]": _from_shape,
        "[crop]": _crop, "[detection]": _flat, "[contrastive]": _flat,
        "[Gaussian_yolo]": _same, "[activation]": _same, "[normalization]": _same,
        "[lrn]": _same, "[empty]": _same, "[silence]": _same,
    },
    # hank-ai v5 builds only these (darknet_cfg.cpp); anything else is a fatal error
    "hank": {
        **_COMMON,
        "[local_avgpool]": _maxpool, "[local_avg]": _maxpool, "[reorg3d]": _reorg,
        "[scale_channels]": _from_shape, "[sam]": _from_shape, "[contrastive]": _flat,
        "[Gaussian_yolo]": _same, "[empty]": _same, "[silence]": _same,
    },
}


def check_fork(fork: str) -> None:
    """UserError for a fork whose layers this module does not know."""
    if fork not in LAYER_HANDLERS:
        raise UserError(f"unknown darknet fork {fork!r}", f"one of {', '.join(WEIGHT_FORKS)}")


def layer_floats(cfg: Cfg, fork: str, path: str | Path = "<cfg>") -> list[LayerFloats]:
    """The float count of every layer of `cfg` as `fork` saves it, from the cfg alone.

    Shapes are tracked from `[net]` height/width/channels (or `inputs=`) as the fork's
    parser does; `path` only names the file in errors. A section type the fork does not
    build, a reference to a missing layer, or a layer that needs an image after one that
    outputs none raises CfgError with the file and line.
    Example: yolov4-tiny.cfg (alexeyab) -> 38 layers, layer 0 `[convolutional]` with 992
    floats (32 biases, 3x32 batch-norm values, 3x3x3x32 weights), 6,062,814 in all.
    """
    check_fork(fork)
    handlers = LAYER_HANDLERS[fork]
    net = cfg.net
    h, w, c = net.get_int("height", 0), net.get_int("width", 0), net.get_int("channels", 0)
    inp = _Out(h, w, c, net.get_int("inputs", h * w * c))
    name = str(path)
    prev: list[_Out] = []
    result: list[LayerFloats] = []
    for index, section in enumerate(cfg.sections[1:]):
        handler = handlers.get(section.type)
        if handler is None:
            raise CfgError(f"{name}:{section.line}: unknown layer type {section.type} "
                           f"(layer {index}; {fork} darknet has no such layer)")
        floats, out = handler(_Ctx(fork, name, index, section, inp, prev))
        result.append(LayerFloats(index, section.type, floats, section.line, (out.h, out.w, out.c)))
        prev.append(out)
        inp = out
    return result


def images_per_iteration(cfg: Cfg) -> int:
    """Images one iteration adds to `seen`: darknet's mini-batch (batch/subdivisions,
    times time_steps) times subdivisions. Example: batch=64, subdivisions=16 -> 64."""
    net = cfg.net
    subdivisions = net.get_int("subdivisions", 1)
    if subdivisions <= 0:
        return 0
    mini = (net.get_int("batch", 1) // subdivisions) * max(net.get_int("time_steps", 1), 1)
    return mini * subdivisions


# --- file size against the counts -------------------------------------------------------
