"""Datasets this tool did not convert, read the way the tool that trains on them reads them.

Each reader turns a file into a `Layout`: class names, the images of each split (absolute
paths, each with where it was listed) and the rule that gives an image's label path.
`pipeline.dataset.folder.open_dataset` wraps it into the same `Dataset` as our own folders.

- **Ultralytics `data.yaml`** (as `check_det_dataset` and the loader of Ultralytics 8.4):
  `path` is the root (absent: the YAML's folder; relative: from the working folder, else
  from the YAML's folder); `train`, `val` (or `validation`) and `test` are each a folder
  (every image below it), a list file or a list of those, relative to the root; a missing
  `../x` is tried as `x` (Roboflow writes `train: ../train/images`). Only image extensions
  Ultralytics knows are taken. `names` is a list or a dict {id: name} with ids 0..N-1
  (`nc` must agree). The label of `/d/images/a.jpg` is `/d/labels/a.txt` (the last
  `images` folder), else the `.txt` beside the image.
- **darknet `.data`**: `classes`, `train`, `valid`, `names`; labels where the darknet fork
  (detected from the binary, or given) looks. darknet resolves relative paths against
  its working folder, which a file cannot tell: they are taken from the `.data`'s folder
  (else its parent, else the working folder), and a note says so.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipeline.darknet.cfg import c_int
from pipeline.darknet.fork import choose_fork
from pipeline.darknet.paths import LABEL_PATH
from pipeline.dataset.datafiles import parse_list, read_data, read_names, read_text, read_ultralytics_yaml
from pipeline.dataset.labels import ultralytics_label_path
from pipeline.errors import FormatError, UserError

#: Image extensions Ultralytics 8.4 loads (compared lower-case).
ULTRALYTICS_IMAGES = frozenset(
    ("avif", "bmp", "dng", "heic", "jpeg", "jpg", "mpo", "png", "tif", "tiff", "webp", "pfm"))
#: More classes than this in a foreign file is taken as a mistake (ImageNet-21k has 21,841).
MAX_CLASSES = 100_000
#: data.yaml keys -> split names (the first key present wins for a split).
YAML_SPLITS = (("train", "train"), ("val", "val"), ("validation", "val"), ("test", "test"))
#: .data keys -> split names.
DATA_SPLITS = (("train", "train"), ("valid", "val"))


@dataclass(frozen=True, slots=True)
class Layout:
    """A foreign dataset as read: kind, file, names, images per split, the label rule.

    `splits` maps a split to `(image, where)` pairs: the absolute image path and the list
    line or folder it came from (for reports). `labels` names the rule (`ultralytics`,
    `pjreddie`, `alexeyab`); `notes` are what the user should be told.
    """

    kind: str
    file: Path
    root: Path
    names: tuple[str, ...]
    splits: dict[str, list[tuple[str, str]]]
    label_rule: Callable[[str], str | None]
    labels: str
    notes: tuple[str, ...] = ()


def _walk_images(folder: Path) -> list[str]:
    """Every image below `folder`, sorted (hidden files and folders skipped, as glob does)."""
    found = []
    for top, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [os.path.join(top, f) for f in files if not f.startswith(".")
                  and f.rpartition(".")[2].lower() in ULTRALYTICS_IMAGES]
    return sorted(found)


def _list_entries(path: Path, notes: list[str]) -> list[tuple[str, str]]:
    """Images of an Ultralytics list file; relative lines are taken from the list's folder."""
    entries, bare, skipped = [], 0, 0
    for number, line in enumerate(read_text(path, "list").splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        if line.rpartition(".")[2].lower() not in ULTRALYTICS_IMAGES:
            skipped += 1
            continue
        if not os.path.isabs(line):
            bare += not line.startswith("./")
            line = os.path.normpath(path.parent / line)
        entries.append((line, f"{path}:{number}"))
    if bare:
        notes.append(f"{path}: {bare} relative lines without './' are taken from the list's "
                     "folder (Ultralytics reads them from its working folder)")
    if skipped:
        notes.append(f"{path}: {skipped} lines are not images Ultralytics loads (left out)")
    return entries


def _checked_names(names: list, path: Path) -> tuple[str, ...]:
    """Class names as strings; a non-scalar, empty or multi-line name is a FormatError."""
    if len(names) > MAX_CLASSES:
        raise FormatError(path, f"{len(names):,} classes: more than {MAX_CLASSES:,}")
    for i, n in enumerate(names):
        if not isinstance(n, str | int | float) or not str(n).strip() or any(
                c in str(n) for c in "\r\n"):
            raise FormatError(path, f"class {i}: {str(n)[:40]!r} is not a one-line name")
    return tuple(str(n) for n in names)


def _yaml_names(doc: dict, path: Path) -> tuple[str, ...]:
    names, nc = doc.get("names"), doc.get("nc")
    if names is None:
        if not isinstance(nc, int) or not 0 < nc <= MAX_CLASSES:
            raise FormatError(path, f"no 'names' and no 'nc' in 1..{MAX_CLASSES:,}")
        return tuple(f"class_{i}" for i in range(nc))
    if isinstance(names, dict):
        try:
            by_id = {int(k): str(v) for k, v in names.items()}
        except (TypeError, ValueError):
            raise FormatError(path, "'names' keys must be class ids 0..N-1") from None
        if sorted(by_id) != list(range(len(by_id))):
            raise FormatError(path, f"'names' ids must be 0..{len(by_id) - 1} without gaps")
        names = [by_id[i] for i in range(len(by_id))]
    if not isinstance(names, list) or not names:
        raise FormatError(path, "'names' must be a non-empty list or dict")
    if nc is not None and nc != len(names):
        raise FormatError(path, f"nc={nc} but 'names' has {len(names)} entries")
    return _checked_names(names, path)


def _yaml_root(doc: dict, path: Path, notes: list[str]) -> Path:
    value = doc.get("path")
    if value is None or value == "":
        return path.parent
    if not isinstance(value, str):
        raise FormatError(path, f"'path' must be a folder, not {value!r}")
    root = Path(value).expanduser()
    if root.is_absolute():
        return root
    if root.exists():
        return root.absolute()
    if (path.parent / root).exists():
        notes.append(f"{path}: path={value} taken from the YAML's folder (Ultralytics looks "
                     "in its working folder, then in its datasets_dir)")
        return path.parent / root
    raise UserError(f"{path}: path={value} is not a folder here nor beside the YAML")


def read_ultralytics(path: str | Path) -> Layout:
    """Read an Ultralytics data.yaml and everything its splits name.

    Example: `read_ultralytics("export/data.yaml").splits["train"][0]` ->
    ("/x/export/train/images/a.jpg", "/x/export/train/images").
    """
    path = Path(path).absolute()
    doc = read_ultralytics_yaml(path)
    names = _yaml_names(doc, path)
    notes: list[str] = []
    root = _yaml_root(doc, path, notes)
    splits: dict[str, list[tuple[str, str]]] = {}
    for key, split in YAML_SPLITS:
        value = doc.get(key)
        if not value or split in splits:
            continue
        entries: list[tuple[str, str]] = []
        for item in value if isinstance(value, list) else [value]:
            if not isinstance(item, str):
                raise FormatError(path, f"{key}: {item!r} is not a path")
            target = Path(os.path.normpath(root / item))
            if not target.exists() and isinstance(value, str) and item.startswith("../"):
                target = Path(os.path.normpath(root / item[3:]))
            if target.is_dir():
                entries += [(image, str(target)) for image in _walk_images(target)]
            elif target.is_file():
                entries += _list_entries(target, notes)
            else:
                raise UserError(f"{path}: {key}: {target} does not exist")
        splits[split] = entries
    if not splits:
        raise FormatError(path, "no train, val or test key")
    return Layout("ultralytics", path, path.parent, names, splits, ultralytics_label_path,
                  "ultralytics", tuple(notes))


def _darknet_path(value: str, key: str, path: Path, relative: dict[Path, list[str]]) -> Path:
    """A .data value as a path: a relative one from the .data's folder, its parent or the
    working folder (the first that holds it; recorded in `relative` as base -> keys).
    """
    if os.path.isabs(value):
        return Path(value)
    for base in (path.parent, path.parent.parent, Path.cwd()):
        if (base / value).exists():
            relative.setdefault(base, []).append(key)
            return Path(os.path.normpath(base / value))
    raise UserError(f"{path}: {key}={value} is relative and not found from {path.parent}, "
                    f"its parent or the working folder", "give an absolute path")


def _darknet_list(lst: Path, data: Path, relative: dict[Path, list[str]]
                  ) -> list[tuple[str, str]]:
    """Images of a darknet list; relative lines are taken from the first of the list's
    folder, the .data's folder, its parent and the working folder that holds the first one
    (recorded in `relative` as base -> list files).
    """
    lines = parse_list(read_text(lst, "list"))
    first = next((p for p in lines if not os.path.isabs(p)), None)
    base = lst.parent
    if first is not None:
        base = next((b for b in (lst.parent, data.parent, data.parent.parent, Path.cwd())
                     if (b / first).exists()), lst.parent)
        relative.setdefault(base, []).append(lst.name)
    return [(os.path.normpath(base / p), f"{lst}:{n}") for n, p in enumerate(lines, 1)]


def read_darknet(path: str | Path, fork: str | None = None) -> Layout:
    """Read a darknet .data, its .names and list files; labels where `fork` looks.

    `fork` defaults to the darknet found (`darknet.fork.choose_fork`).
    Example: `read_darknet("obj.data", "alexeyab").names` -> ("cat", "dog").
    """
    path = Path(path).absolute()
    data = read_data(path)
    line = data.find("classes")
    classes = c_int(data.get("classes") or "")
    if not 0 < classes <= MAX_CLASSES:
        raise FormatError(path, f"classes={data.get('classes')!r} is not a whole number in "
                          f"1..{MAX_CLASSES:,}", line=line.number if line else None)
    relative: dict[Path, list[str]] = {}
    names: tuple[str, ...] = tuple(f"class_{i}" for i in range(classes))
    if data.get("names"):
        names_file = _darknet_path(data.get("names") or "", "names", path, relative)
        given = read_names(names_file)
        if len(given) != classes:
            raise FormatError(path, f"classes={classes} but {names_file} has {len(given)} "
                              "lines", line=line.number if line else None)
        names = _checked_names([n or f"class_{i}" for i, n in enumerate(given)], names_file)
    fork_name, why = choose_fork(fork)
    splits: dict[str, list[tuple[str, str]]] = {}
    seen: dict[str, str] = {}
    notes = []
    for key, split in DATA_SPLITS:
        if not data.get(key):
            continue
        lst = _darknet_path(data.get(key) or "", key, path, relative)
        real = os.path.realpath(lst)
        if real in seen:
            notes.append(f"{path}: {key} is the {seen[real]} list: read once")
            continue
        seen[real] = key
        splits[split] = _darknet_list(lst, path, relative)
    notes += [f"{path}: relative paths ({', '.join(what)}) taken from {base}; darknet reads "
              "them from its working folder" for base, what in relative.items()]
    notes.append(f"labels are looked for where {fork_name}'s darknet reads them ({why})")
    return Layout("darknet", path, path.parent, names, splits, LABEL_PATH[fork_name],
                  fork_name, tuple(notes))
