"""`check`: find everything in a dataset that would break or silently spoil training.

Any layout `open_dataset` reads (our folder, a data.yaml, a .data); labels are looked for
where that layout's tool looks for them.

Problems (each one a row of the report file, `kind  file[:line]  detail`); the label-line
and listing names are `pipeline.dataset.label_lines`', shared with `check-cfg --data`:

- label lines: `bad_field_count`, `bad_number`, `class_out_of_range`,
  `coord_out_of_range` (a value outside [0, 1]), `non_positive_size`;
- listing: `missing_list` (a split's list file is gone), `relative_path` (darknet resolves
  it against its working folder), `listed_twice`, `missing_image` (broken symlinks too),
  `missing_label` (pjreddie's darknet stops at "Couldn't open file");
- `undecodable_image` (with `decode`: OpenCV cannot read it);
- `orphan_label`: a `.txt` in a label folder that is no listed image's label and has no
  image of that stem beside it;
- `duplicate_image` (with `duplicates`: same bytes as an earlier listed image);
- `names_mismatch`: the `.names` file does not hold one line per manifest class.

Warnings do not fail the check: labels that pjreddie's darknet would not read (missing where
it looks, or different there; a same-bytes copy, as `convert voc --darknet-labels` writes,
is fine).
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from pipeline.core import Problem
from pipeline.darknet.paths import LABEL_PATH, unread_by
from pipeline.dataset.datafiles import read_names
from pipeline.dataset.folder import Dataset, open_dataset
from pipeline.dataset.label_lines import MISSING_IMAGE, MISSING_LABEL, RELATIVE_PATH, check_lines, label_bytes
from pipeline.errors import PipelineError, UserError
from pipeline.io import atomic_writer

REPORT_NAME = "check-report.tsv"
WHY = {"missing": "missing where it looks", "differs": "a different file there",
       "extension": "an extension it does not know"}


@dataclass
class CheckReport:
    """What `check_dataset` found: counts per problem kind and the report file."""

    dataset: str
    report_file: str
    images: int = 0
    labels: int = 0
    boxes: int = 0
    problems: Counter = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems

    def as_dict(self) -> dict:
        """JSON-ready form."""
        return {"dataset": self.dataset, "ok": self.ok, "images": self.images,
                "labels": self.labels, "boxes": self.boxes, "problems": dict(self.problems),
                "report_file": self.report_file, "warnings": self.warnings}


def check_label(data: bytes, num_classes: int, where: str) -> tuple[int, list[Problem]]:
    """(valid boxes, problems) of one label file's bytes; each problem names `where:line`.

    Example: `check_label(b"0 0.5 0.5 0 0.1\\n", 1, "a.txt")` -> (0, [non_positive_size a.txt:1]).
    """
    boxes, bad = check_lines(data, num_classes)
    return boxes, [Problem(exc.kind, f"{where}:{number}", exc.detail) for number, exc in bad]


def _decodable(path: str) -> bool:
    import cv2

    return cv2.imread(path, cv2.IMREAD_UNCHANGED) is not None


def _content_hash(path: str) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def duplicate_images(paths: Iterable[str]) -> Iterator[Problem]:
    """Images with the same bytes as an earlier one (sizes compared first, then hashes)."""
    by_size: dict[int, list[str]] = defaultdict(list)
    for p in paths:
        by_size[os.path.getsize(p)].append(p)
    for group in by_size.values():
        if len(group) < 2:
            continue
        first: dict[str, str] = {}
        for p in group:
            digest = _content_hash(p)
            if digest in first:
                yield Problem("duplicate_image", p, f"same content as {first[digest]}")
            else:
                first[digest] = p


def orphan_labels(folders: Iterable[str], expected: set[str]) -> Iterator[Problem]:
    """`.txt` files in the given folders that are not in `expected` and have no other file
    of the same stem beside them (a label folder holds only labels: each must be expected).
    """
    for folder in sorted(folders):
        try:
            names = [e.name for e in os.scandir(folder) if not e.is_dir()]
        except FileNotFoundError:
            continue
        stems = {os.path.splitext(n)[0] for n in names if not n.endswith(".txt")}
        for n in names:
            path = os.path.join(folder, n)
            if n.endswith(".txt") and n[:-4] not in stems and path not in expected:
                yield Problem("orphan_label", path, "no image with this stem")


def _listing_problems(ds: Dataset, report: CheckReport, present: list[str],
                      progress: bool) -> Iterator[Problem]:
    """Problems of the lists, the images and their labels; images found go to `present`."""
    seen: set[str] = set()
    for split in ds.manifest.splits:
        if ds.layout is None and not ds.list_path(split).is_file():
            yield Problem("missing_list", str(ds.list_path(split)), f"split {split}")
            continue
        for image, where in tqdm(ds.entries(split), desc=f"check {split}", unit="img",
                                 disable=not progress):
            if not os.path.isabs(image):
                yield Problem(RELATIVE_PATH, where, image)
            if image in seen:
                yield Problem("listed_twice", where, image)
                continue
            seen.add(image)
            report.images += 1
            if not os.path.exists(image):
                yield Problem(MISSING_IMAGE, image, where)
                continue
            present.append(image)
            label = ds.label_path(image)
            if label is None:  # a layout rule that reads no label for this image
                yield Problem(MISSING_LABEL, image, f"{ds.manifest.source.get('labels')} "
                              "reads no label for this file extension")
                continue
            data = label_bytes(label)
            if data is None:
                yield Problem(MISSING_LABEL, label, image)
                continue
            report.labels += 1
            boxes, problems = check_label(data, ds.num_classes, label)
            report.boxes += boxes
            yield from problems


def _names_problem(ds: Dataset) -> Problem | None:
    names = ds.manifest.names_file
    if not names:
        return None
    path = Path(names) if os.path.isabs(names) else ds.root / names
    if not path.is_file():
        return Problem("names_mismatch", str(path), "file missing")
    try:
        lines = [name for name in read_names(path) if name]
    except PipelineError as exc:  # unreadable or binary
        return Problem("names_mismatch", str(path), exc.message)
    if len(lines) != ds.num_classes:
        return Problem("names_mismatch", str(path),
                       f"{len(lines)} names, manifest has {ds.num_classes} classes")
    return None


def find_problems(ds: Dataset, report: CheckReport, *, decode: bool = False,
                  duplicates: bool = False, workers: int | None = None,
                  progress: bool = False) -> Iterator[Problem]:
    """Every problem in a dataset, in a stable order; counts go into `report`."""
    present: list[str] = []
    yield from _listing_problems(ds, report, present, progress)
    if (names := _names_problem(ds)) is not None:
        yield names
    labels = {label for p in present if (label := ds.label_path(p))}
    if ds.layout is None:
        labels |= {str(ds.list_path(s)) for s in ds.manifest.splits} | {str(ds.root / "classes.txt")}
    yield from orphan_labels({os.path.dirname(p) for p in labels}, labels)
    if decode:
        with ThreadPoolExecutor(workers or os.cpu_count() or 1) as pool:
            for image, ok in zip(present, pool.map(_decodable, present, chunksize=64),
                                 strict=True):
                if not ok:
                    yield Problem("undecodable_image", image, "OpenCV cannot decode it")
    if duplicates:
        yield from duplicate_images(present)
    if unread := unread_by(present, LABEL_PATH["pjreddie"], ds.label_path):
        kinds = Counter(why for _, _, why in unread)
        image, where, why = unread[0]
        report.warnings.append(
            f"pjreddie darknet will not read the labels of {len(unread)} images ("
            + ", ".join(f"{WHY[k]} {n}" for k, n in kinds.items())
            + f"), e.g. {image} -> {where or 'the image itself'} ({WHY[why]})")


def check_dataset(dataset: str | Path, *, decode: bool = False, duplicates: bool = False,
                  report_file: str | Path | None = None, workers: int | None = None,
                  progress: bool = False) -> CheckReport:
    """Check a dataset folder and write the report file (default DATASET/check-report.tsv).

    Example: `check_dataset("data/in10", decode=True).ok`
    """
    ds = open_dataset(dataset)
    path = Path(report_file).absolute() if report_file else ds.root / REPORT_NAME
    report = CheckReport(ds.source, str(path), warnings=list(ds.notes))
    try:
        with atomic_writer(path, "wb") as out:
            out.write(b"kind\tfile\tdetail\n")
            for p in find_problems(ds, report, decode=decode, duplicates=duplicates,
                                   workers=workers, progress=progress):
                report.problems[p.kind] += 1
                # Paths are kept as bytes (a list may name non-UTF-8 files).
                out.write(f"{p.kind}\t{p.file}\t{p.detail}\n".encode("utf-8", "surrogateescape"))
    except OSError as exc:
        raise UserError(f"cannot write the report {path}: {exc.strerror}") from None
    report.problems = Counter(dict(sorted(report.problems.items())))
    return report
