"""Streaming parser for darknet console logs (pjreddie and AlexeyAB/hank-ai families).

The file is read in blocks; each block is cut after its last line end and scanned with
one bytes regex whose every match starts at a line start. Per-layer lines (`Region ...`,
`v3 (...)`, `total_bbox`), `Loaded:` and the mAP `rank =` progress are rejected inside
the regex, so Python only sees the lines that matter. Memory stays at about two blocks
whatever the file size. Bare CR (progress redraws) counts as a line break for matching;
line numbers in events count `\\n` only, as an editor shows them.

Lines understood::

    pjreddie   1234: 0.52, 0.61 avg, 0.001000 rate, 3.2 seconds, 78976 images
    AlexeyAB    1234: 0.52, 0.61 avg loss, 0.001300 rate, 3.2 seconds, 78976 images, 12.3 hours left
    hank-ai    1234: loss=0.520, avg loss=0.610, ..., rate=0.00130000, ..., 78976 images, time remaining=...
               -> mean average precision (mAP@0.50)=48.12%  (with -nocolour, as `train` runs it)
    -map       class_id = 0, name = fire, ap = 50.11%   (TP = 280, FP = 195)
               for conf_thresh = 0.25, precision = 0.61, recall = 0.34, F1-score = 0.43
               for conf_thresh = 0.25, TP = 315, FP = 201, FN = 621, average IoU = 43.20 %
               mean average precision (mAP@0.50) = 0.481172, or 48.12 %
    events     Saving weights to ..., Loading weights from ..., Resizing ..., Error ...

stdout and stderr captured into one file interleave mid-line (stdout is block-buffered):
`... count: 8Saving weights to x.weights`. The messages in `INTERLEAVED` are found
anywhere in a line: a line break is put before each (a bare CR, so line numbers stay
those of the file), and the cut-off piece before it is not counted as an unknown line
(nor is a piece of a per-layer line, `... No Obj: ...`, wherever it lands).

Only the `avg` field turning nan/inf is a NaN event: pjreddie prints
`Region 16 Avg IOU: -nan ... count: 0` for a head with no object in the batch.
The last line, when the file does not end with a line break, is not parsed (its numbers
may be cut short); it is kept in `LogStats.truncated_last_line`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator

from pipeline.errors import UserError
from pipeline.logs.rows import ClassAP, Event, Item, LogStats, MapBlock, MetricRow, note_unknown
from pipeline.logs.rows import number as _num

BLOCK = 8 << 20
_MAX_LINE = 1 << 20

_LINE = re.compile(
    rb"""\n[ \t]*+
    (?!v3\ \(|Region\ |total_bbox|Loaded:|rank\ =|\(next\ mAP|Last\ accuracy|\n)
    (?:
      (?P<it>(?P<step>\d+):[ \t]*(?P<loss>[^,\n]*),[ \t]*(?P<avg>[^,\s]*)[ \t]+avg(?P<ab>[ \t]+loss)?,
         [ \t]*(?P<rate>[^,\s]*)[ \t]+rate,[ \t]*(?P<sec>[^,\s]*)[ \t]+seconds,
         [ \t]*(?P<img>\d+)[ \t]+images(?:,[ \t]*(?P<left>[^,\s]*)[ \t]+hours[ \t]+left)?)
     |(?P<hk>(?P<hstep>\d+):\ loss=(?P<hloss>[^,\n]*),\ avg\ loss=(?P<havg>[^,\n]*),[^\n]*?
         rate=(?P<hrate>[^,\s]*),[^\n]*?(?P<himg>\d+)\ images[^\n]*)
     |(?P<hmap>->\ mean\ average\ precision\ \(mAP@(?P<hthr>[^)\n]*)\)=(?P<hmapv>[\d.]+)%)
     |(?P<cls>class_id\ =\ (?P<cid>\d+),\ name\ =\ (?P<cname>[^,\n]*),\ ap\ =\ (?P<ap>[^%\n]*)%
         (?:[^(\n]*\(TP\ =\ (?P<ctp>\d+),\ FP\ =\ (?P<cfp>\d+)\))?)
     |(?P<prf>for\ conf_thresh\ =\ [^,\n]*,\ precision\ =\ (?P<p>[^,\n]*),\ recall\ =\ (?P<r>[^,\n]*),
         \ F1-score\ =\ (?P<f1>[^\s,]*))
     |(?P<tpfn>for\ conf_thresh\ =\ [^,\n]*,\ TP\ =\ (?P<tp>\d+),\ FP\ =\ (?P<fp>\d+),\ FN\ =\ (?P<fn>\d+),
         \ average\ IoU\ =\ (?P<iou>[^\s%,]*))
     |(?P<map>mean\ average\ precision\ \(mAP@(?P<thr>[^)\n]*)\)\ =\ (?P<mapv>[^,\s]*))
     |(?P<calc>calculation\ mAP)
     |(?P<save>Saving\ weights\ to\ (?P<savep>[^\n]*))
     |(?P<load>Loading\ weights\ from\ (?P<loadp>[^\n]*))
     |(?P<resize>Resizing)
     |(?P<lr>Learning\ Rate:\ (?P<lrv>[^,\n]*))
     |(?P<batch>mini_batch\ =\ \d+,\ batch\ =\ (?P<bv>\d+))
     |(?P<err>(?:[A-Za-z ]*Error\b|Darknet\ error|Couldn't\ open|Segmentation\ fault|Killed
         |Aborted|terminate\ called|[^\n]*out\ of\ memory)[^\n]*)
     |(?P<known>\d+(?:\ x\ \d+)?[ \t]*(?=\n)|mean_average_precision|New\ best\ mAP|detections_count
         |IoU\ threshold|Set\ -points|`-points|try\ to\ allocate|CUDA\ allocate|Prepare\ additional)
     |(?P<unk>[^\n]+)
    )""",
    re.X,
)

def _read(text: str, stats: LogStats) -> float:
    """A mAP value; an unreadable one is nan (no mAP, not 0.0) and counted in `bad_values`."""
    value = _num(text)
    if value is None:
        stats.bad_values += 1
        return math.nan
    return value


def _fraction(percent: str, stats: LogStats) -> float | None:
    """A class AP printed in percent, as a fraction; None (counted) when unreadable."""
    value = _read(percent, stats)
    return None if math.isnan(value) else round(value / 100, 8)


_ERROR = re.compile(r"\bError\b|Couldn't open|Segmentation fault|out of memory")
#: A piece of a per-layer line (`Region ...`, `v3 ...`, `total_bbox ...`) cut by the other stream.
_LAYER_PIECE = re.compile(r"No Obj:|rewritten_bbox|, *count: \d")
#: Messages darknet writes to the other stream, found anywhere in a line.
INTERLEAVED = (b"Saving weights to ", b"Loading weights from ", b"Couldn't open file")


def split_interleaved(raw: bytes, end: int) -> tuple[bytes, int, set[int]]:
    """Put a bare CR before every `INTERLEAVED` message that does not start its line.

    Returns the new bytes, the new `end`, and the positions of the inserted CRs (where the
    cut-off pieces end). Example: `split_interleaved(b"\\nab: 1Saving weights to w\\n", 25)`
    -> the bytes with `\\r` before `Saving`, 26, {6}.
    """
    cuts = sorted(i for msg in INTERLEAVED for i in _finds(raw, msg, end) if _mid_line(raw, i))
    if not cuts:
        return raw, end, set()
    parts, prev = [], 0
    for cut in cuts:
        parts += [raw[prev:cut], b"\r"]
        prev = cut
    parts.append(raw[prev:])
    return b"".join(parts), end + len(cuts), {cut + k for k, cut in enumerate(cuts)}


def _mid_line(data: bytes, i: int) -> bool:
    start = max(data.rfind(b"\n", 0, i), data.rfind(b"\r", 0, i))
    return bool(data[start + 1:i].strip(b" \t"))


def _finds(data: bytes, needle: bytes, end: int) -> Iterator[int]:
    i = data.find(needle, 1, end)
    while i >= 0:
        yield i
        i = data.find(needle, i + 1, end)


def _text(b: bytes, limit: int = 200) -> str:
    return b.decode("utf-8", "replace").strip()[:limit]


class _Lines:
    """1-based line numbers of match positions; every byte is counted once.

    The file is read as if it began with a "\\n" (held by the first piece); each piece
    starts with the line end that closed the previous piece, already counted there.
    """

    def __init__(self) -> None:
        self.raw, self.done, self.count = b"", 1, 1

    def start(self, raw: bytes) -> None:
        """Begin a new piece."""
        self.raw, self.done = raw, 1

    def at(self, p: int) -> int:
        """Line number of the line that starts after the line end at `p` (or holds a bare CR)."""
        self.count += self.raw.count(b"\n", self.done, p + 1)
        self.done = p + 1
        return self.count

    def finish(self, end: int) -> None:
        """Count the rest of the current piece, up to `end`."""
        self.at(end - 1)


def _blocks(path: str, stats: LogStats, progress: Callable[[int], None] | None
            ) -> Iterator[tuple[bytes, int]]:
    """(data, end): `data[:end]` is a run of whole lines, after the line end before them.

    Sets `stats.lines` to 1 when the file ends with a line that has no line end.
    """
    carry = b"\n"
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below, read lazily
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from None
    with f:
        while block := f.read(BLOCK):
            stats.bytes += len(block)
            if progress:
                progress(len(block))
            data = carry + block
            cut = max(data.rfind(b"\n"), data.rfind(b"\r"))
            if cut <= 0 and len(data) > _MAX_LINE:  # a line longer than 1 MB: drop it
                stats.unknown_lines += 1
                carry = b"\n"
                continue
            if cut <= 0:
                carry = data
                continue
            yield data, cut + 1
            carry = data[cut:]
    tail = carry[1:]
    stats.lines = 1 if tail.strip(b"\r\n") else 0
    if tail.strip():
        stats.truncated_last_line = _text(tail)
        stats.last_line = stats.truncated_last_line


def parse_darknet(path: str, stats: LogStats | None = None,
                  progress: Callable[[int], None] | None = None) -> Iterator[Item]:
    """Yield MetricRow / Event / MapBlock values of a darknet log, in constant memory.

    A row is yielded once the next iteration line (or the end) shows that no more `-map`
    lines belong to it. Example: `rows = [x for x in parse_darknet("train.log")
    if isinstance(x, MetricRow)]`.
    """
    stats = stats if stats is not None else LogStats()
    pending: MetricRow | None = None
    last_step = 0
    last_avg_finite = True
    seen_iteration = False
    block: dict = {"classes": []}
    lines = _Lines()
    line_at = lines.at
    for raw, end in _blocks(path, stats, progress):
        raw, end, cut_edges = split_interleaved(raw, end)
        text = raw.replace(b"\r", b"\n") if b"\r" in raw else raw
        lines.start(raw)
        for m in _LINE.finditer(text, 0, end):
            kind = m.lastgroup
            if kind == "hk":  # hank-ai: `N: loss=L, avg loss=A, ..., rate=R, ..., I images, ...`
                kind = "it"
                step_b, loss, avg, rate, img = m.group("hstep", "hloss", "havg", "hrate", "himg")
                sec = left = None
            elif kind == "it":
                step_b, loss, avg, rate, sec, img, left = m.group(
                    "step", "loss", "avg", "rate", "sec", "img", "left")
            if kind == "it":
                step = int(step_b)
                row = MetricRow(
                    step=step, loss=_num(loss), avg_loss=_num(avg), lr=_num(rate),
                    seconds=_num(sec) if sec is not None else None, images=int(img),
                    hours_left=_num(left) if left is not None else None,
                )
                if row.loss is None or row.avg_loss is None or row.lr is None:
                    stats.bad_values += 1
                if not seen_iteration:
                    seen_iteration = True
                    stats.format = ("darknet-hank" if m.group("hk") else
                                    "darknet-alexeyab" if m.group("ab") else "darknet-pjreddie")
                elif step <= last_step:
                    yield Event(kind="restart", step=step, line=line_at(m.start()),
                                detail=f"iteration {last_step} -> {step}")
                elif step > last_step + 1:
                    stats.missing_steps += step - last_step - 1
                if pending is not None:
                    yield pending
                avg_ok = row.avg_loss is None or math.isfinite(row.avg_loss)
                if not avg_ok and last_avg_finite:
                    yield Event(kind="nan", step=step, line=line_at(m.start()),
                                detail=f"avg loss {_text(avg)}")
                last_avg_finite = avg_ok
                pending, last_step = row, step
            elif kind == "unk" or kind == "err":
                line = _text(m.group(kind), 300)
                if kind == "err" or _ERROR.search(line):
                    yield Event(kind="error", step=last_step, line=line_at(m.start()), detail=line)
                elif m.end() in cut_edges or _LAYER_PIECE.search(line):
                    continue  # a piece of a line cut by an interleaved message
                elif seen_iteration:
                    stats.unknown_lines += 1
                    note_unknown(stats, line)
                else:
                    stats.header_lines += 1
            elif kind == "cls":
                block["classes"].append(ClassAP(
                    class_id=int(m.group("cid")), name=_text(m.group("cname")),
                    ap=_fraction(m.group("ap"), stats),
                    tp=int(m.group("ctp")) if m.group("ctp") else None,
                    fp=int(m.group("cfp")) if m.group("cfp") else None,
                ))
            elif kind == "prf":
                block.update(precision=_num(m.group("p")), recall=_num(m.group("r")),
                             f1=_num(m.group("f1")))
            elif kind == "tpfn":
                iou = _num(m.group("iou"))
                block.update(tp=int(m.group("tp")), fp=int(m.group("fp")), fn=int(m.group("fn")),
                             avg_iou=round(iou / 100, 8) if iou is not None else None)
            elif kind in ("map", "hmap"):
                hank = kind == "hmap"
                value = _read(m.group("hmapv" if hank else "mapv"), stats)
                mb = MapBlock(step=last_step, line=line_at(m.start()),
                              iou_threshold=_num(m.group("hthr" if hank else "thr")) or 0.5,
                              map=value / 100 if hank else value, **block)
                block = {"classes": []}
                if pending is not None and pending.step == mb.step:
                    _attach(pending, mb)
                yield mb
            elif kind == "calc":
                block = {"classes": []}
            elif kind == "save":
                stats.saves += 1
                yield Event(kind="save", step=last_step, line=line_at(m.start()),
                            detail=_text(m.group("savep")))
            elif kind == "load":
                yield Event(kind="load", step=last_step, line=line_at(m.start()),
                            detail=_text(m.group("loadp")).removesuffix("...").strip())
            elif kind == "resize":
                stats.resizes += 1
            elif kind == "lr":
                stats.base_lr = _num(m.group("lrv"))
            elif kind == "batch":
                stats.batch = int(m.group("bv"))
        lines.finish(end)
        stats.last_line = _last_line(text[max(end - 4096, 0):end]) or stats.last_line
    stats.lines += lines.count - 1
    if pending is not None:
        yield pending
    if not stats.format:
        stats.format = "darknet"


def _attach(row: MetricRow, mb: MapBlock) -> None:
    if abs(mb.iou_threshold - 0.5) < 1e-9:
        row.map50 = mb.map
    row.precision, row.recall, row.f1, row.avg_iou = mb.precision, mb.recall, mb.f1, mb.avg_iou


def _last_line(text: bytes) -> str:
    for line in reversed(text.split(b"\n")):
        if line.strip():
            return _text(line)
    return ""
