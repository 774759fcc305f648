"""Pascal VOC devkit -> YOLO labels beside the images (and, on request, where darknet looks).

Layout (ROOT is one year folder, e.g. `VOCdevkit/VOC2007`)::

    ROOT/Annotations/<stem>.xml         the VOC XML schema, read by `parse_voc_xml` (as ImageNet)
    ROOT/JPEGImages/<stem>.jpg
    ROOT/ImageSets/Main/<set>.txt       one stem per line; each set becomes a split

Rules: classes are the sorted names found in the XML of the chosen sets, or the lines of
`--classes FILE` (objects of other classes are then reported as `unknown_class`);
`difficult=1` objects are kept or skipped (`--difficult`); a listed stem without XML is
`missing_annotation`, without image `missing_image`; a line with `/`, `\\` or `..` is
`unsafe_stem` (never read or written). `JPEGImages` is one of the names
darknet rewrites to `labels`: with `darknet_labels=True` the label is also written where
pjreddie's fork (first `images`/`JPEGImages`/`raw` in the path) and AlexeyAB's fork
(`/JPEGImages/` -> `/labels/`) look, so both forks and Ultralytics find it.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

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
from pipeline.convert.sources.coco import check_split_name
from pipeline.convert.sources.vocxml import parse_voc_xml
from pipeline.convert.split_checks import case_duplicates
from pipeline.core import Problem, quoted
from pipeline.darknet.paths import darknet_label_paths
from pipeline.dataset.labels import label_path_beside, yolo_label
from pipeline.dataset.manifest import ClassInfo, Manifest
from pipeline.errors import FormatError, UserError
from pipeline.io import read_text, write_if_changed, xml_parser

log = logging.getLogger(__name__)

JOB_IMAGES = 1000
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".JPG", ".JPEG", ".PNG")
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"})


def find_root(root: str | Path) -> Path:
    """The VOC year folder holding Annotations/, JPEGImages/ and ImageSets/Main/."""
    root = Path(root).absolute()
    if not root.is_dir():
        raise UserError(f"VOC root {root} is not a folder")
    missing = [d for d in ("Annotations", "JPEGImages", "ImageSets/Main") if not (root / d).is_dir()]
    if missing:
        years = sorted(p.name for p in root.glob("VOC*") if (p / "Annotations").is_dir())
        hint = f"give {root / years[0]}" if years else "give a VOC year folder, e.g. VOCdevkit/VOC2007"
        raise UserError(f"{root} has no {', '.join(missing)}", hint)
    return root


def read_set(root: Path, name: str) -> list[str]:
    """Stems listed in ImageSets/Main/<name>.txt (first word of each line; blank lines and
    `#` comments skipped).

    Example: `read_set(Path("VOC2007"), "test")` -> ["000001", "000002", ...]
    """
    path = root / "ImageSets" / "Main" / f"{name}.txt"
    if not path.is_file():
        have = sorted(p.stem for p in path.parent.glob("*.txt") if "_" not in p.stem)
        raise UserError(f"no image set {path}", f"sets here: {', '.join(have) or 'none'}")
    text = read_text(path, "image set")
    words = (line.split() for line in text.splitlines())
    return [w[0] for w in words if w and not w[0].startswith("#")]


def plain_stem(stem: str) -> bool:
    """Whether an image set line names a file inside Annotations/ and JPEGImages/.

    Example: `plain_stem("000001")` -> True; `plain_stem("../../x")` -> False.
    """
    return stem not in ("", ".", "..") and not any(ch in stem for ch in "/\\\0")


def read_class_file(path: str | Path) -> list[str]:
    """Class names, one per line (blank lines ignored, order kept, duplicates refused)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"class file {path} not found")
    text = read_text(path, "class")
    names = [line.strip() for line in text.splitlines() if line.strip()]
    if not names:
        raise FormatError(path, "no class names")
    dup = sorted(n for n, count in Counter(names).items() if count > 1)
    if dup:
        raise FormatError(path, f"class {dup[0]!r} is listed twice")
    return names


def scan_classes(root: Path, stems: list[str], xml_dir: Path | None = None) -> list[str]:
    """Sorted object names in the XML of `stems` (unreadable files are left to the jobs),
    read from `xml_dir` (default `ROOT/Annotations`).

    A name spanning lines would shift every line of the .names file: it is left out, and its
    objects are then reported as `unknown_class`.
    """
    parser = xml_parser()
    names: set[str] = set()
    for stem in filter(plain_stem, stems):
        path = (xml_dir or root / "Annotations") / f"{stem}.xml"
        try:
            names.update(o.label for o in parse_voc_xml(path.read_bytes(), str(path), parser).objects)
        except (OSError, FormatError):
            continue
    return sorted(n for n in names if "\n" not in n and "\r" not in n)


def inside(path: str, root: str) -> bool:
    """Whether `path` lies under the folder `root` once links and `..` are resolved.

    Example: `inside("/x/rawdata/VOC2007/labels/a.txt", "/x/rawdata/VOC2007")` -> True;
    `inside("/x/labelsdata/VOC2007/labels/a.txt", "/x/rawdata/VOC2007")` -> False.
    """
    real_root = os.path.realpath(root)
    return os.path.commonpath([os.path.realpath(path), real_root]) == real_root


def _filename_problems(filename: str, stem: str, xml: str) -> list[Problem]:
    """`filename_mismatch` when the XML's <filename> names another image than its own stem."""
    base = os.path.basename(filename.replace("\\", "/"))
    name, ext = os.path.splitext(base)
    if not filename or (name if ext.lower() in IMAGE_SUFFIXES else base) == stem:
        return []
    return [Problem("filename_mismatch", xml, f"<filename> is {quoted(filename)}, the file is {stem}")]


@dataclass
class VocJob:
    """Up to `JOB_IMAGES` stems of one image set (or of a flat export's XML folder)."""

    key: str
    root: str
    stems: tuple[str, ...]
    darknet_labels: bool = False
    xml_dir: str = ""  # default ROOT/Annotations
    image_dir: str = ""  # default ROOT/JPEGImages

    def items(self, ctx: JobContext) -> Iterator[LabelItem]:
        """One item per listed stem, in the set file's order."""
        parser = xml_parser()
        images = self.image_dir or os.path.join(self.root, "JPEGImages")
        for stem in self.stems:
            if not plain_stem(stem):
                yield LabelItem("", "", None, skip=True, problems=(
                    Problem("unsafe_stem", stem, "an image set line must be a plain file name"),))
                continue
            xml = os.path.join(self.xml_dir or os.path.join(self.root, "Annotations"), f"{stem}.xml")
            image = next((os.path.join(images, stem + e) for e in IMAGE_EXTENSIONS
                          if os.path.isfile(os.path.join(images, stem + e))), None)
            if image is None:
                yield LabelItem("", "", None, skip=True,
                                problems=(Problem("missing_image", xml, f"no {stem}.jpg in {images}"),))
                continue
            label = label_path_beside(image)
            try:
                with open(xml, "rb") as f:
                    record = parse_voc_xml(f.read(), xml, parser)
            except FileNotFoundError:
                yield LabelItem(image, label, None, problems=(Problem("missing_annotation", image, xml),))
                continue
            except OSError as exc:  # a folder, no permission...
                problem = Problem("unreadable_annotation", xml, exc.strerror or str(exc))
                yield LabelItem(image, label, None, skip=True, problems=(problem,))
                continue
            except FormatError as exc:
                detail = exc.reason if exc.line is None else f"line {exc.line}: {exc.reason}"
                problem = Problem("malformed_xml", xml, detail)
                yield LabelItem(image, label, None, skip=True, problems=(problem,))
                continue
            fixes: tuple[str, ...] = ()
            if record.width <= 0 or record.height <= 0:
                size = header_size(image)
                if isinstance(size, Problem):
                    yield LabelItem(image, label, None, skip=True, problems=(size,))
                    continue
                record = replace(record, width=size[0], height=size[1])
                fixes = ("size_from_image",)
            result = yolo_label(record, ctx.class_ids, ctx.options.difficult)
            problems = _filename_problems(record.filename, stem, xml)
            if self.darknet_labels and (result.class_ids or ctx.options.unannotated == "empty"):
                problems += self._darknet_copies(image, result.text)
            yield LabelItem(image, label, record, result=result, source=xml, fixes=fixes,
                            problems=tuple(problems))

    def _darknet_copies(self, image: str, text: bytes) -> list[Problem]:
        """Write the label where the darknet forks look; a path outside ROOT is not written."""
        problems = []
        for extra in darknet_label_paths(image):
            if not inside(extra, self.root):
                problems.append(Problem("darknet_label_outside_root", extra,
                                        f"not written: outside {self.root}"))
                continue
            os.makedirs(os.path.dirname(extra), exist_ok=True)
            write_if_changed(extra, text)
        return problems

    def fingerprint(self, ctx: JobContext) -> None:
        """No cache: VOC is small, and unchanged labels are not rewritten anyway."""
        return None


def convert_voc(
    root: str | Path,
    *,
    sets: tuple[str, ...] = ("trainval", "test"),
    classes_file: str | Path | None = None,
    darknet_labels: bool = False,
    out: str | Path | None = None,
    options: ConvertOptions | None = None,
) -> Manifest:
    """Convert the chosen image sets of one VOC year folder; each set becomes a split.

    The dataset folder defaults to `ROOT/yolo`. Example:
    `convert_voc("VOCdevkit/VOC2007", sets=("trainval", "test"), darknet_labels=True)`
    """
    options = options or ConvertOptions()
    if not sets:
        raise UserError("no image sets given", "e.g. --sets trainval,test")
    for name in sets:
        check_split_name(name, "--sets")
    root = find_root(root)
    stems = {name: read_set(root, name) for name in sets}
    if classes_file:
        names = read_class_file(classes_file)
    else:
        names = scan_classes(root, sorted({s for group in stems.values() for s in group}))
        if not names:
            raise UserError(f"no objects in the XML of sets {', '.join(sets)} under {root}",
                            "check Annotations/ or give --classes FILE")
    classes = [ClassInfo(id=i, key=n, name=n) for i, n in enumerate(names)]
    dataset_dir = Path(out).absolute() if out else root / "yolo"
    infos = {}
    notes = case_duplicates(names, str(classes_file or root))
    for name, group in stems.items():
        jobs = [VocJob(f"{name}-{i // JOB_IMAGES:05d}", str(root), tuple(group[i : i + JOB_IMAGES]),
                       darknet_labels) for i in range(0, len(group), JOB_IMAGES)]
        if notes:
            jobs.insert(0, NotesJob("notes", notes))
        infos[name] = convert_split(jobs, split=name, dataset_dir=dataset_dir,
                                    class_ids={c.key: c.id for c in classes}, options=options)
        notes = []  # reported once, with the first set
    outside = sum(i.problems["darknet_label_outside_root"].count for i in infos.values()
                  if "darknet_label_outside_root" in i.problems)
    warnings = [f"{outside:,} darknet label copies would land outside {root}: not written "
                "(see the problems files)"] if outside else []
    if f"{os.sep}images{os.sep}" in str(root):
        warnings.append(f"{root} has an 'images' folder in its path: Ultralytics will look for labels "
                        "under the matching 'labels' folder, not beside the images")
    for w in warnings:
        log.warning(w)
    source = {"kind": "voc", "root": str(root), "sets": list(sets),
              "classes_file": str(classes_file) if classes_file else None,
              "darknet_labels": darknet_labels, "options": options_dict(options), "warnings": warnings}
    return write_dataset(dataset_dir, source=source, classes=classes, splits=infos, name="voc")
