"""A darknet .cfg as data: ordered sections and lines, edited in place, rendered back.

Reading follows darknet's own parser (`read_cfg` in both forks): every space and tab is
removed from a line; a line starting with `[` opens a section (its whole text is the
type, so `[yolo] # x` is the type `[yolo]#x`); `#`, `;` and empty lines are skipped;
anything else is `key=value`, split at the first `=`; a line without `=` is ignored
with "Config file error". When a key repeats, the first one wins (`option_find`).

Every raw line is kept, so `render_cfg(parse_cfg(text)) == text` byte for byte; an
edit rewrites only the value part of one line and keeps its spacing and line end.

The values `configs` chooses are computed in `pipeline.darknet.values`.
"""

from __future__ import annotations

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

    def filters_formula(self, classes: int) -> str:
        """`expected_filters` as text with its numbers, for reasons and messages.

        Example: a `[yolo]` with `mask=0,1,2` and 2 classes -> "(classes 2 + 5) x 3 masks".
        """
        s = self.section
        kind = s.type
        if kind == "[yolo]":
            return f"(classes {classes} + 5) x {self.masks} masks"
        if kind == "[Gaussian_yolo]":
            return f"(classes {classes} + 9) x {self.masks} masks"
        coords = s.get_int("coords", 4)
        num = s.get_int("num", 1)
        if kind == "[region]":
            return f"(classes {classes} + coords {coords} + 1) x num {num}"
        side = s.get_int("side", 7)
        return f"side {side}^2 x ((1 + coords {coords}) x num {num} + classes {classes})"


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
