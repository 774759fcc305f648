"""The evaluation table both engines fill: one row per class, overall figures, the
degenerate-model verdict, and its renderings (text, markdown, CSV, JSON).

Conventions: AP, precision, recall and F1 are fractions (0..1); `None` is "this engine does
not give it". TP/FP/FN are counted at `conf_thresh` (0.25, darknet's default) and IoU 0.5.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import asdict, dataclass, field

#: Confidence at which TP/FP/FN (and darknet's P/R) are counted.
CONF_THRESH = 0.25
#: A class counts as "predicted in every image" from this share of the images on.
EVERYWHERE_SHARE = 0.9
#: FP over TP by this factor in every class: nearly every detection is false.
FP_FACTOR = 10


@dataclass(slots=True)
class ClassRow:
    """One class of the evaluated split."""

    id: int
    name: str
    images: int | None = None
    instances: int | None = None
    ap50: float | None = None
    ap50_95: float | None = None
    precision: float | None = None
    recall: float | None = None
    tp: int | None = None
    fp: int | None = None
    fn: int | None = None


@dataclass(slots=True)
class Overall:
    """The split as a whole."""

    precision: float | None = None
    recall: float | None = None
    f1: float | None = None
    map50: float | None = None
    map50_95: float | None = None
    tp: int | None = None
    fp: int | None = None
    fn: int | None = None
    avg_iou: float | None = None


@dataclass(slots=True)
class Evaluation:
    """What `evaluate` found for one run, split and weights file."""

    run: str
    engine: str
    split: str
    weights: str
    source: str
    images: int | None = None
    fork: str | None = None
    conf_thresh: float = CONF_THRESH
    classes: list[ClassRow] = field(default_factory=list)
    overall: Overall = field(default_factory=Overall)
    degenerate: str | None = None
    notes: list[str] = field(default_factory=list)
    command: list[str] | None = None
    files: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict:
        """JSON-ready form (NaN becomes None)."""
        return _finite(asdict(self))


def _finite(value):
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def finite(value: float | None) -> float | None:
    """The value, or None for None, NaN and inf (darknet prints `-nan` for 0/0)."""
    return value if value is not None and math.isfinite(value) else None


def f1_of(precision: float | None, recall: float | None) -> float | None:
    """2PR/(P+R), 0 when both are 0. Example: `f1_of(0.5, 1.0)` -> 0.667."""
    if precision is None or recall is None:
        return None
    return 0.0 if precision + recall <= 0 else 2 * precision * recall / (precision + recall)


def ratio(part: int | None, whole: int | None) -> float | None:
    """part/whole, None when either is unknown or whole is 0."""
    return None if part is None or not whole else part / whole


# -- the degenerate model ------------------------------------------------------------------

def degenerate_verdict(rows: list[ClassRow], images: int | None,
                       classes_per_image: list[int] | None = None) -> str | None:
    """One line when the model predicts nothing, or (nearly) every class in every image, or
    detections that are nearly all false; None for a model that discriminates.

    `classes_per_image`: distinct classes predicted at CONF_THRESH in each image (Ultralytics);
    without it (darknet) the per-class detection counts stand in.
    Example: two classes, 10 images, TP+FP 10 for each -> "degenerate: predicts every class...".
    """
    counted = [r for r in rows if r.tp is not None and r.fp is not None]
    detections = sum(r.tp + r.fp for r in counted) if counted else None  # type: ignore[operator]
    if classes_per_image is not None:
        detections = detections if detections is not None else sum(classes_per_image)
    where = f" in {images} images" if images else ""
    if detections == 0 and (counted or classes_per_image is not None):
        return (f"degenerate: no detections at conf {CONF_THRESH:g}{where} — the model predicts "
                "nothing (undertrained, or weights that do not match the cfg)")
    if len(rows) >= 2 and images and _everywhere(rows, counted, images, classes_per_image):
        return "degenerate: predicts every class in every image — the weights may not match the cfg"
    if (only := _one_class(rows, counted, images)) is not None:
        return (f"degenerate: predicts only {only.name!r} ({only.tp + only.fp} detections in {images} "  # type: ignore[operator]
                "images, none of any other class) — undertrained, or weights that do not match the cfg")
    if counted and len(counted) == len(rows) and detections and detections >= (images or 0) and all(
            r.fp >= FP_FACTOR * max(r.tp, 1) for r in counted):  # type: ignore[operator]
        tp, fp = sum(r.tp for r in counted), sum(r.fp for r in counted)  # type: ignore[misc]
        return (f"degenerate: nearly every detection is false (TP {tp}, FP {fp}; FP over "
                f"{FP_FACTOR}x TP in every class) — undertrained, or weights that do not match the cfg")
    return None


def _one_class(rows: list[ClassRow], counted: list[ClassRow], images: int | None) -> ClassRow | None:
    """The one class every detection is of, when there are as many as images, mostly false."""
    busy = [r for r in counted if r.tp + r.fp > 0]  # type: ignore[operator]
    if len(rows) < 2 or len(counted) != len(rows) or len(busy) != 1 or not images:
        return None
    b = busy[0]
    return b if b.tp + b.fp >= images and b.fp > b.tp else None  # type: ignore[operator]


def _everywhere(rows: list[ClassRow], counted: list[ClassRow], images: int,
                classes_per_image: list[int] | None) -> bool:
    """(Nearly) every class predicted in (nearly) every image."""
    if classes_per_image is not None:
        need = max(2, math.ceil(0.8 * len(rows)))
        full = sum(1 for n in classes_per_image if n >= need)
        return bool(classes_per_image) and full >= EVERYWHERE_SHARE * len(classes_per_image)
    return len(counted) == len(rows) and all(
        r.tp + r.fp >= EVERYWHERE_SHARE * images for r in counted)  # type: ignore[operator]


# -- renderings ----------------------------------------------------------------------------

#: (field, heading, kind) of the per-class table; a column no row fills is left out of text.
COLUMNS = (("images", "images", "int"), ("instances", "instances", "int"), ("ap50", "AP@0.5", "frac"),
           ("ap50_95", "AP@0.5:0.95", "frac"), ("precision", "P", "frac"), ("recall", "R", "frac"),
           ("tp", "TP", "int"), ("fp", "FP", "int"), ("fn", "FN", "int"))


def _cell(value, kind: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.1%}" if kind == "frac" else f"{value:,}"  # percents, as summarize and status


def _overall_row(ev: Evaluation) -> dict:
    o = ev.overall
    counts = [r.instances for r in ev.classes]
    instances = sum(counts) if counts and None not in counts else None  # type: ignore[arg-type]
    return {"images": ev.images, "instances": instances, "ap50": o.map50, "ap50_95": o.map50_95,
            "precision": o.precision, "recall": o.recall, "tp": o.tp, "fp": o.fp, "fn": o.fn}


def table_rows(ev: Evaluation) -> tuple[list[str], list[list[str]]]:
    """Headings and cells of the per-class table plus an `all` row; empty columns dropped."""
    rows = [asdict(r) for r in ev.classes]
    overall = _overall_row(ev)
    used = [c for c in COLUMNS if any(r[c[0]] is not None for r in rows) or overall[c[0]] is not None]
    heads = ["id", "class", *(c[1] for c in used)]
    body = [[str(r["id"]), r["name"], *(_cell(r[c[0]], c[2]) for c in used)] for r in rows]
    body.append(["", "all", *(_cell(overall[c[0]], c[2]) for c in used)])
    return heads, body


def overall_line(ev: Evaluation) -> str:
    """`P 80.0%, R 75.0%, F1 77.0%, mAP@0.5 91.2%, mAP@0.5:0.95 61.0%` (what is known)."""
    o = ev.overall
    parts = [(k, v) for k, v in (("P", o.precision), ("R", o.recall), ("F1", o.f1), ("mAP@0.5", o.map50),
                                 ("mAP@0.5:0.95", o.map50_95)) if v is not None]
    text = ", ".join(f"{k} {v:.1%}" for k, v in parts)
    if o.avg_iou is not None:
        text += f", avg IoU {o.avg_iou:.1%}"
    return text or "no overall figures"


def heading(ev: Evaluation) -> str:
    """`RUN  [darknet alexeyab]  val split, 6 images, weights FILE (source)`."""
    engine = f"{ev.engine} {ev.fork}" if ev.fork else ev.engine
    images = f", {ev.images:,} images" if ev.images is not None else ""
    return f"{ev.run}  [{engine}]  {ev.split} split{images}, weights {ev.weights} ({ev.source})"


def counts_note(ev: Evaluation) -> str:
    """Where TP/FP/FN were counted, when the table has them."""
    counted = any(r.tp is not None for r in ev.classes)
    return f"TP/FP/FN at conf {ev.conf_thresh:g}, IoU 0.5" if counted else ""


def render_text(ev: Evaluation) -> str:
    """The console table: the degenerate line first, the heading, the table, the overall line."""
    heads, body = table_rows(ev)
    widths = [max(len(x) for x in col) for col in zip(heads, *body, strict=True)]

    def fmt(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 1 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True)))

    lines = [ev.degenerate] if ev.degenerate else []
    lines += [heading(ev), fmt(heads), *(fmt(r) for r in body), f"overall: {overall_line(ev)}"]
    lines += [counts_note(ev)] if counts_note(ev) else []
    lines += [f"note: {n}" for n in ev.notes]
    return "\n".join(lines)


def render_markdown(ev: Evaluation, chart: str | None = None) -> str:
    """report-style markdown: heading, verdict, table, overall, notes, chart."""
    heads, body = table_rows(ev)
    out = [f"# Evaluation: {ev.split} split", "", heading(ev), ""]
    if ev.degenerate:
        out += [f"**{ev.degenerate}**", ""]
    out += ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in body]
    out += ["", f"Overall: {overall_line(ev)}.", ""]
    out += [counts_note(ev) + ".", ""] if counts_note(ev) else []
    out += [f"- {n}" for n in ev.notes] + ([""] if ev.notes else [])
    if ev.command:
        out += ["Command: `" + " ".join(ev.command) + "`", ""]
    if chart:
        out += [f"![AP per class]({chart})", ""]
    return "\n".join(out)


CSV_FIELDS = ("id", "name", *(c[0] for c in COLUMNS))


def render_csv(ev: Evaluation) -> str:
    """One row per class and an `all` row; empty cells where the engine gives nothing."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in ev.classes:
        writer.writerow({k: _blank(v) for k, v in asdict(row).items()})
    writer.writerow({"id": "", "name": "all", **{k: _blank(v) for k, v in _overall_row(ev).items()}})
    return buf.getvalue()


def _blank(value):
    """An empty CSV cell for a missing or non-finite value."""
    return "" if value is None or (isinstance(value, float) and not math.isfinite(value)) else value
