"""A darknet .cfg as data: ordered sections and lines, edited in place, rendered back.

Reading follows darknet's own parser (`read_cfg` in both forks): every space and tab is
removed from a line; a line starting with `[` opens a section (its whole text is the
type, so `[yolo] # x` is the type `[yolo]#x`); `#`, `;` and empty lines are skipped;
anything else is `key=value`, split at the first `=`; a line without `=` is ignored
with "Config file error". When a key repeats, the first one wins (`option_find`).

Every raw line is kept, so `render_cfg(parse_cfg(text)) == text` byte for byte; an
edit rewrites only the value part of one line and keeps its spacing and line end.

All the values `configs` chooses are computed in `compute_values`, each with its reason.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import CfgError
from pipeline.io import atomic_write, decode_text

#: Detection layers and the `filters` the `[convolutional]` before each must have.
DETECTION_TYPES = ("[yolo]", "[Gaussian_yolo]", "[region]", "[detection]")
NET_TYPES = ("[net]", "[network]")
#: Layers whose output size (`filters=` / `output=`) can be set for a detection head.
FILTER_LAYERS = ("[convolutional]", "[conv]", "[connected]", "[conn]")
_WS = str.maketrans("", "", " \t\r\n")
_VALUE = re.compile(r"^(?P<pre>[^=]*=[ \t]*)(?P<val>.*?)(?P<post>[ \t]*\r?\n?)$", re.S)
_INT = re.compile(r"^[+-]?\d+")
_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
#: darknet reads whole numbers into a C `int`.
C_INT_MAX = 2**31 - 1


def darknet_text(raw: str) -> str:
    """A line as darknet sees it: spaces, tabs and line ends removed.

    Example: `darknet_text("max_batches = 500200\\n")` -> "max_batches=500200".
    """
    return raw.translate(_WS)


def c_int(text: str) -> int:
    """C `atoi`: the leading integer, 0 when there is none. Example: `c_int("1#x")` -> 1."""
    m = _INT.match(text)
    return int(m.group()) if m else 0


def c_float(text: str) -> float:
    """C `atof` on darknet's values: the leading number, 0.0 when none. `c_float(".1")` -> 0.1."""
    m = _FLOAT.match(text)
    return float(m.group()) if m else 0.0


@dataclass(slots=True)
class Line:
    """One raw line (with its line end); `number` is 1-based, 0 for a line added by an edit."""

    raw: str
    number: int

    @property
    def text(self) -> str:
        """The line as darknet reads it."""
        return darknet_text(self.raw)

    @property
    def is_option(self) -> bool:
        """True for a `key=value` line."""
        t = self.text
        return bool(t) and t[0] not in "#;[" and "=" in t

    @property
    def is_junk(self) -> bool:
        """True for a line darknet cannot read ("Config file error ... could parse")."""
        t = self.text
        return bool(t) and t[0] not in "#;[" and "=" not in t

    @property
    def key(self) -> str | None:
        """The option key, or None for comments, blank and junk lines."""
        return self.text.split("=", 1)[0] if self.is_option else None

    @property
    def value(self) -> str:
        """The option value as darknet reads it (no spaces)."""
        return self.text.split("=", 1)[1] if self.is_option else ""

    def with_value(self, value: str) -> Line:
        """This line with its value replaced, spacing and line end kept."""
        m = _VALUE.match(self.raw)
        if m is None:
            raise CfgError(f"line {self.number}: not a key=value line")
        return Line(f"{m['pre']}{value}{m['post']}", self.number)


@dataclass(slots=True)
class Section:
    """`[type]` header line and the lines up to the next header, in file order."""

    header: Line
    lines: list[Line] = field(default_factory=list)

    @property
    def type(self) -> str:
        """The section type as darknet compares it, e.g. "[yolo]"."""
        return self.header.text

    @property
    def line(self) -> int:
        """1-based line of the header."""
        return self.header.number

    def options(self) -> list[Line]:
        """The `key=value` lines, in order (repeats included)."""
        return [ln for ln in self.lines if ln.is_option]

    def find(self, key: str) -> Line | None:
        """The line darknet reads for `key` (the first one), or None."""
        return next((ln for ln in self.lines if ln.key == key), None)

    def get(self, key: str, default: str | None = None) -> str | None:
        """The value darknet reads for `key`, or `default`."""
        ln = self.find(key)
        return ln.value if ln else default

    def get_int(self, key: str, default: int) -> int:
        """`key` read like darknet's `option_find_int`. Example: `s.get_int("classes", 20)`."""
        v = self.get(key)
        return default if v is None else c_int(v)

    def get_ints(self, key: str) -> list[int] | None:
        """A comma list read like darknet (`atoi` of each piece), or None when absent."""
        v = self.get(key)
        return None if v is None else [c_int(p) for p in v.split(",")]

    def get_floats(self, key: str) -> list[float] | None:
        """A comma list of numbers (`atof` of each piece), or None when absent."""
        v = self.get(key)
        return None if v is None else [c_float(p) for p in v.split(",")]

    def set(self, key: str, value: str) -> None:
        """Set `key` in every line that holds it, or add `key=value` after the last option."""
        hits = [i for i, ln in enumerate(self.lines) if ln.key == key]
        for i in hits:
            self.lines[i] = self.lines[i].with_value(value)
        if hits:
            return
        last = max((i for i, ln in enumerate(self.lines) if ln.is_option), default=-1)
        eol = "\r\n" if self.header.raw.endswith("\r\n") else "\n"
        before = self.lines[last] if last >= 0 else self.header
        if not before.raw.endswith("\n"):  # the file's last line had no line end
            before.raw += eol
        self.lines.insert(last + 1, Line(f"{key}={value}{eol}", 0))


@dataclass(slots=True)
class Cfg:
    """A whole cfg: lines before the first section, then the sections."""

    preamble: list[Line]
    sections: list[Section]

    @property
    def net(self) -> Section:
        """The first section (`[net]` in a usable cfg)."""
        return self.sections[0]

    def heads(self) -> list[Head]:
        """The detection layers with the layer before each, in file order."""
        out = []
        for i, s in enumerate(self.sections):
            if s.type in DETECTION_TYPES:
                prev = self.sections[i - 1] if i > 1 else None
                out.append(Head(len(out) + 1, i - 1, s, prev))
        return out


@dataclass(slots=True)
class Head:
    """One detection layer: its number (1..), darknet layer index, section, layer before."""

    number: int
    index: int
    section: Section
    before: Section | None

    @property
    def masks(self) -> int:
        """Anchors this head predicts: entries of `mask`, else `num` (darknet's rule)."""
        mask = self.section.get_ints("mask")
        return len(mask) if mask is not None else self.section.get_int("num", 1)

    def filters_key(self) -> str:
        """The key in the layer before that must match: `output` for [detection]."""
        return "output" if self.section.type == "[detection]" else "filters"

    def expected_filters(self, classes: int) -> int:
        """What the layer before must output for `classes` classes.

        Example: a `[yolo]` with `mask=0,1,2` and 2 classes -> (2+5)*3 = 21.
        """
        s = self.section
        kind = s.type
        if kind == "[yolo]":
            return (classes + 5) * self.masks
        if kind == "[Gaussian_yolo]":
            return (classes + 9) * self.masks
        coords = s.get_int("coords", 4)
        num = s.get_int("num", 1)
        if kind == "[region]":
            return (classes + coords + 1) * num
        side = s.get_int("side", 7)
        return side * side * ((1 + coords) * num + classes)


def parse_cfg(text: str, path: str | Path = "<cfg>") -> Cfg:
    """Parse cfg text into sections; raise CfgError when it is not a darknet cfg.

    Example: `parse_cfg("[net]\\nwidth=416\\n").net.get_int("width", 0)` -> 416.
    """
    if "\x00" in text:
        raise CfgError(f"{path}: not a darknet cfg (binary data)")
    preamble: list[Line] = []
    sections: list[Section] = []
    for number, raw in enumerate(text.splitlines(keepends=True), start=1):
        line = Line(raw, number)
        if line.text.startswith("["):
            sections.append(Section(line))
        elif sections:
            sections[-1].lines.append(line)
        elif line.is_option or line.is_junk:
            raise CfgError(f"{path}:{number}: not a darknet cfg (text before the first [section])")
        else:
            preamble.append(line)
    if not sections:
        raise CfgError(f"{path}: not a darknet cfg (no [section] found)")
    if sections[0].type not in NET_TYPES:
        raise CfgError(f"{path}:{sections[0].line}: not a darknet cfg (first section must be [net])")
    return Cfg(preamble, sections)


def render_cfg(cfg: Cfg) -> str:
    """The cfg text: every kept line as it was, edited lines with their new value."""
    parts = [ln.raw for ln in cfg.preamble]
    for s in cfg.sections:
        parts.append(s.header.raw)
        parts.extend(ln.raw for ln in s.lines)
    return "".join(parts)


def read_cfg(path: str | Path) -> Cfg:
    """Read and parse a cfg file; unreadable or non-cfg files raise CfgError."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise CfgError(f"cannot read cfg {path}: {exc.strerror}") from None
    return parse_cfg(decode_text(data, path, "cfg", keep_bad_bytes=True), path)


def write_cfg(cfg: Cfg, path: str | Path) -> None:
    """Write the cfg atomically, bytes as read (undecodable bytes kept)."""
    atomic_write(path, render_cfg(cfg).encode("utf-8", "surrogateescape"))


# ---- values chosen for a training cfg ------------------------------------------------


@dataclass(frozen=True, slots=True)
class CfgOptions:
    """What the user asked for; None means "choose" (the defaults live here, once)."""

    width: int | None = None
    height: int | None = None
    batch: int | None = None
    subdivisions: int | None = None
    max_batches: int | None = None
    learning_rate: float | None = None
    burn_in: int | None = None
    random: int | None = None

    TRAIN_BATCH = 64
    TRAIN_SUBDIVISIONS = 16
    MIN_MAX_BATCHES = 6000
    PER_CLASS = 2000
    #: Runs this short get random=0 (pjreddie trains at 608 px once iteration+200 > max_batches).
    SHORT_RUN = 1000


@dataclass(frozen=True, slots=True)
class Choice:
    """One value written into the cfg: where, what, why, and whether the user gave it."""

    section: int
    where: str
    key: str
    value: str
    reason: str
    given: bool = False


#: The comment `configs` writes above a max_batches the user gave (`--max-batches`), so
#: that check-cfg reports a short run on purpose as a warning; darknet skips `#` lines.
CHOSEN_MARK = "# yolo-pipeline configs: max_batches={} chosen with --max-batches"
_CHOSEN = re.compile(r"^#\s*yolo-pipeline configs: max_batches=(\d+) chosen with --max-batches")


def chosen_max_batches(cfg: Cfg) -> int | None:
    """The max_batches value `configs --max-batches` recorded in [net], or None.

    Example: a [net] with the line `# yolo-pipeline configs: max_batches=20 chosen with
    --max-batches` -> 20.
    """
    for ln in cfg.net.lines:
        if m := _CHOSEN.match(ln.raw.strip()):
            return int(m.group(1))
    return None


def max_batches_rule(classes: int, train_images: int) -> int:
    """`max(2000 * classes, training images, 6000)`. Example: `max_batches_rule(3, 100)` -> 6000."""
    return max(CfgOptions.PER_CLASS * classes, train_images, CfgOptions.MIN_MAX_BATCHES)


def compute_values(cfg: Cfg, classes: int, train_images: int, opts: CfgOptions) -> list[Choice]:
    """Every value a training cfg needs for `classes` classes, each with its reason.

    Example: yolov3-tiny, 2 classes, 50 images -> classes=2 and filters=21 in both heads,
    max_batches=6000, steps=4800,5400, batch=64, subdivisions=16.
    """
    heads = cfg.heads()
    if not heads:
        raise CfgError("template has no detection layer ([yolo], [region]...): not a detector")
    _check_options(opts)
    net = cfg.net
    out: list[Choice] = []

    def put(section: int, where: str, key: str, value: object, reason: str) -> None:
        out.append(Choice(section, where, key, str(value), reason, reason.startswith("given")))

    for key, given in (("width", opts.width), ("height", opts.height)):
        if given is not None:
            if given <= 0 or given % 32:
                raise CfgError(f"--{key} {given}: must be a positive multiple of 32")
            put(0, "[net]", key, given, f"given (--{key})")
        else:
            put(0, "[net]", key, net.get_int(key, 0), "kept from the template")
    batch, subdiv = _batch(net, opts)
    put(0, "[net]", "batch", batch[0], batch[1])
    put(0, "[net]", "subdivisions", subdiv[0], subdiv[1])

    rule = max_batches_rule(classes, train_images)
    formula = (f"max(2000 x {classes} classes = {2000 * classes}, "
               f"{train_images} training images, 6000) = {rule}")
    if opts.max_batches is not None:
        if opts.max_batches <= 0:
            raise CfgError(f"--max-batches {opts.max_batches}: must be positive")
        mb = opts.max_batches
        below = " (below the rule: a short run)" if mb < rule else ""
        put(0, "[net]", "max_batches", mb, f"given (--max-batches); rule {formula}{below}")
    else:
        mb = rule
        put(0, "[net]", "max_batches", mb, formula)
    steps = (max(1, mb * 8 // 10), max(1, mb * 9 // 10))
    put(0, "[net]", "policy", "steps", "learning rate drops at the steps")
    put(0, "[net]", "steps", f"{steps[0]},{steps[1]}", f"80% and 90% of max_batches {mb}")
    put(0, "[net]", "scales", ".1,.1", "one x0.1 learning-rate drop per step")
    if opts.learning_rate is not None:
        put(0, "[net]", "learning_rate", f"{opts.learning_rate:g}", "given (--learning-rate)")
    burn = net.get_int("burn_in", 0)
    if opts.burn_in is not None:
        put(0, "[net]", "burn_in", opts.burn_in, "given (--burn-in)")
    elif burn >= mb:
        put(0, "[net]", "burn_in", mb // 10,
            f"template burn_in {burn} >= max_batches {mb}: 10% of the run")

    random = opts.random
    random_reason = "given (--random)"
    if random is None and mb <= CfgOptions.SHORT_RUN:
        random = 0
        random_reason = (f"max_batches {mb} <= {CfgOptions.SHORT_RUN}: with random=1 pjreddie "
                         "trains at 608 px once iteration+200 > max_batches")
    for head in heads:
        where = f"{head.section.type}#{head.number}"
        idx = cfg.sections.index(head.section)
        put(idx, where, "classes", classes, f"{classes} classes in the dataset")
        if head.before is None or head.before.type not in FILTER_LAYERS:
            raise CfgError(f"{where}: the layer before is not [convolutional]; cannot set filters")
        n = head.expected_filters(classes)
        put(idx - 1, f"{head.before.type}->{where}", head.filters_key(), n,
            _filters_reason(head, classes))
        if random is not None and head.section.type != "[detection]":
            put(idx, where, "random", random, random_reason)
    return out


def _check_options(opts: CfgOptions) -> None:
    """Given values darknet could not hold: beyond a C int, a non-finite learning rate."""
    for key in ("width", "height", "batch", "subdivisions", "max_batches", "burn_in"):
        value = getattr(opts, key)
        if value is not None and value > C_INT_MAX:
            raise CfgError(f"--{key.replace('_', '-')} {value}: above {C_INT_MAX} "
                           "(darknet reads it as a C int)")
    lr = opts.learning_rate
    if lr is not None and not (math.isfinite(lr) and lr > 0):
        raise CfgError(f"--learning-rate {lr}: must be a positive finite number")


def _batch(net: Section, opts: CfgOptions) -> tuple[tuple[int, str], tuple[int, str]]:
    tb, ts = net.get_int("batch", 1), net.get_int("subdivisions", 1)
    test_mode = tb <= 1
    if opts.batch is not None:
        batch = (opts.batch, "given (--batch)")
    elif test_mode:
        batch = (CfgOptions.TRAIN_BATCH, f"template is in test mode (batch={tb}); training value")
    else:
        batch = (tb, "kept from the template")
    if opts.subdivisions is not None:
        subdiv = (opts.subdivisions, "given (--subdivisions)")
    elif test_mode:
        subdiv = (min(CfgOptions.TRAIN_SUBDIVISIONS, batch[0]),
                  f"template is in test mode (subdivisions={ts}); images per GPU pass = "
                  "batch/subdivisions")
    else:
        subdiv = (ts, "kept from the template")
    if batch[0] <= 0 or subdiv[0] <= 0 or batch[0] % subdiv[0]:
        raise CfgError(f"batch {batch[0]} must be a positive multiple of subdivisions {subdiv[0]}")
    return batch, subdiv


def _filters_reason(head: Head, classes: int) -> str:
    kind = head.section.type
    if kind == "[yolo]":
        return f"(classes {classes} + 5) x {head.masks} masks"
    if kind == "[Gaussian_yolo]":
        return f"(classes {classes} + 9) x {head.masks} masks"
    coords = head.section.get_int("coords", 4)
    num = head.section.get_int("num", 1)
    if kind == "[region]":
        return f"(classes {classes} + coords {coords} + 1) x num {num}"
    side = head.section.get_int("side", 7)
    return f"side {side}^2 x ((1 + coords {coords}) x num {num} + classes {classes})"


def apply_values(cfg: Cfg, choices: list[Choice]) -> None:
    """Write each choice into its section (in place); a given max_batches gets `CHOSEN_MARK`
    above it (an older mark is dropped)."""
    net = cfg.net
    net.lines = [ln for ln in net.lines if not _CHOSEN.match(ln.raw.strip())]
    for c in choices:
        cfg.sections[c.section].set(c.key, c.value)
        if c.key == "max_batches" and c.given and (line := net.find(c.key)):
            eol = "\r\n" if line.raw.endswith("\r\n") else "\n"
            net.lines.insert(net.lines.index(line), Line(CHOSEN_MARK.format(c.value) + eol, 0))
