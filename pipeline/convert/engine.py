"""Conversion engine: jobs -> worker processes -> label files beside images, lists, report.

A source (ImageNet, COCO, VOC) cuts its data into picklable `Job`s (a class folder, a slice
of a flat folder, ~1000 COCO images). Each worker runs jobs and, for every `LabelItem`,
writes the label with `write_if_changed` (identical files are not rewritten). The main
process streams results, in job order, into `<dataset>/<split>.txt` (absolute image paths)
and `<dataset>/problems-<split>.tsv`, and sums the counts into a `SplitInfo`.

Rerun cache: after a job, its result and a fingerprint of its inputs (names, sizes and
mtimes) are saved in `<dataset>/.state/<split>/`, with the version of the label rules
(`labels.rules_version`), the size and mtime of every label it wrote or found up to date
(taken on the open file as it was written, so no second stat) and of every image whose
header gave its size. A rerun whose fingerprint, rules, label and image stats all match
reuses the result without parsing; any change (an edited XML, a replaced image, a label
left short by a killed run or edited, other options, an upgrade that changes a rule)
redoes that job, comparing content file by file, so exactly the labels that change are
rewritten.

Engine API, used by every source:

- `LabelItem`: one image (absolute image path, absolute label path, record or precomputed
  result, problems, fixes, skip flag, whether the label file is known to exist, and the
  image whose header gave the size, if one did).
- `Job` protocol: `key`, `items(ctx)`, `fingerprint(ctx)` (None disables the cache).
- `convert_split(jobs, split=, dataset_dir=, class_ids=, options=)` -> `SplitInfo`.
- `write_dataset(dataset_dir, source=, classes=, splits=)` -> `Manifest`.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import msgspec
from tqdm import tqdm

from pipeline.convert.pool import process_map
from pipeline.convert.split_checks import EXAMPLES_PER_KIND, note_overlaps, printable_name, tsv_field
from pipeline.core import ImageRecord, Problem
from pipeline.dataset.labels import DIFFICULT_POLICIES, LabelResult, rules_version, yolo_label
from pipeline.dataset.manifest import (
    MANIFEST_NAME,
    ClassCount,
    ClassInfo,
    Manifest,
    ProblemSummary,
    SplitInfo,
    read_manifest,
    write_manifest,
)
from pipeline.errors import FormatError, UserError
from pipeline.io import atomic_write, atomic_writer, image_size, update_file

UNANNOTATED_POLICIES = ("skip", "empty")
STATE_DIR = ".state"


@dataclass(frozen=True)
class ConvertOptions:
    """Choices shared by every source.

    unannotated: "skip" (images without annotation are not listed) or "empty" (listed
    with an empty label file, as negatives). difficult: "keep" or "skip" VOC-style
    `difficult=1` objects. workers: processes (None = all cores).
    """

    unannotated: str = "skip"
    difficult: str = "keep"
    workers: int | None = None
    progress: bool = False

    def __post_init__(self) -> None:
        if self.unannotated not in UNANNOTATED_POLICIES:
            raise UserError(
                f"unknown unannotated policy {self.unannotated!r}",
                f"use one of {', '.join(UNANNOTATED_POLICIES)}",
            )
        if self.difficult not in DIFFICULT_POLICIES:
            raise UserError(
                f"unknown difficult policy {self.difficult!r}", f"use one of {', '.join(DIFFICULT_POLICIES)}"
            )

    def label_fingerprint(self) -> str:
        """The options that change label bytes or lists (part of every job fingerprint)."""
        return f"unannotated={self.unannotated};difficult={self.difficult}"


@dataclass(slots=True)
class LabelItem:
    """One image for the label writer; see the module docstring.

    Not frozen: a frozen dataclass sets each field through `object.__setattr__`, which
    makes this (one per image, 1.28M for ImageNet train) 4x dearer to build.
    """

    image: str
    label: str
    record: ImageRecord | None
    result: LabelResult | None = None
    source: str = ""
    problems: tuple[Problem, ...] = ()
    fixes: tuple[str, ...] = ()
    skip: bool = False
    label_exists: bool | None = None
    sized_by: str = ""


@dataclass(frozen=True)
class JobContext:
    """What every job of a split needs: class ids and options."""

    class_ids: dict[str, int]
    options: ConvertOptions


class Job(Protocol):
    """A picklable unit of work for one worker process."""

    key: str

    def items(self, ctx: JobContext) -> Iterator[LabelItem]:
        """Yield the images of this job, in a stable order."""
        ...

    def fingerprint(self, ctx: JobContext) -> str | None:
        """A digest of everything the job reads (the engine keeps the stats of the labels it
        writes); None disables the cache."""
        ...


@dataclass
class NotesJob:
    """Problems a source found before conversion (orphans, duplicate names...), reported with
    the split's other problems."""

    key: str
    problems: list[Problem]

    def items(self, ctx: JobContext) -> Iterator[LabelItem]:
        """One skipped item carrying all the problems."""
        if self.problems:
            yield LabelItem("", "", None, problems=tuple(self.problems), skip=True)

    def fingerprint(self, ctx: JobContext) -> None:
        """Never cached."""
        return None


class JobResult(msgspec.Struct):
    """What one job did; also the body of its state file."""

    key: str
    listed: list[str] = msgspec.field(default_factory=list)
    images_per_class: dict[int, int] = msgspec.field(default_factory=dict)
    boxes_per_class: dict[int, int] = msgspec.field(default_factory=dict)
    unannotated: int = 0
    unannotated_listed: int = 0
    fixes: dict[str, int] = msgspec.field(default_factory=dict)
    problems: list[tuple[str, str, str]] = msgspec.field(default_factory=list)
    written: int = 0
    unchanged: int = 0
    cached: bool = False


class _State(msgspec.Struct):
    fingerprint: str
    result: JobResult
    rules: str = ""
    sized_by: list[tuple[str, str]] = msgspec.field(default_factory=list)
    labels: list[tuple[str, str]] = msgspec.field(default_factory=list)


def header_size(image: str) -> tuple[int, int] | Problem:
    """Width and height from the image header, or the `unreadable_image` problem to report."""
    try:
        return image_size(image)
    except FormatError as exc:
        return Problem("unreadable_image", image, exc.reason)


def stat_token(st: os.stat_result | None) -> str:
    """A short text for a file's identity in a fingerprint: size and mtime, or '-'."""
    return "-" if st is None else f"{st.st_size}:{st.st_mtime_ns}"


def digest(parts: Iterable[str]) -> str:
    """A stable hex digest of text parts (for job fingerprints)."""
    joined = "\0".join(parts).encode("utf-8", "surrogateescape")
    return hashlib.blake2b(joined, digest_size=16).hexdigest()


def _state_path(state_dir: Path, key: str) -> Path:
    return state_dir / (re.sub(r"[^A-Za-z0-9._-]", "_", key) + ".json")


def _file_token(path: str) -> str:
    try:
        return stat_token(os.stat(path))
    except OSError:
        return stat_token(None)


def _still_valid(state: _State, fingerprint: str | None) -> bool:
    """Whether a saved job state may be reused: same inputs, same rules, same labels, same
    sizing images."""
    return (state.fingerprint == fingerprint and state.rules == rules_version()
            and all(_file_token(label) == token for label, token in state.labels)
            and all(_file_token(image) == token for image, token in state.sized_by))


def run_job(job: Job, ctx: JobContext, state_dir: Path) -> JobResult:
    """Run one job (in a worker): reuse its cached result or write its labels."""
    state_file = _state_path(state_dir, job.key)
    if state_file.exists():
        try:
            state = msgspec.json.decode(state_file.read_bytes(), type=_State)
        except (msgspec.DecodeError, OSError):
            state = None
        if state is not None and _still_valid(state, job.fingerprint(ctx)):
            state.result.cached = True
            state.result.unchanged = state.result.written + state.result.unchanged
            state.result.written = 0
            return state.result
    result, sized_by, labels = _write_labels(job, ctx)
    fingerprint = job.fingerprint(ctx)
    if fingerprint is not None:
        try:
            state = msgspec.json.encode(_State(fingerprint, result, rules_version(),
                                               [(image, _file_token(image)) for image in sized_by], labels))
        except UnicodeEncodeError:  # a file name that is not UTF-8: this job is simply not cached
            return result
        state_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(state_file, state)
    return result


def _write_labels(job: Job, ctx: JobContext) -> tuple[JobResult, list[str], list[tuple[str, str]]]:
    """Write a job's labels; its result, the images that gave a size, (label, stat token)s.

    The loop runs once per image (1.28M for ImageNet train): counts are kept in locals.
    """
    res = JobResult(job.key)
    sized_by: list[str] = []
    labels: list[tuple[str, str]] = []
    fixes: Counter = Counter()
    problems, listed = res.problems, res.listed
    images_per_class, boxes_per_class = res.images_per_class, res.boxes_per_class
    empty_policy = ctx.options.unannotated == "empty"
    unannotated = unannotated_listed = written = 0
    for item in job.items(ctx):
        if item.problems:
            problems.extend((p.kind, p.file, p.detail) for p in item.problems)
        if item.fixes:
            fixes.update(item.fixes)
        if item.sized_by:
            sized_by.append(item.sized_by)
        if item.skip:
            continue
        label = item.result
        if label is None and item.record is None:
            unannotated += 1
            if not empty_policy:
                continue
            unannotated_listed += 1
            text = b""
        else:
            if label is None:
                label = yolo_label(item.record, ctx.class_ids, ctx.options.difficult)
            if label.fixes:
                fixes.update(label.fixes)
            if label.problems:
                source = item.source or item.image
                problems.extend((kind, source, detail) for kind, detail in label.problems)
            class_ids = label.class_ids
            if not class_ids:
                fixes["no_boxes_left"] += 1
                if not empty_policy:
                    continue
            for cid in set(class_ids):
                images_per_class[cid] = images_per_class.get(cid, 0) + 1
            for cid in class_ids:
                boxes_per_class[cid] = boxes_per_class.get(cid, 0) + 1
            text = label.text
        changed, st = update_file(item.label, text, exists=item.label_exists)
        written += changed
        labels.append((item.label, stat_token(st)))
        listed.append(item.image)
    res.unannotated, res.unannotated_listed = unannotated, unannotated_listed
    res.written, res.unchanged = written, len(listed) - written
    res.fixes = dict(fixes)
    return res, sized_by, labels


def convert_split(
    jobs: Sequence[Job],
    *,
    split: str,
    dataset_dir: str | Path,
    class_ids: dict[str, int],
    options: ConvertOptions,
) -> SplitInfo:
    """Run a split's jobs; write its list and problems files; return its counts.

    Example: `convert_split(jobs, split="train", dataset_dir=root / "yolo",
    class_ids={"n01440764": 0}, options=ConvertOptions())`
    """
    dataset_dir = Path(dataset_dir).absolute()
    state_dir = dataset_dir / STATE_DIR / split
    ctx = JobContext(class_ids=class_ids, options=options)
    keys = [key for key, _ in sorted(class_ids.items(), key=lambda kv: kv[1])]
    info = SplitInfo(list_file=str(dataset_dir / f"{split}.txt"))
    images_per_class: Counter = Counter()
    boxes_per_class: Counter = Counter()
    fixes: Counter = Counter()
    problems: dict[str, ProblemSummary] = {}
    workers = min(options.workers or os.cpu_count() or 1, max(len(jobs), 1))
    problems_path = dataset_dir / f"problems-{split}.tsv"
    with atomic_writer(info.list_file) as listing, atomic_writer(problems_path) as report:
        report.write("kind\tfile\tdetail\n")
        bar = tqdm(total=len(jobs), desc=f"convert {split}", unit="job", disable=not options.progress)
        for res in process_map(run_job, jobs, workers, ctx, state_dir):
            bar.update(1)
            if res.listed:
                listing.write("\n".join(res.listed) + "\n")
            info.images += len(res.listed)
            info.unannotated += res.unannotated
            info.unannotated_listed += res.unannotated_listed
            info.labels_written += res.written
            info.labels_unchanged += res.unchanged
            images_per_class.update(res.images_per_class)
            boxes_per_class.update(res.boxes_per_class)
            fixes.update(res.fixes)
            for kind, file, detail in res.problems:
                report.write(f"{kind}\t{tsv_field(file)}\t{tsv_field(detail)}\n")
                summary = problems.setdefault(kind, ProblemSummary())
                summary.count += 1
                if len(summary.examples) < EXAMPLES_PER_KIND:
                    summary.examples.append(printable_name(file))
        bar.close()
    info.boxes = sum(boxes_per_class.values())
    info.per_class = {
        key: ClassCount(images=images_per_class.get(i, 0), boxes=boxes_per_class.get(i, 0))
        for i, key in enumerate(keys)
    }
    info.fixes = dict(sorted(fixes.items()))
    info.problems = dict(sorted(problems.items()))
    info.problems_file = str(problems_path)
    return info


def write_dataset(
    dataset_dir: str | Path,
    *,
    source: dict[str, object],
    classes: list[ClassInfo],
    splits: dict[str, SplitInfo],
    name: str,
    manifest_file: str | Path | None = None,
) -> Manifest:
    """Write manifest.json, classes.txt (keys) and `<name>.names` (human names).

    Splits already in an existing manifest of the same source and classes are kept, so
    `--split train` then `--split val` build one dataset. An image listed in two splits is
    counted (`listed_in_two_splits`) in the new split's problems. `manifest_file` defaults
    to `<dataset_dir>/manifest.json`.
    """
    dataset_dir = Path(dataset_dir).absolute()
    manifest_file = Path(manifest_file or dataset_dir / MANIFEST_NAME)
    merged = dict(splits)
    if manifest_file.is_file():
        old = read_manifest(manifest_file)
        if old.classes == classes and old.source.get("root") == source.get("root"):
            merged = {**old.splits, **splits}
    for split in splits:
        note_overlaps(dataset_dir, split, merged)
    names_file = dataset_dir / f"{name}.names"
    atomic_write(dataset_dir / "classes.txt", "".join(f"{c.key}\n" for c in classes))
    atomic_write(names_file, "".join(f"{c.name}\n" for c in classes))
    manifest = Manifest(
        source=source,
        classes=classes,
        splits=dict(sorted(merged.items())),
        names_file=str(names_file),
    )
    write_manifest(manifest, manifest_file)
    return manifest


def options_dict(options: ConvertOptions) -> dict[str, object]:
    """The options as recorded in the manifest (no worker count or progress flag)."""
    return {k: v for k, v in asdict(options).items() if k not in ("workers", "progress")}
