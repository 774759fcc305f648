"""Does a .weights file fit its .cfg: floats per layer, the header, and the fork's `partial`.

A darknet weights file is a header and then, layer by layer in cfg order, the float32
arrays of the layers that have weights; nothing in it says where a layer starts. So the
only check there is: count each layer's floats from the cfg alone (the same shapes the
fork's parser builds, starting from `[net]` height/width/channels) and compare the
prefix sums with the file size. Facts from the forks' sources (shared/research/
darknet-forks.md §4-§6; AlexeyAB `src/parser.c` save_weights_upto / load_weights_upto):

- header: int32 major, minor, revision, then `seen` (images seen): uint64 when
  major*10+minor >= 2, else int32, so 20 bytes (16 for old 0.1 files). AlexeyAB and
  hank-ai write 0,2,5; pjreddie 0,2,0. The iteration is seen / (batch*subdivisions)
  with darknet's mini-batch `batch/subdivisions` (times `time_steps`);
- a file that ends exactly after layer k is a "partial" file (yolov4-tiny.conv.29):
  layers without weights (route, maxpool, yolo, ...) add nothing, so "layers 0..k"
  names the last layer WITH weights in the covered prefix;
- AlexeyAB loads a short file silently (the rest stays random) and ignores extra floats;
  hank-ai refuses both (so a conv.N file cannot start a hank-ai run); pjreddie checks
  nothing.

`partial CFG IN OUT N` (every fork) writes the first N layers of IN; `make_partial` runs
it into a temp file and keeps the result only if its size says "layers 0..k".
"""

from __future__ import annotations

import os
import re
import signal
import struct
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from pipeline.darknet.cfg import read_cfg
from pipeline.darknet.layers import LayerFloats, check_fork, images_per_iteration, layer_floats
from pipeline.errors import UserError

#: Header bytes of every file written by a current darknet (major*10+minor >= 2).
HEADER_BYTES = 20
FLOAT_BYTES = 4
Kind = Literal["full", "partial", "mismatch"]
_BACKTRACE = re.compile(r"^backtrace \(|\[0x[0-9a-f]+\]$")
_PERROR_OK = re.compile(r": Success$")


@dataclass(frozen=True, slots=True, kw_only=True)
class WeightsHeader:
    """The first bytes of a weights file: version, images seen, and the header size."""

    major: int
    minor: int
    revision: int
    seen: int
    size: int

    @property
    def version(self) -> tuple[int, int, int]:
        """(major, minor, revision), e.g. (0, 2, 5) from AlexeyAB or hank-ai."""
        return (self.major, self.minor, self.revision)


@dataclass(frozen=True, slots=True, kw_only=True)
class WeightsMatch:
    """What a weights file holds for a cfg: exactly one of three kinds.

    - "full": every layer; `message` "all layers of yolov4-tiny.cfg";
    - "partial": layers 0..k, k the last layer with weights the file covers; `layers` is
      k+1 and `message` "layers 0..28 of yolov4-tiny.cfg" (a conv.29 file);
    - "mismatch": `message` says where: "layer 29 expects 130,815 floats; the file ends
      2,076 floats into it", "the file is 4,464,640 floats longer than the cfg", a size
      that is not a whole number of floats, a header only, or no weights header at all;
      `layers` counts the layers wholly inside the file.

    `floats_expected` is the cfg's total, `floats_in_file` the whole floats after the
    header. `version`, `seen` and `iteration` come from the header (None from
    `match_size`, which sees sizes only). `ok_for_start` is True for full and partial:
    AlexeyAB and pjreddie start from either; hank-ai refuses a partial file.
    """

    kind: Kind
    layers: int
    message: str
    floats_expected: int
    floats_in_file: int
    ok_for_start: bool
    header_bytes: int = HEADER_BYTES
    version: tuple[int, int, int] | None = None
    seen: int | None = None
    iteration: int | None = None


# --- floats per layer from the cfg ------------------------------------------------------


def _floats_of(item: LayerFloats | int) -> int:
    return item if isinstance(item, int) else item.floats


def match_size(counts: Sequence[LayerFloats | int], file_bytes: int, header_bytes: int,
               cfg_name: str) -> WeightsMatch:
    """Which layers of a cfg a weights file of `file_bytes` holds (sizes only, no I/O).

    `counts` are `layer_floats` (or bare float counts in layer order); `header_bytes` is
    20 for every file written since darknet 0.2. Example: yolov4-tiny.cfg and 19,789,716
    bytes -> partial, layers=29, "layers 0..28 of yolov4-tiny.cfg".
    """
    floats = [_floats_of(c) for c in counts]
    total = sum(floats)
    payload = file_bytes - header_bytes

    def result(kind: Kind, layers: int, message: str, in_file: int) -> WeightsMatch:
        return WeightsMatch(kind=kind, layers=layers, message=message, floats_expected=total,
                            floats_in_file=in_file, ok_for_start=kind != "mismatch",
                            header_bytes=header_bytes)

    if payload < 0:
        return result("mismatch", 0, f"the file is {file_bytes:,} bytes, shorter than a "
                      f"{header_bytes}-byte weights header", 0)
    whole, rest = divmod(payload, FLOAT_BYTES)
    if rest:
        covered = _whole_layers(floats, whole)
        return result("mismatch", covered, f"the {payload:,} bytes after the {header_bytes}-byte "
                      f"header are not a whole number of {FLOAT_BYTES}-byte floats", whole)
    if whole > total:
        return result("mismatch", len(floats),
                      f"the file is {whole - total:,} floats longer than the cfg", whole)
    if whole == total:
        return result("full", len(floats), f"all layers of {cfg_name}", whole)
    done = 0
    last_weighted = -1
    for index, n in enumerate(floats):
        if whole < done + n:
            if whole > done:
                return result("mismatch", index, f"layer {index} expects {n:,} floats; the "
                              f"file ends {whole - done:,} floats into it", whole)
            break
        done += n
        if n:
            last_weighted = index
    if last_weighted < 0:
        return result("mismatch", 0, f"the file holds no weights, only its {header_bytes}-byte "
                      "header", 0)
    return result("partial", last_weighted + 1, f"layers 0..{last_weighted} of {cfg_name}", whole)


def _whole_layers(floats: list[int], available: int) -> int:
    done = 0
    for index, n in enumerate(floats):
        if done + n > available:
            return index
        done += n
    return len(floats)


def parse_header(data: bytes) -> WeightsHeader | None:
    """The header at the start of `data`, or None when it is too short or not darknet's
    (version numbers outside 0..999, as pjreddie refuses). Example: the first 20 bytes of
    an AlexeyAB file -> WeightsHeader(major=0, minor=2, revision=5, seen=..., size=20)."""
    if len(data) < 12:
        return None
    major, minor, revision = struct.unpack("<3i", data[:12])
    if not (0 <= major < 1000 and 0 <= minor < 1000):
        return None
    size = 20 if major * 10 + minor >= 2 else 16
    if len(data) < size:
        return None
    seen = struct.unpack("<Q" if size == 20 else "<I", data[12:size])[0]
    return WeightsHeader(major=major, minor=minor, revision=revision, seen=seen, size=size)


def read_header(path: str | Path) -> tuple[WeightsHeader | None, int]:
    """The header of a weights file and the file's size; UserError when unreadable."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            return parse_header(f.read(HEADER_BYTES)), size
    except OSError as exc:
        raise UserError(f"cannot read weights {path}: {exc.strerror}") from None


def _not_a_header(path: str | Path, size: int) -> str:
    """Why `parse_header` refused the start of `path` (a file of `size` bytes)."""
    try:
        with open(path, "rb") as f:
            data = f.read(12)
    except OSError as exc:
        return f"cannot read it ({exc.strerror})"
    if len(data) < 12:
        return f"{size:,} bytes, shorter than a weights header"
    major, minor, revision = struct.unpack("<3i", data)
    if not (0 <= major < 1000 and 0 <= minor < 1000):
        return f"its header says version {major}.{minor}.{revision}"
    return f"{size:,} bytes, shorter than its {20 if major * 10 + minor >= 2 else 16}-byte header"


def match_weights(cfg_path: str | Path, weights_path: str | Path, fork: str) -> WeightsMatch:
    """Which layers of the cfg `weights_path` holds, for `fork`, with its header values.

    Example: `match_weights("yolov4-tiny.cfg", "yolov4-tiny.conv.29", "alexeyab")` ->
    kind "partial", message "layers 0..28 of yolov4-tiny.cfg", seen 0, iteration 0.
    """
    cfg = read_cfg(cfg_path)
    counts = layer_floats(cfg, fork, cfg_path)
    header, size = read_header(weights_path)
    name = Path(cfg_path).name
    if header is None:
        return WeightsMatch(kind="mismatch", layers=0, floats_expected=sum(c.floats for c in counts),
                            floats_in_file=0, ok_for_start=False,
                            message=f"not a darknet weights file: {_not_a_header(weights_path, size)}")
    match = match_size(counts, size, header.size, name)
    per_iteration = images_per_iteration(cfg)
    iteration = header.seen // per_iteration if per_iteration > 0 else None
    return replace(match, version=header.version, seen=header.seen, iteration=iteration)


# --- the fork's own `partial` -----------------------------------------------------------


def _last_meaningful(output: str) -> str:
    """The line that says why darknet failed: hank-ai's "Error message:", else the last
    line with an error word, else the last line with letters; backtrace lines
    (`2/8: darknet(error+0x34) [0x...]`) and perror's ": Success" are left out."""
    from pipeline.darknet.runner import strip_ansi  # runner reads headers through this module

    lines = []
    for raw in strip_ansi(output).replace("\r", "\n").splitlines():
        line = _PERROR_OK.sub("", raw.strip(" *\t"))
        if re.search(r"[A-Za-z]", line) and not _BACKTRACE.search(line):
            lines.append(line)
    for pattern in (r"error message", r"error|couldn't|cannot|can't|fatal|fail|not found"):
        hits = [ln for ln in lines if re.search(pattern, ln, re.I)]
        if hits:
            return hits[-1]
    return lines[-1] if lines else "no output"


def _exit_text(code: int) -> str:
    """"exit code 1", or "killed by SIGABRT" for a negative return code."""
    if code >= 0:
        return f"exit code {code}"
    try:
        return f"killed by {signal.Signals(-code).name}"
    except ValueError:
        return f"killed by signal {-code}"


def make_partial(binary: str | Path, fork: str, cfg: str | Path, weights: str | Path,
                 layers: int, out: str | Path, *, timeout: float = 600) -> WeightsMatch:
    """Write the first `layers` layers of `weights` to `out` with `darknet partial`.

    The fork's command writes `.<out name>.tmp.weights` beside `out` (hank-ai takes only
    file names ending in .weights); the result must then hold exactly layers 0..k (k the
    last layer with weights before `layers`; all layers when none follow), else nothing
    is written. `weights` must hold at least those floats: AlexeyAB would otherwise fill
    the missing layers with random values without a word. Returns the new file's match.
    Example: `make_partial(dk, "alexeyab", "yolov4-tiny.cfg", "yolov4-tiny.weights", 29,
    "yolov4-tiny.conv.29").message` -> "layers 0..28 of yolov4-tiny.cfg".
    """
    check_fork(fork)
    out = Path(out)
    counts = layer_floats(read_cfg(cfg), fork, cfg)
    name = Path(cfg).name
    if layers < 1:
        raise UserError(f"partial needs at least 1 layer, not {layers}")
    need = sum(c.floats for c in counts[:layers])
    if need == 0:
        raise UserError(f"layers 0..{min(layers, len(counts)) - 1} of {name} hold no weights")
    if fork == "hank" and not str(weights).endswith(".weights"):
        raise UserError(f"hank-ai darknet ignores {weights}: its name must end in .weights",
                        "copy or link it to a name ending in .weights")
    source = match_weights(cfg, weights, fork)
    if source.version is None or source.floats_in_file < need:
        raise UserError(f"{weights} cannot give {min(layers, len(counts))} layers of {name} "
                        f"({need:,} floats): {source.message}")
    if not out.parent.is_dir():
        raise UserError(f"cannot write {out}: no folder {out.parent}")
    expected = match_size(counts, HEADER_BYTES + need * FLOAT_BYTES, HEADER_BYTES, name)
    tmp = out.parent / f".{out.name}.tmp.weights"
    cmd = [str(binary), "partial", str(cfg), str(weights), str(tmp), str(layers)]
    try:
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace",
                                  stdin=subprocess.DEVNULL, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise UserError(f"darknet partial did not finish in {timeout:g} s") from None
        except OSError as exc:
            raise UserError(f"cannot run {binary}: {exc.strerror}") from None
        if proc.returncode != 0 or not tmp.is_file():
            why = _last_meaningful(proc.stdout + "\n" + proc.stderr)
            raise UserError(f"darknet partial failed ({_exit_text(proc.returncode)}): {why}")
        made = match_weights(cfg, tmp, fork)
        if (made.kind, made.layers) != (expected.kind, expected.layers):
            raise UserError(f"darknet partial wrote a file that is not {expected.message}: "
                            f"{made.message}")
        os.replace(tmp, out)
        return made
    finally:
        tmp.unlink(missing_ok=True)
