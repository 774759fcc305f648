"""Synthetic COCO instances files of any size (bench, tests, demo).

The file has COCO's shape and key order (`info`, `licenses`, `images`, `annotations`,
`categories` last), the 80 real categories (ids 1..90 with gaps), polygons of 8-43
vertices with 2-decimal coordinates, some objects in two parts, about 1% `iscrowd=1`
objects with an uncompressed RLE mask, and a few images without annotation.
Defaults give ~110 MB: 29,600 images and 215,000 annotations (25% of train2017).
Deterministic for a seed; written in chunks with orjson, so memory stays small, and atomically.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import orjson

from pipeline.convert.sources.coco_schema import COCO80
from pipeline.io import atomic_writer

CHUNK = 5000


def _polygon(rng: np.random.Generator, cx: float, cy: float, rx: float, ry: float) -> list[float]:
    n = int(rng.integers(8, 44))
    angles = np.sort(rng.uniform(0, 2 * np.pi, n))
    radius = rng.uniform(0.7, 1.0, n)
    pts = np.stack([cx + rx * radius * np.cos(angles), cy + ry * radius * np.sin(angles)], axis=1)
    return np.round(pts, 2).ravel().tolist()


def _rle_box(x: int, y: int, w: int, h: int, height: int) -> list[int]:
    """Column-major runs of a filled `w` x `h` rectangle at (x, y) in an image `height` tall."""
    counts = [x * height + y]
    for _ in range(w - 1):
        counts += [h, height - h]
    return [*counts, h]


def _annotation(rng, ann_id: int, image: dict, crowd_rate: float, multipart_rate: float) -> dict:
    width, height = image["width"], image["height"]
    cat = COCO80[int(rng.integers(0, 80))][0]
    rx, ry = rng.uniform(6, width / 4), rng.uniform(6, height / 4)
    cx, cy = rng.uniform(rx * 0.8, width - rx * 0.8), rng.uniform(ry * 0.8, height - ry * 0.8)
    if rng.random() < crowd_rate:
        x, y = int(max(cx - rx, 0)), int(max(cy - ry, 0))
        w, h = int(min(2 * rx, width - x)), int(min(2 * ry, height - y))
        seg: object = {"counts": _rle_box(x, y, w, h, height), "size": [height, width]}
        bbox = [float(x), float(y), float(w), float(h)]
        return {"segmentation": seg, "area": float(w * h), "iscrowd": 1, "image_id": image["id"],
                "bbox": bbox, "category_id": cat, "id": ann_id}
    parts = [_polygon(rng, cx, cy, rx, ry)]
    if rng.random() < multipart_rate:
        parts.append(_polygon(rng, min(cx + rx, width - 3), cy, rx / 3, ry / 3))
    xs = np.concatenate([np.asarray(p[0::2]) for p in parts])
    ys = np.concatenate([np.asarray(p[1::2]) for p in parts])
    bbox = [round(float(xs.min()), 2), round(float(ys.min()), 2),
            round(float(xs.max() - xs.min()), 2), round(float(ys.max() - ys.min()), 2)]
    return {"segmentation": parts, "area": round(bbox[2] * bbox[3] * 0.7, 3), "iscrowd": 0,
            "image_id": image["id"], "bbox": bbox, "category_id": cat, "id": ann_id}


def make_coco_json(
    path: str | Path,
    *,
    images: int = 29_600,
    annotations: int = 215_000,
    empty_rate: float = 0.01,
    crowd_rate: float = 0.01,
    multipart_rate: float = 0.05,
    seed: int = 0,
) -> Path:
    """Write a COCO-like instances file; returns its path.

    Example: `make_coco_json(tmp / "instances_train.json", images=100, annotations=700)`
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    image_list = [
        {"license": 1, "file_name": f"{i:012d}.jpg", "height": int(rng.integers(240, 641)),
         "width": int(rng.integers(320, 641)), "date_captured": "2013-11-14 17:02:52", "id": i}
        for i in range(1, images + 1)
    ]
    annotated = [im for im in image_list if rng.random() >= empty_rate]
    owners = rng.integers(0, len(annotated), annotations)
    with atomic_writer(path, "wb") as f:  # a killed run leaves no half file to convert
        f.write(b'{"info":{"description":"synthetic COCO-like instances","version":"1.0","year":2026},'
                b'"licenses":[{"id":1,"name":"synthetic","url":""}],"images":')
        f.write(orjson.dumps(image_list))
        f.write(b',"annotations":[')
        for start in range(0, annotations, CHUNK):
            chunk = [_annotation(rng, n + 1, annotated[int(owners[n])], crowd_rate, multipart_rate)
                     for n in range(start, min(start + CHUNK, annotations))]
            f.write((b"," if start else b"") + orjson.dumps(chunk)[1:-1])
        f.write(b'],"categories":')
        f.write(orjson.dumps([{"supercategory": "thing", "id": i, "name": n} for i, n in COCO80]))
        f.write(b"}")
    return path


def make_coco_images(json_path: str | Path, images_dir: str | Path, *, jpeg: bool = False) -> int:
    """Create the images a COCO file lists: empty placeholders, or JPEGs with its polygons drawn.

    Returns the number of files written. Example: `make_coco_images(js, tmp / "train")`
    """
    data = orjson.loads(Path(json_path).read_bytes())
    images_dir = Path(images_dir)
    images_dir.mkdir(parents=True, exist_ok=True)
    shapes: dict[int, list] = {}
    if jpeg:
        for ann in data["annotations"]:
            shapes.setdefault(ann["image_id"], []).append(ann)
    for image in data["images"]:
        target = images_dir / image["file_name"]
        target.parent.mkdir(parents=True, exist_ok=True)
        if not jpeg:
            target.write_bytes(b"")
            continue
        canvas = np.full((image["height"], image["width"], 3), 60, np.uint8)
        for ann in shapes.get(image["id"], ()):
            colour = [(ann["category_id"] * 53) % 256, (ann["category_id"] * 97) % 256, 200]
            seg = ann["segmentation"]
            parts = seg if isinstance(seg, list) else []
            if not parts:
                x, y, w, h = ann["bbox"]
                parts = [[x, y, x + w, y, x + w, y + h, x, y + h]]
            pts = [np.asarray(p, np.float64).reshape(-1, 2).round().astype(np.int32) for p in parts]
            cv2.fillPoly(canvas, pts, colour)
        ok, buf = cv2.imencode(".jpg", canvas, [cv2.IMWRITE_JPEG_QUALITY, 85])
        target.write_bytes(buf.tobytes())
    return len(data["images"])
