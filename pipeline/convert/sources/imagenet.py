"""Kaggle ImageNet CLS-LOC ("ImageNet Object Localization Challenge") -> YOLO labels.

Layout (ROOT is the folder holding `ILSVRC/` and the `LOC_*` files; ROOT may also be the
`ILSVRC` folder itself with the `LOC_*` files beside or above it)::

    ROOT/LOC_synset_mapping.txt            class order (sorted wnids) and human names
    ROOT/LOC_{train,val}_solution.csv      the same boxes as the XML (`--from csv`)
    ROOT/ILSVRC/Data/CLS-LOC/train/<wnid>/<wnid>_<n>.JPEG
    ROOT/ILSVRC/Data/CLS-LOC/val/ILSVRC2012_val_<n>.JPEG            (flat)
    ROOT/ILSVRC/Annotations/CLS-LOC/{train/<wnid>,val}/<stem>.xml   (train: 544,546 of 1.28M)

Each sub-folder of a split becomes one job; loose files (val) are cut into slices.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.convert.engine import (
    ConvertOptions,
    JobContext,
    LabelItem,
    convert_split,
    digest,
    options_dict,
    stat_token,
    write_dataset,
)
from pipeline.convert.sources.kaggle_files import (
    KaggleLayout,
    find_layout,
    parse_prediction,
    parse_synsets,
    read_solution,
)
from pipeline.convert.sources.vocxml import parse_voc_rows
from pipeline.core import Problem
from pipeline.darknet.paths import PJREDDIE_REWRITES
from pipeline.dataset.labels import ObjectRow, label_of_rows, object_rows
from pipeline.dataset.manifest import Manifest
from pipeline.errors import FormatError, UserError
from pipeline.io import image_size, read_file, read_text, xml_parser

log = logging.getLogger(__name__)

SPLITS = ("train", "val")
SOURCES = ("xml", "csv")
IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png", ".bmp")
FLAT_SLICE = 1000


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


@dataclass
class ImagenetJob:
    """One class folder (names listed by the worker) or one slice of a flat folder."""

    key: str
    image_dir: str
    ann_dir: str
    label_dir: str
    image_names: tuple[str, ...] | None = None
    label_names: tuple[str, ...] | None = None  # labels the slice's folder listing showed
    xml_names: tuple[str, ...] | None = None
    csv_rows: tuple[tuple[str, str, str], ...] | None = None
    _images: dict[str, str] | None = field(default=None, repr=False, compare=False)
    _labels: set[str] | None = field(default=None, repr=False, compare=False)
    _xmls: dict[str, str] | None = field(default=None, repr=False, compare=False)
    _read: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    def images(self) -> dict[str, str]:
        """{stem: file name} of this job's images (listed once per job)."""
        if self._images is None:
            if self.image_names is not None:
                names = self.image_names
                if self.label_names is not None:
                    self._labels = set(self.label_names)
            else:
                try:
                    names = tuple(e.name for e in os.scandir(self.image_dir) if e.is_file())
                except FileNotFoundError:
                    names = ()
                if self.label_dir == self.image_dir:
                    self._labels = {n for n in names if n.endswith(".txt")}
            self._images = {n.rpartition(".")[0]: n for n in names if _is_image(n)}
        return self._images

    def xml_files(self) -> dict[str, str]:
        """{stem: XML path}; empty in CSV mode (listed once per job)."""
        if self._xmls is None:
            if self.csv_rows is not None:
                names: tuple[str, ...] = ()
            elif self.xml_names is not None:
                names = self.xml_names
            else:
                try:
                    names = tuple(e.name for e in os.scandir(self.ann_dir) if e.name.endswith(".xml"))
                except FileNotFoundError:
                    names = ()
            self._xmls = {n[:-4]: f"{self.ann_dir}/{n}" for n in names}
        return self._xmls

    def items(self, ctx: JobContext) -> Iterator[LabelItem]:
        """Every image and annotation of the job, sorted by stem; labels computed here."""
        images = self.images()
        xmls = self.xml_files()
        rows = {stem: (pred, where) for stem, pred, where in self.csv_rows or ()}
        mirror = self.label_dir != self.image_dir
        if mirror:
            os.makedirs(self.label_dir, exist_ok=True)
        parser = xml_parser()
        list_unannotated = ctx.options.unannotated == "empty"
        image_dir, label_dir, known = self.image_dir, self.label_dir, self._labels
        for stem in sorted(images.keys() | xmls.keys() | rows.keys()):
            name = images.get(stem)
            source = xmls.get(stem) or (rows[stem][1] if stem in rows else "")
            if name is None:
                problem = Problem("missing_image", source, f"no image {stem}.* in {self.image_dir}")
                yield LabelItem("", "", None, problems=(problem,), skip=True)
                continue
            image = f"{image_dir}/{name}"
            listed = f"{label_dir}/{name}" if mirror else image
            if mirror and not os.path.lexists(listed):
                os.symlink(image, listed)
            if not source and not list_unannotated:
                yield LabelItem("", "", None)  # counted as unannotated; not listed, no label
                continue
            label = f"{label_dir}/{stem}.txt"
            exists = None if known is None else f"{stem}.txt" in known  # None: folder not listed
            if not source:
                yield LabelItem(listed, label, None, label_exists=exists)
                continue
            try:
                width, height, objects, fixes = self._boxes(stem, xmls, rows, image, parser)
            except OSError as exc:  # an XML that is a folder, a dangling link, a link loop...
                problem = Problem("unreadable_annotation", source, exc.strerror or str(exc))
                yield LabelItem(listed, label, None, problems=(problem,), skip=True)
                continue
            except FormatError as exc:
                kind = (
                    "unreadable_image"
                    if "image header" in exc.reason
                    else ("malformed_xml" if stem in xmls else "malformed_csv_row")
                )
                detail = exc.reason if exc.line is None else f"line {exc.line}: {exc.reason}"
                yield LabelItem(listed, label, None, problems=(Problem(kind, source, detail),), skip=True)
                continue
            sized_by = image if fixes or stem not in xmls else ""  # the header gave the size
            result = label_of_rows(objects, width, height, ctx.class_ids, ctx.options.difficult)
            yield LabelItem(listed, label, None, result=result, source=source, fixes=fixes,
                            label_exists=exists, sized_by=sized_by)

    def _boxes(self, stem, xmls, rows, image, parser) -> tuple[int, int, list[ObjectRow], tuple[str, ...]]:
        """Width, height, objects and fixes of one annotated image (from its XML or CSV row)."""
        if stem in xmls:
            path = xmls[stem]
            data, st = read_file(path)
            self._read[path] = stat_token(st)  # as read: an edit after this redoes the job
            width, height, _, objects = parse_voc_rows(data, path, parser)
            if width > 0 and height > 0:
                return width, height, objects, ()
            fixes: tuple[str, ...] = ("size_from_image",)
        else:
            pred, where = rows[stem]
            objects = object_rows(parse_prediction(pred, where))
            fixes = ()
        width, height = image_size(image)
        return width, height, objects, fixes

    def fingerprint(self, ctx: JobContext) -> str:
        """Names of this job's images, names, sizes and mtimes of its annotations, and options.

        An annotation this run read gives the stat taken as it was read; the engine keeps
        the labels' own stats.
        """
        parts = [ctx.options.label_fingerprint(), self.key, self.image_dir, self.ann_dir, self.label_dir]
        parts.append(",".join(sorted(ctx.class_ids, key=ctx.class_ids.__getitem__)))
        parts.extend(sorted(self.images().values()))
        read = self._read
        for stem, path in sorted(self.xml_files().items()):
            parts.append(f"{stem}={read.get(path) or _stat(path)}")
        parts.extend(f"{s}|{p}" for s, p, _ in self.csv_rows or ())
        return digest(parts)


def _stat(path: str) -> str:
    try:
        return stat_token(os.stat(path))
    except OSError:  # missing, a dangling link, a link loop: the job reports it
        return stat_token(None)


def build_jobs(layout: KaggleLayout, split: str, source: str, labels_root: Path | None) -> list[ImagenetJob]:
    """Cut a split into jobs: one per class folder, slices of FLAT_SLICE for loose files."""
    image_root, ann_root = layout.images(split), layout.annotations(split)
    if not image_root.is_dir():
        raise UserError(f"no image folder {image_root}", f"is '{split}' unpacked?")
    rows = read_solution(layout.solution(split)) if source == "csv" else {}

    def label_dir(folder: Path) -> str:
        if labels_root is None:
            return str(folder)
        return str(labels_root / folder.relative_to(layout.root))

    jobs: list[ImagenetJob] = []
    subdirs = sorted(
        {e.name for e in os.scandir(image_root) if e.is_dir()}
        | ({e.name for e in os.scandir(ann_root) if e.is_dir()} if ann_root.is_dir() else set())
    )
    for sub in subdirs:
        folder = image_root / sub
        jobs.append(
            ImagenetJob(
                key=f"{split}/{sub}",
                image_dir=str(folder),
                ann_dir=str(ann_root / sub),
                label_dir=label_dir(folder),
                csv_rows=tuple(rows.pop(sub, ())) if source == "csv" else None,
            )
        )
    loose_rows = [r for group in rows.values() for r in group]
    jobs.extend(_flat_jobs(split, image_root, ann_root, label_dir(image_root), source, loose_rows))
    return jobs


def _flat_jobs(
    split: str,
    image_root: Path,
    ann_root: Path,
    label_dir: str,
    source: str,
    rows: list[tuple[str, str, str]],
) -> list[ImagenetJob]:
    """Loose files of a split folder (the flat val) cut into slices of FLAT_SLICE stems."""
    names = [e.name for e in os.scandir(image_root) if e.is_file()]
    images = {n.rpartition(".")[0]: n for n in names if _is_image(n)}
    labelled = {n[:-4] for n in names if n.endswith(".txt")} if label_dir == str(image_root) else None
    xmls = (
        {e.name[:-4]: e.name for e in os.scandir(ann_root) if e.name.endswith(".xml")}
        if source == "xml" and ann_root.is_dir()
        else {}
    )
    rows_by_stem: dict[str, list[tuple[str, str, str]]] = {}
    for row in rows:
        rows_by_stem.setdefault(row[0], []).append(row)
    stems = sorted(images.keys() | xmls.keys() | rows_by_stem.keys())
    jobs = []
    for start in range(0, len(stems), FLAT_SLICE):
        chunk = stems[start : start + FLAT_SLICE]
        jobs.append(
            ImagenetJob(
                key=f"{split}/_{start // FLAT_SLICE:05d}",
                image_dir=str(image_root),
                ann_dir=str(ann_root),
                label_dir=label_dir,
                image_names=tuple(images[s] for s in chunk if s in images),
                label_names=None if labelled is None else tuple(f"{s}.txt" for s in chunk if s in labelled),
                xml_names=tuple(xmls[s] for s in chunk if s in xmls),
                csv_rows=tuple(r for s in chunk for r in rows_by_stem.get(s, ()))
                if source == "csv"
                else None,
            )
        )
    return jobs


def convert_imagenet(
    root: str | Path,
    *,
    splits: tuple[str, ...] = SPLITS,
    source: str = "xml",
    options: ConvertOptions | None = None,
    labels_root: str | Path | None = None,
    out_manifest: str | Path | None = None,
) -> Manifest:
    """Convert a Kaggle ImageNet download: labels beside images, lists, manifest.

    The dataset folder (manifest, lists, names, problem reports) is the folder of
    `out_manifest`, by default `ROOT/yolo/` (or `LABELS_ROOT/yolo/`). With `labels_root`,
    nothing is written under ROOT: labels and symlinks to the images go to a mirror tree.
    Example: `convert_imagenet("/data/imagenet", splits=("val",))`
    """
    options = options or ConvertOptions()
    if source not in SOURCES:
        raise UserError(f"unknown source {source!r}", "use --from xml or --from csv")
    for split in splits:
        if split not in SPLITS:
            raise UserError(f"unknown split {split!r}", f"use {' / '.join(SPLITS)}")
    layout = find_layout(root)
    mirror = Path(labels_root).absolute() if labels_root else None
    dataset_dir = Path(out_manifest).absolute().parent if out_manifest else (mirror or layout.root) / "yolo"
    classes = parse_synsets(read_text(layout.synsets, "synset mapping"), str(layout.synsets))
    class_ids = {c.key: c.id for c in classes}
    infos = {}
    for split in splits:
        jobs = build_jobs(layout, split, source, mirror)
        infos[split] = convert_split(
            jobs, split=split, dataset_dir=dataset_dir, class_ids=class_ids, options=options
        )
    warnings = [
        f"pjreddie darknet rewrites '{old}' in image paths: it will not find labels beside "
        f"images under {mirror or layout.root}"
        for old, _ in PJREDDIE_REWRITES
        if old in str(mirror or layout.root)
    ]
    for w in warnings:
        log.warning(w)
    source_info = {
        "kind": "imagenet",
        "root": str(layout.root),
        "from": source,
        "labels_root": str(mirror) if mirror else None,
        "options": options_dict(options),
        "warnings": warnings,
    }
    return write_dataset(
        dataset_dir,
        source=source_info,
        classes=classes,
        splits=infos,
        name="imagenet",
        manifest_file=out_manifest,
    )
