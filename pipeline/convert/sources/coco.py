"""COCO instances JSON -> YOLO labels beside the images (detect boxes or segment polygons).

Reading: the file's size is checked, then msgspec decodes it straight into typed structs.
For `task="detect"` the structs have no `segmentation` field, so msgspec skips those bytes
(most of the file) without building Python objects; `task="segment"` keeps each
segmentation as raw JSON bytes, decoded per object in the workers. Annotations are grouped
by image in one pass; images are cut into jobs of `JOB_IMAGES` for the conversion engine.

Rules (problems go to problems-<split>.tsv, fixes are counted in the manifest):

- Class ids (`ids`): `contiguous` = categories sorted by id -> 0..N-1; `coco80` = the
  standard 80-class table of real COCO (every category must be one of COCO's, id and name;
  the class list is always COCO's 80); `original` = the category ids, allowed only when they
  are exactly 0..N-1. A category no annotation uses is kept and reported
  (`unused_category`, e.g. Roboflow's placeholder category 0).
- bbox `[x, y, w, h]` (top-left, pixels) -> corners `Box.from_xywh` -> the label rules of
  `labels.append_box_line` (clip and count, drop zero area, report inverted).
- `iscrowd=1`: skipped and counted (`crowd_skipped`) with `crowd="skip"`, else converted.
- Images: `file_name` must be relative without `..` or a drive letter (`unsafe_file_name`);
  an image missing under `images_dir` is not listed (`missing_image`); two images whose
  labels would share one path (`a.jpg`, `a.png`) keep the first (`duplicate_label_path`);
  a missing width/height is read from the image header (`size_from_image`).
- Annotations whose `image_id` names no image: `orphan_annotation`; unknown
  `category_id`: `unknown_category`; a bbox that is not 4 numbers: `bad_bbox`.
- Segment task: see `pipeline.convert.sources.polygons` for polygons, multi-part objects and RLE.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import msgspec

from pipeline.convert.engine import (
    ConvertOptions,
    JobContext,
    LabelItem,
    NotesJob,
    convert_split,
    header_size,
    options_dict,
    write_dataset,
)
from pipeline.convert.sources.coco_schema import (
    MAX_JSON_BYTES,
    Annotation,
    ClassTable,
    CocoFile,
    CocoSegFile,
    Image,
    SegAnnotation,
    class_table,
    read_coco,
)
from pipeline.core import Problem, quoted
from pipeline.dataset.labels import LabelResult, append_box_line, label_path_beside
from pipeline.dataset.manifest import Manifest
from pipeline.errors import NothingDone, UserError
from pipeline.io import safe_relative

CROWD_POLICIES = ("skip", "keep")
TASKS = ("detect", "segment")
JOB_IMAGES = 1000


def group_by_image(annotations: list) -> dict[int | str, list]:
    """Annotations per image id, in file order, built in one pass."""
    groups: dict[int | str, list] = {}
    for ann in annotations:
        group = groups.get(ann.image_id)
        if group is None:
            groups[ann.image_id] = [ann]
        else:
            group.append(ann)
    return groups


@dataclass
class CocoJob:
    """About `JOB_IMAGES` images with their annotations, converted in one worker.

    `payload` is the job's `(image, annotations | None)` pairs re-encoded (msgpack for
    detect; JSON for segment, whose raw segmentation bytes are JSON), cheap to pickle and
    decoded again in the worker; `key_of` maps category id -> class key.
    """

    key: str
    images_dir: str
    task: str
    crowd: str
    key_of: dict[int, str]
    payload: bytes

    def entries(self) -> list[tuple[Image, list[Annotation] | None, bool | None, bool | None]]:
        """(image, its annotations or None, image on disk?, label on disk?); None = not listed."""
        ann = SegAnnotation if self.task == "segment" else Annotation
        kind = list[tuple[Image, list[ann] | None, bool | None, bool | None]]
        if self.task == "segment":
            return msgspec.json.decode(self.payload, type=kind)
        return msgspec.msgpack.decode(self.payload, type=kind)

    def items(self, ctx: JobContext) -> Iterator[LabelItem]:
        """One `LabelItem` per image, in the JSON's order."""
        for img, anns, on_disk, label_exists in self.entries():
            file_name, width, height = img.file_name, img.width, img.height
            try:
                rel = str(safe_relative(file_name))
            except UserError:
                rel = ""
            if not rel or "\0" in rel:
                detail = "a NUL byte" if rel else "must be relative without '..' or a drive letter"
                yield LabelItem("", "", None, problems=(Problem("unsafe_file_name", file_name, detail),),
                                skip=True)
                continue
            image = os.path.join(self.images_dir, rel)
            label = label_path_beside(image)
            if label == image:
                yield LabelItem(image, label, None, skip=True,
                                problems=(Problem("unsafe_file_name", file_name, "a .txt image name"),))
                continue
            if not (os.path.isfile(image) if on_disk is None else on_disk):
                yield LabelItem(image, label, None, skip=True,
                                problems=(Problem("missing_image", image, f"listed as {quoted(file_name)}"),))
                continue
            fixes: tuple[str, ...] = ()
            if width <= 0 or height <= 0:
                size = header_size(image)
                if isinstance(size, Problem):
                    yield LabelItem(image, label, None, skip=True, problems=(size,))
                    continue
                (width, height), fixes = size, ("size_from_image",)
            if anns is None:
                yield LabelItem(image, label, None, fixes=fixes, label_exists=label_exists)
            elif self.task == "segment":
                yield self._segment_item(image, label, label_exists, width, height, anns, ctx.class_ids,
                                         fixes)
            else:
                yield self._detect_item(image, label, label_exists, width, height, anns, fixes, ctx.class_ids)

    def _usable(self, image: str, ann: Annotation, problems: list, fixes: list) -> bool:
        if ann.iscrowd and self.crowd == "skip":
            fixes.append("crowd_skipped")
            return False
        if ann.category_id not in self.key_of:
            detail = f"annotation {ann.id}: category {ann.category_id}"
            problems.append(Problem("unknown_category", image, detail))
            return False
        return True

    def _detect_item(self, image, label, label_exists, width, height, anns, fixes, class_ids) -> LabelItem:
        problems: list[Problem] = []
        fix_list = list(fixes)
        result = LabelResult(b"")
        lines: list[str] = []
        for ann in anns:
            if not self._usable(image, ann, problems, fix_list):
                continue
            if ann.bbox is None or len(ann.bbox) != 4:
                problems.append(Problem("bad_bbox", image, f"annotation {ann.id}: bbox {ann.bbox}"))
                continue
            key = self.key_of[ann.category_id]
            x, y, w, h = ann.bbox
            append_box_line(lines, result, key, class_ids[key], x, y, x + w, y + h, width, height)
        result.text = "".join(lines).encode()
        return LabelItem(image, label, None, result=result, problems=tuple(problems), fixes=tuple(fix_list),
                         label_exists=label_exists)

    def _segment_item(self, image, label, label_exists, width, height, anns, class_ids, fixes) -> LabelItem:
        from pipeline.convert.sources import polygons  # numpy + cv2: only a segment run pays for them

        problems: list[Problem] = []
        fix_list = list(fixes)
        result = LabelResult(b"")
        lines = []
        for ann in anns:
            if not self._usable(image, ann, problems, fix_list):
                continue
            outline, found = polygons.outline(bytes(ann.segmentation), ann.bbox, width, height)
            object_fixes = [k for k, _ in found if k in polygons.FIXES]
            problems.extend(Problem(k, image, f"annotation {ann.id}: {d}") for k, d in found
                            if k not in polygons.FIXES)
            if outline is not None:
                cid = class_ids[self.key_of[ann.category_id]]
                line, line_fixes = polygons.segment_line(cid, outline, width, height)
                if line is None and "segment_from_bbox" in object_fixes:
                    object_fixes.remove("segment_from_bbox")  # one object, one count: zero_area_dropped
                object_fixes.extend(line_fixes)
                if line is not None:
                    lines.append(line)
                    result.class_ids.append(cid)
            fix_list.extend(object_fixes)
        result.text = "".join(lines).encode()
        return LabelItem(image, label, None, result=result, problems=tuple(problems), fixes=tuple(fix_list),
                         label_exists=label_exists)

    def fingerprint(self, ctx: JobContext) -> None:
        """No cache: the JSON is decoded anyway, and unchanged labels are not rewritten."""
        return None


def plan_jobs(data: CocoFile | CocoSegFile, images_dir: str, table: ClassTable, *, task: str = "detect",
              crowd: str = "skip", where: str = "", job_images: int = JOB_IMAGES) -> list:
    """Group annotations by image and cut the images into jobs (plus one `NotesJob` first).

    Empties `data.annotations` on the way, so each image's annotations are freed as soon
    as its job is encoded.
    """
    notes = list(table.problems)
    used = {a.category_id for a in data.annotations}
    groups = group_by_image(data.annotations)
    data.annotations.clear()
    seen_ids: set = set()
    seen_labels: set[tuple[str, str]] = set()
    jobs: list = []
    batch: list = []

    encode = msgspec.json.encode if task == "segment" else msgspec.msgpack.encode

    def flush() -> None:
        jobs.append(CocoJob(f"coco-{len(jobs):05d}", images_dir, task, crowd, table.key_of, encode(batch)))
        batch.clear()

    listings: dict[str, frozenset[str] | None] = {}
    for img in data.images:
        if img.id in seen_ids:
            notes.append(Problem("duplicate_image_id", where, f"image id {img.id} ({quoted(img.file_name)})"))
            continue
        seen_ids.add(img.id)
        file_name = img.file_name.replace("\\", "/")
        if "//" in file_name or "./" in file_name:  # rare: one spelling per path, as the worker's
            file_name = str(PurePosixPath(file_name))
        folder, _, name = file_name.rpartition("/")
        stem = os.path.splitext(name)[0]
        if (folder, stem) in seen_labels:
            notes.append(Problem("duplicate_label_path", where,
                                 f"{quoted(img.file_name)}: label {stem}.txt taken"))
            groups.pop(img.id, None)
            continue
        seen_labels.add((folder, stem))
        if folder not in listings:
            listings[folder] = _listing(images_dir, folder)
        listing = listings[folder]
        on_disk = None if listing is None else name in listing
        label_exists = None if listing is None else stem + ".txt" in listing
        batch.append((img, groups.pop(img.id, None), on_disk, label_exists))
        if len(batch) == job_images:
            flush()
    if batch:
        flush()
    for image_id, anns in groups.items():
        notes.extend(Problem("orphan_annotation", where, f"annotation {a.id}: no image {image_id}")
                     for a in anns)
    notes.extend(Problem("unused_category", where, f"{quoted(c.key)} (id {c.source_id}) -> class {c.id}")
                 for c in table.classes if c.source_id not in used)
    return [NotesJob("notes", notes), *jobs]


def _listing(images_dir: str, folder: str) -> frozenset[str] | None:
    """Names of the files (not folders) in `images_dir/folder`, listed once for all its images;
    None when the folder name is unsafe or unreadable (the worker then checks each file)."""
    try:
        path = os.path.join(images_dir, str(safe_relative(folder))) if folder else images_dir
        with os.scandir(path) as entries:
            return frozenset(e.name for e in entries if e.is_file())
    except (UserError, OSError, ValueError):  # ValueError: a NUL byte in the name
        return None


def check_images_found(images: list[Image], images_dir: Path, json_path: Path, sample: int = 10) -> None:
    """Stop before anything is written when no image of the JSON is under `images_dir`
    (NothingDone, exit code 1), naming the folder where the first file names do exist:
    a sub-folder (`--images` one level too high) or the parent (one too low).
    """
    names = [n for n in (img.file_name.replace("\\", "/") for img in images) if _safe(n)]
    if not names:
        return
    listings: dict[str, frozenset[str] | None] = {}
    for name in names:
        folder, _, base = name.rpartition("/")
        if folder not in listings:
            missing = not (images_dir / folder).is_dir()
            listings[folder] = frozenset() if missing else _listing(str(images_dir), folder)
        listing = listings[folder]
        if listing is None or base in listing:  # found (or unknown: the worker will check)
            return
    first = names[:sample]
    try:
        around = [images_dir.parent, *sorted(p for p in images_dir.iterdir() if p.is_dir())]
    except OSError:
        around = [images_dir.parent]
    hits = {d: sum((d / n).is_file() for n in first) for d in around}
    best = max(hits, key=lambda d: hits[d], default=None)
    where = (f"the first file names are in {best}: give --images {best}" if best and hits[best]
             else "give --images the folder the file_names start in")
    raise NothingDone(f"none of the {len(names):,} images of {json_path.name} is under --images "
                      f"{images_dir} (e.g. {first[0]})", where)


def _safe(name: str) -> bool:
    try:
        safe_relative(name)
    except (UserError, ValueError):
        return False
    return "\0" not in name


def check_split_name(name: str, option: str = "--split") -> str:
    """A split name names files in the dataset folder (`<split>.txt`): one plain file name.

    Example: `check_split_name("val2017")` -> "val2017"; `check_split_name("../x")` raises UserError.
    """
    if not name or name in (".", "..") or any(ch in name for ch in "/\\\0\n\r"):
        raise UserError(f"split name {name!r} is not a plain file name",
                        f"give {option} plain names (letters, digits, '-', '_', '.')")
    return name


def default_split(json_path: Path) -> str:
    """The split a file is for: `instances_val2017.json` -> `val2017`; Roboflow's
    `test/_annotations.coco.json` -> `test` (its folder); `x.json` -> `x`."""
    stem = json_path.name.split(".")[0]
    if stem.startswith("instances_"):
        return stem[len("instances_"):]
    if stem.startswith("_"):
        return json_path.absolute().parent.name
    return stem


def convert_coco(
    json_path: str | Path,
    images_dir: str | Path,
    *,
    out: str | Path | None = None,
    split: str | None = None,
    ids: str = "contiguous",
    crowd: str = "skip",
    task: str = "detect",
    options: ConvertOptions | None = None,
    max_json_bytes: int = MAX_JSON_BYTES,
) -> Manifest:
    """Convert one COCO instances file: labels beside the images, list, names, manifest.

    The dataset folder `out` defaults to `<images_dir>/../yolo`, so the train and val files
    of one download land in one dataset. Example:
    `convert_coco("annotations/instances_val2017.json", "val2017", ids="coco80")`
    """
    options = options or ConvertOptions()
    if crowd not in CROWD_POLICIES:
        raise UserError(f"unknown crowd policy {crowd!r}", f"use one of {', '.join(CROWD_POLICIES)}")
    if task not in TASKS:
        raise UserError(f"unknown task {task!r}", f"use one of {', '.join(TASKS)}")
    json_path = Path(json_path).absolute()
    images = Path(images_dir).absolute()
    if not images.is_dir():
        raise UserError(f"images folder {images} not found",
                        "give --images the folder the file_names start in")
    dataset_dir = Path(out).absolute() if out else images.parent / "yolo"
    split = check_split_name(split or default_split(json_path))
    data = read_coco(json_path, task, max_json_bytes)
    check_images_found(data.images, images, json_path)
    table = class_table(data.categories, ids, str(json_path))
    jobs = plan_jobs(data, str(images), table, task=task, crowd=crowd, where=str(json_path))
    del data
    info = convert_split(jobs, split=split, dataset_dir=dataset_dir, class_ids=table.class_ids,
                         options=options)
    source = {"kind": "coco", "root": str(dataset_dir), "json": str(json_path), "images": str(images),
              "ids": ids, "crowd": crowd, "task": task, "options": options_dict(options),
              "unused_categories": [p.detail for p in jobs[0].problems if p.kind == "unused_category"]}
    return write_dataset(dataset_dir, source=source, classes=table.classes, splits={split: info}, name="coco")
