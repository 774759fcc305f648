"""Read a dataset back, whatever its layout: splits, image paths, label paths, class names.

Used by `subset`, `check`, `stats` and `configs`. `open_dataset` takes our dataset folder
(`manifest.json`; each split names its list file of absolute image paths, each image's
label `<stem>.txt` lies beside it), the folder above it that `convert` wrote into
(`ROOT/yolo`), an Ultralytics `data.yaml` or a darknet `.data` (read by
`pipeline.dataset.foreign`, labels found where that tool looks). Label files are read
with `label_lines.label_bytes` (~3 us a file): at ImageNet scale (544,546 labels) a full
pass takes seconds, so no index is kept.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import msgspec

from pipeline.darknet.paths import unread_by
from pipeline.dataset.datafiles import read_list as read_list_file
from pipeline.dataset.foreign import Layout, read_darknet, read_ultralytics
from pipeline.dataset.label_lines import LineError, label_bytes, parse_line
from pipeline.dataset.labels import label_path_beside
from pipeline.dataset.manifest import (
    MANIFEST_NAME,
    ClassCount,
    ClassInfo,
    Manifest,
    SplitInfo,
    read_manifest,
)
from pipeline.errors import UserError

#: What `open_dataset` looks for in a folder, in this order.
LOOKED_FOR = "manifest.json, data.yaml, *.data"
YAML_NAMES = ("data.yaml", "data.yml")


@dataclass(frozen=True)
class Dataset:
    """A dataset: its folder, its manifest and, for a foreign layout, how it was read.

    For our own folders `layout` is None: lists come from the manifest, labels lie beside
    the images. For a data.yaml or .data, `layout` holds the images and the label rule,
    and `manifest` is built in memory (classes; per-class counts via `counted_manifest`).
    `notes` are what the user should be told about how the dataset was found and read.
    """

    root: Path
    manifest: Manifest
    layout: Layout | None = None
    notes: tuple[str, ...] = ()

    @property
    def num_classes(self) -> int:
        """Number of classes (valid ids are 0..num_classes-1)."""
        return len(self.manifest.classes)

    @property
    def source(self) -> str:
        """What the user gave, as a path: the dataset folder, data.yaml or .data."""
        return str(self.layout.file if self.layout else self.root)

    @property
    def name(self) -> str:
        """A short name for files made from it: the folder's, or a .data file's stem."""
        if self.layout is not None and self.layout.kind == "darknet":
            return self.layout.file.stem
        return self.root.resolve().name

    def _check_split(self, split: str) -> None:
        if split not in self.manifest.splits:
            raise UserError(f"dataset {self.source} has no split {split!r}",
                            f"splits: {', '.join(self.manifest.splits) or 'none'}")

    def list_path(self, split: str) -> Path:
        """The list file of a split (a relative entry is taken from the dataset folder)."""
        self._check_split(split)
        path = Path(self.manifest.splits[split].list_file)
        return path if path.is_absolute() else self.root / path

    def entries(self, split: str) -> list[tuple[str, str]]:
        """(image, where it is listed) of a split, in list order; `where` is `list:line`
        or the folder an image was found in.
        """
        self._check_split(split)
        if self.layout is not None:
            return self.layout.splits[split]
        path = self.list_path(split)
        return [(image, f"{path}:{n}") for n, image in enumerate(read_list(path), 1)]

    def images(self, split: str, absolute: bool = False) -> list[str]:
        """The image paths listed for a split, in list order (`absolute`: relative list
        lines resolved against the list's folder).
        """
        if self.layout is None and absolute:
            self._check_split(split)
            return read_list_file(self.list_path(split), absolute=True)
        return [image for image, _ in self.entries(split)]

    def label_path(self, image: str) -> str | None:
        """The label file of `image` in this dataset's layout (None: the tool that reads
        this layout finds none, e.g. an extension pjreddie's darknet does not know).
        """
        return self.layout.label_rule(image) if self.layout else label_path_beside(image)


def open_dataset(path: str | Path, *, fork: str | None = None) -> Dataset:
    """Open a dataset: our folder or manifest, the folder above it (`ROOT/yolo` is used, and
    a note says so), a data.yaml or a .data (`fork`: whose label paths; default detected).

    A folder with none of these is a one-line UserError naming what was looked for and a
    folder nearby that holds a dataset. Example: `open_dataset("export/data.yaml")`.
    """
    p = Path(path).absolute()
    kind, file, notes = _locate(p)
    if kind == "manifest":
        return Dataset(file.parent, read_manifest(file), notes=notes)
    layout = read_darknet(file, fork) if kind == "darknet" else read_ultralytics(file)
    return Dataset(layout.root, _layout_manifest(layout), layout, notes + layout.notes)


def _dataset_file(folder: Path) -> tuple[str, Path] | None:
    """(kind, file) of the dataset held directly in `folder`, or None."""
    if (folder / MANIFEST_NAME).is_file():
        return "manifest", folder / MANIFEST_NAME
    for name in YAML_NAMES:
        if (folder / name).is_file():
            return "ultralytics", folder / name
    data = sorted(folder.glob("*.data"))
    if len(data) > 1:
        raise UserError(f"{folder} holds {len(data)} .data files",
                        f"give one: {', '.join(str(d) for d in data[:3])}")
    return ("darknet", data[0]) if data else None


def _locate(p: Path) -> tuple[str, Path, tuple[str, ...]]:
    """(kind, file, notes) of the dataset `p` names; see `open_dataset`."""
    if p.is_file():
        kinds = {".json": "manifest", ".yaml": "ultralytics", ".yml": "ultralytics",
                 ".data": "darknet"}
        if p.suffix not in kinds:
            raise UserError(f"{p} is not a dataset file", f"give a folder, {LOOKED_FOR}")
        return kinds[p.suffix], p, ()
    if not p.is_dir():
        raise UserError(f"no dataset at {p}: no such file or folder")
    found = _dataset_file(p)
    if found:
        return *found, ()
    if (p / "yolo" / MANIFEST_NAME).is_file():
        return "manifest", p / "yolo" / MANIFEST_NAME, (
            f"using {p / 'yolo'} (the dataset convert wrote)",)
    near = [d for d in (p.parent, *sorted(c for c in p.iterdir() if c.is_dir()))
            if _holds_dataset(d)]
    hint = f"did you mean {near[0]}?" if near else "run 'yolo-pipeline convert' first"
    raise UserError(f"no dataset in {p}", f"looked for {LOOKED_FOR}; {hint}")


def _holds_dataset(folder: Path) -> bool:
    try:
        return _dataset_file(folder) is not None
    except (UserError, OSError):
        return True


def _class_keys(names: tuple[str, ...]) -> list[str]:
    """Class keys for names from a foreign file: the name, or `id:name` where names repeat."""
    seen = Counter(names)
    return [n if seen[n] == 1 else f"{i}:{n}" for i, n in enumerate(names)]


def _layout_manifest(layout: Layout) -> Manifest:
    classes = [ClassInfo(id=i, key=k, name=n)
               for i, (k, n) in enumerate(zip(_class_keys(layout.names), layout.names,
                                              strict=True))]
    splits = {s: SplitInfo(list_file=str(layout.file), images=len(e))
              for s, e in layout.splits.items()}
    source = {"kind": layout.kind, "root": str(layout.root), "file": str(layout.file),
              "labels": layout.labels}
    return Manifest(source=source, classes=classes, splits=splits)


def unread_labels(ds: Dataset, images: list[str], rules: dict[str, Callable[[str], str | None]]
                  ) -> list[str]:
    """One line per tool (`rules`: name -> its label path rule) that would not read some
    of the images' labels (`darknet.paths.unread_by`: missing or different where it looks).
    """
    lines = []
    for tool, rule in rules.items():
        if lost := unread_by(images, rule, ds.label_path):
            image, where, why = lost[0]
            lines.append(f"{tool} will not read the labels of {len(lost)} of {len(images)} "
                         f"images, e.g. {image} -> {where or 'the image itself'} ({why}; the "
                         f"label is {ds.label_path(image)}); a subset of it puts every label "
                         "where all tools read it")
    return lines


def counted_manifest(ds: Dataset) -> Manifest:
    """The manifest with per-class image and box counts: ours as written; a foreign
    dataset's counted from its labels (lines `check` rejects are left out).
    """
    if ds.layout is None:
        return ds.manifest
    keys = ds.manifest.class_keys()
    splits = {}
    for split, info in ds.manifest.splits.items():
        images, boxes = Counter(), Counter()
        for image in ds.images(split):
            data = label_bytes(ds.label_path(image))
            ids = []
            for line in (data or b"").splitlines():
                if line.strip():
                    try:
                        ids.append(parse_line(line, len(keys))[0])
                    except LineError:
                        continue
            boxes.update(ids)
            images.update(set(ids))
        per_class = {k: ClassCount(images[i], boxes[i]) for i, k in enumerate(keys)
                     if images[i]}
        splits[split] = msgspec.structs.replace(info, per_class=per_class,
                                                boxes=sum(boxes.values()))
    return msgspec.structs.replace(ds.manifest, splits=splits)


def read_list(path: str | Path) -> list[str]:
    """Lines of a list file, stripped, blank lines left out; a missing file is a UserError.

    Parsing is `pipeline.dataset.datafiles.read_list`'s. Example: `read_list("data/in10/train.txt")`.
    """
    if not Path(path).is_file():
        raise UserError(f"list file {path} is missing", "re-run the stage that wrote it")
    return read_list_file(path)
