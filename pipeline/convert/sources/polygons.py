"""COCO segmentations -> Ultralytics segment label lines (`<id> x1 y1 x2 y2 ...`, normalised).

Rules (each counted under the fix name in brackets):

- A polygon part needs an even number of coordinates and at least 3 points; other parts
  are dropped [polygon_part_dropped].
- Several parts of one object are joined into one outline [multipart_joined]: the parts
  are chained in the order given, each joined to the next at their two closest vertices by
  a zero-width bridge walked there and back. The outline encloses exactly the parts' area,
  so a rasterised mask equals the union of the parts (the same idea as Ultralytics'
  `merge_multi_segment`; every part is kept, none is chosen as "largest").
- RLE masks (`counts` as a run list or COCO's compressed string) are decoded with numpy and
  their outer contours traced with `cv2.findContours` (external only, holes are filled);
  several contours are joined as above [rle_traced]. A part one pixel wide traces to a
  contour of 1 or 2 points, which has no area in this convention: it is dropped and counted
  [rle_part_dropped]. An RLE whose `size` is not the image's, is over `MAX_MASK_PIXELS`, or
  decodes to an empty mask, falls back to the box.
- An object with no usable outline (empty `segmentation`, as in Roboflow exports) becomes
  its box as a 4-point polygon [segment_from_bbox]; a box without area is dropped and
  counted once [zero_area_dropped].
- Points are normalised by the image size and clipped to [0, 1] [polygon_clipped]; an
  outline whose clipped extent has zero width or height is dropped [zero_area_dropped].
"""

from __future__ import annotations

import math

import cv2
import msgspec
import numpy as np

from pipeline.core import Box

#: Fix names `outline` reports (everything else it reports is a problem).
FIXES = frozenset({"polygon_part_dropped", "multipart_joined", "rle_traced", "rle_part_dropped",
                   "segment_from_bbox", "zero_area_dropped"})
#: Vertex distances `closest_pair` computes at once (~16 MiB of float64 pairs).
PAIR_BUDGET = 1 << 20
#: RLE masks are decoded up to this many pixels (256 MiB, e.g. 16384 x 16384); larger -> the box.
MAX_MASK_PIXELS = 2**28


class Rle(msgspec.Struct):
    """A COCO RLE mask: `counts` as a run list or compressed string, `size` = [height, width]."""

    counts: list[int] | str
    size: list[int]


def part_points(flat: list[float]) -> np.ndarray | None:
    """A flat `[x1, y1, x2, y2, ...]` list as an (N, 2) array; None when it is no polygon.

    Example: `part_points([0, 0, 4, 0, 4, 3])` -> array of 3 points.
    """
    if len(flat) < 6 or len(flat) % 2:
        return None
    return np.asarray(flat, dtype=np.float64).reshape(-1, 2)


def _nearest(points: np.ndarray, to: np.ndarray) -> int:
    return int(np.argmin(((points - to) ** 2).sum(-1)))


def closest_pair(a: np.ndarray, b: np.ndarray) -> tuple[int, int]:
    """(i, j) with a[i], b[j] the closest vertices of two parts, in bounded memory and time.

    Up to `PAIR_BUDGET` distances the pair is exact; larger parts are compared on every
    k-th vertex, then the pair is refined by nearest-vertex steps over the full parts (any
    pair gives a valid bridge; a close one keeps it short). 2 x 100,000 points: ~1M
    distances (~16 MiB), not 10^10. Example: two unit squares 5 apart -> their facing corners.
    """
    stride = max(1, math.ceil(math.sqrt(len(a) * len(b) / PAIR_BUDGET)))
    sa, sb = a[::stride], b[::stride]
    d = ((sa[:, None, :] - sb[None, :, :]) ** 2).sum(-1)
    i, j = (int(k) * stride for k in np.unravel_index(int(np.argmin(d)), d.shape))
    if stride > 1:
        for _ in range(2):
            j = _nearest(b, a[i])
            i = _nearest(a, b[j])
    return i, j


def join_parts(parts: list[np.ndarray]) -> np.ndarray:
    """Join polygon parts into one outline with zero-width bridges (see the module rules).

    Each part is walked once around from the vertex where it is entered; on the way it
    passes the vertex nearest the next part, detours through that part (recursively) and
    comes back. Example: two squares give one outline of 4 + 1 + 4 + 1 + 2 points.
    """
    if len(parts) == 1:
        return parts[0]
    heads: list[np.ndarray] = []  # each part up to its exit, in order
    tails: list[np.ndarray] = []  # each part's way back, walked in reverse order
    entry = 0
    for part, following in zip(parts, parts[1:], strict=False):  # a loop: objects can have 1000s of parts
        link, next_entry = closest_pair(part, following)
        part = np.roll(part, -entry, axis=0)
        exit_at = (link - entry) % len(part)
        heads.append(part[: exit_at + 1])
        tails += [part[:1], part[exit_at:]]
        entry = next_entry
    last = np.roll(parts[-1], -entry, axis=0)
    return np.concatenate([*heads, last, last[:1], *reversed(tails)])


def decode_rle_string(text: str) -> list[int]:
    """COCO's compressed RLE string -> run lengths.

    Each number is stored in 5-bit groups, least significant first, as characters
    `chr(48 + group)`; bit 0x20 means "more groups follow" and bit 0x10 of the last group
    is the sign. From the fourth number on, the stored value is the difference to the number
    two places before. Example: `decode_rle_string("522O")` -> [5, 2, 2, 1].
    """
    counts: list[int] = []
    pos = 0
    data = text.encode("ascii")
    while pos < len(data):
        value = 0
        shift = 0
        while True:
            group = data[pos] - 48
            pos += 1
            value |= (group & 0x1F) << shift
            shift += 5
            if not group & 0x20:
                if group & 0x10:
                    value |= -1 << shift
                break
            if pos >= len(data):
                raise ValueError("compressed RLE string ends inside a number")
        if len(counts) > 2:
            value += counts[-2]
        counts.append(value)
    return counts


def rle_to_mask(counts: list[int], height: int, width: int) -> np.ndarray:
    """Run lengths (column-major, starting with background) -> (height, width) uint8 mask.

    Example: `rle_to_mask([1, 2, 3], 2, 3)` has pixels 1 and 2 (column-major) set.
    """
    if any(c < 0 for c in counts) or sum(counts) > height * width:
        raise ValueError("RLE runs are negative or longer than the mask")
    flat = np.zeros(height * width, dtype=np.uint8)
    ends = np.cumsum(counts)
    starts = ends - np.asarray(counts)
    for start, end in zip(starts[1::2], ends[1::2], strict=False):
        flat[start:end] = 1
    return flat.reshape(width, height).T.copy()


def mask_outlines(mask: np.ndarray) -> list[np.ndarray]:
    """Outer contours of a binary mask as (N, 2) float arrays, thin ones (< 3 points) included.

    Contour points are pixel indices; 0.5 is NOT added (same as COCO's own polygon tools).
    """
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return [c.reshape(-1, 2).astype(np.float64) for c in contours]


def box_polygon(box: Box) -> np.ndarray:
    """A box's 4 corners, clockwise from top-left."""
    return np.array(
        [[box.xmin, box.ymin], [box.xmax, box.ymin], [box.xmax, box.ymax], [box.xmin, box.ymax]]
    )


def segment_line(cid: int, outline: np.ndarray, width: int, height: int) -> tuple[str | None, list[str]]:
    """Normalise and clip one outline -> (label line or None, fixes).

    Example: `segment_line(0, np.array([[0, 0], [10, 0], [10, 5]]), 20, 10)` ->
    ("0 0.000000 0.000000 0.500000 0.000000 0.500000 0.500000\\n", []).
    """
    fixes = []
    norm = outline / np.array([width, height], dtype=np.float64)
    clipped = np.clip(norm, 0.0, 1.0)
    if not np.array_equal(clipped, norm):
        fixes.append("polygon_clipped")
    span = clipped.max(axis=0) - clipped.min(axis=0)
    if span[0] <= 0 or span[1] <= 0:
        fixes.append("zero_area_dropped")
        return None, fixes
    coords = " ".join(f"{v:.6f}" for v in clipped.ravel().tolist())
    return f"{cid:d} {coords}\n", fixes


def outline(raw: bytes, bbox: list[float] | None, width: int, height: int) -> tuple[np.ndarray | None, list]:
    """One object's outline in pixels from its raw `segmentation` JSON, by the module rules.

    Returns (outline or None, [(kind, detail)]), kinds in `FIXES` being fixes, others
    problems. Example: `outline(b"[[0,0,4,0,4,3]]", None, 10, 10)[0]` is 3 points.
    """
    found: list[tuple[str, str]] = []
    seg = None
    if raw:
        try:
            seg = msgspec.json.decode(raw, type=list[list[float]] | Rle | None)
        except msgspec.DecodeError as exc:  # deep nesting too: the types stop it at level 3
            found.append(("bad_segmentation", str(exc)))
    parts: list[np.ndarray] = []
    if isinstance(seg, list):
        for flat in seg:
            points = part_points(flat)
            if points is None:
                found.append(("polygon_part_dropped", f"{len(flat)} coordinates"))
            else:
                parts.append(points)
        if len(parts) > 1:
            found.append(("multipart_joined", f"{len(parts)} parts"))
    elif isinstance(seg, Rle):
        parts = _rle_parts(seg, width, height, found)
        if parts:
            found.append(("rle_traced", f"{len(parts)} contours"))
    if parts:
        return join_parts(parts), found
    if bbox is None or len(bbox) != 4:
        found.append(("bad_bbox", "no outline and no usable box"))
        return None, found
    box = Box.from_xywh(*bbox)
    if not box.xmax > box.xmin or not box.ymax > box.ymin:  # also nan
        found.append(("zero_area_dropped", f"box {bbox}"))
        return None, found
    found.append(("segment_from_bbox", ""))
    return box_polygon(box), found


def _rle_parts(rle: Rle, width: int, height: int, found: list) -> list[np.ndarray]:
    if rle.size != [height, width]:
        found.append(("rle_size_mismatch", f"RLE size {rle.size}, image {[height, width]}"))
        return []
    if height * width > MAX_MASK_PIXELS:
        found.append(("rle_too_large", f"RLE size {rle.size}, over {MAX_MASK_PIXELS:,} pixels"))
        return []
    try:
        counts = decode_rle_string(rle.counts) if isinstance(rle.counts, str) else rle.counts
        mask = rle_to_mask(counts, height, width)
    except (ValueError, UnicodeEncodeError) as exc:
        found.append(("bad_rle", str(exc)))
        return []
    outlines = mask_outlines(mask)
    parts = [c for c in outlines if len(c) >= 3]
    if len(parts) < len(outlines):
        found.append(("rle_part_dropped", f"{len(outlines) - len(parts)} parts one pixel wide"))
    return parts
