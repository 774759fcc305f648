""".names, .data, image lists and Ultralytics data.yaml: read and write.

`.data` is read like darknet reads it (`read_data_cfg`): spaces and tabs are removed from
every line, so `My\\ Drive` becomes `My\\Drive`; `#`/`;` lines are comments; the first
occurrence of a key wins. Darknet needs no `names` to train, takes the class count from
the cfg, and falls back to `/backup/` without `backup`; we always write all five keys
with absolute paths.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from pipeline.darknet.cfg import Line
from pipeline.errors import CfgError, FormatError
from pipeline.io import atomic_write, decode_text

DATA_KEYS = ("classes", "train", "valid", "names", "backup")
#: Without these a .data cannot be checked at all (exit 2); others are reported.
REQUIRED_DATA_KEYS = ("classes", "train")


@dataclass(slots=True)
class DataFile:
    """A parsed .data: its lines (with numbers) and the values darknet reads."""

    path: str
    lines: list[Line] = field(default_factory=list)

    def find(self, key: str) -> Line | None:
        """The line darknet reads for `key` (the first), or None."""
        return next((ln for ln in self.lines if ln.key == key), None)

    def get(self, key: str) -> str | None:
        """The value darknet reads for `key` (whitespace removed), or None."""
        ln = self.find(key)
        return ln.value if ln else None

    def raw_value(self, key: str) -> str | None:
        """The value as written (outer whitespace stripped): what the user meant."""
        ln = self.find(key)
        return ln.raw.split("=", 1)[1].strip() if ln else None


def parse_data(text: str, path: str = "<data>") -> DataFile:
    """Parse .data text. Example: `parse_data("classes=2\\ntrain=/a/t.txt\\n").get("classes")`
    -> "2".
    """
    return DataFile(path, [Line(raw, n) for n, raw in enumerate(text.splitlines(True), 1)])


def read_data(path: str | Path, required: tuple[str, ...] = REQUIRED_DATA_KEYS) -> DataFile:
    """Read a .data file; unreadable, binary or missing `required` keys raise CfgError."""
    text = read_text(path, "data")
    data = parse_data(text, str(path))
    missing = [k for k in required if data.get(k) is None]
    if missing:
        raise CfgError(f"{path}: not a usable .data file: missing {', '.join(missing)}",
                       "it needs at least classes= and train=")
    return data


def render_data(classes: int, train: str, valid: str, names: str, backup: str) -> str:
    """The five keys darknet reads, one per line. Example: `render_data(2, ...)` starts
    "classes=2".
    """
    vals = dict(zip(DATA_KEYS, (str(classes), train, valid, names, backup), strict=True))
    return "".join(f"{k}={v}\n" for k, v in vals.items())


def write_data(path: str | Path, classes: int, train: str, valid: str, names: str,
               backup: str) -> None:
    """Write a .data atomically; every path is made absolute first."""
    paths = [os.path.abspath(p) for p in (train, valid, names, backup)]
    atomic_write(path, render_data(classes, *paths))


def parse_names(text: str) -> list[str]:
    """Class names, one a line as darknet counts them (CR and outer spaces dropped).

    A final line without newline counts; an empty last line after a final newline does not.
    Example: `parse_names("cat\\r\\ndog")` -> ["cat", "dog"].
    """
    return [ln.strip() for ln in text.splitlines()]


def read_names(path: str | Path) -> list[str]:
    """Read a .names file."""
    return parse_names(read_text(path, "names"))


def write_names(path: str | Path, names: list[str]) -> None:
    """Write one name a line, LF line ends, final newline."""
    for n in names:
        if not n.strip() or "\n" in n or "\r" in n:
            raise CfgError(f"class name {n!r} cannot be written to a .names file")
    atomic_write(path, "".join(f"{n}\n" for n in names))


def parse_list(text: str, base: str | Path | None = None) -> list[str]:
    """Image paths of a list file, blank lines dropped, CR dropped; relative ones resolved
    against `base` when given. Example: `parse_list("a.jpg\\n", "/d")` -> ["/d/a.jpg"].
    """
    out = []
    for ln in text.splitlines():
        p = ln.rstrip("\r").strip()
        if p:
            out.append(os.path.normpath(os.path.join(base, p)) if base is not None else p)
    return out


def read_list(path: str | Path, absolute: bool = False) -> list[str]:
    """Read a list file; `absolute=True` resolves relative lines against its folder."""
    base = os.path.dirname(os.path.abspath(path)) if absolute else None
    return parse_list(read_text(path, "list"), base)


def write_list(path: str | Path, images: list[str]) -> None:
    """Write absolute image paths, one a line. Example: `write_list("train.txt", ["/d/a.jpg"])`."""
    atomic_write(path, "".join(f"{p}\n" for p in images))


def ultralytics_yaml(train: str, val: str, names: list[str]) -> str:
    """Ultralytics dataset YAML pointing at list files. Example: keys path, train, val, nc,
    names (id -> name).
    """
    doc = {
        "path": os.path.dirname(os.path.abspath(train)),
        "train": os.path.abspath(train),
        "val": os.path.abspath(val),
        "nc": len(names),
        "names": dict(enumerate(names)),
    }
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


def write_ultralytics_yaml(path: str | Path, train: str, val: str, names: list[str]) -> None:
    """Write data.yaml atomically (Ultralytics writes `<list>.cache` beside each list)."""
    atomic_write(path, ultralytics_yaml(train, val, names))


def read_ultralytics_yaml(path: str | Path) -> dict:
    """Read a data.yaml (or an Ultralytics args.yaml); malformed or not a mapping -> FormatError."""
    text = read_text(path, "yaml")
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise FormatError(path, f"malformed YAML: {exc}") from None
    except RecursionError:  # PyYAML recurses per nesting level
        raise FormatError(path, "malformed YAML: nested too deeply") from None
    except ValueError as exc:  # an integer of over 4300 digits
        raise FormatError(path, f"unreadable YAML value: {exc}") from None
    if not isinstance(doc, dict):
        raise FormatError(path, "not a YAML mapping")
    return doc


def read_text(path: str | Path, what: str) -> str:
    """A small text file (`io.decode_text`: BOMs, UTF-16, undecodable bytes kept); unreadable
    or binary (NUL) -> CfgError.

    `what` names the file kind in the message. Example: `read_text("obj.data", "data")`.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise CfgError(f"cannot read {what} file {path}: {exc.strerror}") from None
    text = decode_text(data, path, what, keep_bad_bytes=True)
    if "\x00" in text:  # after decoding: UTF-16 text holds NUL bytes
        raise CfgError(f"{path}: not a {what} file (binary data)")
    return text
