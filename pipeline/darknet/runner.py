"""Running a darknet binary for training: its command line, its console lines, its weights.

Facts (read from the forks' sources, see shared/research/darknet-forks.md):
- the iteration line is `N: loss, avg avg, rate rate, S seconds, I images` (pjreddie),
  `N: loss, avg avg loss, rate rate, S seconds, I images, H hours left` (AlexeyAB) or
  `N: loss=L, avg loss=A, ..., rate=R, ..., I images, time remaining=...` (hank-ai, coloured);
- with `-map`, AlexeyAB prints `mean_average_precision (mAP@0.50) = 0.87` and hank-ai
  `-> mean average precision (mAP@0.50)=87.23%` after the iteration line they belong to;
  only its `avg` field says the training went wrong (`Region ... -nan` lines are normal);
- `Saving weights to F` is printed BEFORE F is written, so F is complete only once the
  next iteration line (or a clean exit) follows;
- `Couldn't open file: F` ends pjreddie's darknet with exit code 0;
- a weights file starts with int32 major, minor, revision and then `seen` (images seen:
  uint64 when major*10+minor >= 2, else int32); the iteration is seen / batch.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from pipeline.darknet.weights import HEADER_BYTES, parse_header

#: Colour codes, xterm titles (`ESC]2;...BEL`, hank-ai, older AlexeyAB) and bells.
_ANSI = re.compile(r"\x1b\][^\x07]*\x07|\x1b\[[0-9;?]*[A-Za-z]|\x07")
_ITERATION = re.compile(
    r"^\s*(?P<it>\d+):\s*(?P<loss>[^,\s]+),\s*(?P<avg>[^,\s]+) avg(?: loss)?,\s*(?P<rate>[^,\s]+) rate,"
    r"\s*(?P<sec>[\d.]+) seconds,\s*(?P<img>-?\d+) images")
_HANK_ITERATION = re.compile(
    r"^\s*(?P<it>\d+): loss=(?P<loss>[^,\s]+), avg loss=(?P<avg>[^,\s]+),.*?rate=(?P<rate>[^,\s]+),"
    r"(?:.*?(?P<img>\d+) images)?")
_MAP = re.compile(r"mean[_ ]average[_ ]precision \(mAP@(?P<iou>[\d.]+)\)\s*=\s*(?P<value>[\d.]+)(?P<pct>%)?")
_SAVING = re.compile(r"Saving weights to (?P<path>\S.*?)\s*$")
_CANNOT_OPEN = re.compile(r"Couldn't open file:?\s*(?P<path>.*?)\s*$")


@dataclass(frozen=True, slots=True)
class IterationLine:
    """One parsed iteration line."""

    iteration: int
    loss: float
    avg: float
    rate: float
    seconds: float
    images: int


def _float(text: str) -> float:
    try:
        return float(text)  # accepts nan, -nan, inf, -inf
    except ValueError:
        return float("nan")


def strip_ansi(text: str) -> str:
    """`text` without terminal colour codes, xterm titles and bells (darknet's console)."""
    return _ANSI.sub("", text)


def parse_iteration(line: str) -> IterationLine | None:
    """The iteration line of either fork, or None.

    Example: `parse_iteration("12: 5.1, 5.4 avg, 0.001000 rate, 3.2 seconds, 24 images")`
    -> IterationLine(12, 5.1, 5.4, 0.001, 3.2, 24).
    """
    clean = _ANSI.sub("", line)
    if m := _ITERATION.match(clean):
        return IterationLine(int(m["it"]), _float(m["loss"]), _float(m["avg"]), _float(m["rate"]),
                             float(m["sec"]), int(m["img"]))
    if m := _HANK_ITERATION.match(clean):
        return IterationLine(int(m["it"]), _float(m["loss"]), _float(m["avg"]), _float(m["rate"]),
                             float("nan"), int(m["img"] or 0))
    return None


def parse_map(line: str) -> float | None:
    """The mAP (a fraction) of an AlexeyAB or hank-ai `-map` result line, or None.

    AlexeyAB's per-run line `mean average precision (mAP@0.50) = 0.80, or 80.00 %` and its
    summary `mean_average_precision (mAP@0.50) = 0.80` both match; hank-ai prints a percent.
    Example: `parse_map("-> mean average precision (mAP@0.50)=87.23%")` -> 0.8723.
    """
    m = _MAP.search(_ANSI.sub("", line))
    if not m:
        return None
    value = float(m["value"])
    return value / 100 if m["pct"] else value


def saved_weights(line: str) -> str | None:
    """The file of a `Saving weights to F` message anywhere in the line, or None."""
    m = _SAVING.search(_ANSI.sub("", line))
    return m["path"] if m else None


def cannot_open(line: str) -> str | None:
    """The file of a `Couldn't open file: F` message anywhere in the line, or None."""
    m = _CANNOT_OPEN.search(line)
    return m["path"] if m else None


def weights_seen(path: str | Path) -> int | None:
    """Images seen, from a weights file's header; None when the header is unreadable."""
    try:
        with open(path, "rb") as f:
            header = parse_header(f.read(HEADER_BYTES))
    except OSError:
        return None
    return header.seen if header is not None else None


def weights_iteration(path: str | Path, batch: int) -> int | None:
    """The iteration a weights file continues from (seen / batch), or None if unreadable."""
    seen = weights_seen(path)
    return None if seen is None or batch <= 0 else seen // batch


def train_command(binary: str, data: str | Path, cfg: str | Path, weights: str | Path | None,
                  fork: str, gpus: str | None = None, *, map_each: bool = True,
                  clear: bool = False) -> list[str]:
    """The command line for `detector train`, line-buffered where `stdbuf` exists.

    pjreddie takes an unknown flag as the weights path, so `-dont_show -map` go to AlexeyAB
    and hank-ai only (hank-ai also gets `-nocolour`: it colours piped output); `-clear`
    (start a full pretrained file at iteration 0) only for start weights, never a resume.
    """
    cmd = [binary, "detector", "train", str(data), str(cfg)]
    if weights:
        cmd.append(str(weights))
    if gpus:
        cmd += ["-gpus", gpus]
    if fork in ("alexeyab", "hank"):
        cmd += ["-dont_show", *(["-map"] if map_each else [])]
    if fork == "hank":
        cmd.append("-nocolour")
    if clear:
        cmd.append("-clear")
    stdbuf = shutil.which("stdbuf")
    return [stdbuf, "-oL", "-eL", *cmd] if stdbuf else cmd
