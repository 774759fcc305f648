"""`stats`: what is in a dataset: class balance, boxes per image, box sizes and shapes.

Box size is `sqrt(w * h)` of the normalised box (0.1 = a box a tenth of the image side);
aspect is `w / h` of the normalised box, i.e. relative to the image shape (equal to the
pixel aspect for square images; no image header is opened, so stats over ImageNet take
seconds). Lines that `check` would reject are counted as `bad_lines` and left out.
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pipeline.dataset.folder import open_dataset
from pipeline.dataset.label_lines import LineError, label_bytes, parse_line
from pipeline.dataset.labels import label_path_beside

PERCENTILES = (5, 25, 50, 75, 95)
SIZE_BINS = (0.0, 0.05, 0.1, 0.2, 0.4, 0.7, 1.0)
PER_IMAGE_TOP = 10  # boxes-per-image histogram: 0..9 and "10+"


def _distribution(values: np.ndarray) -> dict:
    if values.size == 0:
        return {"count": 0}
    pct = np.percentile(values, PERCENTILES)
    return {"count": int(values.size), "mean": round(float(values.mean()), 4),
            **{f"p{p}": round(float(v), 4) for p, v in zip(PERCENTILES, pct, strict=True)}}


def split_stats(images: list[str], keys: list[str], progress: bool = False, desc: str = "",
                label_of: Callable[[str], str | None] = label_path_beside) -> dict:
    """Counts and distributions over the labels of one split's images (`label_of`: the
    layout's label path of an image). Example:
    `split_stats(["/d/a.jpg"], ["cat"])["per_class"]["cat"]["boxes"]`.
    """
    nc = len(keys)
    img_per_class, box_per_class = Counter(), Counter()
    per_image: Counter = Counter()
    widths, heights = array("d"), array("d")
    missing = unannotated = bad = 0
    for image in tqdm(images, desc=f"stats {desc}", unit="img", disable=not progress):
        data = label_bytes(label_of(image))
        if data is None:
            missing += 1
            continue
        ids = []
        for line in data.splitlines():
            if not line.strip():
                continue
            try:
                cid, _, _, w, h = parse_line(line, nc)
            except LineError:
                bad += 1
                continue
            ids.append(cid)
            widths.append(w)
            heights.append(h)
        unannotated += not ids
        per_image[min(len(ids), PER_IMAGE_TOP)] += 1
        box_per_class.update(ids)
        img_per_class.update(set(ids))
    w, h = np.frombuffer(widths), np.frombuffer(heights)
    size = np.sqrt(w * h)
    counts = [per_image[n] for n in range(PER_IMAGE_TOP + 1)]
    n_boxes = int(w.size)
    return {
        "images": len(images), "labelled": len(images) - missing, "missing_labels": missing,
        "unannotated": unannotated, "boxes": n_boxes, "bad_lines": bad,
        "per_class": {k: {"images": img_per_class[i], "boxes": box_per_class[i]}
                      for i, k in enumerate(keys)},
        "boxes_per_image": {
            "histogram": {(str(n) if n < PER_IMAGE_TOP else f"{n}+"): c
                          for n, c in enumerate(counts)},
            "mean": round(n_boxes / max(len(images) - missing, 1), 3),
        },
        "box_size": {**_distribution(size), "histogram": {
            f"{a:g}-{b:g}": int(c) for a, b, c in zip(
                SIZE_BINS, SIZE_BINS[1:], np.histogram(size, SIZE_BINS)[0], strict=False)}},
        "aspect": {**_distribution(w / h if n_boxes else w),
                   "wide_over_2": int((w > 2 * h).sum()), "tall_over_2": int((h > 2 * w).sum())},
        "_sizes": size, "_aspects": w / h if n_boxes else w,
    }


def dataset_stats(dataset: str | Path, splits: tuple[str, ...] = (), progress: bool = False
                  ) -> dict:
    """Stats of every split (or the given ones) of a dataset (any layout `open_dataset` reads).

    Arrays used by the chart are under keys starting with `_` (see `public`); `warnings`
    says how the dataset was found and read.
    Example: `dataset_stats("data/in10")["splits"]["train"]["boxes"]`.
    """
    ds = open_dataset(dataset)
    keys = ds.manifest.class_keys()
    names = dict(zip(keys, ds.manifest.class_names(), strict=True))
    chosen = splits or tuple(ds.manifest.splits)
    return {"dataset": ds.source, "classes": len(keys), "names": names,
            "warnings": list(ds.notes),
            "splits": {s: split_stats(ds.images(s), keys, progress, s, ds.label_path)
                       for s in chosen}}


def public(stats: dict) -> dict:
    """The stats without the raw arrays, ready for JSON."""
    return {**stats, "splits": {s: {k: v for k, v in d.items() if not k.startswith("_")}
                                for s, d in stats["splits"].items()}}


def render_text(stats: dict, max_classes: int = 20) -> str:
    """A short human summary; classes beyond `max_classes` are summarised."""
    out = [f"{stats['dataset']}: {stats['classes']} classes"]
    for split, s in stats["splits"].items():
        out.append(f"\n[{split}] images {s['images']}, boxes {s['boxes']}, unannotated "
                   f"{s['unannotated']}, missing labels {s['missing_labels']}, "
                   f"bad lines {s['bad_lines']}, boxes/image {s['boxes_per_image']['mean']}")
        rows = sorted(s["per_class"].items(), key=lambda kv: -kv[1]["images"])
        out.append(f"  {'class':<12} {'name':<28} {'images':>8} {'boxes':>8}")
        for key, c in rows[:max_classes]:
            out.append(f"  {key:<12} {stats['names'][key][:28]:<28} "
                       f"{c['images']:>8} {c['boxes']:>8}")
        if len(rows) > max_classes:
            imgs = [c["images"] for _, c in rows]
            out.append(f"  ... {len(rows) - max_classes} more; images per class min "
                       f"{min(imgs)}, median {int(np.median(imgs))}, max {max(imgs)}")
        hist = s["boxes_per_image"]["histogram"]
        out.append("  boxes/image: " + "  ".join(f"{k}:{v}" for k, v in hist.items() if v))
        for what in ("box_size", "aspect"):
            d = s[what]
            if d.get("count"):
                out.append(f"  {what}: " + "  ".join(
                    f"p{p} {d[f'p{p}']:g}" for p in PERCENTILES) + f"  mean {d['mean']:g}")
    return "\n".join(out)
