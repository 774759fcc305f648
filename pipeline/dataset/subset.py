"""Class subsets of a dataset: a new dataset folder (our layout) for the chosen classes.

The source is any layout `open_dataset` reads (ours, a data.yaml, a .data); it is only
read. Classes are chosen by `pipeline.dataset.class_choice` (the rules and the spread rule are
explained there). `build_subset` scans the source lists and labels (never the XML),
keeps the images with a box of a chosen class, links them into `OUT/<split>/` (symlink
to the real file by default, hardlink or copy), and writes their labels with ids
remapped to 0..N-1 in source id order; other classes' boxes are dropped. Images left with
no box follow the unannotated policy of conversion (`skip`: not listed; `empty`: listed
with an empty label). Lists, counts and the problems file come from the conversion
engine, so a subset is a dataset like any other and can be subset again.
"""

from __future__ import annotations

import os
import random
import re
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from pipeline.convert.engine import ConvertOptions, JobContext, LabelItem, convert_split, write_dataset
from pipeline.core import Problem
from pipeline.darknet.paths import pjreddie_label_path
from pipeline.dataset.class_choice import Choice, ClassRule, choose_classes, load_synonyms
from pipeline.dataset.folder import Dataset, counted_manifest, open_dataset, read_list
from pipeline.dataset.label_lines import MISSING_LABEL, LineError, label_bytes, parse_line
from pipeline.dataset.labels import LabelResult, label_path_beside
from pipeline.dataset.manifest import (
    MANIFEST_NAME,
    ClassInfo,
    Manifest,
    read_manifest,
    write_manifest,
)
from pipeline.errors import UserError

LINK_MODES = ("symlink", "hardlink", "copy")
JOB_SIZE = 2000


@dataclass(frozen=True)
class SubsetOptions:
    """How to build: link mode, unannotated policy, per-class cap, val carve-out, seed."""

    link: str = "symlink"
    unannotated: str = "skip"
    max_per_class: int | None = None
    val_fraction: float | None = None
    seed: int = 0
    workers: int | None = None
    progress: bool = False

    def __post_init__(self) -> None:
        if self.link not in LINK_MODES:
            raise UserError(f"unknown link mode {self.link!r}", f"use {' / '.join(LINK_MODES)}")
        if self.val_fraction is not None and not 0 < self.val_fraction < 1:
            raise UserError(f"--val-fraction {self.val_fraction} must be between 0 and 1")
        if self.max_per_class is not None and self.max_per_class < 1:
            raise UserError("--max-per-class must be at least 1")


@dataclass(frozen=True, slots=True)
class Entry:
    """One source image headed for the subset: remapped label text and new class ids."""

    src: str
    text: bytes = b""
    ids: tuple[int, ...] = ()
    problems: tuple[Problem, ...] = ()
    dest: str = ""


@dataclass
class SplitScan:
    """A source split after the scan: kept entries and what was dropped."""

    entries: list[Entry] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    boxes_dropped: int = 0
    no_box: int = 0
    other_only: int = 0
    base: str = ""


def remap_label(data: bytes, old_to_new: dict[int, int], num_classes: int, where: str
                ) -> tuple[bytes, tuple[int, ...], int, list[Problem]]:
    """Keep the lines of chosen classes with new ids (coordinates kept verbatim).

    Returns (text, new ids, boxes dropped, problems). Example with {3: 0}:
    `b"3 0.5 0.5 0.2 0.2\\n7 0.1 0.1 0.1 0.1\\n"` -> `b"0 0.5 0.5 0.2 0.2\\n"`, (0,), 1.
    """
    lines, ids, dropped, problems = [], [], 0, []
    for number, raw in enumerate(data.splitlines(), 1):
        fields = raw.split()
        if not fields:
            continue
        try:
            cid = parse_line(raw, num_classes)[0]
        except LineError as exc:
            problems.append(Problem(exc.kind, f"{where}:{number}", exc.detail))
            continue
        new = old_to_new.get(cid)
        if new is None:
            dropped += 1
            continue
        lines.append(b" ".join([b"%d" % new, *fields[1:]]) + b"\n")
        ids.append(new)
    return b"".join(lines), tuple(ids), dropped, problems


def scan_split(ds: Dataset, split: str, old_to_new: dict[int, int], keep_empty: bool,
               progress: bool = False) -> SplitScan:
    """Read a split's list and labels; keep images with a chosen box (all, under `empty`)."""
    scan = SplitScan()
    wanted = {b"%d" % old for old in old_to_new}
    images = ds.images(split)
    scan.base = common_folder(images)
    for src in tqdm(images, desc=f"scan {split}", unit="img", disable=not progress):
        label = ds.label_path(src)
        data = label_bytes(label)
        if data is None or label is None:
            scan.problems.append(Problem(MISSING_LABEL, label or src, src))
            continue
        lines = [line for line in data.splitlines() if line.strip()]
        if not any(line.split(None, 1)[0] in wanted for line in lines):
            scan.boxes_dropped += len(lines)
            scan.no_box += 1
            scan.other_only += bool(lines)
            if keep_empty:
                scan.entries.append(Entry(src))
            continue
        text, ids, dropped, problems = remap_label(data, old_to_new, ds.num_classes, label)
        scan.boxes_dropped += dropped
        if not ids:
            scan.no_box += 1
        if ids or keep_empty:
            scan.entries.append(Entry(src, text, ids, tuple(problems)))
        else:
            scan.problems.extend(problems)
    return scan


def common_folder(paths: list[str]) -> str:
    """The deepest folder holding all `paths` (linear time: only min and max are compared).

    Example: `common_folder(["/d/a/1.jpg", "/d/b/2.jpg"])` -> "/d".
    """
    if not paths:
        return ""
    prefix = os.path.commonprefix([min(paths), max(paths)])
    return prefix[: prefix.rfind(os.sep)] or os.sep


def cap_per_class(entries: list[Entry], cap: int, rng: random.Random) -> list[Entry]:
    """At most `cap` images per class (seeded draw); list order is kept, no-box ones stay.

    An image with several classes is taken only while every one of them is under the cap.
    """
    order = list(range(len(entries)))
    rng.shuffle(order)
    taken: Counter = Counter()
    keep = set()
    for i in order:
        ids = set(entries[i].ids)
        if all(taken[c] < cap for c in ids):
            keep.add(i)
            taken.update(ids)
    return [e for i, e in enumerate(entries) if i in keep]


def carve_val(entries: list[Entry], fraction: float, rng: random.Random
              ) -> tuple[list[Entry], list[Entry]]:
    """(train, val): `fraction` of each class group (by lowest class id) goes to val."""
    groups: dict[int, list[int]] = {}
    for i, e in enumerate(entries):
        groups.setdefault(min(e.ids, default=-1), []).append(i)
    val = set()
    for _, members in sorted(groups.items()):
        rng.shuffle(members)
        val.update(members[: round(fraction * len(members))])
    return ([e for i, e in enumerate(entries) if i not in val],
            [e for i, e in enumerate(entries) if i in val])


def place_image(src: str, dest: str, mode: str) -> bool:
    """Put `src` at `dest` as a symlink to its real file, a hardlink or a copy.

    Returns True when something was (re)made; an identical one is left alone.
    """
    real = os.path.realpath(src)
    try:
        if mode == "symlink" and os.path.islink(dest) and os.readlink(dest) == real:
            return False
        if mode == "hardlink" and not os.path.islink(dest) and os.path.samefile(real, dest):
            return False
        if mode == "copy" and not os.path.islink(dest):
            a, b = os.stat(real), os.stat(dest)
            if (a.st_size, a.st_mtime_ns) == (b.st_size, b.st_mtime_ns):
                return False
    except FileNotFoundError:
        pass
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    tmp = f"{dest}.{os.getpid()}.tmp"
    if os.path.lexists(tmp):
        os.unlink(tmp)
    try:
        if mode == "symlink":
            os.symlink(real, tmp)
        elif mode == "hardlink":
            os.link(real, tmp)
        else:
            shutil.copy2(real, tmp)
    except OSError as exc:
        raise UserError(f"cannot {mode} {real} -> {dest}: {exc.strerror}",
                        "hardlinks need one filesystem: use --link symlink or copy") from None
    os.replace(tmp, dest)
    return True


@dataclass(frozen=True)
class SubsetJob:
    """A slice of one output split: place each image, hand its label to the engine."""

    key: str
    entries: tuple[Entry, ...]
    link: str
    problems: tuple[Problem, ...] = ()

    def items(self, ctx: JobContext) -> Iterator[LabelItem]:
        """Place images and yield their labels (missing source images are skipped)."""
        if self.problems:
            yield LabelItem("", "", None, problems=self.problems, skip=True)
        for e in self.entries:
            if not os.path.exists(e.src):
                problems = (*e.problems, Problem("missing_image", e.src))
                yield LabelItem(e.dest, "", None, problems=problems, skip=True)
                continue
            place_image(e.src, e.dest, self.link)
            yield LabelItem(e.dest, label_path_beside(e.dest), None,
                            result=LabelResult(e.text, list(e.ids)), source=e.src,
                            problems=e.problems)

    def fingerprint(self, ctx: JobContext) -> str | None:
        """No rerun cache: placing and comparing ~1% of the files is fast."""
        return None


@dataclass
class SubsetReport:
    """The written manifest, the choice, warnings for the user."""

    manifest: Manifest
    choice: Choice
    out: Path
    warnings: list[str]


def _destinations(entries: list[Entry], base: str, out_dir: Path) -> list[Entry]:
    """Each image goes to OUT/<split>/<its path below the source split's common folder>."""
    return [Entry(e.src, e.text, e.ids, e.problems, str(out_dir / os.path.relpath(e.src, base)))
            for e in entries]


def _check_out(out: Path, source: Path) -> Manifest | None:
    """The previous subset manifest in `out`, if any; refuse a foreign non-empty folder."""
    if out == source:
        raise UserError(f"--out {out} is the source dataset", "choose a new folder")
    if (out / MANIFEST_NAME).is_file():
        old = read_manifest(out)
        if old.source.get("kind") == "subset":
            return old
    if out.is_dir() and any(out.iterdir()):
        raise UserError(f"--out {out} is not empty and holds no subset",
                        "choose a new folder (a subset folder may be rebuilt in place)")
    return None


def _previous_images(old: Manifest | None, out: Path) -> set[str]:
    """Images an earlier build listed in `out` (read before this build rewrites the lists)."""
    listed = set()
    for info in old.splits.values() if old else ():
        path = Path(info.list_file)
        listed.update(p for p in (read_list(path) if path.is_file() else ())
                      if p == os.path.normpath(p) and p.startswith(str(out) + os.sep))  # no ..
    return listed


def _remove_stale(old: Manifest, previous: set[str], out: Path, keep: set[str],
                  splits: set[str]) -> int:
    """Delete images, labels and lists of an earlier build that this one no longer has."""
    removed = 0
    for image in sorted(previous - keep):
        for p in (image, label_path_beside(image)):
            if os.path.lexists(p):
                os.unlink(p)
                removed += 1
        folder = os.path.dirname(image)
        while folder.startswith(str(out) + os.sep) and not os.listdir(folder):
            os.rmdir(folder)
            folder = os.path.dirname(folder)
    for name, info in old.splits.items():
        if name not in splits:
            for p in (out / info.list_file, out / f"problems-{name}.tsv"):
                if p.parent == out:  # an old manifest may name any file: only ours are removed
                    p.unlink(missing_ok=True)
    return removed


def _plan(ds: Dataset, old_to_new: dict[int, int], options: SubsetOptions
          ) -> dict[str, tuple[list[Entry], SplitScan]]:
    """Output split name -> (entries, scan of the source split they come from)."""
    if options.val_fraction and "train" not in ds.manifest.splits:
        raise UserError("--val-fraction needs a train split in the source dataset")
    rng = random.Random(options.seed)
    planned = {}
    for split in ds.manifest.splits:
        scan = scan_split(ds, split, old_to_new, options.unannotated == "empty", options.progress)
        entries = scan.entries
        if options.max_per_class:
            entries = cap_per_class(entries, options.max_per_class, rng)
        if options.val_fraction and split == "train":
            train, val = carve_val(entries, options.val_fraction, rng)
            planned["train"], planned["val"] = (train, scan), (val, SplitScan(base=scan.base))
        else:
            planned["test" if options.val_fraction and split == "val" else split] = (entries, scan)
    return planned


def build_subset(dataset: str | Path, out: str | Path, rule: ClassRule,
                 options: SubsetOptions | None = None) -> SubsetReport:
    """Build a subset dataset folder in `out`; see the module docstring.

    Example: `build_subset("data/yolo", "data/in10", ClassRule(top=10))`.
    """
    out_dir = Path(out).absolute()
    try:
        return _build(dataset, out_dir, rule, options or SubsetOptions())
    except OSError as exc:  # sources are read through helpers that report; this is `out`
        where = f"{exc.filename}: " if exc.filename else ""
        raise UserError(f"cannot write the subset in {out_dir}: {where}{exc.strerror}") from None


def _build(dataset: str | Path, out_dir: Path, rule: ClassRule, options: SubsetOptions
           ) -> SubsetReport:
    ds = open_dataset(dataset)
    old = _check_out(out_dir, ds.root)
    previous = _previous_images(old, out_dir)
    choice = choose_classes(counted_manifest(ds), rule, load_synonyms(ds.manifest))
    class_ids = {c.key: i for i, c in enumerate(choice.classes)}
    convert_opts = ConvertOptions(unannotated=options.unannotated, workers=options.workers,
                                  progress=options.progress)
    infos, keep = {}, set()
    planned = _plan(ds, {c.id: i for i, c in enumerate(choice.classes)}, options)
    for name, (entries, scan) in planned.items():
        entries = _destinations(entries, scan.base, out_dir / name)
        keep.update(e.dest for e in entries)
        jobs = [SubsetJob(f"{name}-{i:06d}", tuple(entries[i:i + JOB_SIZE]), options.link)
                for i in range(0, len(entries), JOB_SIZE)]
        jobs.append(SubsetJob(f"{name}-problems", (), options.link, tuple(scan.problems)))
        info = convert_split(jobs, split=name, dataset_dir=out_dir, class_ids=class_ids,
                             options=convert_opts)
        info.fixes = dict(sorted({**info.fixes, "boxes_dropped_other_classes": scan.boxes_dropped,
                                  "images_only_other_classes": scan.other_only}.items()))
        info.unannotated = scan.no_box
        info.unannotated_listed = sum(1 for e in entries if not e.ids)
        infos[name] = info
    removed = _remove_stale(old, previous, out_dir, keep, set(infos)) if old else 0
    classes = [ClassInfo(id=i, key=c.key, name=c.name, source_id=c.id)
               for i, c in enumerate(choice.classes)]
    source = {
        "kind": "subset", "dataset": ds.source, "root": ds.manifest.source.get("root"),
        "rule": rule.describe(), "order": "new ids follow the source id order",
        "reasons": choice.reasons, "link": options.link, "unannotated": options.unannotated,
        "max_per_class": options.max_per_class, "val_fraction": options.val_fraction,
        "seed": options.seed, "stale_files_removed": removed,
    }
    name = re.sub(r"[^A-Za-z0-9._-]", "_", out_dir.name) or "subset"
    manifest = write_dataset(out_dir, source=source, classes=classes, splits=infos, name=name)
    if set(manifest.splits) != set(infos):  # write_dataset kept splits of an earlier build
        manifest.splits = dict(sorted(infos.items()))
        write_manifest(manifest, out_dir / MANIFEST_NAME)
    return SubsetReport(manifest, choice, out_dir, [*ds.notes, *_pjreddie_warnings(keep)])


def _pjreddie_warnings(images: set[str]) -> list[str]:
    elsewhere = sum(1 for p in images if pjreddie_label_path(p) != label_path_beside(p))
    if not elsewhere:
        return []
    return [f"pjreddie darknet will look for {elsewhere} of {len(images)} labels elsewhere "
            "(path holds 'images'/'JPEGImages'/'raw' or an extension it does not know)"]
